// The Debian test image (scripts/dev/build-test-image.sh) stands in for the Ubuntu cloud image: these
// tests check its output contract and file, then boot one TCG domain from an overlay with a NoCloud
// seed, as the provider will, and log in with a generated key.
//
// Needs root, a running libvirtd (.ci/host-setup.sh) and TEST_IMAGE/TEST_IMAGE_SHA256 in the
// environment (`.ci/run` sets them). Everything is named cl-test-img-<run>-* on 192.168.198.0/24;
// a lock file keeps concurrent runs on one host from booting at the same time.
// Proof limit: one boot under TCG with a hand-written domain; the provider's own XML is tested
// elsewhere. The boot itself (domain, seed, lock, cleanup) is in test-image-boot.ts.
// Suffix .vm, the heaviest of its needs: it boots a VM; it also needs libvirtd and root.
// test-runs-as: root
// (the one root smoke boot of the suite: root keeps working; every other VM test runs as the
// unprivileged test user)
import test from "ava";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as path from "node:path";

import {
  BOOT_BUDGET_MS,
  LOCK_WAIT_MS,
  NODE_IP,
  POOL_DIR,
  PREFIX,
  QEMU_LOG_DIR,
  USER,
  bootNode,
  releaseLock,
  removeTestObjects,
  run,
  runId,
  ssh,
  sshArgs,
  virshNames,
  type BootedNode,
} from "./test-image-boot";

const REPO = path.resolve(__dirname, "../..");
const BUILD_SCRIPT = path.join(REPO, "scripts/dev/build-test-image.sh");
const BUILD_HINT = 'eval "$(bash scripts/dev/build-test-image.sh)" (as root), or run .ci/run';
const IMAGE_VIRTUAL_SIZE = 3 * 1024 ** 3;
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

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

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

// --- one boot under TCG (test-image-boot.ts) ------------------------------------------------------

let booted: BootedNode | undefined;
let bootError: Error | undefined;

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
