// Pure rules of the libvirt layer, as tables with exact expected values: input checks, the diff rule
// (what updates in place, what replaces and deletes first), SSH failure classification, boot and
// start error texts, subnet overlap, and the preflight's verdicts on injected host facts.
import test from "ava";

import { cloudInitDiskProvider, seedDigests } from "../../infra/libvirt/seed";
import { UNKNOWN, diffKeys } from "../../infra/libvirt/common";
import {
  UNDEFINE_FLAGS,
  READY_COMMAND,
  bootTimeoutMessage,
  classifyReadyAttempt,
  classifySsh,
  domainProvider,
  hostKeyAlgorithms,
  normalizePublicKey,
  startFix,
} from "../../infra/libvirt/domain";
import { parseIpRoutes, subnetConflicts, suggestFreeCidr, type HostNetwork } from "../../infra/libvirt/hostnet";
import { networkProvider } from "../../infra/libvirt/network";
import {
  LibvirtPreflightError,
  evaluatePreflight,
  labPreflightRequest,
  preflightLibvirt,
  type HostFacts,
  type PreflightRequest,
} from "../../infra/libvirt/preflight";
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
        'must be qemu:///system (optionally ?socket=/path): NAT networks with DHCP reservations need the system daemon, and pool paths are local; got "qemu:///session"',
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

test("Volume check: one of poolDir/pool, file-safe name, absolute paths, mode, size", async (t) => {
  const r = await direct(volumeProvider).check(
    {},
    {
      uri: "qemu:///system",
      poolDir: "relative/dir",
      pool: "p",
      name: "../x",
      baseImagePath: "base.qcow2",
      sizeGiB: 0,
      mode: "clone",
      stack: "s",
    },
  );
  t.deepEqual(r.failures, [
    { property: "name", reason: 'must be a plain file name ([A-Za-z0-9._-], not ending in .part), got "../x"' },
    { property: "poolDir", reason: "set exactly one of poolDir (a directory) and pool (a libvirt dir pool)" },
    { property: "poolDir", reason: 'must be an absolute path, got "relative/dir"' },
    { property: "baseImagePath", reason: 'must be an absolute path, got "base.qcow2"' },
    { property: "sizeGiB", reason: "must be an integer from 1 to 65536, got 0" },
    { property: "mode", reason: 'must be overlay or copy, got "clone"' },
  ]);
  const copy = await direct(volumeProvider).check(
    {},
    { uri: "qemu:///system", poolDir: "/var/lib/x/", name: "b.qcow2", sizeGiB: 1, mode: "copy", stack: "s" },
  );
  t.deepEqual(copy.failures, [{ property: "baseImagePath", reason: "mode copy needs a baseImagePath to copy" }]);
  t.is(copy.inputs?.poolDir, "/var/lib/x", "poolDir is normalized");
});

test("CloudInitDisk check never quotes user-data (it holds private keys)", async (t) => {
  const secret = "-----BEGIN OPENSSH PRIVATE KEY----- not cloud-config";
  const r = await direct(cloudInitDiskProvider).check(
    {},
    {
      uri: "qemu:///system",
      poolDir: "/p",
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
      uri: "qemu+ssh://h/system",
      domainName: "x y",
      vcpus: 0,
      memoryMiB: 64,
      diskPath: "disk.qcow2",
      seedPath: "/p/s.iso",
      networkName: "",
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
        'must be qemu:///system (optionally ?socket=/path): NAT networks with DHCP reservations need the system daemon, and pool paths are local; got "qemu+ssh://h/system"',
    },
    { property: "domainName", reason: 'must be a libvirt domain name ([A-Za-z0-9_.-], at most 64), got "x y"' },
    { property: "vcpus", reason: "must be an integer from 1 to 256, got 0" },
    { property: "memoryMiB", reason: "must be an integer from 128 to 1048576, got 64" },
    { property: "diskPath", reason: 'must be an absolute path, got "disk.qcow2"' },
    { property: "networkName", reason: "must be a libvirt network name" },
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
    poolDir: "/p",
    name: "n.qcow2",
    baseImagePath: "/p/base.qcow2",
    sizeGiB: 20,
    mode: "overlay",
    stack: "s",
    providerVersion: 1,
  };
  const vOuts = { ...v, pool: "", path: "/p/n.qcow2" };
  t.deepEqual(
    await direct(volumeProvider).diff("/p/n.qcow2", vOuts, omit(v, "mode")),
    { changes: false, replaces: [], deleteBeforeReplace: false },
    "mode defaults to overlay",
  );
  t.deepEqual(await direct(volumeProvider).diff("/p/n.qcow2", vOuts, { ...v, uri: "qemu:///system?socket=/run/x" }), {
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  t.deepEqual(await direct(volumeProvider).diff("/p/n.qcow2", vOuts, { ...v, baseImagePath: UNKNOWN }), {
    changes: true,
    replaces: ["baseImagePath"],
    deleteBeforeReplace: true,
  });

  const s = {
    uri: "qemu:///system",
    poolDir: "/p",
    name: "seed",
    userData: "#cloud-config\n",
    metaData: "instance-id: a\n",
    stack: "s",
    providerVersion: 1,
  };
  // The state holds digests of the content, never the content.
  const created = { ...omit(s, "userData", "metaData"), pool: "", ...seedDigests(s) };
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

// ---------------------------------------------------------------------------------------------
// SSH, boot and start messages

for (const [stderr, stage] of [
  ["ubuntu@192.168.150.11: Permission denied (publickey).", "auth"],
  [
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.",
    "hostkey",
  ],
  [
    "No ED25519 host key is known for 192.168.150.11 and you have requested strict checking.\nHost key verification failed.",
    "hostkey",
  ],
  ["ssh: connect to host 192.168.150.11 port 22: Connection refused", "port"],
  ["kex_exchange_identification: read: Connection reset by peer", "port"],
  ["ssh: connect to host 192.168.150.11 port 22: Connection timed out", "port"],
  ["something else entirely", "ssh"],
] as const) {
  test(`ssh stderr ${JSON.stringify(
    stderr
      .split("\n")
      .filter((l) => !l.startsWith("@"))
      .join(" ")
      .slice(0, 70),
  )} is stage ${stage}`, (t) => {
    t.is(classifySsh({ code: 255, stderr }).stage, stage);
  });
}

for (const [label, result, expected] of [
  [
    "logged in, then killed at the deadline while cloud-init ran",
    { code: 124, stdout: "cilium-lab: logged in\n", stderr: "\nssh: timed out after 4000 ms" },
    { stage: "cloud-init", detail: "ssh: timed out after 4000 ms" },
  ],
  [
    "logged in, then the session dropped without a word",
    { code: 255, stdout: "cilium-lab: logged in\n", stderr: "" },
    { stage: "cloud-init", detail: "exit 255" },
  ],
  [
    "never logged in: refused",
    { code: 255, stdout: "", stderr: "ssh: connect to host 192.168.150.11 port 22: Connection refused" },
    { stage: "port", detail: "ssh: connect to host 192.168.150.11 port 22: Connection refused" },
  ],
] as const) {
  test(`a failed readiness attempt (${label}) is stage ${expected.stage}`, (t) => {
    t.deepEqual(classifyReadyAttempt(result), expected);
  });
}

test("the readiness command says it logged in, waits for cloud-init whatever its result, then syncs", (t) => {
  t.is(READY_COMMAND, "echo 'cilium-lab: logged in'; cloud-init status --wait >/dev/null 2>&1; sync");
});

test("the boot timeout message for a cloud-init still running names the stage and how to look", (t) => {
  const msg = bootTimeoutMessage(
    {
      domainName: "cilium-lab-vxlan-node-1",
      mac: "52:54:00:1a:2b:01",
      ip: "192.168.150.11",
      networkName: "cilium-lab-vxlan",
      sshUser: "lab",
      accelerator: "qemu",
      bootTimeoutSeconds: 900,
      consoleLogPath: "/p/node-1-console.log",
    },
    { stage: "cloud-init", detail: "ssh: timed out after 4000 ms", elapsedSeconds: 900 },
    [],
    "",
    "The domain was destroyed and undefined (its disk and seed are kept).",
  );
  t.is(
    msg,
    'node "cilium-lab-vxlan-node-1" (MAC 52:54:00:1a:2b:01, expected IP 192.168.150.11) was not ready within 900 s: ' +
      "SSH login as lab works, but cloud-init had not finished (ssh: timed out after 4000 ms).\n" +
      'DHCP leases on network "cilium-lab-vxlan": none.\n' +
      "Last 20 lines of the serial console (/p/node-1-console.log): (empty)\n" +
      "The domain was destroyed and undefined (its disk and seed are kept). Fix: cloud-init is still running (or hangs) on the node: " +
      "`ssh lab@192.168.150.11 cloud-init status --long` and the console show where. " +
      "Under TCG (accelerator qemu) a boot takes minutes: raise cilium-lab:bootTimeoutSeconds if the console shows a boot still in progress.",
  );
});

test("the boot timeout message for a host key mismatch names everything and the fix", (t) => {
  const msg = bootTimeoutMessage(
    {
      domainName: "cilium-lab-vxlan-node-2",
      mac: "52:54:00:1a:2b:02",
      ip: "192.168.150.12",
      networkName: "cilium-lab-vxlan",
      sshUser: "lab",
      accelerator: "kvm",
      bootTimeoutSeconds: 300,
      consoleLogPath: "/p/node-2-console.log",
    },
    { stage: "hostkey", detail: "Host key verification failed.", early: true, elapsedSeconds: 95 },
    [{ expiry: "2026-11-24 11:33:18", mac: "52:54:00:1a:2b:02", ip: "192.168.150.12", hostname: "node-2" }],
    "node-2 login:",
    "The domain was destroyed and undefined (its disk and seed are kept).",
  );
  t.is(
    msg,
    'node "cilium-lab-vxlan-node-2" (MAC 52:54:00:1a:2b:02, expected IP 192.168.150.12) was not ready (gave up after 95 s of 300 s: sshd answered but kept refusing for 60 s): ' +
      "SSH host key of 192.168.150.12 does not match hostPublicKey (Host key verification failed.).\n" +
      'DHCP leases on network "cilium-lab-vxlan": 52:54:00:1a:2b:02 → 192.168.150.12 (node-2, expires 2026-11-24 11:33:18).\n' +
      "Last 20 lines of the serial console (/p/node-2-console.log):\n| node-2 login:\n" +
      "The domain was destroyed and undefined (its disk and seed are kept). Fix: the node presents a different host key than hostPublicKey: " +
      "the seed's cloud-init ssh_keys must install the key pair whose public half is hostPublicKey (or something else answers at that address).",
  );
});

for (const [stderr, accelerator, fix] of [
  [
    "error: unsupported configuration: Domain requires KVM, but it is not available. Check that virtualization is enabled in the host BIOS, and host configuration is setup to load the kvm modules.",
    "kvm",
    "KVM is not usable on this host: set `pulumi config set cilium-lab:accelerator qemu` (TCG; slow, raise cilium-lab:bootTimeoutSeconds).",
  ],
  [
    "error: invalid argument: could not find capabilities for domaintype=kvm",
    "kvm",
    "KVM is not usable on this host: set `pulumi config set cilium-lab:accelerator qemu` (TCG; slow, raise cilium-lab:bootTimeoutSeconds).",
  ],
  [
    "error: Cannot access backing file '/root/.cache/x.qcow2' of storage file '/p/o.qcow2' (as uid:64055, gid:64055): Permission denied",
    "qemu",
    "qemu (user libvirt-qemu) cannot open a file: every directory above the disk/seed/console paths needs o+x, and AppArmor may deny paths outside /var/lib/libvirt (`journalctl -k | grep -i apparmor`).",
  ],
  ["error: internal error: something", "qemu", "see the libvirt message"],
] as const) {
  test(`start failure "${stderr.slice(7, 60)}…" gets its fix`, (t) => {
    t.is(startFix(stderr, accelerator), fix);
  });
}

test("undefine clears every kind of extra domain state, and host key algorithms follow the pinned key type", (t) => {
  t.deepEqual([...UNDEFINE_FLAGS], ["--nvram", "--managed-save", "--snapshots-metadata", "--checkpoints-metadata"]);
  t.is(hostKeyAlgorithms("ssh-ed25519"), "ssh-ed25519");
  t.is(hostKeyAlgorithms("ssh-rsa"), "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
  t.is(normalizePublicKey(`  ${KEY}  `), KEY.split(" ").slice(0, 2).join(" "));
});

// ---------------------------------------------------------------------------------------------
// Subnets

test("routes: unicast only, default and local-table entries skipped, host routes as /32", (t) => {
  const json = JSON.stringify([
    { dst: "default", gateway: "192.0.2.1", dev: "eth0" },
    { dst: "192.0.2.0/24", dev: "eth0", protocol: "kernel" },
    { dst: "10.9.9.9", dev: "wg0" },
    { type: "local", dst: "127.0.0.0/8", dev: "lo", table: "local" },
    { type: "broadcast", dst: "192.0.2.255", dev: "eth0", table: "local" },
    { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
  ]);
  t.deepEqual(parseIpRoutes(json), [
    { dst: "192.0.2.0/24", dev: "eth0", table: "main" },
    { dst: "10.9.9.9/32", dev: "wg0", table: "main" },
    { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
  ]);
});

test("overlaps: partial and exact, with routes on our own bridge and our own network exempt", (t) => {
  const routes = parseIpRoutes(
    JSON.stringify([
      { dst: "10.98.0.0/16", dev: "eth1" },
      { dst: "192.168.150.0/24", dev: "cl-vxlan-1a2b" },
      { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
    ]),
  );
  const nets: HostNetwork[] = [
    {
      name: "cilium-lab-vxlan",
      owner: { project: "cilium-lab", stack: "vxlan" },
      bridge: "cl-vxlan-1a2b",
      cidrs: ["192.168.150.0/24"],
    },
    { name: "default", owner: undefined, bridge: "virbr0", cidrs: ["192.168.122.0/24"] },
  ];
  const own = { networkName: "cilium-lab-vxlan", bridgeName: "cl-vxlan-1a2b", stack: "vxlan" };
  t.deepEqual(
    subnetConflicts("192.168.150.0/24", routes, nets, own),
    [],
    "our own network and its bridge route are not conflicts",
  );
  t.deepEqual(subnetConflicts("10.98.5.0/24", routes, nets, own), ["host route 10.98.0.0/16 dev eth1"]);
  t.deepEqual(subnetConflicts("172.20.0.0/16", routes, nets, own), ["host route 172.16.0.0/12 dev tun0 table 100"]);
  t.deepEqual(subnetConflicts("192.168.122.128/25", routes, nets, own), [
    'libvirt network "default" (192.168.122.0/24)',
  ]);
  t.deepEqual(
    subnetConflicts("192.168.150.0/24", routes, nets, {
      ...own,
      networkName: "cilium-lab-native",
      bridgeName: "cl-native-9f",
    }),
    ["host route 192.168.150.0/24 dev cl-vxlan-1a2b", 'libvirt network "cilium-lab-vxlan" (192.168.150.0/24)'],
  );
  t.is(suggestFreeCidr(routes, nets), "192.168.100.0/24");
  t.is(
    suggestFreeCidr(
      [],
      Array.from({ length: 155 }, (_, i) => ({
        name: `n${i}`,
        owner: undefined,
        bridge: undefined,
        cidrs: [`192.168.${100 + i}.0/24`],
      })),
    ),
    undefined,
  );
});

// ---------------------------------------------------------------------------------------------
// Preflight

const REQUEST: PreflightRequest = labPreflightRequest(
  {
    libvirtUri: "qemu:///system",
    accelerator: "kvm",
    networkCidr: "192.168.150.0/24",
    nodeCpus: 2,
    nodeMemoryMiB: 4096,
  },
  {
    networkName: "cilium-lab-vxlan",
    bridgeName: "cl-vxlan-1a2b",
    nodes: [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}` })),
  },
  "vxlan",
  { poolDir: "/var/lib/libvirt/cilium-lab/vxlan", imageCacheDir: "/var/cache/cilium-lab" },
);

function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    missingTools: [],
    libvirt: {
      reachable: true,
      networks: [{ name: "default", owner: undefined, bridge: "virbr0", cidrs: ["192.168.122.0/24"], active: true }],
      domains: [],
    },
    routes: [{ dst: "192.0.2.0/24", dev: "eth0", table: "main" }],
    links: ["lo", "eth0", "virbr0"],
    kvm: { usable: true, detail: "" },
    memAvailableMiB: 20_000,
    cpus: 8,
    disks: [
      { path: "/var/lib/libvirt/cilium-lab/vxlan", freeBytes: 100 * 1024 ** 3 },
      { path: "/var/cache/cilium-lab", freeBytes: 100 * 1024 ** 3 },
    ],
    ...overrides,
  };
}

test("labPreflightRequest derives names, sizes and disk estimates from config and plan", (t) => {
  t.deepEqual(
    REQUEST.nodes,
    [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}`, vcpus: 2, memoryMiB: 4096 })),
  );
  t.deepEqual(
    REQUEST.disks.map((d) => [d.path, d.bytes / 1024 ** 3, d.qemuReadable]),
    [
      ["/var/lib/libvirt/cilium-lab/vxlan", 7, true],
      ["/var/cache/cilium-lab", 1, false],
    ],
  );
});

test("a healthy host passes the preflight with no problems and no warnings", (t) => {
  const { problems, warnings } = evaluatePreflight(REQUEST, facts());
  t.deepEqual({ problems, warnings }, { problems: [], warnings: [] });
});

test("a re-run with our own network, bridge and running VMs of the same stack passes", (t) => {
  const own = { project: "cilium-lab", stack: "vxlan" };
  const f = facts({
    libvirt: {
      reachable: true,
      networks: [
        { name: "cilium-lab-vxlan", owner: own, bridge: "cl-vxlan-1a2b", cidrs: ["192.168.150.0/24"], active: true },
      ],
      domains: REQUEST.nodes.map((n) => ({ name: n.domainName, owner: own, running: true })),
    },
    routes: [{ dst: "192.168.150.0/24", dev: "cl-vxlan-1a2b", table: "main" }],
    links: ["lo", "cl-vxlan-1a2b"],
    memAvailableMiB: 1000,
  });
  const { problems, warnings } = evaluatePreflight(REQUEST, f);
  t.deepEqual({ problems, warnings }, { problems: [], warnings: [] }, "the running VMs already hold their memory");
});

test("a broken host gets every problem at once, each with its fix", (t) => {
  const foreign = { project: "cilium-lab", stack: "native" };
  const f = facts({
    missingTools: ["cloud-localds"],
    libvirt: {
      reachable: true,
      networks: [
        { name: "cilium-lab-vxlan", owner: undefined, bridge: "virbr9", cidrs: ["10.0.0.0/24"], active: false },
        { name: "other", owner: undefined, bridge: "virbr1", cidrs: ["192.168.150.128/25"], active: true },
      ],
      domains: [{ name: "cilium-lab-vxlan-node-2", owner: foreign, running: true }],
    },
    routes: [{ dst: "192.168.144.0/20", dev: "eth1", table: "main" }],
    links: ["lo", "cl-vxlan-1a2b"],
    kvm: { usable: false, detail: "/dev/kvm is missing or not accessible (ENOENT)" },
    memAvailableMiB: 6000,
    cpus: 1,
    disks: [
      {
        path: "/var/lib/libvirt/cilium-lab/vxlan",
        freeBytes: 2 * 1024 ** 3,
        unsearchable: "/var/lib/libvirt (mode 0700)",
      },
      { path: "/var/cache/cilium-lab", freeBytes: 100 * 1024 ** 3 },
    ],
  });
  const { problems, warnings } = evaluatePreflight(REQUEST, f);
  t.deepEqual(problems, [
    "`cloud-localds` not found on PATH. Fix: `apt-get install cloud-image-utils` (or set CLOUD_LOCALDS_BIN to its path).",
    'libvirt network "cilium-lab-vxlan" already exists and does not belong to stack "vxlan" (owner: none: not created by cilium-lab). Fix: remove it (`virsh net-destroy cilium-lab-vxlan; virsh net-undefine cilium-lab-vxlan`) or use another stack name.',
    'libvirt domain "cilium-lab-vxlan-node-2" already exists and does not belong to stack "vxlan" (owner: cilium-lab stack "native"). Fix: remove it (`virsh destroy cilium-lab-vxlan-node-2; virsh undefine cilium-lab-vxlan-node-2 --nvram`) or use another stack name.',
    'bridge "cl-vxlan-1a2b" already exists on the host and belongs to no network of this stack (`ip link show cl-vxlan-1a2b`). Fix: remove it (`ip link del cl-vxlan-1a2b`) if it is a leftover, or use another stack name.',
    'networkCidr 192.168.150.0/24 of libvirt network "cilium-lab-vxlan" overlaps host route 192.168.144.0/20 dev eth1; libvirt network "other" (192.168.150.128/25). Fix: choose a free range, e.g. `pulumi config set cilium-lab:networkCidr 192.168.100.0/24` (each stack needs its own).',
    "3 node(s) need 12288 MiB of memory but the host has 6000 MiB available (MemAvailable). Fix: `pulumi config set cilium-lab:nodeMemoryMiB 1792`, lower cilium-lab:nodeCount, or free memory.",
    "cilium-lab:nodeCpus 2 exceeds the host's 1 CPUs. Fix: `pulumi config set cilium-lab:nodeCpus 1`.",
    "accelerator is kvm but KVM is not usable here: /dev/kvm is missing or not accessible (ENOENT). Fix: `pulumi config set cilium-lab:accelerator qemu` (TCG software emulation: boots take minutes, so also raise cilium-lab:bootTimeoutSeconds, e.g. 900).",
    "the base image copy and 3 node disks (estimate) need 7.0 GiB in /var/lib/libvirt/cilium-lab/vxlan but only 2.0 GiB are free. Fix: free space on that filesystem (or move the directory).",
    "the base image copy and 3 node disks (estimate) go to /var/lib/libvirt/cilium-lab/vxlan, but the qemu user (libvirt-qemu) cannot traverse /var/lib/libvirt (mode 0700). Fix: use a directory under /var/lib/libvirt, or give the parent directories o+x.",
  ]);
  t.deepEqual(warnings, []);
  const error = t.throws(() => preflightLibvirt(REQUEST, f), { instanceOf: LibvirtPreflightError });
  t.true(
    error?.message.startsWith(
      "the host is not ready for cilium-lab (10 problems; nothing was created):\n- `cloud-localds` not found",
    ),
  );
});

test("libvirtd unreachable and a session URI are reported; vCPU overcommit is only a warning", (t) => {
  const down = evaluatePreflight(
    { ...REQUEST, uri: "qemu:///session" },
    facts({
      libvirt: {
        reachable: false,
        error: "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
      },
      cpus: 4,
    }),
  );
  t.deepEqual(down.problems, [
    'cilium-lab:libvirtUri must be qemu:///system (optionally ?socket=/path): NAT networks with DHCP reservations need the system daemon, and pool paths are local; got "qemu:///session". Fix: `pulumi config set cilium-lab:libvirtUri qemu:///system`.',
    "cannot reach libvirt at qemu:///session: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory. Fix: start the libvirt daemons (`virtlogd -d && libvirtd -d`, or `systemctl start libvirtd`) and check cilium-lab:libvirtUri.",
  ]);
  t.deepEqual(down.warnings, [
    "the nodes have 6 vCPUs in total on a host with 4 CPUs: they share CPUs, so boots and iperf3 results are slower and noisier.",
  ]);
  const noVirsh = evaluatePreflight(
    REQUEST,
    facts({ missingTools: ["virsh"], libvirt: { reachable: false, error: "virsh not installed" } }),
  );
  t.deepEqual(noVirsh.problems, [
    "`virsh` not found on PATH. Fix: `apt-get install libvirt-clients` (or set VIRSH_BIN to its path).",
  ]);
});

test("CILIUM_LAB_PREFLIGHT=off skips the checks and says so", (t) => {
  process.env.CILIUM_LAB_PREFLIGHT = "off";
  try {
    t.deepEqual(preflightLibvirt(REQUEST, facts({ missingTools: ["virsh"] })), [
      "host preflight skipped (CILIUM_LAB_PREFLIGHT=off): host problems will surface later, as resource errors",
    ]);
  } finally {
    delete process.env.CILIUM_LAB_PREFLIGHT;
  }
});
