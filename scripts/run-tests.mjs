#!/usr/bin/env node
// Runs the ava suite with its TAP reporter and ends with the plain summary line CI reads:
// `N passed, N failed` (plus `, N skipped` when any test was skipped or left as todo, which also
// fails the run: a skipped test must not pass as done). Extra arguments go to ava, e.g.
// `npm test -- test/config`.
//
// `--fast` (npm run test:fast) runs only the suites without a tier suffix: a file named
// `*.vm.test.ts` boots a VM, `*.engine.test.ts` needs the real Pulumi engine or the test control
// plane, `*.libvirt.test.ts` libvirtd and root, `*.netns.test.ts` root and network namespaces; every
// other test file runs as an ordinary user with none of these, and shares nothing with the others,
// so they run one file per core (the tiered suites share libvirt, ports and the lock: one at a time,
// the ava config). Folders or files after `--fast` narrow it (default: test/).
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A test file that needs a VM, the engine, libvirt or network namespaces (by its name). */
const TIERED = /\.(vm|engine|libvirt|netns)\.test\.ts$/;

/** The test files under `roots` (files or folders) that need none of those, sorted. */
function fastFiles(roots) {
  const found = [];
  const walk = (p) => {
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p)) {
        if (e !== "node_modules") walk(join(p, e));
      }
    } else if (p.endsWith(".test.ts") && !TIERED.test(p)) {
      found.push(p);
    }
  };
  roots.forEach(walk);
  return found.sort();
}

const argv = process.argv.slice(2);
const fast = argv[0] === "--fast";
const files = fast ? fastFiles(argv.length > 1 ? argv.slice(1) : ["test"]) : [];
const avaArgs = fast ? ["--concurrency", String(availableParallelism()), ...files] : argv;
if (fast && files.length === 0) {
  process.stderr.write(`run-tests: --fast found no test file without a tier suffix under ${argv.slice(1).join(" ")}\n`);
  process.exit(1);
}
const ava = spawn(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--tap", ...avaArgs], {
  stdio: ["ignore", "pipe", "inherit"],
});
const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
let sawPlan = false;
createInterface({ input: ava.stdout }).on("line", (line) => {
  process.stdout.write(`${line}\n`);
  const m = /^# (pass|fail|skip|todo) (\d+)$/.exec(line);
  if (m) {
    counts[m[1]] = Number(m[2]);
  }
  if (/^1\.\.\d+$/.test(line)) {
    sawPlan = true;
  }
});
ava.on("close", (code, signal) => {
  const skipped = counts.skip + counts.todo;
  const failed = counts.fail + (sawPlan ? 0 : 1);
  process.stdout.write(`${counts.pass} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
  process.exit(code !== 0 || signal || skipped > 0 || !sawPlan ? 1 : 0);
});
