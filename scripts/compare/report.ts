/**
 * report.md: PURE rendering of a {@link CompareView} to Markdown a network engineer can paste into a
 * design review — a table per mode, the environment, and the article's figures as ratios.
 */
import { HOST, mibpsToGbps, POD, type CompareView, type ModeView, type PathView } from "./results";

/**
 * The article's single 10 s iperf3 runs, `-f M` (MiB/s), receiver side: "Cilium Series 4 — Cilium
 * Native Routing", https://e-whisper.pages.dev/posts/47083/ (Cilium 1.13.4, k3s v1.26.6+k3s1, three
 * Ubuntu 23.04 VMs, kernel 6.2). Geneve was not measured there.
 */
export const ARTICLE = {
  url: "https://e-whisper.pages.dev/posts/47083/",
  hostMiBps: 1138,
  podMiBps: { vxlan: 493, native: 1266 } as Readonly<Record<string, number>>,
} as const;

/** The article's pod/host ratio for a mode (VXLAN 493/1138 ≈ 0.43, native 1266/1138 ≈ 1.11), or undefined. */
export function articleRatio(mode: string): number | undefined {
  const pod = ARTICLE.podMiBps[mode];
  return pod === undefined ? undefined : pod / ARTICLE.hostMiBps;
}

/** MiB/s in tables: one decimal. */
export const fmtMiB = (v: number): string => v.toFixed(1);
/** Gbit/s in tables: two decimals. */
export const fmtGbit = (v: number): string => v.toFixed(2);
/** Ratios: two decimals. */
export const fmtRatio = (v: number): string => v.toFixed(2);
/** CPU percent: one decimal. */
export const fmtPct = (v: number): string => `${v.toFixed(1)} %`;

/** `493.2 [480.1–501.3]` */
export function medianRange(p: PathView): string {
  return `${fmtMiB(p.medianMiBps)} [${fmtMiB(p.minMiBps)}–${fmtMiB(p.maxMiBps)}]`;
}

/** `470.0–510.0`, or `n/a (1 run)`. */
export function ci95(p: PathView): string {
  return p.ci95MiBps === undefined ? `n/a (${p.runsMiBps.length} run)` : `${fmtMiB(p.ci95MiBps[0])}–${fmtMiB(p.ci95MiBps[1])}`;
}

/** `6 (1, 2, 3)`: total, then per run. */
export function retransmits(p: PathView): string {
  const total = p.retransmits.reduce((a, b) => a + b, 0);
  return `${total} (${p.retransmits.join(", ")})`;
}

/** `45.0 % / 30.0 %` (sender / receiver), or `n/a`. */
export function cpu(p: PathView): string {
  return p.cpuPercent === undefined ? "n/a" : `${fmtPct(p.cpuPercent.sender)} / ${fmtPct(p.cpuPercent.receiver)}`;
}

/** A Markdown table cell: pipes and newlines would break the table. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function row(cells: readonly string[]): string {
  return `| ${cells.map(cell).join(" | ")} |`;
}

/** `confirmed (requested vxlan, observed vxlan)` */
function datapathSummary(m: ModeView): string {
  if (m.datapath === undefined) {
    return "no datapath evidence";
  }
  const d = m.datapath;
  return `${d.verdict} (requested ${d.requested}, observed ${d.observed})`;
}

/** The table of one mode. */
export function modeTable(m: ModeView): string[] {
  const lines = [
    row(["path", "median MiB/s [min–max]", "95 % CI of the mean, MiB/s", "median Gbit/s", "runs, MiB/s", "retransmits (per run)", "CPU sender / receiver"]),
    row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
  ];
  for (const [name, p] of [
    [POD, m.pod],
    [HOST, m.host],
  ] as const) {
    if (p === undefined) {
      lines.push(row([name, "not measured", "", "", "", "", ""]));
      continue;
    }
    lines.push(
      row([name, medianRange(p), ci95(p), fmtGbit(mibpsToGbps(p.medianMiBps)), p.runsMiBps.map(fmtMiB).join(", "), retransmits(p), cpu(p)]),
    );
  }
  const article = articleRatio(m.mode);
  lines.push(
    row([
      "pod/host ratio",
      m.ratio === undefined ? "n/a" : fmtRatio(m.ratio),
      "",
      "",
      article === undefined ? "article: not measured" : `article: ${fmtRatio(article)}`,
      "",
      "",
    ]),
  );
  return lines;
}

/** One section per mode: heading with the datapath verdict, the table, the evidence. */
function modeSection(m: ModeView): string[] {
  const out = [`### ${m.mode} — ${m.status === "measured" ? datapathSummary(m) : m.status.toUpperCase()}`, ""];
  if (m.status !== "measured") {
    out.push(m.status === "not run" ? "Not run (an earlier mode failed or the run was interrupted)." : "No numbers for this mode.");
    if (m.error !== undefined) {
      out.push("", "```text", m.error.trim().split("\n").slice(-15).join("\n"), "```");
    }
    out.push("");
    return out;
  }
  if (m.datapath !== undefined && !m.datapath.confirmed) {
    out.push(`**The datapath is not confirmed: these numbers cannot be attributed to ${m.mode}.**`, "");
  }
  out.push(...modeTable(m), "");
  if (m.podMtu !== undefined) {
    out.push(`Pod path MTU: ${m.podMtu} bytes.`, "");
  }
  if (m.datapath !== undefined && m.datapath.evidence.length > 0) {
    out.push("Datapath evidence:", "", ...m.datapath.evidence.map((e) => `- ${e}`), "");
  }
  return out;
}

/** The comparison with the article: ratios, since absolute MiB/s depend on the host. */
function articleSection(view: CompareView): string[] {
  const out = [
    "## Compared with the article",
    "",
    `The article ([Cilium Series 4 — Cilium Native Routing](${ARTICLE.url}): Cilium 1.13.4, k3s v1.26.6+k3s1, three Ubuntu 23.04 VMs, ` +
      `one 10 s iperf3 run per path, \`-f M\`) measured host↔host ${ARTICLE.hostMiBps} MiB/s, VXLAN pod↔pod ${ARTICLE.podMiBps.vxlan ?? ""} MiB/s ` +
      `and native pod↔pod ${ARTICLE.podMiBps.native ?? ""} MiB/s: pod/host ratios ${fmtRatio(articleRatio("vxlan") ?? 0)} (VXLAN) and ` +
      `${fmtRatio(articleRatio("native") ?? 0)} (native). Compare the ratios, not the MiB/s: absolute throughput depends on the host's ` +
      "CPU and NIC, the ratio on the datapath. One run each cannot separate 1.11 from 1.0 (the article's per-second host values spread 1047–1211 MiB/s).",
    "",
    row(["mode", "pod/host here", "pod/host range here (min/max of runs)", "article", "difference"]),
    row(["---", "---:", "---:", "---:", "---:"]),
  ];
  for (const m of view.modes) {
    const article = articleRatio(m.mode);
    const range = m.pod !== undefined && m.host !== undefined ? `${fmtRatio(m.pod.minMiBps / m.host.maxMiBps)}–${fmtRatio(m.pod.maxMiBps / m.host.minMiBps)}` : "n/a";
    out.push(
      row([
        m.mode,
        m.ratio === undefined ? "n/a" : fmtRatio(m.ratio),
        range,
        article === undefined ? "not measured" : fmtRatio(article),
        m.ratio === undefined || article === undefined ? "" : signed(m.ratio - article),
      ]),
    );
  }
  out.push("");
  return out;
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
  out.push(row(["accelerator", env.tcg ? `${env.accelerator} — TCG software emulation: throughput NOT representative` : env.accelerator]));
  for (const [name, v] of Object.entries(env.versions)) {
    out.push(row([`version: ${name}`, v]));
  }
  for (const [name, v] of Object.entries(env.mtu)) {
    out.push(row([`MTU: ${name}`, `${v}`]));
  }
  for (const [name, v] of Object.entries(env.offloads)) {
    out.push(row([`offload: ${name}`, v]));
  }
  out.push("");
  return out;
}

/** The summary table: one row per mode. */
function summaryTable(view: CompareView): string[] {
  const out = [
    row(["mode", "datapath", "pod↔pod MiB/s median [min–max]", "host↔host MiB/s median [min–max]", "pod/host", "article pod/host"]),
    row(["---", "---", "---:", "---:", "---:", "---:"]),
  ];
  for (const m of view.modes) {
    const article = articleRatio(m.mode);
    out.push(
      row([
        m.mode,
        m.status === "measured" ? datapathSummary(m) : m.status,
        m.pod === undefined ? "—" : medianRange(m.pod),
        m.host === undefined ? "—" : medianRange(m.host),
        m.ratio === undefined ? "—" : fmtRatio(m.ratio),
        article === undefined ? "not measured" : fmtRatio(article),
      ]),
    );
  }
  return out;
}

/** Renders the whole report. Pure: the same view gives the same text. */
export function renderReport(view: CompareView): string {
  const { method } = view;
  const out: string[] = [
    `# cilium-lab compare: ${view.modes.map((m) => m.mode).join(" vs ")}`,
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
    `Stack \`${view.stack}\`, started ${view.startedAt}. iperf3: ${method.runs} run${method.runs === 1 ? "" : "s"} per path of ` +
      `${method.seconds} s, ${method.streams} stream${method.streams === 1 ? "" : "s"}, first ${method.omitSeconds} s omitted (\`-O\`); ` +
      "host↔host and pod↔pod runs interleaved.",
    "",
    "Units: MiB/s as `iperf3 -f M` prints them (1 MiB/s = 1,048,576 bytes/s = 8.388608 Mbit/s), Gbit/s = 10⁹ bit/s; receiver side. " +
      "Median [min–max] of the runs; the 95 % confidence interval is of the mean (Student t). Retransmits are the sender's; CPU is " +
      "iperf3's `cpu_utilization_percent` (sender host_total / receiver remote_total), averaged over the runs.",
    "",
    "## Summary",
    "",
    ...summaryTable(view),
    "",
    "## Per mode",
    "",
  );
  for (const m of view.modes) {
    out.push(...modeSection(m));
  }
  out.push(...environmentSection(view), ...articleSection(view));
  return `${out.join("\n").trimEnd()}\n`;
}
