// The Domain provider against real libvirtd under TCG, without booting an OS: a blank disk makes
// SeaBIOS loop, which is enough for the fault rows (no lease → timeout error and rollback, missing
// reservation, foreign name, missing disk, libvirtd down, killed mid-create then create again,
// deleted or stopped by hand, deleting a running domain). The real boot is in boot.vm.test.ts.
//
// Suffix .vm, the heaviest of its needs: it starts TCG domains (SeaBIOS only, no test image); it
// also needs libvirtd and root.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";

import type * as pulumi from "@pulumi/pulumi";

import { cloudInitDiskProvider } from "../../infra/libvirt/seed";
import { domainProvider, type DomainInputs, type DomainOutputs } from "../../infra/libvirt/domain";
import { networkProvider } from "../../infra/libvirt/network";
import { volumeProvider } from "../../infra/libvirt/volume";
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
  suiteNames,
  sweep,
  tempFile,
  virsh,
  virshTry,
} from "./support";

const PREFIX = "cl-t-dom";
const { stack: STACK, network: NET, pool: POOL } = suiteNames(PREFIX);
const MAC1 = "52:54:00:c1:c0:01";
const IP1 = "192.168.192.11";

// A throwaway key pair: these domains never boot far enough to use it.
const keys = keyPair("cl-t");

let network: { id: string; outs?: Record<string, unknown> };
const made: { p: pulumi.dynamic.ResourceProvider; id: string; outs?: Record<string, unknown> }[] = [];
let disk = "";
let seedPath = "";

test.before(async () => {
  sweep(PREFIX);
  network = await direct(networkProvider).create({
    uri: URI,
    networkName: NET,
    bridgeName: "cl-t-dom0",
    cidr: "192.168.192.0/24",
    gateway: "192.168.192.1",
    hosts: [{ mac: MAC1, ip: IP1, hostname: "node-1" }],
    stack: STACK,
  });
  const v = await direct(volumeProvider).create({
    uri: URI,
    poolDir: POOL,
    name: "blank.qcow2",
    sizeGiB: 1,
    stack: STACK,
  });
  const s = await direct(cloudInitDiskProvider).create({
    uri: URI,
    poolDir: POOL,
    name: "seed",
    userData: "#cloud-config\n",
    metaData: "instance-id: cl-t-dom\n",
    stack: STACK,
  });
  made.push({ p: volumeProvider, ...v }, { p: cloudInitDiskProvider, ...s });
  disk = v.id;
  seedPath = s.id;
});

test.after.always(async () => {
  for (const m of made.reverse()) {
    await direct(m.p).delete(m.id, m.outs ?? {});
  }
  if (network) {
    await direct(networkProvider).delete(network.id, network.outs ?? {});
  }
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
    consoleLogPath: path.join(POOL, `${name}-console.log`),
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

/** Only our shared fixtures may remain: the network, the blank disk and the seed. */
function assertOnlyFixtures(t: Parameters<typeof assertNothingLeft>[0]): void {
  t.deepEqual(ourDomains(), [], "no domain of ours is left");
  t.deepEqual(
    fs.readdirSync(POOL).sort(),
    [".cilium-lab-pool.json", path.basename(disk), path.basename(seedPath)].sort(),
    "no console log is left",
  );
}

const noLease = (name: string, timeout: number): string =>
  `node "${name}" (MAC ${MAC1}, expected IP ${IP1}) was not ready within ${timeout} s: no DHCP lease for ${MAC1}.\n` +
  `DHCP leases on network "${NET}": none.\n` +
  `Last 20 lines of the serial console (${path.join(POOL, `${name}-console.log`)}): (empty)\n` +
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
    direct(domainProvider).create(inputs("cl-t-dom-nodisk", { diskPath: path.join(POOL, "missing.qcow2") })),
  );
  t.is(
    error.message,
    `creating domain "cl-t-dom-nodisk" failed: disk ${path.join(POOL, "missing.qcow2")} does not exist. Nothing was created. Fix: the node's Volume creates it; run \`pulumi up --refresh\`.`,
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
      fs.existsSync(path.join(POOL, `${name}-console.log`)),
      "the killed run left a running domain and its console log",
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
    const overlay = await direct(volumeProvider).create({
      uri: URI,
      poolDir: POOL,
      name: "fresh.qcow2",
      baseImagePath: disk,
      sizeGiB: 2,
      stack: STACK,
    });
    t.teardown(() => direct(volumeProvider).delete(overlay.id, overlay.outs ?? {}));
    // What a booted guest leaves behind: data in the overlay itself.
    sh("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 64k", overlay.id]);
    sh("qemu-io", ["-f", "qcow2", "-c", "read -P 0xab 0 64k", overlay.id]);

    const error = await rejection(
      t,
      direct(domainProvider).create(inputs(name, { diskPath: overlay.id, freshDisk: true, bootTimeoutSeconds: 5 })),
    );
    t.true(
      error.message.startsWith(`node "${name}" (MAC ${MAC1}, expected IP ${IP1}) was not ready within 5 s`),
      error.message,
    );
    const info = JSON.parse(sh("qemu-img", ["info", "-U", "--output=json", overlay.id])) as Record<string, unknown>;
    t.like(info, {
      format: "qcow2",
      "virtual-size": 2 * 1024 ** 3,
      "full-backing-filename": disk,
      "backing-filename-format": "qcow2",
    });
    // The old data is gone: the first 64 KiB read as the blank base's zeros (qemu-io exits 1 otherwise).
    t.regex(
      sh("qemu-io", ["-f", "qcow2", "-c", "read -P 0 0 64k", overlay.id]),
      /^read 65536\/65536 bytes at offset 0$/m,
    );
    t.is(fs.statSync(overlay.id).mode & 0o777, 0o600);
    t.false(fs.existsSync(`${overlay.id}.part`));

    const refused = await rejection(t, direct(domainProvider).create(inputs(name, { freshDisk: true })));
    t.is(
      refused.message,
      `creating domain "${name}" failed: freshDisk needs a qcow2 overlay, but ${disk} is qcow2 without a backing file. ` +
        "Nothing was created. Fix: make the disk a Volume in mode overlay, or leave freshDisk unset to boot the disk as it is.",
    );
    t.deepEqual(ourDomains(), [], "no domain was defined");
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
  t.true(fs.existsSync(i.consoleLogPath));
  await direct(domainProvider).delete(id, {
    uri: URI,
    domainName: name,
    consoleLogPath: i.consoleLogPath,
    stack: STACK,
  });
  assertOnlyFixtures(t);
});
