/**
 * The lab directories of the preflight fixtures (test/libvirt/preflight-rules.test.ts and
 * test/scripts/doctor.test.ts): the stack `vxlan`'s pool and the image cache, and the
 * free space the host facts report for them.
 */
import type { HostFacts } from "../../infra/libvirt/preflight";

/** The target of stack `vxlan`'s libvirt pool, which holds its node disks and seeds. */
export const POOL_DIR = "/var/lib/libvirt/images/cilium-lab-vxlan";
/** Where downloaded base images are cached. */
export const IMAGE_CACHE_DIR = "/var/cache/cilium-lab";

/**
 * The `disks` host facts: `poolFreeGiB` free in {@link POOL_DIR} (with `poolExtra`, e.g. an
 * unsearchable parent), 100 GiB free in {@link IMAGE_CACHE_DIR}.
 */
export function labDisks(poolFreeGiB = 100, poolExtra: Partial<HostFacts["disks"][number]> = {}): HostFacts["disks"] {
  return [
    { path: POOL_DIR, freeBytes: poolFreeGiB * 1024 ** 3, ...poolExtra },
    { path: IMAGE_CACHE_DIR, freeBytes: 100 * 1024 ** 3 },
  ];
}
