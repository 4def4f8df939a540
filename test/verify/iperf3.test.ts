/**
 * iperf3 output and statistics: exact values for the unit conversions, the statistics and the
 * paired ratio; the parser on real iperf3 documents (a loopback run, and iperf3's own error
 * document for a closed port), on truncated output and on log noise around the JSON.
 */
import test from "ava";

import {
  ARTICLE,
  CI95_METHOD,
  Iperf3OutputError,
  TCG_WARNING,
  articleRatio,
  bitsToGbitPerSecond,
  bitsToMiBPerSecond,
  describe,
  pairedRatio,
  parseIperf3Json,
  runRecord,
  scaleStats,
  summarizeThroughput,
  tCritical975,
  tailOf,
  type Iperf3Result,
  type RunRecord,
  type ThroughputSettings,
} from "../../infra/verify/iperf3";
import { loopbackIperf3, prerequisites } from "./support";

test("MiB/s is bytes/s / 2^20 and Gbit/s is bits/s / 1e9: the article's 493, 1138 and 1266 MiB/s are 4.136, 9.546 and 10.620 Gbit/s", (t) => {
  const bits = (mib: number) => mib * 8 * 1048576;
  t.is(bitsToMiBPerSecond(bits(493)), 493);
  t.is(bitsToGbitPerSecond(bits(493)), 4.135583744);
  t.is(bitsToGbitPerSecond(bits(1138)), 9.546235904);
  t.is(bitsToGbitPerSecond(bits(1266)), 10.619977728);
  t.is(bitsToMiBPerSecond(8388608), 1);
});

test("the article's ratios are VXLAN 493/1138 = 0.433 and native 1266/1138 = 1.112; Geneve has none", (t) => {
  t.is(articleRatio("vxlan")?.ratio, 493 / 1138);
  t.is(Math.round((articleRatio("vxlan")?.ratio ?? 0) * 1000) / 1000, 0.433);
  t.is(Math.round((articleRatio("native")?.ratio ?? 0) * 1000) / 1000, 1.112);
  t.is(articleRatio("geneve"), null);
  t.deepEqual(ARTICLE, { hostMiBPerSecond: 1138, vxlanMiBPerSecond: 493, nativeMiBPerSecond: 1266 });
});

test("Student t critical values follow NIST's table, and larger df fall back to the nearest smaller tabulated df", (t) => {
  const table: [number, number][] = [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [9, 2.262],
    [19, 2.093],
    [30, 2.042],
    [35, 2.042],
    [45, 2.021],
    [1000, 1.984],
  ];
  for (const [df, value] of table) {
    t.is(tCritical975(df), value, `df ${df}`);
  }
  t.throws(() => tCritical975(0), {
    instanceOf: RangeError,
    message: "Student t needs a whole number of degrees of freedom >= 1 (got 0).",
  });
});

test("statistics: median, min, max, mean, sample stdev and the Student-t 95 % CI have exact values", (t) => {
  // mean 100, squared deviations 9+1+1+1 = 12, s² = 12/3 = 4, s = 2, s/√4 = 1: half-width = t(3) = 3.182.
  t.deepEqual(describe([97, 101, 101, 101], "MiB/s"), {
    unit: "MiB/s",
    n: 4,
    median: 101,
    min: 97,
    max: 101,
    mean: 100,
    stdev: 2,
    ci95: { low: 100 - 3.182, high: 100 + 3.182 },
  });
  // n = 2: s = √2, s/√2 = 1, half-width = t(1) = 12.706.
  t.deepEqual(describe([3, 1], "x"), {
    unit: "x",
    n: 2,
    median: 2,
    min: 1,
    max: 3,
    mean: 2,
    stdev: Math.SQRT2,
    ci95: { low: 2 - 12.706, high: 2 + 12.706 },
  });
  // Odd n: the middle value; one value: no spread.
  t.is(describe([5, 1, 9], "x").median, 5);
  t.deepEqual(describe([7], "x"), { unit: "x", n: 1, median: 7, min: 7, max: 7, mean: 7, stdev: null, ci95: null });
  t.throws(() => describe([], "MiB/s"), { message: "no values to describe (MiB/s)" });
  t.throws(() => describe([1, Number.NaN], "MiB/s"), { message: "values must be finite numbers (MiB/s): 1, NaN" });
  t.true(CI95_METHOD.includes("t(0.975, n−1)"));
});

test("scaling statistics to another unit scales every field, the CI included", (t) => {
  const s = describe([8388608, 16777216, 25165824], "bit/s");
  t.deepEqual(scaleStats(s, 1 / 8 / 1048576, "MiB/s"), {
    unit: "MiB/s",
    n: 3,
    median: 2,
    min: 1,
    max: 3,
    mean: 2,
    stdev: 1,
    ci95: { low: (s.ci95?.low ?? 0) / 8388608, high: (s.ci95?.high ?? 0) / 8388608 },
  });
});

/** A parsed result with the given receiver throughput (MiB/s), for the ratio and summary tables. */
function result(mib: number, mss = 1448): Iperf3Result {
  return {
    bitsPerSecond: mib * 8388608,
    bytes: mib * 1048576 * 10,
    seconds: 10,
    retransmits: 0,
    clientCpuPercent: 50,
    serverCpuPercent: 40,
    tcpMss: mss,
    streams: 1,
    omitSeconds: 1,
    startedAt: "Tue, 24 Nov 2026 10:00:00 GMT",
    iperf3Version: "iperf 3.12",
    connection: null,
  };
}

function runs(host: number[], pod: number[], podMss = 1398): RunRecord[] {
  return host.flatMap((h, i) => [
    runRecord("host", i + 1, 2 * i + 1, `iperf3-host-${i + 1}-k`, result(h)),
    runRecord("pod", i + 1, 2 * i + 2, `iperf3-pod-${i + 1}-k`, result(pod[i] ?? 0, podMss)),
  ]);
}

test("the pod/host ratio is paired run by run, with its own statistics and the article's figure beside it", (t) => {
  const r = pairedRatio(runs([1000, 1000, 1250], [500, 400, 500]), "vxlan");
  t.deepEqual(r.perRun, [0.5, 0.4, 0.4]);
  t.is(r.paired.median, 0.4);
  t.is(r.paired.min, 0.4);
  t.is(r.paired.max, 0.5);
  t.is(r.ratioOfMedians, 500 / 1000);
  t.is(r.article?.ratio, 493 / 1138);
  t.is(r.article?.difference, 0.4 - 493 / 1138);
  t.is(r.article?.insideCi95, true);
  t.is(pairedRatio(runs([1000], [1100]), "geneve").article, null);
  t.is(pairedRatio(runs([1000], [1100]), "native").article?.insideCi95, null);
  t.throws(() => pairedRatio(runs([1000, 1000], [500]).slice(0, 3), "vxlan"), {
    message: "pod/host ratio needs one host run and one pod run per repetition (host runs 1,2; pod runs 1)",
  });
});

const SETTINGS: ThroughputSettings = {
  image: "img@sha256:0",
  seconds: 10,
  omitSeconds: 1,
  streams: 1,
  runs: 2,
  clientArgs: ["-c", "<target>"],
  server: { node: "node-2", hostIp: "192.168.150.12", podIp: "10.0.1.20" },
  client: { node: "node-3" },
  order: "host 1, pod 1, host 2, pod 2",
};

test("the throughput summary gives the article's table in MiB/s and Gbit/s, every run, and flags TCG results as not representative", (t) => {
  const all = runs([1100, 1200], [450, 500]);
  const kvm = summarizeThroughput({ runs: all, routingMode: "vxlan", accelerator: "kvm", settings: SETTINGS });
  t.true(kvm.representative);
  t.is(kvm.warning, null);
  t.deepEqual(
    kvm.table.map((r) => [r.row, r.mibPerSecond.median, r.mibPerSecond.min, r.mibPerSecond.max, r.articleMiBPerSecond]),
    [
      ["host-to-host", 1150, 1100, 1200, 1138],
      ["pod-to-pod", 475, 450, 500, 493],
    ],
  );
  t.is(kvm.table[1]?.gbitPerSecond.median, (475 * 8388608) / 1e9);
  t.deepEqual(kvm.podToPod.tcpMss, [1398]);
  t.deepEqual(kvm.hostToHost.tcpMss, [1448]);
  t.is(kvm.podToPod.mibPerSecond.unit, "MiB/s");
  t.is(kvm.podToPod.gbitPerSecond.unit, "Gbit/s");
  t.deepEqual(
    kvm.runs.map((r) => r.job),
    ["iperf3-host-1-k", "iperf3-pod-1-k", "iperf3-host-2-k", "iperf3-pod-2-k"],
  );
  const tcg = summarizeThroughput({ runs: all, routingMode: "native", accelerator: "qemu", settings: SETTINGS });
  t.false(tcg.representative);
  t.is(tcg.warning, TCG_WARNING);
  t.is(tcg.table[1]?.articleMiBPerSecond, 1266);
  t.is(
    summarizeThroughput({ runs: all, routingMode: "geneve", accelerator: "kvm", settings: SETTINGS }).table[1]
      ?.articleMiBPerSecond,
    null,
  );
});

test("a real loopback iperf3 -J run parses: receiver bits/s, retransmits, CPU, MSS, version and the connection", async (t) => {
  const problems = await prerequisites(false);
  t.deepEqual(problems, [], problems.join("; "));
  const text = await loopbackIperf3(1);
  const doc = JSON.parse(text) as {
    end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number } };
  };
  const r = parseIperf3Json(text, "loopback");
  t.is(r.bitsPerSecond, doc.end.sum_received.bits_per_second);
  t.true(r.bitsPerSecond > 0);
  t.is(r.retransmits, doc.end.sum_sent.retransmits);
  t.true(r.clientCpuPercent > 0);
  t.regex(r.iperf3Version ?? "", /^iperf 3\.\d+/);
  t.regex(r.connection?.remote ?? "", /^127\.0\.0\.1:\d+$/);
  t.is(r.streams, 1);
  t.true((r.tcpMss ?? 0) > 0);
  // kubectl logs may put log lines around the document: they are ignored.
  t.is(parseIperf3Json(`iperf3: some warning\n${text}\n`, "noisy").bitsPerSecond, r.bitsPerSecond);
});

test("iperf3's own error document (nothing listening) is refused with its error and the output's tail", async (t) => {
  const problems = await prerequisites(false);
  t.deepEqual(problems, [], problems.join("; "));
  const text = await loopbackIperf3(1, { noServer: true });
  const err = t.throws(() => parseIperf3Json(text, "pod-to-pod run 1 (job cilium-lab-iperf3/iperf3-pod-1-abcd1234)"), {
    instanceOf: Iperf3OutputError,
  });
  t.is(
    err.message,
    `iperf3 pod-to-pod run 1 (job cilium-lab-iperf3/iperf3-pod-1-abcd1234) failed: unable to connect to server: Connection refused. Output ends with: ${tailOf(text)}`,
  );
  t.true(err.tail.endsWith("}"));
});

test("truncated iperf3 output is refused with the exact message and the last characters of the output", (t) => {
  const cut = '{\n\t"start":\t{\n\t\t"connected":\t[{\n\t\t\t"socket":\t5,\n\t\t\t"local_host":\t"10.0.2.20"';
  const err = t.throws(() => parseIperf3Json(cut, "host-to-host run 2"), { instanceOf: Iperf3OutputError });
  t.is(
    err.message,
    `iperf3 host-to-host run 2: the output is not a complete JSON document (${cut.length} characters; truncated?). Output ends with: ${cut}`,
  );
  t.true(err.cause instanceof SyntaxError);
  const long = `{"start": {"x": "${"a".repeat(1000)}`;
  const e2 = t.throws(() => parseIperf3Json(long, "r"), { instanceOf: Iperf3OutputError });
  t.is(e2.tail, `…${long.slice(-400)}`);
  t.throws(() => parseIperf3Json("  \n", "r"), { message: "iperf3 r: no output." });
  t.throws(() => parseIperf3Json("Error from server (NotFound): pods not found", "r"), {
    message:
      "iperf3 r: the output is not a complete JSON document (44 characters; truncated?). Output ends with: Error from server (NotFound): pods not found",
  });
  t.throws(() => parseIperf3Json('{"start":{},"end":{}}', "r"), {
    message:
      'iperf3 r: no end.sum_received.bits_per_second in the output (a UDP or reverse-mode run, or an older iperf3?). Output ends with: {"start":{},"end":{}}',
  });
});
