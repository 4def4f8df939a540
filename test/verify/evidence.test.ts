/**
 * The verdict on a three-node Cilium lab, table by table: how cilium-config is read per chart
 * version, what an agent's status says, and which evidence confirms or refuses each routing mode.
 * The node documents have the shape scripts/collect-evidence.sh prints on a Cilium node (see
 * support.ts); the namespace tests run the real collector.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  agentCli,
  buildEvidence,
  configuredMode,
  datapathOutput,
  parseAgentStatus,
  parseClusterFacts,
  parseIpRoutes,
  parseIptablesSave,
  parseNodeFacts,
  verdictFailureMessage,
  EvidenceParseError,
  type DatapathEvidence,
  type RequestedDatapath,
} from "../../infra/verify/evidence";
import { LAB, agentStatus113, agentStatus116, ciliumNodeDoc, clusterStateDoc, type LabNode } from "./support";

type Mode = "vxlan" | "geneve" | "native";

/** cilium-config of the article's 1.13.4 for `mode`. */
function cm113(mode: Mode): Record<string, string> {
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
function cm117(mode: Mode): Record<string, string> {
  return mode === "native"
    ? {
        "routing-mode": "native",
        "tunnel-protocol": "vxlan",
        "auto-direct-node-routes": "true",
        "ipv4-native-routing-cidr": "10.0.0.0/22",
      }
    : { "routing-mode": "tunnel", "tunnel-protocol": mode };
}

function req(mode: Mode, ciliumVersion = "1.13.4", configMap?: Record<string, string>): RequestedDatapath {
  return {
    routingMode: mode,
    autoDirectNodeRoutes: mode === "native",
    nativeRoutingCidr: "10.0.0.0/22",
    ciliumVersion,
    ...(configMap ? { configMap } : {}),
  };
}

/** Evidence of the three-node lab: every node running `nodeMode`, cilium-config `cm`, agents as `agent`. */
function lab(
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
  t.deepEqual(["1.13.4", "1.14.19", "1.15.0", "1.20.0"].map(agentCli), [
    "cilium",
    "cilium",
    "cilium-dbg",
    "cilium-dbg",
  ]);
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

test("each mode's own evidence is confirmed on the article's 1.13.4 and on 1.17 (where tunnel-protocol appears in native mode)", (t) => {
  for (const mode of ["vxlan", "geneve", "native"] as const) {
    const d = datapathOutput(req(mode), lab(cm113(mode), mode));
    t.deepEqual(d.reasons, [], `${mode} on 1.13.4`);
    t.is(d.verdict, "confirmed");
    t.is(d.observed, mode);
    t.is(d.observedBy.configured, mode);
    t.is(d.observedBy.agents, "unknown");
    t.deepEqual(d.observedBy.podRouteMtus, mode === "native" ? [null] : [1450]);
    t.is(d.observedBy.directNodeRoutes, mode === "native");

    const v117 = datapathOutput(
      req(mode, "1.17.0"),
      lab(cm117(mode), mode, { version: "1.17.0", agent: (n) => agentStatus116(n, mode, "1.17.0") }),
    );
    t.deepEqual(v117.reasons, [], `${mode} on 1.17.0`);
    t.is(v117.observedBy.agents, mode);
  }
});

test("the checks of a confirmed native lab are the proof: config, coverage, InternalIPs, agents, devices, pod MTUs and direct routes", (t) => {
  const d = datapathOutput(
    req("native", "1.13.4", { tunnel: "disabled", "kube-proxy-replacement": "disabled" }),
    lab(cm113("native"), "native"),
  );
  const node2 = d.checks.filter((c) => c.scope.startsWith("node-2"));
  t.deepEqual(
    node2.map((c) => `${c.scope} | ${c.check} | ${c.actual}`),
    [
      "node-2 | InternalIP | 192.168.150.12",
      "node-2 | agent status | Cilium: Ok (cilium status)",
      "node-2 | agent version | 1.13.4",
      "node-2 | tunnel device | none",
      "node-2 pod cni-node-2-0000 | route MTU | default via 10.0.1.193 dev eth0",
      "node-2 | direct route to node-1's pod CIDR 10.0.0.0/24 | 10.0.0.0/24 via 192.168.150.11 dev eth0",
      "node-2 | direct route to node-3's pod CIDR 10.0.2.0/24 | 10.0.2.0/24 via 192.168.150.13 dev eth0",
    ],
  );
  t.deepEqual(
    d.checks.filter((c) => c.scope === "cilium-config").map((c) => [c.check, c.expected, c.actual]),
    [
      ["routing mode", "native routing", "native routing (tunnel=disabled)"],
      ["auto-direct-node-routes", "true", "true"],
      ["ipv4-native-routing-cidr", "10.0.0.0/22", "10.0.0.0/22"],
      ["kube-proxy-replacement", "disabled", "disabled"],
    ],
  );
  t.true(d.checks.every((c) => c.ok));
  t.deepEqual(d.notes, [
    "node-1: kernel 6.2.0-39-generic; NIC eth0 mtu 1500 (virtio_net): generic-receive-offload on, tx-udp_tnl-segmentation off [fixed], rx-udp_tunnel-port-offload off [fixed]",
    "node-2: kernel 6.2.0-39-generic; NIC eth0 mtu 1500 (virtio_net): generic-receive-offload on, tx-udp_tnl-segmentation off [fixed], rx-udp_tunnel-port-offload off [fixed]",
    "node-3: kernel 6.2.0-39-generic; NIC eth0 mtu 1500 (virtio_net): generic-receive-offload on, tx-udp_tnl-segmentation off [fixed], rx-udp_tunnel-port-offload off [fixed]",
  ]);
  t.deepEqual(d.evidence.nodes[0]?.nic.offloads, {
    "generic-receive-offload": "on",
    "generic-segmentation-offload": "on",
    "tcp-segmentation-offload": "on",
    "tx-udp_tnl-segmentation": "off [fixed]",
    "rx-udp_tunnel-port-offload": "off [fixed]",
  });
});

test("refusals: each kind of contrary evidence gives its own exact reason", (t) => {
  const cases: [string, RequestedDatapath, DatapathEvidence, string[]][] = [
    [
      // The article's trap: the chart says native, but the agents were never restarted.
      "nodes still on VXLAN under a native config",
      req("native"),
      lab(cm113("native"), "vxlan"),
      [
        "node-1: tunnel device: expected none, found cilium_vxlan (vxlan, mtu 1500, port 8472)",
        "node-1 pod cni-node-1-0000: route MTU: expected no mtu below the NIC's 1500, found default via 10.0.0.193 dev eth0 mtu 1450",
      ],
    ],
    [
      "the ConfigMap is a VXLAN one",
      req("native"),
      lab(cm113("vxlan"), "native"),
      [
        "cilium-config: routing mode: expected native routing, found vxlan tunnel (tunnel=vxlan)",
        "cilium-config: auto-direct-node-routes: expected true, found false (unset)",
        "cilium-config: ipv4-native-routing-cidr: expected 10.0.0.0/22, found unset",
      ],
    ],
    [
      "Geneve asked, VXLAN running",
      req("geneve"),
      lab(cm113("geneve"), "vxlan"),
      ["node-1: tunnel device: expected cilium_geneve, found cilium_vxlan (vxlan, mtu 1500, port 8472)"],
    ],
    [
      "a 1.16+ agent reports a tunnel under a native request",
      req("native", "1.17.0"),
      lab(cm117("native"), "native", { version: "1.17.0", agent: (n) => agentStatus116(n, "vxlan", "1.17.0") }),
      [
        "node-1: agent routing: expected native routing, found vxlan tunnel (Routing: Network: Tunnel [vxlan] Host: Legacy)",
      ],
    ],
    [
      "an agent runs another Cilium version than the chart",
      req("vxlan"),
      lab(cm113("vxlan"), "vxlan", { agent: (n) => agentStatus113(n, n.name === "node-3" ? "1.13.3" : "1.13.4") }),
      ["node-3: agent version: expected 1.13.4, found 1.13.3"],
    ],
    [
      "a pod created before the switch keeps its 1450 route MTU",
      req("native"),
      lab(cm113("native"), "native", {
        doc: (n) =>
          ciliumNodeDoc(n, "native", {
            pods: [
              {
                netns: `cni-${n.name}-old`,
                ip: n.podCidr.replace(/0\/24$/, "9"),
                routeMtu: n.name === "node-2" ? 1450 : null,
              },
            ],
          }),
      }),
      [
        "node-2 pod cni-node-2-old: route MTU: expected no mtu below the NIC's 1500, found default via 10.0.1.193 dev eth0 mtu 1450",
      ],
    ],
    [
      "a node registered with another address than its lab IP",
      req("vxlan"),
      lab(cm113("vxlan"), "vxlan", { ips: (n) => (n.name === "node-2" ? "192.168.150.99" : n.ip) }),
      ["node-2: InternalIP: expected 192.168.150.99 (its lab network address), found 192.168.150.12"],
    ],
    [
      "a pod CIDR outside the native-routing CIDR (the article's /22 with a fifth node)",
      req("native"),
      lab(cm113("native"), "native", {
        nodes: [...LAB, { name: "node-5", ip: "192.168.150.15", podCidr: "10.0.4.0/24" }],
      }),
      [
        "cluster: evidence from node node-5: expected collected, found missing",
        "cluster: pod CIDR of node-5 inside ipv4-native-routing-cidr: expected inside 10.0.0.0/22, found 10.0.4.0/24 outside (its traffic would be masqueraded)",
      ],
    ],
  ];
  for (const [name, request, evidence, firstReasons] of cases) {
    const d = datapathOutput(request, evidence);
    t.is(d.verdict, "refused", name);
    t.deepEqual(d.reasons.slice(0, firstReasons.length), firstReasons, name);
  }
});

test("evidence without any pod namespace, or without an agent, cannot confirm a datapath", (t) => {
  const noPods = datapathOutput(
    req("vxlan"),
    lab(cm113("vxlan"), "vxlan", { doc: (n) => ciliumNodeDoc(n, "vxlan", { pods: [] }) }),
  );
  t.deepEqual(noPods.reasons, ["cluster: pods whose route MTU was read: expected at least 1, found 0"]);
  const ev = lab(cm113("vxlan"), "vxlan");
  const noAgent: DatapathEvidence = {
    ...ev,
    nodes: ev.nodes.map((n) => (n.node === "node-3" ? { ...n, agent: null } : n)),
  };
  t.deepEqual(datapathOutput(req("vxlan"), noAgent).reasons, [
    "node-3: agent status: expected a Cilium agent pod reporting Ok, found no Cilium agent pod on this node",
  ]);
});

test("the failure message states requested and observed per side, every failed check, the evidence and what to do", (t) => {
  const d = datapathOutput(req("native"), lab(cm113("native"), "vxlan"));
  const lines = verdictFailureMessage(d).split("\n");
  t.is(
    lines[0],
    "Datapath verification failed: requested native routing, observed vxlan tunnel (cilium-config: native routing; agents: unknown; nodes: vxlan tunnel). No throughput is measured or exported.",
  );
  t.is(lines[1], "Failed checks:");
  t.is(lines.indexOf("Evidence:"), 2 + d.reasons.length);
  t.true(
    lines.includes(
      "- cilium-config (chart 1.13.4): auto-direct-node-routes=true ipv4-native-routing-cidr=10.0.0.0/22 kube-proxy-replacement=disabled tunnel=disabled",
    ),
  );
  t.true(
    lines.some((l) =>
      l.startsWith(
        "- node-2 (192.168.150.12): tunnel devices cilium_vxlan (vxlan, mtu 1500, port 8472); routes to other pod CIDRs 10.0.0.0/24 via 10.0.1.193 dev cilium_host mtu 1450",
      ),
    ),
  );
  t.regex(lines.at(-1) ?? "", /^What to do: /);
});

test("collector documents that are not JSON or of another schema are refused with what was received", (t) => {
  t.throws(() => parseNodeFacts("bash: ip: command not found", "node-2"), {
    instanceOf: EvidenceParseError,
    message:
      "evidence from node-2 (scripts/collect-evidence.sh): not a JSON document (27 characters); output ends with: bash: ip: command not found",
  });
  t.throws(() => parseNodeFacts('{"schema":2}', "node-2"), {
    message: "evidence from node-2: not a collect-evidence.sh schema 1 document (schema 2)",
  });
  t.throws(() => parseClusterFacts("[]"), {
    message: "Cilium state from the k3s server (scripts/collect-cilium-state.sh): expected a JSON object, got an array",
  });
});

// ─── kube-proxy's leftovers under kube-proxy replacement ───────────────────────────────────────
// Fixtures made with the real iptables 1.8.9 (nf_tables) of Debian 12 in a throwaway network
// namespace: the chains kube-proxy (iptables mode) and the kubelet declare on a k8s 1.26 node, one
// Service, and a Cilium chain (test/verify/fixtures/iptables-save-kube-proxy.txt), then the
// `iptables` field the real scripts/collect-evidence.sh printed there, before and after
// install-k3s.sh's removal (`iptables-save | grep -v KUBE- | iptables-restore`).
const FIXTURES = join(__dirname, "fixtures");
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

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

/** A node document of `mode` with the collector's `iptables` field replaced. */
function withIptables(n: LabNode, mode: Mode, iptables: unknown): string {
  const doc = JSON.parse(ciliumNodeDoc(n, mode)) as Record<string, unknown>;
  return JSON.stringify({ ...doc, iptables });
}

test("under kube-proxy replacement each node must be free of KUBE-SERVICES in every iptables save command; the refusal names the node, where the chain is and the fix", (t) => {
  const leftovers = JSON.parse(fixture("collector-iptables-kube-proxy.json")) as unknown;
  const clean = JSON.parse(fixture("collector-iptables-cilium-only.json")) as unknown;
  const kpr = { "kube-proxy-replacement": "strict" };
  const cm = { ...cm113("vxlan"), ...kpr };
  const node2 =
    "node-2: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found KUBE-SERVICES in iptables-save filter, iptables-save nat, ip6tables-save nat";
  const cases: [string, RequestedDatapath, (n: LabNode) => unknown, string[]][] = [
    ["no node has kube-proxy's chain", req("vxlan", "1.13.4", kpr), () => clean, []],
    [
      "node-2 kept kube-proxy's rules",
      req("vxlan", "1.13.4", kpr),
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
    [
      "a node without iptables cannot prove it",
      req("vxlan", "1.13.4", kpr),
      (n) => (n.name === "node-3" ? [] : clean),
      [
        "node-3: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found not read: no iptables-save on the node",
      ],
    ],
    [
      "a failing save command is named",
      req("vxlan", "1.13.4", kpr),
      (n) =>
        n.name === "node-1"
          ? [
              {
                command: "/usr/sbin/iptables-save",
                exitCode: 4,
                output:
                  "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
              },
            ]
          : clean,
      [
        "node-1: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found not read: no iptables-save on the node (iptables-save exited 4: iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root))",
      ],
    ],
    // with kube-proxy running, its chains are expected: not checked.
    [
      "kube-proxy replacement off",
      req("vxlan", "1.13.4", { "kube-proxy-replacement": "disabled" }),
      () => leftovers,
      [],
    ],
    [
      "1.14+ says true",
      req("vxlan", "1.14.0", { "kube-proxy-replacement": "true" }),
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
    [
      "an explicit request wins over the ConfigMap",
      { ...req("vxlan", "1.13.4", { "kube-proxy-replacement": "disabled" }), kubeProxyReplacement: true },
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
  ];
  for (const [name, request, iptables, reasons] of cases) {
    const version = request.ciliumVersion;
    const rendered = request.configMap ?? {};
    const evidence = lab(
      version === "1.13.4" ? { ...cm113("vxlan"), ...rendered } : { ...cm117("vxlan"), ...rendered },
      "vxlan",
      {
        version,
        agent: (n) => (version === "1.13.4" ? agentStatus113(n, version) : agentStatus116(n, "vxlan", version)),
        doc: (n) => withIptables(n, "vxlan", iptables(n)),
      },
    );
    t.deepEqual(datapathOutput(request, evidence).reasons, reasons, name);
  }

  const refused = datapathOutput(
    req("vxlan", "1.13.4", kpr),
    lab(cm, "vxlan", { doc: (n) => withIptables(n, "vxlan", n.name === "node-2" ? leftovers : clean) }),
  );
  t.is(refused.verdict, "refused");
  t.deepEqual(
    refused.evidence.nodes.map((n) => [n.node, n.iptables.kubeProxyChains]),
    [
      ["node-1", []],
      ["node-2", ["iptables-save filter", "iptables-save nat", "ip6tables-save nat"]],
      ["node-3", []],
    ],
  );
  t.deepEqual(refused.evidence.nodes[0]?.iptables.read, [
    "iptables-save",
    "ip6tables-save",
    "iptables-legacy-save",
    "ip6tables-legacy-save",
  ]);
  const message = verdictFailureMessage(refused).split("\n");
  t.true(
    message.some(
      (l) =>
        l.startsWith("- node-2 (192.168.150.12): ") &&
        l.endsWith("; kube-proxy's KUBE-SERVICES in iptables-save filter, iptables-save nat, ip6tables-save nat"),
    ),
    "the evidence line of node-2 shows where the chain is",
  );
  t.false(message.some((l) => l.startsWith("- node-1 (") && l.includes("kube-proxy's")));
  t.true(
    message.includes(
      "What to do: kube-proxy is still in the datapath of node-2 although Cilium replaces it: on each, restart k3s (`sudo systemctl restart k3s-agent`; `k3s` on the server) " +
        "so it takes `--disable-kube-proxy` from the server, remove kube-proxy's rules (`sudo sh -c 'iptables-save | grep -v KUBE- | iptables-restore'`, " +
        "the same with ip6tables-save/ip6tables-restore), then `pulumi up` again.",
    ),
  );
});
