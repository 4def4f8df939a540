/**
 * The verdict: which datapath is really running, proven from two independent sides before any
 * throughput is trusted. Each part of the proof is a function returning its checks: the configured
 * side (`cilium-config`), the cluster (coverage, pod CIDRs, InternalIPs), the nodes (agent status,
 * kube-proxy's leftovers, tunnel devices, pod route MTUs, routes to the other nodes' pod CIDRs) and
 * the pods the route MTUs were read from; then the datapath as each side observes it.
 *
 * Why these facts: the tunnel devices (`cilium_vxlan` / `cilium_geneve`) exist only in tunnel mode
 * (the loader removes unused ones); Cilium puts NIC MTU − 50 on pod routes in tunnel mode on an IPv4
 * underlay and no cap in native mode (pkg/mtu `getRouteMTU`, set once at CNI ADD); native mode with
 * auto-direct-node-routes has direct routes to the other nodes' pod CIDRs via their node IPs; every
 * pod CIDR must be inside the native-routing CIDR (else traffic is masqueraded); and no
 * kube-proxy KUBE-SERVICES chain may remain when Cilium replaces kube-proxy. With a feature
 * prediction, every predicted feature must be what the agents say runs (evidence/features.ts).
 *
 * Pure: `verdict(requested, evidence)` and its parts. No Pulumi, no I/O.
 */
import { cidrContainsRange, cidrLast, parseCidr } from "../../config/cidr";
import type { RoutingMode } from "../../config";
import type { PredictedFeatures } from "../../cilium/features";
import { TUNNEL_DEVICES, type DatapathEvidence, type NodeEvidence } from "./build";
import { KUBE_PROXY_CHAIN } from "./collectors";
import { featureChecks } from "./features";
import { formatRoute } from "./ip";
import {
  agentMode,
  describeDevices,
  evidenceNotes,
  modeWord,
  observedDatapath,
  type ObservedDatapath,
} from "./observed";

/** Bytes Cilium takes off pod routes in tunnel mode (IPv4 underlay): outer IPv4 20 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14 (pkg/mtu TunnelOverhead). */
export const TUNNEL_OVERHEAD = 50;

/** What was asked for. */
export interface RequestedDatapath {
  readonly routingMode: RoutingMode;
  readonly autoDirectNodeRoutes: boolean;
  /** The native-routing CIDR (resolved); checked in native mode only. */
  readonly nativeRoutingCidr: string;
  readonly ciliumVersion: string;
  /**
   * `cilium-config` entries the Cilium layer's values must have rendered (its `datapath.configMap`),
   * beyond the routing keys judged here. Optional.
   */
  readonly configMap?: Readonly<Record<string, string>>;
  /**
   * Cilium replaces kube-proxy (`cilium-lab:kubeProxyReplacement`): then no node may keep
   * kube-proxy's KUBE-SERVICES chain. When absent, read from `configMap`'s `kube-proxy-replacement`
   * (`true` on 1.14+, `strict` on 1.13: infra/cilium/values.ts).
   */
  readonly kubeProxyReplacement?: boolean;
  /**
   * What the config predicts the agents run, feature by feature (`predictFeatures(config)`,
   * infra/cilium/features.ts). Every non-`null` prediction but IPv6 BIG TCP is judged against what
   * the agents say (evidence/features.ts); a contradiction refuses the verdict. Absent: the
   * `features` output shows what runs, nothing is judged.
   */
  readonly features?: PredictedFeatures;
  /**
   * The libvirt network's MTU (`cilium-lab:networkMtu`, the Cilium layer's `datapath.networkMtu`):
   * every node's NIC must have it, because the lab sets no Helm `MTU` and Cilium takes the pod
   * routes' MTU from the NIC. When absent, the NIC's MTU is not judged (only the routes against it).
   */
  readonly networkMtu?: number;
}

/** Whether the request has Cilium replace kube-proxy. */
export function replacesKubeProxy(requested: RequestedDatapath): boolean {
  if (requested.kubeProxyReplacement !== undefined) {
    return requested.kubeProxyReplacement;
  }
  const v = requested.configMap?.["kube-proxy-replacement"];
  return v === "true" || v === "strict";
}

/** The check that refuses kube-proxy's leftovers (its name in `checks`). */
export const KUBE_PROXY_CHECK = "kube-proxy's iptables rules";

/** One check, passed or failed: the proof in the stack output. */
export interface Check {
  /** `cilium-config`, `cluster`, a node name, or `<node> pod <netns>`. */
  readonly scope: string;
  readonly check: string;
  readonly expected: string;
  readonly actual: string;
  readonly ok: boolean;
}

/** The verdict: `ok` only when every check passed. */
export interface Verdict {
  readonly ok: boolean;
  readonly requested: RoutingMode;
  readonly observed: ObservedDatapath;
  /** One line per failed check: `<scope>: <check>: expected <expected>, found <actual>`. */
  readonly reasons: readonly string[];
  readonly checks: readonly Check[];
  /** Facts worth knowing that do not decide the verdict (kernel, offloads). */
  readonly notes: readonly string[];
}

/** One check, in the field order of the stack output. */
function check(scope: string, name: string, expected: string, actual: string, ok: boolean): Check {
  return { scope, check: name, expected, actual, ok };
}

/** The configured side: the routing keys of `cilium-config`, and every other entry the Cilium layer rendered. */
export function configuredChecks(requested: RequestedDatapath, evidence: DatapathEvidence): Check[] {
  const want = requested.routingMode;
  const cm = evidence.configured.configMap;
  const checks: Check[] = [];
  checks.push(
    check(
      "cilium-config",
      "routing mode",
      modeWord(want),
      `${modeWord(evidence.configured.mode)} (${evidence.configured.readAs})`,
      evidence.configured.mode === want,
    ),
  );
  const adnr = cm["auto-direct-node-routes"] ?? "false";
  checks.push(
    check(
      "cilium-config",
      "auto-direct-node-routes",
      String(requested.autoDirectNodeRoutes),
      cm["auto-direct-node-routes"] === undefined ? "false (unset)" : adnr,
      adnr === String(requested.autoDirectNodeRoutes),
    ),
  );
  if (want === "native") {
    const got = cm["ipv4-native-routing-cidr"];
    checks.push(
      check(
        "cilium-config",
        "ipv4-native-routing-cidr",
        requested.nativeRoutingCidr,
        got ?? "unset",
        got === requested.nativeRoutingCidr,
      ),
    );
  }
  const judged = new Set([
    "tunnel",
    "routing-mode",
    "tunnel-protocol",
    "auto-direct-node-routes",
    "ipv4-native-routing-cidr",
  ]);
  for (const [k, v] of Object.entries(requested.configMap ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (!judged.has(k)) {
      checks.push(check("cilium-config", k, v, cm[k] ?? "unset", cm[k] === v));
    }
  }
  return checks;
}

/** The cluster: evidence from every node it knows, their pod CIDRs (inside the native-routing CIDR in native mode) and InternalIPs. */
export function clusterChecks(requested: RequestedDatapath, evidence: DatapathEvidence): Check[] {
  const checks: Check[] = [];
  const nativeCidr = parseCidr(requested.nativeRoutingCidr);
  const collected = new Set(evidence.nodes.map((n) => n.node));
  for (const c of evidence.cluster) {
    const seen = collected.has(c.name);
    checks.push(check("cluster", `evidence from node ${c.name}`, "collected", seen ? "collected" : "missing", seen));
    if (c.podCidrs.length === 0) {
      checks.push(check("cluster", `pod CIDR of ${c.name}`, "allocated", `none (${c.podCidrSource})`, false));
    }
    if (requested.routingMode === "native" && typeof nativeCidr !== "string") {
      for (const podCidr of c.podCidrs) {
        const p = parseCidr(podCidr);
        const inside = typeof p !== "string" && cidrContainsRange(nativeCidr, p.base, cidrLast(p));
        checks.push(
          check(
            "cluster",
            `pod CIDR of ${c.name} inside ipv4-native-routing-cidr`,
            `inside ${requested.nativeRoutingCidr}`,
            inside ? `${podCidr} inside` : `${podCidr} outside (its traffic would be masqueraded)`,
            inside,
          ),
        );
      }
    }
  }
  for (const n of evidence.nodes) {
    const c = evidence.cluster.find((k) => k.name === n.node);
    checks.push(
      c === undefined
        ? check("cluster", `node ${n.node} known to the cluster`, "a Node/CiliumNode", "none", false)
        : // A node registered with another interface's address (a NAT NIC) would route and tunnel there.
          check(
            n.node,
            "InternalIP",
            `${n.ip} (its lab network address)`,
            c.internalIp ?? "none",
            c.internalIp === n.ip,
          ),
    );
  }
  return checks;
}

/** The agent on a node: its health, its version against the chart's, and (1.16+) the routing it reports. */
function agentChecks(requested: RequestedDatapath, n: NodeEvidence): Check[] {
  const a = n.agent;
  if (a === null) {
    return [
      check(n.node, "agent status", "a Cilium agent pod reporting Ok", "no Cilium agent pod on this node", false),
    ];
  }
  const want = requested.routingMode;
  const checks = [
    check(
      n.node,
      "agent status",
      "Cilium: Ok",
      a.ok ? `Cilium: Ok (${a.command})` : (a.error ?? `Cilium: ${a.state ?? "no Cilium: line"}`),
      a.ok,
    ),
  ];
  if (a.version !== null) {
    checks.push(
      check(n.node, "agent version", requested.ciliumVersion, a.version, a.version === requested.ciliumVersion),
    );
  }
  const am = agentMode(a);
  if (am !== null && a.routing !== null) {
    checks.push(
      check(n.node, "agent routing", modeWord(want), `${modeWord(am)} (Routing: ${a.routing.line})`, am === want),
    );
  }
  return checks;
}

/**
 * No kube-proxy chain on a node where Cilium replaces kube-proxy: kube-proxy's rules outlive it (k3s
 * agents keep running kube-proxy until they restart, and a stopped kube-proxy leaves its chains), so
 * services would still go through them.
 */
function kubeProxyCheck(n: NodeEvidence): Check {
  const ipt = n.iptables;
  const actual =
    ipt.kubeProxyChains.length > 0
      ? `${KUBE_PROXY_CHAIN} in ${ipt.kubeProxyChains.join(", ")}`
      : ipt.read.length === 0
        ? `not read: no iptables-save on the node${ipt.errors.length > 0 ? ` (${ipt.errors.join("; ")})` : ""}`
        : `none (${ipt.read.join(", ")})`;
  return check(
    n.node,
    KUBE_PROXY_CHECK,
    `no ${KUBE_PROXY_CHAIN} chain (Cilium replaces kube-proxy)`,
    actual,
    ipt.read.length > 0 && ipt.kubeProxyChains.length === 0,
  );
}

/** The node's NIC has the lab network's MTU: libvirt gives it to virtio-net (`<mtu size>` → host_mtu). */
function nicMtuCheck(networkMtu: number, n: NodeEvidence): Check {
  const actual = n.nic.mtu === null ? `NIC ${n.nic.name} has no MTU` : `mtu ${n.nic.mtu} on ${n.nic.name}`;
  return check(n.node, "NIC MTU", `mtu ${networkMtu} (cilium-lab:networkMtu)`, actual, n.nic.mtu === networkMtu);
}

/** The route MTU of every wired pod on a node: NIC MTU − {@link TUNNEL_OVERHEAD} in tunnel mode, no lower cap in native mode. */
function routeMtuChecks(tunnel: boolean, n: NodeEvidence): Check[] {
  const nicMtu = n.nic.mtu;
  return n.pods
    .filter((p) => p.wired)
    .map((p) => {
      const scope = `${n.node} pod ${p.pod ?? p.netns}`;
      if (nicMtu === null) {
        return check(scope, "route MTU", "a known NIC MTU", `NIC ${n.nic.name} has no MTU`, false);
      }
      const expected = tunnel
        ? `mtu ${nicMtu - TUNNEL_OVERHEAD} (NIC mtu ${nicMtu} − ${TUNNEL_OVERHEAD})`
        : `no mtu below the NIC's ${nicMtu}`;
      const ok =
        p.routes.length > 0 &&
        p.routes.every((r) => (tunnel ? r.mtu === nicMtu - TUNNEL_OVERHEAD : r.mtu === null || r.mtu >= nicMtu));
      const found = p.routes.length === 0 ? "no routes" : p.routes.map(formatRoute).join("; ");
      return check(scope, "route MTU", expected, found, ok);
    });
}

/** A node's routes to the other nodes' pod CIDRs: direct via their node IP (native with auto-direct-node-routes), or not direct (tunnel). */
function podCidrRouteChecks(requested: RequestedDatapath, evidence: DatapathEvidence, n: NodeEvidence): Check[] {
  const tunnel = requested.routingMode !== "native";
  const checks: Check[] = [];
  for (const o of evidence.cluster.filter((c) => c.name !== n.node)) {
    for (const cidr of o.podCidrs) {
      const routes = n.podCidrRoutes.filter((r) => r.owner === o.name && r.dst === cidr);
      const direct = routes.find((r) => r.gateway !== null && r.gateway === o.internalIp);
      const found = routes.length === 0 ? "no route" : routes.map(formatRoute).join("; ");
      if (!tunnel && requested.autoDirectNodeRoutes) {
        checks.push(
          check(
            n.node,
            `direct route to ${o.name}'s pod CIDR ${cidr}`,
            `${cidr} via ${o.internalIp ?? "?"} dev ${n.nic.name}`,
            found,
            direct !== undefined && direct.dev === n.nic.name,
          ),
        );
      } else if (tunnel) {
        checks.push(
          check(
            n.node,
            `route to ${o.name}'s pod CIDR ${cidr}`,
            "not a direct route via the node IP (traffic goes through the tunnel)",
            found,
            direct === undefined,
          ),
        );
      }
    }
  }
  return checks;
}

/** The running side, node by node: agent, kube-proxy's leftovers, tunnel device, pod route MTUs, routes to other pod CIDRs. */
export function nodeChecks(requested: RequestedDatapath, evidence: DatapathEvidence): Check[] {
  const want = requested.routingMode;
  const tunnel = want !== "native";
  return evidence.nodes.flatMap((n) => {
    const expectedDevice = tunnel ? TUNNEL_DEVICES[want] : "none";
    const devices = n.tunnelDevices.map((d) => d.name);
    const devOk = tunnel ? devices.length === 1 && devices[0] === expectedDevice : devices.length === 0;
    return [
      ...agentChecks(requested, n),
      ...(replacesKubeProxy(requested) ? [kubeProxyCheck(n)] : []),
      check(n.node, "tunnel device", expectedDevice, describeDevices(n), devOk),
      ...(requested.networkMtu === undefined ? [] : [nicMtuCheck(requested.networkMtu, n)]),
      ...routeMtuChecks(tunnel, n),
      ...podCidrRouteChecks(requested, evidence, n),
    ];
  });
}

/** The pods behind the route MTUs: at least one was read, and every measured pod is among them. */
export function podChecks(evidence: DatapathEvidence): Check[] {
  const podsSeen = evidence.nodes.reduce((sum, n) => sum + n.pods.filter((p) => p.wired).length, 0);
  return [
    check("cluster", "pods whose route MTU was read", "at least 1", String(podsSeen), podsSeen > 0),
    ...evidence.measuredPods.map((m) => {
      const seen = evidence.nodes.some((n) => n.node === m.node && n.pods.some((p) => p.pod === m.name && p.wired));
      return check(
        m.node,
        `routes of measured pod ${m.name} (${m.ip})`,
        "read",
        seen ? "read" : "not found among the pod network namespaces",
        seen,
      );
    }),
  ];
}

/** Judges the evidence against the request. Every check is kept; `reasons` lists the failed ones. */
export function verdict(requested: RequestedDatapath, evidence: DatapathEvidence): Verdict {
  const checks = [
    ...configuredChecks(requested, evidence),
    ...clusterChecks(requested, evidence),
    ...nodeChecks(requested, evidence),
    ...podChecks(evidence),
    ...featureChecks(requested, evidence),
  ];
  const failed = checks.filter((c) => !c.ok);
  return {
    ok: failed.length === 0,
    requested: requested.routingMode,
    observed: observedDatapath(evidence),
    reasons: failed.map((c) => `${c.scope}: ${c.check}: expected ${c.expected}, found ${c.actual}`),
    checks,
    notes: evidenceNotes(evidence),
  };
}
