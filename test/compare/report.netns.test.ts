/**
 * report.md, throughput.svg and latency.svg rendered from REAL iperf3 and netperf results:
 * `iperf3 -J -t 2` and netperf TCP_RR/TCP_CRR (`-l 1`, the lab's own client argv) between network
 * namespaces over a veth pair with direct routes (native) and over a real VXLAN device with
 * `mtu 1450` routes (the verification layer's test lab, via test/compare/netns-experiment.ts), fed
 * through the verification layer's parsers and statistics, with the real evidence collector and
 * verdict. Every table value is recomputed here from the raw JSON and netperf output, independently.
 *
 * `CILIUM_LAB_WRITE_SAMPLE=1 npm test -- test/compare/report.netns.test.ts` also writes the README sample
 * (docs/sample/report.md, docs/sample/throughput.svg, docs/sample/latency.svg) from this run.
 */
import test from "ava";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { renderChart } from "../../scripts/compare/chart";
import { renderLatencyChart } from "../../scripts/compare/latency-chart";
import { renderReport } from "../../scripts/compare/report";
import type { CompareView } from "../../scripts/compare/results";
import { REPO_ROOT } from "../support/stack-files";
import { VerifyLab } from "../verify/netns-lab";
import { prerequisites } from "../verify/support";
import {
  buildPairs,
  EXPERIMENT_TOOLS,
  namespaceView,
  NAMESPACE_LABEL,
  type RawLatencyRun,
  type RawRun,
} from "./netns-experiment";

const RUNS = 3;
const SECONDS = 2;
const lab = new VerifyLab();
let problems: string[] = [];
let result:
  | { view: CompareView; raw: RawRun[]; rawLatency: RawLatencyRun[]; report: string; svg: string; latencySvg: string }
  | undefined;
let setupError: Error | undefined;

test.before(async () => {
  problems = await prerequisites(true, EXPERIMENT_TOOLS);
  if (problems.length > 0) {
    return;
  }
  try {
    const pairs = await buildPairs(lab);
    const { view, raw, rawLatency } = await namespaceView(lab, pairs, ["vxlan", "native"], RUNS, SECONDS);
    result = {
      view,
      raw,
      rawLatency,
      report: renderReport(view),
      svg: await renderChart(view),
      latencySvg: await renderLatencyChart(view),
    };
    if (process.env.CILIUM_LAB_WRITE_SAMPLE === "1") {
      const dir = path.join(REPO_ROOT, "docs", "sample");
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, "report.md"), result.report);
      await fs.writeFile(path.join(dir, "throughput.svg"), result.svg);
      await fs.writeFile(path.join(dir, "latency.svg"), result.latencySvg);
    }
  } catch (err) {
    setupError = err instanceof Error ? err : new Error(String(err));
  }
});

test.after.always(async () => {
  const left = await lab.destroy();
  if (left.length > 0) {
    console.error(`netns cleanup problems: ${left.join("; ")}`);
  }
});

/** The run, or a failure that says what is missing. */
function measured(t: { fail(message: string): void }): NonNullable<typeof result> {
  if (problems.length > 0) {
    t.fail(`cannot run iperf3 between network namespaces: ${problems.join("; ")}`);
  }
  if (setupError !== undefined) {
    t.fail(`the namespace experiment failed: ${setupError.message}`);
  }
  if (result === undefined) {
    throw new Error("no result");
  }
  return result;
}

// ─── independent arithmetic on the raw iperf3 JSON ──────────────────────────────────────────────

interface Doc {
  start: { tcp_mss_default?: number };
  end: {
    sum_received: { bits_per_second: number };
    sum_sent: { retransmits: number };
    cpu_utilization_percent: { host_total: number; remote_total: number };
  };
}

const docs = (raw: RawRun[], mode: string, p: "host" | "pod"): Doc[] =>
  raw
    .filter((r) => r.mode === mode && r.path === p)
    .sort((a, b) => a.run - b.run)
    .map((r) => JSON.parse(r.json) as Doc);

const median3 = (v: number[]): number => [...v].sort((a, b) => a - b)[1] as number;
/** t(0.975, 2) = 4.303 (NIST e-Handbook table 1.3.6.7.2), for n = 3. */
function ci3(v: number[]): [number, number] {
  const mean = (v[0]! + v[1]! + v[2]!) / 3;
  const s = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
  const half = (4.303 * s) / Math.sqrt(3);
  return [mean - half, mean + half];
}
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

function expectedPathRow(raw: RawRun[], mode: string, p: "host" | "pod"): string {
  const d = docs(raw, mode, p);
  const bits = d.map((x) => x.end.sum_received.bits_per_second);
  const mib = bits.map((b) => b / 8 / 1048576);
  const gbit = bits.map((b) => b / 1e9);
  const [lo, hi] = ci3(mib);
  const retr = d.map((x) => x.end.sum_sent.retransmits);
  const cpuClient = d.reduce((a, x) => a + x.end.cpu_utilization_percent.host_total, 0) / 3;
  const cpuServer = d.reduce((a, x) => a + x.end.cpu_utilization_percent.remote_total, 0) / 3;
  return (
    `| ${p === "pod" ? "pod↔pod" : "host↔host"} | ${f1(median3(mib))} [${f1(Math.min(...mib))}–${f1(Math.max(...mib))}] | ${f1(lo)}–${f1(hi)} | ` +
    `${f2(median3(gbit))} [${f2(Math.min(...gbit))}–${f2(Math.max(...gbit))}] | ${mib.map(f1).join(", ")} | ` +
    `${retr.reduce((a, b) => a + b, 0)} (${retr.join(", ")}) | ${cpuClient.toFixed(1)} % / ${cpuServer.toFixed(1)} % |`
  );
}

function pairedRatios(raw: RawRun[], mode: string): number[] {
  const host = docs(raw, mode, "host").map((x) => x.end.sum_received.bits_per_second);
  const pod = docs(raw, mode, "pod").map((x) => x.end.sum_received.bits_per_second);
  return pod.map((b, i) => b / host[i]!);
}

// ─── report.md ──────────────────────────────────────────────────────────────────────────────────

test("report.md: each mode's pod↔pod and host↔host rows (median [min–max], 95 % CI, Gbit/s, runs, retransmits, CPU) equal the values recomputed from the raw iperf3 JSON", (t) => {
  const { raw, report } = measured(t);
  t.is(raw.length, 2 * 2 * RUNS);
  for (const mode of ["vxlan", "native"]) {
    for (const p of ["pod", "host"] as const) {
      const expected = expectedPathRow(raw, mode, p);
      t.true(report.includes(`${expected}\n`), `${mode} ${p}: expected the row\n${expected}\nin\n${report}`);
    }
  }
});

test("report.md: the pod/host ratio row pairs each pod run with its host run (median [min–max], 95 % CI, per run)", (t) => {
  const { raw, report } = measured(t);
  for (const mode of ["vxlan", "native"]) {
    const r = pairedRatios(raw, mode);
    const [lo, hi] = ci3(r);
    const expected = `| pod/host ratio (paired per run) | ${f2(median3(r))} [${f2(Math.min(...r))}–${f2(Math.max(...r))}] | ${f2(lo)}–${f2(hi)} | — | ${r.map(f2).join(", ")} | — | — |`;
    t.true(report.includes(`${expected}\n`), `${mode}: expected\n${expected}`);
  }
});

test("report.md: the summary has one row per mode with the datapath verdict, pod and host medians, the paired ratio and the article's ratio", (t) => {
  const { raw, report } = measured(t);
  for (const [mode, article] of [
    ["vxlan", "0.43"],
    ["native", "1.11"],
  ] as const) {
    const mr = (p: "host" | "pod") => {
      const mib = docs(raw, mode, p).map((x) => x.end.sum_received.bits_per_second / 8 / 1048576);
      return `${f1(median3(mib))} [${f1(Math.min(...mib))}–${f1(Math.max(...mib))}]`;
    };
    const expected = `| ${mode} | confirmed (requested ${mode}, observed ${mode}) | ${mr("pod")} | ${mr("host")} | ${f2(median3(pairedRatios(raw, mode)))} | ${article} |`;
    t.true(report.includes(`${expected}\n`), `expected\n${expected}`);
  }
});

test("report.md: the datapath evidence is the real collector's, judged by the real verdict (tunnel device and 1450 pod routes for vxlan; direct routes, no tunnel for native); the TCP MSS shows the 1450-byte route", (t) => {
  const { report, view } = measured(t);
  const [vxlan, native] = view.modes;
  t.is(vxlan?.datapath?.verdict, "confirmed");
  t.is(native?.datapath?.verdict, "confirmed");
  for (const d of [vxlan?.datapath, native?.datapath]) {
    const n = d?.checks.length ?? 0;
    t.true(n > 3);
    t.true(report.includes(`Datapath evidence: ${n} of ${n} checks passed (verdict confirmed).`));
  }
  t.true(
    report.includes("- seen by cilium-config: vxlan; by the agents: unknown; on the nodes (tunnel devices): vxlan"),
  );
  t.true(report.includes("- pod route MTUs: 1450; direct routes to every other node's pod CIDR: no"));
  t.true(
    report.includes("- seen by cilium-config: native; by the agents: unknown; on the nodes (tunnel devices): native"),
  );
  t.true(report.includes("- pod route MTUs: none; direct routes to every other node's pod CIDR: yes"));
  for (const c of vxlan?.datapath?.checks ?? []) {
    t.true(report.includes(`| ${c.scope} | ${c.check} | ${c.expected} | ${c.actual} | ✓ |`), `${c.scope} ${c.check}`);
  }
  t.true(
    report.includes("TCP MSS seen: pod↔pod 1398, host↔host 1448 bytes"),
    "vxlan: MSS 1398 through the mtu 1450 route",
  );
  t.true(report.includes("TCP MSS seen: pod↔pod 1448, host↔host 1448 bytes"), "native: MSS 1448 at 1500");
});

test("report.md: labelled as namespace data at the top, units spelled out, environment (kernel, CPU, versions, MTU, offloads) and the article's ratios compared", (t) => {
  const { report } = measured(t);
  t.true(report.startsWith(`# cilium-lab compare: vxlan vs native\n\n> **${NAMESPACE_LABEL}**\n`));
  t.true(report.includes("namespace data, not a cluster run"));
  t.true(
    report.includes(
      "MiB/s as `iperf3 -f M` prints them (1 MiB/s = 1,048,576 bytes/s = 8.388608 Mbit/s), Gbit/s = 10⁹ bit/s",
    ),
  );
  t.true(
    report.includes(
      `| kernel | namespaces (every one shares the host's kernel): ${os.release()}; host: Linux ${os.release()} |`,
    ),
  );
  t.regex(report, /\| CPU model \| host: .+ \(\d+ CPUs/);
  t.regex(report, /\| version: iperf3 \| iperf 3\.\d+/);
  t.regex(report, /\| MTU: clv-[0-9a-f]{4}-va clv-[0-9a-f]{4}va0 \(veth\) \| 1500 \|/);
  t.regex(report, /\| offload: NIC generic-receive-offload \| (on|off)/);
  t.regex(report, /\| offload: NIC tx-udp_tnl-segmentation \| (on|off)/);
  t.false(report.includes("NOT representative"), "namespace data is not TCG");
  t.true(report.includes("pod/host ratios 0.43 (VXLAN) and 1.11 (native)"));
  t.true(report.includes("Compare the ratios, not the MiB/s"));
});

// ─── throughput.svg ─────────────────────────────────────────────────────────────────────────────

type XmlNode = Record<string, unknown>;

/** Every element named `name` anywhere under `node` (fast-xml-parser's object form). */
function findAll(node: unknown, name: string, out: XmlNode[] = []): XmlNode[] {
  if (Array.isArray(node)) {
    for (const n of node) {
      findAll(n, name, out);
    }
  } else if (typeof node === "object" && node !== null) {
    for (const [k, v] of Object.entries(node as XmlNode)) {
      if (k === name) {
        for (const n of Array.isArray(v) ? v : [v]) {
          out.push(n as XmlNode);
        }
      }
      findAll(v, name, out);
    }
  }
  return out;
}

/** The `<g>` group whose class names a Vega-Lite layer, e.g. `bars_marks`. */
function layer(doc: unknown, name: string): XmlNode {
  const g = findAll(doc, "g").find(
    (n) => typeof n["@_class"] === "string" && n["@_class"].split(" ").includes(`${name}_marks`),
  );
  if (g === undefined) {
    throw new Error(`no <g class="… ${name}_marks"> in the SVG`);
  }
  return g;
}

const asArray = (v: unknown): XmlNode[] =>
  v === undefined ? [] : Array.isArray(v) ? (v as XmlNode[]) : [v as XmlNode];

test("throughput.svg parses as XML and has exactly one bar per mode and path, each labelled with its path and median (recomputed from the raw JSON)", (t) => {
  const { raw, svg } = measured(t);
  t.is(XMLValidator.validate(svg), true);
  const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as unknown;
  const bars = asArray(layer(doc, "bars").path);
  t.is(bars.length, 2 * 2, "2 modes × 2 paths");
  const expected: string[] = [];
  for (const mode of ["vxlan", "native"]) {
    for (const p of ["pod", "host"] as const) {
      expected.push(
        `${p} ${Math.round(median3(docs(raw, mode, p).map((x) => x.end.sum_received.bits_per_second / 8 / 1048576)))}`,
      );
    }
  }
  t.deepEqual(
    bars.map((b) => b["@_aria-label"]),
    expected,
  );
  const labels = asArray(layer(doc, "labels").text).map((n) => (typeof n === "object" ? n["#text"] : n));
  t.deepEqual(labels, expected, "direct value labels on the bars");
});

test("throughput.svg: one min–max error bar (rule plus two caps) per bar, said so in the subtitle; pod and host bars differ without colour (dark fill vs white fill with a dashed outline)", (t) => {
  const { svg } = measured(t);
  const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as unknown;
  t.is(asArray(layer(doc, "errorbars").line).length, 4);
  t.is(asArray(layer(doc, "caps_max").path).length, 4);
  t.is(asArray(layer(doc, "caps_min").path).length, 4);
  t.true(svg.includes("error bars: min–max of the runs"));
  t.true(svg.includes("namespace data, not a cluster run"));
  const bars = asArray(layer(doc, "bars").path);
  const pod = bars.filter((b) => String(b["@_aria-label"]).startsWith("pod "));
  const host = bars.filter((b) => String(b["@_aria-label"]).startsWith("host "));
  t.deepEqual([...new Set(pod.map((b) => b["@_fill"]))], ["#3a3a3a"]);
  t.deepEqual([...new Set(host.map((b) => b["@_fill"]))], ["#ffffff"]);
  t.true(
    host.every((b) => b["@_stroke-dasharray"] === "5,3"),
    "host bars: dashed outline",
  );
  t.true(
    pod.every((b) => b["@_stroke-dasharray"] === undefined || b["@_stroke-dasharray"] === "1,0"),
    "pod bars: solid outline",
  );
});

// ─── latency ────────────────────────────────────────────────────────────────────────────────────

/** netperf's `-o` values of one run, read here independently: the last line's comma-separated numbers. */
function netperfValues(output: string): number[] {
  const lines = output.trim().split("\n");
  return (lines[lines.length - 1] ?? "").split(",").map(Number);
}

/** Column of each figure in the `-o` line (MIN, P50, P90, P99, MEAN, STDDEV, MAX, TRANSACTION_RATE). */
const COLUMN = { p50: 1, p90: 2, p99: 3, mean: 4, tps: 7 } as const;

function spreadText(v: number[], digits: number): string {
  return `${median3(v).toFixed(digits)} [${Math.min(...v).toFixed(digits)}–${Math.max(...v).toFixed(digits)}]`;
}

test("report.md: each mode's latency rows (TCP_RR and TCP_CRR, pod and host: p50, p90, p99, mean µs and transactions/s, median [min–max]) equal the values recomputed from the raw netperf output; every percentile is ≥ 0", (t) => {
  const { rawLatency, report } = measured(t);
  t.is(rawLatency.length, 2 * 2 * 2 * RUNS, "2 modes × 2 paths × 2 tests × runs");
  for (const mode of ["vxlan", "native"] as const) {
    for (const nt of ["TCP_RR", "TCP_CRR"] as const) {
      for (const p of ["pod", "host"] as const) {
        const runs = rawLatency
          .filter((r) => r.mode === mode && r.test === nt && r.path === p)
          .sort((a, b) => a.run - b.run)
          .map((r) => netperfValues(r.output));
        t.is(runs.length, RUNS);
        for (const v of runs) {
          t.true(
            v.slice(0, 7).every((x) => x >= 0),
            `${mode} ${nt} ${p}: ${v.join(",")}`,
          );
        }
        const col = (c: number) => runs.map((v) => v[c] as number);
        const expected =
          `| ${nt} | ${p === "pod" ? "pod↔pod" : "host↔host"} | ${spreadText(col(COLUMN.p50), 1)} | ${spreadText(col(COLUMN.p90), 1)} | ` +
          `${spreadText(col(COLUMN.p99), 1)} | ${spreadText(col(COLUMN.mean), 1)} | ${spreadText(col(COLUMN.tps), 0)} |`;
        t.true(report.includes(`${expected}\n`), `${mode}: expected\n${expected}\nin\n${report}`);
      }
    }
  }
});

test("latency.svg parses as XML and has one bar per mode, test and path, labelled with the p50 median recomputed from the raw netperf output, each with a min–max error bar", (t) => {
  const { rawLatency, latencySvg } = measured(t);
  t.is(XMLValidator.validate(latencySvg), true);
  const doc = new XMLParser({ ignoreAttributes: false }).parse(latencySvg) as unknown;
  const expected: string[] = [];
  for (const mode of ["vxlan", "native"]) {
    for (const [nt, p, short] of [
      ["TCP_RR", "pod", "RR pod"],
      ["TCP_RR", "host", "RR host"],
      ["TCP_CRR", "pod", "CRR pod"],
      ["TCP_CRR", "host", "CRR host"],
    ] as const) {
      const p50 = rawLatency
        .filter((r) => r.mode === mode && r.test === nt && r.path === p)
        .map((r) => netperfValues(r.output)[COLUMN.p50] as number);
      expected.push(`${short} ${Math.round(median3(p50))}`);
    }
  }
  t.deepEqual(
    asArray(layer(doc, "bars").path).map((b) => b["@_aria-label"]),
    expected,
  );
  t.is(asArray(layer(doc, "errorbars").line).length, 8);
  t.true(latencySvg.includes("namespace data, not a cluster run"));
});

test("the committed README sample (docs/sample) is namespace data, labelled as such, and its SVG parses with one bar per mode and path", async (t) => {
  const report = await fs.readFile(path.join(REPO_ROOT, "docs", "sample", "report.md"), "utf8");
  const svg = await fs.readFile(path.join(REPO_ROOT, "docs", "sample", "throughput.svg"), "utf8");
  t.true(
    report.startsWith(`# cilium-lab compare: vxlan vs native\n\n> **${NAMESPACE_LABEL}**\n`),
    "regenerate: CILIUM_LAB_WRITE_SAMPLE=1 npm test -- test/compare/report.netns.test.ts",
  );
  t.is(XMLValidator.validate(svg), true);
  const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as unknown;
  t.is(asArray(layer(doc, "bars").path).length, 4);
  t.true(svg.includes("namespace data, not a cluster run"));
  const latency = await fs.readFile(path.join(REPO_ROOT, "docs", "sample", "latency.svg"), "utf8");
  t.is(XMLValidator.validate(latency), true);
  t.is(asArray(layer(new XMLParser({ ignoreAttributes: false }).parse(latency), "bars").path).length, 8);
  t.true(latency.includes("namespace data, not a cluster run"));
  t.true(report.includes("| test | path | p50 µs | p90 µs | p99 µs | mean µs | transactions/s |"));
});
