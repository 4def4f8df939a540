/**
 * Making and deleting the files of the stack's pool directory (volumes and seeds): where they go,
 * the free-space check, cleanup after a failure, and removing the directory with the last file.
 */
import {
  Checker,
  absPath,
  freeBytes,
  inPoolDir,
  isNoSpace,
  noSpaceError,
  refreshPool,
  removePoolDirIfEmpty,
} from "./common";
import { pathMod, removeFile, toolFailure, type RunResult } from "./exec";

/** Where a pool file goes, as the volume and seed inputs give it: one of `poolDir` and `pool`. */
export interface PoolLocation {
  readonly uri: string;
  readonly poolDir?: string;
  readonly pool?: string;
  readonly stack: string;
}

/** Whether a libvirt pool (rather than a plain directory) holds the file: its directory must stay. */
function usesPool(where: Pick<PoolLocation, "pool">): boolean {
  return where.pool !== undefined && where.pool !== "";
}

/** Checks that exactly one of `poolDir` and `pool` is set, `poolDir` absolute; returns the inputs with it resolved. */
export function checkPoolLocation(c: Checker, news: Record<string, unknown>): Record<string, unknown> {
  const hasDir = news.poolDir !== undefined && news.poolDir !== "";
  if (hasDir === usesPool(news)) {
    c.fail("poolDir", "set exactly one of poolDir (a directory) and pool (a libvirt dir pool)");
  }
  if (hasDir) {
    c.field("poolDir", absPath);
    if (typeof news.poolDir === "string" && absPath(news.poolDir) === undefined) {
      return { ...news, poolDir: pathMod().resolve(news.poolDir) };
    }
  }
  return news;
}

/** A failed tool run that made a pool file, marked when the disk was full (for {@link buildInPool}). */
export function poolToolFailure(what: string, result: RunResult, fix: string): Error {
  return Object.assign(toolFailure(what, result, fix), { noSpace: isNoSpace(result.stderr) });
}

/**
 * Makes a file in the pool directory `dir`: checks that `needed` bytes are free, removes `files`
 * (at our names in our own directory they are leftovers of an interrupted run the state does not
 * know: replaced rather than trusted), runs `build`, then refreshes the libvirt pool. On failure
 * `files` are removed again, and the directory when nothing else is in it; a full disk is
 * {@link noSpaceError}, measured after cleaning up so the message shows what the user actually has.
 */
export async function buildInPool<T>(
  where: PoolLocation & { readonly dir: string },
  what: string,
  needed: number,
  files: readonly string[],
  build: () => Promise<T>,
): Promise<T> {
  const { dir, stack } = where;
  return inPoolDir(dir, stack, async () => {
    if ((await freeBytes(dir)) < needed) {
      await removePoolDirIfEmpty(dir, stack, usesPool(where));
      throw noSpaceError(what, dir, await freeBytes(dir), needed);
    }
    for (const file of files) {
      await removeFile(file);
    }
    let built: T;
    try {
      built = await build();
    } catch (error) {
      for (const file of files) {
        await removeFile(file);
      }
      await removePoolDirIfEmpty(dir, stack, usesPool(where));
      if ((error as { noSpace?: boolean }).noSpace === true || (error as NodeJS.ErrnoException).code === "ENOSPC") {
        throw noSpaceError(what, dir, await freeBytes(dir), needed, error);
      }
      throw error;
    }
    await refreshPool(where.uri, where.pool);
    return built;
  });
}

/**
 * Deletes a pool file (`id`, after `alsoRemove`), refreshes the libvirt pool, and removes the pool
 * directory once nothing else of the lab is in it.
 */
export async function deletePoolFile(
  id: string,
  props: Required<Pick<PoolLocation, "uri" | "stack">> & Pick<PoolLocation, "poolDir" | "pool">,
  alsoRemove: readonly string[] = [],
): Promise<void> {
  for (const file of [...alsoRemove, id]) {
    await removeFile(file);
  }
  await refreshPool(props.uri, props.pool);
  await removePoolDirIfEmpty(props.poolDir || pathMod().dirname(id), props.stack, usesPool(props));
}
