/**
 * The pure and TLS-only parts of scripts/recover.ts and scripts/recover/helm-storage.ts: Helm's
 * storage encoding, which state resources count as the cluster's, and the cluster-identity decision
 * against real TLS servers on loopback (certificates made with openssl). The end-to-end paths are in
 * recovery.engine.test.ts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";

import test from "ava";

import { decodeRelease, encodeRelease, type HelmRelease, kubeFromKubeconfig } from "../../scripts/recover/helm-storage";
import { clusterIdentity } from "../../scripts/recover/replaced";
import { kubernetesResources, providerGroups, secretString } from "../../scripts/recover/state";
import { exitStatus, refreshes, whenDownBefore } from "../../scripts/recover/up";
import { kubeconfigYaml, makeCa, signLeaf } from "../support/control-plane-files";
import { REPO_ROOT, freePort, tempDir } from "../support/host";

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

/** A CA named like k3s's (same subject for both clusters) and a 127.0.0.1 serving cert it signed. */
function makeCluster(dir: string, name: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  makeCa(dir, `${name}-ca`, "/CN=k3s-server-ca", 1);
  const extensions = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n";
  signLeaf(dir, `${name}-ca`, name, "/CN=k3s", extensions, 1);
  const read = (f: string): Buffer => readFileSync(path.join(dir, f));
  return { ca: read(`${name}-ca.crt`), cert: read(`${name}.crt`), key: read(`${name}.key`) };
}

const kubeconfig = (server: string, ca: Buffer): string => kubeconfigYaml(server, ca, { token: "not-a-secret" });

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

test("the Kubernetes resources are grouped by the provider (URN and ID) that manages them, each with the kubeconfig that provider holds in state, plain or as --show-secrets writes a secret", (t) => {
  const providerUrn = "urn:pulumi:vxlan::cilium-lab::pulumi:providers:kubernetes::k8s";
  const secret = (value: string) => ({
    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
    plaintext: JSON.stringify(value),
  });
  const resources = [
    { urn: providerUrn, id: "old", type: "pulumi:providers:kubernetes", inputs: { kubeconfig: secret("old: yaml") } },
    { urn: providerUrn, id: "new", type: "pulumi:providers:kubernetes", inputs: { kubeconfig: "new: yaml" } },
    { urn: "urn:x::Release::cilium", type: "kubernetes:helm.sh/v3:Release", provider: `${providerUrn}::old` },
    { urn: "urn:x::ConfigMap::a", type: "kubernetes:core/v1:ConfigMap", provider: `${providerUrn}::new` },
    { urn: "urn:x::ConfigMap::b", type: "kubernetes:core/v1:ConfigMap", provider: `${providerUrn}::old` },
    { urn: "urn:x::Namespace::c", type: "kubernetes:core/v1:Namespace", provider: `${providerUrn}::gone` },
  ];
  t.deepEqual(
    providerGroups(resources).map((g) => [g.ref, g.kubeconfig, g.resources.map((r) => r.urn)]),
    [
      [`${providerUrn}::old`, "old: yaml", ["urn:x::Release::cilium", "urn:x::ConfigMap::b"]],
      [`${providerUrn}::new`, "new: yaml", ["urn:x::ConfigMap::a"]],
      [`${providerUrn}::gone`, undefined, ["urn:x::Namespace::c"]],
    ],
  );
  t.deepEqual(
    [secretString(""), secretString(secret("")), secretString({ plaintext: "not json" }), secretString(3)],
    [undefined, undefined, undefined, undefined],
  );
});

test("lab.sh refreshes first for `refresh`, `up --refresh`, `up -r` and `up --refresh=true`, not for `up` or `up --refresh=false`; an up ended by a signal exits 128 + its number", (t) => {
  t.deepEqual(
    [
      whenDownBefore("refresh", []),
      whenDownBefore("up", ["--refresh"]),
      whenDownBefore("up", ["--yes", "-r"]),
      whenDownBefore("up", ["--refresh=true"]),
      whenDownBefore("up", ["--yes"]),
      whenDownBefore("up", ["--refresh=false"]),
    ],
    ["refresh-then-check", "refresh-then-check", "refresh-then-check", "refresh-then-check", "keep", "keep"],
  );
  t.true(refreshes("refresh", []));
  t.deepEqual(
    [exitStatus(0, null), exitStatus(255, null), exitStatus(null, "SIGKILL"), exitStatus(null, "SIGTERM")],
    [0, 255, 137, 143],
  );
});
