/**
 * report.md's variant parts, PURE: what a variant asked for and what its `up` changed, the feature
 * table (asked / what the agents say / the article's starting list), the netperf latency table,
 * and the summaries across variants (features, latency). Every number comes from the verification
 * layer's `features` and `latency` outputs (infra/verify/evidence, infra/verify/netperf).
 */
import type { FeatureLine, FeaturesOutput } from "../../infra/verify/evidence";
import type { LatencyOutput, LatencyRow, NetperfTest, Spread } from "../../infra/verify/netperf";
import { variantName, type CompareView, type DatapathView, type ModeView } from "./results";

/** A Markdown table cell: pipes and newlines would break the table. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** One Markdown table row. */
export function row(cells: readonly string[]): string {
  return `| ${cells.map(cell).join(" | ")} |`;
}

/** `48.2 [45.0–51.3]`: µs with one decimal. */
export function usSpread(s: Spread): string {
  return `${s.median.toFixed(1)} [${s.min.toFixed(1)}–${s.max.toFixed(1)}]`;
}

/** `21034 [20500–21400]`: transactions/s, whole numbers. */
function tpsSpread(s: Spread): string {
  return `${s.median.toFixed(0)} [${s.min.toFixed(0)}–${s.max.toFixed(0)}]`;
}

/** `routingMode=native, hostRouting=bpf`: the keys a variant set, as asked. */
export function askedLine(m: ModeView): string[] {
  if (m.asked === undefined) {
    return [];
  }
  const keys = Object.entries(m.asked)
    .map(([k, v]) => `\`${k}=${v === "" ? '""' : v}\``)
    .join(", ");
  return [`Asked for: ${keys}.${m.changes === undefined ? "" : ` Its \`pulumi up\` changed: ${m.changes}.`}`, ""];
}

/** `legacy ("Legacy")`, the observed state and the agent's words. */
function observedText(l: FeatureLine): string {
  if (l.observed === null && l.agentSays === null) {
    return "—";
  }
  return `${l.observed ?? "?"}${l.agentSays === null ? "" : ` ("${l.agentSays}")`}`;
}

/**
 * What the agents say for one feature: one text when every node says the same, else per node.
 * The source is named once.
 */
function agentsSay(f: FeaturesOutput, feature: string): { text: string; source: string; ok: boolean } {
  const lines = f.nodes.flatMap((n) => n.lines.filter((l) => l.feature === feature).map((l) => ({ node: n.node, l })));
  const texts = lines.map(({ node, l }) => ({ node, text: observedText(l) }));
  const distinct = [...new Set(texts.map((t) => t.text))];
  return {
    text: distinct.length <= 1 ? (distinct[0] ?? "—") : texts.map(({ node, text }) => `${node}: ${text}`).join("; "),
    source: [...new Set(lines.map(({ l }) => l.source))].join("; "),
    ok: lines.every(({ l }) => l.ok),
  };
}

/** The feature table of one variant: asked, what the agents say, the article's starting value. */
export function featureTable(f: FeaturesOutput): string[] {
  const first = f.nodes[0]?.lines ?? [];
  const out = [
    `Features (${f.ok ? "every checked line agrees with what was asked" : "**a line contradicts what was asked**"}; ` +
      `${f.nodes.length} node${f.nodes.length === 1 ? "" : "s"}):`,
    "",
    row(["feature", "asked (predicted)", "agents say", "source", "article's start", "ok"]),
    row(["---", "---", "---", "---", "---", "---"]),
  ];
  for (const l of first) {
    const says = agentsSay(f, l.feature);
    out.push(
      row([
        l.label,
        l.asked === null ? "not checked" : l.asked,
        says.text,
        says.source,
        l.article ?? "—",
        says.ok ? "✓" : "✗",
      ]),
    );
  }
  out.push("");
  return out;
}

const PATHS = [
  ["pod-to-pod", "pod↔pod"],
  ["host-to-host", "host↔host"],
] as const;

/** The latency row of a path and test, if measured. */
export function latencyRow(l: LatencyOutput, test: NetperfTest, path: LatencyRow["row"]): LatencyRow | undefined {
  return l.table.find((r) => r.test === test && r.row === path);
}

/** The latency table of one variant: per test and path, p50/p90/p99/mean µs and transactions/s. */
export function latencyTable(l: LatencyOutput): string[] {
  const s = l.settings;
  const out = [
    `Latency: netperf ${s.tests.join(" and ")}, ${s.runs} run${s.runs === 1 ? "" : "s"} per path and test of ${s.seconds} s ` +
      `(interleaved with the iperf3 runs); median [min–max] over the runs, µs per transaction.`,
    "",
  ];
  if (!l.representative) {
    out.push(`**Not representative:** ${l.warning ?? "measured under TCG."}`, "");
  }
  out.push(
    row(["test", "path", "p50 µs", "p90 µs", "p99 µs", "mean µs", "transactions/s"]),
    row(["---", "---", "---:", "---:", "---:", "---:", "---:"]),
  );
  for (const test of s.tests) {
    for (const [key, name] of PATHS) {
      const r = latencyRow(l, test, key);
      if (r !== undefined) {
        out.push(
          row([
            test,
            name,
            usSpread(r.p50Us),
            usSpread(r.p90Us),
            usSpread(r.p99Us),
            usSpread(r.meanUs),
            tpsSpread(r.transactionsPerSecond),
          ]),
        );
      }
    }
  }
  for (const p of l.podOverHost) {
    out.push(
      "",
      `${p.test}: pod↔pod p50 is ${p.p50Ratio === null ? "n/a" : `${p.p50Ratio.toFixed(2)} ×`} host↔host ` +
        `(${p.p50DifferenceUs >= 0 ? "+" : "−"}${Math.abs(p.p50DifferenceUs).toFixed(1)} µs).`,
    );
  }
  out.push("");
  return out;
}

/** Across variants: p50 per test and path (median [min–max] µs). */
export function latencySummary(view: CompareView): string[] {
  const withLatency = view.modes.filter((m) => m.latency !== undefined);
  if (withLatency.length === 0) {
    return [];
  }
  const out = [
    "Latency (netperf p50, µs per transaction, median [min–max] over the runs):",
    "",
    row(["variant", "TCP_RR pod↔pod", "TCP_RR host↔host", "TCP_CRR pod↔pod", "TCP_CRR host↔host"]),
    row(["---", "---:", "---:", "---:", "---:"]),
  ];
  for (const m of withLatency) {
    const l = m.latency as LatencyOutput;
    const c = (test: NetperfTest, path: LatencyRow["row"]) => {
      const r = latencyRow(l, test, path);
      return r === undefined ? "—" : usSpread(r.p50Us);
    };
    out.push(
      row([
        variantName(m),
        c("TCP_RR", "pod-to-pod"),
        c("TCP_RR", "host-to-host"),
        c("TCP_CRR", "pod-to-pod"),
        c("TCP_CRR", "host-to-host"),
      ]),
    );
  }
  out.push("");
  return out;
}

/** Across variants: what the agents say runs, one column per variant (✗ where it contradicts what was asked). */
export function featureSummary(view: CompareView): string[] {
  const withFeatures = view.modes.filter((m) => m.features !== undefined);
  const labels = withFeatures[0]?.features?.nodes[0]?.lines ?? [];
  if (withFeatures.length === 0 || labels.length === 0) {
    return [];
  }
  const out = [
    "What the agents say runs (every node; ✗: contradicts what the variant asked for):",
    "",
    row(["feature", "article's start", ...withFeatures.map(variantName)]),
    row(["---", "---", ...withFeatures.map(() => "---")]),
  ];
  for (const l of labels) {
    out.push(
      row([
        l.label,
        l.article ?? "—",
        ...withFeatures.map((m) => {
          const says = agentsSay(m.features as FeaturesOutput, l.feature);
          return `${says.text}${says.ok ? "" : " ✗"}`;
        }),
      ]),
    );
  }
  out.push("");
  return out;
}

/** The Hubble flow proof of the measured connection, when the datapath output carries one (or why not). */
export function flowProofLines(d: DatapathView): string[] {
  const p = d.flowProof;
  if (p === undefined || (p === null && (d.flowProofReason ?? null) === null)) {
    return [];
  }
  if (p === null) {
    return [`Hubble flow proof: none (${d.flowProofReason ?? "no reason given"}).`, ""];
  }
  const points = p.observationPoints.length === 0 ? "none" : p.observationPoints.join(", ");
  return [
    `Hubble flow proof (${p.ok ? "confirmed" : "**FAILED**"}): ${p.summary} ` +
      `Observation points of the measured connection: ${points} (${p.flows} flow${p.flows === 1 ? "" : "s"}).`,
    "",
  ];
}
