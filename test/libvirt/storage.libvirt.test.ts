// Volume and CloudInitDisk providers against real qemu-img, cloud-localds and the filesystem:
// lifecycle (through the serialization round trip and directly) and fault rows: image file missing,
// backing file unreachable by qemu, disk full (a tiny tmpfs as the pool directory, both our
// pre-check and a real ENOSPC), foreign or other-stack pool directories, leftovers of an
// interrupted run, files deleted by hand.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";

import { cloudInitDiskProvider, seedDigests } from "../../infra/libvirt/seed";
import { mib, POOL_MARKER } from "../../infra/libvirt/common";
import { volumeProvider } from "../../infra/libvirt/volume";
import {
  URI,
  assertNothingLeft,
  direct,
  mountTmpfs,
  poolDir,
  rejection,
  roundTrip,
  sh,
  sweep,
  unmountTmpfs,
  virsh,
} from "./support";

const PREFIX = "cl-t-sto";
const STACK = "cl-t-sto";
const GiB = 1024 ** 3;

interface ImageInfo {
  format: string;
  "virtual-size": number;
  "actual-size": number;
  "backing-filename"?: string;
  "backing-filename-format"?: string;
}
const info = (file: string): ImageInfo =>
  JSON.parse(sh("qemu-img", ["info", "-U", "--output=json", file])) as ImageInfo;

/** A standalone qcow2 base with 32 MiB of real (incompressible) data, in a directory qemu can reach. */
let base = "";
test.before(() => {
  sweep(PREFIX);
  const src = poolDir("cl-t-sto-src");
  fs.mkdirSync(src, { mode: 0o755 });
  const raw = path.join(src, "base.raw");
  sh("dd", ["if=/dev/urandom", `of=${raw}`, "bs=1M", "count=32", "status=none"]);
  base = path.join(src, "base.qcow2");
  sh("qemu-img", ["convert", "-q", "-O", "qcow2", raw, base]);
  fs.rmSync(raw);
});
test.after.always(() => sweep(PREFIX));

const vol = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uri: URI,
  poolDir: poolDir("cl-t-sto-pool"),
  name,
  sizeGiB: 2,
  stack: STACK,
  providerVersion: 1,
  ...extra,
});

test.serial(
  "a base copy, an overlay on it and a blank disk: create, read, diff and delete through the serialization round trip",
  async (t) => {
    const p = await roundTrip(volumeProvider);
    const dir = poolDir("cl-t-sto-pool");
    const copy = await p.create(vol("base.qcow2", { baseImagePath: base, mode: "copy", sizeGiB: 1 }));
    const overlay = await p.create(vol("node-1.qcow2", { baseImagePath: copy.id }));
    const blank = await p.create(vol("blank.qcow2"));

    t.is(copy.id, path.join(dir, "base.qcow2"));
    t.like(info(copy.id), { format: "qcow2", "virtual-size": 1 * GiB });
    t.is(info(copy.id)["backing-filename"], undefined, "a copy is standalone");
    t.like(info(overlay.id), {
      format: "qcow2",
      "virtual-size": 2 * GiB,
      "backing-filename": copy.id,
      "backing-filename-format": "qcow2",
    });
    t.like(info(blank.id), { format: "qcow2", "virtual-size": 2 * GiB });
    for (const f of [copy.id, overlay.id, blank.id]) {
      t.is(fs.statSync(f).mode & 0o777, 0o600, `${f} is owner-only (it will hold the guest's keys)`);
    }
    t.is(fs.statSync(dir).mode & 0o777, 0o711);
    t.is(fs.readFileSync(path.join(dir, POOL_MARKER), "utf8"), `{"project":"cilium-lab","stack":"${STACK}"}\n`);
    t.deepEqual(fs.readdirSync(dir).sort(), [POOL_MARKER, "base.qcow2", "blank.qcow2", "node-1.qcow2"]);

    t.deepEqual(overlay.outs, {
      uri: URI,
      poolDir: dir,
      pool: "",
      name: "node-1.qcow2",
      path: overlay.id,
      baseImagePath: copy.id,
      sizeGiB: 2,
      mode: "overlay",
      stack: STACK,
      providerVersion: 1,
    });
    t.deepEqual(await p.read(overlay.id, overlay.outs ?? {}), { id: overlay.id, props: overlay.outs });
    const news = (await p.check({}, vol("node-1.qcow2", { baseImagePath: copy.id }))).inputs ?? {};
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
    t.true(fs.existsSync(dir), "the pool directory stays while a lab file is in it");
    await p.delete(copy.id, copy.outs ?? {});
    t.false(fs.existsSync(dir), "the last delete removes the pool directory and its marker");
    await t.notThrowsAsync(p.delete(copy.id, copy.outs ?? {}), "deleting a volume that is already gone succeeds");
    assertNothingLeft(t, "cl-t-sto-pool");
  },
);

test.serial(
  "deleted by hand: read gives a blank id and delete succeeds; a vanished base makes the overlay's diff replace it",
  async (t) => {
    const p = direct(volumeProvider);
    const copy = await p.create(vol("base.qcow2", { baseImagePath: base, mode: "copy", sizeGiB: 1 }));
    const overlay = await p.create(vol("node-1.qcow2", { baseImagePath: copy.id }));
    fs.rmSync(copy.id);
    const read = await p.read(overlay.id, overlay.outs ?? {});
    t.is(read.props?.baseImagePath, "");
    t.deepEqual(await p.diff(overlay.id, read.props ?? {}, vol("node-1.qcow2", { baseImagePath: copy.id })), {
      changes: true,
      replaces: ["baseImagePath"],
      deleteBeforeReplace: true,
    });
    t.deepEqual(await p.read(copy.id, copy.outs ?? {}), { id: "" });
    await t.notThrowsAsync(p.delete(copy.id, copy.outs ?? {}));
    await p.delete(overlay.id, overlay.outs ?? {});
    assertNothingLeft(t, "cl-t-sto-pool");
  },
);

test.serial("image file missing: create fails naming the file and the fix, creating nothing", async (t) => {
  const error = await rejection(
    t,
    direct(volumeProvider).create(vol("node-1.qcow2", { baseImagePath: "/nonexistent/cl-t-base.qcow2" })),
  );
  t.is(
    error.message,
    'creating volume "node-1.qcow2" failed: base image /nonexistent/cl-t-base.qcow2 does not exist. ' +
      "Fix: let the base-image resource download it again (`pulumi up --refresh`), or check cilium-lab:imageUrl; scripts/lab-clean.sh --purge-image-cache clears a broken cache.",
  );
  assertNothingLeft(t, "cl-t-sto-pool");
});

test.serial(
  "an overlay on a base under /root is refused before qemu fails with Permission denied at boot",
  async (t) => {
    const hidden = "/root/cl-t-sto-base.qcow2";
    fs.copyFileSync(base, hidden);
    try {
      const error = await rejection(t, direct(volumeProvider).create(vol("node-1.qcow2", { baseImagePath: hidden })));
      t.is(
        error.message,
        `creating volume "node-1.qcow2" failed: the qemu user (libvirt-qemu) cannot reach the backing file ${hidden}: /root has mode 0700. ` +
          "Fix: import the base into the pool directory first (a Volume with mode copy) and overlay that, or keep the image cache in a directory others can traverse.",
      );
      // The copy mode is the way out: it works from the same file.
      const copy = await direct(volumeProvider).create(
        vol("base.qcow2", { baseImagePath: hidden, mode: "copy", sizeGiB: 1 }),
      );
      await direct(volumeProvider).delete(copy.id, copy.outs ?? {});
    } finally {
      fs.rmSync(hidden);
    }
    assertNothingLeft(t, "cl-t-sto-pool");
  },
);

test.serial(
  "disk full: a copy that does not fit a tiny tmpfs pool fails with free vs needed, leaving nothing",
  async (t) => {
    const mnt = mountTmpfs("cl-t-sto-full", "8m");
    try {
      const dir = path.join(mnt, "pool");
      const error = await rejection(
        t,
        direct(volumeProvider).create(
          vol("base.qcow2", { poolDir: dir, baseImagePath: base, mode: "copy", sizeGiB: 1 }),
        ),
      );
      const s = fs.statfsSync(mnt);
      const needed = info(base)["actual-size"] + 1024 ** 2;
      t.is(
        error.message,
        `creating volume "base.qcow2" in ${dir} failed: not enough disk space in ${dir} (free ${mib(s.bavail * s.bsize)}, needed at least ${mib(needed)}). ` +
          "Nothing was left behind. Fix: free space on that filesystem, or use a pool directory on a larger one.",
      );
      t.deepEqual(fs.readdirSync(mnt), [], "no pool directory, marker or partial file is left");
    } finally {
      unmountTmpfs(mnt);
    }
  },
);

test.serial("pool directories: a non-empty foreign one and another stack's are refused", async (t) => {
  const foreign = poolDir("cl-t-sto-foreign");
  fs.mkdirSync(foreign, { mode: 0o755 });
  fs.writeFileSync(path.join(foreign, "precious.img"), "x");
  const e1 = await rejection(t, direct(volumeProvider).create(vol("node-1.qcow2", { poolDir: foreign })));
  t.is(
    e1.message,
    `pool directory ${foreign} exists, is not empty and was not created by cilium-lab (no ${POOL_MARKER}); refusing to put lab files among 1 foreign file(s). ` +
      "Fix: choose an empty or new directory for the stack.",
  );
  t.deepEqual(fs.readdirSync(foreign), ["precious.img"]);

  const other = await direct(volumeProvider).create(vol("node-1.qcow2", { stack: "cl-t-sto-other" }));
  const e2 = await rejection(t, direct(volumeProvider).create(vol("node-2.qcow2")));
  t.is(
    e2.message,
    `pool directory ${poolDir("cl-t-sto-pool")} belongs to cilium-lab stack "cl-t-sto-other" (${path.join(poolDir("cl-t-sto-pool"), POOL_MARKER)}), not to stack "${STACK}". ` +
      "Fix: give each stack its own pool directory.",
  );
  await direct(volumeProvider).delete(other.id, other.outs ?? {});
  fs.rmSync(foreign, { recursive: true });
  assertNothingLeft(t, "cl-t-sto-pool");
  assertNothingLeft(t, "cl-t-sto-foreign");
});

test.serial("leftovers of an interrupted run (a .part and a stale file) are replaced", async (t) => {
  const p = direct(volumeProvider);
  const first = await p.create(vol("node-1.qcow2"));
  fs.writeFileSync(`${first.id}.part`, "half");
  fs.writeFileSync(first.id, "stale, not qcow2");
  const again = await p.create(vol("node-1.qcow2"));
  t.is(info(again.id).format, "qcow2");
  t.false(fs.existsSync(`${again.id}.part`));
  await p.delete(again.id, again.outs ?? {});
  assertNothingLeft(t, "cl-t-sto-pool");
});

// ---------------------------------------------------------------------------------------------
// CloudInitDisk

const USER_DATA =
  "#cloud-config\nssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    cl-t-secret-marker\n    -----END OPENSSH PRIVATE KEY-----\n";
const seed = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uri: URI,
  poolDir: poolDir("cl-t-sto-seed"),
  name: "node-1-seed",
  userData: USER_DATA,
  metaData: "instance-id: cl-t-1\nlocal-hostname: node-1\n",
  networkConfig:
    'version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "52:54:00:c1:c0:01"\n    dhcp4: true\n',
  stack: STACK,
  providerVersion: 1,
  ...extra,
});

test.serial(
  "a NoCloud seed: cidata ISO with the three files, 0600, content-hashed name, digests but no content in outputs",
  async (t) => {
    const p = await roundTrip(cloudInitDiskProvider);
    const inputs = (await p.check({}, seed())).inputs ?? {};
    const { id, outs } = await p.create(inputs);
    const digests = seedDigests(inputs as { userData: string; metaData: string; networkConfig: string });
    t.is(id, path.join(poolDir("cl-t-sto-seed"), `node-1-seed-${digests.contentSha256.slice(0, 12)}.iso`));
    t.is(fs.statSync(id).mode & 0o777, 0o600);
    t.regex(sh("isoinfo", ["-d", "-i", id]), /^Volume id: cidata$/m);
    t.deepEqual(sh("isoinfo", ["-f", "-R", "-i", id]).trim().split("\n").sort(), [
      "/meta-data",
      "/network-config",
      "/user-data",
    ]);
    t.is(sh("isoinfo", ["-R", "-x", "/user-data", "-i", id]), USER_DATA);
    t.is(sh("isoinfo", ["-R", "-x", "/network-config", "-i", id]), seed().networkConfig as string);
    t.false(JSON.stringify(outs).includes("cl-t-secret-marker"), "outputs never hold the user-data");
    t.deepEqual(
      fs.readdirSync(poolDir("cl-t-sto-seed")).sort(),
      [POOL_MARKER, path.basename(id)],
      "no temporary copies left beside it",
    );
    t.like(outs, { path: id, ...digests, stack: STACK });

    t.deepEqual(await p.read(id, outs ?? {}), { id, props: outs });
    t.deepEqual(await p.diff(id, outs ?? {}, inputs), { changes: false, replaces: [], deleteBeforeReplace: false });
    t.deepEqual(await p.diff(id, outs ?? {}, { ...inputs, userData: `${USER_DATA}# changed\n` }), {
      changes: true,
      replaces: ["userData"],
      deleteBeforeReplace: true,
    });
    await p.delete(id, outs ?? {});
    assertNothingLeft(t, "cl-t-sto-seed");
    await t.notThrowsAsync(p.delete(id, outs ?? {}));
  },
);

test.serial("a seed deleted by hand reads as gone, and delete succeeds", async (t) => {
  const p = direct(cloudInitDiskProvider);
  const { id, outs } = await p.create(seed());
  fs.rmSync(id);
  t.deepEqual(await p.read(id, outs ?? {}), { id: "" });
  await t.notThrowsAsync(p.delete(id, outs ?? {}));
  assertNothingLeft(t, "cl-t-sto-seed");
});

test.serial("disk full while genisoimage writes: the error names free vs needed and nothing is left", async (t) => {
  const mnt = mountTmpfs("cl-t-sto-sfull", "600k");
  try {
    const dir = path.join(mnt, "pool");
    // Big enough that the ISO cannot fit after our 512 KiB pre-check passed: a real ENOSPC.
    const big = `${USER_DATA}${"# padding to fill the tmpfs\n".repeat(16_000)}`;
    const error = await rejection(t, direct(cloudInitDiskProvider).create(seed({ poolDir: dir, userData: big })));
    const name = `node-1-seed-${seedDigests({ userData: big, metaData: seed().metaData as string, networkConfig: seed().networkConfig as string }).contentSha256.slice(0, 12)}.iso`;
    const s = fs.statfsSync(mnt);
    t.is(
      error.message,
      `creating cloud-init seed ${name} in ${dir} failed: not enough disk space in ${dir} (free ${mib(s.bavail * s.bsize)}, needed at least 0.5 MiB). ` +
        "Nothing was left behind. Fix: free space on that filesystem, or use a pool directory on a larger one.",
    );
    t.regex((error.cause as Error).message, /No space left on device|failed to genisoimage/);
    t.false(error.message.includes("padding"), "the message does not quote user-data");
    t.deepEqual(fs.readdirSync(mnt), []);
  } finally {
    unmountTmpfs(mnt);
  }
});

test.serial(
  "with a libvirt dir pool instead of poolDir: files land in its target, vol-list follows, the pool directory stays",
  async (t) => {
    const target = poolDir("cl-t-sto-lvpool");
    fs.mkdirSync(target, { mode: 0o755 });
    virsh("pool-define-as", "cl-t-sto-lvpool", "dir", "--target", target);
    virsh("pool-start", "cl-t-sto-lvpool");
    try {
      const p = direct(volumeProvider);
      const v = await p.create({ uri: URI, pool: "cl-t-sto-lvpool", name: "node-1.qcow2", sizeGiB: 1, stack: STACK });
      t.is(v.id, path.join(target, "node-1.qcow2"));
      t.like(v.outs, { pool: "cl-t-sto-lvpool", poolDir: target });
      t.regex(virsh("vol-list", "cl-t-sto-lvpool"), /node-1\.qcow2/);
      t.deepEqual(
        await p.diff(v.id, v.outs ?? {}, {
          uri: URI,
          pool: "cl-t-sto-lvpool",
          name: "node-1.qcow2",
          sizeGiB: 1,
          stack: STACK,
          providerVersion: 1,
        }),
        {
          changes: false,
          replaces: [],
          deleteBeforeReplace: false,
        },
      );
      await p.delete(v.id, v.outs ?? {});
      t.notRegex(virsh("vol-list", "cl-t-sto-lvpool"), /node-1\.qcow2/);
      t.deepEqual(fs.readdirSync(target), [], "our files and marker are gone; the pool's directory stays");
      t.regex(virsh("pool-info", "cl-t-sto-lvpool"), /State:\s+running/);
    } finally {
      virsh("pool-destroy", "cl-t-sto-lvpool");
      virsh("pool-undefine", "cl-t-sto-lvpool");
      fs.rmSync(target, { recursive: true, force: true });
    }
    assertNothingLeft(t, "cl-t-sto-lvpool");
  },
);
