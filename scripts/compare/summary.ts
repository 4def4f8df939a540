/**
 * The terminal's variant lines: what each variant will change (printed before anything runs), and
 * after the run its latency in one line. Pure.
 */
import type { PlannedVariant } from "./modes";
import type { LatencyRow, NetperfTest } from "../../infra/verify/netperf";
import { variantName, type CompareView } from "./results";

/** Whether any view is a variant with feature keys (the tables then say "variant", not "mode"). */
export function anyVariant(view: CompareView): boolean {
  return view.modes.some((m) => m.variant !== undefined && m.variant !== m.mode);
}

/**
 * One line per planned variant: what its `up` will change. Cilium's values only, or also k3s when
 * kubeProxyReplacement changes (k3s re-runs with or without --disable-kube-proxy).
 */
export function planLines(planned: readonly PlannedVariant[]): string[] {
  return planned.map((p, i) => `plan ${i + 1}/${planned.length}: ${p.variant} will change ${p.changes.summary}`);
}

/** `48.2 µs` */
const us = (v: number): string => `${v.toFixed(1)} µs`;

function cell(rows: readonly LatencyRow[], test: NetperfTest, path: "pod" | "host"): string {
  const c = rows.find((x) => x.test === test && x.row === (path === "pod" ? "pod-to-pod" : "host-to-host"));
  return c === undefined ? "n/a" : us(c.p50Us.median);
}

/** One line per variant with latency: TCP_RR and TCP_CRR p50 medians, pod and host. */
export function latencyLines(view: CompareView): string[] {
  const withLatency = view.modes.filter((m) => m.latency !== undefined);
  if (withLatency.length === 0) {
    return [];
  }
  const lines = ["  latency (netperf p50, median over runs; pod / host):"];
  for (const m of withLatency) {
    const cells = m.latency?.table ?? [];
    lines.push(
      `    ${variantName(m)}: TCP_RR ${cell(cells, "TCP_RR", "pod")} / ${cell(cells, "TCP_RR", "host")}, ` +
        `TCP_CRR ${cell(cells, "TCP_CRR", "pod")} / ${cell(cells, "TCP_CRR", "host")}` +
        (m.latency?.representative === false ? " (not representative)" : ""),
    );
  }
  return lines;
}
