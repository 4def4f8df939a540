/**
 * Datapath evidence and the verdict: which datapath is really running, proven from two independent
 * sides (what is configured, what runs on each node) before any throughput is trusted.
 *
 * - ip.ts: `ip -j` parsing (links, routes with their MTU metric, addresses);
 * - collectors.ts: the collectors' documents, node facts (scripts/node/collect-evidence.sh) and cluster
 *   facts (scripts/node/collect-cilium-state.sh);
 * - agent-status.ts: an agent's `cilium status` / `cilium-dbg status`;
 * - feature-states.ts: its feature lines in the prediction's vocabulary; features.ts: the `features`
 *   output (asked / observed / article per node, Hubble Relay) and its checks;
 * - build.ts: the facts digested into the evidence;
 * - verdict.ts: the checks and the verdict; observed.ts: the datapath as each side sees it;
 * - output.ts: the `datapath` stack output and the failure message.
 *
 * Pure: parsers for the collectors' JSON and `verdict(requested, evidence)`. No I/O, no Pulumi.
 */
export { agentCli, parseAgentStatus, statusField, type AgentStatus } from "./agent-status";
export {
  FEATURE_LABELS,
  REPORT_ONLY,
  agentObservations,
  bandwidthManagerState,
  bigTcpState,
  hostRoutingState,
  kubeProxyReplacementState,
  masqueradingState,
  printsRoutingLine,
  type Observation,
} from "./feature-states";
export {
  describeObserved,
  featureCheckName,
  featureChecks,
  featuresOutput,
  relayObservation,
  type FeatureLine,
  type FeaturesOutput,
  type RelayOutput,
} from "./features";
export {
  CONFIG_MAP_KEYS,
  OFFLOAD_FLAGS,
  TUNNEL_DEVICES,
  buildEvidence,
  configuredMode,
  type ConfiguredEvidence,
  type DatapathEvidence,
  type MeasuredPod,
  type NodeEvidence,
  type NodeInput,
  type ObservedMode,
  type PodEvidence,
} from "./build";
export {
  EvidenceParseError,
  KUBE_PROXY_CHAIN,
  parseClusterFacts,
  parseIptablesSave,
  parseNodeFacts,
  type AgentFacts,
  type ClusterFacts,
  type ClusterNode,
  type HubbleRelayFacts,
  type IptablesDump,
  type NodeFacts,
  type Offload,
  type PodFacts,
} from "./collectors";
export { formatRoute, parseIpAddrs, parseIpLinks, parseIpRoutes, type IpAddrs, type IpLink, type IpRoute } from "./ip";
export type { ObservedDatapath } from "./observed";
export {
  datapathOutput,
  describeEvidence,
  unreadableEvidence,
  verdictFailureMessage,
  type DatapathOutput,
} from "./output";
export {
  KUBE_PROXY_CHECK,
  TUNNEL_OVERHEAD,
  replacesKubeProxy,
  verdict,
  type Check,
  type RequestedDatapath,
  type Verdict,
} from "./verdict";
