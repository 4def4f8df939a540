/**
 * iperf3 results: parse `iperf3 -J` output, and turn repeated runs into honest, labelled numbers.
 * Pure: no I/O, no Pulumi; every function is table-tested (test/verify/iperf3.test.ts).
 *
 * - parse.ts: one `-J` client document (receiver-side throughput, sender retransmits, CPU);
 * - stats.ts: median, spread and the Student-t 95 % confidence interval;
 * - runs.ts: run records, per-path summaries and the paired pod/host ratio beside the article's;
 * - output.ts: the `throughput` stack output.
 *
 * The method is the one the benchmarks we compare with use (k8s-netperf, InfraBuilder's 2024 CNI
 * benchmark).
 */
export {
  TCG_WARNING,
  UNITS,
  summarizeThroughput,
  type TableRow,
  type ThroughputOutput,
  type ThroughputSettings,
} from "./output";
export { Iperf3OutputError, TAIL_CHARS, parseIperf3Json, tailOf, type Iperf3Result } from "./parse";
export {
  ARTICLE,
  RATIO_METHOD,
  articleRatio,
  bitsToGbitPerSecond,
  bitsToMiBPerSecond,
  pairedRatio,
  runRecord,
  summarizePath,
  type PathName,
  type PathSummary,
  type RatioSummary,
  type RunRecord,
} from "./runs";
export { CI95_METHOD, T_975, describe, scaleStats, tCritical975, type Interval, type Stats } from "./stats";
