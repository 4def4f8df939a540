/** Reads the committed project and stack files the way the Pulumi CLI sees them. */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import YAML from "yaml";

/** The repository root. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** `Pulumi.yaml`, parsed. */
export function readProjectFile(): {
  config: Record<string, { type: string; description: string; default: unknown }>;
} & Record<string, unknown> {
  return YAML.parse(readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as ReturnType<typeof readProjectFile>;
}

/**
 * The `cilium-lab:*` keys of `stacks/Pulumi.<stack>.yaml` without the prefix, values as strings the
 * way the Node SDK hands them to the program.
 */
export function readStackConfig(stack: string): Record<string, string> {
  const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc.config)) {
    if (key.startsWith("cilium-lab:")) {
      raw[key.slice("cilium-lab:".length)] = typeof value === "string" ? value : JSON.stringify(value);
    }
  }
  return raw;
}
