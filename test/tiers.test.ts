/**
 * The test tiers are a rule, not only a naming habit. A test file's suffix says what it needs:
 * `*.vm.test.ts` boots a VM, `*.engine.test.ts` the real Pulumi engine or the test control plane,
 * `*.libvirt.test.ts` libvirtd, `*.netns.test.ts` root and network namespaces. A file
 * without one runs in `npm run test:fast` as an ordinary user with none of these, so nothing it
 * imports, directly or through other test modules, may be a support module that starts one.
 * In CI the libvirt and VM suites run as an unprivileged user in group libvirt, unless a
 * `// test-runs-as: root` header keeps one with root (scripts/run-tests-lib.mjs, tested below), and
 * the suites with a `// test-needs: k8s-toolchain` header run last, once that toolchain is built.
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

import {
  avaPrefix,
  countTap,
  fileSeconds,
  mergedSummary,
  needsK8sToolchain,
  newTally,
  parseEnv0,
  runsAs,
  splitArgs,
  splitByUser,
  splitLate,
  tapFile,
  userEnv,
  type Tally,
  TIERED,
} from "../scripts/run-tests-lib.mjs";
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

test("CI's test user runs the libvirt and VM suites; a `// test-runs-as:` line in the leading comments moves a file either way", (t) => {
  const texts: Record<string, string> = {
    "test/a/pool.libvirt.test.ts": "// Pools through virsh.\nimport test from 'ava';\n",
    "test/a/boot.vm.test.ts": "\n// Boots a VM.\n",
    "test/a/bridge.vm.test.ts": "// test-runs-as: root\n// creates a bridge\nimport test from 'ava';\n",
    "test/a/sshd.libvirt.test.ts": "// A loopback sshd.\n//   test-runs-as: root\n// test-runs-as: root\n",
    "test/a/late.libvirt.test.ts": "import test from 'ava';\n// test-runs-as: root\n",
    "test/a/nodes.engine.test.ts": "// test-runs-as: user (the nodes lifecycle)\nimport test from 'ava';\n",
    "test/a/rootish.vm.test.ts": "// test-runs-as: rooted\n",
    "test/a/plane.engine.test.ts": "// The control plane.\n",
    "test/a/ns.netns.test.ts": "",
    "test/a/pure.test.ts": "// test-runs-as: nobody\n",
  };
  t.deepEqual(
    splitByUser(Object.keys(texts), (f) => texts[f] ?? ""),
    {
      user: [
        "test/a/pool.libvirt.test.ts",
        "test/a/boot.vm.test.ts",
        "test/a/late.libvirt.test.ts",
        "test/a/nodes.engine.test.ts",
        "test/a/rootish.vm.test.ts",
      ],
      root: [
        "test/a/bridge.vm.test.ts",
        "test/a/sshd.libvirt.test.ts",
        "test/a/plane.engine.test.ts",
        "test/a/ns.netns.test.ts",
        "test/a/pure.test.ts",
      ],
    },
  );
});

/** The test files with a `// <name>` line that `reads` (run-tests-lib's reader of that header) does not take. */
function misplacedHeaders(name: string, reads: (text: string) => boolean): string[] {
  const line = new RegExp(`^\\s*//\\s*${name}`, "m");
  return testFiles.filter((f) => {
    const text = readFileSync(path.join(REPO_ROOT, f), "utf8");
    return line.test(text) && !reads(text);
  });
}

test("every `test-runs-as` line in the repository's tests is a header run-tests.mjs reads (root or user, in the leading comments)", (t) => {
  t.deepEqual(
    misplacedHeaders("test-runs-as", (text) => runsAs(text) !== undefined),
    [],
    "write it as `// test-runs-as: root` (or user) above the first import",
  );
});

test("the suites with a `// test-needs: k8s-toolchain` header run last, apart from the rest of root's; a misplaced or other value does not count", (t) => {
  const texts: Record<string, string> = {
    "test/a/plane.engine.test.ts": "// test-needs: k8s-toolchain (etcd)\n/**\n * The control plane.\n */\n",
    "test/a/pure.test.ts": "import test from 'ava';\n// test-needs: k8s-toolchain\n",
    "test/a/ns.netns.test.ts": "// test-runs-as: root\n// test-needs: k8s-toolchain\nimport test from 'ava';\n",
    "test/a/other.engine.test.ts": "// test-needs: k8s-toolchains\n",
  };
  t.deepEqual(
    splitLate(Object.keys(texts), (f) => texts[f] ?? ""),
    {
      early: ["test/a/pure.test.ts", "test/a/other.engine.test.ts"],
      late: ["test/a/plane.engine.test.ts", "test/a/ns.netns.test.ts"],
    },
  );
});

test("every suite that reaches the test control plane through its imports says `// test-needs: k8s-toolchain`, so CI runs it after that build", (t) => {
  // Not control-plane-processes.ts: its process helpers (alive, sleep) need no binary.
  const plane = ["test/support/control-plane.ts", "test/k8s/support/plane.ts"];
  const reaching = testFiles.filter((f) => plane.some((m) => reachable(f).has(m)));
  t.true(reaching.length >= 7, `only ${reaching.join(", ")} reach the control plane`);
  const missing = reaching.filter((f) => !needsK8sToolchain(readFileSync(path.join(REPO_ROOT, f), "utf8")));
  t.deepEqual(missing, [], "add `// test-needs: k8s-toolchain (what it needs)` as the file's first line");
  t.deepEqual(
    misplacedHeaders("test-needs", needsK8sToolchain),
    [],
    "write it as `// test-needs: k8s-toolchain` above the first import",
  );
});

test("the k8s toolchain's exports are read back from `env -0`: values with `=` and newlines intact", (t) => {
  t.deepEqual(parseEnv0("CILIUM_LAB_ETCD=/c/bin/etcd\0PS1=a=b\nc\0\0junk\0"), {
    CILIUM_LAB_ETCD: "/c/bin/etcd",
    PS1: "a=b\nc",
  });
});

test("the test user's run gets the toolchain, image and Pulumi's offline switches, its own HOME, TMPDIR and lab cache, and none of root's Pulumi state or lab cache", (t) => {
  const env = {
    PATH: "/var/cache/cilium-lab/toolchain/pulumi/bin:/usr/bin:/bin",
    HOME: "/root",
    USER: "root",
    TMPDIR: "/root/tmp",
    TEST_IMAGE: "/var/cache/cilium-lab/test-image/k/debian-test.qcow2",
    TEST_IMAGE_SHA256: "eef5",
    CILIUM_LAB_CACHE: "/var/cache/cilium-lab",
    CILIUM_LAB_TEST_USER: "clab",
    PULUMI_HOME: "/root/.cache/cilium-lab/toolchain/pulumi/pulumi-home",
    PULUMI_BACKEND_URL: "file:///work/main/.pulumi-state",
    PULUMI_CONFIG_PASSPHRASE_FILE: "/work/main/.pulumi-state/passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    SSH_AUTH_SOCK: "/tmp/ssh-root/agent.1",
  };
  t.deepEqual(userEnv(env, { user: "clab", home: "/home/clab", tmpdir: "/tmp/cilium-lab-tests-clab-x" }), {
    CILIUM_LAB_TEST_USER: "clab",
    PATH: "/var/cache/cilium-lab/toolchain/pulumi/bin:/usr/bin:/bin",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    TEST_IMAGE: "/var/cache/cilium-lab/test-image/k/debian-test.qcow2",
    TEST_IMAGE_SHA256: "eef5",
    HOME: "/home/clab",
    USER: "clab",
    LOGNAME: "clab",
    TMPDIR: "/tmp/cilium-lab-tests-clab-x",
    CILIUM_LAB_CACHE: "/tmp/cilium-lab-tests-clab-x/cache",
  });
});

test("the two-run mode tells the files and folders ava is given from its options, an option's value included", (t) => {
  const exists = (p: string) => ["test", "test/libvirt", "test/tiers.test.ts"].includes(p);
  t.deepEqual(
    splitArgs(["test/libvirt", "--match", "test", "-T", "5m", "--serial", "test/tiers.test.ts", "nope"], exists),
    {
      paths: ["test/libvirt", "test/tiers.test.ts"],
      options: ["--match", "test", "-T", "5m", "--serial", "nope"],
    },
  );
});

/** A tally after feeding ava's TAP `lines`. */
function tallyOf(lines: string[]): Tally {
  const tally = newTally();
  lines.forEach((l) => countTap(tally, l));
  return tally;
}

test("the two runs (test user, then root) end in ONE merged `N passed, N failed` line; either failing fails the whole", (t) => {
  const user = tallyOf(["TAP version 13", "ok 1 - a", "ok 2 - b", "", "1..2", "# tests 2", "# pass 2", "# fail 0"]);
  const root = tallyOf(["TAP version 13", "not ok 1 - c", "ok 2 - d", "ok 3 - e", "1..3", "# pass 2", "# fail 1"]);
  t.deepEqual(user, { pass: 2, fail: 0, skip: 0, todo: 0, sawPlan: true });
  t.deepEqual(mergedSummary([{ tally: user, code: 0 }]), { line: "2 passed, 0 failed", exitCode: 0 });
  t.deepEqual(
    mergedSummary([
      { tally: user, code: 0 },
      { tally: root, code: 1 },
    ]),
    { line: "4 passed, 1 failed", exitCode: 1 },
  );
  const crashed = tallyOf(["TAP version 13", "ok 1 - a"]);
  t.deepEqual(
    mergedSummary([
      { tally: crashed, code: 1 },
      { tally: user, code: 0 },
    ]),
    { line: "2 passed, 1 failed", exitCode: 1 },
  );
  const skipped = tallyOf(["1..3", "# pass 1", "# skip 1", "# todo 1"]);
  t.deepEqual(
    mergedSummary([
      { tally: user, code: 0 },
      { tally: skipped, code: 0 },
    ]),
    {
      line: "3 passed, 0 failed, 2 skipped",
      exitCode: 1,
    },
  );
  t.deepEqual(mergedSummary([{ tally: user, code: null, signal: "SIGKILL" }]).exitCode, 1);
});

test("each file's time is read from ava's TAP: a file runs from the previous file's last line to its own last line, slowest first", (t) => {
  const files = ["test/tiers.test.ts", "test/k3s/node-scripts.vm.test.ts", "test/k3s/node.test.ts"];
  t.deepEqual(files.map(avaPrefix), ["tiers", "k3s › node-scripts.vm", "k3s › node"]);
  t.is(tapFile("# k3s › node-scripts.vm › before hook", files), "test/k3s/node-scripts.vm.test.ts");
  t.is(tapFile("not ok 3 - k3s › node › a › b", files), "test/k3s/node.test.ts");
  t.is(tapFile("ok 12 - tiers › x", files), "test/tiers.test.ts");
  t.is(tapFile("ok 1 - k3s › nodes › x", files), undefined);
  t.is(tapFile("# tests 12", files), undefined);
  const events = [
    { file: "test/k3s/node.test.ts", at: 2_000 },
    { file: "test/k3s/node.test.ts", at: 3_400 },
    { file: "test/k3s/node-scripts.vm.test.ts", at: 63_400 },
    { file: "test/tiers.test.ts", at: 64_000 },
  ];
  t.deepEqual(fileSeconds(events, 1_000), [
    { file: "test/k3s/node-scripts.vm.test.ts", seconds: 60 },
    { file: "test/k3s/node.test.ts", seconds: 2 },
    { file: "test/tiers.test.ts", seconds: 1 },
  ]);
});
