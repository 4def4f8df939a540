/** The preflight requests for the lab's own layout: one per libvirt host. */
import type { PreflightRequest } from "./types";

/** Rough disk needs, stated in messages as estimates. */
export const DISK_ESTIMATES = {
  /** An Ubuntu cloud image is 0.6–0.7 GiB; its upload into the host's base pool the same. */
  baseImageBytes: 1024 ** 3,
  /** Per node overlay growth: OS updates, k3s with its images, Cilium images, logs. */
  perNodeBytes: 2 * 1024 ** 3,
} as const;

/** The config keys the preflight reads (the bridge-mode keys optional, absent = NAT mode). */
export interface PreflightConfig {
  readonly libvirtUri: string;
  readonly accelerator: "kvm" | "qemu";
  readonly networkCidr: string;
  readonly nodeCpus: number;
  readonly nodeMemoryMiB: number;
  /** Empty or absent: the nodes download k3s (online install). */
  readonly k3sAirgapDir?: string;
  readonly networkMode?: "nat" | "bridge";
  /** The host bridge of bridge mode. */
  readonly bridge?: string;
}

/** The plan's names the preflight reads (`ip` and `hostUri` per node for bridge mode and several hosts). */
export interface PreflightPlan {
  readonly networkName: string;
  readonly bridgeName: string;
  readonly nodes: readonly { readonly domainName: string; readonly ip?: string; readonly hostUri?: string }[];
}

/**
 * The request for the lab's own layout on one host (`uri`, default cilium-lab:libvirtUri) with the
 * nodes that host runs (default all): the plan's names, the config's sizes, the stack's pool (node
 * disks and seeds; the base image goes to the host's base pool, on the same file system in the
 * usual layout), the image cache (the download, on this machine) and, in bridge mode, the host
 * bridge and the nodes' static addresses.
 */
export function labPreflightRequest(
  config: PreflightConfig,
  plan: PreflightPlan,
  stack: string,
  dirs: { readonly poolDir: string; readonly imageCacheDir: string },
  host: { readonly uri?: string; readonly nodes?: PreflightPlan["nodes"]; readonly cache?: boolean } = {},
): PreflightRequest {
  const nodes = host.nodes ?? plan.nodes;
  const bridgeMode = config.networkMode === "bridge";
  return {
    uri: host.uri ?? config.libvirtUri,
    stack,
    accelerator: config.accelerator,
    networkName: plan.networkName,
    bridgeName: plan.bridgeName,
    networkCidr: config.networkCidr,
    nodes: nodes.map((n) => ({
      domainName: n.domainName,
      vcpus: config.nodeCpus,
      memoryMiB: config.nodeMemoryMiB,
    })),
    disks: [
      {
        path: dirs.poolDir,
        bytes: DISK_ESTIMATES.baseImageBytes + nodes.length * DISK_ESTIMATES.perNodeBytes,
        what: `the base image and ${nodes.length} node disks (estimate)`,
        qemuReadable: true,
        // The stack's pool is named after the plan's network name (infra/libvirt/storage.ts, stackPoolName).
        pool: plan.networkName,
      },
      ...(host.cache === false
        ? []
        : [
            {
              path: dirs.imageCacheDir,
              bytes: DISK_ESTIMATES.baseImageBytes,
              what: "the base image download (estimate)",
              qemuReadable: false,
            },
          ]),
    ],
    onlineInstall: (config.k3sAirgapDir ?? "") === "",
    ...(bridgeMode
      ? {
          bridge: {
            name: config.bridge ?? "",
            addresses: nodes.flatMap((n) => (n.ip !== undefined ? [{ domainName: n.domainName, address: n.ip }] : [])),
          },
        }
      : {}),
  };
}

/**
 * One request per libvirt host of the plan (`hostUri` of its nodes, in order of first use; all on
 * cilium-lab:libvirtUri when the plan names none), each with that host's nodes; the download cache
 * (on this machine) is measured once, with the first.
 */
export function labPreflightRequests(
  config: PreflightConfig,
  plan: PreflightPlan,
  stack: string,
  dirs: { readonly poolDir: string; readonly imageCacheDir: string },
): PreflightRequest[] {
  const hosts = [...new Set(plan.nodes.map((n) => n.hostUri ?? config.libvirtUri))];
  return hosts.map((uri, i) =>
    labPreflightRequest(config, plan, stack, dirs, {
      uri,
      nodes: plan.nodes.filter((n) => (n.hostUri ?? config.libvirtUri) === uri),
      cache: i === 0,
    }),
  );
}
