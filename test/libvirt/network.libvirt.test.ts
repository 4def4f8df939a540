// The Network provider against the real libvirtd (qemu:///system): lifecycle through the engine's
// serialization round trip and directly, and its fault rows (foreign name, our leftover after a
// kill, subnet overlaps, taken bridge, deleted/stopped by hand, libvirtd down, domain still attached).
// test-runs-as: root (the overlap and taken-bridge rows make links with `ip link add`, and the
// reservation rows read libvirt's dnsmasq files, which are root's)
import test from "ava";
import * as fs from "node:fs";

import { networkProvider, type NetworkInputs } from "../../infra/libvirt/network";
import { networkXml, parseNetworkXml } from "../../infra/libvirt/xml";
import type { Versioned } from "../../infra/provider";
import {
  DEAD_URI,
  DEAD_URI_UNREACHABLE,
  URI,
  assertNothingLeft,
  direct,
  foreignDomainXml,
  killedCreate,
  rejection,
  roundTrip,
  sh,
  sweep,
  tempFile,
  virsh,
  virshTry,
  type AnyProvider,
} from "./support";

const PREFIX = "cl-t-net";
const STACK = "cl-t-net";

/** Inputs for a network on 192.168.<third>.0/24 with `hosts` reservations. */
function inputs(name: string, third: number, hosts = 1, stack = STACK): NetworkInputs & Versioned {
  return {
    uri: URI,
    networkName: name,
    bridgeName: `${name}0`,
    cidr: `192.168.${third}.0/24`,
    gateway: `192.168.${third}.1`,
    hosts: Array.from({ length: hosts }, (_, i) => ({
      mac: `52:54:00:c1:${third.toString(16)}:${(i + 1).toString(16).padStart(2, "0")}`,
      ip: `192.168.${third}.${11 + i}`,
      hostname: `node-${i + 1}`,
    })),
    stack,
    providerVersion: 1,
  };
}

async function checked(p: AnyProvider, news: NetworkInputs): Promise<Record<string, unknown>> {
  const r = await p.check({}, news);
  if (r.failures && r.failures.length > 0) {
    throw new Error(`check failed: ${JSON.stringify(r.failures)}`);
  }
  return r.inputs ?? {};
}

test.before(() => sweep(PREFIX));
test.after.always(() => sweep(PREFIX));

for (const [label, load] of [
  ["through the engine's serialization round trip", () => roundTrip(networkProvider)],
  ["called directly", () => Promise.resolve(direct(networkProvider))],
] as const) {
  test.serial(`create, read, diff, update and delete a NAT network with reservations, ${label}`, async (t) => {
    const p = await load();
    const name = label.startsWith("through") ? "cl-t-net-rt" : "cl-t-net-dir";
    const news = await checked(p, inputs(name, 190, 2));
    const { id, outs } = await p.create(news);
    t.regex(id, /^[0-9a-f-]{36}$/);

    // Read back from libvirt itself, not from our outputs (T1).
    const live = parseNetworkXml(virsh("net-dumpxml", name));
    t.deepEqual(
      { ...live, uuid: "" },
      {
        name,
        uuid: "",
        owner: { project: "cilium-lab", stack: STACK },
        bridge: `${name}0`,
        forwardMode: "nat",
        mtu: 1500,
        ips: [{ address: "192.168.190.1", prefix: 24 }],
        hosts: [
          { mac: "52:54:00:c1:be:01", ip: "192.168.190.11", hostname: "node-1" },
          { mac: "52:54:00:c1:be:02", ip: "192.168.190.12", hostname: "node-2" },
        ],
        dhcp: true,
      },
    );
    t.is(live.uuid, id);
    t.regex(virsh("net-info", name), /Active:\s+yes[\s\S]*Autostart:\s+no/);
    t.true(fs.readFileSync(`/var/lib/libvirt/dnsmasq/${name}.conf`, "utf8").includes("dhcp-option=option:mtu,1500"));

    // Refresh yields the same state (T3) and re-apply is a no-op (T2).
    const read = await p.read(id, outs ?? {});
    t.deepEqual(read, { id, props: outs });
    t.deepEqual(await p.diff(id, outs ?? {}, news), { changes: false, replaces: [], deleteBeforeReplace: false });

    // A third node: an in-place update of the reservations.
    const three = await checked(p, inputs(name, 190, 3));
    t.deepEqual(await p.diff(id, outs ?? {}, three), { changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await p.update(id, outs ?? {}, three);
    t.deepEqual((updated.outs?.hosts as unknown[]).length, 3);
    t.is(parseNetworkXml(virsh("net-dumpxml", name)).hosts.length, 3);
    t.is(fs.readFileSync(`/var/lib/libvirt/dnsmasq/${name}.hostsfile`, "utf8").trim().split("\n").length, 3);

    // Another CIDR replaces, deleting first (libvirt names are unique).
    const moved = await checked(p, { ...inputs(name, 191, 3), networkName: name, bridgeName: `${name}0` });
    t.deepEqual(await p.diff(id, updated.outs ?? {}, moved), {
      changes: true,
      replaces: ["cidr", "gateway"],
      deleteBeforeReplace: true,
    });

    await p.delete(id, updated.outs ?? {});
    assertNothingLeft(t, name);
    await t.notThrowsAsync(p.delete(id, updated.outs ?? {}), "deleting a network that is already gone succeeds");
  });
}

test.serial("two stacks with different CIDRs are up at the same time", async (t) => {
  const p = direct(networkProvider);
  const a = await p.create(await checked(p, inputs("cl-t-net-s1", 190, 1, "cl-t-net-s1")));
  const b = await p.create(await checked(p, inputs("cl-t-net-s2", 191, 1, "cl-t-net-s2")));
  const active = virsh("net-list", "--name");
  t.true(active.includes("cl-t-net-s1") && active.includes("cl-t-net-s2"));
  await p.delete(a.id, a.outs ?? {});
  await p.delete(b.id, b.outs ?? {});
  assertNothingLeft(t, PREFIX);
});

test.serial("a foreign network with our name is refused by name and left untouched", async (t) => {
  const name = "cl-t-net-frgn";
  const file = tempFile("n.xml", `<network><name>${name}</name><bridge name="${name}0"/></network>`);
  virsh("net-define", file);
  const foreignUuid = virsh("net-uuid", name).trim();
  const error = await rejection(t, direct(networkProvider).create(inputs(name, 190)));
  t.is(
    error.message,
    `creating libvirt network "${name}" failed: a libvirt network "${name}" already exists and was not created by cilium-lab stack "${STACK}" (no cilium-lab owner stamp). ` +
      `Nothing was changed. Fix: remove it (\`virsh net-destroy ${name}; virsh net-undefine ${name}\`) if it is not needed, or use another stack name.`,
  );
  t.is(virsh("net-uuid", name).trim(), foreignUuid, "the foreign network is untouched");
  virsh("net-undefine", name);
  assertNothingLeft(t, PREFIX);
});

test.serial("killed between define and start, the next create adopts our stamped leftover", async (t) => {
  const name = "cl-t-net-kill";
  // A virsh shim that hangs in net-start, so the kill lands between define and start.
  const shim = tempFile(
    "virsh",
    `#!/usr/bin/env bash\nfor a in "$@"; do [[ $a == net-start ]] && exec sleep 600; done\nexec virsh "$@"\n`,
  );
  fs.chmodSync(shim, 0o755);
  const killed = await killedCreate({
    module: "libvirt/network",
    provider: "networkProvider",
    inputs: inputs(name, 191),
    started: () => virshTry("net-list", "--all", "--name").stdout.includes(name),
    pollMs: 200,
    settleMs: 500,
    env: { VIRSH_BIN: shim },
  });
  if (!killed) {
    return t.fail("the child never defined the network");
  }
  const leftover = virsh("net-uuid", name).trim();
  t.false(virsh("net-list", "--name").includes(name), "the leftover is defined but was never started");

  const { id } = await direct(networkProvider).create(inputs(name, 191));
  t.is(id, leftover, "the stamped leftover was adopted, not duplicated");
  t.true(virsh("net-list", "--name").includes(name), "and started");
  await direct(networkProvider).delete(id, { uri: URI, networkName: name });
  assertNothingLeft(t, PREFIX);
});

test.serial("a subnet partly overlapping a host route is refused (libvirt itself would start it)", async (t) => {
  const link = "cl-t-net-dmy";
  // A bridge stands in for any host interface (this kernel may lack the dummy module).
  sh("ip", ["link", "add", link, "type", "bridge"]);
  try {
    sh("ip", ["addr", "add", "192.168.196.1/25", "dev", link]);
    sh("ip", ["link", "set", link, "up"]);
    // Why our own check exists: libvirt refuses only an exact route match.
    const raw = tempFile(
      "n.xml",
      networkXml({
        name: "cl-t-net-raw",
        bridge: "cl-t-net-raw0",
        gateway: "192.168.196.129",
        prefix: 24,
        mtu: 1500,
        hosts: [],
        stack: "x",
      }),
    );
    virsh("net-define", raw);
    t.is(virshTry("net-start", "cl-t-net-raw").status, 0, "raw libvirt starts a partly overlapping network");
    virsh("net-destroy", "cl-t-net-raw");
    virsh("net-undefine", "cl-t-net-raw");

    const error = await rejection(t, direct(networkProvider).create(inputs("cl-t-net-ovl", 196)));
    t.regex(
      error.message,
      new RegExp(
        '^creating libvirt network "cl-t-net-ovl" failed: networkCidr 192\\.168\\.196\\.0/24 of libvirt network "cl-t-net-ovl" overlaps host route 192\\.168\\.196\\.0/25 dev cl-t-net-dmy\\. ' +
          "Fix: choose a free range, e\\.g\\. `pulumi config set cilium-lab:networkCidr 192\\.168\\.\\d+\\.0/24` \\(each stack needs its own\\)\\. Nothing was changed\\.$",
      ),
    );
  } finally {
    sh("ip", ["link", "del", link]);
  }
  assertNothingLeft(t, PREFIX);
});

test.serial("a subnet overlapping another libvirt network is refused", async (t) => {
  const p = direct(networkProvider);
  const a = await p.create(inputs("cl-t-net-ova", 191, 1, "cl-t-net-a"));
  const b = {
    ...inputs("cl-t-net-ovb", 191, 1, "cl-t-net-b"),
    cidr: "192.168.191.128/25",
    gateway: "192.168.191.129",
    hosts: [],
  };
  const error = await rejection(t, p.create(b));
  t.regex(
    error.message,
    /^creating libvirt network "cl-t-net-ovb" failed: networkCidr 192\.168\.191\.128\/25 of libvirt network "cl-t-net-ovb" overlaps host route 192\.168\.191\.0\/24 dev cl-t-net-ova0; libvirt network "cl-t-net-ova" \(192\.168\.191\.0\/24\)\. Fix: choose a free range, e\.g\. `pulumi config set cilium-lab:networkCidr 192\.168\.\d+\.0\/24` \(each stack needs its own\)\. Nothing was changed\.$/,
  );
  await p.delete(a.id, a.outs ?? {});
  assertNothingLeft(t, PREFIX);
});

test.serial("a bridge name taken by a foreign link is refused", async (t) => {
  const name = "cl-t-net-brg";
  sh("ip", ["link", "add", `${name}0`, "type", "bridge"]);
  try {
    const error = await rejection(t, direct(networkProvider).create(inputs(name, 190)));
    t.is(
      error.message,
      `creating libvirt network "${name}" failed: bridge "${name}0" already exists on the host and belongs to no network of this stack (\`ip link show ${name}0\`). ` +
        `Nothing was changed. Fix: remove it (\`ip link del ${name}0\`) if it is a leftover, or use another stack name.`,
    );
    t.false(virsh("net-list", "--all", "--name").includes(name));
  } finally {
    sh("ip", ["link", "del", `${name}0`]);
  }
  assertNothingLeft(t, PREFIX);
});

test.serial("deleted by hand: read gives a blank id (refresh drops it) and delete succeeds", async (t) => {
  const p = direct(networkProvider);
  const { id, outs } = await p.create(inputs("cl-t-net-gone", 190));
  virsh("net-destroy", "cl-t-net-gone");
  virsh("net-undefine", "cl-t-net-gone");
  t.deepEqual(await p.read(id, outs ?? {}), { id: "" });
  await t.notThrowsAsync(p.delete(id, outs ?? {}));
  assertNothingLeft(t, PREFIX);
});

test.serial("stopped by hand: read reports it inactive, diff asks for an update that starts it", async (t) => {
  const p = direct(networkProvider);
  const news = inputs("cl-t-net-stop", 190);
  const { id, outs } = await p.create(news);
  virsh("net-destroy", "cl-t-net-stop");
  const read = await p.read(id, outs ?? {});
  t.is(read.props?.active, false);
  t.deepEqual(await p.diff(id, read.props ?? {}, news), { changes: true, replaces: [], deleteBeforeReplace: false });
  const updated = await p.update(id, read.props ?? {}, news);
  t.is(updated.outs?.active, true);
  t.true(virsh("net-list", "--name").includes("cl-t-net-stop"));
  await p.delete(id, updated.outs ?? {});
  assertNothingLeft(t, PREFIX);
});

test.serial(
  "libvirtd down: create, read and delete fail naming the socket and the fix; read never blanks the id",
  async (t) => {
    const p = direct(networkProvider);
    const reach = DEAD_URI_UNREACHABLE;
    const create = await rejection(t, p.create({ ...inputs("cl-t-net-down", 190), uri: DEAD_URI }));
    t.is(create.message, `creating libvirt network "cl-t-net-down" failed: ${reach}`);
    t.regex(
      String((create.cause as Error).message),
      /^`virsh -c 'qemu:\/\/\/system\?socket=\/nonexistent\/cl-t-libvirt-sock' net-list --all --name` exited 1: /,
    );
    const props = { uri: DEAD_URI, networkName: "cl-t-net-down" };
    const id = "00000000-0000-4000-8000-000000000000";
    const read = await rejection(t, p.read(id, props));
    t.is(read.message, `reading libvirt network "cl-t-net-down" (${id}) failed: ${reach}`);
    const del = await rejection(t, p.delete(id, props));
    t.is(del.message, `deleting libvirt network "cl-t-net-down" (${id}) failed: ${reach}`);
    assertNothingLeft(t, PREFIX);
  },
);

test.serial("delete refuses while a domain still has a NIC on the network, naming it", async (t) => {
  const p = direct(networkProvider);
  const name = "cl-t-net-used";
  const { id, outs } = await p.create(inputs(name, 190));
  const dom = foreignDomainXml("cl-t-net-vm").replace(
    "</os>",
    `</os><devices><interface type="network"><source network="${name}"/></interface></devices>`,
  );
  virsh("define", tempFile("d.xml", dom));
  const error = await rejection(t, p.delete(id, outs ?? {}));
  t.is(
    error.message,
    `deleting libvirt network "${name}" (${id}) failed: domain(s) cl-t-net-vm still have a NIC on it. Nothing was deleted. ` +
      "Fix: delete them first (`virsh destroy <domain>; virsh undefine <domain> --nvram`), then run the destroy again.",
  );
  t.true(virsh("net-list", "--name").includes(name));
  virsh("undefine", "cl-t-net-vm");
  await p.delete(id, outs ?? {});
  assertNothingLeft(t, PREFIX);
});
