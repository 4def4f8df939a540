/**
 * Progress on the terminal during the long run: which step, elapsed time, the resources the engine
 * is working on (from the Automation API's engine events), and a heartbeat while a step is quiet.
 * Pulumi's full text output goes to a log file beside the results instead.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";

import type { Progress, StepInfo } from "./orchestrate";

/** `75` → `1m15s`; `3725` → `1h02m05s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) {
    return `${h}h${String(m).padStart(2, "0")}m${String(r).padStart(2, "0")}s`;
  }
  return m > 0 ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

/** `up native (3/3)`, `destroy`, `restore config`. */
export function stepLabel(step: StepInfo): string {
  const what = step.kind === "restore" ? "restore stack config" : step.kind === "config" ? "set config" : step.kind;
  if (step.mode === undefined) {
    return what;
  }
  return `${step.mode} (${step.index ?? "?"}/${step.total ?? "?"}) ${what}`;
}

/** `urn:pulumi:vxlan::cilium-lab::lab:nodes:Vm$pulumi-nodejs:dynamic/libvirt:Domain::node-1` → `node-1 (pulumi-nodejs:dynamic/libvirt:Domain)`. */
export function resourceLabel(urn: string, type: string): string {
  const name = urn.split("::").pop() ?? urn;
  return `${name} (${type})`;
}

/** Operations worth a line on the terminal; `same`/`read`/`refresh` would flood it on a reused lab. */
const SHOWN_OPS = new Set(["create", "update", "delete", "replace", "create-replacement", "delete-replaced", "import"]);

/** Terminal progress: one line per step, resource change and warning, plus a heartbeat. */
export class TerminalProgress implements Progress {
  private readonly t0: number;
  private current: { step: StepInfo; start: number } | undefined;
  private lastLine: number;
  private readonly inFlight = new Map<string, string>();
  private done = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  /**
   * @param write where lines go (stderr in the CLI)
   * @param log where Pulumi's own output goes (a log file), or undefined to drop it
   * @param heartbeatSeconds print "still running" after this many quiet seconds (0: never)
   */
  constructor(
    private readonly write: (line: string) => void,
    private readonly log: ((text: string) => void) | undefined,
    heartbeatSeconds = 30,
    private readonly now: () => number = Date.now,
  ) {
    this.t0 = now();
    this.lastLine = this.t0;
    if (heartbeatSeconds > 0) {
      this.timer = setInterval(() => this.heartbeat(heartbeatSeconds), 1000);
      this.timer.unref();
    }
  }

  /** Stops the heartbeat. */
  close(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
    }
  }

  /** Prints one line, prefixed with the total elapsed time. */
  line(text: string): void {
    const t = this.now();
    this.lastLine = t;
    this.write(`[compare ${formatDuration((t - this.t0) / 1000).padStart(8)}] ${text}`);
  }

  step(step: StepInfo): void {
    this.current = { step, start: this.now() };
    this.inFlight.clear();
    this.done = 0;
    this.line(`${stepLabel(step)}: started`);
  }

  stepDone(step: StepInfo, result: { ok: boolean; seconds: number; detail?: string }): void {
    const detail = result.detail !== undefined && result.detail !== "" ? ` (${result.detail})` : "";
    this.line(`${stepLabel(step)}: ${result.ok ? "done" : "FAILED"} in ${formatDuration(result.seconds)}${detail}`);
    this.current = undefined;
  }

  event(e: EngineEvent): void {
    if (e.resourcePreEvent !== undefined && e.resourcePreEvent.planning !== true) {
      const { op, urn, type } = e.resourcePreEvent.metadata;
      if (type === "pulumi:pulumi:Stack" || type.startsWith("pulumi:providers:")) {
        return;
      }
      this.inFlight.set(urn, resourceLabel(urn, type));
      if (SHOWN_OPS.has(op)) {
        this.line(`  ${op} ${resourceLabel(urn, type)}`);
      }
    } else if (e.resOutputsEvent !== undefined && e.resOutputsEvent.planning !== true) {
      if (this.inFlight.delete(e.resOutputsEvent.metadata.urn)) {
        this.done += 1;
      }
    } else if (e.resOpFailedEvent !== undefined) {
      const { op, urn, type } = e.resOpFailedEvent.metadata;
      this.inFlight.delete(urn);
      this.line(`  FAILED ${op} ${resourceLabel(urn, type)}`);
    } else if (e.diagnosticEvent !== undefined) {
      const d = e.diagnosticEvent;
      if (d.severity === "warning" || d.severity === "error") {
        // Pulumi's diagnostics carry colour codes (`<{%reset%}>`); strip them for a plain terminal line.
        const text =
          d.message
            .replace(/<\{%[^%]*%\}>/g, "")
            .trim()
            .split("\n")[0] ?? "";
        this.line(`  ${d.severity}: ${text}`);
      }
    }
  }

  output(text: string): void {
    this.log?.(text);
  }

  private heartbeat(quietSeconds: number): void {
    const t = this.now();
    if (this.current === undefined || t - this.lastLine < quietSeconds * 1000) {
      return;
    }
    const names = [...this.inFlight.values()];
    const flying =
      names.length === 0
        ? ""
        : `; in flight: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ` and ${names.length - 3} more` : ""}`;
    this.line(
      `${stepLabel(this.current.step)}: still running, ${formatDuration((t - this.current.start) / 1000)} in this step, ` +
        `${this.done} resources done${flying}`,
    );
  }
}
