/**
 * From what the orchestrator recorded (stack outputs after each `up`) to the view the report and
 * chart render, plus the environment (host facts, the stack's versions and evidence).
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";

import type { ThroughputOutput } from "../../infra/verify/iperf3";
import type { ModeRun, RunRecord as OrchestratorRecord } from "./orchestrate";
import type { DatapathLike, EnvironmentView, ModeView } from "./results";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The `throughput` output, if it has the verification layer's shape (paths, ratio, runs). */
export function throughputOf(outputs: Readonly<Record<string, unknown>> | undefined): ThroughputOutput | undefined {
  const t = outputs?.throughput;
  if (isObject(t) && isObject(t.podToPod) && isObject(t.hostToHost) && isObject(t.ratio) && Array.isArray(t.runs) && isObject(t.settings)) {
    return t as unknown as ThroughputOutput;
  }
  return undefined;
}

/** The `datapath` output, if it has the shape {requested, observed, evidence, verdict}. */
export function datapathOf(outputs: Readonly<Record<string, unknown>> | undefined): DatapathLike | undefined {
  const d = outputs?.datapath;
  if (isObject(d) && typeof d.requested === "string" && typeof d.observed === "string" && typeof d.verdict === "string") {
    return { requested: d.requested, observed: d.observed, verdict: d.verdict, evidence: d.evidence };
  }
  return undefined;
}

/**
 * One mode's view. A mode whose `up` succeeded but whose outputs lack `throughput` is shown as
 * failed with the reason: numbers without the verification layer's statistics are not reported.
 */
export function modeView(run: ModeRun): ModeView {
  if (run.status !== "measured") {
    return { mode: run.mode, status: run.status, ...(run.error !== undefined ? { error: run.error } : {}) };
  }
  const throughput = throughputOf(run.outputs);
  const datapath = datapathOf(run.outputs);
  if (throughput === undefined) {
    const keys = Object.keys(run.outputs ?? {}).join(", ") || "none";
    return {
      mode: run.mode,
      status: "failed",
      error:
        `pulumi up succeeded but the stack has no \`throughput\` output in the verification layer's shape ` +
        `(outputs: ${keys}). Is infra/verify wired into infra/index.ts?`,
      ...(datapath ? { datapath } : {}),
    };
  }
  return { mode: run.mode, status: "measured", throughput, ...(datapath ? { datapath } : {}) };
}

/** Every requested mode in order: the recorded ones, then those never started. */
export function modeViews(record: Pick<OrchestratorRecord, "modes" | "notRun">): ModeView[] {
  return [...record.modes.map(modeView), ...record.notRun.map((mode): ModeView => ({ mode, status: "not run" }))];
}

/** The host's kernel and CPU model (the lab's VMs run on it; with TCG or KVM, its CPU bounds the numbers). */
export function hostFacts(): { kernel: string; cpuModel: string; cpus: number } {
  let cpuModel = os.cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    cpuModel = m?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux: os.cpus() is all there is.
  }
  return { kernel: `${os.type()} ${os.release()}`, cpuModel, cpus: os.cpus().length };
}

/** A string field of an object output, or undefined. */
function field(o: unknown, key: string): string | undefined {
  if (!isObject(o)) {
    return undefined;
  }
  const v = o[key];
  return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
}

/**
 * The environment of a cluster run: the host's kernel and CPU; the accelerator from the stack
 * config; versions from the stack's `versions` output, iperf3's from the runs, Pulumi's CLI; node
 * kernel, MTU and offloads from an `environment` output when the program exports one
 * (`{ kernel, cpuModel, mtu: {iface: n}, offloads: {feature: state} }`).
 */
export function clusterEnvironment(input: {
  readonly runs: readonly ModeRun[];
  readonly accelerator: string;
  readonly pulumiVersion: string;
}): EnvironmentView {
  const host = hostFacts();
  const measured = input.runs.filter((r) => r.outputs !== undefined);
  const outputs = measured[measured.length - 1]?.outputs ?? {};
  const versions: Record<string, string> = {};
  for (const key of ["cilium", "k3s"]) {
    const v = field(outputs.versions, key);
    if (v !== undefined) {
      versions[key] = v;
    }
  }
  const iperf3 = measured.map((r) => throughputOf(r.outputs)?.runs[0]?.iperf3Version).find((v) => typeof v === "string");
  if (iperf3) {
    versions.iperf3 = iperf3;
  }
  versions["pulumi CLI"] = input.pulumiVersion;
  versions.node = process.version;
  const env = outputs.environment;
  const mtu: Record<string, number> = {};
  const offloads: Record<string, string> = {};
  if (isObject(env)) {
    for (const [k, v] of Object.entries(isObject(env.mtu) ? env.mtu : {})) {
      if (typeof v === "number") {
        mtu[k] = v;
      }
    }
    for (const [k, v] of Object.entries(isObject(env.offloads) ? env.offloads : {})) {
      offloads[k] = String(v);
    }
  }
  const nodeKernel = field(env, "kernel");
  const nodeCpu = field(env, "cpuModel");
  return {
    kernel: nodeKernel !== undefined ? `nodes: ${nodeKernel}; host: ${host.kernel}` : `host: ${host.kernel} (node kernels not exported by the stack)`,
    cpuModel: nodeCpu !== undefined ? `nodes: ${nodeCpu}; host: ${host.cpuModel} (${host.cpus} CPUs)` : `host: ${host.cpuModel} (${host.cpus} CPUs)`,
    accelerator: input.accelerator,
    tcg: input.accelerator === "qemu",
    versions,
    mtu,
    offloads,
  };
}
