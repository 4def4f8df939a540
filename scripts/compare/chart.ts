/**
 * throughput.svg: grouped bars (one group per routing mode, one bar per path) with min–max error
 * bars, rendered by Vega-Lite → Vega → SVG headless in Node (no canvas, no browser). Readable
 * without colour: pod bars are solid dark, host bars white with a dashed outline, and every bar
 * carries a direct label with its path and median.
 */
import * as vega from "vega";
import type { TopLevelSpec } from "vega-lite";
import { compile } from "vega-lite";

import { HOST, POD, variantName, type CompareView, type ModeView } from "./results";

const LEGEND = {
  title: "path",
  orient: "top",
  symbolType: "square",
  symbolStrokeColor: "black",
  symbolStrokeWidth: 1.5,
  symbolSize: 150,
} as const;

/** Splits a long note into lines of at most `width` characters at spaces, so the SVG stays narrow. */
export function wrap(text: string, width = 64): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") {
    lines.push(line);
  }
  return lines;
}

/** What every bar of a grouped bar chart carries: its height, its error bar and its direct label. */
export interface Bar {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly label: string;
}

/** A bar from a spread over runs: median high, min–max error bar, labelled `<name> <rounded median>`. */
export function bar(s: { readonly median: number; readonly min: number; readonly max: number }, name: string): Bar {
  return { median: s.median, min: s.min, max: s.max, label: `${name} ${Math.round(s.median)}` };
}

/** One bar of the chart; its direct label is path and rounded median, e.g. `pod 493`. */
export interface ChartRow extends Bar {
  /** The variant's name (a plain mode's is the mode). */
  readonly mode: string;
  readonly path: typeof POD | typeof HOST;
}

/**
 * The bars of every variant that has a chart's output, variants in run order: `bars` makes one
 * variant's from its name and that output.
 */
export function barsPerVariant<T, R>(
  view: CompareView,
  output: (m: ModeView) => T | undefined,
  bars: (name: string, o: T) => R[],
): R[] {
  return view.modes.flatMap((m) => {
    const o = output(m);
    return o === undefined ? [] : bars(variantName(m), o);
  });
}

/** The rows of the chart: one per measured variant and path, variants in run order, pod before host (MiB/s). */
export function chartRows(view: CompareView): ChartRow[] {
  return barsPerVariant(
    view,
    (m) => m.throughput,
    (mode, t) => {
      const paths = [
        [POD, t.podToPod],
        [HOST, t.hostToHost],
      ] as const;
      return paths.map(([path, p]) => ({ mode, path, ...bar(p.mibPerSecond, path === POD ? "pod" : "host") }));
    },
  );
}

/** The series of a grouped bar chart and how each is drawn (readable without colour). */
export interface BarSeries {
  /** Series names, in bar order within a group. */
  readonly domain: readonly string[];
  readonly fills: readonly string[];
  /** Outline dash per series (`[1, 0]` solid). */
  readonly dashes: readonly (readonly number[])[];
}

/**
 * Grouped bars with min–max error bars and a direct label on each bar: the layers `bars`,
 * `errorbars`, `caps_max`, `caps_min` and `labels`. Rows carry `median`, `min`, `max`, `label` and
 * the two fields named by `x` (the group) and `offset` (the series).
 */
export function groupedBarSpec(input: {
  readonly title: string;
  readonly notes: readonly string[];
  readonly rows: readonly Bar[];
  readonly x: { readonly field: string; readonly sort: readonly string[]; readonly title: string };
  readonly offset: string;
  /** The legend's title (default: the offset field's name). */
  readonly legendTitle?: string;
  readonly yTitle: string;
  readonly series: BarSeries;
  /** Pixels per group: the chart is this times the number of groups wide, 400 at least. */
  readonly groupWidth: number;
}): TopLevelSpec {
  const { series } = input;
  const legend = { ...LEGEND, title: input.legendTitle ?? input.offset };
  const x = {
    field: input.x.field,
    type: "nominal",
    sort: [...input.x.sort],
    title: input.x.title,
    axis: { labelAngle: 0 },
  } as const;
  const xOffset = { field: input.offset, type: "nominal", sort: [...series.domain] } as const;
  const domain = [...series.domain];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: input.title, subtitle: [...input.notes], anchor: "start" },
    width: Math.max(400, input.groupWidth * Math.max(1, input.x.sort.length)),
    height: 320,
    background: "white",
    data: { values: [...input.rows] },
    config: { font: "sans-serif", view: { stroke: null } },
    encoding: { x, xOffset },
    layer: [
      {
        name: "bars",
        mark: { type: "bar", stroke: "black", strokeWidth: 1.5 },
        encoding: {
          y: { field: "median", type: "quantitative", title: input.yTitle },
          fill: { field: input.offset, type: "nominal", scale: { domain, range: [...series.fills] }, legend },
          // Black outlines on every series; encoded (not only a mark property) so the legend symbols get them too.
          stroke: {
            field: input.offset,
            type: "nominal",
            scale: { domain, range: domain.map(() => "black") },
            legend,
          },
          strokeDash: {
            field: input.offset,
            type: "nominal",
            scale: { domain, range: series.dashes.map((d) => [...d]) },
            // The same legend as `fill`, so Vega-Lite merges them into one (fill + dash per series).
            legend,
          },
          description: { field: "label", type: "nominal" },
        },
      },
      {
        name: "errorbars",
        mark: { type: "rule", stroke: "black", strokeWidth: 1.5 },
        encoding: {
          y: { field: "min", type: "quantitative" },
          y2: { field: "max" },
        },
      },
      {
        name: "caps_max",
        mark: { type: "tick", color: "black", thickness: 1.5, size: 12 },
        encoding: { y: { field: "max", type: "quantitative" } },
      },
      {
        name: "caps_min",
        mark: { type: "tick", color: "black", thickness: 1.5, size: 12 },
        encoding: { y: { field: "min", type: "quantitative" } },
      },
      {
        name: "labels",
        mark: { type: "text", baseline: "bottom", dy: -4, fontSize: 11, fill: "black" },
        encoding: {
          y: { field: "max", type: "quantitative" },
          text: { field: "label", type: "nominal" },
        },
      },
    ],
  };
}

/** `3 iperf3 runs of 10 s`: the runs of `tool` a bar's median is taken over. */
export function runsOf(
  tool: string,
  settings: { readonly runs: number; readonly seconds: number } | undefined,
): string {
  const n = settings?.runs ?? 0;
  return `${n} ${tool} run${n === 1 ? "" : "s"} of ${settings?.seconds ?? 0} s`;
}

/** A chart's notes: the run's source, the TCG warning when `tcg`, and the line that says what the bars are. */
export function chartNotes(view: CompareView, tcg: boolean, bars: string): string[] {
  const notes = wrap(view.source.label);
  if (tcg) {
    notes.push(...wrap("measured under TCG software emulation: not representative of a real network"));
  }
  notes.push(bars);
  return notes;
}

/** The groups of a chart: the names of the variants that have its output, in run order; and the first one's output. */
export function measuredGroups<T>(
  view: CompareView,
  output: (m: ModeView) => T | undefined,
): [string[], T | undefined] {
  const measured = view.modes.filter((m) => output(m) !== undefined);
  return [measured.map(variantName), measured[0] === undefined ? undefined : output(measured[0])];
}

/** The Vega-Lite spec of the chart; exported so tests can check what is drawn from what. */
export function chartSpec(view: CompareView): TopLevelSpec {
  const [modes, first] = measuredGroups(view, (m) => m.throughput);
  return groupedBarSpec({
    title: `Pod↔pod vs host↔host TCP throughput by ${anyVariantName(view) ? "variant" : "routing mode"}`,
    notes: chartNotes(
      view,
      view.environment.tcg,
      `bars: median of ${runsOf("iperf3", first?.settings)}; error bars: min–max of the runs`,
    ),
    rows: chartRows(view),
    x: { field: "mode", sort: modes, title: anyVariantName(view) ? "variant" : "Cilium routing mode" },
    offset: "path",
    yTitle: "MiB/s (iperf3 -f M, receiver)",
    series: {
      domain: [POD, HOST],
      fills: ["#3a3a3a", "#ffffff"],
      dashes: [
        [1, 0],
        [5, 3],
      ],
    },
    groupWidth: 170,
  });
}

/** Whether any view is a variant with feature keys. */
function anyVariantName(view: CompareView): boolean {
  return view.modes.some((m) => variantName(m) !== m.mode);
}

/** Renders a Vega-Lite spec to an SVG document string, headless. */
export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const chartView = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await chartView.toSVG();
  } finally {
    chartView.finalize();
  }
}

/** Renders the chart to an SVG document string. */
export function renderChart(view: CompareView): Promise<string> {
  return renderSpec(chartSpec(view));
}
