// StoragePool and Volume providers against the real libvirtd, through virsh only (runs as the
// unprivileged test user in group libvirt): lifecycle through the serialization round trip, the
// ownership rows (an unmarked foreign pool, another stack's pool, a pool holding a foreign volume),
// objects deleted or stopped by hand, a missing or unfit backing image, leftovers of an interrupted
// run. The storage helpers themselves are in storage-api.libvirt.test.ts.
import test from "ava";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { storagePoolProvider } from "../../infra/libvirt/pool";
import {
  POOL_ROOT,
  ensureDirPool,
  listVolumes,
  poolTarget,
  readPoolMarker,
  uploadVolume,
  volumeFacts,
} from "../../infra/libvirt/storage";
import { volumeProvider } from "../../infra/libvirt/volume";
import { URI, direct, rejection, roundTrip, virsh } from "./support";
import { poolsWithPrefix, sweepPools, volumeXmlOf } from "./storage-support";

const PREFIX = "cilium-lab-test-h1-sto";
const STACK = "h1-sto";
const POOL = `${PREFIX}-pool`;
const BASE_POOL = `${PREFIX}-base`;
const GiB = 1024 ** 3;

/** A standalone 64 MiB qcow2 uploaded into a base pool of its own, as BaseVolume does. */
let base = "";
let tmp = "";
test.before(async () => {
  sweepPools(PREFIX);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-h1-sto-"));
  const file = path.join(tmp, "base.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", file, "64M"]);
  await ensureDirPool(URI, BASE_POOL, `${POOL_ROOT}/${BASE_POOL}`);
  base = await uploadVolume(URI, BASE_POOL, "base.qcow2", file, { format: "qcow2" });
});
// Each test leaves nothing; a failed one must not spoil the next.
test.afterEach.always(() => {
  sweepPools(POOL);
  sweepPools(`${PREFIX}-foreign`);
});
test.after.always(() => {
  sweepPools(PREFIX);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const poolInputs = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uri: URI,
  poolName: POOL,
  stack: STACK,
  providerVersion: 1,
  ...extra,
});
const vol = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uri: URI,
  pool: POOL,
  name,
  sizeGiB: 2,
  stack: STACK,
  providerVersion: 1,
  ...extra,
});

test.serial(
  "a pool, an overlay on a base and a blank disk: create, read, diff and delete through the serialization round trip",
  async (t) => {
    const pools = await roundTrip(storagePoolProvider);
    const p = await roundTrip(volumeProvider);
    const pool = await pools.create(poolInputs());
    const target = `${POOL_ROOT}/${POOL}`;
    t.deepEqual(pool, {
      id: POOL,
      outs: { uri: URI, poolName: POOL, stack: STACK, targetPath: target, active: true, providerVersion: 1 },
    });
    t.deepEqual(await readPoolMarker(URI, POOL), { project: "cilium-lab", stack: STACK });
    t.regex(virsh("pool-info", POOL), /Autostart:\s+yes/);

    const overlay = await p.create(vol("node-1.qcow2", { backingPath: base }));
    const blank = await p.create(vol("blank.qcow2"));
    t.is(overlay.id, `${target}/node-1.qcow2`);
    t.deepEqual(await volumeFacts(URI, POOL, "node-1.qcow2"), {
      name: "node-1.qcow2",
      path: overlay.id,
      capacityBytes: 2 * GiB,
      format: "qcow2",
      backingPath: base,
      backingFormat: "qcow2",
    });
    t.deepEqual(await volumeFacts(URI, POOL, "blank.qcow2"), {
      name: "blank.qcow2",
      path: blank.id,
      capacityBytes: 2 * GiB,
      format: "qcow2",
    });
    for (const name of ["node-1.qcow2", "blank.qcow2"]) {
      t.regex(
        volumeXmlOf(POOL, name),
        /<target>[\s\S]*<mode>0600<\/mode>/,
        `${name} is owner-only (it will hold the guest's keys)`,
      );
    }
    t.deepEqual(overlay.outs, {
      uri: URI,
      pool: POOL,
      name: "node-1.qcow2",
      path: overlay.id,
      backingPath: base,
      sizeGiB: 2,
      stack: STACK,
      providerVersion: 1,
    });
    t.deepEqual(await p.read(overlay.id, overlay.outs ?? {}), { id: overlay.id, props: overlay.outs });
    t.deepEqual(await pools.read(POOL, pool.outs ?? {}), { id: POOL, props: pool.outs });
    const news = (await p.check({}, vol("node-1.qcow2", { backingPath: base }))).inputs ?? {};
    t.deepEqual(await p.diff(overlay.id, overlay.outs ?? {}, news), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    t.deepEqual(await p.diff(overlay.id, overlay.outs ?? {}, { ...news, sizeGiB: 4 }), {
      changes: true,
      replaces: ["sizeGiB"],
      deleteBeforeReplace: true,
    });

    await p.delete(overlay.id, overlay.outs ?? {});
    await p.delete(blank.id, blank.outs ?? {});
    await p.delete(blank.id, blank.outs ?? {});
    t.is(await volumeFacts(URI, POOL, "blank.qcow2"), undefined, "delete is idempotent");
    await pools.delete(POOL, pool.outs ?? {});
    t.is(await poolTarget(URI, POOL), undefined, "the last delete removes the marker and the pool");
    await t.notThrowsAsync(pools.delete(POOL, pool.outs ?? {}));
    t.true(base !== "" && (await volumeFacts(URI, BASE_POOL, "base.qcow2")) !== undefined, "the base is not touched");
  },
);

test.serial(
  "deleted by hand: read gives a blank id and delete succeeds; a vanished base makes the overlay's diff replace it",
  async (t) => {
    const pools = direct(storagePoolProvider);
    const p = direct(volumeProvider);
    const pool = await pools.create(poolInputs());
    const scratch = await uploadVolume(URI, BASE_POOL, "scratch.qcow2", path.join(tmp, "base.qcow2"), {
      format: "qcow2",
    });
    const overlay = await p.create(vol("node-1.qcow2", { backingPath: scratch }));
    const blank = await p.create(vol("blank.qcow2"));

    virsh("vol-delete", "--pool", POOL, "blank.qcow2");
    t.deepEqual(await p.read(blank.id, blank.outs ?? {}), { id: "" });
    await t.notThrowsAsync(p.delete(blank.id, blank.outs ?? {}));

    virsh("vol-delete", "--pool", BASE_POOL, "scratch.qcow2");
    const read = await p.read(overlay.id, overlay.outs ?? {});
    t.deepEqual(read, { id: overlay.id, props: { ...overlay.outs, backingPath: "" } });
    t.deepEqual(await p.diff(overlay.id, read.props ?? {}, vol("node-1.qcow2", { backingPath: scratch })), {
      changes: true,
      replaces: ["backingPath"],
      deleteBeforeReplace: true,
    });
    await p.delete(overlay.id, overlay.outs ?? {});

    virsh("pool-destroy", POOL);
    const stopped = await pools.read(POOL, pool.outs ?? {});
    t.deepEqual(stopped, { id: POOL, props: { ...pool.outs, active: false } });
    t.deepEqual(await pools.diff(POOL, stopped.props ?? {}, poolInputs()), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    t.deepEqual(await pools.update(POOL, stopped.props ?? {}, poolInputs()), { outs: pool.outs });
    t.regex(virsh("pool-info", POOL), /State:\s+running/, "the update started the pool stopped by hand");

    await pools.delete(POOL, pool.outs ?? {});
    t.deepEqual(await pools.read(POOL, pool.outs ?? {}), { id: "" }, "a vanished pool reads as gone");
    await t.notThrowsAsync(pools.delete(POOL, pool.outs ?? {}));
  },
);

test.serial("backing image missing or unfit: create fails naming it and the fix, creating nothing", async (t) => {
  const pools = direct(storagePoolProvider);
  const p = direct(volumeProvider);
  const pool = await pools.create(poolInputs());
  const what = `creating volume "node-1.qcow2" in libvirt storage pool "${POOL}" failed`;
  const missing = `${POOL_ROOT}/${BASE_POOL}/missing.qcow2`;
  t.is(
    (await rejection(t, p.create(vol("node-1.qcow2", { backingPath: missing })))).message,
    `${what}: the backing image ${missing} is not a volume libvirt knows at ${URI}. ` +
      "Fix: let the base volume resource upload it again (`pulumi up --refresh`); scripts/lab-clean.sh --purge-base clears a broken base pool.",
  );
  virsh("vol-create-as", BASE_POOL, "raw.img", "1M", "--format", "raw");
  t.is(
    (await rejection(t, p.create(vol("node-1.qcow2", { backingPath: `${POOL_ROOT}/${BASE_POOL}/raw.img` })))).message,
    `${what}: the backing image ${POOL_ROOT}/${BASE_POOL}/raw.img is raw, expected qcow2 (virsh vol-dumpxml). Fix: use a qcow2 cloud image (cilium-lab:imageUrl).`,
  );
  const overlay = await p.create(vol("node-1.qcow2", { backingPath: base }));
  t.is(
    (await rejection(t, p.create(vol("node-2.qcow2", { backingPath: overlay.id })))).message,
    `creating volume "node-2.qcow2" in libvirt storage pool "${POOL}" failed: the backing image ${overlay.id} has its own backing file ${base}; a base must be standalone. ` +
      `Fix: flatten it (qemu-img convert -O qcow2 ${overlay.id} <new file>).`,
  );
  t.deepEqual(
    (await listVolumes(URI, POOL)).map((v) => v.name),
    ["cilium-lab-pool.json", "node-1.qcow2"],
    "no volume was made by the refused creates",
  );
  await p.delete(overlay.id, overlay.outs ?? {});
  await pools.delete(POOL, pool.outs ?? {});
  t.deepEqual(poolsWithPrefix(POOL), []);
});

test.serial("a size below the base image's virtual size is refused with the config key to raise", async (t) => {
  const pools = direct(storagePoolProvider);
  const pool = await pools.create(poolInputs());
  const big = path.join(tmp, "big.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", big, "3G"]);
  const bigBase = await uploadVolume(URI, BASE_POOL, "big.qcow2", big, { format: "qcow2" });
  const e = await rejection(t, direct(volumeProvider).create(vol("node-1.qcow2", { backingPath: bigBase })));
  t.is(
    e.message,
    `creating volume "node-1.qcow2" in libvirt storage pool "${POOL}" failed: sizeGiB 2 is smaller than the base image's virtual size 3 GiB (${bigBase}). Fix: raise cilium-lab:nodeDiskGiB.`,
  );
  await pools.delete(POOL, pool.outs ?? {});
  t.deepEqual(poolsWithPrefix(POOL), []);
});

test.serial(
  "storage pools: an unmarked foreign one and another stack's are refused, an empty unmarked one adopted",
  async (t) => {
    const pools = direct(storagePoolProvider);
    const foreign = `${PREFIX}-foreign`;
    await ensureDirPool(URI, foreign, `${POOL_ROOT}/${foreign}`);
    virsh("vol-create-as", foreign, "theirs.img", "1M");
    const e1 = await rejection(t, pools.create(poolInputs({ poolName: foreign })));
    t.is(
      e1.message,
      `creating libvirt storage pool "${foreign}" failed: a libvirt storage pool "${foreign}" already exists and was not created by cilium-lab stack "${STACK}" (no cilium-lab owner stamp). ` +
        `Nothing was changed. Fix: remove it (\`virsh -c ${URI} pool-destroy ${foreign}; virsh -c ${URI} pool-undefine ${foreign}\`) if it is not needed, or use another stack name.`,
    );
    t.regex(virsh("vol-list", foreign), /theirs\.img/, "the foreign pool is untouched");
    const e2 = await rejection(t, direct(volumeProvider).create(vol("node-1.qcow2", { pool: foreign })));
    t.is(
      e2.message,
      `creating volume "node-1.qcow2" in libvirt storage pool "${foreign}" failed: a libvirt storage pool "${foreign}" already exists and was not created by cilium-lab stack "${STACK}" (no cilium-lab owner stamp). ` +
        `Nothing was changed. Fix: remove it (\`virsh -c ${URI} pool-destroy ${foreign}; virsh -c ${URI} pool-undefine ${foreign}\`) if it is not needed, or use another stack name.`,
    );

    const other = await pools.create(poolInputs({ stack: "h1-other" }));
    const e3 = await rejection(t, pools.create(poolInputs()));
    t.is(
      e3.message,
      `creating libvirt storage pool "${POOL}" failed: a libvirt storage pool "${POOL}" already exists and was not created by cilium-lab stack "${STACK}" (cilium-lab stack "h1-other"). ` +
        `Nothing was changed. Fix: remove it (\`virsh -c ${URI} pool-destroy ${POOL}; virsh -c ${URI} pool-undefine ${POOL}\`) if it is not needed, or use another stack name.`,
    );
    t.deepEqual(await readPoolMarker(URI, POOL), { project: "cilium-lab", stack: "h1-other" });
    t.deepEqual(
      await pools.read(POOL, { ...other.outs, stack: STACK }),
      { id: "" },
      "another stack's pool is not ours on refresh",
    );
    await pools.delete(POOL, other.outs ?? {});

    // What a create killed between pool-define and the marker leaves: an empty pool at our target.
    await ensureDirPool(URI, POOL, `${POOL_ROOT}/${POOL}`);
    const adopted = await pools.create(poolInputs());
    t.is(adopted.id, POOL);
    t.deepEqual(await readPoolMarker(URI, POOL), { project: "cilium-lab", stack: STACK });
    await pools.delete(POOL, adopted.outs ?? {});
    t.deepEqual(poolsWithPrefix(POOL), []);
  },
);

test.serial("a pool that still holds a foreign volume is kept on delete, naming the volume and the fix", async (t) => {
  const pools = direct(storagePoolProvider);
  const pool = await pools.create(poolInputs());
  virsh("vol-create-as", POOL, "someone-elses.img", "1M");
  const e = await rejection(t, pools.delete(POOL, pool.outs ?? {}));
  t.is(
    e.message,
    `deleting libvirt storage pool "${POOL}" failed: it still holds 1 volume(s) cilium-lab did not delete: someone-elses.img. ` +
      `Nothing was removed. Fix: delete them if they are not needed (virsh -c ${URI} vol-delete --pool ${POOL} <name>), or run scripts/lab-clean.sh --uri ${URI}, then destroy again.`,
  );
  t.deepEqual(await readPoolMarker(URI, POOL), { project: "cilium-lab", stack: STACK }, "the marker stays");
  virsh("vol-delete", "--pool", POOL, "someone-elses.img");
  await pools.delete(POOL, pool.outs ?? {});
  t.deepEqual(poolsWithPrefix(POOL), []);
});

test.serial("a leftover volume of an interrupted run at our name is replaced; a missing pool is named", async (t) => {
  const pools = direct(storagePoolProvider);
  const p = direct(volumeProvider);
  const pool = await pools.create(poolInputs());
  virsh("vol-create-as", POOL, "node-1.qcow2", "1M", "--format", "raw");
  const again = await p.create(vol("node-1.qcow2", { backingPath: base }));
  t.like(await volumeFacts(URI, POOL, "node-1.qcow2"), { format: "qcow2", capacityBytes: 2 * GiB, backingPath: base });
  await p.delete(again.id, again.outs ?? {});
  await pools.delete(POOL, pool.outs ?? {});
  const e = await rejection(t, p.create(vol("node-1.qcow2")));
  t.is(
    e.message,
    `creating volume "node-1.qcow2" in libvirt storage pool "${POOL}" failed: libvirt storage pool "${POOL}" does not exist at ${URI}. Fix: run \`pulumi up --refresh\`, which creates the stack's StoragePool first.`,
  );
  t.deepEqual(poolsWithPrefix(POOL), []);
});
