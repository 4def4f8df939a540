/**
 * The verification layer: prove the datapath and the features the config predicts, then measure
 * host↔host and pod↔pod with iperf3 (throughput) and netperf (latency).
 *
 * Stack outputs it provides (types for readers such as the `compare` report):
 * - `datapath`: {@link DatapathReport} — `requested`, `observed`, `verdict` (`confirmed`), every
 *   {@link Check}, the {@link DatapathEvidence} (cilium-config keys, pod CIDRs, per node: agent
 *   status, tunnel devices, pod route MTUs, direct routes, NIC MTU, driver, offloads, kernel), the
 *   `features` and `flowProof` ({@link FlowProof}: the measured flow as Hubble saw it; `null` with
 *   `flowProofReason` when Hubble is off);
 * - `features`: {@link FeaturesOutput} — per node the article's feature lines, asked for, observed
 *   (the agent's own words) and the article's starting list, and Hubble Relay;
 * - `throughput`: {@link ThroughputOutput} — every run ({@link RunRecord}), per path
 *   ({@link PathSummary}) median/min/max/mean/95 % CI ({@link Stats}) in bit/s, MiB/s and Gbit/s,
 *   the paired pod/host ratio ({@link RatioSummary}) beside the article's, the article's table,
 *   and `representative: false` under TCG;
 * - `latency`: {@link LatencyOutput} — every netperf TCP_RR and TCP_CRR run (min, P50, P90, P99,
 *   mean µs, transactions/s), per path × test median and spread over the runs, pod beside host,
 *   and `representative: false` under TCG.
 */
export { Verification, type VerificationArgs, type VerificationConfig, type VerificationNode } from "./verify";
export type {
  AgentStatus,
  Check,
  ClusterNode,
  ConfiguredEvidence,
  DatapathEvidence,
  DatapathOutput,
  MeasuredPod,
  NodeEvidence,
  ObservedDatapath,
  ObservedMode,
  PodEvidence,
  RequestedDatapath,
} from "./evidence";
export {
  ARTICLE,
  UNITS,
  articleRatio,
  bitsToGbitPerSecond,
  bitsToMiBPerSecond,
  type Interval,
  type PathName,
  type PathSummary,
  type RatioSummary,
  type RunRecord,
  type Stats,
  type TableRow,
  type ThroughputOutput,
  type ThroughputSettings,
} from "./iperf3";
export type { DatapathReport, FlowProof, FlowProofResult } from "./flow-proof";
export type { FeatureLine, FeaturesOutput } from "./evidence/features";
export type { LatencyOutput, LatencyRow, LatencyRunRecord, LatencySettings, LatencySummary, Spread } from "./netperf";
