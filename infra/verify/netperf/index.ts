/**
 * netperf latency: the netserver and client command lines, parsing one `-o` run, and turning
 * repeated runs into the `latency` stack output. Pure: no I/O, no Pulumi; table-tested in
 * test/verify/netperf.test.ts and run for real between network namespaces in
 * test/verify/netperf.netns.test.ts.
 *
 * - args.ts: `netserver -D -p 12865`, `netperf -H <target> -p 12865 -l <s> -j -t TCP_RR|TCP_CRR -- -o …`;
 * - parse.ts: one run's banner, header and values, with exact errors (no netserver, malformed output);
 * - latency.ts: run records, per path × test summaries (median and spread over runs, µs), the output.
 *
 * Statistics reuse ../iperf3/stats.ts (median, min, max, mean, stdev, Student-t 95 % CI).
 */
export {
  NETPERF_COLUMNS,
  NETPERF_SELECTORS,
  NETPERF_TESTS,
  NETSERVER_PORT,
  netperfClientArgs,
  netserverArgs,
  type NetperfTest,
} from "./args";
export {
  LATENCY_TCG_WARNING,
  LATENCY_UNITS,
  latencyOf,
  latencyRunRecord,
  summarizeLatency,
  type LatencyOutput,
  type LatencyRow,
  type LatencyRunRecord,
  type LatencySettings,
  type LatencySummary,
  type Spread,
} from "./latency";
export { NetperfError, parseNetperf, type NetperfRun } from "./parse";
