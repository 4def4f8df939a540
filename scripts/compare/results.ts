/**
 * results.json: what one `compare` run measured, and the view of it that report.md and
 * throughput.svg are rendered from. Types only, plus the unit conversions.
 */
import type { Mode } from "./args";

/** Path names as they appear in the chart, the report and the data rows. */
export const POD = "pod↔pod";
export const HOST = "host↔host";

/** Where the numbers come from. */
export interface ResultsSource {
  /** `cluster`: a real `compare` run on the lab; `namespaces`: iperf3 between Linux network namespaces (tests, README sample). */
  readonly kind: "cluster" | "namespaces";
  /** Shown at the top of the report and in the chart's subtitle, e.g. "namespace data, not a cluster run". */
  readonly label: string;
}

/** One measured path (pod↔pod or host↔host) of one mode, in MiB/s as iperf3 `-f M` prints (receiver side). */
export interface PathView {
  /** Receiver throughput of each run, MiB/s, in run order. */
  readonly runsMiBps: readonly number[];
  readonly medianMiBps: number;
  readonly minMiBps: number;
  readonly maxMiBps: number;
  /** 95 % confidence interval of the mean (Student t), MiB/s; absent with fewer than 2 runs. */
  readonly ci95MiBps?: readonly [number, number];
  /** TCP retransmits counted by the sender, per run. */
  readonly retransmits: readonly number[];
  /** Mean CPU utilisation over the runs, percent of one host (iperf3 `cpu_utilization_percent.host_total` / `remote_total`). */
  readonly cpuPercent?: { readonly sender: number; readonly receiver: number };
}

/** The datapath proof of one mode, as the verification layer reports it. */
export interface DatapathView {
  readonly requested: string;
  readonly observed: string;
  /** e.g. `confirmed` or `mismatch`; only a confirmed datapath makes the numbers attributable to the mode. */
  readonly verdict: string;
  /** Whether the verdict confirms the requested datapath. */
  readonly confirmed: boolean;
  /** One line per piece of evidence (tunnel device, route MTU, direct routes, agent's routing mode…). */
  readonly evidence: readonly string[];
}

/** One mode as the report shows it. */
export interface ModeView {
  readonly mode: Mode;
  readonly status: "measured" | "failed" | "interrupted" | "not run";
  readonly pod?: PathView;
  readonly host?: PathView;
  /** pod↔pod median / host↔host median. */
  readonly ratio?: number;
  readonly datapath?: DatapathView;
  /** MTU of the pod path (e.g. the pod route or the cilium device), bytes. */
  readonly podMtu?: number;
  readonly error?: string;
}

/** The environment the numbers were measured in; every field says where it was read. */
export interface EnvironmentView {
  readonly kernel: string;
  readonly cpuModel: string;
  /** `kvm`, `qemu` (TCG: throughput not representative), or e.g. `none (network namespaces on the host)`. */
  readonly accelerator: string;
  /** True when measured under TCG software emulation. */
  readonly tcg: boolean;
  /** Component → version, e.g. `{ cilium: "1.13.4", k3s: "v1.26.6+k3s1", iperf3: "3.12" }`. */
  readonly versions: Readonly<Record<string, string>>;
  /** Interface → MTU, e.g. `{ "node eth0": 1500 }`. */
  readonly mtu: Readonly<Record<string, number>>;
  /** Offload feature → state, e.g. `{ "eth0 generic-receive-offload": "on" }`. */
  readonly offloads: Readonly<Record<string, string>>;
}

/** How iperf3 was run. */
export interface MethodView {
  readonly seconds: number;
  readonly runs: number;
  readonly streams: number;
  readonly omitSeconds: number;
}

/** Everything report.md and throughput.svg show. */
export interface CompareView {
  readonly source: ResultsSource;
  readonly stack: string;
  readonly startedAt: string;
  readonly method: MethodView;
  readonly environment: EnvironmentView;
  readonly modes: readonly ModeView[];
}

/** Bytes per MiB: iperf3's `-f M` divides by 1024 × 1024 (esnet/iperf src/units.c). */
export const BYTES_PER_MIB = 1024 * 1024;

/** iperf3 `bits_per_second` → MiB/s as `-f M` prints it. */
export function bitsToMiBps(bitsPerSecond: number): number {
  return bitsPerSecond / 8 / BYTES_PER_MIB;
}

/** MiB/s → Gbit/s (10^9 bit/s): 1 MiB/s = 8.388608 Mbit/s. */
export function mibpsToGbps(mibps: number): number {
  return (mibps * BYTES_PER_MIB * 8) / 1e9;
}
