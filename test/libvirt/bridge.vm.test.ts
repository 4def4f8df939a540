// test-runs-as: root
// (it creates the test bridge, a veth pair and a network namespace; the libvirt part runs as root too)
//
// Bridge mode for real: a bridge clt-bv0 with 192.0.2.129/25 (TEST-NET-1), no uplink, nothing
// forwarded, and ONE TCG node from the Debian test image attached to it, built as the nodes layer
// builds it: the stack's libvirt pool, the test image uploaded as the base volume, an overlay with a
// backing store, a seed with the lab's user-data (its duplicate-address check included) and a static
// network-config v2. Then SSH to the static address with the pinned host key and the routes as
// rendered. Fault rows, each naming the thing and leaving nothing: a missing bridge, and the node's
// address already held on the bridge by another machine (a namespace behind a veth): the guest's
// RFC 5227 probe powers it off and the boot fails with the named duplicate-address error.
//
// Suffix .vm, the heaviest of its needs: it boots a VM (twice); it also needs libvirtd and root.
import test from "ava";

import { domainProvider, pinnedHostKeyOptions } from "../../infra/libvirt/domain";
import { cloudInitDiskProvider } from "../../infra/libvirt/seed";
import {
  createVolume,
  ensureDirPool,
  poolTargetPath,
  uploadVolume,
  writePoolMarker,
} from "../../infra/libvirt/storage";
import { LAB_USER, renderMetaData, renderNetworkConfig, renderUserData } from "../../infra/nodes/cloud-init";
import { TEST_LAN, bridgeLeftovers, createTestBridge, holdAddress, sweepBridges, testLanNode } from "./bridge-support";
import { poolVolumes } from "./domain-support";
import { sweepPools } from "./storage-support";
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

const PREFIX = "clt-bv";
const STACK = PREFIX;
const BRIDGE = `${PREFIX}0`;
const POOL = `${PREFIX}-pool`;
const CONSOLE = `${poolTargetPath(POOL)}/node-1-console.log`;
const MAC = "52:54:00:c1:b0:01";
const IP = testLanNode(1);
const DOMAIN = `${PREFIX}-node-1`;
/** TCG on a shared 2-core host: boots took 50–200 s here; the bound only matters when something is broken. */
const BOOT_TIMEOUT = 900;

const user = keyPair("clt-user");
const host = keyPair("clt-host");

let p: { seed: AnyProvider; dom: AnyProvider };
let basePath = "";
let seed: { id: string; outs?: Record<string, unknown> } | undefined;

const networkConfig = renderNetworkConfig({
  mac: MAC,
  static: { address: IP, prefix: TEST_LAN.prefix, gateway: TEST_LAN.gateway, dns: [TEST_LAN.gateway] },
});

test.before(async () => {
  sweep(PREFIX);
  sweepPools(PREFIX);
  sweepBridges(PREFIX);
  p = { seed: await roundTrip(cloudInitDiskProvider), dom: await roundTrip(domainProvider) };
  createTestBridge(BRIDGE);
  await ensureDirPool(URI, POOL, poolTargetPath(POOL));
  // A seed goes only into a pool whose marker names the stack (CloudInitDisk create checks it).
  await writePoolMarker(URI, POOL, { project: "cilium-lab", stack: STACK });
  basePath = await uploadVolume(URI, POOL, "base.qcow2", testImage().path, { format: "qcow2" });
  const userData = renderUserData({
    hostname: "node-1",
    authorizedKeys: [user.pub],
    hostKey: { privateKey: host.priv, publicKey: host.pub },
    duplicateAddressCheck: { address: IP, mac: MAC },
  });
  seed = await p.seed.create({
    uri: URI,
    pool: POOL,
    name: "node-1-seed",
    userData,
    metaData: renderMetaData({ instanceId: `${PREFIX}-1`, hostname: "node-1" }),
    networkConfig,
    stack: STACK,
  });
});

test.after.always(async () => {
  if (seed) {
    await p.seed.delete(seed.id, seed.outs ?? {});
  }
  sweep(PREFIX);
  sweepPools(PREFIX);
  sweepBridges(PREFIX);
});

/** A fresh qcow2 overlay volume of the base image. */
function overlay(name: string): Promise<string> {
  const backing = { path: basePath, format: "qcow2" as const };
  return createVolume(URI, POOL, { name, capacityBytes: 8 * 1024 ** 3, format: "qcow2", backing });
}

function domainInputs(disk: string, bridgeName: string): Record<string, unknown> {
  return {
    uri: URI,
    domainName: DOMAIN,
    vcpus: 1,
    memoryMiB: 1024,
    diskPath: disk,
    seedPath: seed?.id ?? "",
    bridgeName,
    mac: MAC,
    ip: IP,
    accelerator: "qemu",
    consoleLogPath: CONSOLE,
    pool: POOL,
    bootTimeoutSeconds: BOOT_TIMEOUT,
    sshUser: LAB_USER,
    sshPrivateKey: user.priv,
    hostPublicKey: host.pub,
    stack: STACK,
    freshDisk: true,
    providerVersion: 1,
  };
}

/** ssh as the lab user with strict host key checking against the pinned host key. */
function ssh(command: string): string {
  const knownHosts = tempFile("known_hosts", `${IP} ${host.pub}\n`);
  const opts = [...pinnedHostKeyOptions(knownHosts), "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"];
  return sh("ssh", [...opts, "-i", user.file, `${LAB_USER}@${IP}`, command]);
}

/** No domain of the suite, and no console log volume, is left. */
function assertNoDomain(t: import("ava").ExecutionContext): void {
  t.deepEqual(
    virsh("list", "--all", "--name")
      .split("\n")
      .filter((n) => n.startsWith(PREFIX)),
    [],
    "no domain left",
  );
  t.false(poolVolumes(POOL).includes("node-1-console.log"), "the console log volume is gone");
}

/** The booted node of the first test, deleted by the third. */
let booted: { id: string; outs?: Record<string, unknown> } | undefined;

test.serial(
  "a node in bridge mode boots on the test bridge: SSH to its static address, its address and on-link route as rendered",
  async (t) => {
    const news = (await p.dom.check({}, domainInputs(await overlay("node-1.qcow2"), BRIDGE))).inputs ?? {};
    const started = Date.now();
    booted = await p.dom.create(news);
    t.log(`bridge-mode boot to SSH login under TCG: ${Math.round((Date.now() - started) / 1000)} s`);
    t.like(booted.outs, { domainName: DOMAIN, ip: IP, mac: MAC, bridgeName: BRIDGE, networkName: "", running: true });
    t.regex(virsh("domiflist", DOMAIN), new RegExp(`bridge\\s+${BRIDGE}\\s+virtio\\s+${MAC}`));

    t.is(ssh("hostname").trim(), "node-1");
    const addrs = JSON.parse(ssh("ip -j -4 addr show dev eth0")) as {
      address: string;
      addr_info: { local: string; prefixlen: number }[];
    }[];
    t.deepEqual(
      addrs.flatMap((a) => a.addr_info.map((i) => `${i.local}/${i.prefixlen}`)),
      [`${IP}/${TEST_LAN.prefix}`],
    );
    const routes = JSON.parse(ssh("ip -j -4 route show")) as { dst: string; gateway?: string; dev: string }[];
    t.true(
      routes.some((r) => r.dst === TEST_LAN.cidr && r.dev === "eth0" && r.gateway === undefined),
      JSON.stringify(routes),
    );
    // The node's gateway is the host's address on the bridge: the node has resolved it over the bridge.
    t.regex(ssh(`ip -4 neigh show ${TEST_LAN.gateway}`), /lladdr [0-9a-f:]{17} /);
  },
);

// The route comes from `gateway4` in the network-config (see renderNetworkConfig): a `routes` entry
// to 0.0.0.0/0 reached ifupdown as `post-up route add default gw …`, which needs net-tools, and the
// default route was silently missing here on 2026-12-03.
test.serial("the node's default route via the gateway, as rendered", (t) => {
  const routes = JSON.parse(ssh("ip -j -4 route show")) as { dst: string; gateway?: string; dev: string }[];
  t.true(
    routes.some((r) => r.dst === "default" && r.gateway === TEST_LAN.gateway && r.dev === "eth0"),
    JSON.stringify(routes),
  );
});

test.serial("deleting the bridge-mode node leaves no domain and no console log", async (t) => {
  if (!booted) {
    return t.fail("needs the node of the first test");
  }
  await p.dom.delete(booted.id, booted.outs ?? {});
  booted = undefined;
  assertNoDomain(t);
});

test.serial("a missing bridge fails the create naming the bridge, and leaves no domain", async (t) => {
  const error = await rejection(t, p.dom.create(domainInputs(await overlay("node-1b.qcow2"), `${PREFIX}9`)));
  t.log(error.message.split("\n")[0] ?? "");
  t.regex(error.message, new RegExp(`${PREFIX}9`));
  t.regex(error.message, /Fix: /);
  assertNoDomain(t);
  t.deepEqual(bridgeLeftovers(`${PREFIX}9`), { links: [], namespaces: [] });
});

test.serial(
  "a taken static address: the guest's duplicate-address check fails the boot with the named error, and nothing is left",
  async (t) => {
    const holder = holdAddress(BRIDGE, PREFIX, IP);
    try {
      const started = Date.now();
      const error = await rejection(t, p.dom.create(domainInputs(await overlay("node-1c.qcow2"), BRIDGE)));
      t.log(`failed after ${Math.round((Date.now() - started) / 1000)} s: ${error.message.split("\n")[0] ?? ""}`);
      t.true(
        error.message.startsWith(
          `node "${DOMAIN}": address ${IP} is already in use on bridge ${BRIDGE} (answered by MAC ${holder.mac}). `,
        ),
        error.message,
      );
      t.regex(error.message, /Fix: give the lab addresses nobody else uses/);
    } finally {
      holder.remove();
    }
    assertNoDomain(t);
    t.deepEqual(
      bridgeLeftovers(`${PREFIX}-`),
      { links: [], namespaces: [] },
      "the holder's veth and namespace are gone",
    );
  },
);

test.serial("after the suite's own cleanup nothing of it is left", async (t) => {
  if (seed) {
    await p.seed.delete(seed.id, seed.outs ?? {});
    seed = undefined;
  }
  sweepPools(PREFIX);
  sweepBridges(PREFIX);
  assertNothingLeft(t, PREFIX);
});
