/**
 * Parsing what virsh prints (net-dumpxml, dumpxml, pool-dumpxml, net-dhcp-leases), including our
 * ownership stamp (render.ts writes it). Pure: no I/O.
 */
import { create } from "xmlbuilder2";

import { OWNER_NS, type DhcpHost, type Owner } from "./render";

// The DOM of xmlbuilder2 is typed loosely; these helpers keep the rest of the code typed.

interface XmlElement {
  readonly nodeName: string;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  getElementsByTagName(name: string): ArrayLike<XmlElement>;
  getElementsByTagNameNS(ns: string, name: string): ArrayLike<XmlElement>;
  readonly childNodes: ArrayLike<{ readonly nodeType: number }>;
}

function parseRoot(xml: string, expected: string): XmlElement {
  let root: XmlElement;
  try {
    root = create(xml).root().node as unknown as XmlElement;
  } catch (error) {
    throw new Error(`cannot parse libvirt ${expected} XML: ${(error as Error).message}`, { cause: error });
  }
  if (root.nodeName !== expected) {
    throw new Error(`expected a <${expected}> document from libvirt, got <${root.nodeName}>`);
  }
  return root;
}

/** Element children of `parent` named `name` (direct children only). */
function children(parent: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const nodes = parent.childNodes;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as unknown as XmlElement & { nodeType: number };
    if (node.nodeType === 1 && node.nodeName === name) {
      out.push(node);
    }
  }
  return out;
}

function child(parent: XmlElement, name: string): XmlElement | undefined {
  return children(parent, name)[0];
}

function text(parent: XmlElement, name: string): string | undefined {
  const el = child(parent, name);
  return el?.textContent?.trim() ?? undefined;
}

function attr(el: XmlElement | undefined, name: string): string | undefined {
  return el?.getAttribute(name) ?? undefined;
}

function parseOwner(root: XmlElement): Owner | undefined {
  const metadata = child(root, "metadata");
  if (!metadata) {
    return undefined;
  }
  const el = metadata.getElementsByTagNameNS(OWNER_NS, "owner")[0];
  const project = attr(el, "project");
  const stack = attr(el, "stack");
  return project !== undefined && stack !== undefined ? { project, stack } : undefined;
}

/** Prefix length of a dotted netmask (`255.255.255.0` → 24); undefined when not contiguous. */
export function netmaskToPrefix(netmask: string): number | undefined {
  const parts = netmask.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return undefined;
  }
  const bits = parts.map((p) => p.toString(2).padStart(8, "0")).join("");
  return /^1*0*$/.test(bits) ? (bits.indexOf("0") === -1 ? 32 : bits.indexOf("0")) : undefined;
}

/** What we read back from `virsh net-dumpxml`. */
export interface ParsedNetwork {
  readonly name: string;
  readonly uuid: string;
  readonly owner: Owner | undefined;
  readonly bridge: string | undefined;
  /** `nat`, `route`, `open`, `bridge`…; undefined for an isolated network. */
  readonly forwardMode: string | undefined;
  readonly mtu: number | undefined;
  /** IPv4 addresses of the bridge with their prefix length. */
  readonly ips: readonly { readonly address: string; readonly prefix: number }[];
  readonly hosts: readonly DhcpHost[];
  /** Whether any `<ip>` has a `<dhcp>` element. */
  readonly dhcp: boolean;
}

/** Parses `virsh net-dumpxml` output. */
export function parseNetworkXml(xml: string): ParsedNetwork {
  const root = parseRoot(xml, "network");
  const ips: { address: string; prefix: number }[] = [];
  const hosts: DhcpHost[] = [];
  let dhcp = false;
  for (const ip of children(root, "ip")) {
    const family = attr(ip, "family") ?? "ipv4";
    const address = attr(ip, "address");
    if (family !== "ipv4" || address === undefined) {
      continue;
    }
    const prefixAttr = attr(ip, "prefix");
    const netmask = attr(ip, "netmask");
    const prefix =
      prefixAttr !== undefined ? Number(prefixAttr) : netmask !== undefined ? netmaskToPrefix(netmask) : 24;
    ips.push({ address, prefix: prefix ?? 24 });
    const dhcpEl = child(ip, "dhcp");
    if (dhcpEl) {
      dhcp = true;
      for (const host of children(dhcpEl, "host")) {
        hosts.push({
          mac: (attr(host, "mac") ?? "").toLowerCase(),
          ip: attr(host, "ip") ?? "",
          hostname: attr(host, "name") ?? "",
        });
      }
    }
  }
  const mtu = attr(child(root, "mtu"), "size");
  return {
    name: text(root, "name") ?? "",
    uuid: text(root, "uuid") ?? "",
    owner: parseOwner(root),
    bridge: attr(child(root, "bridge"), "name"),
    forwardMode: attr(child(root, "forward"), "mode") ?? (child(root, "forward") ? "nat" : undefined),
    mtu: mtu !== undefined ? Number(mtu) : undefined,
    ips,
    hosts,
    dhcp,
  };
}

/** A disk as read back from `virsh dumpxml`. */
export interface ParsedDisk {
  readonly device: string;
  readonly file: string | undefined;
  readonly target: string | undefined;
  readonly readonly: boolean;
}

/** A NIC as read back from `virsh dumpxml`. */
export interface ParsedInterface {
  readonly type: string;
  readonly network: string | undefined;
  /** `<source bridge=…>` of a `type='bridge'` NIC. */
  readonly bridge: string | undefined;
  readonly mac: string | undefined;
}

/** What we read back from `virsh dumpxml`. */
export interface ParsedDomain {
  readonly name: string;
  readonly uuid: string;
  /** `kvm` or `qemu`. */
  readonly type: string;
  readonly owner: Owner | undefined;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly disks: readonly ParsedDisk[];
  readonly interfaces: readonly ParsedInterface[];
  /** Path of a `<serial type='file'>`, if any. */
  readonly serialFile: string | undefined;
}

const MEMORY_UNIT_BYTES: Record<string, number> = {
  b: 1,
  bytes: 1,
  KB: 1e3,
  k: 1024,
  KiB: 1024,
  MB: 1e6,
  M: 1024 ** 2,
  MiB: 1024 ** 2,
  GB: 1e9,
  G: 1024 ** 3,
  GiB: 1024 ** 3,
};

/** Parses `virsh dumpxml` output. */
export function parseDomainXml(xml: string): ParsedDomain {
  const root = parseRoot(xml, "domain");
  const memory = child(root, "memory");
  const unit = attr(memory, "unit") ?? "KiB";
  const memoryBytes = Number(memory?.textContent ?? "0") * (MEMORY_UNIT_BYTES[unit] ?? 1024);
  const devices = child(root, "devices");
  const disks: ParsedDisk[] = devices
    ? children(devices, "disk").map((d) => ({
        device: attr(d, "device") ?? "disk",
        file: attr(child(d, "source"), "file"),
        target: attr(child(d, "target"), "dev"),
        readonly: child(d, "readonly") !== undefined,
      }))
    : [];
  const interfaces: ParsedInterface[] = devices
    ? children(devices, "interface").map((i) => ({
        type: attr(i, "type") ?? "",
        network: attr(child(i, "source"), "network"),
        // A running NAT NIC also shows `bridge=` (the network's bridge): only a bridge NIC's counts.
        bridge: attr(i, "type") === "bridge" ? attr(child(i, "source"), "bridge") : undefined,
        mac: attr(child(i, "mac"), "address")?.toLowerCase(),
      }))
    : [];
  const serial = devices ? children(devices, "serial").find((s) => attr(s, "type") === "file") : undefined;
  return {
    name: text(root, "name") ?? "",
    uuid: text(root, "uuid") ?? "",
    type: attr(root, "type") ?? "",
    owner: parseOwner(root),
    vcpus: Number(text(root, "vcpu") ?? "0"),
    memoryMiB: Math.round(memoryBytes / 1024 ** 2),
    disks,
    interfaces,
    serialFile: serial ? attr(child(serial, "source"), "path") : undefined,
  };
}

/** The target path of a libvirt storage pool from `virsh pool-dumpxml`. */
export function parsePoolTargetPath(xml: string): string | undefined {
  const root = parseRoot(xml, "pool");
  const target = child(root, "target");
  return target ? text(target, "path") : undefined;
}

/** One row of `virsh net-dhcp-leases`. */
export interface Lease {
  readonly expiry: string;
  readonly mac: string;
  /** Address without prefix length. */
  readonly ip: string;
  readonly hostname: string;
}

/**
 * Parses the table `virsh net-dhcp-leases <net>` prints (virsh has no XML form of it):
 * `2024-11-24 10:00:00  52:54:00:aa:00:01  ipv4  192.168.197.11/24  node-1  ff:…`.
 */
export function parseLeases(table: string): Lease[] {
  const leases: Lease[] = [];
  for (const line of table.split("\n")) {
    const cols = line.trim().split(/\s+/);
    const macIndex = cols.findIndex((c) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(c));
    if (macIndex < 0 || cols[macIndex + 1] !== "ipv4") {
      continue;
    }
    leases.push({
      expiry: cols.slice(0, macIndex).join(" "),
      mac: (cols[macIndex] ?? "").toLowerCase(),
      ip: (cols[macIndex + 2] ?? "").split("/")[0] ?? "",
      hostname: cols[macIndex + 3] ?? "-",
    });
  }
  return leases;
}
