/** What the preflight is asked to check, what it reads from the host, and its verdict. */
import type { Tool } from "../exec";
import type { ForwardingCheck } from "../forwarding";
import type { HostNetwork, HostRoute } from "../hostnet";
import type { Owner } from "../xml";

/** A node as the preflight needs it. */
export interface PreflightNode {
  readonly domainName: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
}

/** Disk space a directory must offer. */
export interface PreflightDisk {
  /** Directory that will hold the files (need not exist yet). */
  readonly path: string;
  readonly bytes: number;
  /** What the space is for, in messages ("node disks and seeds"). */
  readonly what: string;
  /** Whether qemu (libvirt-qemu) must reach files there (pool directories: yes; download caches: no). */
  readonly qemuReadable: boolean;
  /**
   * The libvirt pool that will hold the files: free space is then asked of libvirt (`virsh
   * pool-info`), so it works for a remote host. Absent: a local directory (the download cache).
   */
  readonly pool?: string;
}

/** Bridge mode: the existing host bridge the nodes attach to, and their static addresses. */
export interface PreflightBridge {
  /** A Linux bridge on the libvirt host (cilium-lab:bridge). */
  readonly name: string;
  /** The nodes' static addresses; something answering on one is a conflict. */
  readonly addresses: readonly { readonly domainName: string; readonly address: string }[];
}

/** What the preflight checks against the host. */
export interface PreflightRequest {
  readonly uri: string;
  readonly stack: string;
  readonly accelerator: "kvm" | "qemu";
  readonly networkName: string;
  readonly bridgeName: string;
  readonly networkCidr: string;
  readonly nodes: readonly PreflightNode[];
  readonly disks: readonly PreflightDisk[];
  /** The nodes download k3s from the internet (`k3sAirgapDir` empty): the host must forward their traffic. */
  readonly onlineInstall: boolean;
  /** Bridge mode (networkMode bridge); absent: NAT mode, the lab's own libvirt network. */
  readonly bridge?: PreflightBridge;
}

/** A libvirt domain as far as the preflight cares. */
export interface HostDomain {
  readonly name: string;
  readonly owner: Owner | undefined;
  readonly running: boolean;
}

/** Network plus whether it is active (its bridge then exists). */
export interface HostNetworkState extends HostNetwork {
  readonly active: boolean;
}

/** Everything the preflight reads from the host (injected in tests). */
export interface HostFacts {
  /** Tools not found on PATH (or at their `*_BIN` override). */
  readonly missingTools: readonly Tool[];
  /** libvirt as seen through the URI; `error` when unreachable. */
  readonly libvirt:
    | {
        readonly reachable: true;
        readonly networks: readonly HostNetworkState[];
        readonly domains: readonly HostDomain[];
      }
    | { readonly reachable: false; readonly error: string };
  readonly routes: readonly HostRoute[];
  readonly links: readonly string[];
  /** Only gathered when accelerator is kvm. */
  readonly kvm: { readonly usable: boolean; readonly detail: string } | undefined;
  readonly memAvailableMiB: number;
  /** Where `memAvailableMiB` comes from, in messages; absent: MemAvailable of the local /proc/meminfo. */
  readonly memSource?: string;
  readonly cpus: number;
  /** Per requested disk path: free bytes (see `source`), and an ancestor others cannot search. */
  readonly disks: readonly HostDisk[];
  /** Whether the host forwards the lab bridge's traffic; only gathered for an online install in NAT mode. */
  readonly forwarding?: ForwardingCheck;
  /** Bridge mode only: the host bridge as libvirt (and, for a local URI, `ip`) sees it. */
  readonly hostBridge?: HostBridgeFacts;
  /** Bridge mode only: the best-effort probe of the nodes' addresses from this host. */
  readonly addressProbe?: AddressProbe;
}

/** Free space for one requested disk. */
export interface HostDisk {
  readonly path: string;
  readonly freeBytes: number;
  /** An ancestor directory others cannot search (local directories only). */
  readonly unsearchable?: string;
  /** Where the figure comes from ("pool cilium-lab-base", "statfs"); absent: statfs. */
  readonly source?: string;
  /** Set when the space could not be measured: why (`freeBytes` is then 0 and not judged). */
  readonly unchecked?: string;
}

/**
 * The host bridge of bridge mode. `libvirt` is read through the connection (`virsh iface-dumpxml`,
 * libvirt's interface driver: on Linux its udev backend, which reports an interface active when its
 * sysfs `operstate` is "up", libvirt src/interface/interface_backend_udev.c); `local` and the
 * netfilter facts only for a local URI (they are this machine's, not a remote host's).
 */
export interface HostBridgeFacts {
  readonly libvirt:
    | { readonly found: true; readonly type: string; readonly operUp: boolean }
    | { readonly found: false; readonly error: string }
    | { readonly unsupported: string };
  /** `ip -j -d link show dev <bridge>` on this machine (local URIs only). */
  readonly local?: { readonly exists: boolean; readonly kind?: string; readonly adminUp: boolean };
  /** `/proc/sys/net/bridge/bridge-nf-call-iptables` (local only): "0", "1", or "not loaded" (no br_netfilter). */
  readonly nfCallIptables?: "0" | "1" | "not loaded";
  /** Local only, when bridge-nf-call-iptables is 1: whether the FORWARD hook passes frames bridged on it. */
  readonly bridged?: ForwardingCheck;
}

/** The nodes' addresses probed from this host: who answered, or why nothing could be probed. */
export type AddressProbe =
  | {
      readonly probed: readonly string[];
      /** `how`: what answered ("refused a TCP connection on port 22"); `mac` from this host's neighbour table. */
      readonly answered: readonly { readonly address: string; readonly how: string; readonly mac?: string }[];
    }
  | { readonly unavailable: string };

/** The checks, in the order doctor lists them. */
export const PREFLIGHT_CHECKS = [
  "host tools",
  "libvirt",
  "KVM",
  "CPUs",
  "memory",
  "disk",
  "subnet",
  "bridge",
  "addresses",
  "names",
  "firewall",
] as const;
/** One check of the preflight. */
export type PreflightCheck = (typeof PREFLIGHT_CHECKS)[number];

/**
 * One check's verdict, as `npm run lab -- doctor` prints it: `ok`, `fail` (the program stops) or
 * `unchecked` (not applicable, or not possible: `detail` says why). A failed row's `detail` and
 * `fix` are its problems' sentences split at "Fix:".
 */
export interface PreflightRow {
  readonly check: PreflightCheck;
  readonly status: "ok" | "fail" | "unchecked";
  readonly detail: string;
  readonly fix: string;
}

/** The preflight's verdict. */
export interface PreflightResult {
  /** Each a sentence with the fix; any problem stops the program. */
  readonly problems: readonly string[];
  /** Worth saying, not worth stopping for (CPU overcommit). */
  readonly warnings: readonly string[];
  /** Every check of {@link PREFLIGHT_CHECKS} with its verdict; the failed ones hold exactly `problems`. */
  readonly rows: readonly PreflightRow[];
}
