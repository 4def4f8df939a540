/**
 * Real netperf, no cluster: netserver in one namespace of each pair the iperf3 tests use (a veth
 * underlay with direct routes, and a real VXLAN device over veth with `mtu 1450` pod routes), real
 * netperf TCP_RR and TCP_CRR from the other, over both the "host" (underlay) and the "pod" addresses,
 * with exactly the argv the lab's Jobs run ({@link netperfClientArgs}). The output goes through the
 * lab's parser and statistics; a client towards a namespace with no netserver gives the exact error.
 *
 * Needs root, iproute2 and netperf 2.7.0 (Debian's non-free component; .ci/host-setup.sh enables it
 * and installs netperf). About 40 s: 1 s per run, 16 runs per pair.
 */
import test from "ava";

import {
  latencyRunRecord,
  netperfClientArgs,
  NETPERF_TESTS,
  NetperfError,
  parseNetperf,
  type LatencyOutput,
  type LatencyRunRecord,
} from "../../infra/verify/netperf";
import { labFixture, pairLatency, type Pair } from "./netns-lab";
import { NETPERF_TOOLS } from "./support";

const SECONDS = 1;
const RUNS = 2;
const fx = labFixture(test, NETPERF_TOOLS, (lab, side) => lab.netserver(side));
const lab = fx.lab;

/** host 1 (TCP_RR, TCP_CRR), pod 1 (…), host 2, pod 2 from a to b, real netperf, parsed. */
async function measure(pair: Pair): Promise<LatencyRunRecord[]> {
  const records: LatencyRunRecord[] = [];
  for (let run = 1; run <= RUNS; run++) {
    for (const path of ["host", "pod"] as const) {
      for (const t of NETPERF_TESTS) {
        const target = path === "host" ? pair.b.nodeIp : pair.b.podIp;
        const label = `${pair.kind} ${path} ${t} run ${run}`;
        const r = await lab.netperf(pair.a, netperfClientArgs({ test: t, target, seconds: SECONDS }));
        if (r.code !== 0) {
          throw new Error(`${label}: netperf exited ${r.code}: ${r.output}`);
        }
        records.push(latencyRunRecord(path, run, records.length + 1, label, parseNetperf(r.output, t, label)));
      }
    }
  }
  return records;
}

function output(pair: Pair, runs: LatencyRunRecord[]): LatencyOutput {
  return pairLatency(pair, runs, {
    image: "none (netperf 2.7.0 from Debian, in network namespaces)",
    seconds: SECONDS,
    runs: RUNS,
    order: "per run: host TCP_RR, host TCP_CRR, pod TCP_RR, pod TCP_CRR",
  });
}

for (const kind of ["native", "vxlan"] as const) {
  test.serial(
    `real netperf TCP_RR and TCP_CRR over ${kind === "native" ? "veth" : "the VXLAN pair"}, host and pod addresses, parse into the latency output: every percentile ≥ 0 and ordered, transactions/s > 0`,
    async (t) => {
      t.is(fx.setupError, undefined, fx.setupError);
      const pair = kind === "native" ? fx.native : fx.vxlan;
      const runs = await measure(pair);
      t.is(runs.length, RUNS * 2 * NETPERF_TESTS.length);
      for (const r of runs) {
        const at = `${r.job}: ${JSON.stringify(r)}`;
        t.true(
          [r.minUs, r.p50Us, r.p90Us, r.p99Us, r.meanUs, r.stddevUs, r.maxUs].every((v) => v >= 0),
          at,
        );
        t.true(r.p50Us <= r.p90Us && r.p90Us <= r.p99Us, at);
        t.true(r.minUs <= r.meanUs && r.meanUs <= r.maxUs, at);
        t.true(r.transactionsPerSecond > 0, at);
        // The banner's target is the address the run was aimed at: the path really taken.
        t.is(r.remoteHost, r.path === "host" ? pair.b.nodeIp : pair.b.podIp, at);
      }
      const l = output(pair, runs);
      t.is(l.routingMode, kind);
      t.true(l.representative);
      t.deepEqual(
        l.table.map((row) => `${row.row} ${row.test}`),
        ["host-to-host TCP_RR", "pod-to-pod TCP_RR", "host-to-host TCP_CRR", "pod-to-pod TCP_CRR"],
      );
      for (const s of l.summaries) {
        t.is(s.runs, RUNS);
        t.true(s.p50Us.min >= 0 && s.p50Us.min <= s.p50Us.median && s.p50Us.median <= s.p50Us.max);
        t.true(s.transactionsPerSecond.min > 0);
      }
      t.log(
        l.table
          .map(
            (row) =>
              `${kind} ${row.row} ${row.test}: p50 ${row.p50Us.median} µs (${row.p50Us.min}–${row.p50Us.max}), p99 ${row.p99Us.median} µs, ${row.transactionsPerSecond.median.toFixed(0)} Tran/s`,
          )
          .join("\n"),
      );
    },
  );
}

test.serial("netperf towards a namespace with no netserver exits 255 and gives the exact error", async (t) => {
  t.is(fx.setupError, undefined, fx.setupError);
  // native.a runs no netserver: ask it from native.b.
  const target = fx.native.a.nodeIp;
  const r = await lab.netperf(fx.native.b, netperfClientArgs({ test: "TCP_RR", target, seconds: 1 }));
  t.is(r.code, 255);
  const e = t.throws(() => parseNetperf(r.output, "TCP_RR", "host TCP_RR run 1"), { instanceOf: NetperfError });
  t.is(
    e?.message,
    `netperf host TCP_RR run 1: no netserver listening on ${target} port 12865 (netperf exits 255: "establish control: are you sure there is a netserver listening on ${target} at port 12865?"). ` +
      "Fix: start `netserver -D -p 12865` on the server side and check that " +
      `${target} is reachable from the client.`,
  );
});
