/**
 * Helpers shared by the libvirt dynamic providers: input checks, the disk-space error, and the
 * legacy pool directories of labs made as root.
 * Functions only (serialized by value into each provider). The provider shape and the diff rule are
 * infra/provider.ts's.
 */
import { isUnknown, type Failure } from "../provider";
import { OWNER_PROJECT } from "./xml";
import { fsp, pathMod } from "./exec";
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
// Pool directories of labs made as root before pools (the migration path): a plain directory
// (/var/lib/libvirt/cilium-lab/<network>) holding a stack's overlays, seeds and console logs, marked
// as ours by a small JSON file. Nothing creates one any more; states that name one (`poolDir`) are
// still deleted as files, which needs the user who made them (root). New labs use libvirt pools
// (storage.ts, pool.ts).

/** File that marked a directory as a cilium-lab pool directory (before pools). */
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
 * Removes a legacy pool directory when only this stack's marker is left in it (the last lab file
 * was deleted). A file that appears meanwhile keeps the directory and gets the marker back.
 */
export async function removePoolDirIfEmpty(dir: string, stack: string): Promise<void> {
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
  const markerFile = pathMod().join(dir, POOL_MARKER);
  await fs.unlink(markerFile);
  try {
    await fs.rmdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") {
      await fs.writeFile(markerFile, `${JSON.stringify({ project: OWNER_PROJECT, stack })}\n`, { mode: 0o644 });
      return;
    }
    if (code !== "ENOENT") {
      throw error;
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
      "Nothing was left behind. Fix: free space on that filesystem of the libvirt host (virsh pool-info shows what is available).",
    cause === undefined ? undefined : { cause },
  );
}
