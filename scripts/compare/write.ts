/**
 * Writes one run's directory: results.json (everything, machine-readable), report.md,
 * throughput.svg and, when any variant has latency, latency.svg (all rendered from the same view).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { renderChart } from "./chart";
import { renderLatencyChart } from "./latency-chart";
import { renderReport } from "./report";
import type { CompareView } from "./results";

/** `2026-11-24T10:15:03.123Z` → `2026-11-24T10-15-03Z`: sortable, no colons (safe on every filesystem). */
export function timestampDir(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/:/g, "-");
}

/** The files written, by name. */
export interface WrittenResults {
  readonly dir: string;
  readonly resultsJson: string;
  readonly reportMd: string;
  readonly throughputSvg: string;
  /** Written only when some variant has a `latency` output. */
  readonly latencySvg?: string;
}

/**
 * Writes `results` (any JSON-serialisable record that includes the view) as results.json, and
 * report.md and throughput.svg rendered from `view`, into `dir` (created).
 */
export async function writeResults(dir: string, results: unknown, view: CompareView): Promise<WrittenResults> {
  await fs.mkdir(dir, { recursive: true });
  const files = {
    dir,
    resultsJson: path.join(dir, "results.json"),
    reportMd: path.join(dir, "report.md"),
    throughputSvg: path.join(dir, "throughput.svg"),
  };
  await fs.writeFile(files.resultsJson, `${JSON.stringify(results, null, 2)}\n`);
  await fs.writeFile(files.reportMd, renderReport(view));
  await fs.writeFile(files.throughputSvg, await renderChart(view));
  if (view.modes.some((m) => m.latency !== undefined)) {
    const latencySvg = path.join(dir, "latency.svg");
    await fs.writeFile(latencySvg, await renderLatencyChart(view));
    return { ...files, latencySvg };
  }
  return files;
}
