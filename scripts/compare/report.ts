/**
 * report.md: PURE rendering of a {@link CompareView} to Markdown a network engineer can paste into a
 * design review — a table per mode, the environment, and the article's figures as ratios.
 *
 * Every number comes from the verification layer's `throughput` output (infra/verify/iperf3/:
 * receiver-side bit/s per run, statistics per path, the paired pod/host ratio); this file only
 * formats it.
 */
import {
  ARTICLE,
  articleRatio,
  type PathSummary,
  type RunRecord,
  type Stats,
  type ThroughputOutput,
} from "../../infra/verify/iperf3";
import { explain, explanationSection } from "./explain";
import { nodeHostRows } from "./node-hosts";
import {
  askedLine,
  featureSummary,
  featureTable,
  flowProofLines,
  latencySummary,
  latencyTable,
  row,
} from "./report-variant";
import { anyVariant } from "./summary";
import { HOST, POD, variantName, type CompareView, type DatapathView, type ModeView } from "./results";

/** The article's page, for the comparison section. */
export const ARTICLE_URL = "https://e-whisper.pages.dev/posts/47083/";

/** MiB/s in tables: one decimal. */
export const fmtMiB = (v: number): string => v.toFixed(1);
/** Gbit/s in tables: two decimals. */
export const fmtGbit = (v: number): string => v.toFixed(2);
/** Ratios: two decimals. */
export const fmtRatio = (v: number): string => v.toFixed(2);
/** CPU percent: one decimal. */
export const fmtPct = (v: number): string => `${v.toFixed(1)} %`;

/** `493.2 [480.1–501.3]` with a formatter. */
export function medianRange(s: Stats, fmt: (v: number) => string): string {
  return `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

/** `470.0–510.0`, or `n/a (1 run)`. */
export function ci95(s: Stats, fmt: (v: number) => string): string {
  return s.ci95 === null ? `n/a (${s.n} run)` : `${fmt(s.ci95.low)}–${fmt(s.ci95.high)}`;
}

/** The runs of one path in run order. */
function pathRuns(t: ThroughputOutput, path: "pod" | "host"): RunRecord[] {
  return t.runs.filter((r) => r.path === path).sort((a, b) => a.run - b.run);
}

/** `6 (1, 2, 3)`: total, then per run; `n/a` when iperf3 had no counter. */
export function retransmits(runs: readonly RunRecord[]): string {
  if (runs.some((r) => r.retransmits === null)) {
    return "n/a";
  }
  const each = runs.map((r) => r.retransmits as number);
  return `${each.reduce((a, b) => a + b, 0)} (${each.join(", ")})`;
}

/** `45.0 % / 30.0 %`: mean client (sender) / server (receiver) CPU over the runs. */
export function cpu(p: PathSummary): string {
  return `${fmtPct(p.clientCpuPercent.mean)} / ${fmtPct(p.serverCpuPercent.mean)}`;
}

/** Whether the verification layer's verdict confirms the requested datapath. */
export function isConfirmed(d: DatapathView): boolean {
  return d.verdict === "confirmed" && d.observed === d.requested;
}

/** `confirmed (requested vxlan, observed vxlan)` */
function datapathSummary(m: ModeView): string {
  if (m.datapath === undefined) {
    return "no datapath evidence";
  }
  const d = m.datapath;
  return `${d.verdict} (requested ${d.requested}, observed ${d.observed})`;
}

/**
 * The evidence summary of one mode: how each side sees the datapath (cluster runs), the failed
 * checks, and every check in a collapsed table (the proof, for whoever asks).
 */
export function evidenceSection(d: DatapathView): string[] {
  const passed = d.checks.filter((c) => c.ok).length;
  const out = [`Datapath evidence: ${passed} of ${d.checks.length} checks passed (verdict ${d.verdict}).`, ""];
  const o = d.observedBy;
  if (o !== undefined) {
    const mtus = o.podRouteMtus.map((m) => (m === null ? "none" : String(m))).join(", ") || "none seen";
    const direct = o.directNodeRoutes === null ? "n/a" : o.directNodeRoutes ? "yes" : "no";
    out.push(
      `- seen by cilium-config: ${o.configured}; by the agents: ${o.agents}; on the nodes (tunnel devices): ${o.nodes}`,
      `- pod route MTUs: ${mtus}; direct routes to every other node's pod CIDR: ${direct}`,
    );
  }
  for (const r of d.reasons) {
    out.push(`- FAILED: ${r}`);
  }
  if (out[out.length - 1] !== "") {
    out.push("");
  }
  out.push(
    "<details><summary>every check</summary>",
    "",
    row(["scope", "check", "expected", "found", "ok"]),
    row(["---", "---", "---", "---", "---"]),
    ...d.checks.map((c) => row([c.scope, c.check, c.expected, c.actual, c.ok ? "✓" : "✗"])),
    "",
    "</details>",
    "",
  );
  return out;
}

/** The table of one measured mode. */
export function modeTable(t: ThroughputOutput): string[] {
  const lines = [
    row([
      "path",
      "median MiB/s [min–max]",
      "95 % CI of the mean, MiB/s",
      "median Gbit/s [min–max]",
      "runs, MiB/s",
      "retransmits total (per run)",
      "CPU client / server",
    ]),
    row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
  ];
  for (const [name, p, path] of [
    [POD, t.podToPod, "pod"],
    [HOST, t.hostToHost, "host"],
  ] as const) {
    lines.push(
      row([
        name,
        medianRange(p.mibPerSecond, fmtMiB),
        ci95(p.mibPerSecond, fmtMiB),
        medianRange(p.gbitPerSecond, fmtGbit),
        pathRuns(t, path)
          .map((r) => fmtMiB(r.mibPerSecond))
          .join(", "),
        retransmits(pathRuns(t, path)),
        cpu(p),
      ]),
    );
  }
  const r = t.ratio;
  lines.push(
    row([
      "pod/host ratio (paired per run)",
      medianRange(r.paired, fmtRatio),
      ci95(r.paired, fmtRatio),
      "—",
      r.perRun.map(fmtRatio).join(", "),
      "—",
      "—",
    ]),
  );
  return lines;
}

/**
 * One section per variant: heading with the datapath verdict, what was asked for, the features the
 * agents say run, the throughput table, the latency table, the evidence, and why.
 */
function modeSection(m: ModeView): string[] {
  const name = variantName(m);
  const out = [`### ${name} — ${m.status === "measured" ? datapathSummary(m) : m.status.toUpperCase()}`, ""];
  const t = m.throughput;
  if (m.variant !== undefined && m.variant !== m.mode) {
    out.push(...askedLine(m));
  }
  if (m.status !== "measured" || t === undefined) {
    out.push(
      m.status === "not run"
        ? `Not run (an earlier ${m.variant !== undefined && m.variant !== m.mode ? "variant" : "mode"} failed or the run was interrupted).`
        : `No numbers for this ${m.variant !== undefined && m.variant !== m.mode ? "variant" : "mode"}.`,
    );
    if (m.error !== undefined) {
      out.push("", "```text", m.error.trim().split("\n").slice(-15).join("\n"), "```");
    }
    out.push("");
    return out;
  }
  if (m.datapath === undefined || !isConfirmed(m.datapath)) {
    out.push(`**The datapath is not confirmed: these numbers cannot be attributed to ${name}.**`, "");
  }
  if (m.features !== undefined) {
    out.push(...featureTable(m.features));
  }
  if (!t.representative) {
    out.push(`**Not representative:** ${t.warning ?? "measured under TCG."}`, "");
  }
  out.push(...modeTable(t), "");
  const r = t.ratio;
  out.push(
    `pod/host: paired median ${fmtRatio(r.paired.median)}, ratio of medians ${fmtRatio(r.ratioOfMedians)}; ` +
      (r.article === null
        ? "the article did not measure this mode."
        : `the article's ${fmtRatio(r.article.ratio)} (${r.article.source}) is ${r.article.insideCi95 === null ? "not testable against one run" : r.article.insideCi95 ? "inside" : "outside"} this run's 95 % CI.`),
    "",
  );
  const mss = (p: PathSummary) => (p.tcpMss.length === 0 ? "n/a" : p.tcpMss.join(", "));
  out.push(
    `TCP MSS seen: pod↔pod ${mss(t.podToPod)}, host↔host ${mss(t.hostToHost)} bytes (path MTU − 52 with TCP timestamps: 1398 through a 1450-byte route, 1448 at 1500).`,
    "",
  );
  if (m.latency !== undefined) {
    out.push(...latencyTable(m.latency));
  }
  if (m.datapath !== undefined) {
    out.push(...evidenceSection(m.datapath), ...flowProofLines(m.datapath));
  }
  out.push(...explanationSection(explain(m)));
  return out;
}

/** The comparison with the article: ratios, since absolute MiB/s depend on the host. */
function articleSection(view: CompareView): string[] {
  const vx = articleRatio("vxlan")?.ratio ?? 0;
  const na = articleRatio("native")?.ratio ?? 0;
  const out = [
    "## Compared with the article",
    "",
    `The article ([Cilium Series 4 — Cilium Native Routing](${ARTICLE_URL}): Cilium 1.13.4, k3s v1.26.6+k3s1, three Ubuntu 23.04 VMs, ` +
      `one 10 s iperf3 run per path, \`-f M\`) measured host↔host ${ARTICLE.hostMiBPerSecond} MiB/s, VXLAN pod↔pod ${ARTICLE.vxlanMiBPerSecond} MiB/s ` +
      `and native pod↔pod ${ARTICLE.nativeMiBPerSecond} MiB/s: pod/host ratios ${fmtRatio(vx)} (VXLAN) and ${fmtRatio(na)} (native); it did not ` +
      "measure Geneve. Compare the ratios, not the MiB/s: absolute throughput depends on the host's CPU and NIC, the ratio on the datapath. " +
      "One run per path cannot separate 1.11 from 1.0 (the article's per-second host values spread 1047–1211 MiB/s).",
    "",
    row([
      "mode",
      "pod/host here: median [min–max] (paired)",
      "95 % CI",
      "article",
      "difference (median − article)",
      "article inside the CI",
    ]),
    row(["---", "---:", "---:", "---:", "---:", "---"]),
  ];
  for (const m of view.modes) {
    const r = m.throughput?.ratio;
    if (r === undefined) {
      out.push(row([variantName(m), m.status, "", fmtOptional(articleRatio(m.mode)?.ratio), "", ""]));
      continue;
    }
    out.push(
      row([
        variantName(m),
        medianRange(r.paired, fmtRatio),
        ci95(r.paired, fmtRatio),
        r.article === null ? "not measured" : fmtRatio(r.article.ratio),
        r.article === null ? "" : signed(r.article.difference),
        r.article === null ? "" : r.article.insideCi95 === null ? "n/a (1 run)" : r.article.insideCi95 ? "yes" : "no",
      ]),
    );
  }
  out.push("");
  return out;
}

function fmtOptional(v: number | undefined): string {
  return v === undefined ? "not measured" : fmtRatio(v);
}

function signed(v: number): string {
  const s = fmtRatio(Math.abs(v));
  return v < 0 && s !== "0.00" ? `−${s}` : `+${s}`;
}

function environmentSection(view: CompareView): string[] {
  const env = view.environment;
  const out = ["## Environment", "", row(["what", "value"]), row(["---", "---"])];
  out.push(row(["kernel", env.kernel]));
  out.push(row(["CPU model", env.cpuModel]));
  out.push(
    row([
      "accelerator",
      env.tcg ? `${env.accelerator} — TCG software emulation: throughput NOT representative` : env.accelerator,
    ]),
  );
  for (const [name, v] of Object.entries(env.versions)) {
    out.push(row([`version: ${name}`, v]));
  }
  for (const [name, v] of Object.entries(env.mtu)) {
    out.push(row([`MTU: ${name}`, `${v}`]));
  }
  for (const [name, v] of Object.entries(env.offloads)) {
    out.push(row([`offload: ${name}`, v]));
  }
  out.push(...nodeHostRows(env.nodeHosts).map(row));
  out.push("");
  return out;
}

/** The summary table: one row per variant. */
function summaryTable(view: CompareView): string[] {
  const out = [
    row([
      anyVariant(view) ? "variant" : "mode",
      "datapath",
      "pod↔pod MiB/s median [min–max]",
      "host↔host MiB/s median [min–max]",
      "pod/host (paired median)",
      "article pod/host",
    ]),
    row(["---", "---", "---:", "---:", "---:", "---:"]),
  ];
  for (const m of view.modes) {
    const t = m.throughput;
    out.push(
      row([
        variantName(m),
        m.status === "measured" ? datapathSummary(m) : m.status,
        t === undefined ? "—" : medianRange(t.podToPod.mibPerSecond, fmtMiB),
        t === undefined ? "—" : medianRange(t.hostToHost.mibPerSecond, fmtMiB),
        t === undefined ? "—" : fmtRatio(t.ratio.paired.median),
        fmtOptional(articleRatio(m.mode)?.ratio),
      ]),
    );
  }
  return out;
}

/** How iperf3 ran, from the first measured mode's settings. */
function methodLine(view: CompareView): string {
  const s = view.modes.find((m) => m.throughput !== undefined)?.throughput?.settings;
  if (s === undefined) {
    return "No mode was measured.";
  }
  return (
    `iperf3: ${s.runs} run${s.runs === 1 ? "" : "s"} per path of ${s.seconds} s, ${s.streams} stream${s.streams === 1 ? "" : "s"}, ` +
    `first ${s.omitSeconds} s omitted (\`-O ${s.omitSeconds}\`), ${s.order}; client \`iperf3 ${s.clientArgs.join(" ")}\`.`
  );
}

/** Renders the whole report. Pure: the same view gives the same text. */
export function renderReport(view: CompareView): string {
  const out: string[] = [
    `# cilium-lab compare: ${view.modes.map(variantName).join(" vs ")}`,
    "",
    `> **${view.source.label}**`,
  ];
  if (view.environment.tcg) {
    out.push(
      ">",
      "> **Measured under TCG (software emulation, accelerator `qemu`): the throughput is NOT representative of any real network.** " +
        "Only the presence of the datapath and the order of magnitude of the ratios mean anything here.",
    );
  }
  out.push(
    "",
    `Stack \`${view.stack}\`, started ${view.startedAt}. ${methodLine(view)}`,
    "",
    "Units: MiB/s as `iperf3 -f M` prints them (1 MiB/s = 1,048,576 bytes/s = 8.388608 Mbit/s), Gbit/s = 10⁹ bit/s; receiver side " +
      "(`end.sum_received`). Median [min–max] of the runs; the 95 % confidence interval is of the mean (Student t). The pod/host ratio " +
      "pairs each pod run with the host run next to it. Retransmits are the sender's; CPU is iperf3's `cpu_utilization_percent` " +
      "(client host_total / server remote_total), mean over the runs.",
    "",
    "## Summary",
    "",
    ...summaryTable(view),
    "",
    ...latencySummary(view),
    ...featureSummary(view),
    anyVariant(view) ? "## Per variant" : "## Per mode",
    "",
  );
  for (const m of view.modes) {
    out.push(...modeSection(m));
  }
  out.push(...environmentSection(view), ...articleSection(view));
  return `${out.join("\n").trimEnd()}\n`;
}
