/**
 * `npm run compare -- [--modes vxlan,geneve,native] [--stack NAME] [--destroy]`: the article's
 * whole experiment in one command, on the Pulumi Automation API (LocalWorkspace on this repository,
 * local file backend by default). See {@link HELP}.
 */
import { createWriteStream, promises as fs, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import { LocalWorkspace } from "@pulumi/pulumi/automation";
import YAML from "yaml";

import { exitWith } from "../lib/cli";
import { HELP, parseCompareArgs, UsageError, type CompareArgs } from "./args";
import { labBackend } from "./backend";
import { clusterEnvironment, modeViews } from "./collect";
import { describeSet, runCompare, stackSettingsFile, StopControl, type LabStack, type RunRecord } from "./orchestrate";
import { checkLibvirt, checkPulumi, checkStackHostInputs, PreflightError } from "./preflight";
import { formatDuration, TerminalProgress } from "./progress";
import { fmtMiB, fmtRatio } from "./report";
import { variantName, type CompareView, type ModeView } from "./results";
import { anyVariant, latencyLines, planLines } from "./summary";
import { timestampDir, writeResults } from "./write";

/** The repository: the Pulumi project the command drives. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The only libvirt URI the lab supports (infra/config: `libvirtUri`). */
const LIBVIRT_URI = "qemu:///system";

/** Where output goes; the tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** `stackConfigDir` of a project's `Pulumi.yaml` (the Automation API does not model it). */
export function stackConfigDir(projectDir: string): string | undefined {
  const doc = YAML.parse(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as {
    stackConfigDir?: unknown;
  } | null;
  return typeof doc?.stackConfigDir === "string" ? doc.stackConfigDir : undefined;
}

/** How to get out of an interrupted or failed run; printed at the end and after Ctrl-C. */
export function recoveryHelp(stack: string): string[] {
  return [
    "To recover (each command uses the same local backend and passphrase as compare):",
    `  npm run lab -- cancel ${stack}                            if pulumi says the stack is locked or an update is in progress`,
    `  npm run lab -- refresh ${stack} --clear-pending-creates   if pulumi warns about pending operations (an interrupted create)`,
    `  npm run lab -- up ${stack}                                to bring the lab back to the mode its config names`,
    `  npm run lab -- destroy ${stack}                           to remove the lab`,
  ];
}

/** The terminal summary: a line per variant, where the files are, what state the lab is in. */
export function summaryLines(
  args: Pick<CompareArgs, "stack"> & Partial<CompareArgs>,
  record: RunRecord,
  view: CompareView,
  dir: string | undefined,
): string[] {
  const lines: string[] = [];
  const verdict = record.interrupted
    ? "INTERRUPTED"
    : record.modes.every((m) => m.status === "measured") && record.notRun.length === 0
      ? "done"
      : "FAILED";
  lines.push("", `compare: ${verdict} in ${formatDuration(record.seconds)} (stack ${record.stack})`);
  const table: string[][] = [
    [anyVariant(view) ? "variant" : "mode", "status", "datapath", "pod↔pod MiB/s", "host↔host MiB/s", "pod/host"],
  ];
  for (const m of view.modes) {
    table.push(modeSummaryRow(m));
  }
  const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? "").length))) ?? [];
  for (const r of table) {
    lines.push(`  ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")}`.trimEnd());
  }
  for (const m of view.modes) {
    if (m.error !== undefined) {
      const errorLines = m.error
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "");
      // Pulumi's own cause lines start with "error:"; the last one is the most specific.
      const first =
        [...errorLines].reverse().find((l) => l.startsWith("error:")) ??
        errorLines.find((l) => /failed|refused|canceled/i.test(l)) ??
        errorLines[0] ??
        "";
      lines.push(`  ${variantName(m)} ${m.status}: ${first.length > 300 ? `${first.slice(0, 300)}…` : first}`);
    }
  }
  lines.push(...latencyLines(view));
  if (dir !== undefined) {
    lines.push(
      `  report:  ${path.join(dir, "report.md")}`,
      `  chart:   ${path.join(dir, "throughput.svg")}`,
      ...(view.modes.some((m) => m.latency !== undefined) ? [`  latency: ${path.join(dir, "latency.svg")}`] : []),
      `  data:    ${path.join(dir, "results.json")} (pulumi's log: ${path.join(dir, "pulumi.log")})`,
    );
  }
  if (view.environment.tcg) {
    lines.push(
      "  note:    measured under TCG (accelerator qemu): the throughput is not representative of a real network",
    );
  }
  if (record.configRestored) {
    lines.push(`  config:  ${record.settingsFile} restored as it was`);
  } else {
    lines.push(
      `  config:  NOT restored (${record.restoreError ?? "unknown error"}); copy ${record.backupFile ?? "the original"} back to ${record.settingsFile}`,
    );
  }
  const last = [...record.modes].reverse().find((m) => m.status === "measured");
  if (record.destroyed === true) {
    lines.push("  lab:     destroyed");
  } else if (typeof record.destroyed === "object") {
    lines.push(`  lab:     destroy FAILED: ${record.destroyed.error.split("\n")[0] ?? ""}`);
  } else if (last !== undefined) {
    lines.push(
      `  lab:     left running with ${describeSet(last.set)}; the stack config names its own mode again, so the next ` +
        `\`npm run lab -- up ${args.stack}\` switches it back. Remove it with \`npm run lab -- destroy ${args.stack}\`.`,
    );
  }
  if (record.interrupted || verdict === "FAILED") {
    lines.push("", ...recoveryHelp(args.stack));
  }
  return lines;
}

function modeSummaryRow(m: ModeView): string[] {
  const t = m.throughput;
  const datapath = m.datapath === undefined ? "—" : m.datapath.verdict;
  if (t === undefined) {
    return [variantName(m), m.status, datapath, "—", "—", "—"];
  }
  return [
    variantName(m),
    m.status,
    datapath,
    fmtMiB(t.podToPod.mibPerSecond.median),
    fmtMiB(t.hostToHost.mibPerSecond.median),
    fmtRatio(t.ratio.paired.median),
  ];
}

/** Where the command runs; the defaults are this repository and the process environment. */
export interface MainOptions {
  /** The Pulumi project directory (its `Pulumi.yaml` and stack files). Default {@link REPO_ROOT}. */
  readonly projectDir?: string;
  /** The environment for the backend/passphrase choice and the Pulumi CLI. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/** The arguments, or the exit code after `--help` (0) or a usage error (2). */
function parseOrExit(argv: readonly string[], io: Io): CompareArgs | number {
  let args: CompareArgs;
  try {
    args = parseCompareArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.message);
      io.err("Run `npm run compare -- --help` for usage.");
      return 2;
    }
    throw err;
  }
  if (args.help) {
    io.out(HELP);
    return 0;
  }
  return args;
}

/**
 * Preflight: nothing has changed yet, so a failure here leaves everything as it was. The pulumi
 * CLI's version, or the exit code 3 after the failure's message.
 */
async function preflight(args: CompareArgs, projectDir: string, env: NodeJS.ProcessEnv, io: Io): Promise<string | 3> {
  try {
    const pulumiVersion = await checkPulumi(env);
    await checkLibvirt(LIBVIRT_URI, env);
    checkStackHostInputs(projectDir, args.stack, { pathEnv: env.PATH ?? "" });
    return pulumiVersion;
  } catch (err) {
    if (err instanceof PreflightError) {
      io.err(err.message);
      return 3;
    }
    throw err;
  }
}

/**
 * The SIGINT/SIGTERM handler: the first stops after the current Pulumi operation, the second
 * interrupts it, the third restores the stack file from its backup and exits 130.
 */
function onStopSignal(
  stop: StopControl,
  progress: TerminalProgress,
  files: { settingsFile: string; backupFile: string; stack: string },
  io: Io,
): () => void {
  const { settingsFile, backupFile, stack } = files;
  return () => {
    const n = stop.request();
    if (n === 1) {
      progress.line(
        "Ctrl-C: stopping after the current Pulumi operation (Ctrl-C again interrupts it); the stack config will be restored",
      );
    } else if (n === 2) {
      progress.line(
        "Ctrl-C again: interrupting pulumi; it stops at the next safe point and records pending operations in the state",
      );
    } else {
      // Third time: leave now, but never with a mode the user did not choose in their stack file.
      try {
        writeFileSync(settingsFile, readFileSync(backupFile));
        progress.line(`Ctrl-C a third time: exiting now; ${settingsFile} restored from ${backupFile}`);
      } catch {
        progress.line(`Ctrl-C a third time: exiting now; restore ${settingsFile} from ${backupFile} if it exists`);
      }
      for (const line of recoveryHelp(stack)) {
        io.err(line);
      }
      process.exit(130);
    }
  };
}

/** What a finished run wrote: the view of every mode and results.json's document. */
function runResults(
  argv: readonly string[],
  args: CompareArgs,
  record: RunRecord,
  run: { accelerator: string; pulumiVersion: string; backendUrl: string },
): { view: CompareView; results: Record<string, unknown> } {
  const { accelerator, pulumiVersion, backendUrl } = run;
  const view: CompareView = {
    source: {
      kind: "cluster",
      label: `cluster run: stack ${args.stack}, ${accelerator === "qemu" ? "TCG (not representative)" : accelerator}`,
    },
    stack: args.stack,
    startedAt: record.startedAt,
    environment: clusterEnvironment({ runs: record.modes, accelerator, pulumiVersion }),
    modes: modeViews(record),
  };
  const results = {
    schema: "cilium-lab/compare/1",
    command: `npm run compare -- ${argv.join(" ")}`.trim(),
    source: view.source,
    backendUrl,
    ...record,
    planned: record.planned.map((p) => ({
      variant: p.variant,
      mode: p.mode,
      set: p.set,
      remove: p.remove,
      warnings: p.warnings,
      changes: p.changes,
    })),
    environment: view.environment,
    views: view.modes,
  };
  return { view, results };
}

/** The exit code of a finished run: 130 interrupted, 0 every mode measured and everything restored, else 1. */
function exitCode(args: CompareArgs, record: RunRecord, view: CompareView): number {
  if (record.interrupted) {
    return 130;
  }
  const ok =
    view.modes.every((m) => m.status === "measured") &&
    record.configRestored &&
    (args.destroy ? record.destroyed === true : true);
  return ok ? 0 : 1;
}

/** The whole command; returns the exit code (0 ok, 1 a mode or the destroy failed, 2 usage, 3 prerequisites, 130 Ctrl-C). */
export async function main(argv: readonly string[], io: Io = processIo, options: MainOptions = {}): Promise<number> {
  const projectDir = options.projectDir ?? REPO_ROOT;
  const env = options.env ?? process.env;
  const args = parseOrExit(argv, io);
  if (typeof args === "number") {
    return args;
  }
  const pulumiVersion = await preflight(args, projectDir, env, io);
  if (pulumiVersion === 3) {
    return 3;
  }

  const backend = await labBackend(projectDir, env);
  if (backend.generatedPassphraseFile !== undefined) {
    io.err(`compare: generated the state passphrase in ${backend.generatedPassphraseFile} (keep it)`);
  }
  const startedAt = new Date();
  const dir = path.resolve(args.resultsDir ?? path.join(projectDir, "results"), timestampDir(startedAt));
  await fs.mkdir(dir, { recursive: true });
  const log = createWriteStream(path.join(dir, "pulumi.log"), { flags: "a" });
  const progress = new TerminalProgress(
    (line) => io.err(line),
    (text) => log.write(text),
  );
  progress.line(
    `stack ${args.stack}, ${args.listedAs === "--modes" ? "modes" : "variants"} ${args.variants.map((v) => v.name).join(" → ")}` +
      `${args.destroy ? ", then destroy" : ""}; pulumi ${pulumiVersion}; ` +
      `backend ${backend.backendUrl}; passphrase from ${backend.passphraseSource}; results in ${dir}`,
  );

  const settingsFile = stackSettingsFile(projectDir, args.stack, stackConfigDir(projectDir));
  const backupFile = path.join(dir, `Pulumi.${args.stack.split("/").pop() ?? args.stack}.yaml.orig`);
  const stop = new StopControl();
  const onSignal = onStopSignal(stop, progress, { settingsFile, backupFile, stack: args.stack }, io);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let record: RunRecord;
  let accelerator = "unknown";
  try {
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: args.stack, workDir: projectDir },
      { envVars: backend.envVars, secretsProvider: "passphrase" },
    );
    const labStack: LabStack = stack;
    record = await runCompare({
      stack: labStack,
      settingsFile,
      variants: args.variants,
      listedAs: args.listedAs,
      destroy: args.destroy,
      onPlanned: (planned) => planLines(planned).forEach((l) => progress.line(l)),
      progress,
      stop,
      backupFile,
    });
    accelerator = record.planned[0]?.config.accelerator ?? accelerator;
  } catch (err) {
    // Only failures before any change land here (reading the stack, an invalid mode config).
    progress.close();
    log.end();
    io.err(err instanceof Error ? err.message : String(err));
    return 3;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  progress.close();

  const { view, results } = runResults(argv, args, record, {
    accelerator,
    pulumiVersion,
    backendUrl: backend.backendUrl,
  });
  const files = await writeResults(dir, results, view);
  await new Promise<void>((resolve) => log.end(resolve));
  for (const line of summaryLines(args, record, view, files.dir)) {
    io.out(line);
  }
  return exitCode(args, record, view);
}

if (require.main === module) {
  exitWith("compare", main(process.argv.slice(2)));
}
