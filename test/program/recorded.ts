/**
 * What the program tests share: the whole program's registrations for a stack file with overrides
 * (record.ts in a child process: the program registers once per process), and the per-resource
 * input keys that differ between two such recordings.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";

import { REPO_ROOT } from "../support/stack-files";
// Type only: importing the script's code would run it.
import type { RecordedRegistration as Registration } from "./record";

export type { RecordedRegistration as Registration } from "./record";

/** infra/index.ts under mocks (preview) for `stack` with `key=value` overrides of its `cilium-lab:` keys. */
export function record(stack: string, ...overrides: string[]): Registration[] {
  const out = execFileSync(process.execPath, ["--import=tsx", path.join(__dirname, "record.ts"), stack, ...overrides], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out) as Registration[];
}

/** `<type> <name>`: a registration's identity across recordings. */
export const key = (r: Registration): string => `${r.type} ${r.name}`;

/** Per resource present in both, the input keys whose values differ between `a` and `b` (sorted). */
export function changedInputs(a: readonly Registration[], b: readonly Registration[]): Record<string, string[]> {
  const other = new Map(b.map((r) => [key(r), r]));
  const changed: Record<string, string[]> = {};
  for (const r of a) {
    const s = other.get(key(r));
    if (!s) {
      continue;
    }
    const fields = [...new Set([...Object.keys(r.inputs), ...Object.keys(s.inputs)])].filter(
      (f) => JSON.stringify(r.inputs[f]) !== JSON.stringify(s.inputs[f]),
    );
    if (fields.length > 0) {
      changed[key(r)] = fields.sort();
    }
  }
  return changed;
}
