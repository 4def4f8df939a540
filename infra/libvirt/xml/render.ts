/**
 * libvirt XML for the lab's networks and domains, built with xmlbuilder2 (parse.ts reads it back). Pure: no I/O.
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

import { PROJECT } from "../../config/keys";

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
  /** The libvirt network the NIC joins (NAT mode). Exactly one of `networkName` and `bridgeName` is non-empty. */
  readonly networkName?: string;
  /** An existing host bridge the NIC joins (bridge mode: no libvirt network, no DHCP). */
  readonly bridgeName?: string;
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
  // The MTU of the bridge and of every tap device libvirt attaches to it, advertised to the guests
  // by DHCP (https://libvirt.org/formatnetwork.html "mtu", since libvirt 3.1.0). Always written,
  // 1500 included: the XML of a default lab is the one every earlier version defined.
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

/** Renders a headless domain: virtio disk + seed + NIC (network or host bridge), serial console to a file, boot from disk. */
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
  // Either a libvirt network, or "Bridge to LAN": a tap device enslaved to an existing host bridge,
  // which libvirt does not manage (https://libvirt.org/formatdomain.html#bridge-to-lan).
  const bridged = spec.bridgeName !== undefined && spec.bridgeName !== "";
  const nic = devices.ele("interface", { type: bridged ? "bridge" : "network" });
  nic.ele("mac", { address: spec.mac });
  nic.ele("source", bridged ? { bridge: spec.bridgeName } : { network: spec.networkName ?? "" });
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
