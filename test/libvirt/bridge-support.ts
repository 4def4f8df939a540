/**
 * Test bridges for bridge mode (root only: they create links and network namespaces): a Linux
 * bridge `clt-<short>` with a host address from 192.0.2.0/24 (TEST-NET-1, RFC 5737), no uplink and
 * nothing forwarded, and a network namespace holding an address on it through a veth pair, to play
 * a machine of the LAN that already uses a node's address. Everything is named with the suite's
 * prefix, so `sweepBridges` removes a crashed run's leftovers.
 */
import { execFileSync } from "node:child_process";

/**
 * The test LAN: the upper half of 192.0.2.0/24, with the host (the "gateway") on .129 and the
 * nodes from .139 (networkCidr base + 10 + n, the plan's offset). Not the whole /24: a machine may
 * sit on 192.0.2.0/24 itself (this CI container's eth0 is 192.0.2.2/24), and then its own /24 route
 * would take the nodes' traffic; the bridge's /25 route is more specific and wins.
 */
export const TEST_LAN = { cidr: "192.0.2.128/25", gateway: "192.0.2.129", prefix: 25 } as const;

/** Node n's static address on {@link TEST_LAN}: 192.0.2.(138 + n). */
export function testLanNode(n: number): string {
  return `192.0.2.${138 + n}`;
}

function ip(args: readonly string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function ipTry(args: readonly string[]): boolean {
  try {
    ip(args);
    return true;
  } catch {
    return false;
  }
}

/** Creates bridge `name` with the test LAN's gateway address (TEST_LAN: 192.0.2.129/25), up, no port. */
export function createTestBridge(name: string): void {
  ip(["link", "add", name, "type", "bridge"]);
  ip(["addr", "add", `${TEST_LAN.gateway}/${TEST_LAN.prefix}`, "dev", name]);
  ip(["link", "set", name, "up"]);
}

/** A namespace holding `address` on `bridge` through a veth pair, as another machine of the LAN would. */
export interface AddressHolder {
  readonly ns: string;
  /** The MAC that answers for the address. */
  readonly mac: string;
  readonly remove: () => void;
}

/** Puts `address` on the bridge from namespace `<prefix>-ns` (veth `<prefix>-h` on the bridge, `<prefix>-p` inside). */
export function holdAddress(bridge: string, prefix: string, address: string): AddressHolder {
  const ns = `${prefix}-ns`;
  const host = `${prefix}-h`;
  const peer = `${prefix}-p`;
  ip(["netns", "add", ns]);
  ip(["link", "add", host, "type", "veth", "peer", "name", peer]);
  ip(["link", "set", host, "master", bridge, "up"]);
  ip(["link", "set", peer, "netns", ns]);
  ip(["-n", ns, "addr", "add", `${address}/${TEST_LAN.prefix}`, "dev", peer]);
  ip(["-n", ns, "link", "set", peer, "up"]);
  ip(["-n", ns, "link", "set", "lo", "up"]);
  const mac =
    (JSON.parse(ip(["-n", ns, "-j", "link", "show", "dev", peer])) as { address: string }[])[0]?.address ?? "";
  return {
    ns,
    mac,
    remove: () => {
      ipTry(["link", "del", host]);
      ipTry(["netns", "del", ns]);
    },
  };
}

/** Links and namespaces whose names start with `prefix`. */
export function bridgeLeftovers(prefix: string): { links: string[]; namespaces: string[] } {
  const links = (JSON.parse(ip(["-j", "link", "show"])) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(prefix));
  const namespaces = ip(["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(prefix));
  return { links, namespaces };
}

/** Removes every link and namespace named with `prefix` (a crashed run's leftovers, or this run's). */
export function sweepBridges(prefix: string): void {
  const { links, namespaces } = bridgeLeftovers(prefix);
  for (const ns of namespaces) {
    ipTry(["netns", "del", ns]);
  }
  for (const link of links) {
    ipTry(["link", "del", link]);
  }
}
