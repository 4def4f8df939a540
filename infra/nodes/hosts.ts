/**
 * What the nodes layer needs once per libvirt host: the stack's storage pool there and the base
 * image uploaded into that host's shared base pool. Hosts are the plan's `hosts` (the distinct
 * `hostUri`s of the nodes, in node order): one with `libvirtUri`, several with `nodeHosts`.
 *
 * Names: the first host keeps the plain names (`<name>-pool`, `<name>-base-volume`, libvirt pool
 * `cilium-lab-<stack>`), so a single-host stack never sees a host number. Host N ≥ 2 gets
 * `-host-N` resource names and the libvirt pool `cilium-lab-<stack>-hN`: two URIs may reach one
 * daemon (the CI's `qemu:///system` and `qemu+ssh://…@127.0.0.1/system`), and distinct pool names
 * keep their create/delete apart there. Base volumes need no such care: they are keyed by
 * libvirt's host UUID and shared (see infra/libvirt/base-image/volume.ts).
 */
import * as pulumi from "@pulumi/pulumi";

import { StoragePool } from "../libvirt";
import { BaseVolume, type BaseImage } from "../libvirt/base-image";
import { stackPoolName } from "../libvirt/storage";
import type { LabPlan } from "../plan";

/** The stack's pool and the base volume on one libvirt host. */
export interface HostStorage {
  readonly uri: string;
  readonly pool: StoragePool;
  readonly base: BaseVolume;
}

/** The libvirt pool name of the stack on its `index`-th host (0-based, plan order). */
export function hostPoolName(plan: Pick<LabPlan, "networkName">, index: number): string {
  const pool = stackPoolName(plan.networkName);
  return index === 0 ? pool : `${pool}-h${index + 1}`;
}

/** The resource name suffix of the `index`-th host: empty for the first. */
export function hostSuffix(index: number): string {
  return index === 0 ? "" : `-host-${index + 1}`;
}

/** One pool and one base volume per host of the plan, children of `parent`. */
export function hostStorage(
  name: string,
  plan: Pick<LabPlan, "networkName" | "hosts">,
  stack: string,
  image: BaseImage,
  parent: pulumi.Resource,
): Map<string, HostStorage> {
  const hosts = new Map<string, HostStorage>();
  plan.hosts.forEach((uri, index) => {
    const suffix = hostSuffix(index);
    const pool = new StoragePool(
      `${name}-pool${suffix}`,
      { uri, poolName: hostPoolName(plan, index), stack },
      { parent },
    );
    const base = new BaseVolume(
      `${name}-base-volume${suffix}`,
      { uri, imagePath: image.path, sha256: image.sha256, sizeBytes: image.sizeBytes },
      { parent },
    );
    hosts.set(uri, { uri, pool, base });
  });
  return hosts;
}

/** The storage of a node's host; a node whose host the plan does not list is a plan bug, named. */
export function storageOf(hosts: ReadonlyMap<string, HostStorage>, uri: string, node: string): HostStorage {
  const found = hosts.get(uri);
  if (found === undefined) {
    throw new Error(
      `${node} runs on ${uri}, which is not among the plan's hosts (${[...hosts.keys()].join(", ")}): planLab must list every node's hostUri.`,
    );
  }
  return found;
}
