/**
 * IPv4 CIDR arithmetic for config validation and address planning. Pure: no I/O, no Pulumi.
 *
 * Addresses are handled as unsigned 32-bit integers; a range is `[first, last]` inclusive.
 */

/** A parsed IPv4 CIDR such as `10.0.0.0/16`. */
export interface Cidr {
  /** The network address as an unsigned 32-bit integer. */
  readonly base: number;
  /** The prefix length, 0–32. */
  readonly prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad IPv4 text; `undefined` when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) {
    return undefined;
  }
  const octets = m.slice(1).map(Number);
  if (octets.some((o, i) => o > 255 || ((m[i + 1] ?? "").length > 1 && (m[i + 1] ?? "").startsWith("0")))) {
    return undefined;
  }
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

/** Formats an unsigned 32-bit integer as dotted-quad text. */
export function formatIpv4(addr: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(addr / 2 ** shift) % 256).join(".");
}

/** The number of addresses in a prefix. */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** The last address in a prefix (its broadcast address). */
export function cidrLast(c: Cidr): number {
  return c.base + cidrSize(c) - 1;
}

/** Formats a parsed CIDR back to `a.b.c.d/n`. */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

/**
 * Parses `a.b.c.d/n`. Returns an error text (for a config message) when the text is not a CIDR or
 * has host bits set, naming the canonical form in the latter case.
 */
export function parseCidr(text: string): Cidr | string {
  const [addrText, prefixText, ...rest] = text.split("/");
  if (addrText === undefined || prefixText === undefined || rest.length > 0 || !/^\d{1,2}$/.test(prefixText)) {
    return "is not an IPv4 CIDR";
  }
  const addr = parseIpv4(addrText);
  const prefix = Number(prefixText);
  if (addr === undefined || prefix > 32) {
    return "is not an IPv4 CIDR";
  }
  const size = 2 ** (32 - prefix);
  const base = addr - (addr % size);
  if (base !== addr) {
    return `has host bits set (did you mean ${formatCidr({ base, prefix })}?)`;
  }
  return { base, prefix };
}

/** Whether two prefixes share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

/** Whether `outer` contains every address of the inclusive range `[first, last]`. */
export function cidrContainsRange(outer: Cidr, first: number, last: number): boolean {
  return outer.base <= first && last <= cidrLast(outer);
}

/**
 * The per-node pod blocks Cilium's cluster-pool IPAM hands out, in allocation order: the pool cut
 * into `/maskSize` blocks. The operator allocates from the start of the pool, so the first
 * `count` blocks are the ones a fresh cluster of `count` nodes gets (see
 * https://docs.cilium.io/en/stable/network/concepts/ipam/cluster-pool/).
 */
export function podBlocks(pool: Cidr, maskSize: number, count: number): Cidr[] {
  const size = 2 ** (32 - maskSize);
  return Array.from({ length: count }, (_, i) => ({ base: pool.base + i * size, prefix: maskSize }));
}
