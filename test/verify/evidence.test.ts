/**
 * Reading what the collectors and the agents say: cilium-config per chart version, an agent's
 * status, `ip -j` routes, iptables-save output, and collector documents that cannot be used. The
 * node documents have the shape scripts/node/collect-evidence.sh prints on a Cilium node (see
 * support.ts); the namespace tests run the real collector.
 */
import test from "ava";

import {
  agentCli,
  configuredMode,
  parseAgentStatus,
  parseClusterFacts,
  parseIpRoutes,
  parseIptablesSave,
  parseNodeFacts,
  EvidenceParseError,
} from "../../infra/verify/evidence";
import { fixture } from "./lab-evidence";
import { LAB, agentStatus113, agentStatus116, type LabNode } from "./support";

test("cilium-config is read with the key names of the chart version", (t) => {
  const table: [Record<string, string>, string, string, string][] = [
    [{ tunnel: "vxlan" }, "1.13.4", "vxlan", "tunnel=vxlan"],
    [{ tunnel: "geneve" }, "1.13.4", "geneve", "tunnel=geneve"],
    [{ tunnel: "disabled" }, "1.13.4", "native", "tunnel=disabled"],
    [{}, "1.13.4", "vxlan", "tunnel unset (the agent's default: vxlan)"],
    [{ tunnel: "vxaln" }, "1.13.4", "unknown", "tunnel=vxaln (not vxlan, geneve or disabled)"],
    // 1.13 has no routing-mode key: a stray one is ignored.
    [{ "routing-mode": "native", tunnel: "vxlan" }, "1.13.4", "vxlan", "tunnel=vxlan"],
    [
      { "routing-mode": "tunnel", "tunnel-protocol": "geneve" },
      "1.14.0",
      "geneve",
      "routing-mode=tunnel, tunnel-protocol=geneve",
    ],
    [{ "routing-mode": "tunnel" }, "1.14.0", "vxlan", "routing-mode=tunnel, tunnel-protocol=unset (vxlan)"],
    [{ tunnel: "disabled" }, "1.14.0", "native", "routing-mode unset, tunnel=disabled"],
    [{ "routing-mode": "native", "tunnel-protocol": "vxlan" }, "1.17.0", "native", "routing-mode=native"],
    [
      { "routing-mode": "nativ" },
      "1.20.0",
      "unknown",
      "routing-mode=nativ (not tunnel or native: the agent refuses it)",
    ],
  ];
  for (const [cm, version, mode, readAs] of table) {
    t.deepEqual(configuredMode(cm, version), { mode, readAs }, `${JSON.stringify(cm)} on ${version}`);
  }
});

test("the in-pod agent CLI is cilium up to 1.14 and cilium-dbg from 1.15", (t) => {
  const versions = ["1.13.4", "1.14.19", "1.15.0", "1.20.0"];
  t.deepEqual(versions.map(agentCli), ["cilium", "cilium", "cilium-dbg", "cilium-dbg"]);
});

test("an agent's status gives its health, version, IPAM CIDR and, from 1.16, its routing", (t) => {
  const node = LAB[1] as LabNode;
  const old = parseAgentStatus({
    pod: "cilium-x",
    node: node.name,
    command: "cilium status",
    exitCode: 0,
    output: agentStatus113(node),
  });
  t.deepEqual(old, {
    pod: "cilium-x",
    command: "cilium status",
    ok: true,
    state: "Ok",
    version: "1.13.4",
    routing: null,
    hostRouting: "Legacy",
    kubeProxyReplacement: "Disabled",
    masquerading: "IPTables [IPv4: Enabled, IPv6: Disabled]",
    ipv4BigTcp: null,
    ipv6BigTcp: "Disabled",
    bandwidthManager: "Disabled",
    ipamCidr: "10.0.1.0/24",
    error: null,
  });
  const tunnel = parseAgentStatus({
    pod: "p",
    node: node.name,
    command: "cilium-dbg status",
    exitCode: 0,
    output: agentStatus116(node, "geneve"),
  });
  t.deepEqual(tunnel.routing, {
    network: "Tunnel",
    protocol: "geneve",
    host: "Legacy",
    line: "Network: Tunnel [geneve] Host: Legacy",
  });
  const nat = parseAgentStatus({
    pod: "p",
    node: node.name,
    command: "cilium-dbg status",
    exitCode: 0,
    output: agentStatus116(node, "native"),
  });
  t.deepEqual(nat.routing, { network: "Native", protocol: null, host: "Legacy", line: "Network: Native Host: Legacy" });
  const failed = parseAgentStatus({
    pod: "p",
    node: node.name,
    command: "cilium status",
    exitCode: 1,
    output: "Error: Unable to contact agent: dial unix /var/run/cilium/cilium.sock: connect: no such file",
  });
  t.false(failed.ok);
  t.is(
    failed.error,
    "`cilium status` exited 1: Error: Unable to contact agent: dial unix /var/run/cilium/cilium.sock: connect: no such file",
  );
});

test("ip -j route metrics are read in both forms iproute2 prints, and routes without metrics have no MTU", (t) => {
  t.deepEqual(
    parseIpRoutes([
      { dst: "default", gateway: "10.0.1.193", dev: "eth0", metrics: [{ mtu: 1450 }] },
      { dst: "10.0.2.0/24", dev: "cilium_host", metrics: [{ mtu: { value: 1400, lock: true } }] },
      { dst: "10.0.1.193", dev: "eth0", protocol: "boot" },
    ]).map((r) => [r.dst, r.gateway, r.mtu, r.protocol]),
    [
      ["default", "10.0.1.193", 1450, null],
      ["10.0.2.0/24", null, 1400, null],
      ["10.0.1.193", null, null, "boot"],
    ],
  );
});

test("collector documents that are not JSON or of another schema are refused with what was received", (t) => {
  t.throws(() => parseNodeFacts("bash: ip: command not found", "node-2"), {
    instanceOf: EvidenceParseError,
    message:
      "evidence from node-2 (scripts/node/collect-evidence.sh): not a JSON document (27 characters); output ends with: bash: ip: command not found",
  });
  t.throws(() => parseNodeFacts('{"schema":2}', "node-2"), {
    message: "evidence from node-2: not a collect-evidence.sh schema 1 document (schema 2)",
  });
  t.throws(() => parseClusterFacts("[]"), {
    message:
      "Cilium state from the k3s server (scripts/node/collect-cilium-state.sh): expected a JSON object, got an array",
  });
});

// iptables-save fixtures: see kube-proxy.test.ts for how they were made.

test("iptables-save output is read as its tables and the chains each declares, rules and comments ignored", (t) => {
  t.deepEqual(parseIptablesSave(fixture("iptables-save-kube-proxy.txt")), {
    mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"],
    filter: [
      "INPUT",
      "FORWARD",
      "OUTPUT",
      "KUBE-EXTERNAL-SERVICES",
      "KUBE-FIREWALL",
      "KUBE-FORWARD",
      "KUBE-KUBELET-CANARY",
      "KUBE-NODEPORTS",
      "KUBE-PROXY-CANARY",
      "KUBE-PROXY-FIREWALL",
      "KUBE-SERVICES",
    ],
    nat: [
      "PREROUTING",
      "INPUT",
      "OUTPUT",
      "POSTROUTING",
      "CILIUM_POST_nat",
      "KUBE-MARK-MASQ",
      "KUBE-NODEPORTS",
      "KUBE-POSTROUTING",
      "KUBE-SEP-3CQHDHH6ZF2FXXPO",
      "KUBE-SERVICES",
      "KUBE-SVC-NPX46M4PTMTKRN6Y",
    ],
  });
  const table: [string, Record<string, string[]>][] = [
    ["", {}],
    ["# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n", {}],
    [
      "*raw\n:PREROUTING ACCEPT [12:3456]\n:CILIUM_PRE_raw - [0:0]\n-A PREROUTING -j CILIUM_PRE_raw\nCOMMIT\n",
      { raw: ["PREROUTING", "CILIUM_PRE_raw"] },
    ],
    // a chain line outside a table (after COMMIT) belongs to none.
    ["*nat\nCOMMIT\n:KUBE-SERVICES - [0:0]\n", { nat: [] }],
  ];
  for (const [text, expected] of table) {
    t.deepEqual(parseIptablesSave(text), expected, JSON.stringify(text));
  }
});
