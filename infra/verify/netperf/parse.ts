/**
 * Parsing one netperf client run made with {@link netperfClientArgs}: a banner line, the `-o` header
 * line, one CSV value line. Pure: no I/O, no Pulumi.
 *
 * What netperf 2.7.0 prints (captured from Debian's netperf 2.7.0-0.1 between two network
 * namespaces; test/verify/fixtures/netperf-2.7.0-*.txt hold the captures):
 * ```
 * MIGRATED TCP REQUEST/RESPONSE TEST from 0.0.0.0 (0.0.0.0) port 0 AF_INET to 172.31.9.1 () port 0 AF_INET : demo : first burst 0
 * Minimum Latency Microseconds,50th Percentile Latency Microseconds,…,Transaction Rate Tran/s
 * 12,13,42,65,20.75,69.69,3985,48113.714
 * ```
 * TCP_CRR's banner reads `MIGRATED TCP Connect/Request/Response TEST from …`. With no netserver on
 * the port, netperf exits 255 and prints (on stdout):
 * `establish control: are you sure there is a netserver listening on 172.31.9.1 at port 12999?`.
 * In a namespace whose only address is loopback it cannot even resolve `-H 127.0.0.1`:
 * `resolve_host: could not resolve host '127.0.0.1' port '12865' af AF_INET` and, on the next line,
 * `getaddrinfo returned -2 Name or service not known` (exit 255).
 * netperf prints -1 for a statistic it did not keep; an unknown selector leaves its column out of
 * the header and empty in the value line.
 */
import { tailOf, ToolOutputError } from "../iperf3/parse";
import { NETPERF_COLUMNS, NETPERF_SELECTORS, NETSERVER_PORT, type NetperfTest } from "./args";

/** One netperf run's numbers: latencies in µs, the rate in transactions per second. */
export interface NetperfRun {
  readonly test: NetperfTest;
  readonly minUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly stddevUs: number;
  readonly maxUs: number;
  readonly transactionsPerSecond: number;
  /** The address the banner says the test ran to (`… to <host> () port 0 …`): which path was measured. */
  readonly remoteHost: string | null;
}

/** netperf output that is not a usable result. `tail` holds the end of the output, for the message. */
export class NetperfError extends ToolOutputError {
  override name = "NetperfError";
}

/** The banner's test name per test (netperf 2.7.0 src/nettest_omni.c, as printed in the captures). */
const BANNER_TEST: Readonly<Record<NetperfTest, string>> = {
  TCP_RR: "TCP REQUEST/RESPONSE TEST",
  TCP_CRR: "TCP Connect/Request/Response TEST",
};

const NO_NETSERVER = /establish control: are you sure there is a netserver listening on (\S+) at port (\d+)\?/;
const NO_RESOLVE =
  /resolve_host: could not resolve host '([^']*)' port '(\d+)'[^\n]*\n\s*(getaddrinfo returned [^\n]*)/;
const HEADER = NETPERF_COLUMNS.map((c) => c.header).join(",");

/**
 * Parses one run's output (`kubectl logs` of the client, or its stdout). `label` names the run in
 * messages, e.g. `pod TCP_RR run 2 (job netperf-pod-tcp-rr-2-ab12cd34)`; it defaults to the test.
 *
 * Throws {@link NetperfError} with these exact messages (`<tail>`: the output's last 400 characters,
 * `<selectors>`: {@link NETPERF_SELECTORS}):
 * - `netperf <label>: no output.`
 * - `netperf <label>: no netserver listening on <host> port <port> (netperf exits 255: "establish control: are you sure there is a netserver listening on <host> at port <port>?"). Fix: start \`netserver -D -p 12865\` on the server side and check that <host> is reachable from the client.`
 * - `netperf <label>: netperf could not resolve <host> port <port> (getaddrinfo returned -2 Name or service not known; netperf exits 255). Fix: …`
 * - `netperf <label>: the banner names another test: expected "<TCP …>", found: <banner>`
 * - `netperf <label>: no header line "<header>" in the output (were the -o selectors <selectors> passed after --?). Output ends with: <tail>`
 * - `netperf <label>: no value line after the header (truncated?). Output ends with: <tail>`
 * - `netperf <label>: the value line has <n> columns, expected 8 (<selectors>): "<line>"`
 * - `netperf <label>: <SELECTOR> is not a number: "<value>" in "<line>"`
 * - `netperf <label>: netperf did not keep <SELECTOR> (printed <value>, netperf's mark for a statistic it did not keep). Fix: pass -j (keep timing statistics) before -t.`
 * - `netperf <label>: percentiles out of order: P50 <a> µs, P90 <b> µs, P99 <c> µs`
 */
export function parseNetperf(text: string, test: NetperfTest, label: string = test): NetperfRun {
  if (text.trim() === "") {
    throw new NetperfError(`netperf ${label}: no output.`, "");
  }
  const tail = tailOf(text);
  const fail = (message: string): never => {
    throw new NetperfError(`netperf ${label}: ${message}`, tail);
  };
  const refused = NO_NETSERVER.exec(text);
  if (refused) {
    const [line, host, port] = refused;
    fail(
      `no netserver listening on ${host} port ${port} (netperf exits 255: "${line}"). ` +
        `Fix: start \`netserver -D -p ${NETSERVER_PORT}\` on the server side and check that ${host} is reachable from the client.`,
    );
  }
  const unresolved = NO_RESOLVE.exec(text);
  if (unresolved) {
    const [, host, port, why] = unresolved;
    fail(
      `netperf could not resolve ${host} port ${port} (${why?.trim()}; netperf exits 255). ` +
        "Fix: pass an IP address to -H, from a network namespace with an IPv4 address besides loopback " +
        "(netperf 2.7.0 resolves even a numeric address with getaddrinfo, which fails there).",
    );
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const banner = lines.find((l) => / TEST from /.test(l)) ?? null;
  if (banner !== null && !banner.includes(BANNER_TEST[test])) {
    fail(`the banner names another test: expected "${BANNER_TEST[test]}", found: ${banner}`);
  }
  const at = lines.indexOf(HEADER);
  if (at < 0) {
    fail(
      `no header line "${HEADER}" in the output (were the -o selectors ${NETPERF_SELECTORS} passed after --?). Output ends with: ${tail}`,
    );
  }
  const line = lines.slice(at + 1).find((l) => l !== "");
  if (line === undefined) {
    return fail(`no value line after the header (truncated?). Output ends with: ${tail}`);
  }
  const cells = line.split(",");
  if (cells.length !== NETPERF_COLUMNS.length) {
    fail(
      `the value line has ${cells.length} columns, expected ${NETPERF_COLUMNS.length} (${NETPERF_SELECTORS}): "${line}"`,
    );
  }
  const values: Record<string, number> = {};
  NETPERF_COLUMNS.forEach((c, i) => {
    const cell = (cells[i] ?? "").trim();
    const v = /^-?\d+(\.\d+)?$/.test(cell) ? Number(cell) : NaN;
    if (!Number.isFinite(v)) {
      fail(`${c.selector} is not a number: "${cell}" in "${line}"`);
    }
    if (v < 0) {
      fail(
        `netperf did not keep ${c.selector} (printed ${cell}, netperf's mark for a statistic it did not keep). Fix: pass -j (keep timing statistics) before -t.`,
      );
    }
    values[c.field] = v;
  });
  const run = { test, ...values, remoteHost: /\bto (\S+) \(/.exec(banner ?? "")?.[1] ?? null } as NetperfRun;
  if (!(run.p50Us <= run.p90Us && run.p90Us <= run.p99Us)) {
    fail(`percentiles out of order: P50 ${run.p50Us} µs, P90 ${run.p90Us} µs, P99 ${run.p99Us} µs`);
  }
  return run;
}
