/**
 * The host's routes, links and libvirt networks, and the subnet-overlap rule. Parsing and the rule
 * are pure; the provider gathers with `ip -j`/`virsh` asynchronously, the preflight synchronously.
 *
 * Why our own check: libvirt refuses a network only when its network/mask *exactly equals* an
 * existing route (`networkCheckRouteCollision`, libvirt src/network/bridge_driver_linux.c); a
 * partial overlap (host 10.98.0.0/16, lab 10.98.5.0/24) starts fine and silently breaks routing.
 */
import { cidrsOverlap, formatCidr, parseCidr, parseIpv4, type Cidr } from "../config/cidr";
import type { Owner, ParsedNetwork } from "./xml";

/** An IPv4 route of the host (`ip -j -4 route show table all`). */
export interface HostRoute {
  /** `a.b.c.d/n`. */
  readonly dst: string;
  readonly dev: string;
  readonly table: string;
}

/** A libvirt network as far as overlap and ownership go. */
export interface HostNetwork {
  readonly name: string;
  readonly owner: Owner | undefined;
  readonly bridge: string | undefined;
  /** `a.b.c.d/n` of each IPv4 `<ip>`. */
  readonly cidrs: readonly string[];
}

/** Parses `ip -j -4 route show table all`: unicast routes only, `default` skipped, host routes as /32. */
export function parseHostRoutes(json: string): HostRoute[] {
  const rows = JSON.parse(json || "[]") as { dst?: string; dev?: string; table?: string | number; type?: string }[];
  const routes: HostRoute[] = [];
  for (const row of rows) {
    const type = row.type ?? "unicast";
    if (type !== "unicast" || row.dst === undefined || row.dst === "default") {
      continue;
    }
    const dst = row.dst.includes("/") ? row.dst : `${row.dst}/32`;
    if (typeof parseCidr(dst) === "string") {
      continue;
    }
    routes.push({ dst, dev: row.dev ?? "", table: String(row.table ?? "main") });
  }
  return routes;
}

/** The interface names in `ip -j link show` output. */
export function parseLinkNames(json: string): string[] {
  return (JSON.parse(json || "[]") as { ifname?: string }[]).flatMap((l) => (l.ifname !== undefined ? [l.ifname] : []));
}

/** The network address of `address/prefix` as CIDR text (`192.168.150.1`, 24 → `192.168.150.0/24`). */
export function networkOf(address: string, prefix: number): string {
  const ip = parseIpv4(address) ?? 0;
  const size = 2 ** (32 - prefix);
  return formatCidr({ base: ip - (ip % size), prefix });
}

/** A libvirt network as read back (`virsh net-dumpxml`), as far as overlap and ownership go. */
export function hostNetworkOf(net: ParsedNetwork): HostNetwork {
  return {
    name: net.name,
    owner: net.owner,
    bridge: net.bridge,
    cidrs: net.ips.map((i) => networkOf(i.address, i.prefix)),
  };
}

/** What the lab's own network is, so it does not conflict with itself. */
export interface OwnNetwork {
  readonly networkName: string;
  readonly bridgeName: string;
  readonly stack: string;
}

/**
 * Everything `cidr` overlaps, one line each: host routes (except those on our own bridge) and libvirt
 * networks (except our own network of the same name and stack).
 */
export function subnetConflicts(
  cidr: string,
  routes: readonly HostRoute[],
  networks: readonly HostNetwork[],
  own: OwnNetwork,
): string[] {
  const lab = parseCidr(cidr);
  if (typeof lab === "string") {
    return [];
  }
  const lines: string[] = [];
  for (const route of routes) {
    if (route.dev === own.bridgeName) {
      continue;
    }
    const dst = parseCidr(route.dst) as Cidr;
    if (cidrsOverlap(lab, dst)) {
      lines.push(
        `host route ${route.dst} dev ${route.dev || "?"}${route.table !== "main" ? ` table ${route.table}` : ""}`,
      );
    }
  }
  for (const net of networks) {
    if (net.name === own.networkName) {
      continue;
    }
    for (const c of net.cidrs) {
      const other = parseCidr(c);
      if (typeof other !== "string" && cidrsOverlap(lab, other)) {
        lines.push(`libvirt network "${net.name}" (${c})`);
      }
    }
  }
  return lines;
}

/**
 * A /24 in 192.168.100.0–192.168.254.0 that overlaps nothing, for the fix text; undefined if none.
 */
export function suggestFreeCidr(routes: readonly HostRoute[], networks: readonly HostNetwork[]): string | undefined {
  const taken: Cidr[] = [
    ...routes.map((r) => parseCidr(r.dst) as Cidr),
    ...networks.flatMap((n) => n.cidrs.map((c) => parseCidr(c)).filter((c): c is Cidr => typeof c !== "string")),
  ];
  for (let third = 100; third <= 254; third++) {
    const candidate: Cidr = { base: (192 * 256 + 168) * 65536 + third * 256, prefix: 24 };
    if (!taken.some((t) => cidrsOverlap(candidate, t))) {
      return formatCidr(candidate);
    }
  }
  return undefined;
}

/** The subnet-overlap error text (shared by the provider and the preflight). */
export function overlapMessage(
  cidr: string,
  networkName: string,
  conflicts: readonly string[],
  suggestion: string | undefined,
): string {
  return (
    `networkCidr ${cidr} of libvirt network "${networkName}" overlaps ${conflicts.join("; ")}. ` +
    `Fix: choose a free range, e.g. \`pulumi config set cilium-lab:networkCidr ${suggestion ?? "<free /24>"}\` (each stack needs its own).`
  );
}
