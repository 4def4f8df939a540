/**
 * The conditions of netfilter rules, shared by the iptables and nft parsers: addresses, interfaces,
 * ports, conntrack states and protocols, each judged three-valued against a probe packet. Pure.
 */
import { parseIpv4 } from "../../config/cidr";
import { or, type Addr, type Probe, type Tri } from "./netfilter";

// Ranges an internet destination is never in (RFC 1918, loopback, link-local, CGNAT, multicast and reserved).
const SPECIAL: readonly [number, number][] = [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["100.64.0.0", 10],
  ["224.0.0.0", 3],
].map(([a, n]) => [parseIpv4(a as string) ?? 0, n as number]);

const inPrefix = (addr: number, base: number, len: number): boolean =>
  len === 0 || Math.floor(addr / 2 ** (32 - len)) === Math.floor(base / 2 ** (32 - len));

/** Does `addr` fall in `lo..hi`, or in the prefix `text` (`a.b.c.d[/n]`)? */
export function addrIn(addr: Addr, lo: number, hi: number): Tri {
  if (addr !== "internet") {
    return addr >= lo && addr <= hi ? "yes" : "no";
  }
  if (lo === 0 && hi === 2 ** 32 - 1) {
    return "yes";
  }
  return SPECIAL.some(([b, n]) => inPrefix(lo, b, n) && inPrefix(hi, b, n)) ? "no" : "maybe";
}

function prefixRange(text: string): [number, number] | undefined {
  const [a, n] = text.split("/");
  const base = parseIpv4(a ?? "");
  const len = n === undefined ? 32 : /^\d+$/.test(n) ? Number(n) : NaN;
  if (base === undefined || !(len >= 0 && len <= 32)) {
    return undefined;
  }
  const size = 2 ** (32 - len);
  const lo = base - (base % size);
  return [lo, lo + size - 1];
}

export const addrMatch = (addr: Addr, text: string): Tri => {
  const r = prefixRange(text);
  return r ? addrIn(addr, r[0], r[1]) : "maybe";
};

/** Interface name against an iptables (`eth+`) or nft (`eth*`) pattern; `null` is the unknown uplink. */
export function ifaceMatch(actual: string | null, pattern: string, bridge: string): Tri {
  const wild = pattern.endsWith("+") || pattern.endsWith("*");
  const stem = wild ? pattern.slice(0, -1) : pattern;
  if (actual !== null) {
    return (wild ? actual.startsWith(stem) : actual === stem) ? "yes" : "no";
  }
  // The uplink is neither the lab's bridge nor loopback; any other name it might have.
  if (!wild && (stem === bridge || stem === "lo")) {
    return "no";
  }
  return "maybe";
}

export const portMatch = (port: number | undefined, lo: number, hi: number): Tri =>
  port === undefined ? (lo === 0 && hi >= 65535 ? "yes" : "maybe") : port >= lo && port <= hi ? "yes" : "no";

export function portSpec(p: number | undefined, spec: string): Tri {
  return or(
    spec.split(",").map((part) => {
      const [a, b] = part.split(":");
      const lo = Number(a === "" ? 0 : a);
      const hi = b === undefined ? lo : Number(b === "" ? 65535 : b);
      return Number.isFinite(lo) && Number.isFinite(hi) ? portMatch(p, lo, hi) : "maybe";
    }),
  );
}

export const stateMatch = (state: Probe["state"], names: readonly string[]): Tri =>
  names.some((n) => n.toLowerCase() === state) ? "yes" : names.some((n) => /^(snat|dnat)$/i.test(n)) ? "maybe" : "no";

const PROTO_NUM: Record<string, string> = { "6": "tcp", "17": "udp" };
export const protoMatch = (proto: Probe["proto"], name: string): Tri => {
  const n = PROTO_NUM[name] ?? name.toLowerCase();
  return n === "all" || n === "0" ? "yes" : n === proto ? "yes" : "no";
};
