/**
 * A minimal real VM for the k3s layer's script tests: one domain of the project's test image
 * (`scripts/dev/build-test-image.sh`) on its own isolated libvirt network, booted under TCG, reachable
 * over SSH with a generated user key and a pinned host key injected through cloud-init. Its seed is
 * rendered by the nodes layer's own renderers (infra/nodes/cloud-init.ts), so the VM is configured
 * exactly like a lab node: same user, host key handling, kernel modules and sysctls.
 *
 * Plain `virsh` and `cloud-localds`, and the libvirt layer's storage helpers for the disks
 * (test-vm-disks.ts): everything on the host goes through libvirt, so this runs as root or as an
 * unprivileged member of group libvirt. Everything is named `cl-k3stest-<random>` (network, pool,
 * domain) and removed by `destroy()`; the test image stays in the lab's shared base pool.
 *
 * The network is isolated (no `<forward>`) on purpose: the nodes then have no internet whatever the
 * host has, so "online install without internet" fails the same way everywhere.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

import { LAB_USER } from "../../../infra/nodes/cloud-init";
import { consoleTail, makeDisks, removePoolSync, type DiskPlan, type VmDisks } from "./test-vm-disks";

const URI = "qemu:///system";
const USER = LAB_USER;
const REPO = resolve(__dirname, "../../..");

/** The result of running a command over SSH. */
export interface SshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A booted test VM. */
export interface TestVm {
  /** The VM's address on the test network. */
  readonly ip: string;
  /** The login user (passwordless sudo). */
  readonly user: string;
  /** The node's hostname, as cloud-init sets it. */
  readonly hostname: string;
  /** `ssh-ed25519 AAAA…`: the host key injected at creation, pinned by every connection. */
  readonly hostKey: string;
  /** Seconds from `virsh start` to the first successful SSH command. */
  readonly bootSeconds: number;
  /** Runs `command` through the login shell over SSH (as remote.Command does), `stdin` piped in. */
  ssh(command: string, stdin?: string): Promise<SshResult>;
  /** Copies a host file to the VM over SFTP (as remote.CopyToRemote does). */
  copy(localPath: string, remotePath: string): Promise<void>;
  /** Removes the domain, network and files. Safe to call more than once. */
  destroy(): void;
}

function run(file: string, args: readonly string[], input?: string): string {
  return execFileSync(file, args, {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C" },
  });
}

function virsh(...args: string[]): string {
  return run("virsh", ["-q", "-c", URI, ...args]);
}

/** Fails with what is missing and how to get it. */
function preflight(): void {
  const tools: Record<string, string> = {
    virsh: "libvirt-clients",
    "cloud-localds": "cloud-image-utils",
    ssh: "openssh-client",
    scp: "openssh-client",
    "ssh-keygen": "openssh-client",
  };
  const missing = Object.entries(tools)
    .filter(([tool]) => {
      try {
        run("sh", ["-c", `command -v ${tool}`]);
        return false;
      } catch {
        return true;
      }
    })
    .map(([, pkg]) => pkg);
  if (missing.length > 0) {
    throw new Error(
      `the test VM needs ${[...new Set(missing)].join(", ")}: apt-get install -y ${[...new Set(missing)].join(" ")}`,
    );
  }
  try {
    virsh("version");
  } catch (err) {
    throw new Error(`cannot reach libvirt at ${URI}. Fix: bash .ci/host-setup.sh (starts virtlogd and libvirtd).`, {
      cause: err,
    });
  }
}

/** The test image: TEST_IMAGE, else built or taken from the cache by the project's own script. */
function testImage(): string {
  if (process.env.TEST_IMAGE) {
    return process.env.TEST_IMAGE;
  }
  let out: string;
  try {
    out = run("bash", [join(REPO, "scripts/dev/build-test-image.sh")]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(
      `scripts/dev/build-test-image.sh failed; build the test image first (as root): bash scripts/dev/build-test-image.sh\n${stderr.slice(-2000)}`,
      {
        cause: err,
      },
    );
  }
  const image = /^TEST_IMAGE=(.+)$/m.exec(out)?.[1];
  if (!image) {
    throw new Error(`scripts/dev/build-test-image.sh printed no TEST_IMAGE= line:\n${out}`);
  }
  return image;
}

/** A /24 in 192.168.200–249 that no host route, address or libvirt network uses. */
function freeSubnet(): string {
  const used = run("ip", ["-4", "route", "show", "table", "all"]) + run("ip", ["-4", "-o", "addr", "show"]);
  const nets = virsh("net-list", "--all", "--name")
    .split("\n")
    .map((n) => n.trim())
    .filter((n) => n !== "");
  const xml = nets.map((n) => virsh("net-dumpxml", n)).join("\n");
  for (let third = 200; third < 250; third++) {
    const prefix = `192.168.${third}.`;
    if (!used.includes(prefix) && !xml.includes(prefix)) {
      return `192.168.${third}`;
    }
  }
  throw new Error(
    "no free 192.168.200-249.0/24 for the test network; remove unused libvirt networks (virsh net-list --all)",
  );
}

// VMs still defined by this process, removed at exit even when the after hook never runs: ava
// stops a timed-out test file with SIGTERM, which skips `after.always` hooks.
const live = new Set<() => void>();
let exitHooked = false;
function destroyOnExit(destroy: () => void): void {
  live.add(destroy);
  if (exitHooked) {
    return;
  }
  exitHooked = true;
  const destroyAll = (): void => {
    for (const d of [...live]) {
      d();
    }
  };
  process.on("exit", destroyAll);
  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const) {
    process.once(signal, () => {
      destroyAll();
      process.exit(code);
    });
  }
}

/** The VM's names and addresses: everything is named `cl-k3stest-<id>`. */
interface VmPlan {
  readonly name: string;
  readonly id: string;
  readonly hostname: string;
  readonly keyDir: string;
  readonly subnet: string;
  readonly ip: string;
  readonly mac: string;
}

/** Undefines the domain and the network (when defined), removes the VM's pool and files; idempotent. */
function destroyer(plan: VmPlan): {
  destroy: () => void;
  defined: { network: boolean; domain: boolean; pool: boolean };
} {
  const defined = { network: false, domain: false, pool: false };
  const quietly = (...args: string[]): void => {
    try {
      virsh(...args);
    } catch {
      // already stopped or gone
    }
  };
  const destroy = (): void => {
    if (defined.domain) {
      quietly("destroy", plan.name);
      quietly("undefine", plan.name, "--nvram");
    }
    if (defined.network) {
      quietly("net-destroy", plan.name);
      quietly("net-undefine", plan.name);
    }
    if (defined.pool) {
      removePoolSync(URI, plan.name);
    }
    defined.network = false;
    defined.domain = false;
    defined.pool = false;
    rmSync(plan.keyDir, { recursive: true, force: true });
    live.delete(destroy);
  };
  return { destroy, defined };
}

/** The login key (ours) and the node's host key (injected, then pinned in known_hosts). */
function makeKeys(plan: VmPlan): { userPub: string; hostPriv: string; hostPub: string; hostKey: string } {
  const { keyDir, hostname, ip } = plan;
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cl-k3stest", "-f", join(keyDir, "id")]);
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "root@" + hostname, "-f", join(keyDir, "host")]);
  const userPub = readFileSync(join(keyDir, "id.pub"), "utf8").trim();
  const hostPriv = readFileSync(join(keyDir, "host"), "utf8");
  const hostPub = readFileSync(join(keyDir, "host.pub"), "utf8").trim();
  const hostKey = hostPub.split(" ").slice(0, 2).join(" ");
  writeFileSync(join(keyDir, "known_hosts"), `${ip} ${hostKey}\n`, { mode: 0o600 });
  return { userPub, hostPriv, hostPub, hostKey };
}

/** The isolated network XML: no `<forward>`, one DHCP reservation for the VM. */
function networkXml({ name, id, subnet, mac, ip }: VmPlan): string {
  return (
    `<network><name>${name}</name><bridge name='clk3s${id}'/>` +
    `<ip address='${subnet}.1' netmask='255.255.255.0'><dhcp><range start='${subnet}.100' end='${subnet}.200'/>` +
    `<host mac='${mac}' ip='${ip}'/></dhcp></ip></network>`
  );
}

/** The domain XML: TCG (KVM hangs guests on our machines), serial console to `console`. */
function domainXml({ name, mac }: VmPlan, { disk, seed, console }: VmDisks): string {
  return (
    `<domain type='qemu'><name>${name}</name><memory unit='MiB'>1024</memory><vcpu>1</vcpu>` +
    `<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>` +
    `<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>` +
    `<devices>` +
    `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>` +
    `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${seed}'/><target dev='vdb' bus='virtio'/><readonly/></disk>` +
    `<interface type='network'><source network='${name}'/><mac address='${mac}'/><model type='virtio'/></interface>` +
    `<serial type='file'><source path='${console}'/><target port='0'/></serial><console type='file'><source path='${console}'/><target type='serial' port='0'/></console>` +
    `</devices></domain>`
  );
}

/** `ssh` and `scp` to the VM as the login user, with its pinned host key. */
function sshClient({ keyDir, ip }: VmPlan): Pick<TestVm, "ssh" | "copy"> {
  const sshArgs = [
    "-q",
    "-i",
    join(keyDir, "id"),
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${join(keyDir, "known_hosts")}`,
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
  ];
  const ssh = (command: string, stdin?: string): Promise<SshResult> =>
    new Promise((done, reject) => {
      const child = spawn("ssh", [...sshArgs, `${USER}@${ip}`, command], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(stdin ?? "");
    });
  const copy = async (localPath: string, remotePath: string): Promise<void> => {
    await promisify(execFile)("scp", [
      ...sshArgs.filter((a) => a !== "-q"),
      "-q",
      localPath,
      `${USER}@${ip}:${remotePath}`,
    ]);
  };
  return { ssh, copy };
}

/** Waits for SSH with the pinned host key; fails with the last ssh error and the console tail. */
async function waitForSsh(
  plan: VmPlan,
  ssh: TestVm["ssh"],
  wait: { started: number; timeoutSeconds: number },
  disks: DiskPlan,
): Promise<void> {
  const deadline = wait.started + wait.timeoutSeconds * 1000;
  for (;;) {
    const last = await ssh("true");
    if (last.code === 0) {
      return;
    }
    if (Date.now() > deadline) {
      const tail = await consoleTail(disks);
      throw new Error(
        `test VM ${plan.name} (${plan.ip}, MAC ${plan.mac}) did not answer SSH within ${wait.timeoutSeconds}s; last ssh: exit ${last.code} ${last.stderr.trim()}\nconsole tail:\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

/** Boots one test VM; rejects with the console tail if SSH never answers within `timeoutSeconds`. */
export async function bootTestVm(options: { hostname?: string; timeoutSeconds?: number } = {}): Promise<TestVm> {
  preflight();
  const image = testImage();
  const id = randomBytes(3).toString("hex");
  const name = `cl-k3stest-${id}`;
  const keyDir = mkdtempSync(join(tmpdir(), "cl-k3stest-keys-"));
  chmodSync(keyDir, 0o700);
  const subnet = freeSubnet();
  const plan: VmPlan = {
    name,
    id,
    hostname: options.hostname ?? "node-1",
    keyDir,
    subnet,
    ip: `${subnet}.11`,
    mac: `52:54:00:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
  };
  const timeoutSeconds = options.timeoutSeconds ?? 600;
  const { destroy, defined } = destroyer(plan);
  destroyOnExit(destroy);

  try {
    const keys = makeKeys(plan);
    writeFileSync(join(keyDir, "net.xml"), networkXml(plan));
    virsh("net-define", join(keyDir, "net.xml"));
    defined.network = true;
    virsh("net-start", name);

    const diskPlan: DiskPlan = { uri: URI, name, hostname: plan.hostname, mac: plan.mac, keyDir };
    defined.pool = true;
    const disks = await makeDisks(diskPlan, image, keys);
    writeFileSync(join(keyDir, "domain.xml"), domainXml(plan, disks));
    virsh("define", join(keyDir, "domain.xml"));
    defined.domain = true;
    const started = Date.now();
    virsh("start", name);

    const { ssh, copy } = sshClient(plan);
    await waitForSsh(plan, ssh, { started, timeoutSeconds }, diskPlan);
    const bootSeconds = Math.round((Date.now() - started) / 1000);
    return { ip: plan.ip, user: USER, hostname: plan.hostname, hostKey: keys.hostKey, bootSeconds, ssh, copy, destroy };
  } catch (err) {
    destroy();
    throw err;
  }
}
