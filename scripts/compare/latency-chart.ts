/**
 * latency.svg: grouped bars (one group per variant; one bar per netperf test and path) of the p50
 * latency, median over the runs, with min–max error bars over the runs; rendered like
 * throughput.svg (Vega-Lite → Vega → SVG, headless). Readable without colour: each series has its
 * own fill and outline dash, and every bar carries a direct label with its series and median.
 */
import type { TopLevelSpec } from "vega-lite";

import { bar, barsPerVariant, chartNotes, groupedBarSpec, measuredGroups, renderSpec, runsOf, type Bar } from "./chart";
import { latencyRow } from "./report-variant";
import type { CompareView } from "./results";

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

/** One bar: a variant's p50 for one test and path (µs); its direct label, e.g. `RR pod 48`. */
export interface LatencyChartRow extends Bar {
  readonly variant: string;
  readonly series: (typeof LATENCY_SERIES)[number]["name"];
}

/** The rows: per variant with a `latency` output, every measured series, in {@link LATENCY_SERIES} order. */
export function latencyChartRows(view: CompareView): LatencyChartRow[] {
  return barsPerVariant(
    view,
    (m) => m.latency,
    (variant, l) =>
      LATENCY_SERIES.flatMap((s) => {
        const r = latencyRow(l, s.test, s.path);
        return r === undefined ? [] : [{ variant, series: s.name, ...bar(r.p50Us, s.short) }];
      }),
  );
}

/** The Vega-Lite spec of latency.svg. */
export function latencyChartSpec(view: CompareView): TopLevelSpec {
  const [variants, first] = measuredGroups(view, (m) => m.latency);
  return groupedBarSpec({
    title: "netperf p50 latency per transaction (lower is better)",
    notes: chartNotes(
      view,
      view.modes.some((m) => m.latency?.representative === false),
      `bars: median p50 of ${runsOf("netperf", first?.settings)}; error bars: min–max of the runs' p50`,
    ),
    rows: latencyChartRows(view),
    x: { field: "variant", sort: variants, title: "variant" },
    offset: "series",
    legendTitle: "test and path",
    yTitle: "µs per transaction (p50)",
    series: {
      domain: LATENCY_SERIES.map((s) => s.name),
      fills: LATENCY_SERIES.map((s) => s.fill),
      dashes: LATENCY_SERIES.map((s) => s.dash),
    },
    groupWidth: 240,
  });
}

/** Renders latency.svg. */
export function renderLatencyChart(view: CompareView): Promise<string> {
  return renderSpec(latencyChartSpec(view));
}
