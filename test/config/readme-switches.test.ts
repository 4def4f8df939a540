/**
 * The README's section "The series' switches" tells users which `cilium-lab:<key> <value>` to set:
 * every such line in the README names a declared key with a value its own rule accepts, and the
 * section's eBPF recipe is a config the parser accepts as a whole.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import { FEATURE_KEYS } from "../../infra/cilium/features";
import { KEY_NAMES, parseLabConfig, type KeyName } from "../../infra/config";
import { ConfigReader } from "../../infra/config/reader";
import { REPO_ROOT } from "../support/stack-files";

const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");

/** The text of one `## ` section, without its heading. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) {
    throw new Error(`README.md has no section "## ${title}"`);
  }
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** Every `set cilium-lab:<key> <value>` of a text, in order; `a|b` (a choice of values) gives each. */
function settings(text: string): [string, string][] {
  return [...text.matchAll(/ set cilium-lab:(\w+) ([^\s`]+)/g)].flatMap((m) =>
    (m[2] ?? "").split("|").map((value): [string, string] => [m[1] ?? "", value]),
  );
}

test("every cilium-lab:<key> <value> the README sets is a declared key with a value its own rule accepts", (t) => {
  const all = settings(readme);
  t.true(all.length >= 10, `only ${all.length} settings found`);
  for (const [key, value] of all) {
    t.true((KEY_NAMES as string[]).includes(key), `unknown key ${key}`);
    const r = new ConfigReader({ [key]: value });
    r.read(key as KeyName);
    t.deepEqual(r.problems(), [], `cilium-lab:${key} ${value}`);
  }
});

test("the switches section turns on each switch and its eBPF recipe parses without a problem or warning", (t) => {
  const text = section("The series' switches");
  const keys = new Set(settings(text).map(([key]) => key));
  for (const key of [...Object.values(FEATURE_KEYS), "networkMtu"]) {
    if (key !== null) {
      t.true(keys.has(key), key);
    }
  }
  const recipe = /```sh\n((?:npm run lab -- config vxlan set [^\n]+\n)+)npm run lab -- up vxlan\n```/.exec(text);
  t.truthy(recipe, "the section lacks its eBPF recipe block");
  const raw = Object.fromEntries(settings(recipe?.[1] ?? ""));
  t.deepEqual(raw, { routingMode: "native", kubeProxyReplacement: "true", bpfMasquerade: "true", hostRouting: "bpf" });
  t.deepEqual(parseLabConfig(raw).warnings, []);
});
