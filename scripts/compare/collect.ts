/**
 * From what the orchestrator recorded (stack outputs after each `up`) to the view the report and
 * chart render, plus the environment (host facts, the stack's versions and evidence).
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";

import type { NodeEvidence } from "../../infra/verify/evidence";
import type { ThroughputOutput } from "../../infra/verify/iperf3";
import type { ModeRun, RunRecord as OrchestratorRecord } from "./orchestrate";
import type { FeaturesOutput } from "../../infra/verify/evidence";
import type { LatencyOutput } from "../../infra/verify/netperf";
import { agreed, nodeHostsView } from "./node-hosts";
import type { DatapathView, EnvironmentView, ModeView } from "./results";
import { parseVariant } from "./variants";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The `throughput` output, if it has the verification layer's shape (paths, ratio, runs). */
export function throughputOf(outputs: Readonly<Record<string, unknown>> | undefined): ThroughputOutput | undefined {
  const t = outputs?.throughput;
  if (
    isObject(t) &&
    isObject(t.podToPod) &&
    isObject(t.hostToHost) &&
    isObject(t.ratio) &&
    Array.isArray(t.runs) &&
    isObject(t.settings)
  ) {
    return t as unknown as ThroughputOutput;
  }
  return undefined;
}

/** The `datapath` output, if it has the verification layer's shape (verdict, checks, reasons). */
export function datapathOf(outputs: Readonly<Record<string, unknown>> | undefined): DatapathView | undefined {
  const d = outputs?.datapath;
  if (
    isObject(d) &&
    typeof d.requested === "string" &&
    typeof d.observed === "string" &&
    typeof d.verdict === "string" &&
    Array.isArray(d.checks) &&
    Array.isArray(d.reasons)
  ) {
    return d as unknown as DatapathView;
  }
  return undefined;
}

/** Whether `f` has the shape of the verification layer's `features` output (ok, nodes with lines). */
function isFeatures(f: unknown): f is FeaturesOutput {
  return (
    isObject(f) &&
    typeof f.ok === "boolean" &&
    Array.isArray(f.nodes) &&
    f.nodes.every((n) => isObject(n) && typeof n.node === "string" && Array.isArray(n.lines))
  );
}

/** The `features` output (else the copy inside `datapath`), if it has the verification layer's shape. */
export function featuresOf(outputs: Readonly<Record<string, unknown>> | undefined): FeaturesOutput | undefined {
  const own = outputs?.features;
  if (isFeatures(own)) {
    return own;
  }
  const d = outputs?.datapath;
  return isObject(d) && isFeatures(d.features) ? d.features : undefined;
}

/** The `latency` output, if it has the verification layer's shape (representative, table, runs, settings). */
export function latencyOutputOf(outputs: Readonly<Record<string, unknown>> | undefined): LatencyOutput | undefined {
  const l = outputs?.latency;
  if (
    isObject(l) &&
    typeof l.representative === "boolean" &&
    Array.isArray(l.table) &&
    Array.isArray(l.runs) &&
    isObject(l.settings)
  ) {
    return l as unknown as LatencyOutput;
  }
  return undefined;
}

/** What every view of a run carries: the variant's name, what it asked for and what it changed. */
function asked(run: ModeRun): Pick<ModeView, "mode" | "variant" | "asked" | "changes"> {
  return {
    mode: run.mode,
    ...(run.variant !== undefined ? { variant: run.variant } : {}),
    asked: run.set,
    ...(run.changes !== undefined ? { changes: run.changes } : {}),
  };
}

/**
 * One variant's view. A variant whose `up` succeeded but whose outputs lack `throughput` is shown
 * as failed with the reason: numbers without the verification layer's statistics are not reported.
 * `features` and `latency` are shown when the stack exports them.
 */
export function modeView(run: ModeRun): ModeView {
  if (run.status !== "measured") {
    return { ...asked(run), status: run.status, ...(run.error !== undefined ? { error: run.error } : {}) };
  }
  const throughput = throughputOf(run.outputs);
  const datapath = datapathOf(run.outputs);
  const features = featuresOf(run.outputs);
  const latency = latencyOutputOf(run.outputs);
  const extra = { ...(features ? { features } : {}), ...(latency ? { latency } : {}) };
  if (throughput === undefined) {
    const keys = Object.keys(run.outputs ?? {}).join(", ") || "none";
    return {
      ...asked(run),
      status: "failed",
      error:
        `pulumi up succeeded but the stack has no \`throughput\` output in the verification layer's shape ` +
        `(outputs: ${keys}). Is infra/verify wired into infra/index.ts?`,
      ...(datapath ? { datapath } : {}),
      ...extra,
    };
  }
  return { ...asked(run), status: "measured", throughput, ...(datapath ? { datapath } : {}), ...extra };
}

/** Every requested variant in order: the recorded ones, then those never started. */
export function modeViews(record: Pick<OrchestratorRecord, "modes" | "notRun">): ModeView[] {
  return [
    ...record.modes.map(modeView),
    ...record.notRun.map((name): ModeView => {
      const v = parseVariant(name);
      return { mode: v.mode, ...(v.name !== v.mode ? { variant: v.name } : {}), status: "not run" };
    }),
  ];
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

/** `a` when every node says `a`, else `node-1: a; node-2: b`. */
function perNode(values: readonly { node: string; value: string }[]): string | undefined {
  return agreed(values.map((v) => ({ who: v.node, value: v.value })));
}

/**
 * What the verification layer collected on the nodes (its `datapath.evidence.nodes`): kernels, NIC
 * MTU and driver, and the offload flags, each collapsed to one value when every node agrees.
 */
export function environmentFromEvidence(nodes: readonly NodeEvidence[]): {
  kernel: string | undefined;
  mtu: Record<string, number>;
  offloads: Record<string, string>;
} {
  const mtu: Record<string, number> = {};
  for (const n of nodes) {
    if (n.nic.mtu !== null) {
      mtu[`${n.node} ${n.nic.name}${n.nic.driver ? ` (${n.nic.driver})` : ""}`] = n.nic.mtu;
    }
  }
  const offloads: Record<string, string> = {};
  const flags = [...new Set(nodes.flatMap((n) => Object.keys(n.nic.offloads ?? {})))];
  for (const flag of flags) {
    const v = perNode(
      nodes.map((n) => ({
        node: n.node,
        value:
          n.nic.offloads?.[flag] ??
          (n.nic.ethtoolError !== null ? `ethtool failed: ${n.nic.ethtoolError}` : "not reported"),
      })),
    );
    if (v !== undefined) {
      offloads[`NIC ${flag}`] = v;
    }
  }
  return { kernel: perNode(nodes.map((n) => ({ node: n.node, value: n.kernel }))), mtu, offloads };
}

/**
 * The environment of a cluster run: the nodes' kernels, NIC MTU, driver and offloads from the
 * `datapath` output's evidence (collected on the nodes by the verification layer); the host's
 * kernel and CPU model (the VMs run on it: its CPU bounds the numbers); the accelerator from the
 * stack config; versions from the `versions` output, the runs (iperf3, and netperf's image) and the
 * Pulumi CLI; each node's libvirt host from every run's `nodeHosts` output (node-hosts.ts).
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
  const iperf3 = measured
    .map((r) => throughputOf(r.outputs)?.runs[0]?.iperf3Version)
    .find((v) => typeof v === "string");
  if (iperf3) {
    versions.iperf3 = iperf3;
  }
  const image = measured.map((r) => throughputOf(r.outputs)?.settings.image).find((v) => typeof v === "string");
  if (image) {
    versions["iperf3 image"] = image;
  }
  const netperf = measured.map((r) => latencyOutputOf(r.outputs)?.settings.image).find((v) => typeof v === "string");
  if (netperf) {
    versions["netperf image"] = netperf;
  }
  versions["pulumi CLI"] = input.pulumiVersion;
  versions["node (compare)"] = process.version;
  const fromEvidence = environmentFromEvidence(datapathOf(outputs)?.evidence?.nodes ?? []);
  const nodeKernel = fromEvidence.kernel;
  const { mtu, offloads } = fromEvidence;
  return {
    kernel:
      nodeKernel !== undefined
        ? `nodes: ${nodeKernel}; host: ${host.kernel}`
        : `host: ${host.kernel} (no node evidence in the outputs)`,
    cpuModel: `host: ${host.cpuModel} (${host.cpus} CPUs); the VMs see what the accelerator gives them`,
    accelerator: input.accelerator,
    tcg: input.accelerator === "qemu",
    versions,
    mtu,
    offloads,
    nodeHosts: nodeHostsView(input.runs),
  };
}
