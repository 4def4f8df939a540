#!/usr/bin/env node
// Runs the ava suite with its TAP reporter and ends with the plain summary line CI reads:
// `N passed, N failed` (plus `, N skipped` when any test was skipped or left as todo, which also
// fails the run: a skipped test must not pass as done). Extra arguments go to ava, e.g.
// `npm test -- test/config`.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const ava = spawn(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--tap", ...process.argv.slice(2)], {
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
