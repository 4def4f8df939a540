/**
 * The lab's host-side storage through libvirt's own API (virsh against `uri`), so it works as an
 * unprivileged user in group `libvirt` and on remote hosts (`qemu+ssh://`): libvirtd creates the
 * pool directories and the files in them; we never touch the host's file system. Only local temp
 * files (uploads, downloads) are ours, in private 0700 directories under the OS temp dir.
 *
 * - Each stack has a `dir` pool `cilium-lab-<stack>` under {@link POOL_ROOT}; pools have no metadata
 *   element, so a small marker volume ({@link POOL_MARKER_VOLUME}) stamps the owner.
 * - The base images live in the shared pool {@link BASE_POOL} (marker stack `"*"`).
 *
 * Volume operations and the retry on libvirt's "busy" refusals are in storage-volume.ts
 * (re-exported here).
 *
 * Functions only, serialization-safe like exec.ts (builtins are `require`d inside functions).
 */
import { fsp, pathMod, toolFailure, virsh } from "./exec";
import { parsePoolTargetPath } from "./xml";
import { parseHostUuid, parseVolumeList } from "./storage-xml";
import {
  NO_POOL,
  deleteVolume,
  downloadVolume,
  poolInfo,
  refreshPool,
  uploadVolume,
  virshRetry,
  virshStorage,
  volumeFacts,
  withTempDir,
} from "./storage-volume";

export * from "./storage-volume";
export type { VolumeFacts } from "./storage-xml";

/** Where libvirtd puts the lab's pools (Debian's default image directory, owned by root, 0711). */
export const POOL_ROOT = "/var/lib/libvirt/images";
/** The shared pool of verified base images, one per libvirt host; kept across `destroy` like ~/.cache. */
export const BASE_POOL = "cilium-lab-base";
/** The volume that stamps a pool as the lab's: `{"project":"cilium-lab","stack":"<stack>"}`. */
export const POOL_MARKER_VOLUME = "cilium-lab-pool.json";
/** The marker stack of {@link BASE_POOL}: shared by every stack. */
export const BASE_POOL_STACK = "*";

/** Content of the marker volume. */
export interface PoolMarker {
  readonly project: string;
  readonly stack: string;
}

/** A volume as `vol-list` names it. */
export interface VolumeEntry {
  readonly name: string;
  readonly path: string;
}

/** The stack's pool: named like the plan's `networkName` (`cilium-lab-<stack>`). */
export function stackPoolName(networkName: string): string {
  return networkName;
}

/** The directory libvirtd creates for a pool of ours. */
export function poolTargetPath(pool: string): string {
  return `${POOL_ROOT}/${pool}`;
}

/** The target directory of a pool; undefined when there is no such pool. */
export async function poolTarget(uri: string, pool: string): Promise<string | undefined> {
  const result = await virsh(uri, ["pool-dumpxml", pool]);
  if (result.code !== 0 && NO_POOL.test(result.stderr)) {
    return undefined;
  }
  if (result.code !== 0) {
    throw toolFailure(`looking up libvirt storage pool "${pool}"`, result, "check the URI and libvirtd", uri);
  }
  return parsePoolTargetPath(result.stdout) ?? "";
}

/**
 * Makes sure a `dir` pool `pool` exists and runs: defines it at `target`, builds (libvirtd creates
 * the directory) and starts it, and marks it autostart; an existing inactive pool is started. On a
 * failure a pool we defined is undefined again. Returns whether we defined it and its real target.
 */
export async function ensureDirPool(
  uri: string,
  pool: string,
  target: string,
): Promise<{ created: boolean; target: string }> {
  const action = `creating libvirt storage pool "${pool}" at ${target}`;
  let existing = await poolTarget(uri, pool);
  let created = false;
  if (existing === undefined) {
    const r = await virsh(uri, ["pool-define-as", pool, "dir", "--target", target]);
    if (r.code === 0) {
      created = true;
    } else if (!/already exists/.test(r.stderr)) {
      throw toolFailure(action, r, `check that ${target} is a valid directory path on the libvirt host`, uri);
    }
    existing = created ? target : ((await poolTarget(uri, pool)) ?? target);
  }
  try {
    if (!(await poolInfo(uri, pool)).running) {
      const build = await virsh(uri, ["pool-build", pool]);
      if (build.code !== 0 && !/already active/.test(build.stderr)) {
        throw toolFailure(action, build, `check that libvirtd may create ${existing}`, uri);
      }
      const start = await virsh(uri, ["pool-start", pool]);
      if (start.code !== 0 && !/already active/.test(start.stderr)) {
        throw toolFailure(action, start, `check ${existing} on the libvirt host (virsh pool-start ${pool})`, uri);
      }
    }
    if (created) {
      await virshStorage(uri, ["pool-autostart", pool], action, `virsh pool-autostart ${pool}`);
    }
  } catch (error) {
    if (created) {
      await virsh(uri, ["pool-destroy", pool]);
      await virsh(uri, ["pool-delete", pool]);
      await virsh(uri, ["pool-undefine", pool]);
    }
    throw error;
  }
  return { created, target: existing };
}

/** The pool's volumes (after a refresh). */
export async function listVolumes(uri: string, pool: string): Promise<VolumeEntry[]> {
  await refreshPool(uri, pool);
  const out = await virshStorage(
    uri,
    ["vol-list", pool],
    `listing the volumes of libvirt storage pool "${pool}"`,
    "check that the pool runs",
  );
  return parseVolumeList(out);
}

/** The pool's marker; undefined without one; `?` fields when it is unreadable. */
export async function readPoolMarker(uri: string, pool: string): Promise<PoolMarker | undefined> {
  if ((await volumeFacts(uri, pool, POOL_MARKER_VOLUME)) === undefined) {
    return undefined;
  }
  return withTempDir(async (dir) => {
    const file = pathMod().join(dir, "marker.json");
    await downloadVolume(uri, pool, POOL_MARKER_VOLUME, file);
    try {
      const parsed = JSON.parse(await fsp().readFile(file, "utf8")) as Partial<PoolMarker>;
      if (typeof parsed.project === "string" && typeof parsed.stack === "string") {
        return { project: parsed.project, stack: parsed.stack };
      }
    } catch {
      // unreadable: reported as "?" below
    }
    return { project: "?", stack: "?" };
  });
}

/** Writes (or replaces) the pool's marker volume. */
export async function writePoolMarker(uri: string, pool: string, marker: PoolMarker): Promise<void> {
  await withTempDir(async (dir) => {
    const file = pathMod().join(dir, "marker.json");
    await fsp().writeFile(file, `${JSON.stringify({ project: marker.project, stack: marker.stack })}\n`, {
      mode: 0o600,
    });
    await deleteVolume(uri, pool, POOL_MARKER_VOLUME);
    await uploadVolume(uri, pool, POOL_MARKER_VOLUME, file);
  });
}

/**
 * Destroys, deletes (libvirtd removes the directory) and undefines the pool when nothing but the
 * marker is left in it. Returns the other volumes when it stays (nothing is changed then).
 */
export async function removePoolIfEmpty(uri: string, pool: string): Promise<{ removed: boolean; remaining: string[] }> {
  if ((await poolTarget(uri, pool)) === undefined) {
    return { removed: false, remaining: [] };
  }
  if (!(await poolInfo(uri, pool)).running) {
    // Started so that libvirt can list what is in it; a pool whose directory is gone stays down.
    await virsh(uri, ["pool-start", pool]);
  }
  if ((await poolInfo(uri, pool)).running) {
    const remaining = (await listVolumes(uri, pool)).map((v) => v.name).filter((n) => n !== POOL_MARKER_VOLUME);
    if (remaining.length > 0) {
      return { removed: false, remaining };
    }
    await deleteVolume(uri, pool, POOL_MARKER_VOLUME);
    const destroy = await virshRetry(uri, ["pool-destroy", pool]);
    if (destroy.code !== 0 && !/not active/.test(destroy.stderr)) {
      throw toolFailure(`removing libvirt storage pool "${pool}"`, destroy, `virsh pool-destroy ${pool}`, uri);
    }
  }
  const del = await virshRetry(uri, ["pool-delete", pool]);
  if (del.code !== 0 && !/No such file or directory/.test(del.stderr)) {
    throw toolFailure(
      `removing the directory of libvirt storage pool "${pool}"`,
      del,
      `check what is left in it on the libvirt host, then virsh pool-delete ${pool}`,
      uri,
    );
  }
  const undefine = await virshRetry(uri, ["pool-undefine", pool]);
  if (undefine.code !== 0 && !NO_POOL.test(undefine.stderr)) {
    throw toolFailure(`undefining libvirt storage pool "${pool}"`, undefine, `virsh pool-undefine ${pool}`, uri);
  }
  return { removed: true, remaining: [] };
}

/** The libvirt host's UUID (`virsh capabilities`, `/capabilities/host/uuid`): keys the base pool per host. */
export async function hostUuid(uri: string): Promise<string> {
  const out = await virshStorage(
    uri,
    ["capabilities"],
    "reading the libvirt host's capabilities",
    "check the URI and libvirtd",
  );
  const uuid = parseHostUuid(out);
  if (uuid === undefined || uuid === "") {
    throw new Error(
      `libvirt at ${uri} reports no host UUID in \`virsh capabilities\`. Fix: check libvirtd's host configuration (host_uuid in libvirtd.conf).`,
    );
  }
  return uuid;
}
