/**
 * Generates the README's configuration table and the config section of Pulumi.yaml from
 * infra/config/keys.ts, the single source of the keys (types, defaults, descriptions with their
 * accepted ranges):
 *   npx tsx scripts/dev/config-table.ts           prints the README table
 *   npx tsx scripts/dev/config-table.ts --write   rewrites both files in place
 * test/readme.test.ts and test/config/files.test.ts fail when either file differs from this output.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import YAML from "yaml";

import { describeKey, KEYS, KEY_NAMES } from "../../infra/config/keys";

const ROOT = path.join(__dirname, "..", "..");
const TABLE_RE = /(<!-- config-table:start[^>]*-->\n)[\s\S]*?(\n<!-- config-table:end -->)/;
const SECTION_RE = /^config:\n[\s\S]*$/m;

/** The Markdown table, one row per key, in declaration order. */
export function configTable(): string {
  const rows = KEY_NAMES.map((key) => {
    const spec = KEYS[key];
    const def = spec.default === "" ? '`""`' : `\`${String(spec.default)}\``;
    return `| \`${key}\` | ${spec.type} | ${def} | ${describeKey(key).replace(/\|/g, "\\|")} |`;
  });
  return ["| key | type | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

/** A YAML scalar on one line: plain when YAML allows it, else quoted. */
function scalar(value: string | number | boolean): string {
  return YAML.stringify(value, { lineWidth: 0 }).trimEnd();
}

/** Pulumi.yaml's `config:` section (the file's last), one entry per key, in declaration order. */
export function pulumiConfigSection(): string {
  const entries = KEY_NAMES.map((key) =>
    [
      `  ${key}:`,
      `    type: ${KEYS[key].type}`,
      `    description: ${scalar(describeKey(key))}`,
      `    default: ${scalar(KEYS[key].default)}`,
    ].join("\n"),
  );
  return ["config:", ...entries, ""].join("\n");
}

/** README.md's text with the table between its config-table markers regenerated. */
export function withConfigTable(readme: string): string {
  if (!TABLE_RE.test(readme)) {
    throw new Error("README.md lacks the <!-- config-table:start --> and <!-- config-table:end --> markers");
  }
  return readme.replace(TABLE_RE, (_, start: string, end: string) => `${start}${configTable()}${end}`);
}

/** Pulumi.yaml's text with its config section regenerated. */
export function withPulumiConfig(project: string): string {
  if (!SECTION_RE.test(project)) {
    throw new Error("Pulumi.yaml has no config: section at its end");
  }
  return project.replace(SECTION_RE, () => pulumiConfigSection());
}

if (require.main === module) {
  if (process.argv.includes("--write")) {
    for (const [file, regenerate] of [
      ["README.md", withConfigTable],
      ["Pulumi.yaml", withPulumiConfig],
    ] as const) {
      const at = path.join(ROOT, file);
      writeFileSync(at, regenerate(readFileSync(at, "utf8")));
    }
  } else {
    process.stdout.write(`${configTable()}\n`);
  }
}
