// The real boot: one TCG node from the Debian test image, created through the providers after the
// engine's serialization round trip, everything on the host as volumes of a libvirt pool (the image
// uploaded, the disk an overlay with a <backingStore>, the seed uploaded, the console log read back
// with vol-download). Then an SSH login with the generated key and the pinned host key, `hostname`
// and `ip -j addr` checks, refresh/diff, and delete leaving nothing. Second boot: the "no SSH" fault
// row (a private key the seed does not authorize) → the readiness error with the console tail, and
// the domain rolled back. Runs as the unprivileged test user (group libvirt).
//
// Needs the test image (scripts/dev/build-test-image.sh; cached after its first build).
// Suffix .vm, the heaviest of its needs: it boots a VM; it also needs libvirtd.
import test from "ava";

import { cloudInitDiskProvider } from "../../infra/libvirt/seed";
import { domainProvider, pinnedHostKeyOptions } from "../../infra/libvirt/domain";
import { networkProvider } from "../../infra/libvirt/network";
import {
  createVolume,
  deleteVolume,
  ensureDirPool,
  poolTargetPath,
  removePoolIfEmpty,
  uploadVolume,
  writePoolMarker,
} from "../../infra/libvirt/storage";
import {
  URI,
  assertNothingLeft,
  keyPair,
  rejection,
  roundTrip,
  sh,
  sweep,
  tempFile,
  testImage,
  virsh,
  type AnyProvider,
} from "./support";
import { poolVolumes } from "./domain-support";
import { sweepPools } from "./storage-support";

const PREFIX = "cl-t-boot";
const STACK = PREFIX;
const NET = PREFIX;
const POOL = `${PREFIX}-pool`;
const TARGET = poolTargetPath(POOL);
const CONSOLE = `${TARGET}/node-1-console.log`;
const MAC = "52:54:00:c1:c1:01";
const IP = "192.168.193.11";
const DOMAIN = "cl-t-boot-node-1";
const USER = "ubuntu"; // the test image's cloud-init default user, as on Ubuntu cloud images
/** TCG on a shared 2-core host: boots took 50–200 s here; the bound only matters when something is broken. */
const BOOT_TIMEOUT = 900;

const user = keyPair("cl-t-user");
const host = keyPair("cl-t-host");
const stranger = keyPair("cl-t-stranger");

const userData =
  "#cloud-config\n" +
  `ssh_authorized_keys:\n  - ${user.pub}\n` +
  "ssh_deletekeys: true\n" +
  "ssh_keys:\n" +
  `  ed25519_private: |\n${host.priv
    .trim()
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n")}\n` +
  `  ed25519_public: ${host.pub}\n`;

let p: { net: AnyProvider; seed: AnyProvider; dom: AnyProvider };
let network: { id: string; outs?: Record<string, unknown> };
/** The test image as a volume of the pool: what the overlays are backed by. */
let basePath = "";
let seed: { id: string; outs?: Record<string, unknown> };

test.before(async () => {
  sweep(PREFIX);
  sweepPools(PREFIX);
  p = {
    net: await roundTrip(networkProvider),
    seed: await roundTrip(cloudInitDiskProvider),
    dom: await roundTrip(domainProvider),
  };
});

test.after.always(async () => {
  for (const [prov, r] of [
    [p.seed, seed],
    [p.net, network],
  ] as const) {
    if (r) {
      await prov.delete(r.id, r.outs ?? {});
    }
  }
  sweepPools(PREFIX);
  sweep(PREFIX);
});

/** A fresh qcow2 overlay volume of the base image. */
function overlay(name: string): Promise<string> {
  const backing = { path: basePath, format: "qcow2" as const };
  return createVolume(URI, POOL, { name, capacityBytes: 8 * 1024 ** 3, format: "qcow2", backing });
}

function domainInputs(disk: string, sshPrivateKey: string): Record<string, unknown> {
  return {
    uri: URI,
    domainName: DOMAIN,
    vcpus: 1,
    memoryMiB: 1024,
    diskPath: disk,
    seedPath: seed.id,
    networkName: NET,
    mac: MAC,
    ip: IP,
    accelerator: "qemu",
    consoleLogPath: CONSOLE,
    pool: POOL,
    bootTimeoutSeconds: BOOT_TIMEOUT,
    sshUser: USER,
    sshPrivateKey,
    hostPublicKey: host.pub,
    stack: STACK,
    freshDisk: true,
    providerVersion: 1,
  };
}

/** ssh with strict host key checking against a known_hosts holding only `hostKey`. */
function ssh(hostKey: string, command: string): string {
  const knownHosts = tempFile("known_hosts", `${IP} ${hostKey}\n`);
  return sh("ssh", [
    ...pinnedHostKeyOptions(knownHosts),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=10",
    "-i",
    user.file,
    `${USER}@${IP}`,
    command,
  ]);
}

test.serial(
  "one TCG node boots through the providers, answers SSH with the pinned host key, and delete leaves nothing",
  async (t) => {
    const image = testImage();
    network = await p.net.create({
      uri: URI,
      networkName: NET,
      bridgeName: "cl-t-boot0",
      cidr: "192.168.193.0/24",
      gateway: "192.168.193.1",
      hosts: [{ mac: MAC, ip: IP, hostname: "node-1" }],
      stack: STACK,
    });
    await ensureDirPool(URI, POOL, TARGET);
    // A seed goes only into a pool whose marker names the stack (CloudInitDisk create checks it).
    await writePoolMarker(URI, POOL, { project: "cilium-lab", stack: STACK });
    basePath = await uploadVolume(URI, POOL, "base.qcow2", image.path, { format: "qcow2" });
    const disk = await overlay("node-1.qcow2");
    seed = await p.seed.create({
      uri: URI,
      pool: POOL,
      name: "node-1-seed",
      userData,
      metaData: "instance-id: cl-t-boot-1\nlocal-hostname: node-1\n",
      networkConfig: `version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "${MAC}"\n    dhcp4: true\n`,
      stack: STACK,
    });

    const news = (await p.dom.check({}, domainInputs(disk, user.priv))).inputs ?? {};
    const started = Date.now();
    const dom = await p.dom.create(news);
    t.log(`boot to SSH login under TCG: ${Math.round((Date.now() - started) / 1000)} s`);
    t.regex(dom.id, /^[0-9a-f-]{36}$/);
    t.false(JSON.stringify(dom.outs).includes("PRIVATE KEY"), "the private key is not in the outputs");
    t.like(dom.outs, {
      domainName: DOMAIN,
      ip: IP,
      mac: MAC,
      running: true,
      hostPublicKey: host.pub.split(" ").slice(0, 2).join(" "),
    });

    // Login with the generated key and the pinned host key; create returned after cloud-init finished.
    t.is(ssh(host.pub, "hostname").trim(), "node-1");
    t.is(ssh(host.pub, "cloud-init status").trim(), "status: done", "ready means cloud-init has finished");
    const addrs = JSON.parse(ssh(host.pub, "ip -j addr")) as {
      ifname: string;
      address: string;
      mtu: number;
      addr_info: { family: string; local: string; prefixlen: number }[];
    }[];
    const nic = addrs.find((a) => a.addr_info.some((i) => i.family === "inet" && i.local === IP));
    t.like(nic, { address: MAC, mtu: 1500 });
    t.deepEqual(
      nic?.addr_info.filter((i) => i.family === "inet").map((i) => `${i.local}/${i.prefixlen}`),
      [`${IP}/24`],
    );
    t.regex(
      ssh(host.pub, "ip -4 route show default"),
      /^default via 192\.168\.193\.1 dev /,
      "the gateway is the libvirt bridge",
    );
    // Another host key in known_hosts is refused: the pin is real.
    t.throws(() => ssh(stranger.pub, "true"), { message: /Host key verification failed/ });

    // Refresh yields the same state; re-apply is a no-op.
    t.deepEqual(await p.dom.read(dom.id, dom.outs ?? {}), { id: dom.id, props: dom.outs });
    t.deepEqual(await p.dom.diff(dom.id, dom.outs ?? {}, news), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });

    await p.dom.delete(dom.id, dom.outs ?? {});
    await deleteVolume(URI, POOL, "node-1.qcow2");
    t.deepEqual(
      virsh("list", "--all", "--name")
        .split("\n")
        .filter((n) => n.startsWith(PREFIX)),
      [],
    );
    t.false(poolVolumes(POOL).includes("node-1-console.log"), "the console log volume is gone");
  },
);

test.serial(
  "no SSH: a key the seed does not authorize gives the readiness error with the console tail, and the domain is rolled back",
  async (t) => {
    if (!seed) {
      return t.fail("needs the network, base and seed of the previous test");
    }
    const disk = await overlay("node-1b.qcow2");
    const started = Date.now();
    const error = await rejection(t, p.dom.create(domainInputs(disk, stranger.priv)));
    t.log(
      `gave up after ${Math.round((Date.now() - started) / 1000)} s; the error's first lines:\n${error.message.split("\n").slice(0, 3).join("\n")}`,
    );
    const escaped = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    t.regex(
      error.message,
      new RegExp(
        `^node "${DOMAIN}" \\(MAC ${MAC}, expected IP ${escaped(IP)}\\) was not ready \\(gave up after \\d+ s of ${BOOT_TIMEOUT} s: sshd answered but kept refusing for 60 s\\): ` +
          `SSH login as ${USER} failed \\([^\\n]*Permission denied \\(publickey[^\\n]*\\)\\.\\n` +
          `DHCP leases on network "${NET}": ${MAC} → ${escaped(IP)} \\([^,]+, expires [^)]+\\)\\.\\n` +
          `Last 20 lines of the serial console \\(${escaped(CONSOLE)}\\):\\n(\\| [^\\n]*\\n){1,20}` +
          "The domain was destroyed and undefined \\(its disk and seed are kept\\)\\. " +
          `Fix: SSH refused the login: the seed must authorize the public half of sshPrivateKey for user "${USER}" \\(cloud-init ssh_authorized_keys\\)\\.`,
      ),
    );
    t.regex(error.message, /\| .*node-1/, "the console tail is the guest's, read back with vol-download");
    t.false(error.message.includes("PRIVATE KEY"));
    t.deepEqual(
      virsh("list", "--all", "--name")
        .split("\n")
        .filter((n) => n.startsWith(PREFIX)),
      [],
      "rolled back",
    );
    t.false(poolVolumes(POOL).includes("node-1-console.log"), "the console log volume is gone");
    await deleteVolume(URI, POOL, "node-1b.qcow2");
  },
);

test.serial("after both boots, deleting seed, base and network leaves nothing of the suite", async (t) => {
  await p.seed.delete(seed.id, seed.outs ?? {});
  await deleteVolume(URI, POOL, "base.qcow2");
  t.like(await removePoolIfEmpty(URI, POOL), { removed: true });
  await p.net.delete(network.id, network.outs ?? {});
  assertNothingLeft(t, PREFIX);
});
