/** The preflight request for the lab's own layout. */
import type { PreflightRequest } from "./types";

/** Rough disk needs, stated in messages as estimates. */
export const DISK_ESTIMATES = {
  /** An Ubuntu cloud image is 0.6–0.7 GiB; its copy in the pool directory the same. */
  baseImageBytes: 1024 ** 3,
  /** Per node overlay growth: OS updates, k3s with its images, Cilium images, logs. */
  perNodeBytes: 2 * 1024 ** 3,
} as const;

/**
 * The request for the lab's own layout: the plan's names, the config's sizes, the stack's pool
 * directory (base copy + overlays + seeds) and the image cache (the download).
 */
export function labPreflightRequest(
  config: {
    readonly libvirtUri: string;
    readonly accelerator: "kvm" | "qemu";
    readonly networkCidr: string;
    readonly nodeCpus: number;
    readonly nodeMemoryMiB: number;
    /** Empty or absent: the nodes download k3s (online install). */
    readonly k3sAirgapDir?: string;
  },
  plan: {
    readonly networkName: string;
    readonly bridgeName: string;
    readonly nodes: readonly { readonly domainName: string }[];
  },
  stack: string,
  dirs: { readonly poolDir: string; readonly imageCacheDir: string },
): PreflightRequest {
  return {
    uri: config.libvirtUri,
    stack,
    accelerator: config.accelerator,
    networkName: plan.networkName,
    bridgeName: plan.bridgeName,
    networkCidr: config.networkCidr,
    nodes: plan.nodes.map((n) => ({
      domainName: n.domainName,
      vcpus: config.nodeCpus,
      memoryMiB: config.nodeMemoryMiB,
    })),
    disks: [
      {
        path: dirs.poolDir,
        bytes: DISK_ESTIMATES.baseImageBytes + plan.nodes.length * DISK_ESTIMATES.perNodeBytes,
        what: `the base image copy and ${plan.nodes.length} node disks (estimate)`,
        qemuReadable: true,
      },
      {
        path: dirs.imageCacheDir,
        bytes: DISK_ESTIMATES.baseImageBytes,
        what: "the base image download (estimate)",
        qemuReadable: false,
      },
    ],
    onlineInstall: (config.k3sAirgapDir ?? "") === "",
  };
}
