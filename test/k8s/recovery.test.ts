/**
 * The pure and TLS-only parts of scripts/recover.ts and scripts/recover/helm-storage.ts: Helm's
 * storage encoding, which state resources count as the cluster's, and the cluster-identity decision
 * against real TLS servers on loopback (certificates made with openssl). The end-to-end paths are in
 * recovery.engine.test.ts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";

import test from "ava";

import { clusterIdentity, kubernetesResources } from "../../scripts/recover";
import { decodeRelease, encodeRelease, type HelmRelease, kubeFromKubeconfig } from "../../scripts/recover/helm-storage";
import { freePort } from "../support/control-plane";
import { REPO_ROOT, tempDir } from "../engine/support";

const release: HelmRelease = {
  name: "cilium",
  namespace: "kube-system",
  version: 3,
  manifest: "---\nkind: ConfigMap\n",
  info: { status: "deployed", description: "Rollback to 1" },
  config: { a: 1 },
};

test("a release is stored as Helm writes it: the Secret's data is base64 of base64 of gzip of the release's JSON, and reads back equal", (t) => {
  const data = encodeRelease(release);
  const helmText = Buffer.from(data, "base64").toString("utf8");
  const gz = Buffer.from(helmText, "base64");
  t.deepEqual([...gz.subarray(0, 3)], [0x1f, 0x8b, 0x08]);
  t.deepEqual(JSON.parse(gunzipSync(gz).toString("utf8")), release);
  t.deepEqual(decodeRelease(data), release);
});

test("a release stored before Helm compressed them (no gzip magic) reads back too", (t) => {
  const data = Buffer.from(Buffer.from(JSON.stringify(release)).toString("base64")).toString("base64");
  t.deepEqual(decodeRelease(data), release);
});

test("only resources managed through a kubernetes provider are the cluster's: not the provider, the VMs or components", (t) => {
  const k8sProvider = "urn:pulumi:vxlan::cilium-lab::pulumi:providers:kubernetes::k8s::1234";
  const resources = [
    { urn: "urn:pulumi:vxlan::cilium-lab::pulumi:providers:kubernetes::k8s", type: "pulumi:providers:kubernetes" },
    {
      urn: "urn:pulumi:vxlan::cilium-lab::lab:nodes:LabNodes$libvirt:index/domain:Domain::node-1",
      type: "libvirt:index/domain:Domain",
      provider: "urn:pulumi:vxlan::cilium-lab::pulumi:providers:libvirt::default::9",
    },
    { urn: "urn:pulumi:vxlan::cilium-lab::lab:cilium:Cilium::cilium", type: "lab:cilium:Cilium" },
    {
      urn: "urn:pulumi:vxlan::cilium-lab::lab:cilium:Cilium$kubernetes:helm.sh/v3:Release::cilium-release",
      type: "kubernetes:helm.sh/v3:Release",
      provider: k8sProvider,
    },
    {
      urn: "urn:pulumi:vxlan::cilium-lab::kubernetes:core/v1:Namespace::verify",
      type: "kubernetes:core/v1:Namespace",
      provider: k8sProvider,
    },
  ];
  t.deepEqual(
    kubernetesResources(resources).map((r) => r.type),
    ["kubernetes:helm.sh/v3:Release", "kubernetes:core/v1:Namespace"],
  );
});

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** A CA named like k3s's (same subject for both clusters) and a 127.0.0.1 serving cert it signed. */
function makeCluster(dir: string, name: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${name}-ca.key`,
    "-out",
    `${name}-ca.crt`,
    "-days",
    "1",
    "-subj",
    "/CN=k3s-server-ca",
  ]);
  openssl(dir, ["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/CN=k3s"]);
  writeFileSync(
    path.join(dir, `${name}.ext`),
    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
  );
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${name}-ca.crt`,
    "-CAkey",
    `${name}-ca.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  ]);
  const read = (f: string): Buffer => readFileSync(path.join(dir, f));
  return { ca: read(`${name}-ca.crt`), cert: read(`${name}.crt`), key: read(`${name}.key`) };
}

const kubeconfig = (server: string, ca: Buffer): string =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: default",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${ca.toString("base64")}`,
    "users:",
    "- name: default",
    "  user:",
    "    token: not-a-secret",
    "contexts:",
    "- name: default",
    "  context: {cluster: default, user: default}",
    "current-context: default",
    "",
  ].join("\n");

test("the cluster behind the stored URL is `same` when its certificate is signed by the stored CA, `new` when another CA with the same name signed it, and `down` when nothing answers", async (t) => {
  const dir = tempDir(t, "recover-tls");
  const old = makeCluster(dir, "old");
  const current = makeCluster(dir, "new");
  const server = https.createServer({ cert: current.cert, key: current.key }, (_req, res) =>
    res.end('{"gitVersion":"v1.33.13"}'),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const closed = `https://127.0.0.1:${await freePort()}`;
  t.deepEqual(
    [
      await clusterIdentity(kubeFromKubeconfig(kubeconfig(url, current.ca))),
      await clusterIdentity(kubeFromKubeconfig(kubeconfig(url, old.ca))),
      await clusterIdentity(kubeFromKubeconfig(kubeconfig(closed, old.ca))),
    ],
    ["same", "new", "down"],
  );
});

test("scripts/recover.ts without a stack and lab.sh recover without a stack exit 2 with their usage", (t) => {
  const tsx = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
  const direct = spawnSync(tsx, [path.join(REPO_ROOT, "scripts", "recover.ts"), "recover"], { encoding: "utf8" });
  t.is(direct.status, 2);
  t.regex(
    direct.stderr,
    /usage: tsx scripts\/recover.ts prepare <stack> <up\|refresh> \[pulumi flags...\] \| recover <stack>/,
  );
  const lab = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "lab.sh"), "recover"], { encoding: "utf8" });
  t.is(lab.status, 2);
  t.regex(lab.stderr, /name a stack/);
});
