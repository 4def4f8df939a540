/**
 * The host's image cache: where images go (`<cache>/images/<sha256>.qcow2`, named by content), the
 * lock that lets parallel stacks share one download, and the fetch into the cache that checks the
 * hash and the qcow2 format before a file gets its name.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";

import { notInstalled, runTool, tail } from "../exec";
import type { BaseImageInputs, BaseImageOutputs } from "./inputs";
import { fetchResumable, type LineLogger } from "./sources";

/** The cache root: `$CILIUM_LAB_CACHE`, else `$XDG_CACHE_HOME/cilium-lab`, else `~/.cache/cilium-lab`. */
export function cacheRoot(env: Readonly<Record<string, string | undefined>>, home: string): string {
  if (env.CILIUM_LAB_CACHE) {
    return path.resolve(env.CILIUM_LAB_CACHE);
  }
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(home, ".cache"), "cilium-lab");
}

/** The cached image file for a hash. */
export function cachedImagePath(cacheDir: string, sha256: string): string {
  return path.join(cacheDir, "images", `${sha256}.qcow2`);
}

/** Holds `lockPath` (an exclusive file with our pid) while `fn` runs; waits for a live holder. */
async function withLock<T>(lockPath: string, fn: () => Promise<T>, waitMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fh = await fsp.open(lockPath, "wx", 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw err;
      }
      const holder = Number((await fsp.readFile(lockPath, "utf8").catch(() => "")).trim());
      let alive = false;
      if (Number.isInteger(holder) && holder > 0) {
        try {
          process.kill(holder, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        await fsp.rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Waited ${Math.round(waitMs / 1000)} s for ${lockPath} (held by pid ${holder}, another download of the same image). Fix: wait for it, or remove the lock file if that process is gone.`,
        );
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lockPath, { force: true });
  }
}

/** Checks the file is qcow2 without a backing file (`qemu-img info`); throws with the fix. */
export async function checkQcow2(file: string, url: string): Promise<void> {
  const result = await runTool("qemu-img", ["info", "--output=json", file]);
  if (result.code === 127) {
    throw notInstalled("qemu-img", "qemu-utils", result);
  }
  if (result.code !== 0) {
    throw new Error(
      `qemu-img info ${file} failed (exit ${result.code}: ${tail(result.stderr, 5)}); ${url} is not a usable disk image.`,
    );
  }
  const info = JSON.parse(result.stdout) as { format?: string; "backing-filename"?: string };
  if (info.format !== "qcow2") {
    throw new Error(
      `${url} is not a qcow2 image: qemu-img info says format=${info.format ?? "unknown"}; expected qcow2. ` +
        `Fix: convert it (qemu-img convert -O qcow2 <in> <out>) and set cilium-lab:imageUrl and cilium-lab:imageSha256 to the result.`,
    );
  }
  if (info["backing-filename"] !== undefined) {
    throw new Error(
      `${url} is a qcow2 overlay with its own backing file (${info["backing-filename"]}); a base image must stand alone. Fix: qemu-img convert -O qcow2 it into a standalone image.`,
    );
  }
}

/** The part of the outputs a create produces. */
export type EnsuredImage = Pick<BaseImageOutputs, "path" | "sha256" | "sizeBytes" | "downloadedBytes"> & {
  readonly serial: string;
  readonly source: string;
};

/** Fetches `url` into the cache as `<expected>.qcow2` unless it is there; checks hash and format. */
export async function fetchInto(
  inputs: Pick<BaseImageInputs, "image" | "cacheDir">,
  url: string,
  expected: string,
  custom: boolean,
  log: LineLogger,
): Promise<Pick<EnsuredImage, "path" | "sha256" | "sizeBytes" | "downloadedBytes">> {
  const final = cachedImagePath(inputs.cacheDir, expected);
  await fsp.mkdir(path.dirname(final), { recursive: true, mode: 0o755 });
  return withLock(`${final}.lock`, async () => {
    const existing = await fsp.stat(final).catch(() => undefined);
    if (existing) {
      log(`[cilium-lab] base image ${inputs.image}: cached at ${final} (0 bytes downloaded)`);
      return { path: final, sha256: expected, sizeBytes: existing.size, downloadedBytes: 0 };
    }
    const partial = `${final}.partial`;
    const hint = custom ? "Fix: check cilium-lab:imageUrl." : "";
    const got = await fetchResumable(url, partial, `base image ${inputs.image}`, log, hint);
    if (got.sha256 !== expected) {
      await fsp.rm(partial, { force: true });
      const fix = custom
        ? `Fix: if ${url} is the image you want, set cilium-lab:imageSha256 to its hash (sha256sum <file>); otherwise correct cilium-lab:imageUrl.`
        : `The file served differs from the one Ubuntu's signed SHA256SUMS lists; retry later or from another mirror.`;
      throw new Error(
        `sha256 mismatch for ${url}: got ${got.sha256}, expected ${expected}. The download was deleted. ${fix}`,
      );
    }
    try {
      await checkQcow2(partial, url);
    } catch (err) {
      await fsp.rm(partial, { force: true });
      throw err;
    }
    await fsp.chmod(partial, 0o644);
    await fsp.rename(partial, final);
    return { path: final, sha256: expected, sizeBytes: got.size, downloadedBytes: got.fetched };
  });
}
