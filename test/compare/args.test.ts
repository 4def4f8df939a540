/**
 * `npm run compare` argument errors: exact messages, from the parser and from the real command.
 */
import test from "ava";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

import { DEFAULT_STACK, HELP, MODES, parseCompareArgs, UsageError } from "../../scripts/compare/args";
import { modeVariant } from "../../scripts/compare/variants";
import { REPO_ROOT } from "../support/stack-files";

test("no arguments: every mode in the article's order, the default stack, no destroy", (t) => {
  t.deepEqual(parseCompareArgs([]), {
    modes: ["vxlan", "geneve", "native"],
    variants: [modeVariant("vxlan"), modeVariant("geneve"), modeVariant("native")],
    listedAs: "--modes",
    stack: DEFAULT_STACK,
    destroy: false,
    help: false,
    resultsDir: undefined,
  });
  t.deepEqual(MODES, ["vxlan", "geneve", "native"]);
});

test("--modes keeps the order given; --stack, --destroy, --results and -h are read in both spellings", (t) => {
  t.deepEqual(parseCompareArgs(["--modes", "native,vxlan", "--stack", "lab2", "--destroy", "--results", "/tmp/x"]), {
    modes: ["native", "vxlan"],
    variants: [modeVariant("native"), modeVariant("vxlan")],
    listedAs: "--modes",
    stack: "lab2",
    destroy: true,
    help: false,
    resultsDir: "/tmp/x",
  });
  t.deepEqual(parseCompareArgs(["--modes=geneve", "--stack=org/cilium-lab/dev"]).modes, ["geneve"]);
  t.is(parseCompareArgs(["--stack=org/cilium-lab/dev"]).stack, "org/cilium-lab/dev");
  t.true(parseCompareArgs(["-h"]).help);
  t.deepEqual(parseCompareArgs(["--modes", " vxlan , native "]).modes, ["vxlan", "native"]);
});

const errors: [string[], string][] = [
  [["--modes", "vxlan,gre"], 'compare: unknown mode "gre" in --modes (choose from vxlan, geneve, native)'],
  [["--modes", "VXLAN"], 'compare: unknown mode "VXLAN" in --modes (choose from vxlan, geneve, native)'],
  [["--modes", "vxlan,native,vxlan"], 'compare: mode "vxlan" is listed twice in --modes'],
  [["--modes", ","], "compare: --modes is empty (choose one or more of vxlan, geneve, native, comma-separated)"],
  [["--modes="], "compare: --modes is empty (choose one or more of vxlan, geneve, native, comma-separated)"],
  [
    ["--modes", "vxlan,,native"],
    'compare: --modes "vxlan,,native" has an empty entry (comma-separated, e.g. vxlan,native)',
  ],
  [["--modes"], "compare: --modes needs a value, e.g. --modes vxlan,native"],
  [["--modes", "--destroy"], "compare: --modes needs a value, e.g. --modes vxlan,native"],
  [["--stack"], "compare: --stack needs a value, e.g. --stack vxlan"],
  [["--stack", "my lab"], "compare: invalid stack name \"my lab\": use letters, digits, '-', '_' or '.'"],
  [["--stack", "a/b/c/d"], "compare: invalid stack name \"a/b/c/d\": use letters, digits, '-', '_' or '.'"],
  [["--results"], "compare: --results needs a value, e.g. --results /tmp/out"],
  [["--destroy=yes"], 'compare: --destroy takes no value (got "yes")'],
  [["--help=1"], 'compare: --help takes no value (got "1")'],
  [
    ["--mode", "vxlan"],
    "compare: unknown option --mode (options: --modes, --variants, --stack, --destroy, --results, --help)",
  ],
  [["-d"], "compare: unknown option -d (options: --modes, --variants, --stack, --destroy, --results, --help)"],
  [["vxlan"], 'compare: unexpected argument "vxlan" (all arguments are options; see --help)'],
];

for (const [argv, message] of errors) {
  test(`\`${argv.join(" ")}\` → ${message}`, (t) => {
    const err = t.throws(() => parseCompareArgs(argv), { instanceOf: UsageError });
    t.is(err?.message, message);
  });
}

/** Runs the real command the way `npm run compare -- …` does (tsx, this repository). */
function compare(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    ["--import=tsx", path.join(REPO_ROOT, "scripts", "compare", "index.ts"), ...argv],
    {
      cwd: REPO_ROOT,
      env,
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the command: an unknown mode exits 2 before anything starts, naming the mode, and points to --help", (t) => {
  const r = compare(["--modes", "vxlan,ipip"]);
  t.is(r.status, 2);
  t.is(
    r.stderr,
    'compare: unknown mode "ipip" in --modes (choose from vxlan, geneve, native)\nRun `npm run compare -- --help` for usage.\n',
  );
  t.is(r.stdout, "");
});

test("the command: --help prints the usage, every option, the outputs and the recovery commands, and exits 0", (t) => {
  const r = compare(["--help"]);
  t.is(r.status, 0);
  t.is(r.stdout, `${HELP}\n`);
  for (const needle of [
    "usage: npm run compare -- [--modes vxlan,geneve,native] [--stack NAME] [--destroy]",
    "--modes LIST",
    "--stack NAME",
    "--destroy",
    "--results DIR",
    "results/<timestamp>/results.json",
    "results/<timestamp>/report.md",
    "results/<timestamp>/throughput.svg",
    'eval "$(bash scripts/toolchain.sh)"',
    "virsh -c qemu:///system version",
    "npm run lab -- cancel|refresh|destroy <stack>",
    "under TCG (accelerator: qemu)",
  ]) {
    t.true(r.stdout.includes(needle), needle);
  }
});

test("the command: without pulumi on PATH it exits 3 before anything starts, saying how to install it or build it", (t) => {
  // PATH with node's own directory only: no pulumi there.
  const r = compare(["--modes", "vxlan"], { ...process.env, PATH: path.dirname(process.execPath) });
  t.is(r.status, 3);
  t.is(
    r.stderr,
    "compare: the pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/), or on a host without internet access " +
      'build it from Go modules: eval "$(bash scripts/toolchain.sh)"\n',
  );
});
