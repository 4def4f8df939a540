/**
 * results.json: what one `compare` run measured, and the view of it that report.md,
 * throughput.svg and latency.svg are rendered from. Types only.
 */
import type { DatapathOutput, FeaturesOutput } from "../../infra/verify/evidence";
import type { FlowProofResult } from "../../infra/verify/flow-proof";
import type { ThroughputOutput } from "../../infra/verify/iperf3";
import type { LatencyOutput } from "../../infra/verify/netperf";
import type { Mode } from "./variants";

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

/**
 * The datapath proof of one mode: the verification layer's `datapath` stack output. The report
 * needs its verdict and checks; `observedBy`, `notes`, `evidence` and the Hubble flow proof
 * (`flowProof`, or `flowProofReason` when there is none) are there in cluster runs
 * (namespace runs build their own checks from the kernel and have no cilium-config or agents).
 */
export type DatapathView = Pick<DatapathOutput, "requested" | "observed" | "verdict" | "checks" | "reasons"> &
  Partial<Pick<DatapathOutput, "observedBy" | "notes" | "evidence">> &
  Partial<FlowProofResult>;

/** One variant as the report and the charts show it. */
export interface ModeView {
  /** The variant's routing mode. */
  readonly mode: Mode;
  /** The variant's name, e.g. `native+hostRouting=bpf` (absent: the plain mode). */
  readonly variant?: string;
  /** The keys the variant set (unprefixed): what was asked for. */
  readonly asked?: Readonly<Record<string, string>>;
  /** What its `up` changed: Cilium only, or also k3s. */
  readonly changes?: string;
  /** The verification layer's `features` output, when the stack exports it. */
  readonly features?: FeaturesOutput;
  /** The verification layer's `latency` output, when the stack exports it. */
  readonly latency?: LatencyOutput;
  readonly status: "measured" | "failed" | "interrupted" | "not run";
  /** The verification layer's `throughput` output (statistics over every run), when measured. */
  readonly throughput?: ThroughputOutput;
  readonly datapath?: DatapathView;
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
  /**
   * The libvirt host of each node (cluster runs; absent in namespace runs, which have no libvirt
   * host, and in results.json written before it existed). See scripts/compare/node-hosts.ts.
   */
  readonly nodeHosts?: NodeHostsView;
}

/** Which libvirt host each node ran on, and where the measured pair ran. */
export interface NodeHostsView {
  /**
   * Where it was read: `stack output nodeHosts`, or why not, e.g. `not recorded (stack without the
   * nodeHosts output)`; when the runs differ, each run's (`vxlan: …; native: …`).
   */
  readonly source: string;
  /**
   * Node → libvirt URI in node order, e.g. `{ "node-1": "qemu:///system" }`; when the runs disagree,
   * each run's value (`vxlan: qemu:///system; native: qemu+ssh://me@hostb/system`). Empty when not recorded.
   */
  readonly hosts: Readonly<Record<string, string>>;
  /**
   * The measured pair (infra/verify/schedule.ts `pickPair`) and whether it is on two hosts, e.g.
   * `node-2 ↔ node-3 is on two hosts: traffic crosses a NIC`; per run when the runs disagree.
   * Absent when no run recorded the hosts.
   */
  readonly pair?: string;
}

/** A variant's name: its own, else the mode's. */
export function variantName(m: Pick<ModeView, "mode" | "variant">): string {
  return m.variant ?? m.mode;
}

/** Everything report.md, throughput.svg and latency.svg show. */
export interface CompareView {
  readonly source: ResultsSource;
  readonly stack: string;
  readonly startedAt: string;
  readonly environment: EnvironmentView;
  readonly modes: readonly ModeView[];
}
