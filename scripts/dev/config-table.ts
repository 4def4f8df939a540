/**
 * Prints the README's configuration table from infra/config/keys.ts, the single source of the keys:
 *   npx tsx scripts/dev/config-table.ts
 * test/readme.test.ts fails when README.md's table differs from this output.
 */
import { KEYS, KEY_NAMES } from "../../infra/config/keys";

/** The Markdown table, one row per key, in declaration order. */
export function configTable(): string {
  const rows = KEY_NAMES.map((key) => {
    const spec = KEYS[key];
    const def = spec.default === "" ? '`""`' : `\`${String(spec.default)}\``;
    return `| \`${key}\` | ${spec.type} | ${def} | ${spec.description.replace(/\|/g, "\\|")} |`;
  });
  return ["| key | type | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

if (require.main === module) {
  process.stdout.write(`${configTable()}\n`);
}
