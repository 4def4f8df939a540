/**
 * latency.svg: grouped bars (one group per variant; one bar per netperf test and path) of the p50
 * latency, median over the runs, with min–max error bars over the runs; rendered like
 * throughput.svg (Vega-Lite → Vega → SVG, headless). Readable without colour: each series has its
 * own fill and outline dash, and every bar carries a direct label with its series and median.
 */
import type { TopLevelSpec } from "vega-lite";

import { groupedBarSpec, renderSpec, wrap } from "./chart";
import { latencyRow } from "./report-variant";
import { variantName, type CompareView } from "./results";

/** The bar series, in order within a variant's group: test × path. */
export const LATENCY_SERIES = [
  { name: "TCP_RR pod↔pod", test: "TCP_RR", path: "pod-to-pod", short: "RR pod", fill: "#3a3a3a", dash: [1, 0] },
  { name: "TCP_RR host↔host", test: "TCP_RR", path: "host-to-host", short: "RR host", fill: "#ffffff", dash: [5, 3] },
  { name: "TCP_CRR pod↔pod", test: "TCP_CRR", path: "pod-to-pod", short: "CRR pod", fill: "#9a9a9a", dash: [1, 0] },
  {
    name: "TCP_CRR host↔host",
    test: "TCP_CRR",
    path: "host-to-host",
    short: "CRR host",
    fill: "#ffffff",
    dash: [2, 2],
  },
] as const;

/** One bar: a variant's p50 for one test and path (µs). */
export interface LatencyChartRow {
  readonly variant: string;
  readonly series: (typeof LATENCY_SERIES)[number]["name"];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** The direct label on the bar, e.g. `RR pod 48`. */
  readonly label: string;
}

/** The rows: per variant with a `latency` output, every measured series, in {@link LATENCY_SERIES} order. */
export function latencyChartRows(view: CompareView): LatencyChartRow[] {
  const rows: LatencyChartRow[] = [];
  for (const m of view.modes) {
    const l = m.latency;
    if (l === undefined) {
      continue;
    }
    for (const s of LATENCY_SERIES) {
      const r = latencyRow(l, s.test, s.path);
      if (r !== undefined) {
        rows.push({
          variant: variantName(m),
          series: s.name,
          median: r.p50Us.median,
          min: r.p50Us.min,
          max: r.p50Us.max,
          label: `${s.short} ${Math.round(r.p50Us.median)}`,
        });
      }
    }
  }
  return rows;
}

/** The Vega-Lite spec of latency.svg. */
export function latencyChartSpec(view: CompareView): TopLevelSpec {
  const rows = latencyChartRows(view);
  const measured = view.modes.filter((m) => m.latency !== undefined);
  const variants = measured.map(variantName);
  const settings = measured[0]?.latency?.settings;
  const n = settings?.runs ?? 0;
  const notes = wrap(view.source.label);
  if (measured.some((m) => m.latency?.representative === false)) {
    notes.push(...wrap("measured under TCG software emulation: not representative of a real network"));
  }
  notes.push(
    `bars: median p50 of ${n} netperf run${n === 1 ? "" : "s"} of ${settings?.seconds ?? 0} s; error bars: min–max of the runs' p50`,
  );
  return groupedBarSpec({
    title: "netperf p50 latency per transaction (lower is better)",
    notes,
    rows,
    x: { field: "variant", sort: variants, title: "variant" },
    offset: "series",
    legendTitle: "test and path",
    yTitle: "µs per transaction (p50)",
    series: {
      domain: LATENCY_SERIES.map((s) => s.name),
      fills: LATENCY_SERIES.map((s) => s.fill),
      dashes: LATENCY_SERIES.map((s) => s.dash),
    },
    width: Math.max(400, 240 * Math.max(1, variants.length)),
  });
}

/** Renders latency.svg. */
export function renderLatencyChart(view: CompareView): Promise<string> {
  return renderSpec(latencyChartSpec(view));
}
