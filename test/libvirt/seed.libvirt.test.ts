// The CloudInitDisk provider against real libvirtd and cloud-localds, as the unprivileged test user:
// the seed is built in a private temp directory and uploaded into a libvirt dir pool, so everything
// is checked through virsh (the pool directory is libvirtd's, root 0711): the NoCloud ISO as
// downloaded, its mode, its content-hashed name, no content in outputs, no temp directory left
// (after success and after a failed build), read/delete, a seed deleted by hand, and a pool that
// is not the stack's (no marker, or another stack's) refused before anything is built or uploaded.
import test from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { cloudInitDiskProvider, seedDigests, seedFileName } from "../../infra/libvirt/seed";
import { POOL_MARKER_VOLUME, ensureDirPool, poolTargetPath, writePoolMarker } from "../../infra/libvirt/storage";
import { URI, direct, rejection, roundTrip, sh, virsh } from "./support";
import { poolVolumes, scratch } from "./domain-support";
import { poolsWithPrefix, sweepPools } from "./storage-support";

const PREFIX = "cl-t-seed";
const POOL = `${PREFIX}-pool`;
const TARGET = poolTargetPath(POOL);

const USER_DATA =
  "#cloud-config\nssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    cl-t-secret-marker\n    -----END OPENSSH PRIVATE KEY-----\n";
const seed = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uri: URI,
  pool: POOL,
  name: "node-1-seed",
  userData: USER_DATA,
  metaData: "instance-id: cl-t-1\nlocal-hostname: node-1\n",
  networkConfig:
    'version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "52:54:00:c1:c0:01"\n    dhcp4: true\n',
  stack: PREFIX,
  providerVersion: 1,
  ...extra,
});

/** Our private build directories left in the OS temp dir (the provider removes each in `finally`). */
function seedTempDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith("cilium-lab-seed-"));
}

test.before(async () => {
  sweepPools(PREFIX);
  await ensureDirPool(URI, POOL, TARGET);
  // The stack's pool, as StoragePool leaves it: marked with the stack (a seed goes nowhere else).
  await writePoolMarker(URI, POOL, { project: "cilium-lab", stack: PREFIX });
});

test.after.always(() => {
  sweepPools(PREFIX);
});

test.serial(
  "a NoCloud seed: cidata ISO with the three files, 0600, content-hashed name, digests but no content in outputs",
  async (t) => {
    const before = seedTempDirs();
    const p = await roundTrip(cloudInitDiskProvider);
    const inputs = (await p.check({}, seed())).inputs ?? {};
    const { id, outs } = await p.create(inputs);
    const digests = seedDigests(inputs as { userData: string; metaData: string; networkConfig: string });
    const name = `node-1-seed-${digests.contentSha256.slice(0, 12)}.iso`;
    t.is(id, `${TARGET}/${name}`);
    t.regex(virsh("vol-dumpxml", "--pool", POOL, name), /<mode>0600<\/mode>/, "the volume is 0600 on the host");
    const iso = path.join(scratch(t), "seed.iso");
    virsh("vol-download", "--pool", POOL, name, iso);
    t.regex(sh("isoinfo", ["-d", "-i", iso]), /^Volume id: cidata$/m);
    t.deepEqual(sh("isoinfo", ["-f", "-R", "-i", iso]).trim().split("\n").sort(), [
      "/meta-data",
      "/network-config",
      "/user-data",
    ]);
    t.is(sh("isoinfo", ["-R", "-x", "/user-data", "-i", iso]), USER_DATA);
    t.is(sh("isoinfo", ["-R", "-x", "/network-config", "-i", iso]), seed().networkConfig as string);
    t.false(JSON.stringify(outs).includes("cl-t-secret-marker"), "outputs never hold the user-data");
    t.deepEqual(poolVolumes(POOL), [POOL_MARKER_VOLUME, name], "nothing else in the pool but its marker");
    t.deepEqual(seedTempDirs(), before, "the private build directory is gone");
    t.like(outs, { path: id, pool: POOL, poolDir: "", ...digests, stack: PREFIX });

    t.deepEqual(await p.read(id, outs ?? {}), { id, props: outs });
    t.deepEqual(await p.diff(id, outs ?? {}, inputs), { changes: false, replaces: [], deleteBeforeReplace: false });
    t.deepEqual(await p.diff(id, outs ?? {}, { ...inputs, userData: `${USER_DATA}# changed\n` }), {
      changes: true,
      replaces: ["userData"],
      deleteBeforeReplace: true,
    });
    t.deepEqual(
      await p.diff(id, outs ?? {}, { ...inputs, uri: "qemu+ssh://lab@192.0.2.10/system" }),
      { changes: true, replaces: ["host"], deleteBeforeReplace: true },
      "another libvirt host is another seed",
    );
    t.deepEqual(
      await p.diff(id, outs ?? {}, { ...inputs, uri: `${URI}?socket=/run/libvirt/libvirt-sock` }),
      { changes: true, replaces: [], deleteBeforeReplace: false },
      "another way to the same daemon is an update",
    );
    await p.delete(id, outs ?? {});
    t.deepEqual(poolVolumes(POOL), [POOL_MARKER_VOLUME]);
    await t.notThrowsAsync(p.delete(id, outs ?? {}));
  },
);

test.serial("a seed deleted by hand reads as gone, and delete succeeds", async (t) => {
  const p = direct(cloudInitDiskProvider);
  const { id, outs } = await p.create(seed());
  virsh("vol-delete", "--pool", POOL, path.basename(id));
  t.deepEqual(await p.read(id, outs ?? {}), { id: "" });
  await t.notThrowsAsync(p.delete(id, outs ?? {}));
  t.deepEqual(poolVolumes(POOL), [POOL_MARKER_VOLUME]);
});

test.serial(
  "a failed cloud-localds: the error names the seed, the pool and the tool, quotes no user-data, and leaves no temp dir or volume",
  async (t) => {
    const before = seedTempDirs();
    const saved = process.env.CLOUD_LOCALDS_BIN;
    // A real tool run that fails: `false` ignores its arguments and exits 1.
    process.env.CLOUD_LOCALDS_BIN = "/bin/false";
    try {
      const inputs = seed();
      const error = await rejection(t, direct(cloudInitDiskProvider).create(inputs));
      const digests = seedDigests(inputs as { userData: string; metaData: string; networkConfig: string });
      const what = `creating cloud-init seed node-1-seed-${digests.contentSha256.slice(0, 12)}.iso in libvirt storage pool "${POOL}"`;
      const argv = "/bin/false -N network-config seed.iso user-data meta-data";
      // `false` prints nothing, so the reason is Node's "Command failed: <argv>".
      t.is(
        error.message,
        `${what} failed: Command failed: ${argv} (\`${argv}\` exit 1). Fix: check the cloud-localds message above. Nothing was uploaded.`,
      );
      t.false(error.message.includes("cl-t-secret-marker"));
    } finally {
      if (saved === undefined) {
        delete process.env.CLOUD_LOCALDS_BIN;
      } else {
        process.env.CLOUD_LOCALDS_BIN = saved;
      }
    }
    t.deepEqual(seedTempDirs(), before, "the private build directory is gone after the failure too");
    t.deepEqual(poolVolumes(POOL), [POOL_MARKER_VOLUME]);
  },
);

test.serial(
  "a pool that is not the stack's (no marker, or another stack's) is refused like a Volume's, before anything is built, replaced or uploaded",
  async (t) => {
    const before = seedTempDirs();
    const foreign = `${PREFIX}-foreign`;
    await ensureDirPool(URI, foreign, poolTargetPath(foreign));
    const inputs = seed({ pool: foreign });
    const name = seedFileName(
      "node-1-seed",
      seedDigests(inputs as { userData: string; metaData: string; networkConfig: string }).contentSha256,
    );
    // Theirs, at the seed's own name: a create that went ahead would replace it as "our leftover".
    virsh("vol-create-as", foreign, name, "1M");
    const refused = (owner: string): string =>
      `creating cloud-init seed ${name} in libvirt storage pool "${foreign}" failed: a libvirt storage pool "${foreign}" already exists and was not created by cilium-lab stack "${PREFIX}" (${owner}). ` +
      `Nothing was changed. Fix: remove it (\`virsh -c ${URI} pool-destroy ${foreign}; virsh -c ${URI} pool-undefine ${foreign}\`) if it is not needed, or use another stack name.`;
    const theirs = (): string | undefined =>
      /<capacity unit='bytes'>(\d+)</.exec(virsh("vol-dumpxml", "--pool", foreign, name))?.[1];
    const p = await roundTrip(cloudInitDiskProvider);

    t.is((await rejection(t, p.create(inputs))).message, refused("no cilium-lab owner stamp"));
    t.deepEqual(poolVolumes(foreign), [name], "the unmarked pool holds only its own volume");
    t.is(theirs(), "1048576", "their volume is untouched");

    await writePoolMarker(URI, foreign, { project: "cilium-lab", stack: "cl-t-seed-other" });
    t.is((await rejection(t, p.create(inputs))).message, refused('cilium-lab stack "cl-t-seed-other"'));
    t.deepEqual(poolVolumes(foreign), [POOL_MARKER_VOLUME, name], "another stack's pool gets nothing");
    t.is(theirs(), "1048576", "their volume is untouched");

    t.deepEqual(seedTempDirs(), before, "no build directory was made or left");
    t.deepEqual(poolVolumes(POOL), [POOL_MARKER_VOLUME], "nothing went into the stack's own pool either");
    sweepPools(foreign);
    t.deepEqual(poolsWithPrefix(foreign), []);
  },
);
