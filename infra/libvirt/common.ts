/**
 * Helpers shared by the libvirt dynamic providers: input checks and the stack's pool directory.
 * Functions only (serialized by value into each provider). The provider shape and the diff rule are
 * infra/provider.ts's.
 */
import { isUnknown, type Failure } from "../provider";
import { OWNER_PROJECT, parsePoolTargetPath } from "./xml";
import { fsp, pathExists, pathMod, virsh, toolFailure } from "./exec";
import { checkLibvirtUri } from "./uri";

/** Collects check failures; skips values not known yet (preview). */
export class Checker {
  readonly failures: Failure[];
  constructor(private readonly inputs: Record<string, unknown>) {
    // Set here, not by a field initializer: Pulumi's closure serializer keeps a class's constructor
    // but drops ES2022 field initializers (which tsx emits), and the provider runs the serialized class.
    this.failures = [];
  }

  /** Runs `test` on a known value; a returned string is the failure reason. */
  field(property: string, test: (value: unknown) => string | undefined): void {
    const value = this.inputs[property];
    if (isUnknown(value)) {
      return;
    }
    const reason = test(value);
    if (reason !== undefined) {
      this.failures.push({ property, reason });
    }
  }

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason });
  }
}

/** A non-empty string matching `pattern`, described as `what`. */
export function str(pattern: RegExp, what: string): (v: unknown) => string | undefined {
  return (v) =>
    typeof v !== "string" || !pattern.test(v)
      ? `must be ${what}, got ${typeof v === "string" ? JSON.stringify(v) : typeof v}`
      : undefined;
}

/** An integer in `[min, max]`. */
export function int(min: number, max: number): (v: unknown) => string | undefined {
  return (v) =>
    typeof v !== "number" || !Number.isInteger(v) || v < min || v > max
      ? `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`
      : undefined;
}

/** An absolute path without `..` or control characters. */
export function absPath(v: unknown): string | undefined {
  // eslint-disable-next-line no-control-regex
  return typeof v !== "string" || !v.startsWith("/") || v.split("/").includes("..") || /[\0-\x1f]/.test(v)
    ? `must be an absolute path, got ${JSON.stringify(v)}`
    : undefined;
}

/** Pulumi stack names as used in our ownership stamp. */
export const STACK_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/**
 * The libvirt URI: `qemu:///system` (optionally `?socket=<path>`) or
 * `qemu+ssh://[user@]host[:port]/system[?keyfile=...]`; the grammar and the reasons for refusals
 * (qemu:///session, no_verify, other transports) are uri.ts's.
 */
export function checkUri(v: unknown): string | undefined {
  return checkLibvirtUri(v);
}

/** A lower-case unicast MAC. */
export const MAC_PATTERN = /^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$/;

// ---------------------------------------------------------------------------------------------
// The stack's pool directory: a plain directory holding the stack's overlays, seeds and console
// logs, marked as ours by a small JSON file. Plain files (no libvirt storage pool) avoid libvirt's
// "pool has asynchronous jobs running" races when several volumes are created at once.

/** File that marks a directory as a cilium-lab pool directory. */
export const POOL_MARKER = ".cilium-lab-pool.json";

/** Content of {@link POOL_MARKER}. */
export interface PoolMarker {
  readonly project: string;
  readonly stack: string;
}

async function readMarker(dir: string): Promise<PoolMarker | undefined> {
  try {
    const parsed = JSON.parse(await fsp().readFile(pathMod().join(dir, POOL_MARKER), "utf8")) as Partial<PoolMarker>;
    return typeof parsed.project === "string" && typeof parsed.stack === "string"
      ? { project: parsed.project, stack: parsed.stack }
      : { project: "?", stack: "?" };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return undefined;
    }
    if (error instanceof SyntaxError) {
      return { project: "?", stack: "?" };
    }
    throw error;
  }
}

/**
 * The directory to use from `poolDir` or, with `pool`, the target path of that libvirt dir pool.
 */
export async function resolvePoolDir(
  uri: string,
  poolDir: string | undefined,
  pool: string | undefined,
): Promise<string> {
  if (poolDir !== undefined && poolDir !== "") {
    return pathMod().resolve(poolDir);
  }
  const result = await virsh(uri, ["pool-dumpxml", pool ?? ""]);
  if (result.code !== 0) {
    throw toolFailure(
      `looking up libvirt storage pool "${pool ?? ""}"`,
      result,
      `define the pool (virsh pool-define-as ${pool ?? "<pool>"} dir --target <dir>) or pass poolDir instead`,
      uri,
    );
  }
  const target = parsePoolTargetPath(result.stdout);
  if (target === undefined) {
    throw new Error(
      `libvirt storage pool "${pool ?? ""}" has no target path (not a dir pool). Fix: use a dir pool or pass poolDir.`,
    );
  }
  return target;
}

/** Refreshes a libvirt pool's volume list after we changed files behind its back (best effort). */
export async function refreshPool(uri: string, pool: string | undefined): Promise<void> {
  if (pool !== undefined && pool !== "") {
    await virsh(uri, ["pool-refresh", pool]);
  }
}

/**
 * Makes sure `dir` exists and is this stack's pool directory: creates it (0711, so qemu can reach
 * files it is given but not list them) with our marker, adopts an empty unmarked directory, and
 * refuses one that is not empty and unmarked or belongs to another stack. Also refuses paths whose
 * ancestors the qemu user cannot traverse (`/root` is 0700): qemu:///system runs guests as
 * libvirt-qemu, and the failure would otherwise surface as "Permission denied" at domain start.
 */
export async function ensurePoolDir(dir: string, stack: string): Promise<void> {
  const fs = fsp();
  const path = pathMod();
  const blocked = await unsearchableAncestor(dir);
  if (blocked !== undefined) {
    throw new Error(
      `pool directory ${dir} is not reachable by the qemu user: ${blocked.path} has mode ${blocked.mode} (no search permission for others). ` +
        `Fix: use a pool directory under /var/lib/libvirt (e.g. /var/lib/libvirt/cilium-lab/<stack>), or \`chmod o+x ${blocked.path}\`.`,
    );
  }
  await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  let created = false;
  try {
    await fs.mkdir(dir, { mode: 0o711 });
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw error;
    }
  }
  if (created) {
    await fs.chmod(dir, 0o711);
  }
  const marker = await readMarker(dir);
  if (marker !== undefined) {
    if (marker.project !== OWNER_PROJECT || marker.stack !== stack) {
      throw new Error(
        `pool directory ${dir} belongs to ${marker.project} stack "${marker.stack}" (${path.join(dir, POOL_MARKER)}), not to stack "${stack}". ` +
          "Fix: give each stack its own pool directory.",
      );
    }
    return;
  }
  const entries = (await fs.readdir(dir)).filter((e) => e !== POOL_MARKER);
  if (entries.length > 0) {
    throw new Error(
      `pool directory ${dir} exists, is not empty and was not created by cilium-lab (no ${POOL_MARKER}); refusing to put lab files among ${entries.length} foreign file(s). ` +
        "Fix: choose an empty or new directory for the stack.",
    );
  }
  const content = `${JSON.stringify({ project: OWNER_PROJECT, stack })}\n`;
  try {
    await fs.writeFile(path.join(dir, POOL_MARKER), content, { flag: "wx", mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw error;
    }
    // A parallel create wrote it first: check it is ours.
    await ensurePoolDir(dir, stack);
  }
}

/**
 * The first existing ancestor of `file` that other users cannot search (no o+x), e.g. `/root`
 * (0700). qemu:///system runs guests as libvirt-qemu, which must traverse every directory above a
 * disk, backing file or console log; libvirt relabels the files themselves, not their directories.
 */
export async function unsearchableAncestor(file: string): Promise<{ path: string; mode: string } | undefined> {
  const fs = fsp();
  const path = pathMod();
  for (let p = path.dirname(file); ; p = path.dirname(p)) {
    let mode: number | undefined;
    try {
      mode = (await fs.stat(p)).mode;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw error;
      }
    }
    if (mode !== undefined && (mode & 0o001) === 0) {
      return { path: p, mode: (mode & 0o777).toString(8).padStart(4, "0") };
    }
    if (p === path.dirname(p)) {
      return undefined;
    }
  }
}

/**
 * Runs `fn` with the pool directory in place. A parallel delete may remove the (then empty) directory
 * between our check and our write; retry when the directory vanished under us.
 */
export async function inPoolDir<T>(dir: string, stack: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await ensurePoolDir(dir, stack);
    try {
      return await fn();
    } catch (error) {
      if (attempt < 3 && !(await pathExists(dir))) {
        continue;
      }
      throw error;
    }
  }
}

/**
 * Removes the pool directory when only our marker is left in it (the last lab file was deleted).
 * With `keepDir` (the target of a libvirt storage pool, which must keep existing) only the marker goes.
 */
export async function removePoolDirIfEmpty(dir: string, stack: string, keepDir = false): Promise<void> {
  const fs = fsp();
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return;
    }
    throw error;
  }
  if (entries.length !== 1 || entries[0] !== POOL_MARKER) {
    return;
  }
  const marker = await readMarker(dir);
  if (marker?.project !== OWNER_PROJECT || marker.stack !== stack) {
    return;
  }
  try {
    await fs.unlink(pathMod().join(dir, POOL_MARKER));
    if (!keepDir) {
      await fs.rmdir(dir);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") {
      // A parallel create put a file in: give the marker back.
      await ensurePoolDir(dir, stack);
      return;
    }
    if (code !== "ENOENT") {
      throw error;
    }
  }
}

/** Bytes available to us on the filesystem holding `dir` (or its nearest existing ancestor). */
export async function freeBytes(dir: string): Promise<number> {
  const fs = fsp();
  const path = pathMod();
  for (let p = dir; ; p = path.dirname(p)) {
    try {
      const s = await fs.statfs(p);
      return s.bavail * s.bsize;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || p === path.dirname(p)) {
        throw error;
      }
    }
  }
}

/** `12.3 MiB`. */
export function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** Whether a tool's stderr says the disk is full. */
export function isNoSpace(stderr: string): boolean {
  return /No space left on device|ENOSPC|Disk quota exceeded/i.test(stderr);
}

/** The disk-full error: path, free vs needed, fix. */
export function noSpaceError(what: string, dir: string, free: number, needed: number, cause?: unknown): Error {
  return new Error(
    `${what} failed: not enough disk space in ${dir} (free ${mib(free)}, needed at least ${mib(needed)}). ` +
      "Nothing was left behind. Fix: free space on that filesystem, or use a pool directory on a larger one.",
    cause === undefined ? undefined : { cause },
  );
}
