/**
 * Evidence of the three-node lab for the verdict tests, built through the real parsers: cilium-config
 * of a chart version for a routing mode, the request, and the node documents shaped like
 * scripts/node/collect-evidence.sh's (support.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  buildEvidence,
  parseClusterFacts,
  parseNodeFacts,
  type DatapathEvidence,
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
  } = {},
): DatapathEvidence {
  const version = opts.version ?? "1.13.4";
  const nodes = opts.nodes ?? LAB;
  const modeOf = typeof nodeMode === "function" ? nodeMode : () => nodeMode;
  return buildEvidence({
    ciliumVersion: version,
    cluster: parseClusterFacts(clusterStateDoc(cm, nodes, opts.agent ?? ((n) => agentStatus113(n, version)))),
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
