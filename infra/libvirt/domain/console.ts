/**
 * The serial console log of a {@link Domain}: virtlogd writes it (as root) into the stack's storage
 * pool, so the lab's own processes read and remove it only through libvirt (`pool-refresh` makes the
 * file a volume of the dir pool, then `vol-download` / `vol-delete`). That works as an unprivileged
 * user in group libvirt and against a remote host alike. States written before pools have no `pool`:
 * their log is a plain file of the (root-only) pool directory, handled with `fs` as before.
 */
import { removePoolDirIfEmpty } from "../common";
import { fsp, pathMod, privateTempDir, removeFile } from "../exec";
import { deleteVolume, downloadVolume, refreshPool } from "../storage";
import { CONSOLE_TAIL_LINES } from "./boot-errors";

/** Where a console log lives: its path, and the pool holding it ("" or absent: a plain file). */
export interface ConsoleLocation {
  readonly uri: string;
  readonly consoleLogPath: string;
  readonly pool?: string;
}

function inPool(where: ConsoleLocation): where is ConsoleLocation & { pool: string } {
  return where.pool !== undefined && where.pool !== "";
}

/** The last `lines` non-empty lines of console text, escape sequences and control characters removed. */
export function cleanConsole(text: string, lines = CONSOLE_TAIL_LINES): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-B]|\r/g, "")
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-lines)
      .map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l))
      .join("\n")
  );
}

/** The whole console log as text; "" when there is none (yet). Never throws: it only feeds error messages. */
export async function readConsole(where: ConsoleLocation): Promise<string> {
  const fs = fsp();
  if (!inPool(where)) {
    return fs.readFile(where.consoleLogPath, "utf8").catch(() => "");
  }
  let tmp: string | undefined;
  try {
    await refreshPool(where.uri, where.pool);
    tmp = await privateTempDir("cilium-lab-console-");
    const local = pathMod().join(tmp, "console.log");
    await downloadVolume(where.uri, where.pool, pathMod().basename(where.consoleLogPath), local);
    return await fs.readFile(local, "utf8");
  } catch {
    return "";
  } finally {
    if (tmp !== undefined) {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }
}

/** The last {@link CONSOLE_TAIL_LINES} lines of the console log, cleaned; "" when absent. */
export async function consoleTail(where: ConsoleLocation, lines = CONSOLE_TAIL_LINES): Promise<string> {
  return cleanConsole(await readConsole(where), lines);
}

/**
 * Removes the console log (a missing one is fine). A legacy pool directory is removed with its last
 * file, as before pools; a pool is the StoragePool's to remove.
 */
export async function removeConsole(where: ConsoleLocation & { readonly stack: string }): Promise<void> {
  if (!inPool(where)) {
    await removeFile(where.consoleLogPath);
    await removePoolDirIfEmpty(pathMod().dirname(where.consoleLogPath), where.stack);
    return;
  }
  // virtlogd made the file behind libvirt's back: refresh so libvirt knows it as a volume.
  await refreshPool(where.uri, where.pool);
  await deleteVolume(where.uri, where.pool, pathMod().basename(where.consoleLogPath));
}
