/**
 * The test tiers are a rule, not only a naming habit. A test file's suffix says what it needs:
 * `*.vm.test.ts` boots a VM, `*.engine.test.ts` the real Pulumi engine or the test control plane,
 * `*.libvirt.test.ts` libvirtd and root, `*.netns.test.ts` root and network namespaces. A file
 * without one runs in `npm run test:fast` as an ordinary user with none of these, so nothing it
 * imports, directly or through other test modules, may be a support module that starts one.
 *
 * What is checked: the import graph of the test files (static and type-free `import`/`export ...
 * from`, `import()`, `require()` of relative paths, read with TypeScript's parser), followed
 * through the modules under test/. A module is heavy if it is listed below, or if it imports the
 * Automation API (`@pulumi/pulumi/automation`) for more than its types: that API drives the real
 * engine. What is not: a program a test starts as a child process (it is not imported).
 */
import test from "ava";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

import { REPO_ROOT } from "./support/host";

/** The support modules that start what a tier needs, with that tier and what they start. */
const HEAVY: Readonly<Record<string, string>> = {
  "test/support/control-plane.ts": "engine: starts etcd, kube-apiserver and kube-controller-manager",
  "test/support/control-plane-processes.ts": "engine: the control plane's processes",
  "test/k8s/support/plane.ts": "engine: one control plane per test file",
  "test/k8s/support/recovery-project.ts": "engine: a project run by the real engine",
  "test/engine/support.ts": "engine: the pulumi CLI and the Automation API",
  "test/compare/engine-project.ts": "engine: a project run by the real engine",
  "test/k3s/support/test-vm.ts": "vm: boots the test image under libvirt",
  "test/k3s/support/node-vm.ts": "vm: a booted test VM per suite",
  "test/verify/netns-lab.ts": "netns: network namespaces, veth and VXLAN",
  "test/compare/netns-experiment.ts": "netns: iperf3 between network namespaces",
  "test/libvirt/forwarding-netns.ts": "netns: rulesets loaded into network namespaces",
};

const TIERED = /\.(vm|engine|libvirt|netns)\.test\.ts$/;

/** Every file under `dir` (repository-relative), recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(rel) : [rel];
  });
}

/** The relative specifiers a module's `text` imports for more than types, and whether it imports the Automation API so. */
function importsOf(text: string): { relative: string[]; automation: boolean } {
  const source = ts.createSourceFile("module.ts", text, ts.ScriptTarget.Latest);
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) {
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier) {
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1) {
      const [arg] = node.arguments;
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if ((isImport || isRequire) && arg && ts.isStringLiteral(arg)) {
        specifiers.push(arg.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return {
    relative: specifiers.filter((s) => s.startsWith(".")),
    automation: specifiers.includes("@pulumi/pulumi/automation"),
  };
}

const imports = (file: string) => importsOf(readFileSync(path.join(REPO_ROOT, file), "utf8"));

/** The repository-relative file `specifier` (relative to `from`) names, if it is a module under test/. */
function resolve(from: string, specifier: string): string | undefined {
  const base = path.join(path.dirname(from), specifier);
  const found = [base, `${base}.ts`, path.join(base, "index.ts")].find(
    (c) => c.endsWith(".ts") && existsSync(path.join(REPO_ROOT, c)),
  );
  return found?.startsWith(`test${path.sep}`) ? found : undefined;
}

/** Why `file` is heavy, or undefined. */
function heavy(file: string): string | undefined {
  return HEAVY[file] ?? (imports(file).automation ? "engine: imports the Automation API" : undefined);
}

/** Every module under test/ that `testFile` imports, directly or not, with the chain that reaches it. */
function reachable(testFile: string): Map<string, string[]> {
  const chains = new Map<string, string[]>([[testFile, [testFile]]]);
  const queue = [testFile];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const specifier of imports(file).relative) {
      const next = resolve(file, specifier);
      if (next !== undefined && !chains.has(next)) {
        chains.set(next, [...(chains.get(file) ?? []), next]);
        queue.push(next);
      }
    }
  }
  return chains;
}

/** The import chains from `testFile` to heavy modules, as "a → b → c (why)". */
function heavyChains(testFile: string): string[] {
  return [...reachable(testFile).entries()].flatMap(([file, chain]) => {
    const why = file === testFile ? undefined : heavy(file);
    return why === undefined ? [] : [`${chain.join(" → ")} (${why})`];
  });
}

const testFiles = filesUnder("test").filter((f) => f.endsWith(".test.ts"));

test("every heavy support module the tier rule names exists, and a suffixed suite imports it", (t) => {
  const used = new Set(testFiles.filter((f) => TIERED.test(f)).flatMap((f) => [...reachable(f).keys()]));
  t.deepEqual(
    Object.keys(HEAVY).filter((f) => !existsSync(path.join(REPO_ROOT, f)) || !used.has(f)),
    [],
    "a renamed module is renamed here too; one no suite uses any more leaves the list",
  );
});

test("imports are read as TypeScript reads them: values count, types do not; the Automation API marks a module engine-tier", (t) => {
  const text = [
    'import type { Stack } from "@pulumi/pulumi/automation";',
    'import { a, type B } from "./values";',
    'import type { C } from "./types-only";',
    'export { d } from "./reexported";',
    'export type { E } from "./reexported-type";',
    'const f = require("./required");',
    'void import("./dynamic");',
    '// import { g } from "./commented";',
  ].join("\n");
  t.deepEqual(importsOf(text), {
    relative: ["./values", "./reexported", "./required", "./dynamic"],
    automation: false,
  });
  t.true(importsOf('import { LocalWorkspace } from "@pulumi/pulumi/automation";').automation);
});

test("no test file without a tier suffix imports, directly or through test modules, a support module that needs a VM, the engine, libvirt or network namespaces", (t) => {
  const fast = testFiles.filter((f) => !TIERED.test(f));
  t.true(fast.length > 20, `only ${fast.length} test files without a suffix found`);
  t.deepEqual(
    fast.flatMap(heavyChains),
    [],
    "give the test file the suffix of that tier, or take the light helper it needs from test/support/host.ts",
  );
});
