/**
 * The k3s layer's pure parts: exact flag arrays, install environments and command lines for every
 * role × kube-proxy replacement × install source, and shell quoting (the kubeconfig rewrite:
 * kubeconfig.test.ts).
 */
import test from "ava";

import {
  installArguments,
  installArgumentsHash,
  installCommand,
  installEnvironment,
  installStdin,
  installerUrl,
  k3sCommand,
  kubeconfigCommand,
  prepareCommand,
  releaseAssetUrl,
  shellJoin,
  shellQuote,
  uninstallCommand,
  waitCommand,
  type InstallInput,
  type InstallSource,
  type K3sRole,
} from "../../infra/k3s/args";
import { SERVER_FLAGS, expectedInstallArguments } from "./expected-install";

const SERVER = { nodeName: "node-1", nodeIp: "192.168.150.11" };
const AGENT = { nodeName: "node-2", nodeIp: "192.168.150.12" };
const POD_CIDR = "10.0.0.0/16";

const flagCases: [K3sRole, boolean, string[]][] = [
  ["server", false, SERVER_FLAGS],
  ["server", true, [...SERVER_FLAGS, "--disable-kube-proxy"]],
  ["agent", false, ["agent", "--node-name=node-2", "--node-ip=192.168.150.12"]],
  ["agent", true, ["agent", "--node-name=node-2", "--node-ip=192.168.150.12"]],
];
for (const [role, kpr, expected] of flagCases) {
  test(`the ${role} runs k3s with exactly these flags when kubeProxyReplacement is ${kpr}`, (t) => {
    t.deepEqual(
      k3sCommand({ role, ...(role === "server" ? SERVER : AGENT), podCidr: POD_CIDR, kubeProxyReplacement: kpr }),
      expected,
    );
  });
}

test("k3s's --cluster-cidr follows the lab's podCidr", (t) => {
  const flags = k3sCommand({ role: "server", ...SERVER, podCidr: "10.96.0.0/14", kubeProxyReplacement: false });
  t.true(flags.includes("--cluster-cidr=10.96.0.0/14"));
});

const envCases: [K3sRole, InstallSource, [string, string][]][] = [
  [
    "server",
    "online",
    [
      ["INSTALL_K3S_VERSION", "v1.26.6+k3s1"],
      ["K3S_TOKEN_FILE", "/etc/rancher/k3s/cilium-lab-token"],
    ],
  ],
  [
    "server",
    "airgap",
    [
      ["INSTALL_K3S_VERSION", "v1.26.6+k3s1"],
      ["INSTALL_K3S_SKIP_DOWNLOAD", "true"],
      ["K3S_TOKEN_FILE", "/etc/rancher/k3s/cilium-lab-token"],
    ],
  ],
  [
    "agent",
    "online",
    [
      ["INSTALL_K3S_VERSION", "v1.26.6+k3s1"],
      ["K3S_TOKEN_FILE", "/etc/rancher/k3s/cilium-lab-token"],
      ["K3S_URL", "https://192.168.150.11:6443"],
    ],
  ],
  [
    "agent",
    "airgap",
    [
      ["INSTALL_K3S_VERSION", "v1.26.6+k3s1"],
      ["INSTALL_K3S_SKIP_DOWNLOAD", "true"],
      ["K3S_TOKEN_FILE", "/etc/rancher/k3s/cilium-lab-token"],
      ["K3S_URL", "https://192.168.150.11:6443"],
    ],
  ],
];
for (const [role, source, expected] of envCases) {
  test(`install.sh's environment for the ${role} installing ${source} pins the version and carries the token only as a file path`, (t) => {
    const env = installEnvironment({ role, source, version: "v1.26.6+k3s1", serverIp: "192.168.150.11" });
    t.deepEqual(env, expected);
    t.false(env.some(([name]) => name === "K3S_TOKEN"));
  });
}

test("the online installer and the release assets are fetched at the pinned tag, '+' escaped", (t) => {
  t.is(installerUrl("v1.26.6+k3s1"), "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh");
  t.is(releaseAssetUrl("v1.26.6+k3s1", "k3s"), "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s");
});

const SHA = "ab".repeat(32);
/** The install step of `role` with `kpr` and `source`, the rest fixed. */
function input(role: K3sRole, kpr: boolean, source: InstallSource): InstallInput {
  return {
    role,
    ...(role === "server" ? SERVER : AGENT),
    podCidr: POD_CIDR,
    kubeProxyReplacement: kpr,
    source,
    version: "v1.26.6+k3s1",
    serverIp: "192.168.150.11",
    scriptSha256: SHA,
    vmId: "uuid-1",
  };
}

// [role, kube-proxy replacement, source, create]; on stdin after the token: expectedInstallArguments' `rest`
const installCases: [K3sRole, boolean, InstallSource, string][] = [
  [
    "server",
    false,
    "online",
    "sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-1 --role server --source online --version v1.26.6+k3s1 --kube-proxy-replacement false --args-sha256 aed145c41644",
  ],
  [
    "server",
    true,
    "airgap",
    "sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-1 --role server --source airgap --version v1.26.6+k3s1 --kube-proxy-replacement true --args-sha256 ef4add380a43",
  ],
  [
    "agent",
    false,
    "online",
    "sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-2 --role agent --source online --version v1.26.6+k3s1 --kube-proxy-replacement false --args-sha256 392c2977b1f5",
  ],
  [
    "agent",
    true,
    "airgap",
    "sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-2 --role agent --source airgap --version v1.26.6+k3s1 --kube-proxy-replacement true --args-sha256 27ffdbc4973a",
  ],
];
for (const [role, kpr, source, create] of installCases) {
  test(`the ${role}'s install step (kubeProxyReplacement ${kpr}, ${source}): exactly this short command line, and on stdin the token then the other arguments`, (t) => {
    const i = input(role, kpr, source);
    const node = { name: i.nodeName, role, ip: i.nodeIp };
    const { rest } = expectedInstallArguments({ node, kpr, source, vmId: "uuid-1", scriptSha256: SHA });
    t.is(installCommand(i), create);
    t.is(installStdin("tok-en", i), ["tok-en", ...rest].map((l) => `${l}\n`).join(""));
    t.false(installCommand(i).includes("tok-en"));
  });
}

test("the install command's hash is the SHA-256 of every argument (command line, then stdin), one per line, as install-k3s.sh computes it", async (t) => {
  const { execFileSync } = await import("node:child_process");
  for (const [role, kpr, source] of installCases) {
    const i = input(role, kpr, source);
    const bySha256sum = execFileSync("sha256sum", {
      input: installArguments(i)
        .map((a) => `${a}\n`)
        .join(""),
    })
      .toString()
      .slice(0, 12);
    t.is(installArgumentsHash(i), bySha256sum);
    t.true(installCommand(i).endsWith(` --args-sha256 ${bySha256sum}`));
  }
});

test("every argument of the install step changes its command line, so pulumi-command updates the step in place; the token does not", (t) => {
  const base = input("agent", false, "online");
  const changes: [string, Partial<InstallInput>][] = [
    // agents have no kube-proxy flag of their own, yet their step must re-run (and restart k3s).
    ["kubeProxyReplacement", { kubeProxyReplacement: true }],
    ["vmId", { vmId: "uuid-2" }],
    ["scriptSha256", { scriptSha256: "cd".repeat(32) }],
    ["serverIp", { serverIp: "192.168.150.21" }],
    ["nodeIp", { nodeIp: "192.168.150.22" }],
    ["version", { version: "v1.27.4+k3s1" }],
  ];
  for (const [what, change] of changes) {
    t.not(installCommand({ ...base, ...change }), installCommand(base), what);
  }
  t.not(installStdin("a", base), installStdin("b", base));
});

test("an argument that cannot travel one per line on stdin is refused", (t) => {
  t.throws(() => installStdin("tok", { ...input("server", false, "online"), vmId: "uuid\n--role" }), {
    message:
      'install-k3s.sh argument "uuid\\n--role" is empty or contains a newline; the k3s layer sends one argument per line',
  });
});

test("the other node commands are exactly these", (t) => {
  t.is(waitCommand("node-2", 300), "bash -s -- --node node-2 --timeout 300");
  t.is(
    prepareCommand({
      node: "node-1",
      nodeIp: "192.168.150.11",
      modules: ["br_netfilter", "overlay"],
      sysctls: [["net.ipv4.ip_forward", "1"]],
    }),
    "sudo bash -s -- --node node-1 --node-ip 192.168.150.11 --staging-dir /var/lib/cilium-lab --module br_netfilter --module overlay --sysctl net.ipv4.ip_forward=1",
  );
  t.is(
    uninstallCommand("node-3", "agent"),
    "sudo bash /var/lib/cilium-lab/uninstall-k3s.sh --node node-3 --role agent --staging-dir /var/lib/cilium-lab --token-file /etc/rancher/k3s/cilium-lab-token",
  );
  t.is(kubeconfigCommand("node-1"), "sudo bash -s -- --node node-1 --timeout 180");
});

const quoteCases: [string, string][] = [
  ["--node-ip=192.168.150.11", "--node-ip=192.168.150.11"],
  ["v1.26.6+k3s1", "v1.26.6+k3s1"],
  [
    "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh",
    "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh",
  ],
  ["", "''"],
  ["two words", "'two words'"],
  ["it's", `'it'\\''s'`],
  ["$(reboot)", "'$(reboot)'"],
  ["a;b|c&d", "'a;b|c&d'"],
  ["new\nline", "'new\nline'"],
];
for (const [arg, quoted] of quoteCases) {
  test(`shellQuote(${JSON.stringify(arg)}) is ${JSON.stringify(quoted)}`, (t) => {
    t.is(shellQuote(arg), quoted);
  });
}

test("a quoted command line gives the shell back exactly its arguments", async (t) => {
  const { execFileSync } = await import("node:child_process");
  const args = ["plain", "", "two words", "it's", "$(echo no)", "`echo no`", "a\\b", "tab\there", "new\nline", "*"];
  const out = execFileSync("bash", ["-c", `printf '%s\\0' ${shellJoin(args)}`]);
  t.deepEqual(out.toString("utf8").split("\0").slice(0, -1), args);
});

/** k3s's admin kubeconfig as k3s writes it (data shortened). */
