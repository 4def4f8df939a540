// The storage helpers (infra/libvirt/storage.ts) against the real libvirtd, through virsh only (no
// file system access into /var/lib/libvirt, so it runs as an unprivileged user in group libvirt):
// pools and their marker, blank volumes and overlays with a <backingStore>, uploads and downloads,
// deletes, removing an empty pool, the host UUID, and the fault rows (missing file, interrupted
// upload, full pool, unreachable daemon, name taken).
import test from "ava";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  POOL_MARKER_VOLUME,
  POOL_ROOT,
  createVolume,
  deleteVolume,
  downloadVolume,
  ensureDirPool,
  hostUuid,
  listVolumes,
  poolTarget,
  readPoolMarker,
  removePoolIfEmpty,
  uploadVolume,
  volumeFacts,
  volumePath,
  writePoolMarker,
} from "../../infra/libvirt/storage";
import { DEAD_URI, DEAD_URI_UNREACHABLE, URI, rejection, virsh, virshTry } from "./support";
import { sweepPools, volumeXmlOf } from "./storage-support";

const PREFIX = "cilium-lab-test-h1-api";
const pool = (suffix: string): string => `${PREFIX}-${suffix}`;
const MiB = 1024 ** 2;

let tmp = "";
test.before(() => {
  sweepPools(PREFIX);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-h1-api-"));
});
test.after.always(() => {
  sweepPools(PREFIX);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha256 = (file: string): string => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

test.serial(
  "ensureDirPool defines, builds, starts and autostarts a dir pool; a second call and an inactive pool are adopted",
  async (t) => {
    const p = pool("life");
    const target = `${POOL_ROOT}/${p}`;
    t.is(await poolTarget(URI, p), undefined);
    t.deepEqual(await ensureDirPool(URI, p, target), { created: true, target });
    t.is(await poolTarget(URI, p), target);
    t.regex(virsh("pool-info", p), /State:\s+running/);
    t.regex(virsh("pool-info", p), /Autostart:\s+yes/);
    t.deepEqual(await ensureDirPool(URI, p, target), { created: false, target });
    virsh("pool-destroy", p);
    t.deepEqual(await ensureDirPool(URI, p, target), { created: false, target });
    t.regex(virsh("pool-info", p), /State:\s+running/, "an inactive pool is started again");
    t.deepEqual(await listVolumes(URI, p), []);

    t.is(await readPoolMarker(URI, p), undefined);
    await writePoolMarker(URI, p, { project: "cilium-lab", stack: "h1" });
    t.deepEqual(await readPoolMarker(URI, p), { project: "cilium-lab", stack: "h1" });
    await writePoolMarker(URI, p, { project: "cilium-lab", stack: "h1-other" });
    t.deepEqual(await readPoolMarker(URI, p), { project: "cilium-lab", stack: "h1-other" }, "a marker is replaced");
    t.deepEqual(await listVolumes(URI, p), [{ name: POOL_MARKER_VOLUME, path: `${target}/${POOL_MARKER_VOLUME}` }]);

    t.deepEqual(await removePoolIfEmpty(URI, p), { removed: true, remaining: [] });
    t.is(await poolTarget(URI, p), undefined);
    t.deepEqual(await removePoolIfEmpty(URI, p), { removed: false, remaining: [] }, "no pool: nothing to do");
  },
);

test.serial("a marker that is not our JSON reads as project and stack ?", async (t) => {
  const p = pool("garbage");
  await ensureDirPool(URI, p, `${POOL_ROOT}/${p}`);
  const file = path.join(tmp, "garbage.json");
  fs.writeFileSync(file, "not json\n");
  await uploadVolume(URI, p, POOL_MARKER_VOLUME, file);
  t.deepEqual(await readPoolMarker(URI, p), { project: "?", stack: "?" });
});

test.serial("a blank qcow2 and overlays with a <backingStore> (three created at once), mode 0600", async (t) => {
  const p = pool("vols");
  const target = `${POOL_ROOT}/${p}`;
  await ensureDirPool(URI, p, target);
  const base = await createVolume(URI, p, { name: "base.qcow2", capacityBytes: 64 * MiB, format: "qcow2" });
  t.is(base, `${target}/base.qcow2`);
  t.deepEqual(await volumeFacts(URI, p, "base.qcow2"), {
    name: "base.qcow2",
    path: base,
    capacityBytes: 64 * MiB,
    format: "qcow2",
  });
  const names = ["node-1.qcow2", "node-2.qcow2", "node-3.qcow2"];
  const paths = await Promise.all(
    names.map((name) =>
      createVolume(URI, p, {
        name,
        capacityBytes: 128 * MiB,
        format: "qcow2",
        backing: { path: base, format: "qcow2" },
      }),
    ),
  );
  t.deepEqual(
    paths,
    names.map((n) => `${target}/${n}`),
  );
  for (const name of names) {
    t.deepEqual(await volumeFacts(URI, p, name), {
      name,
      path: `${target}/${name}`,
      capacityBytes: 128 * MiB,
      format: "qcow2",
      backingPath: base,
      backingFormat: "qcow2",
    });
    t.regex(volumeXmlOf(p, name), /<target>[\s\S]*<mode>0600<\/mode>[\s\S]*<\/target>/);
  }
  t.deepEqual(await volumeFacts(URI, undefined, base), await volumeFacts(URI, p, "base.qcow2"), "looked up by path");
  t.is(await volumePath(URI, p, "node-1.qcow2"), `${target}/node-1.qcow2`);
  t.is(await volumePath(URI, p, "missing.qcow2"), undefined);
  t.is(await volumePath(URI, pool("no-such-pool"), "x"), undefined);

  const taken = await rejection(t, createVolume(URI, p, { name: "node-1.qcow2", capacityBytes: MiB, format: "qcow2" }));
  t.is(
    taken.message,
    `creating volume "node-1.qcow2" in libvirt storage pool "${p}" failed: Failed to create vol from volume.xml / storage volume 'node-1.qcow2' exists already (\`virsh -c ${URI} vol-create ${p} volume.xml\` exit 1). Fix: delete it (virsh vol-delete --pool ${p} node-1.qcow2) if it is a leftover`,
  );
  t.deepEqual(
    await volumeFacts(URI, p, "node-1.qcow2"),
    {
      name: "node-1.qcow2",
      path: `${target}/node-1.qcow2`,
      capacityBytes: 128 * MiB,
      format: "qcow2",
      backingPath: base,
      backingFormat: "qcow2",
    },
    "the existing volume is untouched",
  );

  for (const name of names) {
    await deleteVolume(URI, p, name);
    await deleteVolume(URI, p, name);
  }
  await deleteVolume(URI, pool("no-such-pool"), "x");
  t.deepEqual(await listVolumes(URI, p), [{ name: "base.qcow2", path: base }], "deletes are idempotent");
});

test.serial("upload and download round trip: same sha256, a byte range, and the format libvirt probes", async (t) => {
  const p = pool("xfer");
  await ensureDirPool(URI, p, `${POOL_ROOT}/${p}`);
  const src = path.join(tmp, "src.bin");
  fs.writeFileSync(
    src,
    Buffer.concat([Buffer.alloc(3 * MiB), createHash("sha512").update("h1").digest(), Buffer.alloc(MiB)]),
  );
  const path1 = await uploadVolume(URI, p, "data.raw", src);
  t.is(path1, `${POOL_ROOT}/${p}/data.raw`);
  const back = path.join(tmp, "back.bin");
  await downloadVolume(URI, p, "data.raw", back);
  t.is(sha256(back), sha256(src));
  const part = path.join(tmp, "part.bin");
  await downloadVolume(URI, p, "data.raw", part, { offset: 3 * MiB, length: 64 });
  t.deepEqual(fs.readFileSync(part), createHash("sha512").update("h1").digest());

  const qcow = path.join(tmp, "img.qcow2");
  await createVolume(URI, p, { name: "img.qcow2", capacityBytes: 32 * MiB, format: "qcow2" });
  await downloadVolume(URI, p, "img.qcow2", qcow);
  await uploadVolume(URI, p, "copy.qcow2", qcow, { format: "qcow2" });
  t.like(await volumeFacts(URI, p, "copy.qcow2"), { format: "qcow2", capacityBytes: 32 * MiB });
});

test.serial("an upload of a missing file creates nothing; an upload killed mid-way leaves no volume", async (t) => {
  const p = pool("fault");
  await ensureDirPool(URI, p, `${POOL_ROOT}/${p}`);
  const missing = path.join(tmp, "missing.img");
  const e1 = await rejection(t, uploadVolume(URI, p, "seed.iso", missing));
  t.is(
    e1.message,
    `uploading ${missing} to volume "seed.iso" in libvirt storage pool "${p}" failed: cannot read ${missing}: ENOENT: no such file or directory, stat '${missing}'. Nothing was created. Fix: check that the file exists and is readable.`,
  );
  t.deepEqual(await listVolumes(URI, p), []);

  // A pipe that delivers 1 MiB and then stalls: the upload is under way when its timeout kills virsh.
  const fifo = path.join(tmp, "stall.fifo");
  const writer = stallingFifo(fifo);
  t.teardown(() => {
    try {
      process.kill(-(writer.pid ?? 0), "SIGKILL");
    } catch {
      // already gone
    }
  });
  const upload = uploadVolume(URI, p, "stalled.raw", fifo, { timeoutMs: 6000 });
  let seen = 0;
  for (let i = 0; i < 50 && seen === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const info = virshTry("vol-info", "--pool", p, "stalled.raw", "--bytes");
    seen = Number(/Allocation:\s+(\d+)/.exec(info.stdout)?.[1] ?? "0");
  }
  t.true(seen > 0, "bytes had arrived in the volume before the upload was killed");
  const e2 = await rejection(t, upload);
  t.regex(
    e2.message,
    new RegExp(
      `^uploading ${fifo.replace(/[.]/g, "\\.")} to volume "stalled\\.raw" in libvirt storage pool "${p}" failed: .*timed out after 6000 ms .*Fix: retry; the partial volume "stalled\\.raw" was deleted$`,
    ),
  );
  t.deepEqual(await listVolumes(URI, p), [], "the partial volume is gone");
});

/** Makes a FIFO and a writer that puts 1 MiB into it, then holds it open for 15 s without writing more. */
function stallingFifo(fifo: string): ChildProcess {
  execFileSync("mkfifo", [fifo]);
  return spawn("bash", ["-c", `{ head -c 1048576 /dev/zero | tr '\\0' x; sleep 15; } > "$1"`, "_", fifo], {
    stdio: "ignore",
    detached: true,
  });
}

test.serial(
  "an upload larger than the pool's available space fails before creating anything, with the disk-space error",
  async (t) => {
    const p = pool("full");
    await ensureDirPool(URI, p, `${POOL_ROOT}/${p}`);
    const available = Number(/Available:\s+(\d+)/.exec(virsh("pool-info", p, "--bytes"))?.[1] ?? "0");
    const huge = path.join(tmp, "huge.img");
    fs.writeFileSync(huge, "");
    fs.truncateSync(huge, available + 1024 ** 3);
    const e = await rejection(t, uploadVolume(URI, p, "huge.img", huge));
    t.regex(
      e.message,
      new RegExp(
        `^uploading ${huge.replace(/[.]/g, "\\.")} to volume "huge\\.img" in libvirt storage pool "${p}" failed: not enough disk space in libvirt storage pool "${p}" \\(free [0-9.]+ MiB, needed at least ${((available + 1024 ** 3) / MiB).toFixed(1)} MiB\\)\\. Nothing was left behind\\.`,
      ),
    );
    t.deepEqual(await listVolumes(URI, p), []);
  },
);

test.serial("removePoolIfEmpty keeps a pool that holds another volume and names it", async (t) => {
  const p = pool("keep");
  await ensureDirPool(URI, p, `${POOL_ROOT}/${p}`);
  await writePoolMarker(URI, p, { project: "cilium-lab", stack: "h1" });
  virsh("vol-create-as", p, "foreign.raw", "1M", "--format", "raw");
  t.deepEqual(await removePoolIfEmpty(URI, p), { removed: false, remaining: ["foreign.raw"] });
  t.deepEqual(
    (await listVolumes(URI, p)).map((v) => v.name),
    ["cilium-lab-pool.json", "foreign.raw"],
    "nothing was removed",
  );
  virsh("vol-delete", "--pool", p, "foreign.raw");
  t.deepEqual(await removePoolIfEmpty(URI, p), { removed: true, remaining: [] });
  t.is(virshTry("pool-info", p).status, 1);
});

test.serial("hostUuid reads /capabilities/host/uuid; an unreachable daemon names the URI and the fix", async (t) => {
  const uuid = await hostUuid(URI);
  t.regex(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.true(virsh("capabilities").includes(`<uuid>${uuid}</uuid>`));
  const e = await rejection(t, hostUuid(DEAD_URI));
  t.is(e.message, `reading the libvirt host's capabilities failed: ${DEAD_URI_UNREACHABLE}`);
  const e2 = await rejection(t, ensureDirPool(DEAD_URI, pool("dead"), `${POOL_ROOT}/${pool("dead")}`));
  t.is(e2.message, `looking up libvirt storage pool "${pool("dead")}" failed: ${DEAD_URI_UNREACHABLE}`);
});
