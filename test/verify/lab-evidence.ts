/**
 * Evidence of the three-node lab for the verdict tests, built through the real parsers: cilium-config
 * of a chart version for a routing mode, the request, and the node documents shaped like
 * scripts/node/collect-evidence.sh's (support.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  agentCli,
  buildEvidence,
  parseClusterFacts,
  parseNodeFacts,
  type DatapathEvidence,
  type HubbleRelayFacts,
  type RequestedDatapath,
} from "../../infra/verify/evidence";
import { LAB, agentStatus113, ciliumNodeDoc, clusterStateDoc, type LabNode } from "./support";

export type Mode = "vxlan" | "geneve" | "native";

/** cilium-config of the article's 1.13.4 for `mode`. */
export function cm113(mode: Mode): Record<string, string> {
  return mode === "native"
    ? {
        tunnel: "disabled",
        "auto-direct-node-routes": "true",
        "ipv4-native-routing-cidr": "10.0.0.0/22",
        "kube-proxy-replacement": "disabled",
      }
    : { tunnel: mode, "kube-proxy-replacement": "disabled" };
}

/** cilium-config of 1.17+ for `mode`: tunnel-protocol is rendered even in native mode. */
export function cm117(mode: Mode): Record<string, string> {
  return mode === "native"
    ? {
        "routing-mode": "native",
        "tunnel-protocol": "vxlan",
        "auto-direct-node-routes": "true",
        "ipv4-native-routing-cidr": "10.0.0.0/22",
      }
    : { "routing-mode": "tunnel", "tunnel-protocol": mode };
}

export function req(mode: Mode, ciliumVersion = "1.13.4", configMap?: Record<string, string>): RequestedDatapath {
  return {
    routingMode: mode,
    autoDirectNodeRoutes: mode === "native",
    nativeRoutingCidr: "10.0.0.0/22",
    ciliumVersion,
    ...(configMap ? { configMap } : {}),
  };
}

/** Evidence of the three-node lab: every node running `nodeMode`, cilium-config `cm`, agents as `agent`. */
export function lab(
  cm: Record<string, string>,
  nodeMode: Mode | ((n: LabNode) => Mode),
  opts: {
    version?: string;
    agent?: (n: LabNode) => string;
    nodes?: readonly LabNode[];
    doc?: (n: LabNode) => string;
    ips?: (n: LabNode) => string;
    /** The collector's `hubbleRelay` entry; absent: a document without one (as before it was collected). */
    relay?: HubbleRelayFacts;
  } = {},
): DatapathEvidence {
  const version = opts.version ?? "1.13.4";
  const nodes = opts.nodes ?? LAB;
  const modeOf = typeof nodeMode === "function" ? nodeMode : () => nodeMode;
  const doc = clusterStateDoc(cm, nodes, opts.agent ?? ((n) => agentStatus113(n, version)), agentCli(version));
  return buildEvidence({
    ciliumVersion: version,
    cluster: parseClusterFacts(
      opts.relay === undefined ? doc : JSON.stringify({ ...JSON.parse(doc), hubbleRelay: opts.relay }),
    ),
    nodes: LAB.map((n) => ({
      node: n.name,
      ip: opts.ips?.(n) ?? n.ip,
      facts: parseNodeFacts(opts.doc?.(n) ?? ciliumNodeDoc(n, modeOf(n)), n.name),
    })),
    expectedKeys: ["kube-proxy-replacement"],
  });
}

/** A file of test/verify/fixtures (see kube-proxy.test.ts for how they were made). */
export function fixture(name: string): string {
  return readFileSync(join(__dirname, "fixtures", name), "utf8");
}

/**
 * An agent status fixture (test/verify/fixtures/agent-status-<version>-<case>.txt) without its
 * leading `#` lines (where it comes from), as node-2 printed it; with `node`, as that node would
 * (its pod CIDR, its address).
 */
export function agentStatusFixture(name: string, node?: LabNode): string {
  const text = fixture(`agent-status-${name}.txt`)
    .split("\n")
    .filter((l, i, all) => !(l.startsWith("#") && all.slice(0, i).every((p) => p.startsWith("#"))))
    .join("\n")
    .trimEnd();
  return node === undefined
    ? text
    : text
        .replaceAll("10.0.1.0/24", node.podCidr)
        .replaceAll("192.168.150.12", node.ip)
        .replaceAll("10.0.1.193", node.podCidr.replace(/0\/24$/, "193"));
}
