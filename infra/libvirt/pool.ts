/**
 * `StoragePool`: the stack's libvirt `dir` pool on one libvirt host, which holds its overlays, seeds
 * and console logs. libvirtd creates the directory (`pool-build`) and every file in it, so the lab
 * needs no root and no local file system access: it works as a user in group libvirt and through
 * `qemu+ssh://`.
 *
 * Pools have no metadata element, so a marker volume (storage.ts `POOL_MARKER_VOLUME`) stamps the
 * owner. Create refuses a pool of that name whose marker is missing or names another stack (only an
 * empty unmarked pool at our target is adopted: what a create killed before writing the marker
 * leaves), and removes again what it made when a step fails. Delete removes the marker and the pool
 * once nothing else is in it; a pool that still holds volumes is refused with their names.
 */

import { dynamicResource, type CheckResult, type Compared } from "../provider";
import { Checker, STACK_PATTERN, checkUri, str } from "./common";
import { foreignObjectError, libvirtProvider, type InputsOf } from "./owned";
import {
  POOL_MARKER_VOLUME,
  ensureDirPool,
  listVolumes,
  poolInfo,
  poolTarget,
  poolTargetPath,
  readPoolMarker,
  removePoolIfEmpty,
  writePoolMarker,
} from "./storage";
import { OWNER_PROJECT } from "./xml";

/** Plain inputs of {@link StoragePool}. */
export interface StoragePoolInputs {
  /** libvirt URI of the host the pool lives on. */
  readonly uri: string;
  /** The libvirt pool name, `cilium-lab-<stack>` (storage.ts `stackPoolName`); its directory is `/var/lib/libvirt/images/<poolName>`. */
  readonly poolName: string;
  /** Pulumi stack written into the marker volume. */
  readonly stack: string;
}

/** Inputs of {@link StoragePool}. */
export type StoragePoolArgs = InputsOf<StoragePoolInputs>;

/** State of a pool. */
export interface StoragePoolOutputs extends StoragePoolInputs {
  /** The pool's directory on the libvirt host. */
  readonly targetPath: string;
  /** Whether the pool ran at the last read (a pool stopped by hand is started by the next `up`). */
  readonly active: boolean;
}

/** A libvirt URI without its query (`?socket=`, `?keyfile=`): which daemon, not how it is reached. */
export function hostOf(uri: unknown): unknown {
  return typeof uri === "string" ? uri.replace(/\?.*$/, "") : uri;
}

/** The refusal of a pool that exists and is not this stack's (by its marker), with the fix. */
function foreignPool(
  action: string,
  uri: string,
  pool: string,
  stack: string,
  owner?: { project: string; stack: string },
): Error {
  return foreignObjectError(
    action,
    "storage pool",
    pool,
    stack,
    owner,
    `virsh -c ${uri} pool-destroy ${pool}; virsh -c ${uri} pool-undefine ${pool}`,
  );
}

/**
 * Refuses to put anything into `pool` unless its marker names this stack: the check a Volume or
 * CloudInitDisk create makes first (`action` starts the message, e.g. `creating volume "x"`).
 */
export async function assertStackPool(
  where: { uri: string; pool: string; stack: string },
  action: string,
): Promise<void> {
  const marker = await readPoolMarker(where.uri, where.pool);
  if (marker === undefined && (await poolTarget(where.uri, where.pool)) === undefined) {
    throw new Error(
      `${action} failed: libvirt storage pool "${where.pool}" does not exist at ${where.uri}. ` +
        "Fix: run `pulumi up --refresh`, which creates the stack's StoragePool first.",
    );
  }
  if (marker?.project !== OWNER_PROJECT || marker.stack !== where.stack) {
    throw foreignPool(action, where.uri, where.pool, where.stack, marker);
  }
}

async function createPool(inputs: StoragePoolInputs): Promise<{ id: string; outs: StoragePoolOutputs }> {
  const { uri, poolName: pool, stack } = inputs;
  const action = `creating libvirt storage pool "${pool}"`;
  const existing = await poolTarget(uri, pool);
  const { created, target } = await ensureDirPool(uri, pool, existing ?? poolTargetPath(pool));
  try {
    const marker = await readPoolMarker(uri, pool);
    if (marker === undefined) {
      const others = (await listVolumes(uri, pool)).map((v) => v.name);
      if (!created && (others.length > 0 || target !== poolTargetPath(pool))) {
        throw foreignPool(action, uri, pool, stack);
      }
      await writePoolMarker(uri, pool, { project: OWNER_PROJECT, stack });
    } else if (marker.project !== OWNER_PROJECT || marker.stack !== stack) {
      throw foreignPool(action, uri, pool, stack, marker);
    }
  } catch (error) {
    if (created) {
      await removePoolIfEmpty(uri, pool);
    }
    throw error;
  }
  return { id: pool, outs: { ...inputs, targetPath: target, active: true } };
}

async function readPool(id: string, props: StoragePoolOutputs): Promise<{ id: string; props?: StoragePoolOutputs }> {
  const target = await poolTarget(props.uri, id);
  if (target === undefined) {
    return { id: "" };
  }
  const running = (await poolInfo(props.uri, id)).running;
  if (running) {
    const marker = await readPoolMarker(props.uri, id);
    if (marker?.project !== OWNER_PROJECT || marker.stack !== props.stack) {
      // Someone replaced it: not ours any more, so the state drops it (and `up` refuses the stranger).
      return { id: "" };
    }
  }
  return { id, props: { ...props, targetPath: target, active: running } };
}

async function deletePool(id: string, props: StoragePoolOutputs): Promise<void> {
  if ((await poolTarget(props.uri, id)) === undefined) {
    return;
  }
  if (!(await poolInfo(props.uri, id)).running) {
    await ensureDirPool(props.uri, id, props.targetPath);
  }
  const marker = await readPoolMarker(props.uri, id);
  if (marker !== undefined && (marker.project !== OWNER_PROJECT || marker.stack !== props.stack)) {
    return; // replaced by someone else since: not ours to remove
  }
  const { removed, remaining } = await removePoolIfEmpty(props.uri, id);
  if (!removed && remaining.length > 0) {
    throw new Error(
      `deleting libvirt storage pool "${id}" failed: it still holds ${remaining.length} volume(s) cilium-lab did not delete: ${remaining.join(", ")}. ` +
        `Nothing was removed. Fix: delete them if they are not needed (virsh -c ${props.uri} vol-delete --pool ${id} <name>), or run scripts/lab-clean.sh --uri ${props.uri}, then destroy again.`,
    );
  }
}

function checkPool(news: Record<string, unknown>): CheckResult {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field("poolName", (v) =>
    typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(v) || v === POOL_MARKER_VOLUME
      ? `must be a libvirt pool name ([A-Za-z0-9_.-], at most 100), got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("stack", str(STACK_PATTERN, "a Pulumi stack name"));
  return { inputs: news, failures: c.failures };
}

/** The compared values: the daemon a URI reaches (`host`) replaces, the rest of the URI updates. */
function normalizePool(olds: Record<string, unknown>, news: Record<string, unknown>): Compared {
  return { olds: { ...olds, host: hostOf(olds.uri) }, news: { ...news, host: hostOf(news.uri) } };
}

/** The pool provider; one instance shared by every {@link StoragePool} (serialized once). */
export const storagePoolProvider = libvirtProvider<StoragePoolInputs, StoragePoolOutputs>({
  check: checkPool,
  normalize: normalizePool,
  replaceKeys: ["host", "poolName", "stack"],
  updateKeys: ["uri"],
  startedKey: "active",
  create: createPool,
  read: readPool,
  update: async (id, olds, news) => {
    const { target } = await ensureDirPool(news.uri, id, olds.targetPath);
    return { outs: { ...olds, uri: news.uri, targetPath: target, active: true } };
  },
  delete: deletePool,
});

/**
 * The stack's libvirt storage pool on one host (`pulumi-nodejs:dynamic/libvirt:StoragePool`); the id
 * is the pool name. Pass `poolName` to the stack's Volume, CloudInitDisk and Domain, so they are
 * created after it and deleted before it.
 */
export const StoragePool = dynamicResource<StoragePoolArgs, StoragePoolOutputs>(
  storagePoolProvider,
  { module: "libvirt", type: "StoragePool" },
  { outputs: ["targetPath", "active"] },
);
export type StoragePool = InstanceType<typeof StoragePool>;
