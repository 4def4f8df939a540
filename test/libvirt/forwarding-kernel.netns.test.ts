// The kernel agrees with the forwarding check: the real rulesets (forwarding-rulesets.ts) in a
// "host" namespace that routes between a "node" namespace behind the lab's bridge and an "internet"
// namespace behind the uplink (all three made here, private addresses, nothing leaves them).
// libvirt's rules for the lab's network are added as libvirt adds them when it starts the network;
// then node-1 opens a TCP connection to port 443 on the other side. The check's verdict (run in the
// host namespace) must match what happened. Needs root; run under the heavy lock. Every namespace
// is deleted, also on failure.
import test from "ava";
import { execFileSync, spawn } from "node:child_process";

import { checkForwarding, type ForwardingCheck } from "../../infra/libvirt/forwarding";
import {
  DROPPED,
  OK,
  TARGET,
  checkIn,
  deleteOurNamespaces,
  inNs,
  iptables,
  loadRules,
  nextNamespace,
  nft,
  nsExec,
  sh,
  type Load,
} from "./forwarding-netns";
import {
  DOCKER,
  DOCKER_THEN_LIBVIRT9,
  DOCKER_USER_ALLOWED,
  FIREWALLD,
  FIREWALLD_NO_FORWARD,
  LAB_BRIDGE,
  LAB_CIDR,
  LIBVIRT9,
  LIBVIRT_NFT,
  NFT_DROP_FORWARD,
  UFW,
  UFW_ROUTE_ALLOWED,
} from "./forwarding-rulesets";

test.after.always(deleteOurNamespaces);

const NODE_JS = process.execPath;
const libvirtStartsLab = (ns: string, backend: "iptables-legacy" | "iptables-nft" | "nft"): void => {
  const x = (...args: string[]): void => nsExec(ns, ...args);
  if (backend === "nft") {
    // nftablesAddForwardAllowOut / nftablesAddForwardAllowRelatedIn (libvirt network_nftables.c)
    x(
      "/usr/sbin/nft",
      "insert",
      "rule",
      "ip",
      "libvirt_network",
      "guest_output",
      "ip",
      "saddr",
      LAB_CIDR,
      "iif",
      LAB_BRIDGE,
      "counter",
      "accept",
    );
    x(
      "/usr/sbin/nft",
      "insert",
      "rule",
      "ip",
      "libvirt_network",
      "guest_input",
      "oif",
      LAB_BRIDGE,
      "ip",
      "daddr",
      LAB_CIDR,
      "ct",
      "state",
      "related,established",
      "counter",
      "accept",
    );
  } else {
    // iptablesForwardAllowOut / iptablesForwardAllowRelatedIn (libvirt network_iptables.c)
    x(
      `/usr/sbin/${backend}`,
      "--table",
      "filter",
      "--insert",
      "LIBVIRT_FWO",
      "--source",
      LAB_CIDR,
      "--in-interface",
      LAB_BRIDGE,
      "--jump",
      "ACCEPT",
    );
    x(
      `/usr/sbin/${backend}`,
      "--table",
      "filter",
      "--insert",
      "LIBVIRT_FWI",
      "--destination",
      LAB_CIDR,
      "--out-interface",
      LAB_BRIDGE,
      "--match",
      "conntrack",
      "--ctstate",
      "ESTABLISHED,RELATED",
      "--jump",
      "ACCEPT",
    );
  }
};

async function kernelAndCheck(
  loads: readonly Load[],
  libvirt: "iptables-legacy" | "iptables-nft" | "nft",
): Promise<{ connected: boolean; check: ForwardingCheck }> {
  const id = nextNamespace();
  const [host, node, inet] = [`${id}h`, `${id}n`, `${id}i`];
  const made: string[] = [];
  try {
    for (const ns of [host, node, inet]) {
      sh(["ip", "netns", "add", ns]);
      made.push(ns);
    }
    const x = nsExec;
    x(host, "ip", "link", "add", LAB_BRIDGE, "type", "bridge");
    x(host, "ip", "addr", "add", "192.168.150.1/24", "dev", LAB_BRIDGE);
    x(host, "ip", "link", "set", LAB_BRIDGE, "up");
    x(host, "ip", "link", "add", "virbr0", "type", "bridge");
    x(host, "ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "eth0", "netns", node);
    x(host, "ip", "link", "set", "vnet0", "master", LAB_BRIDGE, "up");
    x(host, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", inet);
    x(host, "ip", "addr", "add", "10.254.0.2/24", "dev", "uplink0");
    x(host, "ip", "link", "set", "uplink0", "up");
    x(host, "ip", "route", "add", "default", "via", "10.254.0.1", "dev", "uplink0");
    x(host, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    x(node, "ip", "addr", "add", "192.168.150.11/24", "dev", "eth0");
    x(node, "ip", "link", "set", "eth0", "up");
    x(node, "ip", "route", "add", "default", "via", "192.168.150.1");
    x(inet, "ip", "addr", "add", "10.254.0.1/24", "dev", "eth0");
    x(inet, "ip", "link", "set", "eth0", "up");
    x(inet, "ip", "route", "add", "192.168.150.0/24", "via", "10.254.0.2");
    loadRules(host, loads);
    libvirtStartsLab(host, libvirt);
    const server = spawn(
      "ip",
      [
        "netns",
        "exec",
        inet,
        NODE_JS,
        "-e",
        "require('net').createServer((s) => s.end('hi')).listen(443, '10.254.0.1', () => console.log('up'))",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.once("data", () => resolve());
        server.once("exit", (code) => reject(new Error(`server exited ${code}`)));
      });
      const client =
        "const s = require('net').connect(443, '10.254.0.1'); s.setTimeout(1500, () => process.exit(3)); s.on('data', () => process.exit(0)); s.on('error', () => process.exit(4));";
      let connected = true;
      try {
        execFileSync("ip", ["netns", "exec", node, NODE_JS, "-e", client], { stdio: "ignore", timeout: 10_000 });
      } catch {
        connected = false;
      }
      return { connected, check: checkForwarding(TARGET, inNs(host)) };
    } finally {
      server.kill();
    }
  } finally {
    for (const ns of made) {
      sh(["ip", "netns", "del", ns]);
    }
  }
}

type Backend = "iptables-legacy" | "iptables-nft" | "nft";

// name, the rulesets loaded in order, libvirt's firewall backend, whether node-1 connects.
const KERNEL_CASES: readonly (readonly [string, readonly Load[], Backend, boolean])[] = [
  ["libvirt 9 on iptables-nft", [iptables("iptables-nft", LIBVIRT9)], "iptables-nft", true],
  ["libvirt 9 on iptables-legacy", [iptables("iptables-legacy", LIBVIRT9)], "iptables-legacy", true],
  ["Docker, then libvirt 9 (iptables-nft)", [iptables("iptables-nft", DOCKER_THEN_LIBVIRT9)], "iptables-nft", true],
  [
    "Docker (iptables-nft) with libvirt on nftables",
    [iptables("iptables-nft", DOCKER), nft(LIBVIRT_NFT)],
    "nft",
    false,
  ],
  [
    "Docker (iptables-legacy) with libvirt 9 on iptables-nft",
    [iptables("iptables-legacy", DOCKER), iptables("iptables-nft", LIBVIRT9)],
    "iptables-nft",
    false,
  ],
  ["UFW (iptables-nft) with libvirt on nftables", [iptables("iptables-nft", UFW), nft(LIBVIRT_NFT)], "nft", false],
  [
    "an nft forward chain with policy drop, libvirt on nftables",
    [nft(LIBVIRT_NFT), nft(NFT_DROP_FORWARD)],
    "nft",
    false,
  ],
  ["firewalld (default zone forwarding) with libvirt on nftables", [nft(LIBVIRT_NFT), nft(FIREWALLD)], "nft", true],
  [
    "firewalld without zone forwarding, libvirt on nftables,",
    [nft(LIBVIRT_NFT), nft(FIREWALLD_NO_FORWARD)],
    "nft",
    false,
  ],
  [
    "Docker with the DOCKER-USER fix applied, libvirt on nftables,",
    [iptables("iptables-nft", DOCKER_USER_ALLOWED), nft(LIBVIRT_NFT)],
    "nft",
    true,
  ],
  [
    "UFW with `ufw route allow in on <bridge>`, libvirt on nftables,",
    [iptables("iptables-nft", UFW_ROUTE_ALLOWED), nft(LIBVIRT_NFT)],
    "nft",
    true,
  ],
];

for (const [name, loads, libvirt, connects] of KERNEL_CASES) {
  test.serial(
    `the kernel agrees with the check: ${name} ${connects ? "forwards" : "drops"} node-1's connection`,
    async (t) => {
      const { connected, check } = await kernelAndCheck(loads, libvirt);
      t.is(connected, connects, "what the kernel did");
      t.is(check.status, connects ? "ok" : "fail", check.detail);
    },
  );
}

test.serial(
  "firewalld without zone forwarding: the fix puts the lab's bridge into libvirt's zone; before the bridge exists firewalld is not judged",
  async (t) => {
    const { check } = await kernelAndCheck([nft(LIBVIRT_NFT), nft(FIREWALLD_NO_FORWARD)], "nft");
    t.deepEqual(
      check,
      DROPPED(
        "nftables table inet firewalld (firewalld's) chain filter_FORWARD drops new connections from the nodes (rule handle 15 of chain filter_FORWARD_POLICIES: reject)",
        "`firewall-cmd --permanent --zone=libvirt --change-interface=cl-vxlan-1a2b && firewall-cmd --reload`",
      ),
    );
    // libvirt adds a new network's bridge to zone "libvirt" when it starts it (libvirt.zone).
    t.deepEqual(checkIn([nft(LIBVIRT_NFT), nft(FIREWALLD_NO_FORWARD)]), OK(1));
  },
);
