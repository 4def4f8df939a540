/**
 * The `throughput` stack output: the units spelled out, the settings that were run, the article's
 * table measured, both paths' summaries, the ratio and every run. Pure: no I/O, no Pulumi.
 */
import { ARTICLE, pairedRatio, summarizePath, type PathSummary, type RatioSummary, type RunRecord } from "./runs";
import { CI95_METHOD, type Interval, type Stats } from "./stats";

/** The units every throughput number is given in, spelled out for readers of the stack output. */
export const UNITS = {
  bitsPerSecond: "bit/s, receiver side: iperf3 -J end.sum_received.bits_per_second",
  mibPerSecond: "MiB/s = bytes/s / 2^20, what the article's `iperf3 -f M` prints as MBytes/sec",
  gbitPerSecond: "Gbit/s = bits/s / 10^9",
  retransmits: "TCP retransmits counted by the sender: end.sum_sent.retransmits",
  cpuPercent:
    "% of one machine's CPU time during the run: end.cpu_utilization_percent (host_total on the client, remote_total on the server)",
  ratio: "pod-to-pod / host-to-host, dimensionless",
} as const;

/** What was run, exported with the numbers. */
export interface ThroughputSettings {
  readonly image: string;
  readonly seconds: number;
  readonly omitSeconds: number;
  readonly streams: number;
  readonly runs: number;
  /** The client's exact arguments (target address shown as `<target>`). */
  readonly clientArgs: readonly string[];
  readonly server: { readonly node: string; readonly hostIp: string; readonly podIp: string };
  readonly client: { readonly node: string };
  readonly order: string;
}

/** A row of the article's table, measured. */
export interface TableRow {
  readonly row: "host-to-host" | "pod-to-pod";
  readonly mibPerSecond: {
    readonly median: number;
    readonly min: number;
    readonly max: number;
    readonly ci95: Interval | null;
  };
  readonly gbitPerSecond: {
    readonly median: number;
    readonly min: number;
    readonly max: number;
    readonly ci95: Interval | null;
  };
  /** The article's figure for this row and mode, MiB/s; `null` for Geneve pod-to-pod. */
  readonly articleMiBPerSecond: number | null;
}

/** What the `throughput` and `latency` stack outputs both begin with. */
export interface MeasuredOutput<Units, Settings> {
  readonly units: Units;
  readonly ci95Method: string;
  /** The routing mode the numbers belong to (proven by the `datapath` output). */
  readonly routingMode: "vxlan" | "geneve" | "native";
  /**
   * `false` when the VMs ran under TCG (`accelerator: qemu`): software-emulated CPUs make absolute
   * numbers and even ratios unrepresentative of KVM or hardware.
   */
  readonly representative: boolean;
  /** Why not representative, or `null`. */
  readonly warning: string | null;
  readonly settings: Settings;
}

/** What a {@link MeasuredOutput} is built from: every run, the routing mode, the accelerator and the settings. */
export interface MeasuredInput<Run, Settings> {
  readonly runs: readonly Run[];
  readonly routingMode: "vxlan" | "geneve" | "native";
  readonly accelerator: "kvm" | "qemu";
  readonly settings: Settings;
}

/** The head of a measured output: `tcgWarning` is the warning when the runs were not under KVM. */
export function measuredOutput<Units, Settings>(
  units: Units,
  tcgWarning: string,
  input: MeasuredInput<unknown, Settings>,
): MeasuredOutput<Units, Settings> {
  const representative = input.accelerator === "kvm";
  return {
    units,
    ci95Method: CI95_METHOD,
    routingMode: input.routingMode,
    representative,
    warning: representative ? null : tcgWarning,
    settings: input.settings,
  };
}

/** Every run in the order it ran. */
export function inRunOrder<Run extends { readonly order: number }>(runs: readonly Run[]): Run[] {
  return [...runs].sort((a, b) => a.order - b.order);
}

/** The `throughput` stack output. */
export interface ThroughputOutput extends MeasuredOutput<typeof UNITS, ThroughputSettings> {
  /** The article's table, measured: host-to-host and pod-to-pod, median and spread in both units. */
  readonly table: readonly TableRow[];
  readonly hostToHost: PathSummary;
  readonly podToPod: PathSummary;
  readonly ratio: RatioSummary;
  /** Every run, in the order it ran. */
  readonly runs: readonly RunRecord[];
}

/** The warning attached to TCG results. */
export const TCG_WARNING =
  "Measured with accelerator: qemu (TCG, software-emulated CPUs): throughput is bound by instruction emulation, " +
  "not by the datapath; neither the absolute numbers nor the pod/host ratio represent KVM or hardware.";

function row(name: TableRow["row"], s: PathSummary, article: number | null): TableRow {
  const pick = (st: Stats) => ({ median: st.median, min: st.min, max: st.max, ci95: st.ci95 });
  return {
    row: name,
    mibPerSecond: pick(s.mibPerSecond),
    gbitPerSecond: pick(s.gbitPerSecond),
    articleMiBPerSecond: article,
  };
}

/** Builds the `throughput` output from every run. */
export function summarizeThroughput(input: MeasuredInput<RunRecord, ThroughputSettings>): ThroughputOutput {
  const hostToHost = summarizePath("host", input.runs);
  const podToPod = summarizePath("pod", input.runs);
  const podArticle =
    input.routingMode === "vxlan"
      ? ARTICLE.vxlanMiBPerSecond
      : input.routingMode === "native"
        ? ARTICLE.nativeMiBPerSecond
        : null;
  return {
    ...measuredOutput(UNITS, TCG_WARNING, input),
    table: [row("host-to-host", hostToHost, ARTICLE.hostMiBPerSecond), row("pod-to-pod", podToPod, podArticle)],
    hostToHost,
    podToPod,
    ratio: pairedRatio(input.runs, input.routingMode),
    runs: inRunOrder(input.runs),
  };
}
