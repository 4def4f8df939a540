import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import { configTable, withConfigTable } from "../scripts/dev/config-table";
import { REPO_ROOT } from "./support/stack-files";

const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");

test("the README's configuration table is the one generated from the key table", (t) => {
  const m = /<!-- config-table:start[^>]*-->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  t.truthy(m, "README.md lacks the config-table markers");
  t.is(m?.[1], configTable(), "regenerate it with: npx tsx scripts/dev/config-table.ts --write");
  t.is(withConfigTable(readme), readme);
});

test("every npm script the README tells users to run exists in package.json", (t) => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  const named = [...readme.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1] ?? "");
  t.true(named.length > 0);
  for (const script of new Set(named)) {
    t.truthy(pkg.scripts[script], `npm run ${script}`);
  }
});
