/**
 * The user's stack config file: where it is, its bytes before the run, and putting them back byte
 * for byte afterwards.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";

/** The stack config file path for `stack` in a project directory with an optional `stackConfigDir`. */
export function stackSettingsFile(projectDir: string, stack: string, stackConfigDir?: string): string {
  const short = stack.split("/").pop() ?? stack;
  return path.join(projectDir, stackConfigDir ?? "", `Pulumi.${short}.yaml`);
}

/** The config file's bytes, or `undefined` when it does not exist. */
export async function readSnapshot(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return undefined;
    }
    throw err;
  }
}

/** Puts the config file back as it was (removes it if it did not exist); checks the bytes. */
export async function restoreSnapshot(file: string, snapshot: Buffer | undefined): Promise<void> {
  if (snapshot === undefined) {
    await fs.rm(file, { force: true });
    return;
  }
  await fs.writeFile(file, snapshot);
  const back = await fs.readFile(file);
  if (!back.equals(snapshot)) {
    throw new Error(`${file} still differs from its original after writing it back`);
  }
}
