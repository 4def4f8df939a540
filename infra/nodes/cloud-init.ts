/**
 * The NoCloud seed of a lab node, as pure renderers: `user-data`, `meta-data` and `network-config`
 * text from plain values. No Pulumi, no I/O, so every line is table-tested and `user-data` is
 * checked by `cloud-init schema` in the tests.
 *
 * NoCloud reads exactly these three files from a volume labelled `cidata`
 * (https://docs.cloud-init.io/en/latest/reference/datasources/nocloud.html).
 */
import { createHash } from "node:crypto";

import YAML from "yaml";

import { dadBootcmd } from "./dad";

/** The account our SSH clients (and later layers' `remote.Command`s) log in as. */
export const LAB_USER = "lab";

/**
 * Kernel modules every node loads at boot (and right away on first boot).
 *
 * - k3s loads `overlay`, `nf_conntrack`, `br_netfilter`, `iptable_nat`, `iptable_filter` itself at
 *   agent start (k3s-io/k3s@00014d28:pkg/agent/syssetup/setup.go `Configure`); loading them first
 *   makes the sysctls below exist before k3s runs (`net.bridge.*` appears only with `br_netfilter`).
 * - Cilium's tunnels need VXLAN and Geneve (`CONFIG_VXLAN`, `CONFIG_GENEVE`, "Requirements for
 *   Tunneling and Routing"), and its iptables rules use the mangle and raw tables
 *   (cilium/cilium@00c88111:Documentation/operations/system_requirements.rst). `xt_socket` (L7
 *   proxy) is left out on purpose: Cilium has a fallback when a kernel lacks it.
 *
 * Most of these would be autoloaded on first use; listing them makes a kernel that lacks one fail
 * at boot (`cloud-init status` reports the `runcmd` error) rather than deep inside Cilium.
 */
export const KERNEL_MODULES: readonly string[] = [
  "br_netfilter",
  "overlay",
  "nf_conntrack",
  "ip_tables",
  "iptable_nat",
  "iptable_filter",
  "iptable_mangle",
  "iptable_raw",
  "vxlan",
  "geneve",
];

/**
 * Sysctls every node sets, in file order.
 *
 * - Forwarding: k3s sets `net.ipv4.conf.{all,default}.forwarding=1` and, with kube-proxy,
 *   `net.bridge.bridge-nf-call-iptables=1` (k3s-io/k3s@00014d28:pkg/agent/syssetup/setup.go
 *   `kernelSysctls`); `net.ipv4.ip_forward` is the same switch under its classic name.
 * - Reverse-path filter off: Cilium writes `net.ipv4.conf.all.rp_filter = 0` because "the kernel
 *   uses max(conf.all, conf.{dev}) as its value" and a strict filter drops packets Cilium routes
 *   through its own devices (cilium/cilium tools/sysctlfix/main.go; cilium/cilium#10645). Ubuntu
 *   sets 2 for `all` and `default` in /etc/sysctl.d/10-network-security.conf, so `default` (which
 *   new `lxc*`/`cilium_*` devices inherit) is reset too.
 */
export const SYSCTLS: readonly (readonly [string, string])[] = [
  ["net.ipv4.ip_forward", "1"],
  ["net.ipv4.conf.all.forwarding", "1"],
  ["net.ipv4.conf.default.forwarding", "1"],
  ["net.bridge.bridge-nf-call-iptables", "1"],
  ["net.bridge.bridge-nf-call-ip6tables", "1"],
  ["net.ipv4.conf.all.rp_filter", "0"],
  ["net.ipv4.conf.default.rp_filter", "0"],
];

/** Where the module list goes; systemd-modules-load reads it on every later boot. */
export const MODULES_FILE = "/etc/modules-load.d/cilium-lab.conf";
/** Where the sysctls go; `99-zzz-` sorts after the distribution's files, which it must override. */
export const SYSCTL_FILE = "/etc/sysctl.d/99-zzz-cilium-lab.conf";

/** An SSH host key pair as OpenSSH writes it. */
export interface HostKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` … block. Secret. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA… comment`, the line our clients pin. */
  readonly publicKey: string;
}

/** What `user-data` says about one node. */
export interface UserDataInput {
  /** Hostname, also the Kubernetes node name (`node-1`…). */
  readonly hostname: string;
  /** Public key lines allowed to log in as {@link LAB_USER}: the generated key, then `sshAuthorizedKey` if set. */
  readonly authorizedKeys: readonly string[];
  /** The node's ed25519 host key, written before sshd starts so clients can pin its public half. */
  readonly hostKey: HostKeyPair;
  /**
   * Debian/Ubuntu packages to install on first boot. Default none: the lab's nodes need nothing
   * beyond the cloud image, and test VMs have no route to a package mirror.
   */
  readonly packages?: readonly string[];
  /**
   * Bridge mode: the node's static address and its NIC's MAC. A `bootcmd` then probes the LAN for
   * the address on every boot and powers the node off with a console line on a conflict (./dad.ts).
   */
  readonly duplicateAddressCheck?: { readonly address: string; readonly mac: string };
}

// cloud-init parses user-data with PyYAML, a YAML 1.1 parser: there `52:54:00:12:34:01` is a
// base-60 integer and `yes`/`on` are booleans. Rendering as YAML 1.1 makes the `yaml` library quote
// such strings. Line width 0: no folding of long key lines.
const YAML_OPTIONS = { version: "1.1", lineWidth: 0 } as const;

/** `#cloud-config` user-data for one node. */
export function renderUserData(input: UserDataInput): string {
  const config: Record<string, unknown> = {
    hostname: input.hostname,
    // /etc/hosts gets the hostname, so `sudo` and k3s resolve it without DNS.
    manage_etc_hosts: true,
    // Only our user: no distribution default user (`ubuntu`) with keys we don't control.
    users: [
      {
        name: LAB_USER,
        gecos: "cilium-lab",
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: [...input.authorizedKeys],
      },
    ],
    ssh_pwauth: false,
    disable_root: true,
    // Host keys: cc_ssh deletes the image's keys (`ssh_deletekeys`) and, because `ssh_keys` is set,
    // writes exactly these instead of generating any (canonical/cloud-init 22.4 cc_ssh.py `handle`:
    // `ssh_genkeytypes` is read only when `ssh_keys` is absent). `ssh_genkeytypes: [ed25519]` keeps
    // even that fallback to one type. sshd then serves only the pinned key.
    ssh_deletekeys: true,
    ssh_genkeytypes: ["ed25519"],
    ssh_keys: {
      ed25519_private: input.hostKey.privateKey.endsWith("\n")
        ? input.hostKey.privateKey
        : `${input.hostKey.privateKey}\n`,
      ed25519_public: input.hostKey.publicKey,
    },
    write_files: [
      { path: MODULES_FILE, owner: "root:root", permissions: "0644", content: modulesFileText() },
      { path: SYSCTL_FILE, owner: "root:root", permissions: "0644", content: sysctlFileText() },
    ],
    // First boot: the files above take effect at the next boot by themselves; apply them now.
    runcmd: [
      ["modprobe", "-a", ...KERNEL_MODULES],
      ["sysctl", "-p", SYSCTL_FILE],
    ],
  };
  if (input.packages && input.packages.length > 0) {
    config.packages = [...input.packages];
  }
  if (input.duplicateAddressCheck) {
    const { address, mac } = input.duplicateAddressCheck;
    config.bootcmd = [dadBootcmd(address, mac)];
  }
  return `#cloud-config\n${YAML.stringify(config, YAML_OPTIONS)}`;
}

/** The modules-load.d file: one module a line. */
export function modulesFileText(): string {
  return `# cilium-lab: modules k3s and Cilium use (see infra/nodes/cloud-init.ts).\n${KERNEL_MODULES.join("\n")}\n`;
}

/** The sysctl.d file: `key = value` lines. */
export function sysctlFileText(): string {
  return `# cilium-lab: forwarding for k3s, reverse-path filter off for Cilium (see infra/nodes/cloud-init.ts).\n${SYSCTLS.map(([k, v]) => `${k} = ${v}`).join("\n")}\n`;
}

/** What `meta-data` says. */
export interface MetaDataInput {
  /** cloud-init runs its per-instance modules once per instance-id: a new id re-runs them. */
  readonly instanceId: string;
  readonly hostname: string;
}

/** NoCloud `meta-data`. */
export function renderMetaData(input: MetaDataInput): string {
  return YAML.stringify({ "instance-id": input.instanceId, "local-hostname": input.hostname }, YAML_OPTIONS);
}

/** A static IPv4 setup (bridge mode): the node's address on the LAN, its router and DNS servers. */
export interface StaticAddress {
  /** Dotted quad, such as `192.0.2.11`. */
  readonly address: string;
  /** The subnet's prefix length (networkCidr's). */
  readonly prefix: number;
  readonly gateway: string;
  /** DNS servers, in order of preference. */
  readonly dns: readonly string[];
}

/** What `network-config` says. */
export interface NetworkConfigInput {
  /** The NIC's MAC (the network's DHCP reservation is keyed on it). */
  readonly mac: string;
  /** The name the NIC gets in the guest. Default `eth0`, the same on every image. */
  readonly interfaceName?: string;
  /** Bridge mode: a static address instead of DHCP. */
  readonly static?: StaticAddress;
}

/**
 * Network config version 2 (https://docs.cloud-init.io/en/latest/reference/network-config-format-v2.html):
 * the NIC matched by MAC, renamed to `eth0`, addressed by DHCP or, in bridge mode, statically.
 *
 * Why DHCP with NAT: the libvirt network holds a reservation MAC → IP for every node, so the
 * address is just as fixed, while DHCP also hands out the gateway and DNS server (libvirt's
 * dnsmasq) without copying the network's plan into every seed, and the lease shows in
 * `virsh net-dhcp-leases`, which the boot wait quotes when a node never comes up. The name is
 * fixed so that k3s and Cilium see the same device (`eth0`) on Ubuntu (predictable names such as
 * `enp1s0`) and on the Debian test image.
 *
 * Static (bridge mode, no DHCP server of ours on the LAN): `addresses` with the prefix, the
 * default route as `gateway4` and `nameservers.addresses`. `gateway4` is deprecated in v2 as in
 * netplan (canonical/cloud-init#4031), but it is the one form every renderer turns into a route the
 * image can apply (checked with `cloud-init devel net-convert`, 22.4, test/nodes/cloud-init.test.ts):
 * ifupdown gets `gateway <ip>` in the iface stanza, applied by ifupdown itself; networkd gets
 * `[Route] Gateway=`; netplan keeps `gateway4` (netplan warns that it is deprecated, and applies it).
 * A `routes: [{ to: 0.0.0.0/0, via }]` entry instead reaches ifupdown as `post-up route add default
 * gw <ip> || true`, which needs net-tools' `route`: Debian cloud images have only iproute2, and the
 * route was silently missing in a real boot (test/libvirt/bridge.vm.test.ts). `to: default` fails
 * outright for ifupdown and networkd in 22.4 ("Address default is not a valid ip address",
 * network_state.py `_normalize_net_keys`).
 */
export function renderNetworkConfig(input: NetworkConfigInput): string {
  const name = input.interfaceName ?? "eth0";
  const ip = input.static;
  const addressing =
    ip === undefined
      ? { dhcp4: true }
      : {
          dhcp4: false,
          addresses: [`${ip.address}/${ip.prefix}`],
          gateway4: ip.gateway,
          nameservers: { addresses: [...ip.dns] },
        };
  return YAML.stringify(
    {
      version: 2,
      ethernets: {
        [name]: {
          match: { macaddress: input.mac.toLowerCase() },
          "set-name": name,
          ...addressing,
        },
      },
    },
    YAML_OPTIONS,
  );
}

/**
 * A stable instance-id for a node's seed: the domain name plus a hash of the content that
 * cloud-init applies per instance. Changing user-data or network-config changes the id, so the new
 * seed is applied (cloud-init runs per-instance modules once per id; canonical/cloud-init#3753).
 */
export function instanceIdFor(domainName: string, userData: string, networkConfig: string): string {
  const hash = createHash("sha256").update(userData).update("\0").update(networkConfig).digest("hex");
  return `${domainName}-${hash.slice(0, 12)}`;
}
