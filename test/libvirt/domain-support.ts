/**
 * Helpers of the Domain tests that look into a libvirt pool as the unprivileged test user: only
 * through virsh (the pool directory is libvirtd's, root 0711), plus local scratch copies.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { sh, virsh } from "./support";

/** The pool's volume names, sorted, as libvirt lists them after a refresh (virtlogd's console logs included). */
export function poolVolumes(pool: string): string[] {
  virsh("pool-refresh", pool);
  return virsh("vol-list", pool)
    .split("\n")
    .slice(2)
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "")
    .sort();
}

/** A scratch directory of this test process (0700 under the OS temp dir), removed by the test's teardown. */
export function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-dom-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Whether the first 64 KiB of a qcow2 overlay volume hold `pattern` (a byte, e.g. `0xab`; `0`: never
 * written), read from a downloaded copy in `dir` detached from its backing file, which this user
 * cannot read (unallocated clusters then read as zeros).
 */
export function firstBlockIs(pool: string, dir: string, volume: string, pattern: string): boolean {
  const local = path.join(dir, `${volume}.${pattern}`);
  virsh("vol-download", "--pool", pool, volume, local);
  sh("qemu-img", ["rebase", "-u", "-b", "", local]);
  try {
    sh("qemu-io", ["-f", "qcow2", "-r", "-c", `read -P ${pattern} 0 64k`, local]);
    return true;
  } catch {
    return false;
  }
}
