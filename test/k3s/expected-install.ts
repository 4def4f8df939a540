/**
 * The k3s flags and install-k3s.sh arguments of the lab's nodes, written out independently of
 * infra/k3s/args.ts (from install-k3s.sh's usage and k3s's flags), for the tests that check them:
 * the server is node-1 at 192.168.150.11, the pod CIDR 10.0.0.0/16, k3s v1.26.6+k3s1.
 */
import { createHash } from "node:crypto";

/** A node of the expected lab. */
export interface ExpectedNode {
  readonly name: string;
  readonly role: "server" | "agent";
  readonly ip: string;
}

/** The server's k3s flags without kube-proxy replacement. */
export const SERVER_FLAGS = [
  "server",
  "--node-name=node-1",
  "--node-ip=192.168.150.11",
  "--tls-san=192.168.150.11",
  "--flannel-backend=none",
  "--disable-network-policy",
  "--cluster-cidr=10.0.0.0/16",
  "--service-cidr=10.43.0.0/16",
  "--write-kubeconfig-mode=0600",
];

/** What the install step of `node` gets. */
export interface ExpectedInstallInput {
  readonly node: ExpectedNode;
  readonly kpr: boolean;
  readonly source: "online" | "airgap";
  readonly vmId: string;
  readonly scriptSha256: string;
}

/**
 * The install step's arguments: `visible` on the command line (node, role, source, version,
 * kube-proxy replacement; the hash of every argument follows them), `rest` on stdin after the token.
 */
export function expectedInstallArguments(e: ExpectedInstallInput): { visible: string[]; rest: string[] } {
  const { node, kpr, source } = e;
  const agent = node.role === "agent";
  const visible = ["--node", node.name, "--role", node.role, "--source", source, "--version", "v1.26.6+k3s1"];
  const flags =
    node.role === "server"
      ? [...SERVER_FLAGS, ...(kpr ? ["--disable-kube-proxy"] : [])]
      : ["agent", `--node-name=${node.name}`, `--node-ip=${node.ip}`];
  const rest = [
    ...(source === "online"
      ? ["--installer-url", "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh"]
      : []),
    ...["--token-file", "/etc/rancher/k3s/cilium-lab-token", "--staging-dir", "/var/lib/cilium-lab"],
    ...(agent ? ["--server-url", "https://192.168.150.11:6443"] : []),
    ...["--vm-id", e.vmId, "--script-sha256", e.scriptSha256, "--timeout", "900"],
    ...["--env", "INSTALL_K3S_VERSION=v1.26.6+k3s1"],
    ...(source === "airgap" ? ["--env", "INSTALL_K3S_SKIP_DOWNLOAD=true"] : []),
    ...["--env", "K3S_TOKEN_FILE=/etc/rancher/k3s/cilium-lab-token"],
    ...(agent ? ["--env", "K3S_URL=https://192.168.150.11:6443"] : []),
    "--",
    ...flags,
  ];
  return { visible: [...visible, "--kube-proxy-replacement", String(kpr)], rest };
}

/**
 * The install step's `create` and `stdin`: a short command line ending in the hash of every
 * argument (12 hex digits of the SHA-256 of all of them, one per line), and on stdin the token and
 * then the other arguments, one per line.
 */
export function expectedInstall(e: ExpectedInstallInput, token: string): { create: string; stdin: string } {
  const { visible, rest } = expectedInstallArguments(e);
  const hash = createHash("sha256")
    .update([...visible, ...rest].map((a) => `${a}\n`).join(""))
    .digest("hex")
    .slice(0, 12);
  return {
    create: `sudo bash /var/lib/cilium-lab/install-k3s.sh ${visible.join(" ")} --args-sha256 ${hash}`,
    stdin: [token, ...rest].map((l) => `${l}\n`).join(""),
  };
}
