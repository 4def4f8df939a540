/**
 * Read-only host commands run synchronously, for the checks that must finish before any resource is
 * declared (the preflight, the forwarding check): C locale, a time bound, stdin closed.
 */
import { execFileSync } from "node:child_process";

/** A command's outcome; never thrown. `missing`: the binary was not found. */
export interface SyncResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly missing: boolean;
}

/** Runs `file args` with the given bounds; a failure is a result, not an exception. */
export function runSync(
  file: string,
  args: readonly string[],
  bounds: { readonly timeoutMs: number; readonly maxBufferBytes: number },
): SyncResult {
  try {
    const stdout = execFileSync(file, args, {
      encoding: "utf8",
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
      timeout: bounds.timeoutMs,
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: bounds.maxBufferBytes,
    });
    return { ok: true, stdout, stderr: "", missing: false };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    return { ok: false, stdout: e.stdout ?? "", stderr: (e.stderr ?? e.message).trim(), missing: e.code === "ENOENT" };
  }
}
