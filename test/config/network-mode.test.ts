/**
 * networkMode, bridge, gateway, dns, libvirtUri and nodeHosts: the configs the parser accepts with
 * the values they give, and every cross-key rule's exact problem line (key, value, accepted, fix).
 */
import test from "ava";

import { parseLabConfig } from "../../infra/config";
import { problemsOf } from "./refused";

/** A bridge-mode stack with the keys it needs. */
const BRIDGE = { networkMode: "bridge", bridge: "br0", gateway: "192.168.150.1" };
const SSH = "qemu+ssh://lab@10.0.0.5:2222/system?keyfile=/home/lab/.ssh/id_ed25519";
const URI_ACCEPTED =
  "qemu:///system, or qemu+ssh://[user@]host[:port]/system[?keyfile=/abs/path] with networkMode bridge (qemu:///session is refused)";
const HOSTS_ACCEPTED =
  "Empty, or comma-separated libvirt URIs (one per node, or repeated round-robin) that put node-2 and the last node on different hosts";
const GATEWAY_ACCEPTED = "An IPv4 address inside networkCidr that is no node's address, such as 192.168.150.1";

test("bridge mode with bridge and gateway parses; dns and nodeHosts become lists", (t) => {
  const { config, warnings } = parseLabConfig({
    ...BRIDGE,
    dns: " 192.168.150.1, 9.9.9.9 ,",
    nodeHosts: `qemu:///system,${SSH}`,
  });
  t.like(config, { networkMode: "bridge", bridge: "br0", gateway: "192.168.150.1", libvirtUri: "qemu:///system" });
  t.deepEqual(config.dns, ["192.168.150.1", "9.9.9.9"]);
  t.deepEqual(config.nodeHosts, ["qemu:///system", SSH]);
  t.deepEqual(warnings, []);
});

test("a remote libvirtUri is accepted with bridge mode", (t) => {
  t.is(parseLabConfig({ ...BRIDGE, libvirtUri: SSH }).config.libvirtUri, SSH);
});

test("one URI per node, and round-robin that splits the measured pair, are accepted", (t) => {
  const three = "qemu:///system,qemu+ssh://h2/system,qemu+ssh://h3/system";
  t.deepEqual(parseLabConfig({ ...BRIDGE, nodeHosts: three }).config.nodeHosts, three.split(","));
  // Four nodes on two hosts given in the order h1,h2,h1: node-2 on h2, node-4 on h1.
  const config = parseLabConfig({
    ...BRIDGE,
    nodeCount: "4",
    nodeHosts: "qemu:///system,qemu+ssh://h2/system,qemu:///system",
  }).config;
  t.is(config.nodeHosts.length, 3);
});

const refused: [string, Record<string, string>, string[]][] = [
  [
    "an unknown network mode",
    { networkMode: "lan" },
    ['cilium-lab:networkMode: is not supported (got "lan"). Accepted: nat, bridge.'],
  ],
  [
    "bridge mode without bridge and gateway",
    { networkMode: "bridge" },
    [
      'cilium-lab:bridge: is required with networkMode bridge (got ""). The name of an existing, up host bridge such as br0 (`ip -br link show type bridge` lists them).',
      `cilium-lab:gateway: is required with networkMode bridge (got ""). ${GATEWAY_ACCEPTED} (the LAN's router).`,
    ],
  ],
  [
    "a bridge name longer than IFNAMSIZ allows",
    { ...BRIDGE, bridge: "this-name-is-too-long" },
    [
      'cilium-lab:bridge: is not a Linux interface name (got "this-name-is-too-long"). An existing host bridge such as br0 (at most 15 characters).',
    ],
  ],
  [
    "a gateway that is not an address",
    { ...BRIDGE, gateway: "router" },
    [`cilium-lab:gateway: is not an IPv4 address (got "router"). ${GATEWAY_ACCEPTED}.`],
  ],
  [
    "a gateway outside networkCidr",
    { ...BRIDGE, gateway: "192.168.151.1" },
    [`cilium-lab:gateway: is outside networkCidr 192.168.150.0/24 (got "192.168.151.1"). ${GATEWAY_ACCEPTED}.`],
  ],
  [
    "the broadcast address as gateway",
    { ...BRIDGE, gateway: "192.168.150.255" },
    [
      `cilium-lab:gateway: is networkCidr 192.168.150.0/24's network or broadcast address (got "192.168.150.255"). ${GATEWAY_ACCEPTED}.`,
    ],
  ],
  [
    "a node's address as gateway",
    { ...BRIDGE, gateway: "192.168.150.12" },
    [
      `cilium-lab:gateway: is node-2's address (node N gets host address 10+N of networkCidr) (got "192.168.150.12"). ${GATEWAY_ACCEPTED}.`,
    ],
  ],
  [
    "a DNS server by name",
    { ...BRIDGE, dns: "1.1.1.1, dns.example" },
    [
      'cilium-lab:dns: lists "dns.example", which is not an IPv4 address (got "1.1.1.1, dns.example"). Empty (the gateway) or comma-separated IPv4 addresses such as 192.168.150.1,9.9.9.9.',
    ],
  ],
  [
    "networkMtu 9000 in bridge mode",
    { ...BRIDGE, networkMtu: "9000" },
    [
      "cilium-lab:networkMtu: must stay 1500 with networkMode bridge: the nodes' MTU is the host bridge's, which the host sets, not this lab (got 9000). Remove it (`pulumi config rm cilium-lab:networkMtu`) and set the bridge's MTU on the host, or use networkMode nat.",
    ],
  ],
  [
    "bridge keys with nat",
    { bridge: "br0", gateway: "192.168.150.1", dns: "1.1.1.1" },
    ["bridge", "gateway", "dns"].map(
      (key) =>
        `cilium-lab:${key}: is only used with networkMode bridge, not nat (got "${{ bridge: "br0", gateway: "192.168.150.1", dns: "1.1.1.1" }[key]}"). Remove it, or set networkMode bridge.`,
    ),
  ],
  [
    "no_verify in a remote URI",
    { ...BRIDGE, libvirtUri: "qemu+ssh://lab@10.0.0.5/system?no_verify=1" },
    [
      `cilium-lab:libvirtUri: no_verify is refused: host keys are always verified (no_verify would make ssh accept any new host key). Fix: drop it and record the host's key in ~/.ssh/known_hosts after checking its fingerprint (ssh-keyscan -p <port> <host>, or ssh once by hand) (got "qemu+ssh://lab@10.0.0.5/system?no_verify=1"). ${URI_ACCEPTED}.`,
    ],
  ],
  [
    "nodeHosts with nat",
    { nodeHosts: "qemu:///system,qemu+ssh://h2/system" },
    [
      `cilium-lab:nodeHosts: requires networkMode bridge: nodes on several hosts reach each other over a LAN, not through one host's NAT (got "qemu:///system,qemu+ssh://h2/system"). Set networkMode bridge (with bridge and gateway), or remove nodeHosts.`,
    ],
  ],
  [
    "nodeHosts with a libvirtUri",
    { ...BRIDGE, libvirtUri: "qemu+ssh://h1/system", nodeHosts: "qemu:///system,qemu+ssh://h2/system" },
    [
      'cilium-lab:nodeHosts: cannot be combined with libvirtUri qemu+ssh://h1/system: nodeHosts names every node\'s host (got "qemu:///system,qemu+ssh://h2/system"). List every host in nodeHosts and remove libvirtUri (`pulumi config rm cilium-lab:libvirtUri`).',
    ],
  ],
  [
    "more hosts than nodes",
    { ...BRIDGE, nodeHosts: "qemu:///system,qemu+ssh://h2/system,qemu+ssh://h3/system,qemu+ssh://h4/system" },
    [
      'cilium-lab:nodeHosts: lists 4 hosts for 3 nodes (got "qemu:///system,qemu+ssh://h2/system,qemu+ssh://h3/system,qemu+ssh://h4/system"). One URI per node (at most 3), or fewer repeated round-robin.',
    ],
  ],
  [
    "a single host in nodeHosts",
    { ...BRIDGE, nodeHosts: "qemu:///system" },
    [
      'cilium-lab:nodeHosts: puts the measured pair node-2 and node-3 both on qemu:///system, so their traffic never crosses a NIC (got "qemu:///system"). List at least two different hosts, or use libvirtUri for a single host.',
    ],
  ],
  [
    "node-2 and node-3 on one host",
    { ...BRIDGE, nodeHosts: "qemu:///system,qemu+ssh://h2/system,qemu+ssh://h2/system" },
    [
      'cilium-lab:nodeHosts: puts the measured pair node-2 and node-3 both on qemu+ssh://h2/system, so their traffic never crosses a NIC (got "qemu:///system,qemu+ssh://h2/system,qemu+ssh://h2/system"). Order the list so that node-2 and node-3 land on different hosts, such as qemu:///system,qemu+ssh://h2/system,qemu:///system.',
    ],
  ],
  [
    "round-robin that puts node-2 and node-4 together",
    { ...BRIDGE, nodeCount: "4", nodeHosts: "qemu:///system,qemu+ssh://h2/system" },
    [
      'cilium-lab:nodeHosts: puts the measured pair node-2 and node-4 both on qemu+ssh://h2/system, so their traffic never crosses a NIC (got "qemu:///system,qemu+ssh://h2/system"). Order the list so that node-2 and node-4 land on different hosts, such as qemu:///system,qemu+ssh://h2/system,qemu:///system,qemu:///system.',
    ],
  ],
  [
    "the session daemon in nodeHosts",
    { ...BRIDGE, nodeHosts: "qemu+ssh://h2/system,qemu:///session" },
    [
      `cilium-lab:nodeHosts: lists "qemu:///session": the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach. Fix: use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system (got "qemu+ssh://h2/system,qemu:///session"). ${HOSTS_ACCEPTED}.`,
    ],
  ],
];
for (const [title, raw, problems] of refused) {
  test(`refuses ${title}`, (t) => {
    t.deepEqual(problemsOf(raw), problems);
  });
}
