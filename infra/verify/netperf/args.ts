/**
 * netperf's command lines: the netserver beside each iperf3 server, and the TCP_RR / TCP_CRR client.
 * Pure: no I/O, no Pulumi.
 *
 * netperf 2.7.0 options used (HewlettPackard/netperf doc/netperf.texi, "Global Command-line Options"
 * and "Omni Output Selection"; `netperf -h` / `netserver -h` of Debian's netperf 2.7.0-0.1):
 * - `-H host` the netserver's address, `-p port` its control port (default 12865);
 * - `-l seconds` the test length, `-t TCP_RR|TCP_CRR` the test;
 * - `-j` "keep additional timing statistics": the histogram the percentiles come from;
 * - after `--`, `-o <selectors>`: CSV output, one header line naming each column, one value line;
 * - `netserver -D` stays in the foreground (a container's main process), `-p` its control port.
 */

/** netserver's control port: netperf's default (`-p`), fixed so both sides name it. */
export const NETSERVER_PORT = 12865;

/** The two request/response tests: one transaction per connection (TCP_CRR) or many on one (TCP_RR). */
export type NetperfTest = "TCP_RR" | "TCP_CRR";

/** Both tests, in the order they run. */
export const NETPERF_TESTS: readonly NetperfTest[] = ["TCP_RR", "TCP_CRR"];

/**
 * The `-o` output selectors, in column order, with the header netperf 2.7.0 prints for each (a real
 * capture: test/verify/fixtures/netperf-2.7.0-tcp_rr.txt). Latencies are in microseconds.
 */
export const NETPERF_COLUMNS = [
  { selector: "MIN_LATENCY", header: "Minimum Latency Microseconds", field: "minUs" },
  { selector: "P50_LATENCY", header: "50th Percentile Latency Microseconds", field: "p50Us" },
  { selector: "P90_LATENCY", header: "90th Percentile Latency Microseconds", field: "p90Us" },
  { selector: "P99_LATENCY", header: "99th Percentile Latency Microseconds", field: "p99Us" },
  { selector: "MEAN_LATENCY", header: "Mean Latency Microseconds", field: "meanUs" },
  { selector: "STDDEV_LATENCY", header: "Stddev Latency Microseconds", field: "stddevUs" },
  { selector: "MAX_LATENCY", header: "Maximum Latency Microseconds", field: "maxUs" },
  { selector: "TRANSACTION_RATE", header: "Transaction Rate Tran/s", field: "transactionsPerSecond" },
] as const;

/** The `-o` argument: every selector of {@link NETPERF_COLUMNS}, comma-separated. */
export const NETPERF_SELECTORS = NETPERF_COLUMNS.map((c) => c.selector).join(",");

/**
 * The client's full argv (`netperf` first): `target` is the netserver's address (a node IP or a pod
 * IP), `seconds` the test length. `T` lets callers pass a placeholder or a Pulumi output as target.
 */
export function netperfClientArgs<T = string>(input: {
  readonly test: NetperfTest;
  readonly target: T;
  readonly seconds: number;
}): (string | T)[] {
  if (!Number.isInteger(input.seconds) || input.seconds < 1) {
    throw new RangeError(`netperf test length must be a whole number of seconds >= 1 (got ${input.seconds}).`);
  }
  return [
    "netperf",
    "-H",
    input.target,
    "-p",
    String(NETSERVER_PORT),
    "-l",
    String(input.seconds),
    "-j",
    "-t",
    input.test,
    "--",
    "-o",
    NETPERF_SELECTORS,
  ];
}

/** netserver's full argv (`netserver` first): in the foreground, on {@link NETSERVER_PORT}. */
export function netserverArgs(): string[] {
  return ["netserver", "-D", "-p", String(NETSERVER_PORT)];
}
