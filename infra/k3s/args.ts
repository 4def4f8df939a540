/**
 * The k3s layer's pure parts: k3s flags per role, the install script's environment, the exact
 * command lines the nodes run and shell quoting (the upstream probe's are in probe.ts, the
 * kubeconfig rewrite in kubeconfig.ts). No Pulumi and no I/O, so every string is table-tested
 * (test/k3s/args.test.ts).
 *
 * Where the flags come from:
 * - Cilium's k3s guide: `--flannel-backend=none --disable-network-policy`; "If running Cilium in
 *   kubeproxy-free mode, add option `--disable-kube-proxy`"
 *   (cilium/cilium@07b480e2:Documentation/installation/k3s.rst).
 * - k3s's custom-CNI notes recommend `--disable-network-policy` with `--flannel-backend=none`
 *   (https://docs.k3s.io/networking/basic-network-options#custom-cni).
 * - `--node-ip`: without it k3s advertises the address of the interface with the default route;
 *   the lab pins the lab NIC's address on every node (https://docs.k3s.io/cli/agent#node).
 */
import { createHash } from "node:crypto";

import { SERVICE_CIDR } from "../config";

/** A node's k3s role: node-1 runs the server, the others join as agents. */
export type K3sRole = "server" | "agent";
/** Where k3s comes from: k3s's install script over the internet, or files from `k3sAirgapDir`. */
export type InstallSource = "online" | "airgap";

/** The k3s supervisor and Kubernetes API port (`--https-listen-port`, default 6443). */
export const K3S_API_PORT = 6443;
/**
 * The cluster token on every node: 0600 root, read by k3s through `K3S_TOKEN_FILE`. Only its path
 * lands in the unit's env file (install.sh persists every `K3S_*` variable into
 * /etc/systemd/system/k3s*.service.env, so `K3S_TOKEN` would copy the token itself there), and it
 * never appears in a process's argv or environment. k3s's uninstall script removes /etc/rancher/k3s,
 * and the token with it.
 */
export const TOKEN_FILE = "/etc/rancher/k3s/cilium-lab-token";
/**
 * The node-side staging directory (owned by the login user, created by prepare-node.sh): the
 * install and uninstall scripts and, in air-gap mode, `airgap/{k3s,install.sh,images/*}` are copied
 * here over SFTP. install-k3s.sh and uninstall-k3s.sh know the same layout.
 */
export const STAGING_DIR = "/var/lib/cilium-lab";
/** Where install-k3s.sh is copied. */
export const INSTALL_SCRIPT_PATH = `${STAGING_DIR}/install-k3s.sh`;
/** Where uninstall-k3s.sh is copied (the install command's `delete` runs it). */
export const UNINSTALL_SCRIPT_PATH = `${STAGING_DIR}/uninstall-k3s.sh`;
/** Air-gap files on the node, before install-k3s.sh moves them into place. */
export const AIRGAP_STAGING_DIR = `${STAGING_DIR}/airgap`;
/** Where k3s imports image tarballs from at start (https://docs.k3s.io/installation/airgap). */
export const K3S_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images";
/**
 * The bound on one run of install.sh. The k3s unit has `TimeoutStartSec=0`, so a start that never
 * completes (an agent that cannot reach the server) would otherwise hang `pulumi up` forever.
 */
export const INSTALL_TIMEOUT_SECONDS = 900;
/** How long read-kubeconfig.sh waits for k3s to write its kubeconfig. */
export const KUBECONFIG_TIMEOUT_SECONDS = 180;

/** `https://<ip>:6443`: what agents join and what the kubeconfig points at. */
export function serverUrl(serverIp: string): string {
  return `https://${serverIp}:${K3S_API_PORT}`;
}

/** A release tag in a URL path: `v1.26.6+k3s1` → `v1.26.6%2Bk3s1`. */
function tagInUrl(version: string): string {
  return encodeURIComponent(version);
}

/**
 * k3s's install script as of the pinned release, so the script and the binary it installs match.
 * (https://get.k3s.io serves the newest script; k3s's air-gap guide names it too.)
 */
export function installerUrl(version: string): string {
  return `https://raw.githubusercontent.com/k3s-io/k3s/${tagInUrl(version)}/install.sh`;
}

/** A file of a k3s GitHub release, e.g. `k3s` or `k3s-airgap-images-amd64.tar.zst`. */
export function releaseAssetUrl(version: string, asset: string): string {
  return `https://github.com/k3s-io/k3s/releases/download/${tagInUrl(version)}/${asset}`;
}

/** What decides a node's k3s command line. */
export interface K3sFlagsInput {
  readonly role: K3sRole;
  /** The Kubernetes node name (`node-1`…): set explicitly so it never depends on the hostname. */
  readonly nodeName: string;
  /** The node's lab address: advertised (`--node-ip`), and in the server certificate (`--tls-san`). */
  readonly nodeIp: string;
  /** The lab's pod CIDR: k3s's `--cluster-cidr` follows it, so k3s and Cilium agree (server only). */
  readonly podCidr: string;
  /** Cilium replaces kube-proxy: k3s then runs without it (server only). */
  readonly kubeProxyReplacement: boolean;
}

/**
 * The k3s command and flags for one node, as install.sh takes them (`install.sh server --flag…`)
 * and writes them into the systemd unit. Cluster-wide flags are server flags; agents only name
 * themselves and their address (the server URL and token come from the environment).
 */
export function k3sCommand(input: K3sFlagsInput): string[] {
  const node = [`--node-name=${input.nodeName}`, `--node-ip=${input.nodeIp}`];
  if (input.role === "agent") {
    return ["agent", ...node];
  }
  return [
    "server",
    ...node,
    // the kubeconfig and API certificate must work from the host, via the lab address.
    `--tls-san=${input.nodeIp}`,
    "--flannel-backend=none",
    "--disable-network-policy",
    `--cluster-cidr=${input.podCidr}`,
    // k3s's default, stated so the config layer's overlap checks (SERVICE_CIDR) always hold.
    `--service-cidr=${SERVICE_CIDR}`,
    // the admin kubeconfig stays root-only (k3s's default is 0600; state it so no edit widens it).
    "--write-kubeconfig-mode=0600",
    ...(input.kubeProxyReplacement ? ["--disable-kube-proxy"] : []),
  ];
}

/** What decides install.sh's environment. */
export interface InstallEnvironmentInput {
  readonly role: K3sRole;
  readonly source: InstallSource;
  readonly version: string;
  /** The server's lab address (agents join `https://<serverIp>:6443`). */
  readonly serverIp: string;
}

/**
 * install.sh's environment, in a fixed order (https://docs.k3s.io/reference/env-variables):
 * `INSTALL_K3S_VERSION` pins the release; `INSTALL_K3S_SKIP_DOWNLOAD=true` makes it use the binary
 * already placed in /usr/local/bin (air-gap); `K3S_TOKEN_FILE` points at the 0600 token file;
 * `K3S_URL` makes an agent join the server (install.sh accepts only https:// URLs).
 */
export function installEnvironment(input: InstallEnvironmentInput): [name: string, value: string][] {
  return [
    ["INSTALL_K3S_VERSION", input.version],
    ...(input.source === "airgap" ? [["INSTALL_K3S_SKIP_DOWNLOAD", "true"] as [string, string]] : []),
    ["K3S_TOKEN_FILE", TOKEN_FILE],
    ...(input.role === "agent" ? [["K3S_URL", serverUrl(input.serverIp)] as [string, string]] : []),
  ];
}

// Characters that never need quoting in a POSIX shell word.
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument for a POSIX shell: unchanged when it has only safe characters, otherwise in
 * single quotes with each `'` written as `'\''`. The empty string becomes `''`.
 */
export function shellQuote(arg: string): string {
  if (SHELL_SAFE.test(arg)) {
    return arg;
  }
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line from arguments, each quoted with {@link shellQuote}. */
export function shellJoin(args: readonly string[]): string {
  return args.map(shellQuote).join(" ");
}

/**
 * The first step on every node, as the login user (no sudo: `cloud-init status` needs none); the
 * script (scripts/node/wait-cloud-init.sh) arrives on stdin.
 */
export function waitCommand(node: string, timeoutSeconds: number): string {
  return shellJoin(["bash", "-s", "--", "--node", node, "--timeout", String(timeoutSeconds)]);
}

/** What prepare-node.sh checks on one node. */
export interface PrepareInput {
  readonly node: string;
  readonly nodeIp: string;
  /** Kernel modules the nodes' cloud-init loads (infra/nodes/cloud-init.ts). */
  readonly modules: readonly string[];
  /** Sysctls the nodes' cloud-init sets, as `[key, value]`. */
  readonly sysctls: readonly (readonly [string, string])[];
}

/** Runs scripts/node/prepare-node.sh (on stdin) as root. */
export function prepareCommand(input: PrepareInput): string {
  return shellJoin([
    "sudo",
    "bash",
    "-s",
    "--",
    "--node",
    input.node,
    "--node-ip",
    input.nodeIp,
    "--staging-dir",
    STAGING_DIR,
    ...input.modules.flatMap((m) => ["--module", m]),
    ...input.sysctls.flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
  ]);
}

/** What install-k3s.sh does on one node. */
export interface InstallInput extends K3sFlagsInput {
  readonly source: InstallSource;
  readonly version: string;
  readonly serverIp: string;
  /** SHA-256 of the install-k3s.sh copied to the node: the script checks it, and an edit changes the argument hash, so `pulumi up` re-runs it. */
  readonly scriptSha256: string;
  /** The node VM's id: a new VM (same address and host key) changes the argument hash, so k3s is installed on it. */
  readonly vmId: string;
}

/** How many hex digits of the argument list's SHA-256 the install command shows (48 bits: a changed list never keeps its hash by chance). */
export const ARGS_HASH_LENGTH = 12;

/**
 * The install's arguments that are on its command line: what identifies the step (node, role) and
 * what a user changes on purpose (source, version, kube-proxy replacement), so `pulumi preview`
 * shows them changing. Every role carries `--kube-proxy-replacement`: k3s agents take the
 * kube-proxy setting from the server when they start, so a change must re-run (and restart) the
 * agents too, after the server (they depend on its install).
 */
function installVisibleArguments(input: InstallInput): string[] {
  return [
    "--node",
    input.nodeName,
    "--role",
    input.role,
    "--source",
    input.source,
    "--version",
    input.version,
    "--kube-proxy-replacement",
    String(input.kubeProxyReplacement),
  ];
}

/** The rest of the install's arguments, sent on stdin after the token (one per line). */
function installStdinArguments(input: InstallInput): string[] {
  return [
    ...(input.source === "online" ? ["--installer-url", installerUrl(input.version)] : []),
    "--token-file",
    TOKEN_FILE,
    "--staging-dir",
    STAGING_DIR,
    ...(input.role === "agent" ? ["--server-url", serverUrl(input.serverIp)] : []),
    "--vm-id",
    input.vmId,
    "--script-sha256",
    input.scriptSha256,
    "--timeout",
    String(INSTALL_TIMEOUT_SECONDS),
    ...installEnvironment(input).flatMap(([name, value]) => ["--env", `${name}=${value}`]),
    "--",
    ...k3sCommand(input),
  ];
}

/** Every argument install-k3s.sh gets, in the order it parses them: the command line's, then stdin's. */
export function installArguments(input: InstallInput): string[] {
  const args = [...installVisibleArguments(input), ...installStdinArguments(input)];
  const bad = args.find((a) => a.includes("\n") || a === "");
  if (bad !== undefined) {
    // stdin carries one argument per line: a newline or an empty argument would shift them.
    throw new Error(
      `install-k3s.sh argument ${JSON.stringify(bad)} is empty or contains a newline; the k3s layer sends one argument per line`,
    );
  }
  return args;
}

/**
 * The first {@link ARGS_HASH_LENGTH} hex digits of the SHA-256 of every argument followed by a
 * newline (what `printf '%s\n' "${args[@]}" | sha256sum` prints in install-k3s.sh, which checks it).
 */
export function installArgumentsHash(input: InstallInput): string {
  const text = installArguments(input)
    .map((a) => `${a}\n`)
    .join("");
  return createHash("sha256").update(text).digest("hex").slice(0, ARGS_HASH_LENGTH);
}

/**
 * The install step's `create`: runs the copied install-k3s.sh as root with a short command line,
 * e.g. `sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-1 --role server --source online
 * --version v1.26.6+k3s1 --kube-proxy-replacement false --args-sha256 1f0c2a9e4b7d`. The rest of the
 * arguments and the token travel on stdin ({@link installStdin}).
 *
 * Why short: pulumi-command prints the whole command in every failure (`error: Process exited with
 * status 6: running "<create>"`), which with the full argument list was ~600 characters, three
 * times per failure. Why the hash: it changes whenever any argument does (the VM id, the script's
 * hash, a k3s flag), so the create text itself shows the change in the preview diff, next to the
 * readable settings, while stdin is a secret (the token) and shows only `[secret]`.
 *
 * Why not `triggers`: in pulumi-command a change of `create`, `update` or `stdin` is an *update*
 * (the provider's Update runs `update`, else `create`, again), while only `connection` and
 * `triggers` are `replaceOnChanges` (struct tags `provider:"replaceOnChanges"` on those two fields
 * of CommandArgs, none on Create/Stdin: pulumi/pulumi-command provider/pkg/provider/remote/
 * command.go and commandController.go, read at commits 09c953e0 and 1355b24c; the 1.2.1 SDK we ship
 * adds `replaceOnChanges: ["triggers[*]"]` and nothing else, @pulumi/command/remote/command.js).
 * A replacement creates the new command first and then runs the old one's `delete` (the
 * uninstall), after the reinstall; an update re-runs the script in place, which is how k3s upgrades
 * and reconfigures (re-run install.sh).
 */
export function installCommand(input: InstallInput): string {
  return shellJoin([
    "sudo",
    "bash",
    INSTALL_SCRIPT_PATH,
    ...installVisibleArguments(input),
    "--args-sha256",
    installArgumentsHash(input),
  ]);
}

/**
 * The install step's `stdin`: the cluster token on the first line (never on a command line, never
 * in an environment), then the arguments that are not on the command line, one per line. A secret
 * in the program, because the token is.
 */
export function installStdin(token: string, input: InstallInput): string {
  installArguments(input); // refuses arguments that cannot travel one per line
  return [token, ...installStdinArguments(input)].map((l) => `${l}\n`).join("");
}

/** The install command's `delete`: runs the copied uninstall-k3s.sh as root. */
export function uninstallCommand(node: string, role: K3sRole): string {
  return shellJoin([
    "sudo",
    "bash",
    UNINSTALL_SCRIPT_PATH,
    "--node",
    node,
    "--role",
    role,
    "--staging-dir",
    STAGING_DIR,
    "--token-file",
    TOKEN_FILE,
  ]);
}

/** Runs scripts/node/read-kubeconfig.sh (on stdin) as root on the server. */
export function kubeconfigCommand(node: string): string {
  return shellJoin(["sudo", "bash", "-s", "--", "--node", node, "--timeout", String(KUBECONFIG_TIMEOUT_SECONDS)]);
}
