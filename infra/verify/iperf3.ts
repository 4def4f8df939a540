/**
 * iperf3 results: parse `iperf3 -J` output, and turn repeated runs into honest, labelled numbers.
 * Pure: no I/O, no Pulumi; every function is table-tested (test/verify/iperf3.test.ts).
 *
 * Which fields and why (the method the benchmarks we compare with use: k8s-netperf, InfraBuilder's
 * 2024 CNI benchmark): throughput is the RECEIVER side, `end.sum_received.bits_per_second` (what
 * arrived, not what was queued; the article quotes 493 receiver vs 494 sender), retransmits are
 * `end.sum_sent.retransmits` (the sender's TCP counter), CPU is `end.cpu_utilization_percent`
 * (`host_total` on the client, `remote_total` on the server).
 * see https://github.com/esnet/iperf/blob/master/src/iperf_api.c (JSON keys)
 */

/** bits/s → MiB/s: what `iperf3 -f M` prints (bytes/s / 2^20; esnet/iperf src/units.c uses 1024 × 1024 for `M`). */
export function bitsToMiBPerSecond(bitsPerSecond: number): number {
  return bitsPerSecond / 8 / 1048576;
}

/** bits/s → Gbit/s (decimal: bits/s / 1e9, as network links are rated). */
export function bitsToGbitPerSecond(bitsPerSecond: number): number {
  return bitsPerSecond / 1e9;
}

/** The units every throughput number is given in, spelled out for readers of the stack output. */
export const UNITS = {
  bitsPerSecond: "bit/s, receiver side: iperf3 -J end.sum_received.bits_per_second",
  mibPerSecond: "MiB/s = bytes/s / 2^20, what the article's `iperf3 -f M` prints as MBytes/sec",
  gbitPerSecond: "Gbit/s = bits/s / 10^9",
  retransmits: "TCP retransmits counted by the sender: end.sum_sent.retransmits",
  cpuPercent:
    "% of one machine's CPU time during the run: end.cpu_utilization_percent (host_total on the client, remote_total on the server)",
  ratio: "pod-to-pod / host-to-host, dimensionless",
} as const;

/** One iperf3 client run, as read from its `-J` document. */
export interface Iperf3Result {
  /** Receiver-side throughput over the measured seconds (omitted seconds excluded), bit/s. */
  readonly bitsPerSecond: number;
  /** Bytes the receiver got in the measured seconds. */
  readonly bytes: number;
  /** Measured seconds (`end.sum_received.seconds`). */
  readonly seconds: number;
  /** Sender retransmits; `null` when iperf3 cannot read them (non-Linux, UDP). */
  readonly retransmits: number | null;
  /** Client (sender) CPU, % (`cpu_utilization_percent.host_total`). */
  readonly clientCpuPercent: number;
  /** Server (receiver) CPU, % (`cpu_utilization_percent.remote_total`). */
  readonly serverCpuPercent: number;
  /** The TCP MSS iperf3 saw (`start.tcp_mss_default`): route MTU − 52 with timestamps (1398 over a 1450 route, 1448 over 1500). */
  readonly tcpMss: number | null;
  /** Parallel streams (`start.test_start.num_streams`). */
  readonly streams: number | null;
  /** Omitted warm-up seconds (`start.test_start.omit`). */
  readonly omitSeconds: number | null;
  /** `start.timestamp.time`, the client's clock at start. */
  readonly startedAt: string | null;
  /** `start.version`, e.g. `iperf 3.12`. */
  readonly iperf3Version: string | null;
  /** Addresses of the first stream: `local → remote`, proof of which path was measured. */
  readonly connection: { readonly local: string; readonly remote: string } | null;
}

/** iperf3 output that is not a usable result. `tail` holds the end of the output, for the message. */
export class Iperf3OutputError extends Error {
  override name = "Iperf3OutputError";
  constructor(
    message: string,
    readonly tail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** How much of a bad output a message quotes. */
export const TAIL_CHARS = 400;

/** The last `TAIL_CHARS` characters of `text`, marked when cut. */
export function tailOf(text: string, chars: number = TAIL_CHARS): string {
  const trimmed = text.trimEnd();
  return trimmed.length <= chars ? trimmed : `…${trimmed.slice(trimmed.length - chars)}`;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function numberAt(o: Json | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function objectAt(o: Json | undefined, key: string): Json | undefined {
  const v = o?.[key];
  return isObject(v) ? v : undefined;
}

/**
 * Parses one `iperf3 -J` client document (as `kubectl logs` returns it: the JSON object, possibly
 * with log lines before or after it, which are ignored). `label` names the run in messages,
 * e.g. `pod-to-pod run 2 (job iperf3-pod-2-ab12cd34)`.
 *
 * Throws {@link Iperf3OutputError}:
 * - empty output: `iperf3 <label>: no output.`
 * - no complete JSON object (a run killed mid-way, a cut log):
 *   `iperf3 <label>: the output is not a complete JSON document (<n> characters; truncated?). Output ends with: <tail>`
 * - an `error` field (iperf3 3.12 exits 0 with `-J` when it cannot connect, so this is the only
 *   reliable failure signal): `iperf3 <label> failed: <error>. Output ends with: <tail>`
 * - no receiver summary: `iperf3 <label>: no end.sum_received.bits_per_second in the output (…)`
 */
export function parseIperf3Json(text: string, label: string): Iperf3Result {
  if (text.trim() === "") {
    throw new Iperf3OutputError(`iperf3 ${label}: no output.`, "");
  }
  const tail = tailOf(text);
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  let doc: unknown;
  try {
    if (start < 0 || end < start) {
      throw new SyntaxError("no JSON object");
    }
    doc = JSON.parse(text.slice(start, end + 1));
  } catch (err) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: the output is not a complete JSON document (${text.length} characters; truncated?). Output ends with: ${tail}`,
      tail,
      { cause: err },
    );
  }
  if (!isObject(doc)) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: the output is JSON but not an iperf3 document. Output ends with: ${tail}`,
      tail,
    );
  }
  if (typeof doc.error === "string" && doc.error !== "") {
    throw new Iperf3OutputError(`iperf3 ${label} failed: ${doc.error}. Output ends with: ${tail}`, tail);
  }
  const end_ = objectAt(doc, "end");
  const received = objectAt(end_, "sum_received");
  const bitsPerSecond = numberAt(received, "bits_per_second");
  if (bitsPerSecond === undefined) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: no end.sum_received.bits_per_second in the output (a UDP or reverse-mode run, or an older iperf3?). Output ends with: ${tail}`,
      tail,
    );
  }
  const sent = objectAt(end_, "sum_sent");
  const cpu = objectAt(end_, "cpu_utilization_percent");
  const startDoc = objectAt(doc, "start");
  const testStart = objectAt(startDoc, "test_start");
  const connected = startDoc?.connected;
  const first = Array.isArray(connected) && isObject(connected[0]) ? connected[0] : undefined;
  const timestamp = objectAt(startDoc, "timestamp");
  return {
    bitsPerSecond,
    bytes: numberAt(received, "bytes") ?? 0,
    seconds: numberAt(received, "seconds") ?? 0,
    retransmits: numberAt(sent, "retransmits") ?? null,
    clientCpuPercent: numberAt(cpu, "host_total") ?? 0,
    serverCpuPercent: numberAt(cpu, "remote_total") ?? 0,
    tcpMss: numberAt(startDoc, "tcp_mss_default") ?? null,
    streams: numberAt(testStart, "num_streams") ?? null,
    omitSeconds: numberAt(testStart, "omit") ?? null,
    startedAt: typeof timestamp?.time === "string" ? timestamp.time : null,
    iperf3Version: typeof startDoc?.version === "string" ? startDoc.version : null,
    connection:
      first && typeof first.local_host === "string" && typeof first.remote_host === "string"
        ? {
            local: `${first.local_host}:${String(first.local_port)}`,
            remote: `${first.remote_host}:${String(first.remote_port)}`,
          }
        : null,
  };
}

// ─── statistics ────────────────────────────────────────────────────────────────────────────────

/**
 * Two-sided 95 % critical values of Student's t (the 0.975 quantile) by degrees of freedom, from
 * the NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.2
 * (https://www.itl.nist.gov/div898/handbook/eda/section3/eda3672.htm). `iperf3Runs` is at most 20,
 * so df ≤ 19; larger df use the largest tabulated df not above them (a slightly wider, safe interval).
 */
export const T_975: ReadonlyMap<number, number> = new Map([
  [1, 12.706],
  [2, 4.303],
  [3, 3.182],
  [4, 2.776],
  [5, 2.571],
  [6, 2.447],
  [7, 2.365],
  [8, 2.306],
  [9, 2.262],
  [10, 2.228],
  [11, 2.201],
  [12, 2.179],
  [13, 2.16],
  [14, 2.145],
  [15, 2.131],
  [16, 2.12],
  [17, 2.11],
  [18, 2.101],
  [19, 2.093],
  [20, 2.086],
  [21, 2.08],
  [22, 2.074],
  [23, 2.069],
  [24, 2.064],
  [25, 2.06],
  [26, 2.056],
  [27, 2.052],
  [28, 2.048],
  [29, 2.045],
  [30, 2.042],
  [40, 2.021],
  [50, 2.009],
  [60, 2.0],
  [80, 1.99],
  [100, 1.984],
]);

/** t(0.975, df) from {@link T_975}. */
export function tCritical975(df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new RangeError(`Student t needs a whole number of degrees of freedom >= 1 (got ${df}).`);
  }
  let best = 12.706;
  for (const [d, t] of T_975) {
    if (d <= df) {
      best = t;
    }
  }
  return best;
}

/** The formula behind every `ci95`, spelled out in outputs. */
export const CI95_METHOD =
  "mean ± t(0.975, n−1) · s / √n, s the sample standard deviation (n−1 denominator), t from NIST's table; needs n ≥ 2";

/** A 95 % confidence interval of the mean. */
export interface Interval {
  readonly low: number;
  readonly high: number;
}

/** Summary statistics of n ≥ 1 values, in one unit. */
export interface Stats {
  /** What the numbers are, e.g. `MiB/s`. */
  readonly unit: string;
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** Sample standard deviation (n−1); `null` for n = 1. */
  readonly stdev: number | null;
  /** 95 % confidence interval of the mean ({@link CI95_METHOD}); `null` for n = 1. */
  readonly ci95: Interval | null;
}

/** The median of sorted values. */
function medianOfSorted(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Median, min, max, mean, sample standard deviation and 95 % CI (Student t) of `values`. */
export function describe(values: readonly number[], unit: string): Stats {
  if (values.length === 0) {
    throw new RangeError(`no values to describe (${unit})`);
  }
  if (values.some((v) => !Number.isFinite(v))) {
    throw new RangeError(`values must be finite numbers (${unit}): ${values.join(", ")}`);
  }
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((s, v) => s + v, 0) / n;
  let stdev: number | null = null;
  let ci95: Interval | null = null;
  if (n >= 2) {
    const ss = values.reduce((s, v) => s + (v - mean) ** 2, 0);
    stdev = Math.sqrt(ss / (n - 1));
    const half = (tCritical975(n - 1) * stdev) / Math.sqrt(n);
    ci95 = { low: mean - half, high: mean + half };
  }
  return {
    unit,
    n,
    median: medianOfSorted(sorted),
    min: sorted[0] as number,
    max: sorted[n - 1] as number,
    mean,
    stdev,
    ci95,
  };
}

/** The same statistics in another unit: every field is linear in the values, so it scales exactly. */
export function scaleStats(stats: Stats, factor: number, unit: string): Stats {
  return {
    unit,
    n: stats.n,
    median: stats.median * factor,
    min: stats.min * factor,
    max: stats.max * factor,
    mean: stats.mean * factor,
    stdev: stats.stdev === null ? null : stats.stdev * factor,
    ci95: stats.ci95 === null ? null : { low: stats.ci95.low * factor, high: stats.ci95.high * factor },
  };
}

// ─── runs, paths, ratio ────────────────────────────────────────────────────────────────────────

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

/** What was run, exported with the numbers. */
export interface ThroughputSettings {
  readonly image: string;
  readonly seconds: number;
  readonly omitSeconds: number;
  readonly streams: number;
  readonly runs: number;
  /** The client's exact arguments (target address shown as `<target>`). */
  readonly clientArgs: readonly string[];
  readonly server: { readonly node: string; readonly hostIp: string; readonly podIp: string };
  readonly client: { readonly node: string };
  readonly order: string;
}

/** A row of the article's table, measured. */
export interface TableRow {
  readonly row: "host-to-host" | "pod-to-pod";
  readonly mibPerSecond: {
    readonly median: number;
    readonly min: number;
    readonly max: number;
    readonly ci95: Interval | null;
  };
  readonly gbitPerSecond: {
    readonly median: number;
    readonly min: number;
    readonly max: number;
    readonly ci95: Interval | null;
  };
  /** The article's figure for this row and mode, MiB/s; `null` for Geneve pod-to-pod. */
  readonly articleMiBPerSecond: number | null;
}

/** The `throughput` stack output. */
export interface ThroughputOutput {
  readonly units: typeof UNITS;
  readonly ci95Method: string;
  /** The routing mode the numbers belong to (proven by the `datapath` output). */
  readonly routingMode: "vxlan" | "geneve" | "native";
  /**
   * `false` when the VMs ran under TCG (`accelerator: qemu`): software-emulated CPUs make absolute
   * numbers and even ratios unrepresentative of KVM or hardware.
   */
  readonly representative: boolean;
  /** Why not representative, or `null`. */
  readonly warning: string | null;
  readonly settings: ThroughputSettings;
  /** The article's table, measured: host-to-host and pod-to-pod, median and spread in both units. */
  readonly table: readonly TableRow[];
  readonly hostToHost: PathSummary;
  readonly podToPod: PathSummary;
  readonly ratio: RatioSummary;
  /** Every run, in the order it ran. */
  readonly runs: readonly RunRecord[];
}

/** The warning attached to TCG results. */
export const TCG_WARNING =
  "Measured with accelerator: qemu (TCG, software-emulated CPUs): throughput is bound by instruction emulation, " +
  "not by the datapath; neither the absolute numbers nor the pod/host ratio represent KVM or hardware.";

function row(name: TableRow["row"], s: PathSummary, article: number | null): TableRow {
  const pick = (st: Stats) => ({ median: st.median, min: st.min, max: st.max, ci95: st.ci95 });
  return {
    row: name,
    mibPerSecond: pick(s.mibPerSecond),
    gbitPerSecond: pick(s.gbitPerSecond),
    articleMiBPerSecond: article,
  };
}

/** Builds the `throughput` output from every run. */
export function summarizeThroughput(input: {
  readonly runs: readonly RunRecord[];
  readonly routingMode: "vxlan" | "geneve" | "native";
  readonly accelerator: "kvm" | "qemu";
  readonly settings: ThroughputSettings;
}): ThroughputOutput {
  const hostToHost = summarizePath("host", input.runs);
  const podToPod = summarizePath("pod", input.runs);
  const podArticle =
    input.routingMode === "vxlan"
      ? ARTICLE.vxlanMiBPerSecond
      : input.routingMode === "native"
        ? ARTICLE.nativeMiBPerSecond
        : null;
  const representative = input.accelerator === "kvm";
  return {
    units: UNITS,
    ci95Method: CI95_METHOD,
    routingMode: input.routingMode,
    representative,
    warning: representative ? null : TCG_WARNING,
    settings: input.settings,
    table: [row("host-to-host", hostToHost, ARTICLE.hostMiBPerSecond), row("pod-to-pod", podToPod, podArticle)],
    hostToHost,
    podToPod,
    ratio: pairedRatio(input.runs, input.routingMode),
    runs: [...input.runs].sort((a, b) => a.order - b.order),
  };
}
