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
  readonly cpus: number;
  /** Per requested disk path: free bytes at its nearest existing ancestor, and an ancestor others cannot search. */
  readonly disks: readonly { readonly path: string; readonly freeBytes: number; readonly unsearchable?: string }[];
  /** Whether the host forwards the lab bridge's traffic; only gathered for an online install. */
  readonly forwarding?: ForwardingCheck;
}

/** The checks, in the order doctor lists them. */
export const PREFLIGHT_CHECKS = [
  "host tools",
  "libvirt",
  "KVM",
  "CPUs",
  "memory",
  "disk",
  "subnet",
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
