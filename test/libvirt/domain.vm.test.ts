// The Domain provider against real libvirtd under TCG, without booting an OS: a blank disk makes
// SeaBIOS loop, which is enough for the fault rows (no lease → timeout error and rollback, missing
// reservation, foreign name, missing disk, missing host bridge, libvirtd down, killed mid-create then
// create again, deleted or stopped by hand, deleting a running domain). Disk, seed and console log
// are volumes of a libvirt pool, checked through virsh only: the suite runs as the unprivileged test
// user (group libvirt), who cannot read the pool directory. The real boot is in boot.vm.test.ts.
//
// Suffix .vm, the heaviest of its needs: it starts TCG domains (SeaBIOS only, no test image); it
// also needs libvirtd.
import test from "ava";
import * as path from "node:path";

import { cloudInitDiskProvider } from "../../infra/libvirt/seed";
import { domainProvider, type DomainInputs, type DomainOutputs } from "../../infra/libvirt/domain";
import { networkProvider } from "../../infra/libvirt/network";
import {
  POOL_MARKER_VOLUME,
  createVolume,
  deleteVolume,
  ensureDirPool,
  poolTargetPath,
  uploadVolume,
  writePoolMarker,
} from "../../infra/libvirt/storage";
import { domainXml } from "../../infra/libvirt/xml";
import type { Versioned } from "../../infra/provider";
import {
  DEAD_URI,
  DEAD_URI_UNREACHABLE,
  URI,
  assertNothingLeft,
  direct,
  foreignDomainXml,
  keyPair,
  killedCreate,
  rejection,
  sh,
  sweep,
  tempFile,
  virsh,
  virshTry,
} from "./support";
import { firstBlockIs, poolVolumes, scratch } from "./domain-support";
import { sweepPools } from "./storage-support";

const PREFIX = "cl-t-dom";
const STACK = PREFIX;
const NET = PREFIX;
/** The suite's libvirt dir pool and its target directory (made by libvirtd, root 0711). */
const POOL = `${PREFIX}-pool`;
const TARGET = poolTargetPath(POOL);
const MAC1 = "52:54:00:c1:c0:01";
const IP1 = "192.168.192.11";

// A throwaway key pair: these domains never boot far enough to use it.
const keys = keyPair("cl-t");

let network: { id: string; outs?: Record<string, unknown> };
let seed: { id: string; outs?: Record<string, unknown> } | undefined;
let disk = "";
let seedPath = "";

test.before(async () => {
  sweep(PREFIX);
  sweepPools(PREFIX);
  network = await direct(networkProvider).create({
    uri: URI,
    networkName: NET,
    bridgeName: "cl-t-dom0",
    cidr: "192.168.192.0/24",
    gateway: "192.168.192.1",
    hosts: [{ mac: MAC1, ip: IP1, hostname: "node-1" }],
    stack: STACK,
  });
  await ensureDirPool(URI, POOL, TARGET);
  // A seed goes only into a pool whose marker names the stack (CloudInitDisk create checks it).
  await writePoolMarker(URI, POOL, { project: "cilium-lab", stack: STACK });
  disk = await createVolume(URI, POOL, { name: "blank.qcow2", capacityBytes: 1024 ** 3, format: "qcow2" });
  seed = await direct(cloudInitDiskProvider).create({
    uri: URI,
    pool: POOL,
    name: "seed",
    userData: "#cloud-config\n",
    metaData: "instance-id: cl-t-dom\n",
    stack: STACK,
  });
  seedPath = seed.id;
});

test.after.always(async () => {
  if (seed) {
    await direct(cloudInitDiskProvider).delete(seed.id, seed.outs ?? {});
  }
  await deleteVolume(URI, POOL, "blank.qcow2");
  if (network) {
    await direct(networkProvider).delete(network.id, network.outs ?? {});
  }
  sweepPools(PREFIX);
  sweep(PREFIX);
});

/** Defines domain `name` the way create defines it (create itself needs a booting OS: boot.vm.test.ts). */
function defineLikeCreate(name: string, consoleLogPath: string): void {
  virsh(
    "define",
    tempFile(
      "d.xml",
      domainXml({
        name,
        stack: STACK,
        vcpus: 1,
        memoryMiB: 256,
        accelerator: "qemu",
        diskPath: disk,
        seedPath,
        networkName: NET,
        mac: MAC1,
        consoleLogPath,
      }),
    ),
  );
}

function inputs(name: string, extra: Partial<DomainInputs> = {}): DomainInputs & Versioned {
  return {
    uri: URI,
    domainName: name,
    vcpus: 1,
    memoryMiB: 256,
    diskPath: disk,
    seedPath,
    networkName: NET,
    mac: MAC1,
    ip: IP1,
    accelerator: "qemu",
    consoleLogPath: `${TARGET}/${name}-console.log`,
    pool: POOL,
    bootTimeoutSeconds: 8,
    sshUser: "ubuntu",
    sshPrivateKey: keys.priv,
    hostPublicKey: keys.pub,
    stack: STACK,
    providerVersion: 1,
    ...extra,
  };
}

/** Domains (any state) whose names start with this suite's prefix. */
function ourDomains(): string[] {
  return virsh("list", "--all", "--name")
    .split("\n")
    .filter((n) => n.startsWith(PREFIX));
}

/** Only our shared fixtures may remain: the network, the pool's marker, the blank disk and the seed. */
function assertOnlyFixtures(t: Parameters<typeof assertNothingLeft>[0]): void {
  t.deepEqual(ourDomains(), [], "no domain of ours is left");
  t.deepEqual(
    poolVolumes(POOL),
    [POOL_MARKER_VOLUME, "blank.qcow2", path.basename(seedPath)].sort(),
    "no console log is left",
  );
}

const noLease = (name: string, timeout: number): string =>
  `node "${name}" (MAC ${MAC1}, expected IP ${IP1}) was not ready within ${timeout} s: no DHCP lease for ${MAC1}.\n` +
  `DHCP leases on network "${NET}": none.\n` +
  `Last 20 lines of the serial console (${TARGET}/${name}-console.log): (empty)\n` +
  "The domain was destroyed and undefined (its disk and seed are kept). " +
  `Fix: the guest never asked for (or got) its reserved address: check the console for boot or cloud-init errors, that the seed's network-config enables DHCP on the NIC with MAC ${MAC1}, and \`virsh net-dumpxml ${NET}\` for the reservation. ` +
  "Under TCG (accelerator qemu) a boot takes minutes: raise cilium-lab:bootTimeoutSeconds if the console shows a boot still in progress.";

test.serial(
  "no lease: create waits bootTimeoutSeconds, names node, MAC, IP, leases and console, and rolls back",
  async (t) => {
    const started = Date.now();
    const error = await rejection(t, direct(domainProvider).create(inputs("cl-t-dom-nolease")));
    t.is(error.message, noLease("cl-t-dom-nolease", 8));
    t.true(Date.now() - started >= 8000, "it waited the full timeout");
    t.false(error.message.includes("PRIVATE KEY"), "the private key never appears in errors");
    assertOnlyFixtures(t);
  },
);

test.serial("a MAC without a DHCP reservation fails at once, before anything is defined", async (t) => {
  const error = await rejection(
    t,
    direct(domainProvider).create(inputs("cl-t-dom-nores", { mac: "52:54:00:c1:c0:09" })),
  );
  t.is(
    error.message,
    `creating domain "cl-t-dom-nores" failed: network "${NET}" has no DHCP reservation 52:54:00:c1:c0:09 → ${IP1} (it has: ${MAC1} → ${IP1}), so the node would never get its address. ` +
      "Nothing was created. Fix: add the node to the Network's hosts.",
  );
  assertOnlyFixtures(t);
});

test.serial("a foreign domain with our name is refused by name and left untouched", async (t) => {
  const name = "cl-t-dom-frgn";
  virsh("define", tempFile("d.xml", foreignDomainXml(name)));
  const uuid = virsh("domuuid", name).trim();
  const error = await rejection(t, direct(domainProvider).create(inputs(name)));
  t.is(
    error.message,
    `creating domain "${name}" failed: a libvirt domain "${name}" already exists and was not created by cilium-lab stack "${STACK}" (no cilium-lab owner stamp). ` +
      `Nothing was changed. Fix: remove it (\`virsh destroy ${name}; virsh undefine ${name} --nvram\`) if it is not needed, or use another stack name.`,
  );
  t.is(virsh("domuuid", name).trim(), uuid);
  virsh("undefine", name);
  assertOnlyFixtures(t);
});

test.serial("a missing disk is named with the fix, and nothing is defined", async (t) => {
  const error = await rejection(
    t,
    direct(domainProvider).create(inputs("cl-t-dom-nodisk", { diskPath: `${TARGET}/missing.qcow2` })),
  );
  t.is(
    error.message,
    `creating domain "cl-t-dom-nodisk" failed: disk ${TARGET}/missing.qcow2 does not exist. Nothing was created. Fix: the node's Volume creates it; run \`pulumi up --refresh\`.`,
  );
  assertOnlyFixtures(t);
});

test.serial("libvirtd down: create, read and delete fail naming the socket; read never blanks the id", async (t) => {
  const p = direct(domainProvider);
  const reach = DEAD_URI_UNREACHABLE;
  const create = await rejection(t, p.create(inputs("cl-t-dom-down", { uri: DEAD_URI })));
  t.is(create.message, `creating domain "cl-t-dom-down" failed: ${reach}`);
  const id = "00000000-0000-4000-8000-000000000001";
  const props = { uri: DEAD_URI, domainName: "cl-t-dom-down" };
  t.is((await rejection(t, p.read(id, props))).message, `reading domain "cl-t-dom-down" (${id}) failed: ${reach}`);
  t.is((await rejection(t, p.delete(id, props))).message, `deleting domain "cl-t-dom-down" (${id}) failed: ${reach}`);
  assertOnlyFixtures(t);
});

test.serial(
  "killed mid-create (SIGKILL while booting), the next create removes our leftover and carries on",
  async (t) => {
    const name = "cl-t-dom-kill";
    const killed = await killedCreate({
      module: "libvirt/domain",
      provider: "domainProvider",
      inputs: inputs(name, { bootTimeoutSeconds: 600 }),
      started: () => virshTry("list", "--name").stdout.includes(name),
      pollMs: 250,
    });
    if (!killed) {
      return t.fail("the child never started the domain");
    }
    const leftover = virsh("domuuid", name).trim();
    t.true(
      poolVolumes(POOL).includes(`${name}-console.log`),
      "the killed run left a running domain and its console log, which libvirt lists as a volume of the pool after a refresh",
    );

    // The re-run gets past "already exists": it removes the stamped leftover and runs its own
    // create, which then times out on the blank disk exactly like a first run.
    const error = await rejection(t, direct(domainProvider).create(inputs(name)));
    t.is(error.message, noLease(name, 8));
    t.false(virshTry("domuuid", leftover).status === 0, "the leftover is gone");
    assertOnlyFixtures(t);
  },
);

test.serial(
  "freshDisk: create first empties the overlay on its own backing file (same size, 0600); a disk without one is refused before anything is defined",
  async (t) => {
    const name = "cl-t-dom-fresh";
    const dir = scratch(t);
    // What a booted guest leaves behind: data in the overlay itself. Written locally (into a file
    // without backing, then pointed at the pool's blank disk without opening it) and uploaded.
    const dirty = path.join(dir, "dirty.qcow2");
    sh("qemu-img", ["create", "-q", "-f", "qcow2", dirty, String(2 * 1024 ** 3)]);
    sh("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 64k", dirty]);
    sh("qemu-img", ["rebase", "-u", "-F", "qcow2", "-b", disk, dirty]);
    const overlay = await uploadVolume(URI, POOL, "fresh.qcow2", dirty, { format: "qcow2" });
    t.teardown(() => deleteVolume(URI, POOL, "fresh.qcow2"));
    t.true(firstBlockIs(POOL, dir, "fresh.qcow2", "0xab"), "the overlay holds the guest's data before");

    const error = await rejection(
      t,
      direct(domainProvider).create(inputs(name, { diskPath: overlay, freshDisk: true, bootTimeoutSeconds: 5 })),
    );
    t.true(
      error.message.startsWith(`node "${name}" (MAC ${MAC1}, expected IP ${IP1}) was not ready within 5 s`),
      error.message,
    );
    const xml = virsh("vol-dumpxml", "--pool", POOL, "fresh.qcow2");
    t.regex(xml, /<capacity unit='bytes'>2147483648<\/capacity>/);
    t.regex(xml, /<target>[\s\S]*<format type='qcow2'\/>[\s\S]*<mode>0600<\/mode>[\s\S]*<\/target>/);
    t.regex(xml, new RegExp(`<backingStore>\\s*<path>${disk}</path>\\s*<format type='qcow2'/>`));
    t.true(firstBlockIs(POOL, dir, "fresh.qcow2", "0"), "the old data is gone: the first 64 KiB read as zeros");

    const refused = await rejection(t, direct(domainProvider).create(inputs(name, { freshDisk: true })));
    t.is(
      refused.message,
      `creating domain "${name}" failed: freshDisk needs a qcow2 overlay, but ${disk} is qcow2 without a backing file. ` +
        "Nothing was created. Fix: make the disk a Volume with a backingPath, or leave freshDisk unset to boot the disk as it is.",
    );
    t.deepEqual(ourDomains(), [], "no domain was defined");
  },
);

test.serial(
  "a missing host bridge: start is refused naming the bridge and the fix, and neither the domain nor its console log is left",
  async (t) => {
    const name = "cl-t-dom-nobr";
    const error = await rejection(
      t,
      direct(domainProvider).create(inputs(name, { networkName: "", bridgeName: "cl-t-nobr0" })),
    );
    t.is(
      error.message,
      `creating domain "${name}" (starting it) failed: Failed to start domain '${name}' / Cannot get interface MTU on 'cl-t-nobr0': No such device ` +
        `(\`virsh -c ${URI} start ${name}\` exit 1). Fix: host bridge "cl-t-nobr0" does not exist on the libvirt host: create it there ` +
        "(`ip link add cl-t-nobr0 type bridge && ip link set cl-t-nobr0 up`, plus your uplink and the host's address) or set " +
        "`pulumi config set cilium-lab:bridge <existing bridge>`. The domain was destroyed and undefined (its disk and seed are kept).",
    );
    assertOnlyFixtures(t);
  },
);

test.serial(
  "read of a defined domain; stopped by hand asks for an update; deleted by hand reads as gone and delete succeeds",
  async (t) => {
    const p = direct(domainProvider);
    const name = "cl-t-dom-hand";
    const i = inputs(name);
    defineLikeCreate(name, i.consoleLogPath);
    const id = virsh("domuuid", name).trim();
    // The state create would have written: the inputs without the private key, plus what create adds.
    // eslint-disable-next-line @typescript-eslint/no-unused-vars -- dropped: the state never holds it
    const { sshPrivateKey, ...state } = i;
    const outs: DomainOutputs & Versioned = {
      ...state,
      uuid: id,
      networkName: NET,
      bridgeName: "",
      pool: POOL,
      hostPublicKey: keys.pub.split(" ").slice(0, 2).join(" "),
      freshDisk: false,
      running: true,
    };
    const read = await p.read(id, outs);
    t.deepEqual(
      read,
      { id, props: { ...outs, running: false } },
      "everything read back from libvirt matches; it is not running",
    );
    t.deepEqual(await p.diff(id, read.props ?? {}, (await p.check({}, i)).inputs ?? {}), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    t.deepEqual(await p.diff(id, read.props ?? {}, { ...((await p.check({}, i)).inputs ?? {}), memoryMiB: 512 }), {
      changes: true,
      replaces: ["memoryMiB"],
      deleteBeforeReplace: true,
    });

    virsh("undefine", name);
    t.deepEqual(await p.read(id, outs), { id: "" });
    await t.notThrowsAsync(p.delete(id, outs));
    assertOnlyFixtures(t);
  },
);

test.serial("delete destroys a running domain, undefines it and removes its console log", async (t) => {
  const name = "cl-t-dom-run";
  const i = inputs(name);
  defineLikeCreate(name, i.consoleLogPath);
  virsh("start", name);
  const id = virsh("domuuid", name).trim();
  t.true(poolVolumes(POOL).includes(`${name}-console.log`), "virtlogd made the console log, a volume of the pool");
  await direct(domainProvider).delete(id, {
    uri: URI,
    domainName: name,
    consoleLogPath: i.consoleLogPath,
    pool: POOL,
    stack: STACK,
  });
  assertOnlyFixtures(t);
});
