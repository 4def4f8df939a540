/**
 * The files of a test control plane (test/support/control-plane.ts) and of the TLS servers in the
 * recovery tests: certificates made with openssl (EC P-256), kubeconfigs with everything inline, and
 * the Pod Security admission configuration.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stderr?: Buffer };
    throw new Error(`openssl ${args.join(" ")} failed in ${dir}: ${e.stderr?.toString() ?? ""}`, { cause: error });
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA: `<name>.key` and `<name>.crt` in `dir`. */
export function makeCa(dir: string, name: string, subject: string, days: number): void {
  const files = ["-keyout", `${name}.key`, "-out", `${name}.crt`];
  openssl(dir, ["req", "-x509", ...EC, ...files, "-days", String(days), "-subj", subject]);
}

/** A key and certificate `<name>.key`/`<name>.crt` signed by the CA `<ca>.key`/`<ca>.crt`, with these x509v3 extensions. */
export function signLeaf(
  dir: string,
  ca: string,
  name: string,
  subject: string,
  extensions: string,
  days: number,
): void {
  openssl(dir, ["req", "-new", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  const signer = ["-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial"];
  const out = ["-days", String(days), "-out", `${name}.crt`, "-extfile", `${name}.ext`];
  openssl(dir, ["x509", "-req", "-in", `${name}.csr`, ...signer, ...out]);
}

/** CA, apiserver serving cert, admin client cert (O=system:masters) and the service-account key. */
export function makeCertificates(dir: string): void {
  makeCa(dir, "ca", "/CN=cilium-lab-test-ca", 2);
  // 10.43.0.1 is the `kubernetes` Service's IP: the first address of --service-cluster-ip-range.
  signLeaf(
    dir,
    "ca",
    "apiserver",
    "/CN=kube-apiserver",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,IP:10.43.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n",
    2,
  );
  signLeaf(
    dir,
    "ca",
    "admin",
    "/O=system:masters/CN=cilium-lab-test-admin",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    2,
  );
  openssl(dir, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

/** A kubeconfig (YAML) for `server` with the CA and the user's client certificate or token inline. */
export function kubeconfigYaml(
  server: string,
  ca: Buffer,
  user: { cert: Buffer; key: Buffer } | { token: string },
): string {
  const credentials =
    "token" in user
      ? [`    token: ${user.token}`]
      : [
          `    client-certificate-data: ${user.cert.toString("base64")}`,
          `    client-key-data: ${user.key.toString("base64")}`,
        ];
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${ca.toString("base64")}`,
    "users:",
    "- name: admin",
    "  user:",
    ...credentials,
    "contexts:",
    "- name: test",
    "  context:",
    "    cluster: test",
    "    user: admin",
    "current-context: test",
    "",
  ].join("\n");
}

/** The control plane's admin kubeconfig from the files in `dir`. */
export function adminKubeconfig(server: string, dir: string): string {
  const read = (file: string): Buffer => readFileSync(path.join(dir, file));
  return kubeconfigYaml(server, read("ca.crt"), { cert: read("admin.crt"), key: read("admin.key") });
}

/** Writes the admission configuration for a cluster-wide Pod Security default `level`; returns its path. */
export function podSecurityAdmissionConfig(dir: string, level: "restricted"): string {
  const file = path.join(dir, "admission.yaml");
  writeFileSync(
    file,
    [
      "apiVersion: apiserver.config.k8s.io/v1",
      "kind: AdmissionConfiguration",
      "plugins:",
      "- name: PodSecurity",
      "  configuration:",
      "    apiVersion: pod-security.admission.config.k8s.io/v1",
      "    kind: PodSecurityConfiguration",
      "    defaults:",
      `      enforce: ${level}`,
      '      enforce-version: "latest"',
      `      audit: ${level}`,
      '      audit-version: "latest"',
      `      warn: ${level}`,
      '      warn-version: "latest"',
      "    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}",
      "",
    ].join("\n"),
  );
  return file;
}
