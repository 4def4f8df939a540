/**
 * The datapath as each side observes it (cilium-config, the agents' `Routing:` lines, the nodes'
 * tunnel devices), the words the verdict and its failure message use for modes and devices, and the
 * notes recorded beside the verdict. Pure: no Pulumi, no I/O.
 */
import type { AgentStatus } from "./agent-status";
import { TUNNEL_DEVICES, type DatapathEvidence, type NodeEvidence, type ObservedMode } from "./build";

/** The datapath as each side sees it. */
export interface ObservedDatapath {
  /** What the nodes run (tunnel devices), else what the ConfigMap says. */
  readonly routingMode: ObservedMode;
  readonly configured: ObservedMode;
  /** From the agents' `Routing:` lines (1.16+); `unknown` when no agent reports one. */
  readonly agents: ObservedMode;
  /** From the tunnel devices on the nodes. */
  readonly nodes: ObservedMode;
  /** The distinct pod route MTUs seen (`null` = no mtu on the route). */
  readonly podRouteMtus: readonly (number | null)[];
  /** Whether every node has a direct route to every other node's pod CIDRs via that node's IP; `null` without pod CIDRs. */
  readonly directNodeRoutes: boolean | null;
}

/** A routing mode in words: `native routing`, `vxlan tunnel`, `mixed`, `unknown`. */
export function modeWord(m: ObservedMode): string {
  return m === "native" ? "native routing" : m === "vxlan" || m === "geneve" ? `${m} tunnel` : m;
}

/** The one mode all sides agree on, `mixed` when they differ, `unknown` when none says. */
function agreeing(modes: readonly ObservedMode[]): ObservedMode {
  const known = [...new Set(modes)];
  if (known.length === 0) {
    return "unknown";
  }
  return known.length === 1 ? (known[0] as ObservedMode) : "mixed";
}

/** The mode a node runs, from its tunnel devices. */
export function nodeMode(n: NodeEvidence): ObservedMode {
  const names = n.tunnelDevices.map((d) => d.name);
  const vx = names.includes(TUNNEL_DEVICES.vxlan);
  const ge = names.includes(TUNNEL_DEVICES.geneve);
  return vx && ge ? "mixed" : vx ? "vxlan" : ge ? "geneve" : "native";
}

/** The routing an agent reports on its `Routing:` line (1.16+); `null` when it has none. */
export function agentMode(a: AgentStatus | null): ObservedMode | null {
  if (a === null || a.routing === null) {
    return null;
  }
  if (a.routing.network === "Native") {
    return "native";
  }
  const p = a.routing.protocol;
  return p === "vxlan" || p === "geneve" ? p : "unknown";
}

/** A node's tunnel devices in words: `cilium_vxlan (vxlan, mtu 1500, port 8472)`, or `none`. */
export function describeDevices(n: NodeEvidence): string {
  return n.tunnelDevices.length === 0
    ? "none"
    : n.tunnelDevices
        .map((d) => `${d.name} (${d.kind ?? "?"}, mtu ${d.mtu ?? "?"}${d.port !== null ? `, port ${d.port}` : ""})`)
        .join(", ");
}
/** The datapath as each side observes it: cilium-config, the agents' `Routing:` lines, the nodes' tunnel devices, pod route MTUs, direct routes. */
export function observedDatapath(evidence: DatapathEvidence): ObservedDatapath {
  const nodesMode = agreeing(evidence.nodes.map(nodeMode));
  const agentModes = evidence.nodes.map((n) => agentMode(n.agent)).filter((m): m is ObservedMode => m !== null);
  const mtus = [
    ...new Set(evidence.nodes.flatMap((n) => n.pods.filter((p) => p.wired).flatMap((p) => p.routes.map((r) => r.mtu)))),
  ].sort((x, y) => (x ?? Infinity) - (y ?? Infinity));
  const withCidrs = evidence.cluster.filter((c) => c.podCidrs.length > 0 && c.internalIp !== null);
  const directNodeRoutes =
    withCidrs.length < 2 || evidence.nodes.length === 0
      ? null
      : evidence.nodes.every((n) =>
          withCidrs
            .filter((o) => o.name !== n.node)
            .every((o) =>
              o.podCidrs.every((cidr) =>
                n.podCidrRoutes.some((r) => r.owner === o.name && r.dst === cidr && r.gateway === o.internalIp),
              ),
            ),
        );
  return {
    routingMode: evidence.nodes.length > 0 ? nodesMode : evidence.configured.mode,
    configured: evidence.configured.mode,
    agents: agreeing(agentModes),
    nodes: evidence.nodes.length > 0 ? nodesMode : "unknown",
    podRouteMtus: mtus,
    directNodeRoutes,
  };
}

/** Kernel, NIC MTU, driver and the tunnel-related offloads per node: recorded, not judged. */
export function evidenceNotes(evidence: DatapathEvidence): string[] {
  return evidence.nodes.map((n) => {
    const off = n.nic.offloads;
    const flags =
      off === null
        ? `offloads unknown (${n.nic.ethtoolError ?? "ethtool gave nothing"})`
        : ["generic-receive-offload", "tx-udp_tnl-segmentation", "rx-udp_tunnel-port-offload"]
            .map((f) => `${f} ${off[f] ?? "?"}`)
            .join(", ");
    return `${n.node}: kernel ${n.kernel}; NIC ${n.nic.name} mtu ${n.nic.mtu ?? "?"} (${n.nic.driver ?? "driver ?"}): ${flags}`;
  });
}
