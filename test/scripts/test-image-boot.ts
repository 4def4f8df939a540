/**
 * The test image's boot test (test-image.vm.test.ts): one TCG domain from an overlay on the image
 * with a NoCloud seed, as the provider will boot a node, reachable over SSH with a generated key.
 * Everything is named cl-test-img-<run>-* on 192.168.198.0/24; a lock file keeps concurrent runs on
 * one host from booting at the same time.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { alive, sleep } from "../support/control-plane-processes";

const execFileAsync = promisify(execFile);

const URI = "qemu:///system";
export const PREFIX = "cl-test-img-";
export const POOL_DIR = "/var/lib/libvirt/images";
export const QEMU_LOG_DIR = "/var/log/libvirt/qemu";
const NET_CIDR = "192.168.198.0/24";
const GATEWAY = "192.168.198.1";
export const NODE_IP = "192.168.198.10";
export const USER = "ubuntu";
const OVERLAY_SIZE = 4 * 1024 ** 3;
export const BOOT_BUDGET_MS = 180_000;
const LOCK_FILE = "/run/lock/cilium-lab-test-image-boot.lock";
export const LOCK_WAIT_MS = 300_000;

/** Runs a tool with LC_ALL=C; its stdout, or an error with the exit code (or timeout) and stderr. */
export async function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, {
      timeout: timeoutMs,
      env: { ...process.env, LC_ALL: "C" },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; killed?: boolean };
    const why = e.killed === true ? `timed out after ${timeoutMs} ms` : `exit code ${String(e.code)}`;
    throw new Error(`${file} ${args.join(" ")} failed (${why}): ${(e.stderr ?? "").trim()}`, {
      cause: err,
    });
  }
}

const virsh = (...args: string[]): Promise<string> => run("virsh", ["-q", "-c", URI, ...args]);

/** The names of every domain (`list`) or network (`net-list`), running or not. */
export async function virshNames(kind: "list" | "net-list"): Promise<string[]> {
  const out = await virsh(kind, "--all", "--name");
  return out
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The booted node: its names, keys and how long SSH took. */
export interface BootedNode {
  readonly domain: string;
  readonly hostname: string;
  readonly clientKey: string;
  readonly hostPublicKey: string;
  readonly workDir: string;
  readonly sshSeconds: number;
}

/** This run's id: every object is named `cl-test-img-<runId>-…`. */
export const runId = randomBytes(2).toString("hex");
const names = {
  domain: `${PREFIX}${runId}-node`,
  network: `${PREFIX}${runId}-net`,
  bridge: `cltimg-${runId}`,
  workDir: path.join(POOL_DIR, `${PREFIX}${runId}`),
};
let lockHeld = false;

/**
 * Removes the cl-test-img-* domains, networks, work dirs and qemu logs whose names start with
 * `prefix`: this run's (`${PREFIX}${runId}`), or all of them (leftovers of crashed runs) while we
 * hold the lock.
 */
export async function removeTestObjects(prefix: string): Promise<void> {
  for (const domain of (await virshNames("list")).filter((n) => n.startsWith(prefix))) {
    await virsh("destroy", domain).catch(() => undefined);
    await virsh("undefine", domain, "--nvram", "--managed-save");
  }
  for (const network of (await virshNames("net-list")).filter((n) => n.startsWith(prefix))) {
    await virsh("net-destroy", network).catch(() => undefined);
    await virsh("net-undefine", network);
  }
  for (const dir of [POOL_DIR, QEMU_LOG_DIR]) {
    for (const entry of await fs.readdir(dir).catch(() => [])) {
      if (entry.startsWith(prefix)) {
        await fs.rm(path.join(dir, entry), { recursive: true, force: true });
      }
    }
  }
}

/**
 * One boot of this test per host at a time: runs share the prefix and the subnet. A lock file
 * holding our pid; a dead holder's lock is taken over. Waits at most LOCK_WAIT_MS.
 */
async function acquireLock(): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await fs.writeFile(LOCK_FILE, `${process.pid}\n`, { flag: "wx" });
      lockHeld = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw err;
      }
    }
    const holder = Number((await fs.readFile(LOCK_FILE, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      await fs.rm(LOCK_FILE, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `another run of this test (pid ${holder}) holds ${LOCK_FILE} after ${LOCK_WAIT_MS / 1000} s. ` +
          `Fix: wait for it to finish, or remove the file if pid ${holder} is not a test run.`,
      );
    }
    await sleep(5_000);
  }
}

export async function releaseLock(): Promise<void> {
  if (lockHeld) {
    await fs.rm(LOCK_FILE, { force: true });
    lockHeld = false;
  }
}

/**
 * Fails when a host route or another libvirt network already uses our /24 (libvirt itself refuses
 * only an exact route match; a partial overlap would break host routing).
 */
async function assertSubnetFree(): Promise<void> {
  const inSubnet = /(^|[\s'])192\.168\.198\.\d+/;
  const route = (await run("ip", ["-4", "route", "show", "table", "all"])).split("\n").find((l) => inSubnet.test(l));
  if (route !== undefined) {
    throw new Error(
      `host route "${route.trim()}" overlaps ${NET_CIDR}, which this test needs. Fix: remove that route or interface.`,
    );
  }
  for (const network of await virshNames("net-list")) {
    const address = /<ip [^>]*address='([\d.]+)'/.exec(await virsh("net-dumpxml", network))?.[1];
    if (address !== undefined && inSubnet.test(address)) {
      throw new Error(
        `libvirt network "${network}" (${address}) already uses ${NET_CIDR}, which this test needs. ` +
          `Fix: virsh net-destroy ${network}; virsh net-undefine ${network}.`,
      );
    }
  }
}

async function sshKeygen(file: string, comment: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return (await fs.readFile(`${file}.pub`, "utf8")).trim();
}

export function sshArgs(node: Pick<BootedNode, "clientKey">, knownHosts: string, strict: boolean): string[] {
  return [
    "-i",
    node.clientKey,
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    `StrictHostKeyChecking=${strict ? "yes" : "no"}`,
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "LogLevel=ERROR",
  ];
}

export async function ssh(node: BootedNode, command: string, timeoutMs = 30_000): Promise<string> {
  const args = sshArgs(node, "/dev/null", false);
  return (await run("ssh", [...args, `${USER}@${NODE_IP}`, command], timeoutMs)).trim();
}

async function consoleTail(workDir: string): Promise<string> {
  const text = await fs.readFile(path.join(workDir, "console.log"), "utf8").catch(() => "");
  return text.split("\n").slice(-20).join("\n");
}

/** The node's cloud-config: our client key, and the ed25519 host key it must present. */
function userData(clientPublicKey: string, hostPrivateKey: string, hostPublicKey: string): string {
  const indent = (s: string): string =>
    s
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n");
  return [
    "#cloud-config",
    "ssh_authorized_keys:",
    `  - ${clientPublicKey}`,
    "ssh_keys:",
    "  ed25519_private: |",
    indent(hostPrivateKey),
    `  ed25519_public: ${hostPublicKey}`,
    "",
  ].join("\n");
}

/** The NoCloud seed (user-data, meta-data, network-config) as `<workDir>/seed.iso`, 0600. */
async function writeSeed(
  workDir: string,
  node: { domain: string; hostname: string; mac: string },
  userDataText: string,
): Promise<string> {
  await fs.writeFile(path.join(workDir, "user-data"), userDataText, { mode: 0o600 });
  await fs.writeFile(
    path.join(workDir, "meta-data"),
    `instance-id: ${node.domain}\nlocal-hostname: ${node.hostname}\n`,
  );
  await fs.writeFile(
    path.join(workDir, "network-config"),
    [
      "version: 2",
      "ethernets:",
      "  eth0:",
      "    match:",
      `      macaddress: "${node.mac}"`,
      "    set-name: eth0",
      "    dhcp4: true",
      "",
    ].join("\n"),
  );
  const seed = path.join(workDir, "seed.iso");
  await run("cloud-localds", [
    "-N",
    path.join(workDir, "network-config"),
    seed,
    path.join(workDir, "user-data"),
    path.join(workDir, "meta-data"),
  ]);
  await fs.chmod(seed, 0o600);
  return seed;
}

/** The NAT network with one DHCP reservation for the node. */
function networkXml(network: string, bridge: string, mac: string, hostname: string): string {
  return `<network>
  <name>${network}</name>
  <forward mode='nat'/>
  <bridge name='${bridge}' stp='off'/>
  <ip address='${GATEWAY}' netmask='255.255.255.0'>
    <dhcp><host mac='${mac}' name='${hostname}' ip='${NODE_IP}'/></dhcp>
  </ip>
</network>
`;
}

/** A hand-written TCG domain: the overlay, the seed, one NIC, the serial console to a file. */
function domainXml(
  domain: string,
  files: { disk: string; seed: string; console: string },
  network: string,
  mac: string,
): string {
  return `<domain type='qemu'>
  <name>${domain}</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <cpu mode='custom' match='exact'>
    <model fallback='forbid'>qemu64</model><feature policy='disable' name='svm'/>
  </cpu>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='${files.disk}'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file='${files.seed}'/><target dev='vdb' bus='virtio'/><readonly/>
    </disk>
    <interface type='network'>
      <source network='${network}'/><mac address='${mac}'/><model type='virtio'/>
    </interface>
    <serial type='file'><source path='${files.console}'/><target port='0'/></serial>
  </devices>
</domain>
`;
}

/** Waits up to BOOT_BUDGET_MS for SSH; fails with the leases, the host's load and the console tail. */
async function waitForSsh(node: Omit<BootedNode, "sshSeconds">, started: number, mac: string): Promise<BootedNode> {
  const { domain, workDir } = node;
  let lastError = "";
  while (Date.now() - started < BOOT_BUDGET_MS) {
    try {
      await run("ssh", [...sshArgs(node, "/dev/null", false), `${USER}@${NODE_IP}`, "true"], 15_000);
      return { ...node, sshSeconds: (Date.now() - started) / 1000 };
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(2_000);
  }
  const leases = await virsh("net-dhcp-leases", names.network).catch((e: Error) => e.message);
  // TCG is CPU-bound: other guests or builds on the host stretch the boot, so say what else ran.
  const running = (await virsh("list", "--name")).split("\n").filter((n) => n.trim() !== "");
  throw new Error(
    `${domain} (MAC ${mac}, reserved ${NODE_IP}) did not answer SSH as ${USER} within ` +
      `${BOOT_BUDGET_MS / 1000} s. Last ssh error: ${lastError}\nLeases on ${names.network}: ${leases.trim()}\n` +
      `Host: load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} on ${os.cpus().length} CPUs; ` +
      `running domains: ${running.join(", ")}. Fix: boot one TCG guest at a time on a quiet host.\n` +
      `Console tail:\n${await consoleTail(workDir)}`,
  );
}

/**
 * Boots one TCG domain from an overlay on `image` with a NoCloud seed (after taking the lock and
 * removing leftovers) and waits for SSH with our generated key.
 */
export async function bootNode(image: string): Promise<BootedNode> {
  await virsh("version").catch((err: Error) => {
    throw new Error(`Cannot reach libvirt at ${URI}: ${err.message}. Fix: bash .ci/host-setup.sh (as root).`, {
      cause: err,
    });
  });
  await acquireLock();
  await removeTestObjects(PREFIX);
  await assertSubnetFree();
  const { domain, network, bridge, workDir } = names;
  const hostname = `${PREFIX}${runId}-host`;
  const mac = `52:54:00:c7:${runId.slice(0, 2)}:${runId.slice(2, 4)}`;

  // The qemu user must traverse the dir; seed and keys stay 0600 (libvirt relabels the seed).
  await fs.mkdir(workDir, { mode: 0o711 });
  await fs.chmod(workDir, 0o711);
  const base = path.join(workDir, "base.qcow2");
  const disk = path.join(workDir, "disk.qcow2");
  await fs.copyFile(image, base);
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, disk, String(OVERLAY_SIZE)]);
  const clientKey = path.join(workDir, "id_ed25519");
  const clientPublicKey = await sshKeygen(clientKey, `${PREFIX}client`);
  const hostKey = path.join(workDir, "ssh_host_ed25519_key");
  const hostPublicKey = await sshKeygen(hostKey, `${PREFIX}host`);
  const hostPrivateKey = await fs.readFile(hostKey, "utf8");
  const seed = await writeSeed(
    workDir,
    { domain, hostname, mac },
    userData(clientPublicKey, hostPrivateKey, hostPublicKey),
  );

  await fs.writeFile(path.join(workDir, "net.xml"), networkXml(network, bridge, mac, hostname));
  const console = path.join(workDir, "console.log");
  await fs.writeFile(path.join(workDir, "domain.xml"), domainXml(domain, { disk, seed, console }, network, mac));
  await virsh("net-define", path.join(workDir, "net.xml"));
  await virsh("net-start", network);
  await virsh("define", path.join(workDir, "domain.xml"));

  const started = Date.now();
  await virsh("start", domain);
  return waitForSsh({ domain, hostname, clientKey, hostPublicKey, workDir }, started, mac);
}
