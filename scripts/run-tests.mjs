#!/usr/bin/env node
// Runs the ava suite with its TAP reporter and ends with the plain summary line CI reads:
// `N passed, N failed` (plus `, N skipped` when any test was skipped or left as todo, which also
// fails the run: a skipped test must not pass as done). Extra arguments go to ava, e.g.
// `npm test -- test/config`.
//
// `--fast` (npm run test:fast) runs only the suites without a tier suffix: a file named
// `*.vm.test.ts` boots a VM, `*.engine.test.ts` needs the real Pulumi engine or the test control
// plane, `*.libvirt.test.ts` libvirtd, `*.netns.test.ts` root and network namespaces; every
// other test file runs as an ordinary user with none of these, and shares nothing with the others,
// so they run one file per core (the tiered suites share libvirt, ports and the lock: one at a time,
// the ava config). Folders or files after `--fast` narrow it (default: test/).
//
// As the unprivileged test user (CI): when run as root with CILIUM_LAB_TEST_USER set (CI sets
// `clab`, a user in group libvirt made by .ci/host-setup.sh), the suites run in two ava runs, one
// after the other. First the user tier, as that user through `runuser -u <user> -- env -i ...`:
// the `*.libvirt.test.ts` and `*.vm.test.ts` files without a `// test-runs-as: root` line in their
// leading comments, and any file with `// test-runs-as: user` there. The user gets PATH (the
// toolchain), TEST_IMAGE*, CILIUM_LAB_* (but its own CILIUM_LAB_CACHE, in its TMPDIR) and Pulumi's offline switches, its own HOME, and a fresh
// private TMPDIR under /tmp, removed afterwards; not root's PULUMI_HOME, backend or passphrase.
// Then everything else as root, as before. Both TAP streams are printed as they come, and the last
// line is ONE merged `N passed, N failed`; the exit code is nonzero if either run failed. Arguments
// that name existing files or folders select the files (default test/); every other argument goes
// to both runs (so a `--match` that only one group's tests match fails the other run: name the file
// too). Without the variable, or not as root: one run as the current user, as always.
//
// The root files with a `// test-needs: k8s-toolchain` header (the test control plane, the kubernetes
// plugin) run last, in a third ava run. If CILIUM_LAB_ETCD is unset then, run-tests first runs
// `bash scripts/k8s-toolchain.sh` and takes its exports: CI starts that build in the background
// before the tests (cold it takes the longest of all, under nice 19 on the cores the other suites
// leave idle), and the script's lock makes this call wait for it, then reuse what it built.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";

import {
  TIERED,
  countTap,
  fileSeconds,
  mergedSummary,
  newTally,
  parseEnv0,
  splitArgs,
  splitByUser,
  splitLate,
  tapFile,
  testFiles,
  userEnv,
} from "./run-tests-lib.mjs";

const AVA = "node_modules/ava/entrypoints/cli.mjs";

/**
 * Runs ava (`command args`), streams its TAP output to stdout, and resolves with its tally and exit.
 * With `files` (a run of one file at a time), it then prints the seconds each file took.
 */
function runAva(command, args, files = []) {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    const tally = newTally();
    const events = [];
    createInterface({ input: child.stdout }).on("line", (line) => {
      process.stdout.write(`${line}\n`);
      countTap(tally, line);
      const file = files.length > 0 ? tapFile(line, files) : undefined;
      if (file !== undefined) {
        events.push({ file, at: Date.now() });
      }
    });
    child.on("close", (code, signal) => {
      if (events.length > 0) {
        const times = fileSeconds(events, start).map(({ file, seconds }) => `${seconds} ${file}`);
        process.stdout.write(`# run-tests: seconds per file, slowest first: ${times.join(", ")}\n`);
      }
      resolve({ tally, code, signal });
    });
  });
}

/** Prints the merged summary line and exits with its code. */
function finish(runs) {
  const { line, exitCode } = mergedSummary(runs);
  process.stdout.write(`${line}\n`);
  process.exit(exitCode);
}

function fail(message) {
  process.stderr.write(`run-tests: ${message}\n`);
  process.exit(1);
}

/** The test user's account: uid, gid and home (getent passwd), or exits with the fix. */
function account(user) {
  const r = spawnSync("getent", ["passwd", user], { encoding: "utf8" });
  const fields = r.stdout.trim().split(":");
  if (r.status !== 0 || fields.length < 7) {
    fail(
      `CILIUM_LAB_TEST_USER=${user}: no such user. Fix: sudo bash .ci/host-setup.sh (creates it), or unset CILIUM_LAB_TEST_USER to run everything as root.`,
    );
  }
  return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] };
}

/**
 * The exports of `bash scripts/k8s-toolchain.sh` (waiting on its lock while CI's background build of
 * it runs) merged into process.env; false, with the reason on stderr, when the script fails.
 */
function takeK8sToolchain() {
  const t0 = Date.now();
  process.stdout.write(
    "# run-tests: scripts/k8s-toolchain.sh for the suites that need it (it waits while a build holds its lock)\n",
  );
  const script = 'set -euo pipefail; exports="$(bash scripts/k8s-toolchain.sh)"; eval "$exports"; env -0';
  const r = spawnSync("bash", ["-c", script], { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    process.stderr.write(
      `run-tests: scripts/k8s-toolchain.sh failed (exit ${r.status ?? r.signal}, above): the suites that need the test control plane count as one failure. Fix: run it alone and read its message.\n`,
    );
    return false;
  }
  Object.assign(process.env, parseEnv0(r.stdout.toString("utf8")));
  process.stdout.write(`# run-tests: k8s toolchain ready after ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return true;
}

/** The two-run mode: the user tier as `user`, then the rest as root (what needs the k8s toolchain last). */
async function asTestUser(user, argv) {
  const { paths, options } = splitArgs(argv, existsSync);
  const files = testFiles(paths.length > 0 ? paths : ["test"]);
  const read = (f) => readFileSync(f, "utf8");
  const groups = splitByUser(files, read);
  const { early, late } = splitLate(groups.root, read);
  const runs = [];
  if (groups.user.length > 0) {
    const { uid, gid, home } = account(user);
    const tmpdir = mkdtempSync(`/tmp/cilium-lab-tests-${user}-`);
    chownSync(tmpdir, uid, gid);
    const env = Object.entries(userEnv(process.env, { user, home, tmpdir })).map(([k, v]) => `${k}=${v}`);
    process.stdout.write(`# run-tests: ${groups.user.length} files as ${user} (uid ${uid}, TMPDIR ${tmpdir})\n`);
    // ava ends every run with mkdirSync(node_modules/.cache/ava, { recursive: true }) (lib/api.js
    // _createCacheDir, even when CI makes it skip writing there): in a fresh checkout the user may not
    // create it, and the run would end in an internal EACCES error. Root makes it (0755, root's):
    // the user's mkdir then finds it; ava's list of failing files is not written there under CI,
    // and elsewhere its failed write is caught (lib/scheduler.js storeFailedTestFiles).
    mkdirSync("node_modules/.cache/ava", { recursive: true, mode: 0o755 });
    try {
      const args = ["-u", user, "--", "env", "-i", ...env, process.execPath, AVA, "--tap", ...options];
      runs.push(await runAva("runuser", [...args, ...groups.user], groups.user));
    } finally {
      rmSync(tmpdir, { recursive: true, force: true });
    }
  }
  if (early.length > 0) {
    process.stdout.write(`# run-tests: ${early.length} files as root\n`);
    runs.push(await runAva(process.execPath, [AVA, "--tap", ...options, ...early], early));
  }
  if (late.length > 0) {
    const ready = process.env.CILIUM_LAB_ETCD !== undefined || takeK8sToolchain();
    if (ready) {
      process.stdout.write(`# run-tests: ${late.length} files as root that need the k8s toolchain\n`);
      runs.push(await runAva(process.execPath, [AVA, "--tap", ...options, ...late], late));
    } else {
      runs.push({ tally: newTally(), code: 1, signal: null });
    }
  }
  if (runs.length === 0) {
    fail(`no test file under ${paths.join(" ") || "test"}`);
  }
  finish(runs);
}

const argv = process.argv.slice(2);
const testUser = process.env.CILIUM_LAB_TEST_USER ?? "";
if (argv[0] === "--fast") {
  const files = testFiles(argv.length > 1 ? argv.slice(1) : ["test"], (f) => !TIERED.test(f));
  if (files.length === 0) {
    fail(`--fast found no test file without a tier suffix under ${argv.slice(1).join(" ")}`);
  }
  finish([await runAva(process.execPath, [AVA, "--tap", "--concurrency", String(availableParallelism()), ...files])]);
} else if (testUser !== "" && process.getuid?.() === 0) {
  await asTestUser(testUser, argv);
} else {
  const { paths } = splitArgs(argv, existsSync);
  finish([await runAva(process.execPath, [AVA, "--tap", ...argv], testFiles(paths.length > 0 ? paths : ["test"]))]);
}
