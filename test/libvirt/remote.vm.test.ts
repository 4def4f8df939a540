// test-runs-as: root
// (it creates the test bridge; the private sshd then runs as root and logs in root, whose libvirt
// connection is the same system daemon)
//
// A node boots through qemu+ssh, for real, on loopback: the stack's pool, the base image upload, the
// seed upload, the domain, its console log and every delete go through
// `qemu+ssh://root@127.0.0.1:<port>/system?keyfile=…` (sshd-harness.ts), in bridge mode, as the
// config requires for remote hosts: the node sits on a bridge with a host address from 192.0.2.0/24
// (TEST-NET-1), no uplink and nothing forwarded, and is reached from here by SSH on its static
// address. The bridge takes the upper half, 192.0.2.128/25 (host .129, node .150): some build
// hosts sit on 192.0.2.0/24 themselves (eth0 192.0.2.2, gateway 192.0.2.1), and the /25 is more
// specific than their /24, while .1 and .2 stay untouched. It is one daemon reached two ways: true
// multi-host was not run here.
//
// Suffix .vm: it boots a VM under TCG.
import test from "ava";
import { spawnSync } from "node:child_process";

import { domainProvider, pinnedHostKeyOptions } from "../../infra/libvirt/domain";
import { cloudInitDiskProvider } from "../../infra/libvirt/seed";
import {
  createVolume,
  ensureDirPool,
  hostUuid,
  poolTargetPath,
  removePoolIfEmpty,
  uploadVolume,
  deleteVolume,
} from "../../infra/libvirt/storage";
import { LAB_USER, renderMetaData, renderNetworkConfig, renderUserData } from "../../infra/nodes/cloud-init";
import { startSshd, type Sshd } from "./sshd-harness";
import { sweepPools } from "./storage-support";
import {
  URI,
  assertNothingLeft,
  keyPair,
  roundTrip,
  sh,
  sweep,
  tempFile,
  testImage,
  virsh,
  type AnyProvider,
} from "./support";

const PREFIX = "clt-rv";
const STACK = PREFIX;
const BRIDGE = `${PREFIX}0`;
const POOL = `${PREFIX}-pool`;
const MAC = "52:54:00:c1:b2:01";
const IP = "192.0.2.150";
const LAN = { host: "192.0.2.129", prefix: 25 } as const;
const DOMAIN = `${PREFIX}-node-1`;
/** TCG on a shared 2-core host: boots took 50–200 s here; the bound only matters when something is broken. */
const BOOT_TIMEOUT = 900;

const user = keyPair("clt-rv-user");
const host = keyPair("clt-rv-host");

let sshd: Sshd;
let remote = "";

/** Removes the test bridge if it exists (a crashed run's leftover too). */
function removeBridge(): void {
  if (spawnSync("ip", ["link", "show", BRIDGE], { stdio: "ignore" }).status === 0) {
    sh("ip", ["link", "del", BRIDGE]);
  }
}

test.before(async () => {
  // Pools first: sweep() undefines pools without deleting their volumes.
  sweepPools(PREFIX);
  sweep(PREFIX);
  removeBridge();
  sshd = await startSshd();
  sshd.trustHostKey();
  remote = sshd.uri();
  sh("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  sh("ip", ["addr", "add", `${LAN.host}/${LAN.prefix}`, "dev", BRIDGE]);
  sh("ip", ["link", "set", BRIDGE, "up"]);
});

test.after.always(async () => {
  // Pools first: sweep() undefines pools without deleting their volumes.
  sweepPools(PREFIX);
  sweep(PREFIX);
  removeBridge();
  await sshd?.stop();
});

/** ssh as the lab user with strict host key checking against the pinned host key. */
function ssh(command: string): string {
  const knownHosts = tempFile("known_hosts", `${IP} ${host.pub}\n`);
  const opts = [...pinnedHostKeyOptions(knownHosts), "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"];
  return sh("ssh", [...opts, "-i", user.file, `${LAB_USER}@${IP}`, command]);
}

test.serial("a node boots through qemu+ssh on loopback in bridge mode, and its deletes leave nothing", async (t) => {
  const p: { seed: AnyProvider; dom: AnyProvider } = {
    seed: await roundTrip(cloudInitDiskProvider),
    dom: await roundTrip(domainProvider),
  };
  t.is(await hostUuid(remote), await hostUuid(URI), "one daemon reached two ways");
  await ensureDirPool(remote, POOL, poolTargetPath(POOL));
  const basePath = await uploadVolume(remote, POOL, "base.qcow2", testImage().path, { format: "qcow2" });
  const disk = await createVolume(remote, POOL, {
    name: "node-1.qcow2",
    capacityBytes: 8 * 1024 ** 3,
    format: "qcow2",
    backing: { path: basePath, format: "qcow2" },
  });
  const seedInputs = {
    uri: remote,
    pool: POOL,
    name: "node-1-seed",
    userData: renderUserData({
      hostname: "node-1",
      authorizedKeys: [user.pub],
      hostKey: { privateKey: host.priv, publicKey: host.pub },
      duplicateAddressCheck: { address: IP, mac: MAC },
    }),
    metaData: renderMetaData({ instanceId: `${PREFIX}-1`, hostname: "node-1" }),
    networkConfig: renderNetworkConfig({
      mac: MAC,
      static: { address: IP, prefix: LAN.prefix, gateway: LAN.host, dns: [LAN.host] },
    }),
    stack: STACK,
  };
  const seed = await p.seed.create((await p.seed.check({}, seedInputs)).inputs ?? {});
  const domInputs = {
    uri: remote,
    domainName: DOMAIN,
    vcpus: 1,
    memoryMiB: 1024,
    diskPath: disk,
    seedPath: seed.id,
    bridgeName: BRIDGE,
    mac: MAC,
    ip: IP,
    accelerator: "qemu",
    consoleLogPath: `${poolTargetPath(POOL)}/node-1-console.log`,
    pool: POOL,
    bootTimeoutSeconds: BOOT_TIMEOUT,
    sshUser: LAB_USER,
    sshPrivateKey: user.priv,
    hostPublicKey: host.pub,
    stack: STACK,
    freshDisk: true,
    providerVersion: 1,
  };
  const check = await p.dom.check({}, domInputs);
  t.deepEqual(check.failures ?? [], [], "the Domain provider accepts the qemu+ssh URI");
  const started = Date.now();
  const dom = await p.dom.create(check.inputs ?? {});
  t.log(`boot through qemu+ssh to SSH login under TCG: ${Math.round((Date.now() - started) / 1000)} s`);
  t.like(dom.outs, { domainName: DOMAIN, ip: IP, bridgeName: BRIDGE, running: true });
  t.is(ssh("hostname").trim(), "node-1");
  t.regex(virsh("domiflist", DOMAIN), new RegExp(`bridge\\s+${BRIDGE}\\s+virtio\\s+${MAC}`), "seen locally too");
  const read = await p.dom.read(dom.id, dom.outs ?? {});
  t.is(read.id, dom.id, "read through qemu+ssh finds the domain");

  await p.dom.delete(dom.id, dom.outs ?? {});
  await p.seed.delete(seed.id, seed.outs ?? {});
  await deleteVolume(remote, POOL, "node-1.qcow2");
  await deleteVolume(remote, POOL, "base.qcow2");
  t.like(await removePoolIfEmpty(remote, POOL), { removed: true });
  const logins = sshd.log().match(/Accepted publickey for root from 127\.0\.0\.1/g) ?? [];
  t.log(`sshd logins: ${logins.length}`);
  t.true(logins.length >= 5, `every step logged in over ssh (${logins.length} logins)`);
  removeBridge();
  assertNothingLeft(t, PREFIX);
});
