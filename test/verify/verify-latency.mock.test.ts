/**
 * The Verification's newer parts under Pulumi mocks: the netperf runs (netserver beside iperf3 in
 * each server pod, TCP_RR and TCP_CRR Jobs and their readers), the `latency` output from real
 * netperf 2.7.0 captures, the Hubble flow read and its proof (a real `hubble observe -o jsonpb`
 * capture), the `features` the verdict carries, and the lab without Hubble (no flow read, a `null`
 * proof with its reason). Exact resources and inputs, as verify.mock.test.ts does for iperf3.
 */
import test from "ava";

import { nodeScript } from "../../infra/node-scripts";
import { IPERF3_IMAGE, NETPERF_IMAGE } from "../../infra/versions";
import { serverPodArgs } from "../../infra/verify/jobs";
import { HUBBLE_OFF_REASON } from "../../infra/verify/flow-proof";
import { promiseOf, type Registration } from "../support/pulumi-mocks";
import { ciliumDatapath } from "../../infra/cilium/values";
import { agentStatusFixture, fixture } from "./lab-evidence";
import { SERVER_POD_IP, build, buildVxlan, exportedInOrder, stackConfig, vxlanLab, type Built } from "./mock-program";

const SELECTORS =
  "MIN_LATENCY,P50_LATENCY,P90_LATENCY,P99_LATENCY,MEAN_LATENCY,STDDEV_LATENCY,MAX_LATENCY,TRANSACTION_RATE";
let log = "";
let b: Built;

test.before(async () => {
  ({ log, built: b } = await vxlanLab());
});

const named = (x: Built, name: string): Registration => {
  const r = x.registrations.find((y) => y.name === name);
  if (r === undefined) {
    throw new Error(`no registration ${name}`);
  }
  return r;
};

/** The netperf Jobs of the three runs with run key `key`, in the order they run: rr host 1, rr pod 1, crr host 1, …. */
const netperfJobs = (key: string): string[] =>
  [1, 2, 3].flatMap((r) => ["rr", "crr"].flatMap((x) => ["host", "pod"].map((p) => `netperf-${x}-${p}-${r}-${key}`)));

test.serial(
  "each server pod runs netserver beside iperf3, from the pinned network-perf image, probed on 12865",
  (t) => {
    for (const path of ["host", "pod"]) {
      const spec = named(b, `verify-server-${path}`).inputs.spec as { containers: Record<string, unknown>[] };
      t.deepEqual(
        spec.containers.map((c) => c.name),
        ["iperf3", "netserver"],
      );
      // What the table-tested builder (jobs.test.ts) makes of the pinned images and this run key.
      const expected = serverPodArgs({
        path: path as "host" | "pod",
        node: "node-2",
        image: IPERF3_IMAGE,
        netperfImage: NETPERF_IMAGE,
        key: b.verification.runKey,
      }).spec as unknown as { containers: Record<string, unknown>[] };
      t.deepEqual(spec.containers, expected.containers);
      t.is(spec.containers[1]?.image, NETPERF_IMAGE);
    }
  },
);

test.serial(
  "netperf Jobs run TCP_RR and TCP_CRR with -j and the latency selectors from node-3 to node-2's lab IP (host) and the server pod's IP (pod); their readers name the tool",
  (t) => {
    const key = b.verification.runKey;
    for (const test of ["rr", "crr"]) {
      for (const path of ["host", "pod"]) {
        const job = named(b, `verify-job-${test}-${path}-2`).inputs;
        t.is((job.metadata as { name: string }).name, `netperf-${test}-${path}-2-${key}`);
        const pod = (job.spec as { template: { spec: Record<string, unknown> } }).template.spec;
        t.deepEqual(pod.nodeSelector, { "kubernetes.io/hostname": "node-3" });
        t.is(pod.hostNetwork, path === "host");
        const target = path === "host" ? "192.168.150.12" : SERVER_POD_IP;
        t.deepEqual(pod.containers, [
          {
            name: "netperf",
            image: NETPERF_IMAGE,
            command: ["netperf"],
            args: `-H ${target} -p 12865 -l 10 -j -t TCP_${test.toUpperCase()} -- -o ${SELECTORS}`.split(" "),
          },
        ]);
        t.is((job.spec as { activeDeadlineSeconds: number }).activeDeadlineSeconds, 380);
        const reader = named(b, `verify-logs-${test}-${path}-2`).inputs;
        t.is(
          reader.create,
          `sudo -n bash -s -- 'cilium-lab-iperf3' 'netperf-${test}-${path}-2-${key}' '440' 'netperf'`,
        );
        t.deepEqual(reader.triggers, [`verify-job-${test}-${path}-2-uid`]);
        t.is(reader.stdin, nodeScript("read-iperf3-job.sh").text);
      }
    }
  },
);

test.serial(
  "the flow read asks the agent on node-2 for the server pod's flows on 5201, on the k3s server, triggered by the last pod iperf3 Job",
  (t) => {
    const flows = named(b, "verify-hubble-flows").inputs;
    t.is(
      flows.create,
      `sudo -n bash -s -- '--node' 'node-2' '--server-ip' '${SERVER_POD_IP}' '--port' '5201' '--timeout' '60'`,
    );
    t.deepEqual(flows.triggers, ["verify-job-pod-3-uid"]);
    t.is(flows.stdin, nodeScript("hubble-flows.sh").text);
    t.is((flows.connection as { host: string }).host, "192.168.150.11");
  },
);

test.serial(
  "the latency output has every netperf run in order, median and spread per path and test in µs, and the exact settings",
  async (t) => {
    const l = await exportedInOrder(t, b, (v) => v.latency, netperfJobs);
    t.deepEqual(
      l.table.map((r) => [r.row, r.test]),
      [
        ["host-to-host", "TCP_RR"],
        ["pod-to-pod", "TCP_RR"],
        ["host-to-host", "TCP_CRR"],
        ["pod-to-pod", "TCP_CRR"],
      ],
    );
    // The real TCP_RR capture: 12,13,15,53,28.95,258.93,33845,34497.398 (three identical runs).
    const rr = l.summaries.find((s) => s.path === "pod" && s.test === "TCP_RR");
    t.deepEqual([rr?.runs, rr?.p50Us.median, rr?.p99Us.max, rr?.transactionsPerSecond.median], [3, 13, 53, 34497.398]);
    t.true(l.runs.every((r) => r.minUs >= 0 && r.p50Us >= 0 && r.p90Us >= 0 && r.p99Us >= 0));
    t.is(l.routingMode, "vxlan");
    t.true(l.representative);
    t.is(l.warning, null);
    t.deepEqual(l.settings.server, { node: "node-2", hostIp: "192.168.150.12", podIp: SERVER_POD_IP });
    t.deepEqual(l.settings.client, { node: "node-3" });
    t.deepEqual(l.settings.serverArgs, ["netserver", "-D", "-p", "12865"]);
    t.deepEqual(
      l.settings.clientArgs.TCP_CRR,
      `netperf -H <target> -p 12865 -l 10 -j -t TCP_CRR -- -o ${SELECTORS}`.split(" "),
    );
    t.is(
      l.settings.order.split(", ").slice(0, 5).join(", "),
      "TCP_RR host 1, TCP_RR pod 1, TCP_CRR host 1, TCP_CRR pod 1, TCP_RR host 2",
    );
  },
);

test.serial(
  "the exported datapath carries the flow proof (vxlan: the replies left through the overlay) and the features the agents run beside what was asked",
  async (t) => {
    const d = await promiseOf(b.verification.datapathReport);
    t.is(d.verdict, "confirmed");
    t.is(d.flowProofReason, null);
    t.true(d.flowProof?.ok);
    t.true(d.flowProof?.observationPoints.includes("TO_OVERLAY"));
    t.regex(
      d.flowProof?.summary ?? "",
      /^Hubble in the Cilium 1\.13\.4 agent on node-2 saw \d+ flows of TCP 10\.0\.1\.77:5201 .*vxlan tunnel, confirmed per flow\.$/,
    );
    t.true(d.features.ok);
    const node2 = d.features.nodes.find((n) => n.node === "node-2");
    t.deepEqual(
      node2?.lines
        .map((l) => [l.label, l.asked, l.observed])
        .filter(([label]) => label === "Host Routing" || label === "Masquerading"),
      [
        ["Host Routing", "legacy", "legacy"],
        ["Masquerading", "iptables", "iptables"],
      ],
    );
    t.deepEqual(d.features.relay.line.observed, "enabled");
  },
);

test.serial("under TCG the latency is flagged as not representative", async (t) => {
  const q = await buildVxlan(log, { accelerator: "qemu" });
  const l = await promiseOf(q.verification.latency);
  t.false(l.representative);
  t.regex(l.warning ?? "", /^Measured with accelerator: qemu \(TCG/);
  t.regex(String(named(q, "verify-hubble-flows").inputs.create), / '--timeout' '300'$/);
});

test.serial(
  "without Hubble there is no flow read: the flow proof is null with its reason, and throughput and latency are exported",
  async (t) => {
    const off = await buildVxlan(log, { hubble: "false" });
    t.false(off.registrations.some((r) => r.name === "verify-hubble-flows"));
    const d = await promiseOf(off.verification.datapathReport);
    t.is(d.flowProof, null);
    t.is(d.flowProofReason, HUBBLE_OFF_REASON);
    t.is(d.features.relay.line.observed, "disabled");
    t.is((await promiseOf(off.verification.throughput)).runs.length, 6);
    t.is((await promiseOf(off.verification.latency)).runs.length, 12);
    // rr host 3 follows the last pod iperf3 run directly.
    t.true(
      named(off, "verify-job-rr-host-3").dependencies.includes(
        `urn:pulumi:vxlan::cilium-lab::lab:verify:Verification$command:remote:Command::verify-logs-pod-3`,
      ),
    );
  },
);

test.serial(
  "the series' end state (native routing, kube-proxy replacement, BPF masquerading, BPF host routing, BBR) is confirmed feature by feature and per flow, and exports throughput and latency",
  async (t) => {
    const config = stackConfig("vxlan", {
      routingMode: "native",
      nativeRoutingCidr: "10.0.0.0/22",
      kubeProxyReplacement: "true",
      bpfMasquerade: "true",
      hostRouting: "bpf",
      bandwidthManager: "bbr",
    });
    const end = await build("vxlan", config, {
      nodesRun: "native",
      configMap: { ...ciliumDatapath(config, config.ciliumVersion).configMap },
      iperf3Log: log,
      agent: (n) => agentStatusFixture("1.13.4-bpf", n),
      iptables: JSON.parse(fixture("collector-iptables-cilium-only.json")) as unknown,
    });
    const d = await promiseOf(end.verification.datapathReport);
    t.deepEqual([d.verdict, d.requested, d.observed, d.reasons], ["confirmed", "native", "native", []]);
    t.true(d.flowProof?.ok);
    t.false(d.flowProof?.observationPoints.some((p) => p.includes("OVERLAY")));
    t.true(d.features.ok);
    t.deepEqual(
      d.features.nodes
        .find((n) => n.node === "node-2")
        ?.lines.filter((l) => l.checked)
        .map((l) => [l.label, l.asked, l.observed, l.article]),
      [
        ["Datapath mode", "disabled", "disabled", "tunnel"],
        ["KubeProxyReplacement", "enabled", "enabled", "Disabled"],
        ["BandwidthManager", "edt+bbr", "edt+bbr", "Disabled"],
        ["Host Routing", "bpf", "bpf", "Legacy"],
        ["Masquerading", "bpf", "bpf", "IPtables"],
        ["Hubble Relay", "enabled", "enabled", "disabled"],
      ],
    );
    t.is((await promiseOf(end.verification.throughput)).routingMode, "native");
    t.is((await promiseOf(end.verification.latency)).runs.length, 12);
  },
);
