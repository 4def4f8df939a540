/**
 * netperf's pure parts: the command lines, the parser against real netperf 2.7.0 output, its exact
 * errors, and the `latency` output's statistics.
 *
 * Fixtures (test/verify/fixtures/netperf-2.7.0-*.txt) are real captures, stdout and stderr as
 * `kubectl logs` shows them, of Debian bookworm's netperf 2.7.0-0.1 (non-free) between two network
 * namespaces joined by veth, with exactly the argv of netperfClientArgs (`-l 2`), on 2026-12-03:
 * - tcp_rr / tcp_crr: `netperf -H 172.31.9.1 -p 12865 -l 2 -j -t TCP_RR|TCP_CRR -- -o <selectors>`;
 * - no-netserver: the same towards 172.31.9.2, where nothing listened (netperf exited 255);
 * - no-address: towards 127.0.0.1 from a namespace whose only address is loopback (exit 255);
 * - unknown-selector: `-o MIN_LATENCY,NO_SUCH_SELECTOR,P50_LATENCY` (netperf drops the unknown column
 *   from the header but not from the values).
 * The earlier loopback capture below (netperf 2.7.0, no `-j`, seven selectors without MAX_LATENCY)
 * is the shape of a client run with other selectors; its header is not ours.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import {
  LATENCY_TCG_WARNING,
  NETPERF_SELECTORS,
  NETSERVER_PORT,
  NetperfError,
  latencyOf,
  latencyRunRecord,
  netperfClientArgs,
  netserverArgs,
  parseNetperf,
  type LatencyRunRecord,
  type LatencySettings,
  type NetperfRun,
} from "../../infra/verify/netperf";

const fixture = (name: string) => readFileSync(path.join(__dirname, "fixtures", `netperf-2.7.0-${name}.txt`), "utf8");
const RR = fixture("tcp_rr");
const CRR = fixture("tcp_crr");
const HEADER = RR.split("\n")[1] as string;
const LOOPBACK_SEVEN_COLUMNS = [
  "MIGRATED TCP REQUEST/RESPONSE TEST from 0.0.0.0 (0.0.0.0) port 0 AF_INET to 127.0.0.1 () port 0 AF_INET : demo : first burst 0",
  "Minimum Latency Microseconds,50th Percentile Latency Microseconds,90th Percentile Latency Microseconds,99th Percentile Latency Microseconds,Mean Latency Microseconds,Stddev Latency Microseconds,Transaction Rate Tran/s",
  "15,17,21,38,19.33,55.61,51599.156",
].join("\n");

/** `RR` with its value line replaced. */
const withValues = (line: string) => RR.replace(/^[0-9].*$/m, line);

test("netserver runs in the foreground on netperf's default control port", (t) => {
  t.is(NETSERVER_PORT, 12865);
  t.deepEqual(netserverArgs(), ["netserver", "-D", "-p", "12865"]);
});

test("the client's argv: target, port, length, -j before -t, and every -o selector after --", (t) => {
  t.deepEqual(netperfClientArgs({ test: "TCP_CRR", target: "10.0.1.5", seconds: 10 }), [
    "netperf",
    "-H",
    "10.0.1.5",
    "-p",
    "12865",
    "-l",
    "10",
    "-j",
    "-t",
    "TCP_CRR",
    "--",
    "-o",
    "MIN_LATENCY,P50_LATENCY,P90_LATENCY,P99_LATENCY,MEAN_LATENCY,STDDEV_LATENCY,MAX_LATENCY,TRANSACTION_RATE",
  ]);
  t.is(netperfClientArgs({ test: "TCP_RR", target: "<target>", seconds: 1 }).join(" ").includes("-t TCP_RR"), true);
  t.throws(() => netperfClientArgs({ test: "TCP_RR", target: "x", seconds: 0 }), {
    message: "netperf test length must be a whole number of seconds >= 1 (got 0).",
  });
});

test("real TCP_RR and TCP_CRR output parses into every column, in µs and Tran/s", (t) => {
  t.deepEqual(parseNetperf(RR, "TCP_RR"), {
    test: "TCP_RR",
    minUs: 12,
    p50Us: 13,
    p90Us: 15,
    p99Us: 53,
    meanUs: 28.95,
    stddevUs: 258.93,
    maxUs: 33845,
    transactionsPerSecond: 34497.398,
    remoteHost: "172.31.9.1",
  });
  const crr = parseNetperf(CRR, "TCP_CRR");
  t.deepEqual(
    [crr.minUs, crr.p50Us, crr.p90Us, crr.p99Us, crr.maxUs, crr.transactionsPerSecond],
    [51, 53, 58, 2322, 11273, 8722.953],
  );
});

const err = (text: string, test: "TCP_RR" | "TCP_CRR" = "TCP_RR", label?: string) => {
  try {
    parseNetperf(text, test, label);
  } catch (e) {
    if (e instanceof NetperfError) {
      return e.message;
    }
    throw e;
  }
  throw new Error("parseNetperf did not throw");
};

test("no netserver (exit 255): the exact error quotes netperf's own line and says what to do", (t) => {
  t.is(
    err(fixture("no-netserver"), "TCP_RR", "pod TCP_RR run 1"),
    'netperf pod TCP_RR run 1: no netserver listening on 172.31.9.2 port 12865 (netperf exits 255: "establish control: are you sure there is a netserver listening on 172.31.9.2 at port 12865?"). ' +
      "Fix: start `netserver -D -p 12865` on the server side and check that 172.31.9.2 is reachable from the client.",
  );
});

test("no address besides loopback (exit 255, getaddrinfo fails even for 127.0.0.1): the exact error", (t) => {
  t.is(
    err(fixture("no-address")),
    "netperf TCP_RR: netperf could not resolve 127.0.0.1 port 12865 (getaddrinfo returned -2 Name or service not known; netperf exits 255). " +
      "Fix: pass an IP address to -H, from a network namespace with an IPv4 address besides loopback " +
      "(netperf 2.7.0 resolves even a numeric address with getaddrinfo, which fails there).",
  );
});

test("malformed output gives exact errors: empty, other selectors, no value line, column count, not a number", (t) => {
  t.is(err("  \n"), "netperf TCP_RR: no output.");
  t.is(
    err(LOOPBACK_SEVEN_COLUMNS),
    `netperf TCP_RR: no header line "${HEADER}" in the output (were the -o selectors ${NETPERF_SELECTORS} passed after --?). Output ends with: ${LOOPBACK_SEVEN_COLUMNS}`,
  );
  const unknown = fixture("unknown-selector");
  t.is(
    err(unknown),
    `netperf TCP_RR: no header line "${HEADER}" in the output (were the -o selectors ${NETPERF_SELECTORS} passed after --?). Output ends with: ${unknown.trimEnd()}`,
  );
  const cut = RR.split("\n").slice(0, 2).join("\n");
  t.is(err(cut), `netperf TCP_RR: no value line after the header (truncated?). Output ends with: ${cut}`);
  t.is(
    err(withValues("12,13,15,53,28.95,258.93,33845")),
    `netperf TCP_RR: the value line has 7 columns, expected 8 (${NETPERF_SELECTORS}): "12,13,15,53,28.95,258.93,33845"`,
  );
  t.is(
    err(withValues("12,13,,53,28.95,258.93,33845,34497.398")),
    'netperf TCP_RR: P90_LATENCY is not a number: "" in "12,13,,53,28.95,258.93,33845,34497.398"',
  );
  t.is(
    err(withValues("12,13,15,53,28.95,258.93,33845,1e3")),
    'netperf TCP_RR: TRANSACTION_RATE is not a number: "1e3" in "12,13,15,53,28.95,258.93,33845,1e3"',
  );
});

test("-1, netperf's mark for a statistic it did not keep, is an error naming the statistic", (t) => {
  t.is(
    err(withValues("12,-1,15,53,28.95,258.93,33845,34497.398")),
    "netperf TCP_RR: netperf did not keep P50_LATENCY (printed -1, netperf's mark for a statistic it did not keep). Fix: pass -j (keep timing statistics) before -t.",
  );
});

test("a run of the other test, or percentiles out of order, is refused", (t) => {
  t.is(
    err(CRR, "TCP_RR"),
    'netperf TCP_RR: the banner names another test: expected "TCP REQUEST/RESPONSE TEST", found: ' +
      (CRR.split("\n")[0] as string),
  );
  t.is(
    err(withValues("12,60,15,53,28.95,258.93,33845,34497.398")),
    "netperf TCP_RR: percentiles out of order: P50 60 µs, P90 15 µs, P99 53 µs",
  );
});

/** A synthetic run with round numbers: p50 = base, every other latency around it. */
function run(test: "TCP_RR" | "TCP_CRR", base: number): NetperfRun {
  return {
    test,
    minUs: base - 5,
    p50Us: base,
    p90Us: base + 10,
    p99Us: base + 40,
    meanUs: base + 2,
    stddevUs: 9,
    maxUs: base + 900,
    transactionsPerSecond: 1e6 / base,
    remoteHost: null,
  };
}

const SETTINGS: LatencySettings = {
  image: "none (netperf from Debian)",
  seconds: 1,
  runs: 3,
  tests: ["TCP_RR", "TCP_CRR"],
  clientArgs: { TCP_RR: netperfClientArgs({ test: "TCP_RR", target: "<target>", seconds: 1 }) },
  serverArgs: netserverArgs(),
  server: { node: "b", hostIp: "172.31.1.2", podIp: "10.99.2.1" },
  client: { node: "a" },
  order: "host 1, pod 1, host 2, …",
};

/** host and pod × TCP_RR and TCP_CRR × 3 runs; pod is 20 µs slower, TCP_CRR 3× TCP_RR. */
function records(): LatencyRunRecord[] {
  const out: LatencyRunRecord[] = [];
  for (const r of [1, 2, 3]) {
    for (const p of ["host", "pod"] as const) {
      for (const test of ["TCP_RR", "TCP_CRR"] as const) {
        const base = (p === "pod" ? 70 : 50) * (test === "TCP_CRR" ? 3 : 1) + [0, 4, -2][r - 1]!;
        out.push(latencyRunRecord(p, r, out.length + 1, `${p}-${test}-${r}`, run(test, base)));
      }
    }
  }
  return out.reverse();
}

test("latencyOf: median and spread over runs per path × test, pod beside host, runs in order", (t) => {
  const l = latencyOf({ runs: records(), routingMode: "native", accelerator: "kvm", settings: SETTINGS });
  t.true(l.representative);
  t.is(l.warning, null);
  t.deepEqual(
    l.table.map((r) => [r.row, r.test, r.p50Us]),
    [
      ["host-to-host", "TCP_RR", { median: 50, min: 48, max: 54 }],
      ["pod-to-pod", "TCP_RR", { median: 70, min: 68, max: 74 }],
      ["host-to-host", "TCP_CRR", { median: 150, min: 148, max: 154 }],
      ["pod-to-pod", "TCP_CRR", { median: 210, min: 208, max: 214 }],
    ],
  );
  t.deepEqual(l.table[0]?.p99Us, { median: 90, min: 88, max: 94 });
  t.deepEqual(
    l.podOverHost.map((o) => [o.test, o.p50Ratio, o.p50DifferenceUs]),
    [
      ["TCP_RR", 1.4, 20],
      ["TCP_CRR", 1.4, 60],
    ],
  );
  const s = l.summaries[0]!;
  t.is(s.runs, 3);
  t.is(s.p50Us.unit, "µs");
  t.is(s.transactionsPerSecond.unit, "Tran/s");
  t.not(s.p50Us.ci95, null);
  t.deepEqual(
    l.runs.map((r) => r.order),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  t.is(l.units.latencyUs.startsWith("µs per transaction"), true);
});

test("latencyOf under TCG is flagged representative: false with the reason; a missing path × test is refused", (t) => {
  const l = latencyOf({ runs: records(), routingMode: "vxlan", accelerator: "qemu", settings: SETTINGS });
  t.false(l.representative);
  t.is(l.warning, LATENCY_TCG_WARNING);
  t.throws(
    () =>
      latencyOf({
        runs: records().filter((r) => !(r.path === "pod" && r.test === "TCP_CRR")),
        routingMode: "vxlan",
        accelerator: "kvm",
        settings: SETTINGS,
      }),
    { message: "latency needs at least one run per path and test (tests TCP_RR, TCP_CRR); missing: pod TCP_CRR" },
  );
});
