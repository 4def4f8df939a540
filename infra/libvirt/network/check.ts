/** The input check of a {@link Network}, and the host order its state and diff compare in. Pure. */
import { parseCidr, parseIpv4, cidrLast, type Cidr } from "../../config/cidr";
import { isUnknown } from "../../provider";
import { Checker, MAC_PATTERN, STACK_PATTERN, checkUri, int, str } from "../common";
import type { DhcpHost } from "../xml";

/** DHCP reservations in MAC order, MACs lower case. */
export function sortHosts(hosts: readonly DhcpHost[]): DhcpHost[] {
  return [...hosts]
    .map((h) => ({ mac: h.mac.toLowerCase(), ip: h.ip, hostname: h.hostname }))
    .sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
}

function inCidr(ip: string, c: Cidr): boolean {
  const n = parseIpv4(ip);
  return n !== undefined && n > c.base && n < cidrLast(c);
}

/** Checks a Network's inputs (values not known yet pass) and sorts its hosts. */
export function checkNetwork(news: Record<string, unknown>): {
  inputs: Record<string, unknown>;
  failures: { property: string; reason: string }[];
} {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field(
    "networkName",
    str(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "a libvirt network name ([A-Za-z0-9_.-], at most 64)"),
  );
  c.field(
    "bridgeName",
    str(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, "a Linux interface name of at most 15 characters (IFNAMSIZ - 1)"),
  );
  c.field("stack", str(STACK_PATTERN, "a Pulumi stack name"));
  c.field("mtu", (v) => (v === undefined ? undefined : int(576, 9000)(v)));
  let cidr: Cidr | undefined;
  c.field("cidr", (v) => {
    const parsed = typeof v === "string" ? parseCidr(v) : "is not a string";
    if (typeof parsed === "string") {
      return `${JSON.stringify(v)} ${parsed}`;
    }
    if (parsed.prefix < 8 || parsed.prefix > 29) {
      return `prefix must be /8 to /29, got /${parsed.prefix}`;
    }
    cidr = parsed;
    return undefined;
  });
  c.field("gateway", (v) =>
    typeof v !== "string" || (cidr && !inCidr(v, cidr)) || parseIpv4(String(v)) === undefined
      ? `must be a host address inside cidr, got ${JSON.stringify(v)}`
      : undefined,
  );
  if (!isUnknown(news.hosts)) {
    if (!Array.isArray(news.hosts)) {
      c.fail("hosts", "must be a list of {mac, ip, hostname}");
    } else {
      const seen = new Map<string, number>();
      (news.hosts as Partial<DhcpHost>[]).forEach((h, i) => {
        const where = `hosts[${i}]`;
        if (typeof h.mac !== "string" || !MAC_PATTERN.test(h.mac.toLowerCase())) {
          c.fail(`${where}.mac`, `must be a unicast MAC like 52:54:00:12:34:56, got ${JSON.stringify(h.mac)}`);
        }
        if (typeof h.ip !== "string" || (cidr && !inCidr(h.ip, cidr)) || h.ip === news.gateway) {
          c.fail(
            `${where}.ip`,
            `must be a host address inside cidr other than the gateway, got ${JSON.stringify(h.ip)}`,
          );
        }
        if (typeof h.hostname !== "string" || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(h.hostname)) {
          c.fail(`${where}.hostname`, `must be a DNS label, got ${JSON.stringify(h.hostname)}`);
        }
        for (const k of ["mac", "ip", "hostname"] as const) {
          const v = `${k}=${String(h[k]).toLowerCase()}`;
          if (seen.has(v)) {
            c.fail(`${where}.${k}`, `duplicates hosts[${seen.get(v) ?? 0}].${k} (${String(h[k])})`);
          }
          seen.set(v, i);
        }
      });
    }
  }
  const inputs =
    Array.isArray(news.hosts) && !isUnknown(news.hosts)
      ? { ...news, hosts: sortHosts(news.hosts as DhcpHost[]) }
      : news;
  return { inputs, failures: c.failures };
}
