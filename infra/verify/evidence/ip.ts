/**
 * `ip -j` output (iproute2's JSON) as the collectors print it: links, IPv4 routes with their MTU
 * metric, and IPv4 addresses. Pure: no I/O, no Pulumi.
 */
import { isObject, numberOrNull, stringOrNull, type Json } from "../json";

/** A link from `ip -j -d link show`. */
export interface IpLink {
  readonly name: string;
  readonly mtu: number | null;
  /** `linkinfo.info_kind`: vxlan, geneve, veth, … (`null` for plain NICs). */
  readonly kind: string | null;
  /** UDP port of a vxlan/geneve device (`linkinfo.info_data.port`). */
  readonly port: number | null;
  readonly up: boolean;
}

/** An IPv4 route from `ip -j -d -4 route show table main`. */
export interface IpRoute {
  readonly dst: string;
  readonly gateway: string | null;
  readonly dev: string | null;
  /** `kernel` for connected routes, `boot` for `ip route add`, … */
  readonly protocol: string | null;
  /** The route's `mtu` metric, `null` when the route has none. */
  readonly mtu: number | null;
}

/** Addresses of one interface from `ip -j -4 addr show`. */
export interface IpAddrs {
  readonly name: string;
  /** `a.b.c.d/len` */
  readonly addrs: readonly string[];
}

/** Parses `ip -j -d link show` output (already JSON-decoded). */
export function parseIpLinks(value: unknown): IpLink[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((l): IpLink => {
    const info = isObject(l.linkinfo) ? l.linkinfo : undefined;
    const data = info && isObject(info.info_data) ? info.info_data : undefined;
    const flags = Array.isArray(l.flags) ? l.flags : [];
    return {
      name: stringOrNull(l.ifname) ?? "?",
      mtu: numberOrNull(l.mtu),
      kind: info ? stringOrNull(info.info_kind) : null,
      port: data ? numberOrNull(data.port) : null,
      up: flags.includes("UP"),
    };
  });
}

/** The `mtu` metric of an `ip -j` route: `"metrics":[{"mtu":1450}]`, or `{"mtu":{"value":1450,"lock":true}}` when locked. */
function routeMtu(metrics: unknown): number | null {
  if (!Array.isArray(metrics)) {
    return null;
  }
  for (const m of metrics) {
    if (isObject(m) && "mtu" in m) {
      const v = m.mtu;
      return numberOrNull(v) ?? (isObject(v) ? numberOrNull(v.value) : null);
    }
  }
  return null;
}

/** Parses `ip -j -d -4 route show` output (already JSON-decoded). */
export function parseIpRoutes(value: unknown): IpRoute[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((r): IpRoute => ({
    dst: stringOrNull(r.dst) ?? "?",
    gateway: stringOrNull(r.gateway),
    dev: stringOrNull(r.dev),
    protocol: stringOrNull(r.protocol),
    mtu: routeMtu(r.metrics),
  }));
}

/** Parses `ip -j -4 addr show` output (already JSON-decoded). */
export function parseIpAddrs(value: unknown): IpAddrs[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((a): IpAddrs => {
    const infos = Array.isArray(a.addr_info) ? a.addr_info.filter(isObject) : [];
    return {
      name: stringOrNull(a.ifname) ?? "?",
      addrs: infos
        .filter((i) => i.family === "inet" || i.family === undefined)
        .map((i) => `${stringOrNull(i.local) ?? "?"}/${numberOrNull(i.prefixlen) ?? "?"}`),
    };
  });
}

/** What `ip -j` shows of one network namespace (a node's, or a pod's): its links, IPv4 routes and addresses. */
export interface IpState {
  readonly links: readonly IpLink[];
  readonly routes: readonly IpRoute[];
  readonly addrs: readonly IpAddrs[];
}

/** Reads the `links`, `routes` and `addrs` fields of a collector document (each an `ip -j` output). */
export function parseIpState(doc: Json): IpState {
  return { links: parseIpLinks(doc.links), routes: parseIpRoutes(doc.routes), addrs: parseIpAddrs(doc.addrs) };
}

/** `ip route` text of a route, as the evidence shows it: `10.0.1.0/24 via 192.168.150.12 dev eth0 mtu 1450`. */
export function formatRoute(r: IpRoute): string {
  return [r.dst, r.gateway ? `via ${r.gateway}` : "", r.dev ? `dev ${r.dev}` : "", r.mtu !== null ? `mtu ${r.mtu}` : ""]
    .filter((p) => p !== "")
    .join(" ");
}
