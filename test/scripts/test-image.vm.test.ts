// The Debian test image (scripts/dev/build-test-image.sh) stands in for the Ubuntu cloud image: these
// tests check its output contract and file, then boot one TCG domain from an overlay with a NoCloud
// seed, as the provider will, and log in with a generated key.
//
// Needs root, a running libvirtd (.ci/host-setup.sh) and TEST_IMAGE/TEST_IMAGE_SHA256 in the
// environment (`.ci/run` sets them). Everything is named cl-test-img-<run>-* on 192.168.198.0/24;
// a lock file keeps concurrent runs on one host from booting at the same time.
// Proof limit: one boot under TCG with a hand-written domain; the provider's own XML is tested
// elsewhere.
// Suffix .vm, the heaviest of its needs: it boots a VM; it also needs libvirtd and root.
import test from "ava";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const REPO = path.resolve(__dirname, "../..");
const BUILD_SCRIPT = path.join(REPO, "scripts/dev/build-test-image.sh");
const BUILD_HINT = 'eval "$(bash scripts/dev/build-test-image.sh)" (as root), or run .ci/run';
const URI = "qemu:///system";
const PREFIX = "cl-test-img-";
const POOL_DIR = "/var/lib/libvirt/images";
const QEMU_LOG_DIR = "/var/log/libvirt/qemu";
const NET_CIDR = "192.168.198.0/24";
const GATEWAY = "192.168.198.1";
const NODE_IP = "192.168.198.10";
const USER = "ubuntu";
const IMAGE_VIRTUAL_SIZE = 3 * 1024 ** 3;
const OVERLAY_SIZE = 4 * 1024 ** 3;
const BOOT_BUDGET_MS = 180_000;
const LOCK_FILE = "/run/lock/cilium-lab-test-image-boot.lock";
const LOCK_WAIT_MS = 300_000;
const CACHED_RUN_BUDGET_MS = 3_000;

interface TestImage {
  readonly image: string;
  readonly sha256: string;
}

/** The image from the environment, or an error naming the command that provides it. */
function requireTestImage(): TestImage {
  const image = process.env.TEST_IMAGE ?? "";
  const sha256 = process.env.TEST_IMAGE_SHA256 ?? "";
  if (image === "" || sha256 === "") {
    throw new Error(
      `TEST_IMAGE and TEST_IMAGE_SHA256 must be set (got TEST_IMAGE="${image}", ` +
        `TEST_IMAGE_SHA256="${sha256}"). Fix: ${BUILD_HINT}, then rerun the tests.`,
    );
  }
  return { image, sha256 };
}

async function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
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

async function virshNames(kind: "list" | "net-list"): Promise<string[]> {
  const out = await virsh(kind, "--all", "--name");
  return out
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// --- the script and the file -------------------------------------------------------------------

test("build-test-image.sh prints exactly TEST_IMAGE and TEST_IMAGE_SHA256 from cache within 3 s", async (t) => {
  const expected = requireTestImage();
  const started = Date.now();
  // Own process group, so a timeout also stops a build the script may have started.
  const child = spawn("bash", [BUILD_SCRIPT], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => {
    if (child.pid !== undefined) {
      process.kill(-child.pid, "SIGTERM");
    }
  }, 60_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(killer);
  const elapsedMs = Date.now() - started;

  t.is(code, 0, `build-test-image.sh exited ${String(code)} after ${elapsedMs} ms: ${stderr}`);
  t.is(
    stdout,
    `TEST_IMAGE=${expected.image}\nTEST_IMAGE_SHA256=${expected.sha256}\n`,
    `stdout differs from the environment; TEST_IMAGE is stale. Fix: ${BUILD_HINT}. stderr: ${stderr}`,
  );
  t.true(
    elapsedMs < CACHED_RUN_BUDGET_MS,
    `a cached run took ${elapsedMs} ms (budget ${CACHED_RUN_BUDGET_MS} ms); stderr: ${stderr}`,
  );
});

test("the image is a 3 GiB qcow2 without a backing file", async (t) => {
  const { image } = requireTestImage();
  t.true(path.isAbsolute(image), `TEST_IMAGE must be absolute (got "${image}")`);
  const info = JSON.parse(await run("qemu-img", ["info", "-U", "--output=json", image])) as Record<string, unknown>;
  t.is(info.format, "qcow2");
  t.is(info["virtual-size"], IMAGE_VIRTUAL_SIZE);
  t.is(info["backing-filename"], undefined);
  t.not(info["dirty-flag"], true);
});

test("SHA256SUMS beside the image lists the image's actual sha256", async (t) => {
  const { image, sha256 } = requireTestImage();
  const sums = await fs.readFile(path.join(path.dirname(image), "SHA256SUMS"), "utf8");
  t.deepEqual(
    sums.trim().split("\n"),
    [`${sha256}  ${path.basename(image)}`],
    "SHA256SUMS must hold one `<sha256>  <file>` line equal to TEST_IMAGE_SHA256",
  );
  t.is(await sha256File(image), sha256);
});

// --- one boot under TCG --------------------------------------------------------------------------

interface BootedNode {
  readonly domain: string;
  readonly hostname: string;
  readonly clientKey: string;
  readonly hostPublicKey: string;
  readonly workDir: string;
  readonly sshSeconds: number;
}

const runId = randomBytes(2).toString("hex");
const names = {
  domain: `${PREFIX}${runId}-node`,
  network: `${PREFIX}${runId}-net`,
  bridge: `cltimg-${runId}`,
  workDir: path.join(POOL_DIR, `${PREFIX}${runId}`),
};
let booted: BootedNode | undefined;
let bootError: Error | undefined;
let lockHeld = false;

/**
 * Removes the cl-test-img-* domains, networks, work dirs and qemu logs whose names start with
 * `prefix`: this run's (`${PREFIX}${runId}`), or all of them (leftovers of crashed runs) while we
 * hold the lock.
 */
async function removeTestObjects(prefix: string): Promise<void> {
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
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
    if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
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

async function releaseLock(): Promise<void> {
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

function sshArgs(node: Pick<BootedNode, "clientKey">, knownHosts: string, strict: boolean): string[] {
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

async function ssh(node: BootedNode, command: string, timeoutMs = 30_000): Promise<string> {
  const args = sshArgs(node, "/dev/null", false);
  return (await run("ssh", [...args, `${USER}@${NODE_IP}`, command], timeoutMs)).trim();
}

async function consoleTail(workDir: string): Promise<string> {
  const text = await fs.readFile(path.join(workDir, "console.log"), "utf8").catch(() => "");
  return text.split("\n").slice(-20).join("\n");
}

async function bootNode(image: string): Promise<BootedNode> {
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
  const indent = (s: string): string =>
    s
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n");

  await fs.writeFile(
    path.join(workDir, "user-data"),
    [
      "#cloud-config",
      "ssh_authorized_keys:",
      `  - ${clientPublicKey}`,
      "ssh_keys:",
      "  ed25519_private: |",
      indent(hostPrivateKey),
      `  ed25519_public: ${hostPublicKey}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await fs.writeFile(path.join(workDir, "meta-data"), `instance-id: ${domain}\nlocal-hostname: ${hostname}\n`);
  await fs.writeFile(
    path.join(workDir, "network-config"),
    [
      "version: 2",
      "ethernets:",
      "  eth0:",
      "    match:",
      `      macaddress: "${mac}"`,
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

  await fs.writeFile(
    path.join(workDir, "net.xml"),
    `<network>
  <name>${network}</name>
  <forward mode='nat'/>
  <bridge name='${bridge}' stp='off'/>
  <ip address='${GATEWAY}' netmask='255.255.255.0'>
    <dhcp><host mac='${mac}' name='${hostname}' ip='${NODE_IP}'/></dhcp>
  </ip>
</network>
`,
  );
  await fs.writeFile(
    path.join(workDir, "domain.xml"),
    `<domain type='qemu'>
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
      <driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file='${seed}'/><target dev='vdb' bus='virtio'/><readonly/>
    </disk>
    <interface type='network'>
      <source network='${network}'/><mac address='${mac}'/><model type='virtio'/>
    </interface>
    <serial type='file'><source path='${path.join(workDir, "console.log")}'/><target port='0'/></serial>
  </devices>
</domain>
`,
  );
  await virsh("net-define", path.join(workDir, "net.xml"));
  await virsh("net-start", network);
  await virsh("define", path.join(workDir, "domain.xml"));

  const started = Date.now();
  await virsh("start", domain);
  const node = { domain, hostname, clientKey, hostPublicKey, workDir };
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
  const leases = await virsh("net-dhcp-leases", network).catch((e: Error) => e.message);
  // TCG is CPU-bound: other guests or builds on the host stretch the boot, so say what else ran.
  const running = (await virsh("list", "--name")).split("\n").filter((n) => n.trim() !== "");
  throw new Error(
    `${domain} (MAC ${mac}, reserved ${NODE_IP}) did not answer SSH as ${USER} within ` +
      `${BOOT_BUDGET_MS / 1000} s. Last ssh error: ${lastError}\nLeases on ${network}: ${leases.trim()}\n` +
      `Host: load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} on ${os.cpus().length} CPUs; ` +
      `running domains: ${running.join(", ")}. Fix: boot one TCG guest at a time on a quiet host.\n` +
      `Console tail:\n${await consoleTail(workDir)}`,
  );
}

function requireBooted(): BootedNode {
  if (booted === undefined) {
    throw new Error(`the boot test did not bring a node up: ${bootError?.message ?? "it has not run"}`);
  }
  return booted;
}

test.after.always("remove the boot test's libvirt objects", async () => {
  await removeTestObjects(`${PREFIX}${runId}`);
  await releaseLock();
});

test.serial(
  "a TCG domain booted from an overlay with a NoCloud seed answers SSH with our generated key within 180 s",
  async (t) => {
    t.timeout(LOCK_WAIT_MS + BOOT_BUDGET_MS + 120_000);
    const { image } = requireTestImage();
    try {
      booted = await bootNode(image);
    } catch (err) {
      bootError = err as Error;
      throw err;
    }
    t.log(`SSH answered ${booted.sshSeconds.toFixed(1)} s after virsh start`);
    t.true(booted.sshSeconds * 1000 <= BOOT_BUDGET_MS);
  },
);

test.serial("the node's hostname equals the seed's local-hostname", async (t) => {
  const node = requireBooted();
  t.is(await ssh(node, "hostname"), node.hostname);
});

test.serial("cloud-init finishes without errors", async (t) => {
  const node = requireBooted();
  // `cloud-init status` exits non-zero on errors; keep its report for the assertion message.
  const status = await ssh(
    node,
    "timeout 90 cloud-init status --wait >/dev/null; cloud-init status --long; sudo grep -E 'WARN|ERROR|Traceback' /var/log/cloud-init.log; true",
    120_000,
  );
  t.log(`cloud-init ${await ssh(node, "cloud-init --version 2>&1")}`);
  t.regex(status, /^status: done$/m, status);
});

test.serial("the node presents the ed25519 host key pre-set through cloud-init ssh_keys", async (t) => {
  const node = requireBooted();
  const scanned = await run("ssh-keyscan", ["-T", "10", "-t", "ed25519", NODE_IP]);
  const [type, blob] = node.hostPublicKey.split(" ");
  t.deepEqual(
    scanned
      .split("\n")
      .filter((l) => l.startsWith(NODE_IP))
      .map((l) => l.split(" ").slice(1, 3).join(" ")),
    [`${type} ${blob}`],
  );
  // And a client that pins that key (StrictHostKeyChecking=yes) gets in.
  const knownHosts = path.join(node.workDir, "known_hosts");
  await fs.writeFile(knownHosts, `${NODE_IP} ${type} ${blob}\n`);
  const out = await run("ssh", [...sshArgs(node, knownHosts, true), `${USER}@${NODE_IP}`, "echo pinned"]);
  t.is(out.trim(), "pinned");
});

test.serial("the root filesystem grows to fill the 4 GiB overlay", async (t) => {
  const node = requireBooted();
  const bytes = Number(await ssh(node, "df -B1 --output=size / | tail -n 1"));
  t.true(bytes > 3.5 * 1024 ** 3, `root filesystem is ${bytes} bytes; growpart/resizefs did not run`);
});

test.serial(
  "the node carries iperf3, ethtool, growpart and curl, and the default user has passwordless sudo",
  async (t) => {
    const node = requireBooted();
    const out = await ssh(
      node,
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin; for c in iperf3 ethtool growpart curl; do command -v $c; done; sudo -n id -u",
    );
    t.deepEqual(out.split("\n"), ["/usr/bin/iperf3", "/usr/sbin/ethtool", "/usr/bin/growpart", "/usr/bin/curl", "0"]);
  },
);

test.serial(
  "teardown leaves none of the run's cl-test-img- domain, network, work dir or qemu log behind",
  async (t) => {
    const ours = (n: string): boolean => n.startsWith(`${PREFIX}${runId}`);
    await removeTestObjects(`${PREFIX}${runId}`);
    await releaseLock();
    t.deepEqual((await virshNames("list")).filter(ours), []);
    t.deepEqual((await virshNames("net-list")).filter(ours), []);
    t.deepEqual((await fs.readdir(POOL_DIR)).filter(ours), []);
    t.deepEqual((await fs.readdir(QEMU_LOG_DIR)).filter(ours), []);
  },
);
