/**
 * `BaseVolume`: the verified cached base image (a {@link BaseImage}'s file) uploaded once per libvirt
 * host into the shared base pool `cilium-lab-base`, as `base-<first 16 hex of its sha256>.qcow2`.
 * Every stack on that host backs its overlays onto it. Everything goes through libvirt's API
 * (`virsh` against the URI), so it works as an unprivileged member of group `libvirt` and for
 * `qemu+ssh://` hosts: nothing here touches the libvirt host's file system.
 *
 * - Host key: libvirt's host UUID (`virsh capabilities`), so two URIs reaching one daemon
 *   (`qemu:///system` and `qemu+ssh://…@127.0.0.1/system`) share one volume. It is in the id.
 * - The base pool is a cache, like `~/.cache`: `delete` keeps the volume (other stacks back onto
 *   it); `scripts/lab-clean.sh` purges a base volume only when no volume of any pool backs onto it.
 * - Upload: `vol-create-as … 0 --format raw` (an empty file), then `vol-upload` of the whole file
 *   without `--sparse` (libvirt's dir backend then writes the stream in order, so the file only
 *   reaches the image's size once all of it arrived; cloud images have no holes worth skipping).
 *   Then the volume's physical size must equal the image's size; otherwise, and on any failure of
 *   the upload, the volume is deleted and the create fails with {@link BaseUploadError}.
 *
 * What protects parallel stacks (two `up`s on one host, or two URIs of one daemon in one stack):
 * - The volume name is created by exactly one of them: libvirt refuses a second volume of the same
 *   name in a pool ("storage volume '…' exists already"), so exactly one process uploads.
 * - The others find the volume smaller than the image and wait while it grows (`vol-info
 *   --physical`, which needs no `pool-refresh`, itself refused while an upload runs). A volume
 *   that has not grown for {@link STALL_MS} is the leftover of a killed upload: it is deleted and
 *   the race starts again. A volume of exactly the image's size is complete and reused.
 * - Waiting is bounded ({@link WAIT_MS}); the error names the volume and how to remove it.
 * Not protected: two machines uploading the same image to one remote host while one of them
 * stalls for longer than STALL_MS; the loser's upload then fails and a retried `up` succeeds.
 */
import type * as pulumi from "@pulumi/pulumi";

import { defineProvider, dynamicResource, type CheckResult } from "../../provider";
import { Checker, absPath, checkUri, int, str } from "../common";
import { commandError, fsp, sleep, tail, toolFailure, virsh } from "../exec";
import {
  BASE_POOL,
  BASE_POOL_STACK,
  NO_VOLUME,
  POOL_MARKER_VOLUME,
  POOL_ROOT,
  deleteVolume,
  ensureDirPool,
  hostUuid,
  listVolumes,
  readPoolMarker,
  virshRetry,
  volumePath,
  writePoolMarker,
} from "../storage";

/** A volume that has not grown for this long while smaller than the image is a dead upload's leftover. */
export const STALL_MS = 45_000;
/** How long a create waits for another process's upload of the same image. */
export const WAIT_MS = 30 * 60_000;
/** Poll interval while waiting. */
const POLL_MS = 1000;

/** Inputs of {@link BaseVolume}. */
export interface BaseVolumeArgs {
  /** The libvirt host (`qemu:///system`, `qemu+ssh://user@host/system`). */
  readonly uri: pulumi.Input<string>;
  /** The verified image file on this machine: a {@link BaseImage}'s `path`. */
  readonly imagePath: pulumi.Input<string>;
  /** Its SHA-256 (a BaseImage's `sha256`): names the volume. */
  readonly sha256: pulumi.Input<string>;
  /** Its size in bytes (a BaseImage's `sizeBytes`): a complete upload has exactly this size. */
  readonly sizeBytes: pulumi.Input<number>;
  /** The base pool; default `cilium-lab-base` (tests use their own). */
  readonly pool?: pulumi.Input<string>;
}

/** Plain inputs as the provider receives them. */
export type BaseVolumeInputs = pulumi.Unwrap<BaseVolumeArgs>;

/** State of a base volume. */
export interface BaseVolumeOutputs extends BaseVolumeInputs {
  /** libvirt's host UUID (`/capabilities/host/uuid`). */
  readonly hostUuid: string;
  readonly pool: string;
  /** `base-<sha256[:16]>.qcow2`. */
  readonly name: string;
  /** The volume's path on the libvirt host: what overlays back onto. */
  readonly path: string;
  /** Bytes this create uploaded: 0 when the host had the volume already. */
  readonly uploadedBytes: number;
}

/** The base volume's name for an image hash. */
export function baseVolumeName(sha256: string): string {
  return `base-${sha256.slice(0, 16)}.qcow2`;
}

/** The resource id: host UUID, pool and volume name. */
export function baseVolumeId(host: string, pool: string, name: string): string {
  return `${host}/${pool}/${name}`;
}

/** The physical size from `virsh vol-info --bytes --physical`; undefined when it has none. */
export function parsePhysical(stdout: string): number | undefined {
  const m = /^Physical:\s+(\d+) bytes$/m.exec(stdout);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** The thrown error when an upload failed or came out short; the volume was deleted. */
export class BaseUploadError extends Error {
  override readonly name = "BaseUploadError";
}

/** The physical size of a volume, or undefined when the pool has no such volume. */
async function physicalSize(uri: string, pool: string, name: string): Promise<number | undefined> {
  const r = await virshRetry(uri, ["vol-info", name, "--pool", pool, "--bytes", "--physical"]);
  if (r.code !== 0) {
    if (NO_VOLUME.test(r.stderr)) {
      return undefined;
    }
    throw toolFailure(`reading base volume ${name} in pool ${pool}`, r, "check the pool (virsh pool-info)", uri);
  }
  const size = parsePhysical(r.stdout);
  if (size === undefined) {
    throw new Error(`virsh vol-info ${name} --pool ${pool} printed no Physical line: ${tail(r.stdout)}`);
  }
  return size;
}

/**
 * Makes the base pool exist, running, and stamped as cilium-lab's shared pool (marker stack `*`).
 * An existing pool with another marker, or without one but with volumes, is not ours: refused.
 */
export async function ensureBasePool(uri: string, pool: string): Promise<string> {
  const { target } = await ensureDirPool(uri, pool, `${POOL_ROOT}/${pool}`);
  let marker = await readPoolMarker(uri, pool);
  // A parallel create may be writing the marker right now (it reads back empty): look again.
  for (let i = 0; i < 5 && marker?.project === "?"; i++) {
    await sleep(POLL_MS);
    marker = await readPoolMarker(uri, pool);
  }
  if (marker !== undefined && marker.project === "cilium-lab" && marker.stack === BASE_POOL_STACK) {
    return target;
  }
  const fix =
    `Fix: if nothing else uses it, remove it (virsh -c '${uri}' pool-destroy ${pool}; ` +
    `virsh -c '${uri}' pool-delete ${pool}; virsh -c '${uri}' pool-undefine ${pool}), or free the name.`;
  if (marker !== undefined) {
    throw new Error(
      `libvirt pool ${pool} on ${uri} belongs to ${marker.project} stack ${JSON.stringify(marker.stack)}, not to cilium-lab's shared base pool. ${fix}`,
    );
  }
  const vols = (await listVolumes(uri, pool)).map((v) => v.name).filter((n) => n !== POOL_MARKER_VOLUME);
  if (vols.length > 0) {
    throw new Error(
      `libvirt pool ${pool} on ${uri} exists without a cilium-lab marker and holds volumes (${vols.join(", ")}): not the lab's base pool. ${fix}`,
    );
  }
  try {
    await writePoolMarker(uri, pool, { project: "cilium-lab", stack: BASE_POOL_STACK });
  } catch (error) {
    // A parallel create stamped it first (the marker volume's name is taken): fine if it is ours.
    const again = await readPoolMarker(uri, pool);
    if (again?.project !== "cilium-lab" || again.stack !== BASE_POOL_STACK) {
      throw error;
    }
  }
  return target;
}

/** Uploads `file` into the (empty, just created) volume; deletes it and throws on any shortfall. */
async function uploadInto(uri: string, pool: string, name: string, file: string, size: number): Promise<void> {
  const r = await virsh(uri, ["vol-upload", name, file, "--pool", pool], { timeoutMs: WAIT_MS });
  const got = await physicalSize(uri, pool, name).catch(() => undefined);
  if (r.code === 0 && got === size) {
    return;
  }
  await deleteVolume(uri, pool, name);
  const why =
    r.code !== 0
      ? `virsh vol-upload exited ${r.code}: ${tail(r.stderr, 2) || "(no stderr)"}`
      : `only ${got ?? "?"} of ${size} bytes arrived (the source ended early)`;
  throw new BaseUploadError(
    `base image upload interrupted: ${file} → volume ${name} in pool ${pool} on ${uri}: ${why}. ` +
      "The partial volume was deleted. Fix: check the connection to the libvirt host and its free space in " +
      `${POOL_ROOT} (virsh -c '${uri}' pool-info ${pool}), then run \`pulumi up\` again.`,
    { cause: commandError(r) },
  );
}

/**
 * Makes `name` in `pool` a complete copy of `file` (`size` bytes), racing parallel creators safely
 * (see the module comment). Returns the bytes this call uploaded.
 */
export async function ensureUploaded(
  uri: string,
  pool: string,
  name: string,
  file: string,
  size: number,
  timing: { stallMs: number; waitMs: number } = { stallMs: STALL_MS, waitMs: WAIT_MS },
): Promise<number> {
  const deadline = Date.now() + timing.waitMs;
  let seen = { size: -1, at: Date.now() };
  for (;;) {
    const current = await physicalSize(uri, pool, name);
    if (current === size) {
      return 0;
    }
    if (current === undefined) {
      const created = await virsh(uri, ["vol-create-as", pool, name, "0", "--format", "raw"]);
      if (created.code === 0) {
        await uploadInto(uri, pool, name, file, size);
        return size;
      }
      if (!/exists already|already in use/i.test(created.stderr)) {
        throw toolFailure(
          `creating base volume ${name} in pool ${pool}`,
          created,
          `check the pool (virsh pool-info ${pool})`,
          uri,
        );
      }
      // Another process created it a moment ago: wait for its upload below.
    } else if (current > size) {
      // Not this image (the name is a hash prefix): replace it.
      await deleteVolume(uri, pool, name);
      continue;
    } else if (current !== seen.size) {
      seen = { size: current, at: Date.now() };
    } else if (Date.now() - seen.at > timing.stallMs) {
      process.stderr.write(
        `[cilium-lab] base volume ${name}: ${current} of ${size} bytes, unchanged for ${Math.round(timing.stallMs / 1000)} s: a killed upload's leftover; replacing it\n`,
      );
      await deleteVolume(uri, pool, name);
      seen = { size: -1, at: Date.now() };
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${Math.round(timing.waitMs / 1000)} s for another upload of base volume ${name} in pool ${pool} on ${uri} (${current ?? 0} of ${size} bytes). ` +
          `Fix: wait for the other \`pulumi up\`, or delete the volume (virsh -c '${uri}' vol-delete ${name} --pool ${pool}) and retry.`,
      );
    }
    await sleep(POLL_MS);
  }
}

async function createBaseVolume(inputs: BaseVolumeInputs): Promise<{ id: string; outs: BaseVolumeOutputs }> {
  const pool = inputs.pool ?? BASE_POOL;
  const stat = await fsp().stat(inputs.imagePath);
  if (!stat.isFile() || stat.size !== inputs.sizeBytes) {
    throw new Error(
      `base image ${inputs.imagePath} is ${stat.isFile() ? `${stat.size} bytes, expected ${inputs.sizeBytes}` : "not a regular file"}: the cache changed under the lab. ` +
        "Fix: `pulumi up --refresh` downloads and verifies it again.",
    );
  }
  const host = await hostUuid(inputs.uri);
  await ensureBasePool(inputs.uri, pool);
  const name = baseVolumeName(inputs.sha256);
  const uploadedBytes = await ensureUploaded(inputs.uri, pool, name, inputs.imagePath, inputs.sizeBytes);
  const path = await volumePath(inputs.uri, pool, name);
  if (path === undefined) {
    throw new Error(
      `base volume ${name} vanished from pool ${pool} on ${inputs.uri} right after its upload. Fix: run \`pulumi up\` again.`,
    );
  }
  return {
    id: baseVolumeId(host, pool, name),
    outs: { ...inputs, hostUuid: host, pool, name, path, uploadedBytes },
  };
}

function checkBaseVolume(news: Record<string, unknown>): CheckResult {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field("imagePath", absPath);
  c.field("sha256", str(/^[0-9a-f]{64}$/, "a SHA-256 (64 lower-case hex digits)"));
  c.field("sizeBytes", int(1, Number.MAX_SAFE_INTEGER));
  if (news.pool !== undefined) {
    c.field("pool", str(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a libvirt pool name"));
  }
  return { inputs: news, failures: c.failures };
}

/** The provider; one module-level instance so its serialized text is cached. */
export const baseVolumeProvider = defineProvider<BaseVolumeInputs, BaseVolumeOutputs>({
  check: checkBaseVolume,
  normalize: (olds, news) => ({
    olds: { ...olds, pool: olds.pool ?? BASE_POOL },
    news: { ...news, pool: news.pool ?? BASE_POOL },
  }),
  // Another host or another image is another volume. The cache path may move (another cache dir)
  // without changing the content: imagePath alone is an update.
  replaceKeys: ["uri", "sha256", "pool"],
  updateKeys: ["imagePath", "sizeBytes"],
  // The volume is never deleted, so create-before-delete is safe.
  deleteBeforeReplace: false,
  create: createBaseVolume,

  /** Refresh: gone when the volume was removed (or left incomplete); the next `up` uploads it again. */
  async read(id: string, props: BaseVolumeOutputs) {
    const size = await physicalSize(props.uri, props.pool, props.name);
    return size === props.sizeBytes ? { id, props } : { id: "" };
  },
  // delete: the volume is kept on purpose, the base pool is a cache shared by every stack on the
  // host (see the module comment); scripts/lab-clean.sh purges unused base volumes.
});

/** The verified base image on a libvirt host, in the shared base pool (see the module comment). */
export const BaseVolume = dynamicResource<BaseVolumeArgs, BaseVolumeOutputs>(
  baseVolumeProvider,
  { module: "libvirt", type: "BaseVolume" },
  { outputs: ["hostUuid", "pool", "name", "path", "uploadedBytes"] },
);
export type BaseVolume = InstanceType<typeof BaseVolume>;
