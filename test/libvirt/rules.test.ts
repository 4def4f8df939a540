// Pure rules of the libvirt resources, as tables with exact expected values: input checks and the
// diff rule (what updates in place, what replaces and deletes first). SSH failure classification and
// boot and start error texts are in boot-errors.test.ts; subnet overlap and the preflight's verdicts
// in preflight-rules.test.ts.
import test from "ava";

import { UNKNOWN, diffKeys } from "../../infra/provider";
import { domainProvider, normalizePublicKey } from "../../infra/libvirt/domain";
import { networkProvider } from "../../infra/libvirt/network";
import { cloudInitDiskProvider, seedDigests } from "../../infra/libvirt/seed";
import { volumeProvider } from "../../infra/libvirt/volume";
import { direct } from "./support";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3vQnNq1DHKOfS3Fq7k7mVbBz7m3Jt4pYdYvJ5wXyZ host@lab";
const PRIV = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

// ---------------------------------------------------------------------------------------------
// check

test("Network check lists every bad input with property and reason", async (t) => {
  const r = await direct(networkProvider).check(
    {},
    {
      uri: "qemu:///session",
      networkName: "bad name",
      bridgeName: "way-too-long-bridge",
      cidr: "192.168.150.0/24",
      gateway: "192.168.151.1",
      hosts: [
        { mac: "52:54:00:AA:00:01", ip: "192.168.150.1", hostname: "Node_1" },
        { mac: "52:54:00:aa:00:01", ip: "192.168.150.300", hostname: "node-2" },
        { mac: "01:00:5e:00:00:01", ip: "192.168.150.13", hostname: "node-2" },
      ],
      stack: "vxlan",
      mtu: 100,
    },
  );
  t.deepEqual(r.failures, [
    {
      property: "uri",
      reason:
        'must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got "qemu:///session": the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach. Fix: use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system',
    },
    { property: "networkName", reason: 'must be a libvirt network name ([A-Za-z0-9_.-], at most 64), got "bad name"' },
    {
      property: "bridgeName",
      reason: 'must be a Linux interface name of at most 15 characters (IFNAMSIZ - 1), got "way-too-long-bridge"',
    },
    { property: "mtu", reason: "must be an integer from 576 to 9000, got 100" },
    { property: "gateway", reason: 'must be a host address inside cidr, got "192.168.151.1"' },
    { property: "hosts[0].hostname", reason: 'must be a DNS label, got "Node_1"' },
    {
      property: "hosts[1].ip",
      reason: 'must be a host address inside cidr other than the gateway, got "192.168.150.300"',
    },
    { property: "hosts[1].mac", reason: "duplicates hosts[0].mac (52:54:00:aa:00:01)" },
    { property: "hosts[2].mac", reason: 'must be a unicast MAC like 52:54:00:12:34:56, got "01:00:5e:00:00:01"' },
    { property: "hosts[2].hostname", reason: "duplicates hosts[1].hostname (node-2)" },
  ]);
});

test("Network check normalizes reservations (lower-case MACs, sorted) and skips values not known in preview", async (t) => {
  const r = await direct(networkProvider).check(
    {},
    {
      uri: "qemu:///system",
      networkName: "cilium-lab-vxlan",
      bridgeName: UNKNOWN,
      cidr: "192.168.150.0/24",
      gateway: "192.168.150.1",
      hosts: [
        { mac: "52:54:00:1A:2B:02", ip: "192.168.150.12", hostname: "node-2" },
        { mac: "52:54:00:1a:2b:01", ip: "192.168.150.11", hostname: "node-1" },
      ],
      stack: "vxlan",
    },
  );
  t.deepEqual(r.failures, []);
  t.deepEqual(r.inputs?.hosts, [
    { mac: "52:54:00:1a:2b:01", ip: "192.168.150.11", hostname: "node-1" },
    { mac: "52:54:00:1a:2b:02", ip: "192.168.150.12", hostname: "node-2" },
  ]);
});

test("CloudInitDisk check never quotes user-data (it holds private keys)", async (t) => {
  const secret = "-----BEGIN OPENSSH PRIVATE KEY----- not cloud-config";
  const r = await direct(cloudInitDiskProvider).check(
    {},
    {
      uri: "qemu:///system",
      pool: "p",
      name: "s",
      userData: secret,
      metaData: "local-hostname: x\n",
      networkConfig: "foo: 1\n",
      stack: "s",
    },
  );
  t.deepEqual(r.failures, [
    {
      property: "userData",
      reason:
        "must be a non-empty cloud-init user-data document starting with #cloud-config, #! or Content-Type: (content not shown: it may hold secrets)",
    },
    { property: "metaData", reason: "must be NoCloud meta-data YAML with an instance-id: line" },
    { property: "networkConfig", reason: "must be empty or network-config YAML (a version: or network: key)" },
  ]);
  t.false(JSON.stringify(r.failures).includes("PRIVATE"));
});

test("Domain check: every field, never echoing the private key; the host key comment is dropped", async (t) => {
  const bad = await direct(domainProvider).check(
    {},
    {
      uri: "qemu+tls://h/system",
      domainName: "x y",
      vcpus: 0,
      memoryMiB: 64,
      diskPath: "disk.qcow2",
      seedPath: "/p/s.iso",
      networkName: "",
      pool: "a b",
      mac: "52:54:00:AA:00:01",
      ip: "10.0.0.300",
      accelerator: "hvf",
      consoleLogPath: "/p/c.log",
      bootTimeoutSeconds: 1,
      sshUser: "Root",
      sshPrivateKey: "hunter2",
      hostPublicKey: "ssh-dss AAAA",
      stack: "s",
      freshDisk: "yes",
    },
  );
  t.deepEqual(bad.failures, [
    {
      property: "uri",
      reason:
        'must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got "qemu+tls://h/system": transport tls is not supported: remote hosts are reached with qemu+ssh://[user@]host[:port]/system (OpenSSH verifies the host key, ssh-agent or ?keyfile= authenticates)',
    },
    { property: "domainName", reason: 'must be a libvirt domain name ([A-Za-z0-9_.-], at most 64), got "x y"' },
    { property: "vcpus", reason: "must be an integer from 1 to 256, got 0" },
    { property: "memoryMiB", reason: "must be an integer from 128 to 1048576, got 64" },
    { property: "diskPath", reason: 'must be an absolute path, got "disk.qcow2"' },
    {
      property: "networkName",
      reason:
        "set exactly one of networkName (a libvirt network, NAT mode) and bridgeName (an existing host bridge, bridge mode)",
    },
    { property: "pool", reason: 'must be the stack\'s libvirt storage pool (StoragePool.poolName), got "a b"' },
    { property: "mac", reason: 'must be a lower-case unicast MAC like 52:54:00:12:34:56, got "52:54:00:AA:00:01"' },
    { property: "ip", reason: 'must be an IPv4 address, got "10.0.0.300"' },
    { property: "accelerator", reason: 'must be kvm or qemu (TCG), got "hvf"' },
    { property: "bootTimeoutSeconds", reason: "must be an integer from 5 to 7200, got 1" },
    { property: "sshUser", reason: 'must be a Linux user name, got "Root"' },
    {
      property: "sshPrivateKey",
      reason:
        "must be an OpenSSH/PEM private key (-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----); value not shown",
    },
    { property: "hostPublicKey", reason: 'must be an OpenSSH public key line (ssh-ed25519 AAAA…), got "ssh-dss AAAA"' },
    { property: "freshDisk", reason: 'must be true or false, got "yes"' },
  ]);
  t.false(JSON.stringify(bad.failures).includes("hunter2"));
  const good = await direct(domainProvider).check({}, { ...domainInputs(), hostPublicKey: KEY });
  t.deepEqual(good.failures, []);
  t.is(good.inputs?.hostPublicKey, KEY.split(" ").slice(0, 2).join(" "));
});

test("Domain check defaults freshDisk to false, so a state holding false diffs equal to an input without it", async (t) => {
  const checked = await direct(domainProvider).check({}, omit(domainInputs(), "freshDisk"));
  t.deepEqual(checked.failures, []);
  t.is(checked.inputs?.freshDisk, false);
  t.deepEqual(await direct(domainProvider).diff("u", domainOuts(), checked.inputs ?? {}), {
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
});

// ---------------------------------------------------------------------------------------------
// diff

function domainInputs(): Record<string, unknown> {
  return {
    uri: "qemu:///system",
    domainName: "cilium-lab-vxlan-node-1",
    vcpus: 2,
    memoryMiB: 4096,
    diskPath: "/p/node-1.qcow2",
    seedPath: "/p/node-1-seed-0123456789ab.iso",
    networkName: "cilium-lab-vxlan",
    pool: "cilium-lab-vxlan",
    mac: "52:54:00:1a:2b:01",
    ip: "192.168.150.11",
    accelerator: "kvm",
    consoleLogPath: "/p/node-1-console.log",
    bootTimeoutSeconds: 300,
    sshUser: "lab",
    sshPrivateKey: PRIV,
    hostPublicKey: normalizePublicKey(KEY),
    stack: "vxlan",
    freshDisk: false,
    providerVersion: 1,
  };
}
/** A copy of `o` without `keys`. */
const omit = (o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
const domainOuts = (): Record<string, unknown> => ({
  ...omit(domainInputs(), "sshPrivateKey"),
  uuid: "u",
  running: true,
});

for (const [change, expected] of [
  [{}, { changes: false, replaces: [], deleteBeforeReplace: false }],
  [{ sshPrivateKey: PRIV.replace("AAAA", "BBBB") }, { changes: false, replaces: [], deleteBeforeReplace: false }],
  [{ bootTimeoutSeconds: 900 }, { changes: true, replaces: [], deleteBeforeReplace: false }],
  [{ hostPublicKey: "ssh-ed25519 BBBB" }, { changes: true, replaces: [], deleteBeforeReplace: false }],
  [{ freshDisk: true }, { changes: true, replaces: [], deleteBeforeReplace: false }],
  [{ providerVersion: 2 }, { changes: true, replaces: [], deleteBeforeReplace: false }],
  [
    { seedPath: "/p/node-1-seed-ba9876543210.iso" },
    { changes: true, replaces: ["seedPath"], deleteBeforeReplace: true },
  ],
  [{ diskPath: UNKNOWN }, { changes: true, replaces: ["diskPath"], deleteBeforeReplace: true }],
  [
    { vcpus: 4, memoryMiB: 8192, accelerator: "qemu" },
    { changes: true, replaces: ["vcpus", "memoryMiB", "accelerator"], deleteBeforeReplace: true },
  ],
  [
    { ip: "192.168.150.21", mac: "52:54:00:1a:2b:09" },
    { changes: true, replaces: ["mac", "ip"], deleteBeforeReplace: true },
  ],
] as const) {
  test(`Domain diff changing ${Object.keys(change).join(", ") || "nothing"}${"diskPath" in change ? " (not known yet)" : ""} → ${expected.replaces.length > 0 ? "replace (delete first)" : expected.changes ? "update" : "no change"}`, async (t) => {
    t.deepEqual(await direct(domainProvider).diff("u", domainOuts(), { ...domainInputs(), ...change }), expected);
  });
}

test("Domain diff of a VM shut off by hand is an update (which starts it)", async (t) => {
  t.deepEqual(await direct(domainProvider).diff("u", { ...domainOuts(), running: false }, domainInputs()), {
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
});

test("Network diff: reordered reservations are no change, a new one is an update, a new CIDR a replace", async (t) => {
  const hosts = [
    { mac: "52:54:00:1a:2b:01", ip: "192.168.150.11", hostname: "node-1" },
    { mac: "52:54:00:1a:2b:02", ip: "192.168.150.12", hostname: "node-2" },
  ];
  const base = {
    uri: "qemu:///system",
    networkName: "n",
    bridgeName: "b",
    cidr: "192.168.150.0/24",
    gateway: "192.168.150.1",
    stack: "s",
    providerVersion: 1,
  };
  const outs = { ...base, hosts, mtu: 1500, uuid: "u", active: true };
  const p = direct(networkProvider);
  t.deepEqual(await p.diff("u", outs, { ...base, hosts: [...hosts].reverse() }), {
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  t.deepEqual(
    await p.diff("u", outs, {
      ...base,
      hosts: [...hosts, { mac: "52:54:00:1a:2b:03", ip: "192.168.150.13", hostname: "node-3" }],
    }),
    {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    },
  );
  t.deepEqual(await p.diff("u", outs, { ...base, hosts, cidr: "192.168.160.0/24", gateway: "192.168.160.1" }), {
    changes: true,
    replaces: ["cidr", "gateway"],
    deleteBeforeReplace: true,
  });
  t.deepEqual(await p.diff("u", outs, { ...base, hosts, mtu: 9000 }), {
    changes: true,
    replaces: ["mtu"],
    deleteBeforeReplace: true,
  });
});

test("Volume and CloudInitDisk diffs: uri alone is an update; content digests replace", async (t) => {
  const v = {
    uri: "qemu:///system",
    pool: "cilium-lab-s",
    name: "n.qcow2",
    backingPath: "/var/lib/libvirt/images/cilium-lab-base/base-0123456789abcdef.qcow2",
    sizeGiB: 20,
    stack: "s",
    providerVersion: 1,
  };
  const vOuts = { ...v, path: "/var/lib/libvirt/images/cilium-lab-s/n.qcow2" };
  const vp = direct(volumeProvider);
  t.deepEqual(await vp.diff(vOuts.path, vOuts, v), { changes: false, replaces: [], deleteBeforeReplace: false });
  t.deepEqual(await vp.diff(vOuts.path, vOuts, { ...v, uri: "qemu:///system?socket=/run/x" }), {
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  t.deepEqual(
    await vp.diff(vOuts.path, vOuts, { ...v, uri: "qemu+ssh://lab@192.0.2.10/system" }),
    { changes: true, replaces: ["host"], deleteBeforeReplace: true },
    "another libvirt host is another volume",
  );
  t.deepEqual(await vp.diff(vOuts.path, vOuts, { ...v, backingPath: UNKNOWN }), {
    changes: true,
    replaces: ["backingPath"],
    deleteBeforeReplace: true,
  });
  const blank = omit(v, "backingPath");
  t.deepEqual(
    await vp.diff(vOuts.path, { ...blank, backingPath: "", path: vOuts.path }, blank),
    { changes: false, replaces: [], deleteBeforeReplace: false },
    "no backingPath input equals the stored blank disk",
  );
  // A state of the root-era provider (a file in a pool directory) is replaced by a pool volume.
  const legacy = {
    uri: "qemu:///system",
    poolDir: "/var/lib/libvirt/cilium-lab/cilium-lab-s",
    pool: "",
    name: "n.qcow2",
    path: "/var/lib/libvirt/cilium-lab/cilium-lab-s/n.qcow2",
    baseImagePath: "/var/lib/libvirt/cilium-lab/cilium-lab-s/base.qcow2",
    sizeGiB: 20,
    mode: "overlay",
    stack: "s",
    providerVersion: 1,
  };
  t.deepEqual(await vp.diff(legacy.path, legacy, v), {
    changes: true,
    replaces: ["pool", "backingPath", "poolDir"],
    deleteBeforeReplace: true,
  });

  const s = {
    uri: "qemu:///system",
    pool: "p",
    name: "seed",
    userData: "#cloud-config\n",
    metaData: "instance-id: a\n",
    stack: "s",
    providerVersion: 1,
  };
  // The state holds digests of the content, never the content.
  const created = { ...omit(s, "userData", "metaData"), poolDir: "", ...seedDigests(s) };
  const p = direct(cloudInitDiskProvider);
  t.deepEqual(await p.diff("x", created, s), { changes: false, replaces: [], deleteBeforeReplace: false });
  t.deepEqual(await p.diff("x", created, { ...s, metaData: "instance-id: b\n" }), {
    changes: true,
    replaces: ["metaData"],
    deleteBeforeReplace: true,
  });
  t.deepEqual(await p.diff("x", created, { ...s, userData: UNKNOWN }), {
    changes: true,
    replaces: ["userData"],
    deleteBeforeReplace: true,
  });
});

test("diffKeys compares canonically (key order does not matter) and missing versions count as changes", (t) => {
  t.deepEqual(
    diffKeys({ a: { x: 1, y: 2 }, providerVersion: 1 }, { a: { y: 2, x: 1 }, providerVersion: 1 }, ["a"], []),
    {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    },
  );
  t.deepEqual(diffKeys({ a: 1 }, { a: 1, providerVersion: 1 }, ["a"], []), {
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
});
