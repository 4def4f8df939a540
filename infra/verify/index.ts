/**
 * The verification layer: prove the datapath, then measure host↔host and pod↔pod with iperf3.
 *
 * Stack outputs it provides (types for readers such as the `compare` report):
 * - `datapath`: {@link DatapathOutput} — `requested`, `observed`, `verdict` (`confirmed`), every
 *   {@link Check}, and the {@link DatapathEvidence} (cilium-config keys, pod CIDRs, per node: agent
 *   status, tunnel devices, pod route MTUs, direct routes, NIC MTU, driver, offloads, kernel);
 * - `throughput`: {@link ThroughputOutput} — every run ({@link RunRecord}), per path
 *   ({@link PathSummary}) median/min/max/mean/95 % CI ({@link Stats}) in bit/s, MiB/s and Gbit/s,
 *   the paired pod/host ratio ({@link RatioSummary}) beside the article's, the article's table,
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
