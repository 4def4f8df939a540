/**
 * Runs, paths and the pod/host ratio: each run as exported, each path's runs summarised in every
 * unit, and the paired pod/host ratio beside the article's. Pure: no I/O, no Pulumi.
 */
import type { Iperf3Result } from "./parse";
import { describe, scaleStats, type Stats } from "./stats";

/** bits/s → MiB/s: what `iperf3 -f M` prints (bytes/s / 2^20; esnet/iperf src/units.c uses 1024 × 1024 for `M`). */
export function bitsToMiBPerSecond(bitsPerSecond: number): number {
  return bitsPerSecond / 8 / 1048576;
}

/** bits/s → Gbit/s (decimal: bits/s / 1e9, as network links are rated). */
export function bitsToGbitPerSecond(bitsPerSecond: number): number {
  return bitsPerSecond / 1e9;
}

/** Which path a run measured. */
export type PathName = "host" | "pod";

/** One measured run, as exported (every run is in the stack output). */
export interface RunRecord {
  /** `host`: hostNetwork client → hostNetwork server (node IPs); `pod`: pod → pod over pod IPs. */
  readonly path: PathName;
  /** 1-based repetition; host and pod runs alternate: host 1, pod 1, host 2, … */
  readonly run: number;
  /** Position in the whole sequence, 1-based. */
  readonly order: number;
  /** The Kubernetes Job that ran it. */
  readonly job: string;
  readonly bitsPerSecond: number;
  readonly mibPerSecond: number;
  readonly gbitPerSecond: number;
  readonly retransmits: number | null;
  readonly clientCpuPercent: number;
  readonly serverCpuPercent: number;
  readonly tcpMss: number | null;
  readonly seconds: number;
  readonly startedAt: string | null;
  readonly iperf3Version: string | null;
  readonly connection: { readonly local: string; readonly remote: string } | null;
}

/** Builds a {@link RunRecord} from a parsed result. */
export function runRecord(path: PathName, run: number, order: number, job: string, r: Iperf3Result): RunRecord {
  return {
    path,
    run,
    order,
    job,
    bitsPerSecond: r.bitsPerSecond,
    mibPerSecond: bitsToMiBPerSecond(r.bitsPerSecond),
    gbitPerSecond: bitsToGbitPerSecond(r.bitsPerSecond),
    retransmits: r.retransmits,
    clientCpuPercent: r.clientCpuPercent,
    serverCpuPercent: r.serverCpuPercent,
    tcpMss: r.tcpMss,
    seconds: r.seconds,
    startedAt: r.startedAt,
    iperf3Version: r.iperf3Version,
    connection: r.connection,
  };
}

/** One path's runs summarised in every unit. */
export interface PathSummary {
  readonly path: PathName;
  readonly runs: number;
  readonly bitsPerSecond: Stats;
  readonly mibPerSecond: Stats;
  readonly gbitPerSecond: Stats;
  /** `null` when iperf3 reported no retransmit counter. */
  readonly retransmits: Stats | null;
  readonly clientCpuPercent: Stats;
  readonly serverCpuPercent: Stats;
  /** The distinct TCP MSS values seen (path MTU evidence: 1398 through a 1450 tunnel route, 1448 at 1500). */
  readonly tcpMss: readonly number[];
}

/** Summarises the runs of one path (all must be of that path). */
export function summarizePath(path: PathName, runs: readonly RunRecord[]): PathSummary {
  const mine = runs.filter((r) => r.path === path);
  if (mine.length === 0) {
    throw new RangeError(`no ${path} runs to summarise`);
  }
  const bits = describe(
    mine.map((r) => r.bitsPerSecond),
    "bit/s",
  );
  const retransmits = mine.every((r) => r.retransmits !== null)
    ? describe(
        mine.map((r) => r.retransmits as number),
        "retransmits",
      )
    : null;
  return {
    path,
    runs: mine.length,
    bitsPerSecond: bits,
    mibPerSecond: scaleStats(bits, 1 / 8 / 1048576, "MiB/s"),
    gbitPerSecond: scaleStats(bits, 1e-9, "Gbit/s"),
    retransmits,
    clientCpuPercent: describe(
      mine.map((r) => r.clientCpuPercent),
      "%",
    ),
    serverCpuPercent: describe(
      mine.map((r) => r.serverCpuPercent),
      "%",
    ),
    tcpMss: [...new Set(mine.map((r) => r.tcpMss).filter((m): m is number => m !== null))].sort((a, b) => a - b),
  };
}

/** The article's reference figures (single 10 s runs, `-f M`, MiB/s): https://e-whisper.pages.dev/posts/47083/ */
export const ARTICLE = {
  hostMiBPerSecond: 1138,
  vxlanMiBPerSecond: 493,
  nativeMiBPerSecond: 1266,
} as const;

/** The article's pod/host ratio for a routing mode; `null` for Geneve, which it did not measure. */
export function articleRatio(
  routingMode: "vxlan" | "geneve" | "native",
): { readonly ratio: number; readonly source: string } | null {
  switch (routingMode) {
    case "vxlan":
      return {
        ratio: ARTICLE.vxlanMiBPerSecond / ARTICLE.hostMiBPerSecond,
        source: "VXLAN 493 MiB/s / host 1138 MiB/s",
      };
    case "native":
      return {
        ratio: ARTICLE.nativeMiBPerSecond / ARTICLE.hostMiBPerSecond,
        source: "native 1266 MiB/s / host 1138 MiB/s",
      };
    case "geneve":
      return null;
    default:
      return null;
  }
}

/** The method behind {@link RatioSummary}, spelled out in outputs. */
export const RATIO_METHOD =
  "paired: r_i = pod_i / host_i for each repetition i (host and pod runs alternate, so each pair shares the " +
  "machine's state and drift cancels); statistics over the r_i, 95 % CI = mean ± t(0.975, n−1) · s / √n of the r_i. " +
  "ratioOfMedians = median(pod) / median(host) is given too.";

/** pod/host with its own spread, and the article's figure beside it. */
export interface RatioSummary {
  readonly method: string;
  /** Per-pair ratios r_i, in run order. */
  readonly perRun: readonly number[];
  /** Statistics over the paired ratios (unit `pod/host`). */
  readonly paired: Stats;
  /** median(pod bit/s) / median(host bit/s). */
  readonly ratioOfMedians: number;
  /** The article's ratio for this mode; `null` for Geneve. */
  readonly article: {
    readonly ratio: number;
    readonly source: string;
    /** paired median − article ratio. */
    readonly difference: number;
    /** Whether the article's ratio lies inside the paired 95 % CI; `null` with one run. */
    readonly insideCi95: boolean | null;
  } | null;
}

/** Pairs host run i with pod run i and summarises pod/host. */
export function pairedRatio(runs: readonly RunRecord[], routingMode: "vxlan" | "geneve" | "native"): RatioSummary {
  const host = runs.filter((r) => r.path === "host").sort((a, b) => a.run - b.run);
  const pod = runs.filter((r) => r.path === "pod").sort((a, b) => a.run - b.run);
  if (host.length === 0 || host.length !== pod.length || host.some((h, i) => h.run !== pod[i]?.run)) {
    throw new RangeError(
      `pod/host ratio needs one host run and one pod run per repetition (host runs ${host.map((r) => r.run).join(",")}; pod runs ${pod.map((r) => r.run).join(",")})`,
    );
  }
  if (host.some((h) => h.bitsPerSecond <= 0)) {
    throw new RangeError(
      `a host-to-host run measured 0 bit/s: no ratio can be formed (runs ${host.map((h) => h.bitsPerSecond).join(", ")})`,
    );
  }
  const perRun = host.map((h, i) => (pod[i] as RunRecord).bitsPerSecond / h.bitsPerSecond);
  const paired = describe(perRun, "pod/host");
  const ratioOfMedians =
    describe(
      pod.map((r) => r.bitsPerSecond),
      "bit/s",
    ).median /
    describe(
      host.map((r) => r.bitsPerSecond),
      "bit/s",
    ).median;
  const ref = articleRatio(routingMode);
  return {
    method: RATIO_METHOD,
    perRun,
    paired,
    ratioOfMedians,
    article:
      ref === null
        ? null
        : {
            ratio: ref.ratio,
            source: ref.source,
            difference: paired.median - ref.ratio,
            insideCi95: paired.ci95 === null ? null : paired.ci95.low <= ref.ratio && ref.ratio <= paired.ci95.high,
          },
  };
}
