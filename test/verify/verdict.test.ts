/**
 * The verdict on a three-node Cilium lab, table by table: which evidence confirms or refuses each
 * routing mode, the checks that are its proof, and the failure message. The node documents have the
 * shape scripts/node/collect-evidence.sh prints on a Cilium node (see support.ts); the namespace tests
 * run the real collector.
 */
import test from "ava";

import {
  datapathOutput,
  verdictFailureMessage,
  type DatapathEvidence,
  type RequestedDatapath,
} from "../../infra/verify/evidence";
import { cm113, cm117, lab, req } from "./lab-evidence";
import { LAB, agentStatus113, agentStatus116, ciliumNodeDoc } from "./support";

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
    "Datapath verification failed: requested native routing, observed vxlan tunnel (cilium-config: native routing; agents: unknown; nodes: vxlan tunnel). No throughput or latency is measured or exported.",
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

test("with networkMtu requested, every node's NIC must have it: 1500 on a 1500 network is confirmed, a NIC left at 1500 on a 9000 network is refused", (t) => {
  const ok = datapathOutput({ ...req("vxlan"), networkMtu: 1500 }, lab(cm113("vxlan"), "vxlan"));
  t.deepEqual(ok.reasons, []);
  t.deepEqual(
    ok.checks.filter((c) => c.check === "NIC MTU").map((c) => `${c.scope} | ${c.expected} | ${c.actual} | ${c.ok}`),
    [
      "node-1 | mtu 1500 (cilium-lab:networkMtu) | mtu 1500 on eth0 | true",
      "node-2 | mtu 1500 (cilium-lab:networkMtu) | mtu 1500 on eth0 | true",
      "node-3 | mtu 1500 (cilium-lab:networkMtu) | mtu 1500 on eth0 | true",
    ],
  );
  const refused = datapathOutput({ ...req("vxlan"), networkMtu: 9000 }, lab(cm113("vxlan"), "vxlan"));
  t.is(refused.verdict, "refused");
  t.deepEqual(
    refused.checks.filter((c) => c.check === "NIC MTU" && !c.ok).map((c) => c.scope),
    ["node-1", "node-2", "node-3"],
  );
  t.is(
    datapathOutput(req("vxlan"), lab(cm113("vxlan"), "vxlan")).checks.filter((c) => c.check === "NIC MTU").length,
    0,
  );
});
