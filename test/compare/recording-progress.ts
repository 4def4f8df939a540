/**
 * What the orchestration tests (mocked and real engine) run and record: runCompare with the test's
 * defaults, a Progress that keeps every step, the engine events' sequence numbers and the
 * dynamic resources' operations as the engine reported them, and the views of what was collected.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { ExecutionContext } from "ava";

import { modeViews } from "../../scripts/compare/collect";
import {
  runCompare,
  StopControl,
  type LabStack,
  type Progress,
  type RunRecord,
  type StepInfo,
} from "../../scripts/compare/orchestrate";
import type { ModeView } from "../../scripts/compare/results";
import { isMode, parseVariant } from "../../scripts/compare/variants";

/** Records the run: `start up vxlan 1/3`, `done up vxlan`, `failed up geneve`…; events; resource ops. */
export class RecordingProgress implements Progress {
  readonly steps: string[] = [];
  readonly events: number[] = [];
  /** `create vms`, `update cilium`… of the test program's dynamic resources (real engine only). */
  readonly ops: string[] = [];
  constructor(private readonly onEvent: (e: EngineEvent) => void = () => undefined) {}
  step(s: StepInfo): void {
    this.steps.push(`start ${s.kind}${s.mode ? ` ${s.mode} ${s.index}/${s.total}` : ""}`);
  }
  stepDone(s: StepInfo, r: { ok: boolean }): void {
    this.steps.push(`${r.ok ? "done" : "failed"} ${s.kind}${s.mode ? ` ${s.mode}` : ""}`);
  }
  event(e: EngineEvent): void {
    this.events.push(e.sequence);
    const pre = e.resourcePreEvent;
    if (pre && pre.planning !== true && pre.metadata.type.startsWith("pulumi-nodejs:dynamic")) {
      this.ops.push(`${pre.metadata.op} ${pre.metadata.urn.split("::").pop() ?? ""}`);
    }
    this.onEvent(e);
  }
  output(): void {}
}

/**
 * runCompare on `stack` and its stack file: no destroy, a fresh recorder and stop control unless
 * given. `modes` are plain modes (as `--modes` gives them) or variants (`native+hostRouting=bpf`,
 * as `--variants` does).
 */
export function runModes(
  stack: LabStack,
  settingsFile: string,
  modes: string[],
  extra: { destroy?: boolean; stop?: StopControl; progress?: RecordingProgress; backupFile?: string } = {},
): Promise<RunRecord> {
  return runCompare({
    stack,
    settingsFile,
    variants: modes.map(parseVariant),
    listedAs: modes.every(isMode) ? "--modes" : "--variants",
    destroy: extra.destroy ?? false,
    progress: extra.progress ?? new RecordingProgress(),
    stop: extra.stop ?? new StopControl(),
    ...(extra.backupFile ? { backupFile: extra.backupFile } : {}),
  });
}

/**
 * The views of a run's record (modeViews), after checking that each mode's outputs were collected
 * after its own `up`: the throughput output of the i-th view names the i-th of `modes`.
 */
export function collectedViews(t: ExecutionContext, record: RunRecord, modes: readonly string[]): ModeView[] {
  const views = modeViews(record);
  t.deepEqual(
    views.map((v) => v.throughput?.routingMode),
    [...modes],
  );
  return views;
}
