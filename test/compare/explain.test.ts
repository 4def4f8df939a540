/**
 * The explanation's rule table, row by row: for each rule, evidence where it fires (the exact
 * sentence with the numbers) and evidence where it does not; the whole table over real-shaped
 * views; and "no rule fired" when none does.
 */
import test from "ava";

import {
  CPU_BOUND_PERCENT,
  describeEvidence,
  explain,
  explanationSection,
  RULES,
  type Evidence,
} from "../../scripts/compare/explain";
import { cannedDatapath, cannedLatency, cannedThroughput } from "./fake-lab";

/** Evidence where nothing is wrong: native, full MTU, equal MSS, no retransmits, idle CPU, no latency. */
const QUIET: Evidence = {
  observed: "native",
  representative: true,
  warning: null,
  podRouteMtus: [],
  nics: [
    { node: "node-1", mtu: 1500, driver: "virtio_net", offloads: { "tx-udp_tnl-segmentation": "on" } },
    { node: "node-2", mtu: 1500, driver: "virtio_net", offloads: { "tx-udp_tnl-segmentation": "on" } },
  ],
  mss: { pod: [1448], host: [1448] },
  retransmits: { pod: [0, 0, 0], host: [0, 0, 0] },
  senderCpu: { pod: 40, host: 40 },
  ratio: 0.8,
  p50: {},
  features: {},
};

const VXLAN_OFF = {
  ...QUIET,
  observed: "vxlan",
  nics: QUIET.nics.map((n) => ({ ...n, offloads: { "tx-udp_tnl-segmentation": "off [fixed]" } })),
};

/** [rule id, evidence where it fires, its sentence, evidence where it does not]. */
const ROWS: [string, Evidence, string, Evidence][] = [
  [
    "tunnel-route-mtu",
    { ...QUIET, observed: "vxlan", podRouteMtus: [1450] },
    "Pod routes carry MTU 1450 against the NIC's 1500: every pod packet gives up 50 bytes to the vxlan encapsulation, so it carries less payload than a host packet.",
    { ...QUIET, podRouteMtus: [null, 1500] },
  ],
  [
    "mss-gap",
    { ...QUIET, mss: { pod: [1398], host: [1448] } },
    "pod↔pod TCP segments carry 1398 bytes of payload against 1448 host↔host (3.5 % less per packet, the same work per packet).",
    { ...QUIET, mss: { pod: [1448], host: [] } },
  ],
  [
    "software-gso",
    VXLAN_OFF,
    "The NIC cannot segment UDP-tunnelled packets (tx-udp_tnl-segmentation node-1 (virtio_net): off [fixed], node-2 (virtio_net): off [fixed]): " +
      "the kernel segments every vxlan super-packet in software (GSO), on the sender's CPU.",
    { ...VXLAN_OFF, observed: "native" },
  ],
  [
    "sender-cpu-bound",
    { ...QUIET, senderCpu: { pod: 97.25, host: 61 } },
    "The sender's CPU was 97.3 % busy in the pod↔pod runs (host↔host 61.0 %): the pod path is bounded by CPU, not by the link.",
    { ...QUIET, senderCpu: { pod: CPU_BOUND_PERCENT - 0.1, host: 61 } },
  ],
  [
    "pod-cpu-cost",
    { ...QUIET, senderCpu: { pod: 62, host: 41 } },
    "pod↔pod costs the sender more CPU than host↔host: 62.0 % against 41.0 % (+21.0 points).",
    { ...QUIET, senderCpu: { pod: 50.9, host: 41 } },
  ],
  [
    "pod-retransmits",
    { ...QUIET, retransmits: { pod: [4, 0, 120], host: [1, 0, 2] } },
    "pod↔pod retransmitted 124 segments over 3 runs (4, 0, 120) against 3 host↔host: losses on the pod path cost throughput.",
    { ...QUIET, retransmits: { pod: [4, 0, 5], host: [1, 0, 2] } },
  ],
  [
    "native-at-host-speed",
    { ...QUIET, ratio: 1.11 },
    "Native routing: pod↔pod reaches 1.11 × host↔host (paired median). No encapsulation, full-size pod packets: pods pay nothing measurable over the host path.",
    { ...QUIET, ratio: 1.11, podRouteMtus: [1450] },
  ],
  [
    "pod-latency-overhead",
    { ...QUIET, p50: { TCP_RR: { pod: 72, host: 50 } } },
    "A pod↔pod TCP_RR round trip takes 72.0 µs at p50 against 50.0 µs host↔host (+22.0 µs, +44.0 %): the pod path's per-packet work shows in every round trip.",
    { ...QUIET, p50: { TCP_RR: { pod: 54, host: 50 }, TCP_CRR: { pod: 300, host: 150 } } }, // +4 µs is only +8 %
  ],
  [
    "bpf-host-routing",
    { ...QUIET, features: { hostRouting: "bpf" } },
    "Every agent says BPF host routing runs: pod traffic bypasses the host's iptables and routing stack (eBPF redirects between the NIC and the pod's veth).",
    { ...QUIET, features: { hostRouting: "legacy" } },
  ],
  [
    "not-representative",
    { ...QUIET, representative: false, warning: "Measured with accelerator: qemu (TCG)" },
    "Not representative: Measured with accelerator: qemu (TCG). Emulated CPUs dominate every number here.",
    QUIET,
  ],
];

test("every rule of the table has a row here, in the table's order", (t) => {
  t.deepEqual(
    ROWS.map(([id]) => id),
    RULES.map((r) => r.id),
  );
  for (const r of RULES) {
    t.true(r.when.length > 10, `${r.id} states its condition`);
  }
});

for (const [id, fires, sentence, quiet] of ROWS) {
  test(`rule ${id}: fires with its numbers, stays silent otherwise`, (t) => {
    const rule = RULES.find((r) => r.id === id);
    t.is(rule?.explain(fires), sentence);
    t.is(rule?.explain(quiet), null);
    t.is(rule?.explain(QUIET), null, "silent on the quiet evidence");
  });
}

test("rule pod-latency-overhead: +1 µs is below netperf's resolution even when it is +10 % or more", (t) => {
  const rule = RULES.find((r) => r.id === "pod-latency-overhead");
  t.is(rule?.explain({ ...QUIET, p50: { TCP_RR: { pod: 9, host: 8 } } }), null);
  t.regex(rule?.explain({ ...QUIET, p50: { TCP_RR: { pod: 16, host: 13 } } }) ?? "", /\(\+3\.0 µs, \+23\.1 %\)/);
});

test("no rule fired: the explanation says so, with the evidence it read", (t) => {
  const x = explain({ mode: "native", status: "measured" });
  t.deepEqual(x.fired, []);
  t.deepEqual(explanationSection(x), [
    "Why (rules over the evidence above; scripts/compare/explain.ts):",
    "",
    "- No rule fired: none of the known causes shows in this evidence.",
    "",
    "Evidence read: datapath unknown; pod route MTU none seen (NIC n/a); MSS pod n/a / host n/a; retransmits pod n/a / host n/a; " +
      "sender CPU pod n/a / host n/a; tx-udp_tnl-segmentation: n/a.",
    "",
  ]);
  t.is(
    describeEvidence(VXLAN_OFF),
    "datapath vxlan; pod route MTU none seen (NIC 1500); MSS pod 1448 / host 1448; retransmits pod 0 / host 0; " +
      "sender CPU pod 40.0 % / host 40.0 %; tx-udp_tnl-segmentation: node-1 off [fixed], node-2 off [fixed]",
  );
});

test("over a variant's outputs: the evidence is read from datapath, throughput and latency (TCG flags the numbers)", (t) => {
  const x = explain({
    mode: "vxlan",
    status: "measured",
    throughput: cannedThroughput("vxlan", "qemu"),
    latency: cannedLatency("vxlan", "qemu"),
    datapath: cannedDatapath("vxlan"),
  });
  t.deepEqual(
    x.fired.map((f) => f.id),
    ["pod-retransmits", "pod-latency-overhead", "not-representative"],
  );
});
