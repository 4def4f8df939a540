/**
 * libvirt XML for the lab's networks and domains, built and parsed with xmlbuilder2. Pure: no I/O.
 *
 * Every object we define carries an ownership stamp in libvirt's application metadata element
 * (https://libvirt.org/formatdomain.html#general-metadata, https://libvirt.org/formatnetwork.html
 * "General metadata", network metadata since libvirt 2.1.0):
 *
 *   <metadata><lab:owner xmlns:lab="https://cilium-lab.dev/libvirt/1" project="cilium-lab" stack="vxlan"/></metadata>
 *
 * so a re-run can adopt its own leftovers, refuse to touch anyone else's objects, and
 * scripts/lab-clean.sh can find what a crashed run left behind. Domains also get a `cilium-lab`
 * title and description (networks have no title/description before libvirt 9.7; 9.0's schema
 * rejects them).
 */
import { create } from "xmlbuilder2";

import { PROJECT } from "../config/keys";

/** XML namespace of our ownership stamp. Changing it orphans every existing lab object. */
export const OWNER_NS = "https://cilium-lab.dev/libvirt/1";
/** The project name written into stamps. */
export const OWNER_PROJECT = PROJECT;

/** Who created a libvirt object. */
export interface Owner {
  readonly project: string;
  readonly stack: string;
}

/** A DHCP host reservation. */
export interface DhcpHost {
  /** Lower-case MAC, `52:54:00:xx:xx:xx`. */
  readonly mac: string;
  /** The address handed out to that MAC. */
  readonly ip: string;
  /** Hostname dnsmasq registers for the address. */
  readonly hostname: string;
}

/** What {@link networkXml} renders. */
export interface NetworkSpec {
  readonly name: string;
  /** Linux bridge name, at most 15 characters. */
  readonly bridge: string;
  /** Host address of the bridge: the guests' gateway and DNS server. */
  readonly gateway: string;
  readonly prefix: number;
  readonly mtu: number;
  readonly hosts: readonly DhcpHost[];
  readonly stack: string;
}

/** What {@link domainXml} renders. */
export interface DomainSpec {
  readonly name: string;
  readonly stack: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  /** `kvm`: hardware virtualization with the host CPU; `qemu`: TCG software emulation. */
  readonly accelerator: "kvm" | "qemu";
  /** The node's qcow2 overlay (virtio, vda). */
  readonly diskPath: string;
  /** The NoCloud seed ISO (read-only virtio disk, vdb). */
  readonly seedPath: string;
  readonly networkName: string;
  readonly mac: string;
  /** File the serial console (ttyS0) is written to. */
  readonly consoleLogPath: string;
}

const FORMAT = { headless: true, prettyPrint: true, indent: "  " } as const;

/** Renders a network: NAT forward, our bridge, MTU, DNS on the gateway, DHCP with host reservations only. */
export function networkXml(spec: NetworkSpec): string {
  const root = create().ele("network");
  root.ele("name").txt(spec.name);
  root.ele("metadata").ele(OWNER_NS, "lab:owner", { project: OWNER_PROJECT, stack: spec.stack });
  root.ele("forward", { mode: "nat" });
  root.ele("bridge", { name: spec.bridge, stp: "on", delay: "0" });
  root.ele("mtu", { size: String(spec.mtu) });
  // dnsmasq listens on the gateway and DHCP advertises it as the DNS server (libvirt's default,
  // spelled out so the XML says what the lab relies on).
  root.ele("dns", { enable: "yes" });
  const dhcp = root.ele("ip", { address: spec.gateway, prefix: String(spec.prefix) }).ele("dhcp");
  // No <range>: libvirt then runs dnsmasq with `dhcp-range=<net>,static`, so only reserved MACs
  // get a lease and every node's address is the planned one.
  for (const host of spec.hosts) {
    dhcp.ele("host", { mac: host.mac, name: host.hostname, ip: host.ip });
  }
  return root.end(FORMAT);
}

/** One `<host>` element, the argument of `virsh net-update … ip-dhcp-host`. */
export function dhcpHostXml(host: DhcpHost): string {
  return create().ele("host", { mac: host.mac, name: host.hostname, ip: host.ip }).end({ headless: true });
}

/** Renders a headless domain: virtio disk + seed + NIC, serial console to a file, boot from disk. */
export function domainXml(spec: DomainSpec): string {
  const root = create().ele("domain", { type: spec.accelerator });
  root.ele("name").txt(spec.name);
  root.ele("title").txt(`cilium-lab ${spec.stack}: ${spec.name}`);
  root
    .ele("description")
    .txt(
      `Created by the cilium-lab Pulumi project (stack ${spec.stack}). ` +
        `Leftovers after a crash: scripts/lab-clean.sh --stack ${spec.stack}`,
    );
  root.ele("metadata").ele(OWNER_NS, "lab:owner", { project: OWNER_PROJECT, stack: spec.stack });
  root.ele("memory", { unit: "MiB" }).txt(String(spec.memoryMiB));
  root.ele("vcpu").txt(String(spec.vcpus));
  const os = root.ele("os");
  os.ele("type", { arch: "x86_64" }).txt("hvm");
  os.ele("boot", { dev: "hd" });
  const features = root.ele("features");
  features.ele("acpi");
  features.ele("apic");
  if (spec.accelerator === "kvm") {
    root.ele("cpu", { mode: "host-passthrough" });
  } else {
    // TCG cannot pass the host CPU through; qemu64 is the baseline model every TCG build has.
    root.ele("cpu", { mode: "custom", match: "exact" }).ele("model", { fallback: "allow" }).txt("qemu64");
  }
  root.ele("clock", { offset: "utc" });
  root.ele("on_poweroff").txt("destroy");
  root.ele("on_reboot").txt("restart");
  root.ele("on_crash").txt("destroy");
  const devices = root.ele("devices");
  const disk = devices.ele("disk", { type: "file", device: "disk" });
  disk.ele("driver", { name: "qemu", type: "qcow2" });
  disk.ele("source", { file: spec.diskPath });
  disk.ele("target", { dev: "vda", bus: "virtio" });
  const seed = devices.ele("disk", { type: "file", device: "disk" });
  seed.ele("driver", { name: "qemu", type: "raw" });
  seed.ele("source", { file: spec.seedPath });
  seed.ele("target", { dev: "vdb", bus: "virtio" });
  seed.ele("readonly");
  const nic = devices.ele("interface", { type: "network" });
  nic.ele("mac", { address: spec.mac });
  nic.ele("source", { network: spec.networkName });
  nic.ele("model", { type: "virtio" });
  const serial = devices.ele("serial", { type: "file" });
  serial.ele("source", { path: spec.consoleLogPath, append: "off" });
  serial.ele("target", { port: "0" });
  const console = devices.ele("console", { type: "file" });
  console.ele("source", { path: spec.consoleLogPath, append: "off" });
  console.ele("target", { type: "serial", port: "0" });
  devices.ele("controller", { type: "usb", model: "none" });
  devices.ele("memballoon", { model: "none" });
  // Guests block on entropy early in boot under TCG without a hardware RNG.
  devices.ele("rng", { model: "virtio" }).ele("backend", { model: "random" }).txt("/dev/urandom");
  return root.end(FORMAT);
}

// ---------------------------------------------------------------------------------------------
// Parsing what virsh prints (net-dumpxml, dumpxml). The DOM of xmlbuilder2 is typed loosely; these
// helpers keep the rest of the code typed.

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
