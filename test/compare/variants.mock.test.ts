/**
 * `compare --variants` with MOCKS FOR THE CLUSTER LAYERS (the in-memory stack of fake-lab.ts, whose
 * outputs are built with the verification layer's own functions and the config's own prediction):
 * the keys each variant sets and removes, what each says it changes, the restored stack file, and
 * the report and latency chart a reader gets: per variant what was asked, what the agents say,
 * throughput and latency with spread over runs, and why.
 */
import test from "ava";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { modeViews } from "../../scripts/compare/collect";
import { latencyChartRows, renderLatencyChart } from "../../scripts/compare/latency-chart";
import { renderReport } from "../../scripts/compare/report";
import type { CompareView } from "../../scripts/compare/results";
import { latencyLines } from "../../scripts/compare/summary";
import { FakeLabStack } from "./fake-lab";
import { RecordingProgress, runModes } from "./recording-progress";

const USER_FILE = `# my lab
config:
  cilium-lab:routingMode: vxlan
  cilium-lab:nodeCpus: "4"
`;
const BPF = "native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true";

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ stack: FakeLabStack; file: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "clc-variants-"));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "Pulumi.vxlan.yaml");
  await fs.writeFile(file, USER_FILE);
  const stack = new FakeLabStack("vxlan", file, { "cilium-lab:routingMode": "vxlan", "cilium-lab:nodeCpus": "4" });
  return { stack, file };
}

function view(views: CompareView["modes"]): CompareView {
  return {
    source: { kind: "cluster", label: "cluster run (stand-in)" },
    stack: "vxlan",
    startedAt: "2026-12-03T12:00:00.000Z",
    environment: { kernel: "k", cpuModel: "c", accelerator: "kvm", tcg: false, versions: {}, mtu: {}, offloads: {} },
    modes: views,
  };
}

test("mocked cluster layers: variants set their feature keys relative to the user's config; a later plain native removes them again; the config step says what changes; the stack file is restored", async (t) => {
  const { stack, file } = await setup(t);
  const progress = new RecordingProgress();
  const record = await runModes(stack, file, ["vxlan", BPF, "native"], { progress });
  t.deepEqual(
    stack.calls.filter((c) => c.op === "up" || c.op === "removeAllConfig"),
    [
      { op: "up", routingMode: "vxlan", autoDirectNodeRoutes: "false", nativeRoutingCidr: undefined },
      {
        op: "up",
        routingMode: "native",
        autoDirectNodeRoutes: "true",
        nativeRoutingCidr: "10.0.0.0/22",
        features: "bpfMasquerade=true hostRouting=bpf kubeProxyReplacement=true",
      },
      {
        op: "removeAllConfig",
        keys: ["cilium-lab:kubeProxyReplacement", "cilium-lab:bpfMasquerade", "cilium-lab:hostRouting"],
      },
      { op: "up", routingMode: "native", autoDirectNodeRoutes: "true", nativeRoutingCidr: "10.0.0.0/22" },
    ],
  );
  t.deepEqual(
    record.modes.map((m) => [m.variant, m.mode, m.status]),
    [
      ["vxlan", "vxlan", "measured"],
      [BPF, "native", "measured"],
      ["native", "native", "measured"],
    ],
  );
  t.deepEqual(
    record.planned.map((p) => p.changes.k3s),
    [false, true, true],
    "kube-proxy replacement on, then off again: k3s re-runs both times",
  );
  t.regex(record.modes[1]?.changes ?? "", /^Cilium values and k3s \(.*kubeProxyReplacement false → true/);
  t.deepEqual(progress.steps.slice(6, 8), [`start config ${BPF} 2/3`, `done config ${BPF}`]);
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
});

test("mocked cluster layers: the report shows per variant what was asked, the feature table (asked / agents say / article), throughput, the latency table with spread over runs, and why", async (t) => {
  const { stack, file } = await setup(t);
  const record = await runModes(stack, file, ["vxlan", BPF]);
  const report = renderReport(view(modeViews(record)));
  t.true(report.startsWith(`# cilium-lab compare: vxlan vs ${BPF}\n`));
  t.true(report.includes("## Per variant"));
  t.true(
    report.includes(
      `### ${BPF} — confirmed (requested native, observed native)\n\nAsked for: \`routingMode=native\`, \`autoDirectNodeRoutes=true\`, ` +
        "`nativeRoutingCidr=10.0.0.0/22`, `hostRouting=bpf`, `kubeProxyReplacement=true`, `bpfMasquerade=true`. " +
        "Its `pulumi up` changed: Cilium values and k3s (",
    ),
    report,
  );
  // The feature table: what the variant asked, what every agent says (one value: all nodes agree), the article's start.
  for (const line of [
    "| feature | asked (predicted) | agents say | source | article's start | ok |",
    '| Host Routing | bpf | bpf ("BPF") | cilium status | Legacy | ✓ |',
    '| KubeProxyReplacement | enabled | enabled ("Strict   [enp1s0 192.168.150.12]") | cilium status | Disabled | ✓ |',
    '| Masquerading | bpf | bpf ("BPF   [enp1s0]   10.0.0.0/16 [IPv4: Enabled, IPv6: Disabled]") | cilium status | IPtables | ✓ |',
    '| Datapath mode | disabled | disabled ("no cilium_vxlan or cilium_geneve") | tunnel devices (ip -d link) | tunnel | ✓ |',
  ]) {
    t.true(report.includes(`${line}\n`), line);
  }
  // Latency: the canned native runs are 56 µs pod and 50 µs host p50 at ×0.98, ×1, ×1.02; TCP_CRR three times that.
  for (const line of [
    "| test | path | p50 µs | p90 µs | p99 µs | mean µs | transactions/s |",
    "| TCP_RR | pod↔pod | 56.0 [54.9–57.1] | 72.8 [71.3–74.3] | 112.0 [109.8–114.2] | 61.6 [60.4–62.8] | 16234 [15915–16565] |",
    "| TCP_CRR | host↔host | 150.0 [147.0–153.0] | 195.0 [191.1–198.9] | 300.0 [294.0–306.0] | 165.0 [161.7–168.3] | 6061 [5942–6184] |",
    "| vxlan | 72.0 [70.6–73.4] | 50.0 [49.0–51.0] | 216.0 [211.7–220.3] | 150.0 [147.0–153.0] |",
  ]) {
    t.true(report.includes(`${line}\n`), line);
  }
  t.true(report.includes("TCP_RR: pod↔pod p50 is 1.12 × host↔host (+6.0 µs)."));
  // The cross-variant feature summary.
  t.true(report.includes(`| feature | article's start | vxlan | ${BPF} |\n`));
  t.true(report.includes('| Host Routing | Legacy | legacy ("Legacy") | bpf ("BPF") |\n'));
  // Why: the rules over the evidence (vxlan: 44 % more per round trip; the BPF variant: the agents' host routing).
  t.true(
    report.includes(
      "- `pod-latency-overhead`: A pod↔pod TCP_RR round trip takes 72.0 µs at p50 against 50.0 µs host↔host (+22.0 µs, +44.0 %)",
    ),
  );
  t.true(report.includes("- `bpf-host-routing`: Every agent says BPF host routing runs"));
  t.true(
    report.includes("Evidence read: datapath native; pod route MTU none seen (NIC n/a); MSS pod 1398 / host 1398;"),
  );
});

test("mocked cluster layers: latency.svg has one bar per variant, test and path, labelled with the p50 median, and min–max error bars", async (t) => {
  const { stack, file } = await setup(t);
  const record = await runModes(stack, file, ["vxlan", "native"]);
  const v = view(modeViews(record));
  t.deepEqual(
    latencyChartRows(v).map((r) => `${r.variant} ${r.label} [${r.min.toFixed(1)}–${r.max.toFixed(1)}]`),
    [
      "vxlan RR pod 72 [70.6–73.4]",
      "vxlan RR host 50 [49.0–51.0]",
      "vxlan CRR pod 216 [211.7–220.3]",
      "vxlan CRR host 150 [147.0–153.0]",
      "native RR pod 56 [54.9–57.1]",
      "native RR host 50 [49.0–51.0]",
      "native CRR pod 168 [164.6–171.4]",
      "native CRR host 150 [147.0–153.0]",
    ],
  );
  const svg = await renderLatencyChart(v);
  t.is(XMLValidator.validate(svg), true);
  t.true(svg.includes("error bars: min–max of the runs' p50"));
  const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as unknown;
  t.truthy(doc);
  t.is((svg.match(/aria-roledescription="bar"/g) ?? []).length, 8);
});

test("mocked cluster layers: the terminal summary adds one latency line per variant (TCP_RR and TCP_CRR p50, pod / host)", async (t) => {
  const { stack, file } = await setup(t);
  const record = await runModes(stack, file, ["vxlan", BPF]);
  t.deepEqual(latencyLines(view(modeViews(record))), [
    "  latency (netperf p50, median over runs; pod / host):",
    "    vxlan: TCP_RR 72.0 µs / 50.0 µs, TCP_CRR 216.0 µs / 150.0 µs",
    `    ${BPF}: TCP_RR 56.0 µs / 50.0 µs, TCP_CRR 168.0 µs / 150.0 µs`,
  ]);
});
