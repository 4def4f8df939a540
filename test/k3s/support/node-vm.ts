/**
 * The k3s node-script VM suites' shared steps (test/k3s/node-scripts.vm.test.ts and
 * k3s-lifecycle.vm.test.ts): one booted test VM per suite, the install and uninstall steps run
 * exactly as K3sCluster runs them (command line from infra/k3s/args.ts, stdin with the token), the
 * scripts as the nodes get them (infra/node-scripts.ts: lib.sh in front), and the stand-in air-gap
 * files (no k3s binary can be obtained on our machines).
 */
import test from "ava";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  AIRGAP_STAGING_DIR,
  INSTALL_SCRIPT_PATH,
  STAGING_DIR,
  UNINSTALL_SCRIPT_PATH,
  installCommand,
  installStdin,
  prepareCommand,
  uninstallCommand,
  type InstallInput,
} from "../../../infra/k3s/args";
import { nodeScript } from "../../../infra/node-scripts";
import { KERNEL_MODULES, SYSCTLS } from "../../../infra/nodes/cloud-init";
import { bootTestVm, type SshResult, type TestVm } from "./test-vm";

export const TOKEN = "cl-test-token-3f9a1c7e5b2d4086";
export const VERSION = "v1.26.6+k3s1";

let vm: TestVm | undefined;
let local = "";

// Boot budget: ~1 min on an idle 2-core host under TCG, but well over 10 min when other VMs and
// builds share the cores; CILIUM_LAB_TEST_BOOT_SECONDS overrides it.
const BOOT_SECONDS = Number(process.env.CILIUM_LAB_TEST_BOOT_SECONDS ?? 1500);

/**
 * Boots the suite's test VM before its first test (and removes it after the last): one VM per test
 * file, shared by its serial tests in order.
 */
export function useTestVm(): void {
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
}

/** The booted VM (throws when the before hook failed). */
export function theVm(): TestVm {
  if (!vm) {
    throw new Error("the test VM did not boot (see the before hook's error)");
  }
  return vm;
}

/** The install step's input for node-1 (the VM) with the given overrides. */
export function installInput(overrides: Partial<InstallInput> = {}): InstallInput {
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
export function runInstall(overrides: Partial<InstallInput> = {}, token = TOKEN): Promise<SshResult> {
  const input = installInput(overrides);
  return theVm().ssh(installCommand(input), installStdin(token, input));
}

/** Runs the install step's `delete` as pulumi-command does: with the step's stdin (it passes it to every run). */
export function runUninstall(overrides: Partial<InstallInput> = {}): Promise<SshResult> {
  const input = installInput(overrides);
  return theVm().ssh(uninstallCommand(input.nodeName, input.role), installStdin(TOKEN, input));
}

/** The host directory the suite writes its files into. */
export function localDir(): string {
  return local;
}

/** Writes a host file and copies it onto the VM (SFTP, as the login user, like CopyToRemote). */
export async function put(name: string, content: string | Buffer, remotePath: string, mode = 0o644): Promise<void> {
  const path = join(local, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  await theVm().copy(path, remotePath);
}

/** Fake air-gap files: a k3s that reports `version`, an installer that leaks the token on stderr and fails. */
export async function stageFakeAirgap(version: string): Promise<void> {
  await putAirgap(
    `#!/bin/sh\necho "k3s version ${version} (00000000)"\necho "go version go1.20.5"\n`,
    '#!/bin/sh\n# fake k3s installer (INSTALL_K3S_SKIP_DOWNLOAD)\necho "[INFO]  Skipping k3s download and verify"\n' +
      'echo "force-restart=${INSTALL_K3S_FORCE_RESTART:-}"\n' +
      'echo "[ERROR]  token was $(cat "$K3S_TOKEN_FILE") and secure token K10abc123::server:$(cat "$K3S_TOKEN_FILE")" >&2\nexit 3\n',
  );
}

/** The air-gap files a node gets: `k3s` (0755), `install.sh` and a zstd image tarball (magic bytes only). */
async function putAirgap(k3s: string, installer: string): Promise<void> {
  await put("k3s", k3s, `${AIRGAP_STAGING_DIR}/k3s`, 0o755);
  await put("install.sh", installer, `${AIRGAP_STAGING_DIR}/install.sh`);
  await put(
    "k3s-airgap-images-amd64.tar.zst",
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
    `${AIRGAP_STAGING_DIR}/images/k3s-airgap-images-amd64.tar.zst`,
  );
}

/**
 * A stand-in for k3s's air-gap files that installs successfully: a `k3s` that reports `VERSION` and
 * otherwise sleeps (a service that stays active), and an `install.sh` that does what k3s's does
 * with INSTALL_K3S_SKIP_DOWNLOAD=true, minus k3s: writes the unit (ExecStart with the k3s command),
 * its env file (the K3S_* variables) and the uninstall script, and (re)starts the unit only when
 * they changed or INSTALL_K3S_FORCE_RESTART=true.
 */
export async function stageStandInAirgap(): Promise<void> {
  await putAirgap(
    `#!/bin/sh\ncase "$1" in --version) echo "k3s version ${VERSION} (00000000)"; echo "go version go1.20.5" ;; *) exec sleep infinity ;; esac\n`,
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
  );
}

/** Prepares the node and copies the scripts, as the prepare and copy steps do. */
export async function prepareAndCopy(): Promise<void> {
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

/** {@link prepareAndCopy}, then the stand-in k3s's air-gap files: a node ready for a successful install. */
export async function prepareWithStandIn(): Promise<TestVm> {
  await prepareAndCopy();
  await stageStandInAirgap();
  return theVm();
}

/** sha256sum of every file the prepare and copy steps own in the staging directory. */
export async function stagedFiles(): Promise<string> {
  const r = await theVm().ssh(`cd ${STAGING_DIR} && find . -type f | sort | xargs sha256sum`);
  return r.stdout;
}

/** When the unit last became active (monotonic µs: changes at every start); fails when it is not running. */
export async function invocation(unit: string): Promise<string> {
  const r = await theVm().ssh(`sudo systemctl show -p ActiveEnterTimestampMonotonic,MainPID --value ${unit}`);
  const [since, pid] = r.stdout.trim().split("\n");
  if (r.code !== 0 || !/^[1-9]\d*$/.test(since ?? "") || !/^[1-9]\d*$/.test(pid ?? "")) {
    throw new Error(`${unit} is not running (systemctl show: exit ${r.code}, ${JSON.stringify(r.stdout)} ${r.stderr})`);
  }
  return `${since} pid ${pid}`;
}
