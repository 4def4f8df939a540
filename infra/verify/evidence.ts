/**
 * Datapath evidence and the verdict: which datapath is really running, proven from two independent
 * sides before any throughput is trusted.
 *
 * - Configured: the `cilium-config` ConfigMap, read with the key names of the chart version
 *   (`tunnel` up to 1.13; `routing-mode` + `tunnel-protocol` from 1.14, and 1.17+ renders
 *   `tunnel-protocol` even in native mode, so it means nothing there (cilium/cilium#42648)).
 * - Running, per node: the agent's own `cilium status` / `cilium-dbg status` (1.16+ prints
 *   `Routing: Network: Tunnel [vxlan] Host: Legacy`; older agents say nothing about routing, so
 *   their version, health and IPAM lines are what we keep), the tunnel devices (`cilium_vxlan` /
 *   `cilium_geneve` exist only in tunnel mode: the loader removes unused ones), the MTU Cilium puts
 *   on pod routes (NIC MTU − 50 in tunnel mode on an IPv4 underlay, no cap in native mode:
 *   pkg/mtu `getRouteMTU`, set once at CNI ADD), the direct routes to the other nodes' pod CIDRs via
 *   their node IPs (auto-direct-node-routes), every pod CIDR inside the native-routing CIDR (else
 *   traffic is masqueraded), no kube-proxy KUBE-SERVICES chain when Cilium replaces kube-proxy,
 *   and, recorded but not judged, kernel, NIC MTU, driver and offloads.
 *
 * Pure: parsers for the collectors' JSON (scripts/collect-evidence.sh, scripts/collect-cilium-state.sh)
 * and `verdict(requested, evidence)`. No I/O, no Pulumi.
 */
import { cidrContainsRange, cidrLast, parseCidr } from "../config/cidr";
import type { RoutingMode } from "../config";
import { hasRoutingModeKeys, parseCiliumVersion } from "../cilium/values";

/** Bytes Cilium takes off pod routes in tunnel mode (IPv4 underlay): outer IPv4 20 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14 (pkg/mtu TunnelOverhead). */
export const TUNNEL_OVERHEAD = 50;

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

/** The in-pod agent CLI of a chart version: `cilium` up to 1.14, `cilium-dbg` from 1.15 (cilium/cilium#32348 and the 1.15 rename). */
export function agentCli(ciliumVersion: string): "cilium" | "cilium-dbg" {
  return parseCiliumVersion(ciliumVersion).minor >= 15 ? "cilium-dbg" : "cilium";
}

/** A collector's output that cannot be used. */
export class EvidenceParseError extends Error {
  override name = "EvidenceParseError";
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function parseJsonDocument(text: string, what: string): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const t = text.trimEnd();
    throw new EvidenceParseError(
      `${what}: not a JSON document (${t.length} characters); output ends with: ${t.length > 300 ? `…${t.slice(-300)}` : t}`,
      { cause: err },
    );
  }
  if (!isObject(doc)) {
    throw new EvidenceParseError(
      `${what}: expected a JSON object, got ${Array.isArray(doc) ? "an array" : typeof doc}`,
    );
  }
  return doc;
}

// ─── `ip -j` ─────────────────────────────────────────────────────────────────────────────────

/** A link from `ip -j -d link show`. */
export interface IpLink {
  readonly name: string;
  readonly mtu: number | null;
  /** `linkinfo.info_kind`: vxlan, geneve, veth, … (`null` for plain NICs). */
  readonly kind: string | null;
  /** UDP port of a vxlan/geneve device (`linkinfo.info_data.port`). */
  readonly port: number | null;
  readonly up: boolean;
}

/** An IPv4 route from `ip -j -d -4 route show table main`. */
export interface IpRoute {
  readonly dst: string;
  readonly gateway: string | null;
  readonly dev: string | null;
  /** `kernel` for connected routes, `boot` for `ip route add`, … */
  readonly protocol: string | null;
  /** The route's `mtu` metric, `null` when the route has none. */
  readonly mtu: number | null;
}

/** Addresses of one interface from `ip -j -4 addr show`. */
export interface IpAddrs {
  readonly name: string;
  /** `a.b.c.d/len` */
  readonly addrs: readonly string[];
}

/** Parses `ip -j -d link show` output (already JSON-decoded). */
export function parseIpLinks(value: unknown): IpLink[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((l): IpLink => {
    const info = isObject(l.linkinfo) ? l.linkinfo : undefined;
    const data = info && isObject(info.info_data) ? info.info_data : undefined;
    const flags = Array.isArray(l.flags) ? l.flags : [];
    return {
      name: str(l.ifname) ?? "?",
      mtu: num(l.mtu),
      kind: info ? str(info.info_kind) : null,
      port: data ? num(data.port) : null,
      up: flags.includes("UP"),
    };
  });
}

/** The `mtu` metric of an `ip -j` route: `"metrics":[{"mtu":1450}]`, or `{"mtu":{"value":1450,"lock":true}}` when locked. */
function routeMtu(metrics: unknown): number | null {
  if (!Array.isArray(metrics)) {
    return null;
  }
  for (const m of metrics) {
    if (isObject(m) && "mtu" in m) {
      const v = m.mtu;
      return num(v) ?? (isObject(v) ? num(v.value) : null);
    }
  }
  return null;
}

/** Parses `ip -j -d -4 route show` output (already JSON-decoded). */
export function parseIpRoutes(value: unknown): IpRoute[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((r): IpRoute => ({
    dst: str(r.dst) ?? "?",
    gateway: str(r.gateway),
    dev: str(r.dev),
    protocol: str(r.protocol),
    mtu: routeMtu(r.metrics),
  }));
}

/** Parses `ip -j -4 addr show` output (already JSON-decoded). */
export function parseIpAddrs(value: unknown): IpAddrs[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((a): IpAddrs => {
    const infos = Array.isArray(a.addr_info) ? a.addr_info.filter(isObject) : [];
    return {
      name: str(a.ifname) ?? "?",
      addrs: infos
        .filter((i) => i.family === "inet" || i.family === undefined)
        .map((i) => `${str(i.local) ?? "?"}/${num(i.prefixlen) ?? "?"}`),
    };
  });
}

/** `ip route` text of a route, as the evidence shows it: `10.0.1.0/24 via 192.168.150.12 dev eth0 mtu 1450`. */
export function formatRoute(r: IpRoute): string {
  return [r.dst, r.gateway ? `via ${r.gateway}` : "", r.dev ? `dev ${r.dev}` : "", r.mtu !== null ? `mtu ${r.mtu}` : ""]
    .filter((p) => p !== "")
    .join(" ");
}

// ─── node facts (scripts/collect-evidence.sh) ───────────────────────────────────────────────

/** An offload flag from `ethtool -k`. */
export interface Offload {
  readonly on: boolean;
  readonly fixed: boolean;
}

/** One pod network namespace on a node. */
export interface PodFacts {
  readonly netns: string;
  readonly links: readonly IpLink[];
  readonly routes: readonly IpRoute[];
  readonly addrs: readonly IpAddrs[];
}

// ─── iptables-save ──────────────────────────────────────────────────────────────────────────

/** The chains one `iptables-save` declared, per table. */
export interface IptablesDump {
  /** The save command as run, e.g. `/usr/sbin/iptables-save`. */
  readonly command: string;
  readonly exitCode: number;
  /** table → chain names, in the order declared (`{ nat: ["PREROUTING", …, "KUBE-SERVICES"] }`). */
  readonly tables: Readonly<Record<string, readonly string[]>>;
  /** The command's output when it failed. */
  readonly error: string | null;
}

/**
 * The tables and chains of `iptables-save` output. Its format (iptables-save(8); the same text
 * iptables-restore(8) reads, iptables 1.8.9 prints it for both the nft and legacy backends):
 * `*<table>` opens a table, `:<chain> <policy> [<packets>:<bytes>]` declares a chain (policy `-` for
 * a user-defined chain), `-A <chain> …` appends a rule, `COMMIT` closes the table; `#` lines are
 * comments (`# Generated by iptables-save v1.8.9 (nf_tables) on …`). Rule lines are ignored.
 */
export function parseIptablesSave(text: string): Record<string, string[]> {
  const tables: Record<string, string[]> = {};
  let table: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      const name = line.slice(1).trim();
      table = tables[name] ?? (tables[name] = []);
    } else if (line.startsWith(":") && table !== undefined) {
      const chain = /^:(\S+)\s/.exec(line)?.[1];
      if (chain !== undefined) {
        table.push(chain);
      }
    } else if (line.trim() === "COMMIT") {
      table = undefined;
    }
  }
  return tables;
}

function parseIptablesDumps(value: unknown): IptablesDump[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((d): IptablesDump => {
    const exitCode = num(d.exitCode) ?? -1;
    const output = str(d.output) ?? "";
    return {
      command: str(d.command) ?? "?",
      exitCode,
      tables: exitCode === 0 ? parseIptablesSave(output) : {},
      error: exitCode === 0 ? null : output.trim(),
    };
  });
}

/** kube-proxy's own chain: the one every Service rule hangs off (kubernetes pkg/proxy/iptables/proxier.go `kubeServicesChain`). */
export const KUBE_PROXY_CHAIN = "KUBE-SERVICES";

/** What scripts/collect-evidence.sh saw on one node (or network namespace). */
export interface NodeFacts {
  readonly hostname: string;
  readonly kernel: string;
  readonly nic: string;
  readonly nodeIp: string | null;
  readonly driver: string | null;
  /** `ethtool -k`, every flag; `null` when ethtool is missing or failed (see `ethtoolError`). */
  readonly offloads: Readonly<Record<string, Offload>> | null;
  readonly ethtoolError: string | null;
  readonly links: readonly IpLink[];
  readonly routes: readonly IpRoute[];
  readonly addrs: readonly IpAddrs[];
  /** Every iptables save command the node has, with its tables and chains; empty when it has none. */
  readonly iptables: readonly IptablesDump[];
  readonly pods: readonly PodFacts[];
  /** Commands inside the collector that failed (their output is `null` above). */
  readonly errors: readonly string[];
}

/** Parses the document scripts/collect-evidence.sh prints. `label` names the node in messages. */
export function parseNodeFacts(text: string, label: string): NodeFacts {
  const doc = parseJsonDocument(text, `evidence from ${label} (scripts/collect-evidence.sh)`);
  if (doc.schema !== 1 || doc.collector !== "collect-evidence.sh") {
    throw new EvidenceParseError(
      `evidence from ${label}: not a collect-evidence.sh schema 1 document (schema ${JSON.stringify(doc.schema)})`,
    );
  }
  const offloads: Record<string, Offload> = {};
  if (isObject(doc.ethtool)) {
    for (const [k, v] of Object.entries(doc.ethtool)) {
      if (isObject(v) && typeof v.on === "boolean") {
        offloads[k] = { on: v.on, fixed: v.fixed === true };
      }
    }
  }
  const pods = Array.isArray(doc.pods) ? doc.pods.filter(isObject) : [];
  return {
    hostname: str(doc.hostname) ?? "",
    kernel: str(doc.kernel) ?? "",
    nic: str(doc.nic) ?? "",
    nodeIp: str(doc.nodeIp),
    driver: str(doc.driver),
    offloads: isObject(doc.ethtool) ? offloads : null,
    ethtoolError: str(doc.ethtoolError),
    links: parseIpLinks(doc.links),
    routes: parseIpRoutes(doc.routes),
    addrs: parseIpAddrs(doc.addrs),
    iptables: parseIptablesDumps(doc.iptables),
    pods: pods.map((p) => ({
      netns: str(p.netns) ?? "?",
      links: parseIpLinks(p.links),
      routes: parseIpRoutes(p.routes),
      addrs: parseIpAddrs(p.addrs),
    })),
    errors: Array.isArray(doc.errors) ? doc.errors.map((e) => String(e)) : [],
  };
}

// ─── cluster facts (scripts/collect-cilium-state.sh) ────────────────────────────────────────

/** A node as the cluster knows it. */
export interface ClusterNode {
  readonly name: string;
  readonly internalIp: string | null;
  readonly podCidrs: readonly string[];
  /** Where the pod CIDRs come from: the CiliumNode (cluster-pool IPAM) or the Node (kubernetes IPAM). */
  readonly podCidrSource: "CiliumNode" | "Node" | "none";
}

/** One agent's `status` output. */
export interface AgentFacts {
  readonly pod: string;
  readonly node: string;
  readonly command: string;
  readonly exitCode: number;
  readonly output: string;
}

/** What scripts/collect-cilium-state.sh read from the cluster. */
export interface ClusterFacts {
  /** Every `cilium-config` entry. */
  readonly configMap: Readonly<Record<string, string>>;
  readonly nodes: readonly ClusterNode[];
  readonly agents: readonly AgentFacts[];
}

interface NodeLine {
  name: string;
  podCidrs: string[];
  internalIps: string[];
}

function nodeLines(value: unknown): NodeLine[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(isObject).map((n) => ({
    name: str(n.name) ?? "?",
    podCidrs: Array.isArray(n.podCidrs) ? n.podCidrs.filter((c): c is string => typeof c === "string") : [],
    internalIps: Array.isArray(n.internalIps) ? n.internalIps.filter((c): c is string => typeof c === "string") : [],
  }));
}

/** Parses the document scripts/collect-cilium-state.sh prints. */
export function parseClusterFacts(text: string): ClusterFacts {
  const doc = parseJsonDocument(text, "Cilium state from the k3s server (scripts/collect-cilium-state.sh)");
  if (doc.schema !== 1 || doc.collector !== "collect-cilium-state.sh") {
    throw new EvidenceParseError(
      `Cilium state: not a collect-cilium-state.sh schema 1 document (schema ${JSON.stringify(doc.schema)})`,
    );
  }
  const cm = isObject(doc.configMap) && isObject(doc.configMap.data) ? doc.configMap.data : {};
  const configMap: Record<string, string> = {};
  for (const [k, v] of Object.entries(cm)) {
    if (typeof v === "string") {
      configMap[k] = v;
    }
  }
  const ciliumNodes = nodeLines(doc.ciliumNodes);
  const k8sNodes = nodeLines(doc.nodes);
  const names = [...new Set([...k8sNodes.map((n) => n.name), ...ciliumNodes.map((n) => n.name)])].sort();
  const nodes = names.map((name): ClusterNode => {
    const cn = ciliumNodes.find((n) => n.name === name);
    const kn = k8sNodes.find((n) => n.name === name);
    const fromCilium = cn !== undefined && cn.podCidrs.length > 0;
    return {
      name,
      internalIp: cn?.internalIps[0] ?? kn?.internalIps[0] ?? null,
      podCidrs: fromCilium ? cn.podCidrs : (kn?.podCidrs ?? []),
      podCidrSource: fromCilium ? "CiliumNode" : kn !== undefined && kn.podCidrs.length > 0 ? "Node" : "none",
    };
  });
  const agents = Array.isArray(doc.agents) ? doc.agents.filter(isObject) : [];
  return {
    configMap,
    nodes,
    agents: agents.map((a) => ({
      pod: str(a.pod) ?? "?",
      node: str(a.node) ?? "?",
      command: str(a.command) ?? "",
      exitCode: num(a.exitCode) ?? -1,
      output: str(a.output) ?? "",
    })),
  };
}

// ─── agent status ───────────────────────────────────────────────────────────────────────────

/** What an agent's `cilium status` / `cilium-dbg status` says. */
export interface AgentStatus {
  readonly pod: string;
  readonly command: string;
  /** The command exited 0 and the `Cilium:` line says `Ok`. */
  readonly ok: boolean;
  /** `Cilium:` state (`Ok`, `Warning`, `Failure`), `null` when absent. */
  readonly state: string | null;
  /** Agent version from the `Cilium:` line, e.g. `1.13.4`. */
  readonly version: string | null;
  /** `Routing:` line (1.16+): `Network: Tunnel [vxlan] Host: Legacy`; `null` on older agents. */
  readonly routing: {
    readonly network: "Tunnel" | "Native";
    readonly protocol: string | null;
    readonly host: string | null;
    readonly line: string;
  } | null;
  /** `Host Routing:` (1.13–1.15): `Legacy` or `BPF`. */
  readonly hostRouting: string | null;
  readonly kubeProxyReplacement: string | null;
  readonly masquerading: string | null;
  /** Pod CIDR from `IPAM: IPv4: 4/254 allocated from 10.0.1.0/24`. */
  readonly ipamCidr: string | null;
  /** Exit code and output tail when the command failed. */
  readonly error: string | null;
}

function statusField(output: string, key: string): string | null {
  const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:[ \\t]+(.+?)[ \\t]*$`, "m");
  return re.exec(output)?.[1] ?? null;
}

/** Parses one agent's status output. */
export function parseAgentStatus(facts: AgentFacts): AgentStatus {
  const out = facts.output;
  const cilium = /^Cilium:[ \t]+(\S+)[ \t]+v?(\d+\.\d+\.\d+)/m.exec(out);
  const routing =
    /^Routing:[ \t]+(Network:[ \t]+(Tunnel|Native)(?:[ \t]+\[([^\]]+)\])?(?:[ \t]+Host:[ \t]+(\S+))?)/m.exec(out);
  const state = cilium?.[1] ?? statusField(out, "Cilium")?.split(/\s+/)[0] ?? null;
  const tail = out.trimEnd().split("\n").slice(-5).join("\n");
  return {
    pod: facts.pod,
    command: facts.command,
    ok: facts.exitCode === 0 && state === "Ok",
    state,
    version: cilium?.[2] ?? null,
    routing: routing
      ? {
          network: routing[2] as "Tunnel" | "Native",
          protocol: routing[3] ?? null,
          host: routing[4] ?? null,
          line: routing[1]?.replace(/\s+/g, " ") ?? "",
        }
      : null,
    hostRouting: statusField(out, "Host Routing"),
    kubeProxyReplacement: statusField(out, "KubeProxyReplacement"),
    masquerading: statusField(out, "Masquerading"),
    ipamCidr: /allocated from (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out)?.[1] ?? null,
    error: facts.exitCode === 0 ? null : `\`${facts.command}\` exited ${facts.exitCode}: ${tail}`,
  };
}

// ─── evidence ───────────────────────────────────────────────────────────────────────────────

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

  const nodes = input.nodes.map(({ node, ip, facts }): NodeEvidence => {
    const nicLink = facts.links.find((l) => l.name === facts.nic);
    const offloads: Record<string, string> | null = facts.offloads === null ? null : {};
    if (offloads !== null && facts.offloads !== null) {
      for (const flag of OFFLOAD_FLAGS) {
        const o = facts.offloads[flag];
        if (o !== undefined) {
          offloads[flag] = `${o.on ? "on" : "off"}${o.fixed ? " [fixed]" : ""}`;
        }
      }
    }
    const others = input.cluster.nodes.filter((n) => n.name !== node);
    const podCidrRoutes = others.flatMap((o) =>
      o.podCidrs.flatMap((cidr) =>
        facts.routes.filter((r) => isPodCidrRoute(r, cidr)).map((r) => ({ ...r, owner: o.name })),
      ),
    );
    const agentFacts = input.cluster.agents.find((a) => a.node === node);
    return {
      node,
      ip,
      hostname: facts.hostname,
      kernel: facts.kernel,
      nic: {
        name: facts.nic,
        mtu: nicLink?.mtu ?? null,
        driver: facts.driver,
        offloads,
        ethtoolError: facts.ethtoolError,
      },
      tunnelDevices: facts.links
        .filter((l) => l.name === TUNNEL_DEVICES.vxlan || l.name === TUNNEL_DEVICES.geneve)
        .map((l) => ({ name: l.name, kind: l.kind, mtu: l.mtu, port: l.port })),
      ciliumDevices: facts.links
        .filter((l) => l.name === "cilium_host" || l.name === "cilium_net")
        .map((l) => ({ name: l.name, mtu: l.mtu })),
      podCidrRoutes,
      pods: facts.pods.map((p): PodEvidence => {
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
      }),
      agent: agentFacts ? parseAgentStatus(agentFacts) : null,
      iptables: {
        read: facts.iptables.filter((d) => d.exitCode === 0).map((d) => baseName(d.command)),
        kubeProxyChains: facts.iptables.flatMap((d) =>
          Object.entries(d.tables)
            .filter(([, chains]) => chains.includes(KUBE_PROXY_CHAIN))
            .map(([table]) => `${baseName(d.command)} ${table}`),
        ),
        errors: facts.iptables
          .filter((d) => d.exitCode !== 0)
          .map((d) => `${baseName(d.command)} exited ${d.exitCode}: ${d.error ?? ""}`.trimEnd()),
      },
      collectorErrors: facts.errors,
    };
  });
  return {
    ciliumVersion: input.ciliumVersion,
    measuredPods,
    configured: { configMap, mode, readAs },
    cluster: input.cluster.nodes,
    nodes,
  };
}

// ─── verdict ────────────────────────────────────────────────────────────────────────────────

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

function modeWord(m: ObservedMode): string {
  return m === "native" ? "native routing" : m === "vxlan" || m === "geneve" ? `${m} tunnel` : m;
}

function agreeing(modes: readonly ObservedMode[]): ObservedMode {
  const known = [...new Set(modes)];
  if (known.length === 0) {
    return "unknown";
  }
  return known.length === 1 ? (known[0] as ObservedMode) : "mixed";
}

function nodeMode(n: NodeEvidence): ObservedMode {
  const names = n.tunnelDevices.map((d) => d.name);
  const vx = names.includes(TUNNEL_DEVICES.vxlan);
  const ge = names.includes(TUNNEL_DEVICES.geneve);
  return vx && ge ? "mixed" : vx ? "vxlan" : ge ? "geneve" : "native";
}

function agentMode(a: AgentStatus | null): ObservedMode | null {
  if (a === null || a.routing === null) {
    return null;
  }
  if (a.routing.network === "Native") {
    return "native";
  }
  const p = a.routing.protocol;
  return p === "vxlan" || p === "geneve" ? p : "unknown";
}

function describeDevices(n: NodeEvidence): string {
  return n.tunnelDevices.length === 0
    ? "none"
    : n.tunnelDevices
        .map((d) => `${d.name} (${d.kind ?? "?"}, mtu ${d.mtu ?? "?"}${d.port !== null ? `, port ${d.port}` : ""})`)
        .join(", ");
}

/** Judges the evidence against the request. Every check is kept; `reasons` lists the failed ones. */
export function verdict(requested: RequestedDatapath, evidence: DatapathEvidence): Verdict {
  const checks: Check[] = [];
  const add = (scope: string, check: string, expected: string, actual: string, ok: boolean) => {
    checks.push({ scope, check, expected, actual, ok });
  };
  const want = requested.routingMode;
  const tunnel = want !== "native";
  const cm = evidence.configured.configMap;

  // Configured side.
  add(
    "cilium-config",
    "routing mode",
    modeWord(want),
    `${modeWord(evidence.configured.mode)} (${evidence.configured.readAs})`,
    evidence.configured.mode === want,
  );
  const adnr = cm["auto-direct-node-routes"] ?? "false";
  add(
    "cilium-config",
    "auto-direct-node-routes",
    String(requested.autoDirectNodeRoutes),
    cm["auto-direct-node-routes"] === undefined ? "false (unset)" : adnr,
    adnr === String(requested.autoDirectNodeRoutes),
  );
  const nativeCidr = parseCidr(requested.nativeRoutingCidr);
  if (!tunnel) {
    const got = cm["ipv4-native-routing-cidr"];
    add(
      "cilium-config",
      "ipv4-native-routing-cidr",
      requested.nativeRoutingCidr,
      got ?? "unset",
      got === requested.nativeRoutingCidr,
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
      add("cilium-config", k, v, cm[k] ?? "unset", cm[k] === v);
    }
  }

  // Cluster: coverage and pod CIDRs.
  const collected = new Set(evidence.nodes.map((n) => n.node));
  for (const c of evidence.cluster) {
    add(
      "cluster",
      `evidence from node ${c.name}`,
      "collected",
      collected.has(c.name) ? "collected" : "missing",
      collected.has(c.name),
    );
    if (c.podCidrs.length === 0) {
      add("cluster", `pod CIDR of ${c.name}`, "allocated", `none (${c.podCidrSource})`, false);
    }
    if (!tunnel && typeof nativeCidr !== "string") {
      for (const podCidr of c.podCidrs) {
        const p = parseCidr(podCidr);
        const inside = typeof p !== "string" && cidrContainsRange(nativeCidr, p.base, cidrLast(p));
        add(
          "cluster",
          `pod CIDR of ${c.name} inside ipv4-native-routing-cidr`,
          `inside ${requested.nativeRoutingCidr}`,
          inside ? `${podCidr} inside` : `${podCidr} outside (its traffic would be masqueraded)`,
          inside,
        );
      }
    }
  }
  for (const n of evidence.nodes) {
    const c = evidence.cluster.find((k) => k.name === n.node);
    if (c === undefined) {
      add("cluster", `node ${n.node} known to the cluster`, "a Node/CiliumNode", "none", false);
    } else {
      // A node registered with another interface's address (a NAT NIC) would route and tunnel there.
      add(n.node, "InternalIP", `${n.ip} (its lab network address)`, c.internalIp ?? "none", c.internalIp === n.ip);
    }
  }

  // Running side, per node.
  let podsSeen = 0;
  for (const n of evidence.nodes) {
    const a = n.agent;
    if (a === null) {
      add(n.node, "agent status", "a Cilium agent pod reporting Ok", "no Cilium agent pod on this node", false);
    } else {
      add(
        n.node,
        "agent status",
        "Cilium: Ok",
        a.ok ? `Cilium: Ok (${a.command})` : (a.error ?? `Cilium: ${a.state ?? "no Cilium: line"}`),
        a.ok,
      );
      if (a.version !== null) {
        add(n.node, "agent version", requested.ciliumVersion, a.version, a.version === requested.ciliumVersion);
      }
      const am = agentMode(a);
      if (am !== null && a.routing !== null) {
        add(n.node, "agent routing", modeWord(want), `${modeWord(am)} (Routing: ${a.routing.line})`, am === want);
      }
    }

    if (replacesKubeProxy(requested)) {
      // kube-proxy's rules outlive it (k3s agents keep running kube-proxy until they restart, and a
      // stopped kube-proxy leaves its chains): services would still go through them.
      const ipt = n.iptables;
      const actual =
        ipt.kubeProxyChains.length > 0
          ? `${KUBE_PROXY_CHAIN} in ${ipt.kubeProxyChains.join(", ")}`
          : ipt.read.length === 0
            ? `not read: no iptables-save on the node${ipt.errors.length > 0 ? ` (${ipt.errors.join("; ")})` : ""}`
            : `none (${ipt.read.join(", ")})`;
      add(
        n.node,
        KUBE_PROXY_CHECK,
        `no ${KUBE_PROXY_CHAIN} chain (Cilium replaces kube-proxy)`,
        actual,
        ipt.read.length > 0 && ipt.kubeProxyChains.length === 0,
      );
    }

    const expectedDevice = tunnel ? TUNNEL_DEVICES[want] : "none";
    const devices = n.tunnelDevices.map((d) => d.name);
    const devOk = tunnel ? devices.length === 1 && devices[0] === expectedDevice : devices.length === 0;
    add(n.node, "tunnel device", expectedDevice, describeDevices(n), devOk);

    const nicMtu = n.nic.mtu;
    for (const p of n.pods.filter((q) => q.wired)) {
      podsSeen++;
      const scope = `${n.node} pod ${p.pod ?? p.netns}`;
      if (nicMtu === null) {
        add(scope, "route MTU", "a known NIC MTU", `NIC ${n.nic.name} has no MTU`, false);
        continue;
      }
      const expected = tunnel
        ? `mtu ${nicMtu - TUNNEL_OVERHEAD} (NIC mtu ${nicMtu} − ${TUNNEL_OVERHEAD})`
        : `no mtu below the NIC's ${nicMtu}`;
      const ok =
        p.routes.length > 0 &&
        p.routes.every((r) => (tunnel ? r.mtu === nicMtu - TUNNEL_OVERHEAD : r.mtu === null || r.mtu >= nicMtu));
      add(scope, "route MTU", expected, p.routes.length === 0 ? "no routes" : p.routes.map(formatRoute).join("; "), ok);
    }

    for (const o of evidence.cluster.filter((c) => c.name !== n.node)) {
      for (const cidr of o.podCidrs) {
        const routes = n.podCidrRoutes.filter((r) => r.owner === o.name && r.dst === cidr);
        const direct = routes.find((r) => r.gateway !== null && r.gateway === o.internalIp);
        const found = routes.length === 0 ? "no route" : routes.map(formatRoute).join("; ");
        if (!tunnel && requested.autoDirectNodeRoutes) {
          add(
            n.node,
            `direct route to ${o.name}'s pod CIDR ${cidr}`,
            `${cidr} via ${o.internalIp ?? "?"} dev ${n.nic.name}`,
            found,
            direct !== undefined && direct.dev === n.nic.name,
          );
        } else if (tunnel) {
          add(
            n.node,
            `route to ${o.name}'s pod CIDR ${cidr}`,
            "not a direct route via the node IP (traffic goes through the tunnel)",
            found,
            direct === undefined,
          );
        }
      }
    }
  }
  add("cluster", "pods whose route MTU was read", "at least 1", String(podsSeen), podsSeen > 0);
  for (const m of evidence.measuredPods) {
    const seen = evidence.nodes.some((n) => n.node === m.node && n.pods.some((p) => p.pod === m.name && p.wired));
    add(
      m.node,
      `routes of measured pod ${m.name} (${m.ip})`,
      "read",
      seen ? "read" : "not found among the pod network namespaces",
      seen,
    );
  }

  // Observed, per side.
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
  const observed: ObservedDatapath = {
    routingMode: evidence.nodes.length > 0 ? nodesMode : evidence.configured.mode,
    configured: evidence.configured.mode,
    agents: agreeing(agentModes),
    nodes: evidence.nodes.length > 0 ? nodesMode : "unknown",
    podRouteMtus: mtus,
    directNodeRoutes,
  };

  const notes = evidence.nodes.map((n) => {
    const off = n.nic.offloads;
    const flags =
      off === null
        ? `offloads unknown (${n.nic.ethtoolError ?? "ethtool gave nothing"})`
        : ["generic-receive-offload", "tx-udp_tnl-segmentation", "rx-udp_tunnel-port-offload"]
            .map((f) => `${f} ${off[f] ?? "?"}`)
            .join(", ");
    return `${n.node}: kernel ${n.kernel}; NIC ${n.nic.name} mtu ${n.nic.mtu ?? "?"} (${n.nic.driver ?? "driver ?"}): ${flags}`;
  });

  const failed = checks.filter((c) => !c.ok);
  return {
    ok: failed.length === 0,
    requested: want,
    observed,
    reasons: failed.map((c) => `${c.scope}: ${c.check}: expected ${c.expected}, found ${c.actual}`),
    checks,
    notes,
  };
}

/** The multi-line summary of the evidence that goes into a failure message. */
export function describeEvidence(evidence: DatapathEvidence): string[] {
  const cm = Object.entries(evidence.configured.configMap)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const lines = [`cilium-config (chart ${evidence.ciliumVersion}): ${cm === "" ? "no routing keys" : cm}`];
  for (const c of evidence.cluster) {
    lines.push(
      `node ${c.name}: InternalIP ${c.internalIp ?? "?"}, pod CIDRs ${c.podCidrs.join(", ") || "none"} (${c.podCidrSource})`,
    );
  }
  for (const n of evidence.nodes) {
    const pods = n.pods
      .filter((p) => p.wired)
      .map((p) => `${p.pod ?? p.netns} [${p.routes.map(formatRoute).join("; ")}]`)
      .join(", ");
    const agent =
      n.agent === null
        ? "no agent"
        : `${n.agent.command}: Cilium ${n.agent.state ?? "?"} ${n.agent.version ?? ""}`.trimEnd() +
          (n.agent.routing
            ? `, Routing: ${n.agent.routing.line}`
            : n.agent.hostRouting
              ? `, Host Routing: ${n.agent.hostRouting}`
              : "");
    lines.push(
      `${n.node} (${n.ip}): tunnel devices ${describeDevices(n)}; routes to other pod CIDRs ${n.podCidrRoutes.map(formatRoute).join("; ") || "none"}; ` +
        `pod routes ${pods || "none (no pod namespaces)"}; ${agent}` +
        (n.iptables.kubeProxyChains.length > 0
          ? `; kube-proxy's ${KUBE_PROXY_CHAIN} in ${n.iptables.kubeProxyChains.join(", ")}`
          : ""),
    );
  }
  return lines;
}

/** The `datapath` stack output. */
export interface DatapathOutput {
  /** The requested routing mode (`vxlan`, `geneve`, `native`). */
  readonly requested: RoutingMode;
  /** What runs on the nodes (tunnel devices); `observedBy` has each side's view. */
  readonly observed: ObservedMode;
  /** `confirmed` when every check passed; `refused` otherwise (and `pulumi up` fails: no throughput). */
  readonly verdict: "confirmed" | "refused";
  /** The full request the checks were made against. */
  readonly request: RequestedDatapath;
  /** The routing mode as cilium-config, the agents and the nodes each show it, plus pod route MTUs and direct routes. */
  readonly observedBy: ObservedDatapath;
  /** One line per failed check; empty when confirmed. */
  readonly reasons: readonly string[];
  /** Every check, passed or failed: the proof. */
  readonly checks: readonly Check[];
  /** Kernel, NIC MTU, driver and offloads per node: recorded, not judged. */
  readonly notes: readonly string[];
  readonly evidence: DatapathEvidence;
}

/** Judges the evidence and shapes the `datapath` output. */
export function datapathOutput(request: RequestedDatapath, evidence: DatapathEvidence): DatapathOutput {
  const v = verdict(request, evidence);
  return {
    requested: request.routingMode,
    observed: v.observed.routingMode,
    verdict: v.ok ? "confirmed" : "refused",
    request,
    observedBy: v.observed,
    reasons: v.reasons,
    checks: v.checks,
    notes: v.notes,
    evidence,
  };
}

/**
 * The `datapath` output when the evidence itself could not be read (a collector printed something
 * that is not its document): nothing is proven, so the verdict is `refused`, with each problem as
 * a reason. Keeps the failure on the same path as a wrong datapath: one clear error, no Job.
 */
export function unreadableEvidence(request: RequestedDatapath, problems: readonly string[]): DatapathOutput {
  const unknown: ObservedDatapath = {
    routingMode: "unknown",
    configured: "unknown",
    agents: "unknown",
    nodes: "unknown",
    podRouteMtus: [],
    directNodeRoutes: null,
  };
  return {
    requested: request.routingMode,
    observed: "unknown",
    verdict: "refused",
    request,
    observedBy: unknown,
    reasons: problems.map((p) => `evidence: ${p}`),
    checks: problems.map((p) => ({
      scope: "evidence",
      check: "collector output",
      expected: "a readable document",
      actual: p,
      ok: false,
    })),
    notes: [],
    evidence: {
      ciliumVersion: request.ciliumVersion,
      measuredPods: [],
      configured: { configMap: {}, mode: "unknown", readAs: "not read" },
      cluster: [],
      nodes: [],
    },
  };
}

/** The error message of `pulumi up` when the datapath is not the requested one: the verdict and the evidence. */
export function verdictFailureMessage(d: DatapathOutput): string {
  const o = d.observedBy;
  const kubeProxyNodes = d.checks.filter((c) => c.check === KUBE_PROXY_CHECK && !c.ok).map((c) => c.scope);
  const kubeProxyFix =
    kubeProxyNodes.length === 0
      ? []
      : [
          `kube-proxy is still in the datapath of ${kubeProxyNodes.join(", ")} although Cilium replaces it: on each, restart k3s ` +
            "(`sudo systemctl restart k3s-agent`; `k3s` on the server) so it takes `--disable-kube-proxy` from the server, remove kube-proxy's rules " +
            "(`sudo sh -c 'iptables-save | grep -v KUBE- | iptables-restore'`, the same with ip6tables-save/ip6tables-restore), then `pulumi up` again.",
        ];
  return [
    `Datapath verification failed: requested ${modeWord(d.requested)}, observed ${modeWord(d.observed)} ` +
      `(cilium-config: ${modeWord(o.configured)}; agents: ${modeWord(o.agents)}; nodes: ${modeWord(o.nodes)}). ` +
      `No throughput is measured or exported.`,
    "Failed checks:",
    ...d.reasons.map((r) => `- ${r}`),
    "Evidence:",
    ...describeEvidence(d.evidence).map((l) => `- ${l}`),
    ...d.notes.map((l) => `- ${l}`),
    ...kubeProxyFix.map((l) => `What to do: ${l}`),
    "What to do: if cilium-config is right but the agents or nodes disagree, the agents run an older configuration: " +
      "`sudo k3s kubectl -n kube-system rollout restart ds/cilium`, then recreate the pods (a pod's route MTU is fixed when it is created), " +
      "then `pulumi up` again. If cilium-config is wrong, the Helm values are: check cilium-lab:routingMode and cilium-lab:ciliumVersion.",
  ].join("\n");
}
