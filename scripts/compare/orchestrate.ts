/**
 * The experiment's order of operations, on any stack that looks like an Automation API `Stack`:
 * for each mode set the routing-mode keys, `up`, collect the outputs; optionally `destroy`; always
 * put the user's stack config file back byte for byte.
 *
 * The stack is injected, so the same code runs the real program (scripts/compare/index.ts), a small
 * inline program on the real engine, and an in-memory double (test/compare/).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";

import type { ConfigMap, DestroyOptions, EngineEvent, OutputMap, UpOptions } from "@pulumi/pulumi/automation";

import { PROJECT } from "../../infra/config";
import { labKeys, planVariants, type PlannedVariant } from "./modes";
import { readSnapshot, restoreSnapshot, stackSettingsFile } from "./snapshot";
import { modeVariant, type Mode, type Variant } from "./variants";

/** What the orchestrator needs of a stack: a subset of the Automation API's `Stack`. */
export interface LabStack {
  readonly name: string;
  getAllConfig(): Promise<ConfigMap>;
  setAllConfig(config: ConfigMap): Promise<void>;
  removeAllConfig(keys: string[]): Promise<void>;
  up(opts?: UpOptions): Promise<{ summary: { resourceChanges?: Record<string, number>; result: string } }>;
  outputs(): Promise<OutputMap>;
  destroy(opts?: DestroyOptions): Promise<{ summary: { resourceChanges?: Record<string, number>; result: string } }>;
}

/** Where the orchestrator reports what it is doing (the terminal in the CLI, a recorder in tests). */
export interface Progress {
  /** A step starts, e.g. `up` of variant `native` (2 of 3). */
  step(step: StepInfo): void;
  /** A step ended. */
  stepDone(step: StepInfo, result: { ok: boolean; seconds: number; detail?: string }): void;
  /** Engine events of the running operation (resource steps, diagnostics, summary). */
  event(e: EngineEvent): void;
  /** Pulumi's own text output of the running operation. */
  output(text: string): void;
}

/** One step of the run. */
export interface StepInfo {
  readonly kind: "config" | "up" | "outputs" | "destroy" | "restore";
  /** The variant's name (a plain mode's name is the mode). */
  readonly mode?: string;
  /** 1-based position of the variant in the run, and the number of variants. */
  readonly index?: number;
  readonly total?: number;
}

/**
 * Ctrl-C handling: the first request lets the current Pulumi operation finish and starts nothing
 * new; the second aborts the operation (the Automation API sends the CLI SIGINT, which cancels at
 * the next safe point and records pending operations in the state).
 */
export class StopControl {
  private count = 0;
  private readonly controller = new AbortController();
  /** Passed to every Pulumi operation. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  /** True once a stop was requested. */
  get stopping(): boolean {
    return this.count > 0;
  }
  /** Registers one Ctrl-C; returns how many there were. */
  request(): number {
    this.count += 1;
    if (this.count >= 2) {
      this.controller.abort();
    }
    return this.count;
  }
}

/** The outcome of one variant (a plain mode is a variant without feature keys). */
export interface ModeRun {
  /** The variant's routing mode. */
  readonly mode: Mode;
  /** The variant's name, e.g. `native+hostRouting=bpf`; absent in records of plain modes made before variants. */
  readonly variant?: string;
  /** What its `up` changed in the lab (Cilium only, or also k3s). */
  readonly changes?: string;
  /** `measured`: up succeeded and outputs were read; `failed`: up or outputs failed; `interrupted`: stopped by Ctrl-C. */
  readonly status: "measured" | "failed" | "interrupted";
  /** The `cilium-lab:*` keys set for this mode (unprefixed). */
  readonly set: Readonly<Record<string, string>>;
  readonly startedAt: string;
  /** Wall-clock seconds of config + up + outputs. */
  readonly seconds: number;
  /** The engine's summary of the `up`: e.g. `{ update: 2, same: 40 }`; `same` only means the lab was reused. */
  readonly resourceChanges?: Readonly<Record<string, number>>;
  /** Stack outputs after the `up`, secret values replaced by {@link SECRET}. */
  readonly outputs?: Readonly<Record<string, unknown>>;
  /** The error, for failed and interrupted modes. */
  readonly error?: string;
}

export { stackSettingsFile };

/** Replaces every secret output value in results: results.json is meant to be shared. */
export const SECRET = "[secret]";

/** What happened, in order. */
export interface RunRecord {
  readonly stack: string;
  readonly modes: readonly ModeRun[];
  /** Requested variants never started (after a failure or Ctrl-C), by name. */
  readonly notRun: readonly string[];
  readonly planned: readonly PlannedVariant[];
  /** `true` destroyed, `false` not asked or not attempted, or the error of a failed destroy. */
  readonly destroyed: boolean | { error: string };
  readonly interrupted: boolean;
  /** Whether the stack's config file is back to its bytes from before the run (see {@link restoreError}). */
  readonly configRestored: boolean;
  readonly restoreError?: string;
  /** The stack config file and the copy of its original bytes. */
  readonly settingsFile: string;
  readonly backupFile?: string;
  readonly startedAt: string;
  readonly seconds: number;
}

/** Inputs of {@link runCompare}. */
export interface CompareRunArgs {
  readonly stack: LabStack;
  /** The stack's config file (`<project>/<stackConfigDir>/Pulumi.<stack>.yaml`), restored byte for byte at the end. */
  readonly settingsFile: string;
  /** Plain modes to measure (`--modes`); ignored when {@link variants} is given. */
  readonly modes?: readonly Mode[];
  /** The variants to measure, in order. */
  readonly variants?: readonly Variant[];
  /** Which option named them, for messages. Default: `--modes` without variants, else `--variants`. */
  readonly listedAs?: "--modes" | "--variants";
  readonly destroy: boolean;
  readonly progress: Progress;
  readonly stop: StopControl;
  /** Where to keep a copy of the original config file while the run lasts (kept if the restore fails). */
  readonly backupFile?: string;
  /** Called once the variants are planned (before any change): e.g. to say what each will change. */
  readonly onPlanned?: (planned: readonly PlannedVariant[]) => void;
  /** Extra `up` options (e.g. `refresh`, `parallel`). */
  readonly upOptions?: Omit<UpOptions, "onOutput" | "onEvent" | "signal">;
}

/** Output values for results: secrets replaced. */
export function redactOutputs(outputs: OutputMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, { value, secret }] of Object.entries(outputs)) {
    out[key] = secret ? SECRET : (value as unknown);
  }
  return out;
}

/** The last lines of an error message, enough to see the cause without flooding results.json. */
export function errorText(err: unknown, maxChars = 4000): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length <= maxChars ? text : `…${text.slice(-maxChars)}`;
}

/** What every step of a run uses: the stack, where progress goes, Ctrl-C, the engine callbacks. */
interface RunContext {
  readonly stack: LabStack;
  readonly progress: Progress;
  readonly stop: StopControl;
  readonly callbacks: { onOutput(text: string): void; onEvent(e: EngineEvent): void; signal: AbortSignal };
  readonly upOptions?: CompareRunArgs["upOptions"];
}

/**
 * One mode: set its keys (and remove the switched keys an earlier mode set that this one leaves
 * unset; `touched` tracks them), `up`, read the outputs. A failure is in the returned run.
 */
async function runMode(
  ctx: RunContext,
  plan: PlannedVariant,
  where: { mode: string; index: number; total: number },
  touched: Set<string>,
): Promise<ModeRun> {
  const { stack, progress, stop } = ctx;
  const modeStart = Date.now();
  let step: StepInfo = { kind: "config", ...where };
  let resourceChanges: Record<string, number> | undefined;
  const run = () => ({
    mode: plan.mode,
    variant: plan.variant,
    changes: plan.changes.summary,
    set: plan.set,
    startedAt: new Date(modeStart).toISOString(),
    seconds: secondsSince(modeStart),
    ...(resourceChanges ? { resourceChanges } : {}),
  });
  try {
    progress.step(step);
    const set: ConfigMap = {};
    for (const [key, value] of Object.entries(plan.set)) {
      set[`${PROJECT}:${key}`] = { value };
    }
    await stack.setAllConfig(set);
    Object.keys(plan.set).forEach((k) => touched.add(k));
    const remove = plan.remove.filter((k) => touched.has(k));
    if (remove.length > 0) {
      await stack.removeAllConfig(remove.map((k) => `${PROJECT}:${k}`));
      remove.forEach((k) => touched.delete(k));
    }
    progress.stepDone(step, {
      ok: true,
      seconds: secondsSince(modeStart),
      detail:
        describeSet(plan.set) +
        (remove.length > 0 ? ` (removed ${remove.join(", ")})` : "") +
        `; changes: ${plan.changes.summary}`,
    });

    step = { kind: "up", ...where };
    const upStart = Date.now();
    progress.step(step);
    const up = await stack.up({ ...ctx.upOptions, ...ctx.callbacks });
    resourceChanges = up.summary.resourceChanges;
    progress.stepDone(step, { ok: true, seconds: secondsSince(upStart), detail: describeChanges(resourceChanges) });

    step = { kind: "outputs", ...where };
    const outStart = Date.now();
    progress.step(step);
    const outputs = redactOutputs(await stack.outputs());
    progress.stepDone(step, {
      ok: true,
      seconds: secondsSince(outStart),
      detail: `${Object.keys(outputs).length} outputs`,
    });
    const { mode, set: modeSet, ...rest } = run();
    return { mode, status: "measured", set: modeSet, ...rest, outputs };
  } catch (err) {
    const error = errorText(err);
    progress.stepDone(step, { ok: false, seconds: secondsSince(modeStart), detail: firstLine(error) });
    const { mode, set: modeSet, ...rest } = run();
    return { mode, status: stop.stopping ? "interrupted" : "failed", set: modeSet, ...rest, error };
  }
}

/** `destroy` of the whole stack: `true`, or the error. */
async function destroyStack(ctx: RunContext): Promise<RunRecord["destroyed"]> {
  const step: StepInfo = { kind: "destroy" };
  const start = Date.now();
  ctx.progress.step(step);
  try {
    const result = await ctx.stack.destroy(ctx.callbacks);
    ctx.progress.stepDone(step, {
      ok: true,
      seconds: secondsSince(start),
      detail: describeChanges(result.summary.resourceChanges),
    });
    return true;
  } catch (err) {
    const destroyed = { error: errorText(err) };
    ctx.progress.stepDone(step, { ok: false, seconds: secondsSince(start), detail: firstLine(destroyed.error) });
    return destroyed;
  }
}

/** Puts the stack file back (and drops the backup); the error, with where the original is, if that failed. */
async function restoreConfig(
  progress: Progress,
  settingsFile: string,
  snapshot: Buffer | undefined,
  backupFile: string | undefined,
): Promise<string | undefined> {
  const step: StepInfo = { kind: "restore" };
  const start = Date.now();
  progress.step(step);
  try {
    await restoreSnapshot(settingsFile, snapshot);
    progress.stepDone(step, { ok: true, seconds: secondsSince(start), detail: settingsFile });
    if (backupFile !== undefined) {
      await fs.rm(backupFile, { force: true });
    }
    return undefined;
  } catch (err) {
    const restoreError = `${errorText(err)}; the original is in ${backupFile ?? "(no backup)"}`;
    progress.stepDone(step, { ok: false, seconds: secondsSince(start), detail: restoreError });
    return restoreError;
  }
}

/**
 * Runs the experiment. Never throws for a failed mode or Ctrl-C (they are in the record); throws
 * only when the stack's config cannot be read or a mode's config is invalid — before any change.
 */
export async function runCompare(args: CompareRunArgs): Promise<RunRecord> {
  const { stack, settingsFile, progress, stop } = args;
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const userConfig = await stack.getAllConfig();
  // Fails here, before any change, if the program would reject a variant's config.
  const variants = args.variants ?? (args.modes ?? []).map(modeVariant);
  const listedAs = args.listedAs ?? (args.variants === undefined ? "--modes" : "--variants");
  const planned = planVariants(variants, labKeys(userConfig), listedAs);
  args.onPlanned?.(planned);

  const snapshot = await readSnapshot(settingsFile);
  if (args.backupFile !== undefined && snapshot !== undefined) {
    await fs.mkdir(path.dirname(args.backupFile), { recursive: true });
    await fs.writeFile(args.backupFile, snapshot, { mode: 0o600 });
  }

  const ctx: RunContext = {
    stack,
    progress,
    stop,
    callbacks: {
      onOutput: (text: string) => progress.output(text),
      onEvent: (e: EngineEvent) => progress.event(e),
      signal: stop.signal,
    },
    ...(args.upOptions !== undefined ? { upOptions: args.upOptions } : {}),
  };
  const runs: ModeRun[] = [];
  const notRun: string[] = [];
  // Switched keys an earlier mode set: the only ones that may need removing for a later mode.
  const touched = new Set<string>();
  let destroyed: RunRecord["destroyed"] = false;
  let restoreError: string | undefined;
  try {
    for (const [i, plan] of planned.entries()) {
      if (runs.some((r) => r.status !== "measured") || stop.stopping) {
        notRun.push(plan.variant);
        continue;
      }
      runs.push(await runMode(ctx, plan, { mode: plan.variant, index: i + 1, total: planned.length }, touched));
    }

    // --destroy also after a failed mode (the user asked for nothing to be left behind), but not
    // after Ctrl-C: the user asked to stop, and a destroy is another long operation.
    if (args.destroy && !stop.stopping) {
      destroyed = await destroyStack(ctx);
    }
  } finally {
    // Runs on failures and Ctrl-C too: the user's stack file must not keep a mode it never chose.
    restoreError = await restoreConfig(progress, settingsFile, snapshot, args.backupFile);
  }
  return {
    stack: stack.name,
    modes: runs,
    notRun,
    planned,
    destroyed,
    interrupted: stop.stopping,
    configRestored: restoreError === undefined,
    ...(restoreError !== undefined
      ? { restoreError, ...(args.backupFile !== undefined ? { backupFile: args.backupFile } : {}) }
      : {}),
    settingsFile,
    startedAt,
    seconds: secondsSince(t0),
  };
}

function secondsSince(start: number): number {
  return Math.round((Date.now() - start) / 100) / 10;
}

function firstLine(text: string): string {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? text;
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** `routingMode=native autoDirectNodeRoutes=true …` */
export function describeSet(set: Readonly<Record<string, string>>): string {
  return Object.entries(set)
    .map(([k, v]) => `${k}=${v === "" ? '""' : v}`)
    .join(" ");
}

/** `2 update, 40 same` */
export function describeChanges(changes: Readonly<Record<string, number>> | undefined): string {
  if (changes === undefined) {
    return "no summary";
  }
  const parts = Object.entries(changes)
    .filter(([, n]) => n > 0)
    .map(([op, n]) => `${n} ${op}`);
  return parts.length === 0 ? "no resources" : parts.join(", ");
}
