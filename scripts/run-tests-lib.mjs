// The pure parts of scripts/run-tests.mjs (tested by test/tiers.test.ts): which test files need
// what, which of them run as the unprivileged test user, the environment that user gets, and the
// TAP counting and merged summary line.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** A test file that needs a VM, the engine, libvirt or network namespaces (by its name). */
export const TIERED = /\.(vm|engine|libvirt|netns)\.test\.ts$/;

/** The tiers that run as the test user when CI sets CILIUM_LAB_TEST_USER: libvirt and VM suites. */
export const USER_TIER = /\.(vm|libvirt)\.test\.ts$/;

/**
 * The value of a `// <name>: <value>` line (a reason may follow after a space) in a file's leading
 * comment block (the lines before the first line that is neither a `//` comment nor blank), if it
 * is one of `accepted`; else undefined.
 */
function header(text, name, accepted) {
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed !== "" && !trimmed.startsWith("//")) {
      return undefined;
    }
    const m = new RegExp(`^// ${name}: (\\S+)(?:\\s.*)?$`).exec(trimmed);
    if (m && accepted.includes(m[1])) {
      return m[1];
    }
  }
  return undefined;
}

/** Who a file asks to run as: the `// test-runs-as: root` or `// test-runs-as: user` header, else undefined. */
export function runsAs(text) {
  return header(text, "test-runs-as", ["root", "user"]);
}

/**
 * Whether a file needs what scripts/k8s-toolchain.sh builds (the test control plane, the kubernetes
 * plugin in PULUMI_HOME): a `// test-needs: k8s-toolchain` header.
 */
export function needsK8sToolchain(text) {
  return header(text, "test-needs", ["k8s-toolchain"]) !== undefined;
}

/**
 * Splits the root run's files into those that need the k8s toolchain (`late`, run last: CI builds it
 * in the background meanwhile) and the others (`early`), each in the order given.
 */
export function splitLate(files, read) {
  const early = [];
  const late = [];
  for (const file of files) {
    (needsK8sToolchain(read(file)) ? late : early).push(file);
  }
  return { early, late };
}

/**
 * The variables `env -0` printed (NUL-separated `NAME=value`, a value may hold newlines and `=`).
 */
export function parseEnv0(text) {
  const out = {};
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) {
      out[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  }
  return out;
}

/**
 * Splits test files into those run as the test user (`*.libvirt.test.ts` and `*.vm.test.ts`
 * without a `// test-runs-as: root` header, and any file with `// test-runs-as: user`) and those
 * run as root (everything else), each in the order given. `read(file)` returns a file's text.
 */
export function splitByUser(files, read) {
  const user = [];
  const root = [];
  for (const file of files) {
    const as = runsAs(read(file));
    (as === "user" || (as === undefined && USER_TIER.test(file)) ? user : root).push(file);
  }
  return { user, root };
}

/** ava options that take a value as the next argument (ava 7 `ava --help`). */
const VALUE_OPTIONS = new Set([
  "--match",
  "-m",
  "--timeout",
  "-T",
  "--concurrency",
  "-c",
  "--node-arguments",
  "--config",
]);

/**
 * Splits ava's command line into the files or folders it names (arguments that `exists`) and the
 * options (everything else, with the value of an option that takes one), each in order.
 */
export function splitArgs(argv, exists) {
  const paths = [];
  const options = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (VALUE_OPTIONS.has(a) && i + 1 < argv.length) {
      options.push(a, argv[i + 1]);
      i += 1;
    } else if (!a.startsWith("-") && exists(a)) {
      paths.push(a);
    } else {
      options.push(a);
    }
  }
  return { paths, options };
}

/** The `*.test.ts` files under `roots` (files or folders) that `keep` accepts, sorted. */
export function testFiles(roots, keep = () => true) {
  const found = [];
  const walk = (p) => {
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p)) {
        if (e !== "node_modules") walk(join(p, e));
      }
    } else if (p.endsWith(".test.ts") && keep(p)) {
      found.push(p);
    }
  };
  roots.forEach(walk);
  return [...new Set(found)].sort();
}

/** Variables of the root run the test user's run keeps: the toolchain's PATH, the test image, the lab's caches, Pulumi's offline switches. */
const PASSED = /^(PATH|LANG|LC_ALL|TZ|CI|TEST_IMAGE\w*|CILIUM_LAB_\w+|PULUMI_SKIP_UPDATE_CHECK|PULUMI_DISABLE_\w+)$/;

/**
 * The test user's environment: the variables {@link PASSED} names from `env`, plus its own HOME,
 * USER, LOGNAME, a private TMPDIR and the lab's cache (CILIUM_LAB_CACHE) in it. Not passed: root's
 * PULUMI_HOME, backend and passphrase (the user's Pulumi state stays under its HOME and the tests'
 * temp dirs), root's lab cache (CI's is root's and read-only to the user: writing the node scripts'
 * copy for a new hash there failed with EACCES on a cold cache; the toolchain and the test image it
 * holds reach the user by PATH and TEST_IMAGE), and anything else of root's.
 */
export function userEnv(env, { user, home, tmpdir }) {
  const out = {};
  for (const key of Object.keys(env).sort()) {
    if (PASSED.test(key) && key !== "CILIUM_LAB_CACHE" && env[key] !== undefined) {
      out[key] = env[key];
    }
  }
  return { ...out, HOME: home, USER: user, LOGNAME: user, TMPDIR: tmpdir, CILIUM_LAB_CACHE: `${tmpdir}/cache` };
}

/** A fresh TAP tally: `# pass|fail|skip|todo N` counts and whether the `1..N` plan was seen. */
export function newTally() {
  return { pass: 0, fail: 0, skip: 0, todo: 0, sawPlan: false };
}

/** Counts one TAP line of ava's reporter into `tally`. */
export function countTap(tally, line) {
  const m = /^# (pass|fail|skip|todo) (\d+)$/.exec(line);
  if (m) {
    tally[m[1]] = Number(m[2]);
  }
  if (/^1\.\.\d+$/.test(line)) {
    tally.sawPlan = true;
  }
}

/**
 * The one summary line of one or more ava runs and the exit code: `N passed, N failed` (plus
 * `, N skipped` when any test was skipped or left as todo). A run without a TAP plan (it crashed
 * before reporting) counts as one failure; a skip, a failed run or a signal makes the exit code 1.
 * `runs`: `{ tally, code, signal }` per run.
 */
export function mergedSummary(runs) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let bad = false;
  for (const { tally, code, signal } of runs) {
    passed += tally.pass;
    failed += tally.fail + (tally.sawPlan ? 0 : 1);
    skipped += tally.skip + tally.todo;
    bad ||= code !== 0 || Boolean(signal) || !tally.sawPlan;
  }
  const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
  return { line, exitCode: bad || skipped > 0 || runs.length === 0 ? 1 : 0 };
}

/** ava's title prefix of a test file: its path under test/ without `.test.ts`, folders joined by ` › `. */
export function avaPrefix(file) {
  return file
    .replace(/^test\//, "")
    .replace(/\.test\.ts$/, "")
    .split("/")
    .join(" › ");
}

/**
 * The file of `files` a TAP line of ava reports on (`ok N - <prefix> › …`, `not ok N - …`,
 * `# <prefix> › … hook`), else undefined. The longest prefix wins (`a › b` over `a`).
 */
export function tapFile(line, files) {
  const m = /^(?:(?:not )?ok \d+ - |# )(.+)$/.exec(line);
  if (!m) {
    return undefined;
  }
  const title = m[1];
  let best;
  for (const file of files) {
    const prefix = avaPrefix(file);
    if (title.startsWith(`${prefix} › `) && (best === undefined || prefix.length > avaPrefix(best).length)) {
      best = file;
    }
  }
  return best;
}

/**
 * Seconds per file of one ava run that ran its files one at a time: a file's time runs from the
 * previous file's last TAP line (or `start`) to its own last line. `events`: `{ file, at }` (ms) in
 * order. Slowest first.
 */
export function fileSeconds(events, start) {
  const last = new Map();
  for (const { file, at } of events) {
    last.delete(file);
    last.set(file, at);
  }
  const out = [];
  let previous = start;
  for (const [file, at] of [...last.entries()].sort((a, b) => a[1] - b[1])) {
    out.push({ file, seconds: Math.round((at - previous) / 1000) });
    previous = at;
  }
  return out.sort((a, b) => b.seconds - a.seconds || a.file.localeCompare(b.file));
}
