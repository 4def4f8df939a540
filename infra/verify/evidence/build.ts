/**
 * Building the evidence: the collectors' facts digested into what the verdict judges and the
 * `datapath.evidence` output shows. The configured side is the `cilium-config` ConfigMap, read with
 * the key names of the chart version (`tunnel` up to 1.13; `routing-mode` + `tunnel-protocol` from
 * 1.14, and 1.17+ renders `tunnel-protocol` even in native mode, so it means nothing there
 * (cilium/cilium#42648)). The running side is per node: agent status, tunnel devices, pod routes,
 * routes to the other nodes' pod CIDRs, kube-proxy's chains, and, recorded but not judged, kernel,
 * NIC MTU, driver and offloads. Pure: no I/O, no Pulumi.
 */
import type { RoutingMode } from "../../config";
import { hasRoutingModeKeys, parseCiliumVersion } from "../../cilium/values";
import { parseAgentStatus, type AgentStatus } from "./agent-status";
import {
  KUBE_PROXY_CHAIN,
  type ClusterFacts,
  type ClusterNode,
  type HubbleRelayFacts,
  type NodeFacts,
  type PodFacts,
} from "./collectors";
import type { IpRoute } from "./ip";

/** Tunnel device name per tunnel protocol. */
export const TUNNEL_DEVICES = { vxlan: "cilium_vxlan", geneve: "cilium_geneve" } as const;

/** The offload flags kept in the evidence (the usual suspects in "VXLAN is slow on VMs" reports). */
export const OFFLOAD_FLAGS = [
  "generic-receive-offload",
  "generic-segmentation-offload",
  "tcp-segmentation-offload",
  "large-receive-offload",
  "rx-checksumming",
  "tx-checksumming",
  "rx-gro-hw",
  "rx-udp-gro-forwarding",
  "tx-udp_tnl-segmentation",
  "tx-udp_tnl-csum-segmentation",
  "rx-udp_tunnel-port-offload",
] as const;

/** The `cilium-config` keys kept in the evidence. */
export const CONFIG_MAP_KEYS = [
  "tunnel",
  "routing-mode",
  "tunnel-protocol",
  "auto-direct-node-routes",
  "ipv4-native-routing-cidr",
  "kube-proxy-replacement",
  "enable-bpf-masquerade",
  "enable-ipv4-masquerade",
  "ipam",
  "mtu",
  "datapath-mode",
] as const;

/** A routing mode as observed; `mixed` when nodes disagree, `unknown` when nothing says. */
export type ObservedMode = RoutingMode | "mixed" | "unknown";

/** The configured side. */
export interface ConfiguredEvidence {
  /** The kept `cilium-config` entries ({@link CONFIG_MAP_KEYS} plus any expected key). */
  readonly configMap: Readonly<Record<string, string>>;
  /** The routing mode those entries select for this chart version. */
  readonly mode: ObservedMode;
  /** How `mode` was read, e.g. `routing-mode=tunnel, tunnel-protocol=vxlan`. */
  readonly readAs: string;
}

/** One pod's routes, digested. */
export interface PodEvidence {
  readonly netns: string;
  /** The Kubernetes pod, when it is one of the measurement's pods (matched by IP); else `null`. */
  readonly pod: string | null;
  /** Whether the pod has an interface with an IPv4 address (a namespace still being wired by the CNI has none). */
  readonly wired: boolean;
  /** The pod's IPv4 address(es) on its interfaces other than `lo`. */
  readonly ips: readonly string[];
  /** MTU of the pod's interface (`eth0` in a pod). */
  readonly deviceMtu: number | null;
  /** The routes whose MTU proves the datapath: the default route if any, else every non-connected route. */
  readonly routes: readonly IpRoute[];
}

/** The running side of one node. */
export interface NodeEvidence {
  readonly node: string;
  readonly ip: string;
  readonly hostname: string;
  readonly kernel: string;
  readonly nic: {
    readonly name: string;
    readonly mtu: number | null;
    readonly driver: string | null;
    /** {@link OFFLOAD_FLAGS} → on/off (`[fixed]` when the driver does not allow changing it). */
    readonly offloads: Readonly<Record<string, string>> | null;
    readonly ethtoolError: string | null;
  };
  readonly tunnelDevices: readonly {
    readonly name: string;
    readonly kind: string | null;
    readonly mtu: number | null;
    readonly port: number | null;
  }[];
  /** MTUs of cilium_host / cilium_net (recorded: Cilium gives them the base MTU). */
  readonly ciliumDevices: readonly { readonly name: string; readonly mtu: number | null }[];
  /** Routes on the node whose destination is another node's pod CIDR. */
  readonly podCidrRoutes: readonly (IpRoute & { readonly owner: string })[];
  readonly pods: readonly PodEvidence[];
  /** `null` when no agent pod was found on this node. */
  readonly agent: AgentStatus | null;
  /** What the node's iptables save commands show of kube-proxy. */
  readonly iptables: {
    /** The save commands that could be read (`iptables-save`, `ip6tables-save`, …, by file name). */
    readonly read: readonly string[];
    /** Where kube-proxy's {@link KUBE_PROXY_CHAIN} chain is declared: `iptables-save nat`, …. */
    readonly kubeProxyChains: readonly string[];
    /** Save commands that failed: `<command> exited <code>: <output>`. */
    readonly errors: readonly string[];
  };
  readonly collectorErrors: readonly string[];
}

/** A pod whose route MTU must be among the evidence: the iperf3 server pod the numbers come from. */
export interface MeasuredPod {
  readonly name: string;
  readonly node: string;
  readonly ip: string;
}

/** Everything the verdict looks at, and what the `datapath.evidence` output shows. */
export interface DatapathEvidence {
  readonly ciliumVersion: string;
  /** Pods that must appear, with their routes, in the node evidence. */
  readonly measuredPods: readonly MeasuredPod[];
  readonly configured: ConfiguredEvidence;
  /** Every node the cluster knows, with its pod CIDRs. */
  readonly cluster: readonly ClusterNode[];
  readonly nodes: readonly NodeEvidence[];
  /** The `hubble-relay` Deployment as collected; `null` (or absent) when it was not collected. */
  readonly hubbleRelay?: HubbleRelayFacts | null;
}

/** Reads the routing mode out of `cilium-config` with the key names of `ciliumVersion`. */
export function configuredMode(
  configMap: Readonly<Record<string, string>>,
  ciliumVersion: string,
): { mode: ObservedMode; readAs: string } {
  const fromTunnelKey = (t: string | undefined): { mode: ObservedMode; readAs: string } => {
    if (t === undefined || t === "") {
      return { mode: "vxlan", readAs: "tunnel unset (the agent's default: vxlan)" };
    }
    if (t === "disabled") {
      return { mode: "native", readAs: "tunnel=disabled" };
    }
    if (t === "vxlan" || t === "geneve") {
      return { mode: t, readAs: `tunnel=${t}` };
    }
    return { mode: "unknown", readAs: `tunnel=${t} (not vxlan, geneve or disabled)` };
  };
  if (!hasRoutingModeKeys(parseCiliumVersion(ciliumVersion))) {
    return fromTunnelKey(configMap.tunnel);
  }
  const rm = configMap["routing-mode"];
  const tp = configMap["tunnel-protocol"];
  if (rm === "native") {
    // 1.17+ renders tunnel-protocol in native mode too: it is not evidence of a tunnel.
    return { mode: "native", readAs: "routing-mode=native" };
  }
  if (rm === "tunnel") {
    const proto = tp === undefined || tp === "" ? "vxlan" : tp;
    const mode: ObservedMode = proto === "vxlan" || proto === "geneve" ? proto : "unknown";
    return { mode, readAs: `routing-mode=tunnel, tunnel-protocol=${tp ?? "unset (vxlan)"}` };
  }
  if (rm === undefined || rm === "") {
    // 1.14 still maps the deprecated `tunnel` key; with neither, the agent defaults to tunnel/vxlan.
    const viaTunnel = fromTunnelKey(configMap.tunnel);
    return { mode: viaTunnel.mode, readAs: `routing-mode unset, ${viaTunnel.readAs}` };
  }
  return { mode: "unknown", readAs: `routing-mode=${rm} (not tunnel or native: the agent refuses it)` };
}

/** A node to build evidence for: its Kubernetes name, lab IP and the collector's facts. */
export interface NodeInput {
  readonly node: string;
  readonly ip: string;
  readonly facts: NodeFacts;
}

/** `/usr/sbin/iptables-save` → `iptables-save`. */
function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function isPodCidrRoute(r: IpRoute, cidr: string): boolean {
  return r.dst === cidr;
}

/** {@link OFFLOAD_FLAGS} → `on` / `off`, `[fixed]` when the driver does not allow changing it; `null` when ethtool gave nothing. */
function offloadText(facts: NodeFacts): Record<string, string> | null {
  if (facts.offloads === null) {
    return null;
  }
  const offloads: Record<string, string> = {};
  for (const flag of OFFLOAD_FLAGS) {
    const o = facts.offloads[flag];
    if (o !== undefined) {
      offloads[flag] = `${o.on ? "on" : "off"}${o.fixed ? " [fixed]" : ""}`;
    }
  }
  return offloads;
}

/** One pod namespace on `node`: its addresses, its device MTU and the routes whose MTU proves the datapath. */
function podEvidence(p: PodFacts, node: string, measuredPods: readonly MeasuredPod[]): PodEvidence {
  // Cilium's CNI gives a pod `default via <router> dev eth0 mtu <route MTU>` (and a link route to
  // the router without mtu): the default route is the one that carries the MTU. Namespaces
  // without a default route (tests) are judged on every route that is not a connected one.
  const defaults = p.routes.filter((r) => r.dst === "default");
  const candidates = p.routes.filter((r) => r.protocol !== "kernel");
  const devs = p.addrs.filter((a) => a.name !== "lo" && a.addrs.length > 0);
  const dev = p.links.find((l) => l.name !== "lo" && devs.some((d) => d.name === l.name));
  const ips = devs.flatMap((d) => d.addrs);
  const known = measuredPods.find((m) => m.node === node && ips.some((a) => a.split("/")[0] === m.ip));
  return {
    netns: p.netns,
    pod: known?.name ?? null,
    wired: ips.length > 0,
    ips,
    deviceMtu: dev?.mtu ?? null,
    routes: defaults.length > 0 ? defaults : candidates,
  };
}

/** What the node's iptables save commands show of kube-proxy. */
function iptablesEvidence(facts: NodeFacts): NodeEvidence["iptables"] {
  return {
    read: facts.iptables.filter((d) => d.exitCode === 0).map((d) => baseName(d.command)),
    kubeProxyChains: facts.iptables.flatMap((d) =>
      Object.entries(d.tables)
        .filter(([, chains]) => chains.includes(KUBE_PROXY_CHAIN))
        .map(([table]) => `${baseName(d.command)} ${table}`),
    ),
    errors: facts.iptables
      .filter((d) => d.exitCode !== 0)
      .map((d) => `${baseName(d.command)} exited ${d.exitCode}: ${d.error ?? ""}`.trimEnd()),
  };
}

/** The running side of one node, with the cluster's view of the other nodes' pod CIDRs. */
function nodeEvidence(
  { node, ip, facts }: NodeInput,
  cluster: ClusterFacts,
  measuredPods: readonly MeasuredPod[],
): NodeEvidence {
  const nicLink = facts.links.find((l) => l.name === facts.nic);
  const others = cluster.nodes.filter((n) => n.name !== node);
  const podCidrRoutes = others.flatMap((o) =>
    o.podCidrs.flatMap((cidr) =>
      facts.routes.filter((r) => isPodCidrRoute(r, cidr)).map((r) => ({ ...r, owner: o.name })),
    ),
  );
  const agentFacts = cluster.agents.find((a) => a.node === node);
  return {
    node,
    ip,
    hostname: facts.hostname,
    kernel: facts.kernel,
    nic: {
      name: facts.nic,
      mtu: nicLink?.mtu ?? null,
      driver: facts.driver,
      offloads: offloadText(facts),
      ethtoolError: facts.ethtoolError,
    },
    tunnelDevices: facts.links
      .filter((l) => l.name === TUNNEL_DEVICES.vxlan || l.name === TUNNEL_DEVICES.geneve)
      .map((l) => ({ name: l.name, kind: l.kind, mtu: l.mtu, port: l.port })),
    ciliumDevices: facts.links
      .filter((l) => l.name === "cilium_host" || l.name === "cilium_net")
      .map((l) => ({ name: l.name, mtu: l.mtu })),
    podCidrRoutes,
    pods: facts.pods.map((p) => podEvidence(p, node, measuredPods)),
    agent: agentFacts ? parseAgentStatus(agentFacts) : null,
    iptables: iptablesEvidence(facts),
    collectorErrors: facts.errors,
  };
}

/** Digests the collectors' facts into the evidence the verdict judges and the stack output shows. */
export function buildEvidence(input: {
  readonly ciliumVersion: string;
  readonly cluster: ClusterFacts;
  readonly nodes: readonly NodeInput[];
  /** Extra `cilium-config` keys to keep (the ones the Cilium layer expects). */
  readonly expectedKeys?: readonly string[];
  /** Pods that must be found among the node evidence (the iperf3 server pod). */
  readonly measuredPods?: readonly MeasuredPod[];
}): DatapathEvidence {
  const measuredPods = input.measuredPods ?? [];
  const keep = new Set<string>([...CONFIG_MAP_KEYS, ...(input.expectedKeys ?? [])]);
  const configMap: Record<string, string> = {};
  for (const k of [...keep].sort()) {
    const v = input.cluster.configMap[k];
    if (v !== undefined) {
      configMap[k] = v;
    }
  }
  const { mode, readAs } = configuredMode(input.cluster.configMap, input.ciliumVersion);
  return {
    ciliumVersion: input.ciliumVersion,
    measuredPods,
    configured: { configMap, mode, readAs },
    cluster: input.cluster.nodes,
    nodes: input.nodes.map((n) => nodeEvidence(n, input.cluster, measuredPods)),
    hubbleRelay: input.cluster.hubbleRelay ?? null,
  };
}
