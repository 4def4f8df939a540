// The boot errors of a Domain, as tables with exact expected values: SSH failure classification,
// the readiness command, boot timeout and start error texts, the bridged node's stages (no lease)
// and the guest's duplicate-address report turned into the named error.
import test from "ava";

import {
  UNDEFINE_FLAGS,
  READY_COMMAND,
  bootTimeoutMessage,
  cleanConsole,
  classifyReadyAttempt,
  classifySsh,
  dadConflictMessage,
  findDadConflict,
  hostKeyAlgorithms,
  normalizePublicKey,
  startFix,
} from "../../infra/libvirt/domain";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3vQnNq1DHKOfS3Fq7k7mVbBz7m3Jt4pYdYvJ5wXyZ host@lab";

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

/** What the boot timeout message reads of node `n` (1–9) of the vxlan lab. */
const node = (n: number, accelerator: "kvm" | "qemu", bootTimeoutSeconds: number) => ({
  domainName: `cilium-lab-vxlan-node-${n}`,
  mac: `52:54:00:1a:2b:0${n}`,
  ip: `192.168.150.1${n}`,
  networkName: "cilium-lab-vxlan",
  sshUser: "lab",
  accelerator,
  bootTimeoutSeconds,
  consoleLogPath: `/p/node-${n}-console.log`,
});

test("the boot timeout message for a cloud-init still running names the stage and how to look", (t) => {
  const msg = bootTimeoutMessage(
    node(1, "qemu", 900),
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
    node(2, "kvm", 300),
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

test("a start refused for a missing host bridge (libvirt 9.0's words) names the bridge and how to create or choose one", (t) => {
  const stderr = "error: Failed to start domain 'x'\nerror: Cannot get interface MTU on 'clbr9': No such device";
  t.is(
    startFix(stderr, "qemu", "clbr9"),
    'host bridge "clbr9" does not exist on the libvirt host: create it there (`ip link add clbr9 type bridge && ip link set clbr9 up`, plus your uplink and the host\'s address) or set `pulumi config set cilium-lab:bridge <existing bridge>`.',
  );
  t.is(startFix(stderr, "qemu"), "see the libvirt message", "a NAT node has no bridge to blame");
});

/** Node 1 of a bridged lab on clbr0. */
const bridged = { ...node(1, "qemu", 600), networkName: "", bridgeName: "clbr0", ip: "192.0.2.11" };

test("a bridged node's timeout has no lease stage: it names TCP on the static address, the bridge and the fix", (t) => {
  const msg = bootTimeoutMessage(
    bridged,
    { stage: "port", detail: "EHOSTUNREACH", elapsedSeconds: 600 },
    [],
    "node-1 login:",
    "The domain was destroyed and undefined (its disk and seed are kept).",
  );
  t.is(
    msg,
    'node "cilium-lab-vxlan-node-1" (MAC 52:54:00:1a:2b:01, expected IP 192.0.2.11) was not ready within 600 s: ' +
      "TCP 192.0.2.11:22 did not answer (EHOSTUNREACH).\n" +
      'No DHCP on bridge "clbr0": the seed\'s network-config sets 192.0.2.11 statically.\n' +
      "Last 20 lines of the serial console (/p/node-1-console.log):\n| node-1 login:\n" +
      "The domain was destroyed and undefined (its disk and seed are kept). Fix: nothing answers on 192.0.2.11:22: check the console for network-config or sshd errors " +
      "(the seed's network-config must give the NIC with MAC 52:54:00:1a:2b:01 the static address 192.0.2.11), that bridge clbr0 is up, " +
      "and that this machine reaches 192.0.2.11 (an address of the node's CIDR on clbr0, or a route to it). " +
      "Under TCG (accelerator qemu) a boot takes minutes: raise cilium-lab:bootTimeoutSeconds if the console shows a boot still in progress.",
  );
});

test("the guest's duplicate-address line in the console becomes the named error: address, bridge, answering MAC, fix", (t) => {
  const console = [
    "[    9.1] cloud-init[301]: Cloud-init v. 22.4.2 running 'init' at Thu, 03 Dec 2026 17:00:00 +0000.",
    "cilium-lab: duplicate address 192.0.2.11 answered by 02:AA:BB:CC:DD:EE",
    "[   10.2] reboot: Power down",
  ].join("\n");
  const conflict = findDadConflict(console);
  t.deepEqual(conflict, { address: "192.0.2.11", answeredBy: "02:aa:bb:cc:dd:ee" });
  t.is(findDadConflict("node-1 login:\n"), undefined, "no line, no conflict");
  t.is(
    dadConflictMessage(
      bridged,
      conflict ?? { address: "", answeredBy: "" },
      "The domain was destroyed and undefined (its disk and seed are kept).",
    ),
    'node "cilium-lab-vxlan-node-1": address 192.0.2.11 is already in use on bridge clbr0 (answered by MAC 02:aa:bb:cc:dd:ee). ' +
      "The guest's duplicate-address check (an RFC 5227 ARP probe before it configures the address) found it and powered the node off. " +
      "The domain was destroyed and undefined (its disk and seed are kept). " +
      "Fix: give the lab addresses nobody else uses (cilium-lab:networkCidr, or the host with that MAC gives up 192.0.2.11), then run `pulumi up` again.",
  );
});

test("console text is cleaned for messages: escape sequences and control characters go, the last lines stay, long lines are cut", (t) => {
  const text = `\x1b[0;32m  OK  \x1b[0m] Started ssh.service\r\n\n${"x".repeat(250)}\nlast\x07 line\n`;
  t.is(cleanConsole(text), `  OK  ] Started ssh.service\n${"x".repeat(200)}…\nlast line`);
  t.is(cleanConsole(text, 1), "last line");
});

test("undefine clears every kind of extra domain state, and host key algorithms follow the pinned key type", (t) => {
  t.deepEqual([...UNDEFINE_FLAGS], ["--nvram", "--managed-save", "--snapshots-metadata", "--checkpoints-metadata"]);
  t.is(hostKeyAlgorithms("ssh-ed25519"), "ssh-ed25519");
  t.is(hostKeyAlgorithms("ssh-rsa"), "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
  t.is(normalizePublicKey(`  ${KEY}  `), KEY.split(" ").slice(0, 2).join(" "));
});
