/**
 * The k3s layer's node scripts, run for real over SSH on one booted test VM (the project's test
 * image under TCG, seeded by the nodes layer's own cloud-init renderers, host key pinned), shipped
 * exactly as the k3s component ships them: the command lines come from infra/k3s/args.ts, small
 * scripts on stdin, install/uninstall copied over SFTP into the staging directory, the token on stdin.
 *
 * The VM's network is isolated (no internet), and no k3s binary can be obtained on our machines:
 * these tests cover waiting, preparing, every failure report of the installer (no internet, wrong
 * air-gap binary, failing install.sh, unreachable server), and the install → uninstall → install
 * cycle and the kube-proxy switch with a stand-in k3s: an air-gap `k3s` that only sleeps and an
 * `install.sh` that writes the systemd unit, env file and uninstall script and (re)starts the unit
 * the way k3s's install.sh does. What k3s itself does is covered by the mock tests only.
 */
import test from "ava";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  AIRGAP_STAGING_DIR,
  INSTALL_SCRIPT_PATH,
  STAGING_DIR,
  TOKEN_FILE,
  UNINSTALL_SCRIPT_PATH,
  installCommand,
  installStdin,
  kubeconfigCommand,
  prepareCommand,
  uninstallCommand,
  waitCommand,
  type InstallInput,
} from "../../infra/k3s/args";
import { nodeScript } from "../../infra/node-scripts";
import { KERNEL_MODULES, SYSCTLS } from "../../infra/nodes/cloud-init";
import { installHostIptables } from "./support/node-iptables";
import { bootTestVm, type SshResult, type TestVm } from "./support/test-vm";

const TOKEN = "cl-test-token-3f9a1c7e5b2d4086";
const VERSION = "v1.26.6+k3s1";

let vm: TestVm | undefined;
let local = "";

// Boot budget: ~1 min on an idle 2-core host under TCG, but well over 10 min when other VMs and
// builds share the cores; CILIUM_LAB_TEST_BOOT_SECONDS overrides it.
const BOOT_SECONDS = Number(process.env.CILIUM_LAB_TEST_BOOT_SECONDS ?? 1500);

test.before(async (t) => {
  // beyond ava's global 10-minute inactivity timeout, which would kill the file mid-boot.
  t.timeout(
    (BOOT_SECONDS + 120) * 1000,
    `the test VM did not boot within ${BOOT_SECONDS}s (CILIUM_LAB_TEST_BOOT_SECONDS)`,
  );
  local = mkdtempSync(join(tmpdir(), "cl-k3s-vm-"));
  vm = await bootTestVm({ hostname: "node-1", timeoutSeconds: BOOT_SECONDS });
  // cloud-init's set_passwords restarts sshd after the first login can already succeed (every
  // command then got "Connection closed", exit 255): wait for cloud-init to finish, retrying.
  const deadline = Date.now() + BOOT_SECONDS * 1000;
  for (;;) {
    const r = await vm.ssh("cloud-init status --wait >/dev/null 2>&1; true");
    if (r.code === 0 || Date.now() > deadline) {
      break;
    }
    await new Promise((done) => setTimeout(done, 3000));
  }
});

test.after.always(() => {
  vm?.destroy();
  if (local !== "") {
    rmSync(local, { recursive: true, force: true });
  }
});

function theVm(): TestVm {
  if (!vm) {
    throw new Error("the test VM did not boot (see the before hook's error)");
  }
  return vm;
}

/** The install step's input for node-1 (the VM) with the given overrides. */
function installInput(overrides: Partial<InstallInput> = {}): InstallInput {
  return {
    role: "server",
    nodeName: "node-1",
    nodeIp: theVm().ip,
    podCidr: "10.0.0.0/16",
    kubeProxyReplacement: false,
    source: "online",
    version: VERSION,
    serverIp: theVm().ip,
    scriptSha256: nodeScript("install-k3s.sh").sha256,
    vmId: "cl-k3stest",
    ...overrides,
  };
}

/** Runs the install step as K3sCluster does: its `create` line, its stdin (token, then the other arguments). */
function runInstall(overrides: Partial<InstallInput> = {}, token = TOKEN): Promise<SshResult> {
  const input = installInput(overrides);
  return theVm().ssh(installCommand(input), installStdin(token, input));
}

/** Runs the install step's `delete` as pulumi-command does: with the step's stdin (it passes it to every run). */
function runUninstall(overrides: Partial<InstallInput> = {}): Promise<SshResult> {
  const input = installInput(overrides);
  return theVm().ssh(uninstallCommand(input.nodeName, input.role), installStdin(TOKEN, input));
}

/** Writes a host file and copies it onto the VM (SFTP, as the login user, like CopyToRemote). */
async function put(name: string, content: string | Buffer, remotePath: string, mode = 0o644): Promise<void> {
  const path = join(local, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  await theVm().copy(path, remotePath);
}

test.serial(
  "wait-cloud-init.sh, shipped on stdin as the login user, returns once cloud-init has finished",
  async (t) => {
    const r = await theVm().ssh(waitCommand("node-1", 600), nodeScript("wait-cloud-init.sh").text);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /^cilium-lab\[node-1\]: cloud-init finished \(status: done\) after \d+s$/m);
    const status = await theVm().ssh("cloud-init status");
    t.is(status.stdout.trim(), "status: done");
    t.log(`boot to SSH: ${theVm().bootSeconds}s; ${r.stderr.trim()}`);
  },
);

test.serial(
  "prepare-node.sh finds a lab node ready, repairs a lost sysctl and module in the running kernel, and a third run changes nothing",
  async (t) => {
    const vm = theVm();
    const line = prepareCommand({ node: "node-1", nodeIp: vm.ip, modules: KERNEL_MODULES, sysctls: SYSCTLS });
    const script = nodeScript("prepare-node.sh").text;

    const first = await vm.ssh(line, script);
    t.is(first.code, 0, first.stderr);
    t.notRegex(first.stderr, /fixed:/, "cloud-init should already have applied the nodes layer's modules and sysctls");
    for (const [key, value] of SYSCTLS) {
      t.true(first.stderr.includes(`cilium-lab[node-1]: ok: ${key} = ${value}\n`), key);
    }
    t.true(first.stderr.includes(`cilium-lab[node-1]: ok: ${vm.ip} is on eth0\n`));
    t.true(
      first.stderr.includes("cilium-lab[node-1]: warning: no IPv4 default route"),
      "the isolated test network has no default route",
    );

    // lose what a broken cloud-init would not have applied.
    const broken = await vm.ssh(
      "sudo sysctl -q -w net.ipv4.conf.all.rp_filter=2 && sudo modprobe -r geneve && ! test -d /sys/module/geneve",
    );
    t.is(broken.code, 0, broken.stderr);
    const second = await vm.ssh(line, script);
    t.is(second.code, 0, second.stderr);
    t.deepEqual(
      second.stderr.split("\n").filter((l) => l.includes("fixed:")),
      [
        "cilium-lab[node-1]: fixed: loaded kernel module geneve",
        "cilium-lab[node-1]: fixed: net.ipv4.conf.all.rp_filter = 0 (was 2)",
      ],
    );

    const third = await vm.ssh(line, script);
    t.is(third.code, 0, third.stderr);
    t.notRegex(third.stderr, /fixed:/);

    const stat = await vm.ssh(`stat -c '%U %a %n' ${STAGING_DIR} ${AIRGAP_STAGING_DIR} ${AIRGAP_STAGING_DIR}/images`);
    t.is(stat.stdout, `lab 700 ${STAGING_DIR}\nlab 700 ${AIRGAP_STAGING_DIR}\nlab 700 ${AIRGAP_STAGING_DIR}/images\n`);
  },
);

test.serial("prepare-node.sh refuses a --node-ip the node does not have, listing the addresses it has", async (t) => {
  const vm = theVm();
  const r = await vm.ssh(
    prepareCommand({ node: "node-1", nodeIp: "192.0.2.99", modules: [], sysctls: [] }),
    nodeScript("prepare-node.sh").text,
  );
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    new RegExp(
      '^cilium-lab error: node=node-1 step="check the node address" exit=1\n' +
        "  \\| --node-ip 192\\.0\\.2\\.99 is not assigned to any interface; IPv4 addresses found:\n" +
        "  \\| lo 127\\.0\\.0\\.1/8\n" +
        `  \\| eth0 ${vm.ip.replace(/\./g, "\\.")}/24\n` +
        "cilium-lab fix: check the libvirt DHCP reservation for this node's MAC \\(virsh net-dumpxml <network>\\) and the node's network-config\\.\n$",
      "m",
    ),
  );
});

test.serial(
  "install-k3s.sh online on a node without internet fails at the download with node, step, exit code and the air-gap fix, the token only in a 0600 file",
  async (t) => {
    const vm = theVm();
    await vm.copy(nodeScript("install-k3s.sh").path, INSTALL_SCRIPT_PATH);
    const line = installCommand(installInput());
    t.false(line.includes(TOKEN));
    const r = await runInstall();
    t.log(r.stderr);
    t.not(r.code, 0);
    t.regex(
      r.stderr,
      new RegExp(
        `^cilium-lab error: node=node-1 role=server step="download the k3s install script" exit=${r.code}$`,
        "m",
      ),
    );
    t.regex(
      r.stderr,
      /^ {2}\| curl could not download https:\/\/raw\.githubusercontent\.com\/k3s-io\/k3s\/v1\.26\.6%2Bk3s1\/install\.sh \(exit \d+\)$/m,
    );
    t.regex(
      r.stderr,
      /^cilium-lab fix: the node cannot download k3s \(no internet access from the lab network\?\)\. .*'pulumi config set cilium-lab:k3sAirgapDir <dir>'/m,
    );
    t.false(r.stderr.includes(TOKEN) || r.stdout.includes(TOKEN));
    const file = await vm.ssh(`sudo stat -c '%U %a' ${TOKEN_FILE} && sudo cat ${TOKEN_FILE}`);
    t.is(file.stdout, `root 600\n${TOKEN}\n`);
    // curl --retry 3 prints its error once per attempt: the tail shows it once, with the count.
    const tail = r.stderr.slice(r.stderr.indexOf("cilium-lab: last lines of output")).split("\n");
    t.regex(r.stderr, /^ {2}\| curl: \(\d+\) .+ \(×4\)$/m);
    t.true(
      tail.every((l, i) => i === 0 || l !== tail[i - 1] || l === ""),
      "no two consecutive lines of the tail are the same",
    );
  },
);

test.serial(
  "install-k3s.sh refuses arguments on stdin that do not belong to its command line's --args-sha256",
  async (t) => {
    const vm = theVm();
    const r = await vm.ssh(installCommand(installInput()), installStdin(TOKEN, installInput({ nodeIp: "192.0.2.1" })));
    t.is(r.code, 2, r.stderr);
    t.regex(
      r.stderr,
      /^cilium-lab error: node=node-1 role=server step="check arguments" exit=2\n {2}\| the arguments on the command line and on stdin hash to [0-9a-f]{12}, but --args-sha256 is '[0-9a-f]{12}' \(\d+ arguments on stdin after the token\)\n/m,
    );
  },
);

test.serial("install-k3s.sh refuses a copy of itself that is not the one the program hashed", async (t) => {
  const r = await runInstall({ scriptSha256: "0".repeat(64) });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^cilium-lab error: node=node-1 role=server step="verify this script" exit=1\n {2}\| \/var\/lib\/cilium-lab\/install-k3s\.sh has sha256 [0-9a-f]{64}, expected 0{64}\ncilium-lab fix: re-run 'pulumi up': the copy of install-k3s\.sh on the node is stale or damaged\.$/m,
  );
});

/** Fake air-gap files: a k3s that reports `version`, an installer that leaks the token on stderr and fails. */
async function stageFakeAirgap(version: string): Promise<void> {
  await put(
    "k3s",
    `#!/bin/sh\necho "k3s version ${version} (00000000)"\necho "go version go1.20.5"\n`,
    `${AIRGAP_STAGING_DIR}/k3s`,
    0o755,
  );
  await put(
    "install.sh",
    '#!/bin/sh\n# fake k3s installer (INSTALL_K3S_SKIP_DOWNLOAD)\necho "[INFO]  Skipping k3s download and verify"\n' +
      'echo "force-restart=${INSTALL_K3S_FORCE_RESTART:-}"\n' +
      'echo "[ERROR]  token was $(cat "$K3S_TOKEN_FILE") and secure token K10abc123::server:$(cat "$K3S_TOKEN_FILE")" >&2\nexit 3\n',
    `${AIRGAP_STAGING_DIR}/install.sh`,
  );
  await put(
    "k3s-airgap-images-amd64.tar.zst",
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
    `${AIRGAP_STAGING_DIR}/images/k3s-airgap-images-amd64.tar.zst`,
  );
}

test.serial(
  "install-k3s.sh in air-gap mode places the binary and images, then reports a failing install.sh with its exit code and output, the token redacted",
  async (t) => {
    const vm = theVm();
    await stageFakeAirgap(VERSION);
    const r = await runInstall({ source: "airgap" });
    t.log(r.stderr);
    t.is(r.code, 3, r.stderr);
    t.true(
      r.stderr.includes('cilium-lab error: node=node-1 role=server step="run install.sh (server, airgap)" exit=3\n'),
      r.stderr,
    );
    t.true(r.stderr.includes("  | [ERROR]  token was <redacted> and secure token K10<redacted>\n"), r.stderr);
    t.true(r.stderr.includes("cilium-lab fix: read 'sudo journalctl -u k3s' on the node.\n"), r.stderr);
    t.false(r.stderr.includes(TOKEN), "the token must never reach stderr");
    const placed = await vm.ssh(
      "stat -c '%a %U %n' /usr/local/bin/k3s /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst",
    );
    t.is(
      placed.stdout,
      "755 root /usr/local/bin/k3s\n644 root /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst\n",
    );
    // a new binary or image needs a k3s restart, which install.sh alone would skip.
    t.true(r.stderr.includes("(changed: true)\n") && r.stderr.includes("  | force-restart=true\n"), r.stderr);
    const again = await runInstall({ source: "airgap" });
    t.is(again.code, 3, again.stderr);
    t.true(again.stderr.includes("(changed: false)\n") && again.stderr.includes("  | force-restart=\n"), again.stderr);
  },
);

test.serial("install-k3s.sh refuses an air-gap k3s of another release, naming both versions", async (t) => {
  await stageFakeAirgap("v1.27.1+k3s1");
  const r = await runInstall({ source: "airgap" });
  t.is(r.code, 1);
  t.true(
    r.stderr.includes(
      'cilium-lab error: node=node-1 role=server step="check the air-gap k3s version" exit=1\n' +
        "  | the air-gap binary reports 'k3s version v1.27.1+k3s1 (00000000)', but cilium-lab:k3sVersion is v1.26.6+k3s1\n",
    ),
    r.stderr,
  );
  t.true(
    r.stderr.includes(
      "cilium-lab fix: download k3s v1.26.6+k3s1 into cilium-lab:k3sAirgapDir (https://github.com/k3s-io/k3s/releases/tag/v1.26.6%2Bk3s1)",
    ),
    r.stderr,
  );
});

test.serial(
  "install-k3s.sh as an agent whose server does not answer gives up after 60 s with the server URL and what to check",
  async (t) => {
    const vm = theVm();
    await stageFakeAirgap(VERSION);
    const absent = vm.ip.replace(/\.\d+$/, ".99");
    const started = Date.now();
    const r = await runInstall({ role: "agent", nodeName: "node-2", serverIp: absent, source: "airgap" });
    const seconds = (Date.now() - started) / 1000;
    t.is(r.code, 1, r.stderr);
    t.true(
      r.stderr.includes(
        `cilium-lab error: node=node-2 role=agent step="reach the k3s server" exit=1\n  | could not open a TCP connection to ${absent}:6443 for 60s (https://${absent}:6443)\n`,
      ),
      r.stderr,
    );
    t.true(
      r.stderr.includes(
        "cilium-lab fix: check that the server node's k3s runs ('sudo systemctl status k3s' there) and that nothing between the nodes filters TCP 6443.",
      ),
    );
    t.true(seconds >= 60 && seconds < 120, `${seconds}s`);
  },
);

test.serial(
  "read-kubeconfig.sh on a node without k3s fails within its timeout and prints nothing on stdout",
  async (t) => {
    const vm = theVm();
    const line = kubeconfigCommand("node-1").replace("--timeout 180", "--timeout 4");
    const r = await vm.ssh(line, nodeScript("read-kubeconfig.sh").text);
    t.is(r.code, 1);
    t.is(r.stdout, "");
    t.regex(
      r.stderr,
      /^cilium-lab error: node=node-1 step="read \/etc\/rancher\/k3s\/k3s\.yaml" exit=1\n {2}\| no kubeconfig with a server address after 4s; k3s is (inactive|unknown|not installed)\n/,
    );
    t.regex(r.stderr, /^cilium-lab fix: check the k3s server on node-1/m);
  },
);

test.serial("read-kubeconfig.sh prints k3s's kubeconfig, and only it, on stdout", async (t) => {
  const vm = theVm();
  const kubeconfig = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
  await put("k3s.yaml", kubeconfig, "/tmp/k3s.yaml");
  const staged = await vm.ssh("sudo install -D -m 0600 /tmp/k3s.yaml /etc/rancher/k3s/k3s.yaml && rm /tmp/k3s.yaml");
  t.is(staged.code, 0, staged.stderr);
  const r = await vm.ssh(kubeconfigCommand("node-1"), nodeScript("read-kubeconfig.sh").text);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, kubeconfig);
  t.is(r.stderr, "");
});

/**
 * A stand-in for k3s's air-gap files that installs successfully: a `k3s` that reports `VERSION` and
 * otherwise sleeps (a service that stays active), and an `install.sh` that does what k3s's does
 * with INSTALL_K3S_SKIP_DOWNLOAD=true, minus k3s: writes the unit (ExecStart with the k3s command),
 * its env file (the K3S_* variables) and the uninstall script, and (re)starts the unit only when
 * they changed or INSTALL_K3S_FORCE_RESTART=true.
 */
async function stageStandInAirgap(): Promise<void> {
  await put(
    "k3s",
    `#!/bin/sh\ncase "$1" in --version) echo "k3s version ${VERSION} (00000000)"; echo "go version go1.20.5" ;; *) exec sleep infinity ;; esac\n`,
    `${AIRGAP_STAGING_DIR}/k3s`,
    0o755,
  );
  await put(
    "install.sh",
    [
      "#!/bin/sh",
      "# stand-in for k3s's install.sh (INSTALL_K3S_SKIP_DOWNLOAD=true only)",
      "set -e",
      '[ "$INSTALL_K3S_SKIP_DOWNLOAD" = true ] || { echo "[ERROR]  the stand-in installs from air-gap files only" >&2; exit 1; }',
      'name=k3s; [ "$1" = agent ] && name=k3s-agent',
      "unit=/etc/systemd/system/$name.service",
      'before=$(cat "$unit" "$unit.env" 2>/dev/null | sha256sum)',
      'env | grep "^K3S_" | sort >"$unit.env"',
      'chmod 0600 "$unit.env"',
      `{ printf '[Unit]\\nDescription=stand-in %s\\n[Service]\\nType=simple\\nEnvironmentFile=-%s\\nExecStart=/usr/local/bin/k3s' "$name" "$unit.env"; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n[Install]\\nWantedBy=multi-user.target\\n'; } >"$unit"`,
      `printf '#!/bin/sh\\nset -x\\nsystemctl stop %s\\nsystemctl disable %s\\nrm -f %s %s.env\\nsystemctl daemon-reload\\nrm -rf /etc/rancher/k3s /var/lib/rancher/k3s /usr/local/bin/k3s\\nrm -f "$0"\\n' "$name" "$name" "$unit" "$unit" >"/usr/local/bin/$name-uninstall.sh"`,
      'chmod 0755 "/usr/local/bin/$name-uninstall.sh"',
      'after=$(cat "$unit" "$unit.env" | sha256sum)',
      "systemctl daemon-reload",
      'systemctl enable "$name" 2>/dev/null',
      'if [ "$before" = "$after" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ]; then',
      '  echo "[INFO]  No change detected so skipping service start"',
      "else",
      '  echo "[INFO]  systemd: Starting $name"',
      '  systemctl restart "$name"',
      "fi",
      "",
    ].join("\n"),
    `${AIRGAP_STAGING_DIR}/install.sh`,
  );
  await put(
    "k3s-airgap-images-amd64.tar.zst",
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
    `${AIRGAP_STAGING_DIR}/images/k3s-airgap-images-amd64.tar.zst`,
  );
}

/** Prepares the node and copies the scripts, as the prepare and copy steps do. */
async function prepareAndCopy(): Promise<void> {
  const vm = theVm();
  const prepared = await vm.ssh(
    prepareCommand({ node: "node-1", nodeIp: vm.ip, modules: KERNEL_MODULES, sysctls: SYSCTLS }),
    nodeScript("prepare-node.sh").text,
  );
  if (prepared.code !== 0) {
    throw new Error(`prepare-node.sh failed: ${prepared.stderr}`);
  }
  await vm.copy(nodeScript("install-k3s.sh").path, INSTALL_SCRIPT_PATH);
  await vm.copy(nodeScript("uninstall-k3s.sh").path, UNINSTALL_SCRIPT_PATH);
}

/** sha256sum of every file the prepare and copy steps own in the staging directory. */
async function stagedFiles(): Promise<string> {
  const r = await theVm().ssh(`cd ${STAGING_DIR} && find . -type f | sort | xargs sha256sum`);
  return r.stdout;
}

/** When the unit last became active (monotonic µs: changes at every start); fails when it is not running. */
async function invocation(unit: string): Promise<string> {
  const r = await theVm().ssh(`sudo systemctl show -p ActiveEnterTimestampMonotonic,MainPID --value ${unit}`);
  const [since, pid] = r.stdout.trim().split("\n");
  if (r.code !== 0 || !/^[1-9]\d*$/.test(since ?? "") || !/^[1-9]\d*$/.test(pid ?? "")) {
    throw new Error(`${unit} is not running (systemctl show: exit ${r.code}, ${JSON.stringify(r.stdout)} ${r.stderr})`);
  }
  return `${since} pid ${pid}`;
}

test.serial(
  "install → uninstall → install with the program's own command lines and stdin: the uninstall removes only what the install created, so the next install finds the copied scripts and air-gap files and succeeds",
  async (t) => {
    const vm = theVm();
    await prepareAndCopy();
    await stageStandInAirgap();
    const airgap = { source: "airgap" } as const;

    const first = await runInstall(airgap);
    t.is(first.code, 0, first.stderr);
    t.true(
      first.stderr.endsWith(
        `cilium-lab[node-1]: k3s ${VERSION} server installed (airgap) on VM cl-k3stest; k3s is active\n`,
      ),
      first.stderr,
    );
    const staged = await stagedFiles();
    t.regex(staged, /\.\/airgap\/k3s\n/);
    t.regex(staged, /\.\/install-k3s\.sh\n[\s\S]*\.\/uninstall-k3s\.sh\n/);

    // a stopped k3s whose configuration did not change stays stopped: install.sh skips the start.
    t.is((await vm.ssh("sudo systemctl stop k3s")).code, 0);
    const stopped = await runInstall(airgap);
    t.is(stopped.code, 0, stopped.stderr);
    t.true(stopped.stderr.endsWith("; k3s is inactive\n"), stopped.stderr);
    t.false(
      stopped.stderr.includes("unknown"),
      "systemctl is-active prints the state once, even when it exits non-zero",
    );

    const uninstall = await runUninstall(airgap);
    t.is(uninstall.code, 0, uninstall.stderr);
    t.true(uninstall.stderr.includes("cilium-lab[node-1]: k3s (server) uninstalled\n"), uninstall.stderr);
    t.true(
      uninstall.stderr.includes(
        `cilium-lab[node-1]: removed the install step's files (${TOKEN_FILE} /etc/rancher/k3s/cilium-lab-kube-proxy-replacement ${STAGING_DIR}/install.sh ${STAGING_DIR}/install.sh.tmp); kept ${STAGING_DIR} and the copied scripts and air-gap files\n`,
      ),
      uninstall.stderr,
    );
    t.is(
      (
        await vm.ssh(
          `sudo test ! -e ${TOKEN_FILE} && test ! -e /etc/systemd/system/k3s.service && test ! -e /usr/local/bin/k3s`,
        )
      ).code,
      0,
    );
    t.is(await stagedFiles(), staged, "the copy steps' files are unchanged");

    const again = await runInstall(airgap);
    t.is(again.code, 0, again.stderr);
    t.true(again.stderr.endsWith("; k3s is active\n"), again.stderr);

    const done = await runUninstall(airgap);
    t.is(done.code, 0, done.stderr);
    const twice = await runUninstall(airgap);
    t.is(twice.code, 0, twice.stderr);
    t.true(
      twice.stderr.includes(
        "cilium-lab[node-1]: k3s (server) is not installed (/usr/local/bin/k3s-uninstall.sh is absent); nothing to uninstall\n",
      ),
      twice.stderr,
    );
  },
);

test.serial(
  "online: after an uninstall the next install runs the copied script again and stops where it stopped before (no internet), not at a missing file",
  async (t) => {
    await prepareAndCopy();
    const before = await runInstall();
    t.regex(before.stderr, /step="download the k3s install script"/);
    const uninstall = await runUninstall();
    t.is(uninstall.code, 0, uninstall.stderr);
    const after = await runInstall();
    t.not(after.code, 127, after.stderr);
    t.is(after.code, before.code, after.stderr);
    t.regex(
      after.stderr,
      new RegExp(
        `^cilium-lab error: node=node-1 role=server step="download the k3s install script" exit=${before.code}$`,
        "m",
      ),
    );
  },
);

test.serial(
  "switching kubeProxyReplacement on restarts an agent whose unit did not change and removes kube-proxy's KUBE-* iptables rules, keeping Cilium's; a re-run changes nothing",
  async (t) => {
    const vm = theVm();
    await prepareAndCopy();
    await stageStandInAirgap();
    await installHostIptables(vm, local);
    // the agent checks that the server's API port answers before installing: a stand-in listener.
    const api = await vm.ssh(
      `sudo systemd-run --unit=cl-fake-k3s-api --collect python3 -m http.server 6443 --bind ${vm.ip} >/dev/null 2>&1`,
    );
    t.is(api.code, 0, api.stderr);
    t.teardown(() => void vm.ssh("sudo systemctl stop cl-fake-k3s-api"));
    const agent = (kpr: boolean): Partial<InstallInput> => ({
      role: "agent",
      nodeName: "node-2",
      source: "airgap",
      kubeProxyReplacement: kpr,
    });

    const off = await runInstall(agent(false));
    t.is(off.code, 0, off.stderr);
    t.true(off.stderr.endsWith("; k3s-agent is active\n"), off.stderr);
    const started = await invocation("k3s-agent");

    // what kube-proxy (iptables mode) leaves behind, beside a Cilium chain.
    const rules = [
      "iptables -t nat -N KUBE-SERVICES",
      "iptables -t nat -N KUBE-NODEPORTS",
      "iptables -t nat -N KUBE-SVC-NPX46M4PTMTKRN6Y",
      "iptables -t nat -A PREROUTING -m comment --comment 'kubernetes service portals' -j KUBE-SERVICES",
      "iptables -t nat -A OUTPUT -m comment --comment 'kubernetes service portals' -j KUBE-SERVICES",
      "iptables -t nat -A KUBE-SERVICES -d 10.43.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y",
      "iptables -t filter -N KUBE-SERVICES",
      "iptables -t filter -A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES",
      "iptables -t nat -N CILIUM_POST_nat",
      "iptables -t nat -A POSTROUTING -m comment --comment 'cilium-feeder: CILIUM_POST_nat' -j CILIUM_POST_nat",
      "ip6tables -t nat -N KUBE-SERVICES",
    ];
    const added = await vm.ssh(rules.map((r) => `sudo ${r}`).join(" && "));
    t.is(added.code, 0, added.stderr);

    const on = await runInstall(agent(true));
    t.is(on.code, 0, on.stderr);
    t.true(
      on.stderr.includes("cilium-lab[node-2]: kube-proxy replacement changes from false to true: k3s-agent restarts\n"),
      on.stderr,
    );
    t.true(
      on.stderr.includes("cilium-lab[node-2]: removed kube-proxy's iptables rules (4 KUBE-* chains)\n"),
      on.stderr,
    );
    t.true(
      on.stderr.includes("cilium-lab[node-2]: removed kube-proxy's ip6tables rules (1 KUBE-* chains)\n"),
      on.stderr,
    );
    t.not(await invocation("k3s-agent"), started, "the agent restarted, so it takes the server's kube-proxy setting");
    const saved = await vm.ssh("sudo iptables-save && sudo ip6tables-save");
    t.notRegex(saved.stdout, /KUBE-/);
    t.regex(saved.stdout, /^:CILIUM_POST_nat - \[0:0\]$/m);
    t.regex(saved.stdout, /^-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat$/m);
    t.is((await vm.ssh("cat /etc/rancher/k3s/cilium-lab-kube-proxy-replacement")).stdout, "true\n");

    const restarted = await invocation("k3s-agent");
    const rerun = await runInstall(agent(true));
    t.is(rerun.code, 0, rerun.stderr);
    t.false(rerun.stderr.includes("restarts"), rerun.stderr);
    t.false(rerun.stderr.includes("removed kube-proxy's"), rerun.stderr);
    t.is(await invocation("k3s-agent"), restarted);

    const uninstall = await runUninstall(agent(true));
    t.is(uninstall.code, 0, uninstall.stderr);
  },
);
