/**
 * report.md and throughput.svg for the cases a namespace run cannot produce: TCG results (flagged
 * as not representative), a refused datapath, failed and not-run modes, a Geneve mode (no article
 * figure), nodes on two libvirt hosts. Inputs are the verification layer's outputs built with its
 * own functions (fake-lab.ts).
 */
import test from "ava";
import { XMLParser } from "fast-xml-parser";

import { chartRows, renderChart } from "../../scripts/compare/chart";
import { renderReport } from "../../scripts/compare/report";
import type { CompareView } from "../../scripts/compare/results";
import { cannedDatapath, cannedThroughput } from "./fake-lab";

const ENV = {
  kernel: "nodes: 6.2.0-39-generic; host: Linux 6.1.0",
  cpuModel: "host: x",
  accelerator: "qemu",
  tcg: true,
  versions: { cilium: "1.13.4" },
  mtu: { "node-1 enp1s0 (virtio_net)": 1500 },
  offloads: { "NIC generic-receive-offload": "on" },
  nodeHosts: {
    source: "stack output nodeHosts",
    hosts: { "node-1": "qemu:///system", "node-2": "qemu+ssh://me@hostb/system", "node-3": "qemu:///system" },
    pair: "node-2 ↔ node-3 is on two hosts: traffic crosses a NIC",
  },
};

function view(): CompareView {
  return {
    source: { kind: "cluster", label: "cluster run: stack vxlan, TCG (not representative)" },
    stack: "vxlan",
    startedAt: "2026-11-24T10:00:00.000Z",
    environment: ENV,
    modes: [
      {
        mode: "vxlan",
        status: "measured",
        throughput: cannedThroughput("vxlan", "qemu"),
        datapath: cannedDatapath("vxlan"),
      },
      {
        mode: "geneve",
        status: "measured",
        throughput: cannedThroughput("geneve", "qemu"),
        datapath: {
          ...cannedDatapath("geneve"),
          observed: "vxlan",
          verdict: "refused",
          reasons: ["node-2: tunnel device: expected cilium_geneve, found cilium_vxlan"],
          checks: [
            { scope: "node-2", check: "tunnel device", expected: "cilium_geneve", actual: "cilium_vxlan", ok: false },
          ],
        },
      },
      {
        mode: "native",
        status: "failed",
        error:
          "Updating (vxlan):\nerror: Datapath verification failed: requested native routing, observed vxlan tunnel",
      },
    ],
  };
}

/** Per case: the test's title and the texts the report of {@link view} contains (`why` names a text's failure). */
const REPORT_CASES: { title: string; texts: (string | { text: string; why: string })[] }[] = [
  {
    title: "TCG: the report says at the top, per mode and in the environment that the throughput is not representative",
    texts: [
      "> **Measured under TCG (software emulation, accelerator `qemu`): the throughput is NOT representative of any real network.**",
      "**Not representative:** Measured with accelerator: qemu (TCG, software-emulated CPUs)",
      "| accelerator | qemu — TCG software emulation: throughput NOT representative |",
      "| MTU: node-1 enp1s0 (virtio_net) | 1500 |",
      "| offload: NIC generic-receive-offload | on |",
    ],
  },
  {
    title:
      "the environment names each node's libvirt host after the existing rows, then whether the measured pair crosses a NIC",
    texts: [
      "| offload: NIC generic-receive-offload | on |\n" +
        "| node-1 host | qemu:///system |\n" +
        "| node-2 host | qemu+ssh://me@hostb/system |\n" +
        "| node-3 host | qemu:///system |\n" +
        "| measured pair | node-2 ↔ node-3 is on two hosts: traffic crosses a NIC |\n\n## Compared with the article",
    ],
  },
  {
    title:
      "a refused datapath is said above the numbers, with the failed check; a failed mode shows pulumi's error; Geneve has no article figure",
    texts: [
      "### geneve — refused (requested geneve, observed vxlan)\n\n**The datapath is not confirmed: these numbers cannot be attributed to geneve.**",
      "- FAILED: node-2: tunnel device: expected cilium_geneve, found cilium_vxlan",
      "| node-2 | tunnel device | cilium_geneve | cilium_vxlan | ✗ |",
      "### native — FAILED\n\nNo numbers for this mode.\n\n```text\nUpdating (vxlan):\nerror: Datapath verification failed: requested native routing, observed vxlan tunnel\n```",
      "| native | failed | — | — | — | 1.11 |",
      "| geneve | refused (requested geneve, observed vxlan) | 480.0 [475.2–484.8] | 1138.0 [1126.6–1149.4] | 0.42 | not measured |",
      {
        text: "| geneve | 0.42 [0.42–0.42] | 0.42–0.42 | not measured |  |  |",
        why: "geneve: no article ratio, no difference",
      },
      "the article did not measure this mode.",
    ],
  },
];

for (const c of REPORT_CASES) {
  test(c.title, (t) => {
    const report = renderReport(view());
    for (const x of c.texts) {
      const { text, why } = typeof x === "string" ? { text: x, why: undefined } : x;
      t.true(report.includes(text), why);
    }
  });
}

test("the chart has bars only for measured modes and carries the TCG note", async (t) => {
  const v = view();
  t.deepEqual(
    chartRows(v).map((r) => `${r.mode} ${r.label}`),
    ["vxlan pod 493", "vxlan host 1138", "geneve pod 480", "geneve host 1138"],
  );
  const svg = await renderChart(v);
  t.true(svg.includes("measured under TCG software emulation: not representative of a"));
  const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as unknown;
  t.truthy(doc);
});

test("the Hubble flow proof is shown under the evidence: its summary and observation points, or why there is none", (t) => {
  const base = view();
  const report = renderReport({
    ...base,
    modes: [
      {
        mode: "vxlan",
        status: "measured",
        throughput: cannedThroughput("vxlan", "qemu"),
        datapath: {
          ...cannedDatapath("vxlan"),
          flowProof: {
            ok: true,
            observationPoints: ["FROM_OVERLAY", "TO_ENDPOINT", "TO_OVERLAY"],
            flows: 12,
            checks: [],
            summary: "The measured flow went to the overlay (TO_OVERLAY): a tunnel.",
          },
          flowProofReason: null,
        },
      },
      {
        mode: "native",
        status: "measured",
        throughput: cannedThroughput("native", "qemu"),
        datapath: { ...cannedDatapath("native"), flowProof: null, flowProofReason: "cilium-lab:hubble is false" },
      },
    ],
  });
  t.true(
    report.includes(
      "Hubble flow proof (confirmed): The measured flow went to the overlay (TO_OVERLAY): a tunnel. " +
        "Observation points of the measured connection: FROM_OVERLAY, TO_ENDPOINT, TO_OVERLAY (12 flows).\n",
    ),
  );
  t.true(report.includes("Hubble flow proof: none (cilium-lab:hubble is false).\n"));
});
