/**
 * A stack's `cilium-lab:*` config read straight from `<stackConfigDir>/Pulumi.<stack>.yaml`, the
 * way the Pulumi CLI hands it to the program (strings; numbers and booleans as their JSON text),
 * without the CLI, a backend or a passphrase: for checks that must create nothing (doctor,
 * compare's preflight). Secret values cannot be read without the passphrase; they are left out and
 * named, so the program's defaults apply to them here.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";

import YAML from "yaml";

import { LabConfigError, parseLabConfig, PROJECT, type LabConfig } from "../../infra/config";

/** `stackConfigDir` of a project's `Pulumi.yaml`, or "" (stack files beside it). */
export function projectStackConfigDir(projectDir: string): string {
  const doc = YAML.parse(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as {
    stackConfigDir?: unknown;
  } | null;
  return typeof doc?.stackConfigDir === "string" ? doc.stackConfigDir : "";
}

/** A stack file's raw lab keys. */
export interface StackFileConfig {
  /** The file read, or that would be read. */
  readonly file: string;
  /** Whether it exists (a stack without a file gets every default). */
  readonly exists: boolean;
  /** `cilium-lab:*` keys without the prefix, as strings. */
  readonly raw: Record<string, string>;
  /** Keys with a `secure:` value, left out. */
  readonly secretKeys: readonly string[];
}

/** Reads `Pulumi.<stack>.yaml` of `projectDir`; a missing file is an empty config. */
export function readStackFile(projectDir: string, stack: string): StackFileConfig {
  const short = stack.split("/").pop() ?? stack;
  const file = path.join(projectDir, projectStackConfigDir(projectDir), `Pulumi.${short}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return { file, exists: false, raw: {}, secretKeys: [] };
    }
    throw err;
  }
  const doc = YAML.parse(text) as { config?: Record<string, unknown> } | null;
  const raw: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (!key.startsWith(`${PROJECT}:`)) {
      continue;
    }
    const name = key.slice(PROJECT.length + 1);
    if (value !== null && typeof value === "object" && "secure" in value) {
      secretKeys.push(name);
    } else {
      raw[name] = typeof value === "string" ? value : JSON.stringify(value);
    }
  }
  return { file, exists: true, raw, secretKeys };
}

/** The parsed config, or the parser's problem lines. */
export type StackConfigResult =
  | {
      readonly ok: true;
      readonly file: StackFileConfig;
      readonly config: LabConfig;
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly file: StackFileConfig; readonly problems: readonly string[] };

/** Reads and parses a stack's config with the program's own parser (no stack: every default). */
export function loadStackConfig(projectDir: string, stack: string | undefined): StackConfigResult {
  const file: StackFileConfig =
    stack === undefined ? { file: "", exists: false, raw: {}, secretKeys: [] } : readStackFile(projectDir, stack);
  try {
    const { config, warnings } = parseLabConfig(file.raw);
    return { ok: true, file, config, warnings };
  } catch (err) {
    if (err instanceof LabConfigError) {
      return { ok: false, file, problems: err.problems };
    }
    throw err;
  }
}
