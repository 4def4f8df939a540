// BaseVolume against real libvirtd through virsh only (runs as the unprivileged test user): one
// upload per host (a second create uploads 0 bytes), the shared-pool marker, delete keeps the
// volume, refresh notices it gone; parallel creates share one upload; the leftover of a killed
// upload is replaced; fault rows: a source that ends early, the virsh vol-upload child killed
// mid-way, a foreign pool of that name. Every row leaves no volume behind. The tests use their own
// pool (`pool` input), never the shared cilium-lab-base, and remove it at the end.
import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { virsh } from "../../infra/libvirt/exec";
import {
  BaseUploadError,
  baseVolumeName,
  baseVolumeProvider,
  ensureBasePool,
  ensureUploaded,
  parsePhysical,
} from "../../infra/libvirt/base-image/volume";
import { hostUuid, listVolumes } from "../../infra/libvirt/storage";
import { direct, roundTrip } from "../libvirt/support";

const URI = "qemu:///system";
const POOL = `cl-t-bv-${process.pid}`;
const FOREIGN = `cl-t-bv-foreign-${process.pid}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-bv-"));

/** A standalone qcow2 with `mib` MiB of random data; returns its path, size and hash. */
function image(name: string, mib: number): { file: string; size: number; sha256: string } {
  const raw = path.join(work, `${name}.raw`);
  fs.writeFileSync(raw, Buffer.alloc(0));
  execFileSync("dd", ["if=/dev/urandom", `of=${raw}`, "bs=1M", `count=${mib}`, "status=none"]);
  const file = path.join(work, `${name}.qcow2`);
  execFileSync("qemu-img", ["convert", "-q", "-O", "qcow2", raw, file]);
  fs.rmSync(raw);
  const data = fs.readFileSync(file);
  return { file, size: data.length, sha256: createHash("sha256").update(data).digest("hex") };
}

async function vols(pool: string): Promise<string[]> {
  return (await listVolumes(URI, pool)).map((v) => v.name).filter((n) => n !== "cilium-lab-pool.json");
}

async function removePool(pool: string): Promise<void> {
  for (const v of await listVolumes(URI, pool).catch(() => [])) {
    await virsh(URI, ["vol-delete", v.name, "--pool", pool]);
  }
  await virsh(URI, ["pool-destroy", pool]);
  await virsh(URI, ["pool-delete", pool]);
  await virsh(URI, ["pool-undefine", pool]);
}

/** The volume's content, downloaded, hashed. */
async function downloadedSha(pool: string, name: string): Promise<string> {
  const out = path.join(work, `dl-${name}`);
  const r = await virsh(URI, ["vol-download", name, out, "--pool", pool]);
  if (r.code !== 0) {
    throw new Error(r.stderr);
  }
  const sha = createHash("sha256").update(fs.readFileSync(out)).digest("hex");
  fs.rmSync(out);
  return sha;
}

/** Ends a writer started with `detached: true` and everything it started (its process group). */
function stopGroup(pid: number | undefined): void {
  try {
    if (pid !== undefined) {
      process.kill(-pid, "SIGKILL");
    }
  } catch {
    // already gone
  }
}

let small: ReturnType<typeof image>;
let big: ReturnType<typeof image>;
test.before(async () => {
  small = image("small", 2);
  big = image("big", 48);
  await ensureBasePool(URI, POOL);
});
test.after.always(async () => {
  await removePool(POOL);
  await removePool(FOREIGN);
  fs.rmSync(work, { recursive: true, force: true });
});

const inputs = (img: ReturnType<typeof image>): Record<string, unknown> => ({
  uri: URI,
  imagePath: img.file,
  sha256: img.sha256,
  sizeBytes: img.size,
  pool: POOL,
});

test.serial("parsePhysical reads virsh vol-info --bytes --physical", (t) => {
  t.is(
    parsePhysical(
      "Name:           a\nType:           file\nCapacity:       3221225472 bytes\nPhysical:       470876160 bytes\n",
    ),
    470876160,
  );
  t.is(parsePhysical("Allocation: 1 bytes\n"), undefined);
  t.is(baseVolumeName("0123456789abcdef".repeat(4)), "base-0123456789abcdef.qcow2");
});

test.serial(
  "base volume: uploaded once per host (the second create uploads 0 bytes), the pool stamped as shared, delete keeps it, refresh sees it gone",
  async (t) => {
    const provider = await roundTrip(baseVolumeProvider);
    const first = await provider.create(inputs(small));
    const name = baseVolumeName(small.sha256);
    const uuid = await hostUuid(URI);
    t.is(first.id, `${uuid}/${POOL}/${name}`);
    t.like(first.outs, { hostUuid: uuid, pool: POOL, name, uploadedBytes: small.size });
    t.regex(String(first.outs?.path), new RegExp(`/var/lib/libvirt/images/${POOL}/${name}$`));
    t.is(await downloadedSha(POOL, name), small.sha256, "the volume holds exactly the verified image");

    const second = await direct(baseVolumeProvider).create(inputs(small));
    t.is(second.id, first.id);
    t.like(second.outs, { uploadedBytes: 0, path: first.outs?.path });

    const marker = path.join(work, "marker.json");
    t.is((await virsh(URI, ["vol-download", "cilium-lab-pool.json", marker, "--pool", POOL])).code, 0);
    t.deepEqual(JSON.parse(fs.readFileSync(marker, "utf8")), { project: "cilium-lab", stack: "*" });

    await provider.delete(first.id, first.outs ?? {});
    t.deepEqual(await vols(POOL), [name], "delete keeps the base volume: the pool is a cache");
    t.is((await provider.read(first.id, first.outs ?? {})).id, first.id);
    t.is((await virsh(URI, ["vol-delete", name, "--pool", POOL])).code, 0);
    t.is((await provider.read(first.id, first.outs ?? {})).id, "", "removed by hand: gone on refresh");
  },
);

test.serial("parallel creates of one image share one upload and give one complete volume", async (t) => {
  const name = baseVolumeName(big.sha256);
  const results = await Promise.all([0, 1, 2].map(() => direct(baseVolumeProvider).create(inputs(big))));
  const uploaded = results.map((r) => Number(r.outs?.uploadedBytes)).sort((a, b) => a - b);
  t.deepEqual(uploaded, [0, 0, big.size], "exactly one of them uploaded");
  t.is(await downloadedSha(POOL, name), big.sha256);
  t.is((await virsh(URI, ["vol-delete", name, "--pool", POOL])).code, 0);
});

test.serial("the leftover of a killed upload (short, not growing) is replaced by a complete upload", async (t) => {
  const name = baseVolumeName(small.sha256);
  t.is((await virsh(URI, ["vol-create-as", POOL, name, "0", "--format", "raw"])).code, 0);
  const part = path.join(work, "part");
  fs.writeFileSync(part, fs.readFileSync(small.file).subarray(0, 4096));
  t.is((await virsh(URI, ["vol-upload", name, part, "--pool", POOL])).code, 0);
  const uploaded = await ensureUploaded(URI, POOL, name, small.file, small.size, { stallMs: 1500, waitMs: 60_000 });
  t.is(uploaded, small.size);
  t.is(await downloadedSha(POOL, name), small.sha256);
  t.is((await virsh(URI, ["vol-delete", name, "--pool", POOL])).code, 0);
});

test.serial(
  "fault: a source that ends mid-way fails with BaseUploadError naming the volume, and leaves no volume",
  async (t) => {
    const fifo = path.join(work, "fifo");
    execFileSync("mkfifo", [fifo]);
    // A writer that sends the first 64 KiB of the image, then closes: the upload sees an early end.
    const writer = spawn("sh", ["-c", `head -c 65536 '${big.file}' > '${fifo}'`], { stdio: "ignore", detached: true });
    const name = baseVolumeName(big.sha256);
    const err = await t.throwsAsync(ensureUploaded(URI, POOL, name, fifo, big.size), { instanceOf: BaseUploadError });
    stopGroup(writer.pid);
    t.regex(
      err?.message ?? "",
      new RegExp(
        `^base image upload interrupted: .*volume ${name} in pool ${POOL} on qemu:///system: only 65536 of ${big.size} bytes arrived`,
      ),
    );
    t.regex(err?.message ?? "", /The partial volume was deleted\. Fix: /);
    t.deepEqual(await vols(POOL), [], "nothing left in the pool");
  },
);

test.serial(
  "fault: the virsh vol-upload child killed mid-way fails with BaseUploadError, and leaves no volume",
  async (t) => {
    // A virsh that runs the real vol-upload, then kills it after a moment (as a dying provider host would).
    const shim = path.join(work, "virsh-killer");
    fs.writeFileSync(
      shim,
      `#!/bin/sh\ncase " $* " in *" vol-upload "*) virsh "$@" & pid=$!; sleep 0.3; kill -9 $pid; wait $pid; exit $?;; esac\nexec virsh "$@"\n`,
      { mode: 0o755 },
    );
    // A source slow enough to be killed mid-way: a FIFO fed in small pieces.
    const fifo = path.join(work, "slow");
    execFileSync("mkfifo", [fifo]);
    const writer = spawn("sh", ["-c", `(head -c 65536 '${big.file}'; sleep 3; cat '${big.file}') > '${fifo}'`], {
      stdio: "ignore",
      detached: true,
    });
    process.env.VIRSH_BIN = shim;
    const name = baseVolumeName(big.sha256);
    try {
      const err = await t.throwsAsync(ensureUploaded(URI, POOL, name, fifo, big.size), { instanceOf: BaseUploadError });
      t.regex(err?.message ?? "", /base image upload interrupted: .*virsh vol-upload exited 137/);
    } finally {
      delete process.env.VIRSH_BIN;
      stopGroup(writer.pid);
    }
    t.deepEqual(await vols(POOL), [], "nothing left in the pool");
  },
);

test.serial("fault: a pool of that name with volumes but no cilium-lab marker is refused, untouched", async (t) => {
  t.is(
    (await virsh(URI, ["pool-define-as", FOREIGN, "dir", "--target", `/var/lib/libvirt/images/${FOREIGN}`])).code,
    0,
  );
  t.is((await virsh(URI, ["pool-build", FOREIGN])).code, 0);
  t.is((await virsh(URI, ["pool-start", FOREIGN])).code, 0);
  t.is((await virsh(URI, ["vol-create-as", FOREIGN, "theirs.img", "1M"])).code, 0);
  const err = await t.throwsAsync(ensureBasePool(URI, FOREIGN));
  t.regex(
    err?.message ?? "",
    new RegExp(
      `libvirt pool ${FOREIGN} on qemu:///system exists without a cilium-lab marker and holds volumes \\(theirs.img\\): not the lab's base pool\\. Fix: `,
    ),
  );
  t.deepEqual(await vols(FOREIGN), ["theirs.img"]);
});
