/**
 * Deleting the files of a legacy pool directory: the migration path of labs made as root before
 * pools. A Volume or CloudInitDisk state written then names its file by path (`poolDir` set); the
 * new providers delete such a state's file with `fs`, which works for the user who made it (root),
 * and remove the directory with its last lab file. New labs never get here: their volumes live in
 * libvirt pools (storage.ts).
 */
import { removePoolDirIfEmpty } from "./common";
import { pathMod, removeFile, virsh } from "./exec";

/** Where a legacy pool file was: its directory (`poolDir`), or the libvirt dir pool it was put in (`pool`). */
export interface LegacyPoolLocation {
  readonly uri: string;
  readonly stack: string;
  readonly poolDir?: string;
  readonly pool?: string;
}

/**
 * Deletes a legacy pool file (`id`, after `alsoRemove`), refreshes the libvirt pool it was in (if
 * any), and removes the pool directory once nothing else of the lab is in it (a libvirt pool's
 * directory stays: the pool needs it).
 */
export async function deletePoolFile(
  id: string,
  props: LegacyPoolLocation,
  alsoRemove: readonly string[] = [],
): Promise<void> {
  for (const file of [...alsoRemove, id]) {
    await removeFile(file);
  }
  if (props.pool !== undefined && props.pool !== "") {
    await virsh(props.uri, ["pool-refresh", props.pool]);
    return;
  }
  await removePoolDirIfEmpty(props.poolDir || pathMod().dirname(id), props.stack);
}
