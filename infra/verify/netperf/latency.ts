/**
 * The `latency` stack output: every netperf run as a record, each path × test summarised over the
 * runs (median and spread, in µs), pod beside host, and the TCG flag. Pure: no I/O, no Pulumi.
 */
import { inRunOrder, measuredOutput, type MeasuredInput, type MeasuredOutput } from "../iperf3/output";
import type { PathName } from "../iperf3/runs";
import { describe, type Stats } from "../iperf3/stats";
import type { NetperfTest } from "./args";
import type { NetperfRun } from "./parse";

/** The units every latency number is given in, spelled out for readers of the stack output. */
export const LATENCY_UNITS = {
  latencyUs:
    "µs per transaction (one request and one response, TCP_CRR also the connection's setup and teardown), " +
    "as netperf -j -o MIN_LATENCY,P50_LATENCY,P90_LATENCY,P99_LATENCY,MEAN_LATENCY,STDDEV_LATENCY,MAX_LATENCY prints them",
  transactionsPerSecond: "transactions per second: netperf's TRANSACTION_RATE (Tran/s)",
  overRuns:
    "each run's figure is one netperf run; summaries are over the runs: median, min and max (the spread), mean, sample stdev, 95 % CI",
  podOverHost: "pod-to-pod / host-to-host of the median P50, dimensionless",
} as const;

/** One measured netperf run, as exported: the parsed run with where it sits in the sequence. */
export interface LatencyRunRecord extends NetperfRun {
  /** `host`: hostNetwork client → hostNetwork netserver (node IPs); `pod`: pod → pod over pod IPs. */
  readonly path: PathName;
  /** 1-based repetition, the same as the iperf3 run it is interleaved with. */
  readonly run: number;
  /** Position in the whole latency sequence, 1-based. */
  readonly order: number;
  /** The Kubernetes Job (or, in tests, the label) that ran it. */
  readonly job: string;
}

/** Builds a {@link LatencyRunRecord} from a parsed run. */
export function latencyRunRecord(
  path: PathName,
  run: number,
  order: number,
  job: string,
  r: NetperfRun,
): LatencyRunRecord {
  return { path, run, order, job, ...r };
}

/** One path × test over its runs; each field's statistics are over the runs' values of it. */
export interface LatencySummary {
  readonly path: PathName;
  readonly test: NetperfTest;
  readonly runs: number;
  readonly minUs: Stats;
  readonly p50Us: Stats;
  readonly p90Us: Stats;
  readonly p99Us: Stats;
  readonly meanUs: Stats;
  readonly transactionsPerSecond: Stats;
}

/** Summarises the runs of `path` × `test`. */
export function summarizeLatency(path: PathName, test: NetperfTest, runs: readonly LatencyRunRecord[]): LatencySummary {
  const mine = runs.filter((r) => r.path === path && r.test === test);
  if (mine.length === 0) {
    throw new RangeError(`no ${path} ${test} runs to summarise`);
  }
  const of = (f: (r: LatencyRunRecord) => number, unit: string) => describe(mine.map(f), unit);
  return {
    path,
    test,
    runs: mine.length,
    minUs: of((r) => r.minUs, "µs"),
    p50Us: of((r) => r.p50Us, "µs"),
    p90Us: of((r) => r.p90Us, "µs"),
    p99Us: of((r) => r.p99Us, "µs"),
    meanUs: of((r) => r.meanUs, "µs"),
    transactionsPerSecond: of((r) => r.transactionsPerSecond, "Tran/s"),
  };
}

/** Median and spread of one figure, as a table cell. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** A row of the latency table: one path × test. */
export interface LatencyRow {
  readonly row: "host-to-host" | "pod-to-pod";
  readonly test: NetperfTest;
  readonly p50Us: Spread;
  readonly p90Us: Spread;
  readonly p99Us: Spread;
  readonly meanUs: Spread;
  readonly transactionsPerSecond: Spread;
}

/** What was run, exported with the numbers. */
export interface LatencySettings {
  readonly image: string;
  readonly seconds: number;
  readonly runs: number;
  readonly tests: readonly NetperfTest[];
  /** The client's exact argv per test (target address shown as `<target>`). */
  readonly clientArgs: Readonly<Partial<Record<NetperfTest, readonly string[]>>>;
  readonly serverArgs: readonly string[];
  readonly server: { readonly node: string; readonly hostIp: string; readonly podIp: string };
  readonly client: { readonly node: string };
  readonly order: string;
}

/** The `latency` stack output. */
export interface LatencyOutput extends MeasuredOutput<typeof LATENCY_UNITS, LatencySettings> {
  /** host-to-host and pod-to-pod per test: median and spread (min, max) over the runs. */
  readonly table: readonly LatencyRow[];
  /** Full statistics per path × test, in table order. */
  readonly summaries: readonly LatencySummary[];
  /** Per test: median pod P50 / median host P50 and their difference in µs (what the pod datapath adds). */
  readonly podOverHost: readonly {
    readonly test: NetperfTest;
    /** `null` when the host's median P50 is 0 µs (no ratio exists). */
    readonly p50Ratio: number | null;
    readonly p50DifferenceUs: number;
  }[];
  /** Every run, in the order it ran. */
  readonly runs: readonly LatencyRunRecord[];
}

/** The warning attached to TCG results. */
export const LATENCY_TCG_WARNING =
  "Measured with accelerator: qemu (TCG, software-emulated CPUs): every transaction's microseconds are dominated by " +
  "instruction emulation, not by the datapath; neither the latencies nor the pod/host comparison represent KVM or hardware.";

function spread(s: Stats): Spread {
  return { median: s.median, min: s.min, max: s.max };
}

/** Builds the `latency` output: every path × `settings.tests` must have at least one run. */
export function latencyOf(input: MeasuredInput<LatencyRunRecord, LatencySettings>): LatencyOutput {
  const tests = input.settings.tests;
  const missing = tests.flatMap((test) =>
    (["host", "pod"] as const)
      .filter((path) => !input.runs.some((r) => r.path === path && r.test === test))
      .map((path) => `${path} ${test}`),
  );
  if (tests.length === 0 || missing.length > 0) {
    throw new RangeError(
      `latency needs at least one run per path and test (tests ${tests.join(", ") || "none"}); missing: ${missing.join(", ") || "every test"}`,
    );
  }
  const summaries = tests.flatMap((test) =>
    (["host", "pod"] as const).map((p) => summarizeLatency(p, test, input.runs)),
  );
  const find = (path: PathName, test: NetperfTest) =>
    summaries.find((s) => s.path === path && s.test === test) as LatencySummary;
  return {
    ...measuredOutput(LATENCY_UNITS, LATENCY_TCG_WARNING, input),
    table: summaries.map((s) => ({
      row: s.path === "host" ? "host-to-host" : "pod-to-pod",
      test: s.test,
      p50Us: spread(s.p50Us),
      p90Us: spread(s.p90Us),
      p99Us: spread(s.p99Us),
      meanUs: spread(s.meanUs),
      transactionsPerSecond: spread(s.transactionsPerSecond),
    })),
    summaries,
    podOverHost: tests.map((test) => {
      const host = find("host", test).p50Us.median;
      const pod = find("pod", test).p50Us.median;
      return { test, p50Ratio: host > 0 ? pod / host : null, p50DifferenceUs: pod - host };
    }),
    runs: inRunOrder(input.runs),
  };
}
