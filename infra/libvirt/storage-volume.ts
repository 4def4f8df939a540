/**
 * Volumes through libvirt (virsh against `uri`): create from XML (blank or with a `<backingStore>`),
 * upload, download, delete, and the retry on libvirt's "busy" refusals. storage.ts re-exports all
 * of it with the pool helpers; see there for the why.
 *
 * libvirt refuses `pool-refresh`, `pool-destroy` and `pool-undefine` with "pool '<name>' has
 * asynchronous jobs running." while a volume in it is being built, and volume operations with
 * "volume '<name>' is still being allocated." (libvirt src/storage/storage_driver.c, the
 * `asyncjobs` and `building` checks): {@link virshRetry} retries those for a bounded time.
 * Parallel `vol-create`s in one pool work (measured: 4 at once, libvirt 9.0).
 *
 * Functions only, serialization-safe like exec.ts.
 */
import { isNoSpace, noSpaceError } from "./common";
import { fsp, pathMod, privateTempDir, sleep, toolFailure, virsh, type RunOptions, type RunResult } from "./exec";
import { parseInfo, parseVolumeXml, volumeXml, type VolumeFacts } from "./storage-xml";

const BUSY = /has asynchronous jobs running|is still being allocated/;
export const NO_POOL = /Storage pool not found|no storage pool with matching/i;
export const NO_VOLUME = /Storage volume not found|no storage vol(ume)? with matching/i;

/** Runs virsh, retrying (up to ~60 s) while libvirt says the pool or volume is busy. */
export async function virshRetry(uri: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await virsh(uri, args, options);
    if (result.code === 0 || !BUSY.test(result.stderr) || attempt >= 120) {
      return result;
    }
    await sleep(500);
  }
}

/** Runs virsh (with {@link virshRetry}) and throws {@link toolFailure} on a failure; returns stdout. */
export async function virshStorage(
  uri: string,
  args: readonly string[],
  action: string,
  fix: string,
  options?: RunOptions,
): Promise<string> {
  const result = await virshRetry(uri, args, options);
  if (result.code !== 0) {
    throw toolFailure(action, result, fix, uri);
  }
  return result.stdout;
}

/** `virsh pool-info --bytes`: whether the pool runs and the bytes available in it. */
export async function poolInfo(uri: string, pool: string): Promise<{ running: boolean; availableBytes: number }> {
  const info = parseInfo(
    await virshStorage(
      uri,
      ["pool-info", pool, "--bytes"],
      `reading libvirt storage pool "${pool}"`,
      "check that the pool exists (virsh pool-list --all)",
    ),
  );
  return { running: info.state === "running", availableBytes: Number(info.available ?? "0") };
}

/** `pool-refresh`, so volumes made or removed behind libvirt's back are seen. */
export async function refreshPool(uri: string, pool: string): Promise<void> {
  await virshStorage(
    uri,
    ["pool-refresh", pool],
    `refreshing libvirt storage pool "${pool}"`,
    "check that the pool runs (virsh pool-list --all)",
  );
}

/** What libvirt knows about a volume (by name in `pool`, or by path when `pool` is undefined); undefined when there is none. */
export async function volumeFacts(
  uri: string,
  pool: string | undefined,
  name: string,
): Promise<VolumeFacts | undefined> {
  const args = pool === undefined ? ["vol-dumpxml", name] : ["vol-dumpxml", "--pool", pool, name];
  const result = await virshRetry(uri, args);
  if (result.code !== 0 && (NO_VOLUME.test(result.stderr) || NO_POOL.test(result.stderr))) {
    return undefined;
  }
  if (result.code !== 0) {
    throw toolFailure(
      `reading libvirt volume "${name}"${pool ? ` in pool "${pool}"` : ""}`,
      result,
      "check the URI and libvirtd",
      uri,
    );
  }
  return parseVolumeXml(result.stdout);
}

/** A volume's path on the libvirt host; undefined when there is no such volume (or pool). */
export async function volumePath(uri: string, pool: string, name: string): Promise<string | undefined> {
  return (await volumeFacts(uri, pool, name))?.path;
}

/** Throws the "not enough disk space" error when the pool has less than `needed` bytes available. */
async function checkSpace(uri: string, pool: string, what: string, needed: number, cause?: unknown): Promise<void> {
  const free = (await poolInfo(uri, pool)).availableBytes;
  if (cause !== undefined || free < needed) {
    throw noSpaceError(what, `libvirt storage pool "${pool}"`, free, needed, cause);
  }
}

/** What {@link createVolume} makes. */
export interface NewVolume {
  readonly name: string;
  readonly capacityBytes: number;
  readonly format: "qcow2" | "raw";
  /** A copy-on-write overlay of this qcow2 image (a path on the libvirt host). */
  readonly backing?: { readonly path: string; readonly format: "qcow2" };
}

/**
 * `vol-create` from XML (mode 0600, `<backingStore>` for an overlay). virsh reads the XML file
 * locally and sends the document over its connection, so this works for remote URIs. The file is
 * in a private temp directory: `/dev/stdin` fails when stdin is the socket Node gives a child
 * ("Failed to open file '/dev/stdin': No such device or address").
 * Checks the pool's available space first (1 MiB for a new qcow2; libvirt allocates lazily).
 * On a failure nothing is left (libvirt deletes a volume whose build failed). Returns the path.
 */
export async function createVolume(uri: string, pool: string, spec: NewVolume): Promise<string> {
  const what = `creating volume "${spec.name}" in libvirt storage pool "${pool}"`;
  await checkSpace(uri, pool, what, 1024 ** 2);
  const result = await withTempDir(async (dir) => {
    const file = pathMod().join(dir, "volume.xml");
    await fsp().writeFile(file, volumeXml(spec), { mode: 0o600 });
    const r = await virshRetry(uri, ["vol-create", pool, file]);
    // Messages name the document, not the temp file that is gone when they are read.
    return {
      ...r,
      argv: r.argv.map((a) => (a === file ? "volume.xml" : a)),
      stderr: r.stderr.split(file).join("volume.xml"),
    };
  });
  if (result.code !== 0) {
    if (isNoSpace(result.stderr)) {
      await checkSpace(uri, pool, what, 1024 ** 2, toolFailure(what, result, "free space", uri));
    }
    const fix = /exists already|already in use/.test(result.stderr)
      ? `delete it (virsh vol-delete --pool ${pool} ${spec.name}) if it is a leftover`
      : spec.backing
        ? `check that the backing image ${spec.backing.path} is a readable qcow2 on the libvirt host`
        : "check the pool and the libvirt message";
    throw toolFailure(what, result, fix, uri);
  }
  const path = await volumePath(uri, pool, spec.name);
  if (path === undefined) {
    throw new Error(
      `${what} failed: libvirt reported success but has no volume "${spec.name}" afterwards. Fix: check libvirtd's log.`,
    );
  }
  return path;
}

/** Deletes a volume; a missing volume or pool is fine. */
export async function deleteVolume(uri: string, pool: string, name: string): Promise<void> {
  const result = await virshRetry(uri, ["vol-delete", "--pool", pool, name]);
  if (result.code !== 0 && !NO_VOLUME.test(result.stderr) && !NO_POOL.test(result.stderr)) {
    throw toolFailure(
      `deleting volume "${name}" from libvirt storage pool "${pool}"`,
      result,
      `virsh -c ${uri} vol-delete --pool ${pool} ${name}`,
      uri,
    );
  }
}

/** Options of {@link uploadVolume}. */
export interface UploadOptions {
  /** The volume's format as created; libvirt re-probes dir-pool files on refresh. Default `raw`. */
  readonly format?: "qcow2" | "raw";
  /** Kill the upload after this many milliseconds (default 30 min). */
  readonly timeoutMs?: number;
}

/**
 * Creates volume `name` at the size of `localFile` and `vol-upload`s the file into it. A regular
 * file goes with `--sparse` (holes stay holes; virsh(1) vol-upload, libvirt ≥ 3.4); a pipe without
 * it (virsh's hole handler seeks, which a pipe refuses: "send holeHandler failed: Illegal seek"),
 * and its volume grows as the data arrives. On any failure (a missing file, a full pool, a killed upload)
 * the volume is deleted again and the error names the file, the volume and the fix. Returns the path.
 */
export async function uploadVolume(
  uri: string,
  pool: string,
  name: string,
  localFile: string,
  options: UploadOptions = {},
): Promise<string> {
  const what = `uploading ${localFile} to volume "${name}" in libvirt storage pool "${pool}"`;
  let size: number;
  let regular: boolean;
  try {
    const st = await fsp().stat(localFile);
    size = st.size;
    regular = st.isFile();
  } catch (error) {
    throw new Error(
      `${what} failed: cannot read ${localFile}: ${(error as Error).message}. Nothing was created. Fix: check that the file exists and is readable.`,
      { cause: error },
    );
  }
  await checkSpace(uri, pool, what, size);
  const path = await createVolume(uri, pool, { name, capacityBytes: size, format: options.format ?? "raw" });
  try {
    const sparse = regular ? ["--sparse"] : [];
    const result = await virsh(uri, ["vol-upload", "--pool", pool, name, localFile, ...sparse], {
      timeoutMs: options.timeoutMs ?? 30 * 60_000,
    });
    if (result.code !== 0) {
      if (isNoSpace(result.stderr)) {
        await deleteVolume(uri, pool, name);
        await checkSpace(uri, pool, what, size, toolFailure(what, result, "free space", uri));
      }
      throw toolFailure(what, result, `retry; the partial volume "${name}" was deleted`, uri);
    }
    await refreshPool(uri, pool);
  } catch (error) {
    await deleteVolume(uri, pool, name);
    throw error;
  }
  return path;
}

/** `vol-download` of a volume (or `length` bytes from `offset`) into a local file. */
export async function downloadVolume(
  uri: string,
  pool: string,
  name: string,
  localFile: string,
  range: { readonly offset?: number; readonly length?: number } = {},
): Promise<void> {
  const args = ["vol-download", "--pool", pool, name, localFile];
  if (range.offset !== undefined) {
    args.push("--offset", String(range.offset));
  }
  if (range.length !== undefined) {
    args.push("--length", String(range.length));
  }
  await virshStorage(
    uri,
    args,
    `downloading volume "${name}" of libvirt storage pool "${pool}"`,
    "check that the volume exists (virsh vol-list " + pool + ")",
  );
}

/** Runs `fn` with a private (0700) temp directory under the OS temp dir, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await privateTempDir("cilium-lab-storage-");
  try {
    return await fn(dir);
  } finally {
    await fsp().rm(dir, { recursive: true, force: true });
  }
}
