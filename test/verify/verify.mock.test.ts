/**
 * The Verification component under Pulumi mocks: exact resources, their inputs and options, the
 * order the runs are chained in, the output shapes, and what makes the measurement run again.
 * Mocks prove what the program asks for; the scripts are tested for real in scripts.test.ts and
 * namespaces.netns.test.ts.
 */
import test from "ava";

import { nodeScript } from "../../infra/node-scripts";
import { runKey, iperf3Settings, netperfSettings } from "../../infra/verify/jobs";
import { IPERF3_IMAGE } from "../../infra/versions";
import { promiseOf, type Registration } from "../support/pulumi-mocks";
import { SERVER_POD_IP, build, buildVxlan, exportedInOrder, stackConfig, vxlanLab, type Built } from "./mock-program";

let log = "";
let b: Built;

test.before(async () => {
  ({ log, built: b } = await vxlanLab());
});

const of = (type: string) => (r: Registration) => r.type === type;
const named = (name: string): Registration => {
  const r = b.registrations.find((x) => x.name === name);
  if (r === undefined) {
    throw new Error(`no registration ${name}`);
  }
  return r;
};
const urnOf = (r: Registration) => `urn:pulumi:vxlan::cilium-lab::lab:verify:Verification$${r.type}::${r.name}`;
/** The iperf3 Jobs of the three runs with run key `key`, in the order they run: host 1, pod 1, host 2, …. */
const jobNames = (key: string): string[] => [
  `iperf3-host-1-${key}`,
  `iperf3-pod-1-${key}`,
  `iperf3-host-2-${key}`,
  `iperf3-pod-2-${key}`,
  `iperf3-host-3-${key}`,
  `iperf3-pod-3-${key}`,
];
/** Every run's resource suffix in the order they run: per repetition iperf3 host, pod, then netperf TCP_RR and TCP_CRR, host and pod. */
const CHAIN = [1, 2, 3].flatMap((r) => [
  `host-${r}`,
  `pod-${r}`,
  `rr-host-${r}`,
  `rr-pod-${r}`,
  `crr-host-${r}`,
  `crr-pod-${r}`,
]);

test.serial(
  "a three-node vxlan lab registers the namespace, two servers, the evidence commands and 3 interleaved host/pod Jobs with their log readers",
  (t) => {
    const key = b.verification.runKey;
    t.deepEqual(
      b.registrations
        .filter((r) => r.parent.includes("lab:verify:Verification"))
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
      [
        "command:remote:Command verify-cilium-state",
        "command:remote:Command verify-evidence-node-1",
        "command:remote:Command verify-evidence-node-2",
        "command:remote:Command verify-evidence-node-3",
        "command:remote:Command verify-hubble-flows",
        ...CHAIN.map((s) => `command:remote:Command verify-logs-${s}`),
        "command:remote:Command verify-servers-ready",
        ...CHAIN.map((s) => `kubernetes:batch/v1:Job verify-job-${s}`),
        "kubernetes:core/v1:Namespace verify-namespace",
        "kubernetes:core/v1:Pod verify-server-host",
        "kubernetes:core/v1:Pod verify-server-pod",
      ].sort(),
    );
    t.deepEqual(
      b.registrations
        .filter(of("kubernetes:batch/v1:Job"))
        .map((r) => (r.inputs.metadata as { name: string }).name)
        .filter((n) => n.startsWith("iperf3-")),
      jobNames(key),
    );
    t.deepEqual(
      b.registrations.filter(of("kubernetes:batch/v1:Job")).map((r) => (r.inputs.metadata as { name: string }).name),
      CHAIN.map((c) => (/^(host|pod)-/.test(c) ? `iperf3-${c}-${key}` : `netperf-${c}-${key}`)),
    );
  },
);

test.serial(
  "Jobs run on node-3 against node-2 (host: its lab IP; pod: the server pod's IP), with the pinned image and the exact iperf3 arguments",
  (t) => {
    const s = iperf3Settings(stackConfig("vxlan"));
    for (const r of b.registrations
      .filter(of("kubernetes:batch/v1:Job"))
      .filter((x) => /-job-(host|pod)-/.test(x.name))) {
      const pod = (r.inputs.spec as { template: { spec: Record<string, unknown> } }).template.spec;
      const host = r.name.includes("-host-");
      t.deepEqual(pod.nodeSelector, { "kubernetes.io/hostname": "node-3" }, r.name);
      t.is(pod.hostNetwork, host, r.name);
      const [container] = pod.containers as { image: string; command: string[]; args: string[] }[];
      t.is(container?.image, IPERF3_IMAGE);
      t.deepEqual(container?.command, ["iperf3"]);
      // the command line as typed, one word per argument.
      const target = host ? "192.168.150.12" : SERVER_POD_IP;
      t.deepEqual(
        container?.args,
        `-c ${target} -p 5201 -J -t ${s.seconds} -O ${s.omitSeconds} -P ${s.streams} --connect-timeout 10000`.split(
          " ",
        ),
      );
    }
    for (const r of b.registrations.filter(of("kubernetes:core/v1:Pod"))) {
      t.deepEqual((r.inputs.spec as { nodeSelector: unknown }).nodeSelector, { "kubernetes.io/hostname": "node-2" });
    }
  },
);

test.serial(
  "every k8s object uses the lab's provider and dies with the server VM; servers and Jobs are deleted before they are replaced",
  (t) => {
    for (const r of b.registrations.filter(
      (x) => x.type.startsWith("kubernetes:") && x.parent.includes("Verification"),
    )) {
      t.true(r.provider.startsWith(`${b.urns.provider}::`), `${r.name} provider ${r.provider}`);
      t.is(r.deletedWith, b.urns.vm, r.name);
    }
    for (const r of b.registrations.filter((x) => x.type === "command:remote:Command")) {
      t.is(r.deletedWith, b.urns.vm, r.name);
      t.is(r.provider, "", r.name);
    }
    t.deepEqual(
      b.registrations
        .filter((r) => r.deleteBeforeReplace)
        .map((r) => r.name)
        .sort(),
      [...CHAIN.map((c) => `verify-job-${c}`), "verify-server-host", "verify-server-pod"].sort(),
    );
  },
);

test.serial(
  "the runs are chained: servers after the Cilium release, evidence after the servers, each Job after the verdict's evidence and the previous run's reader",
  (t) => {
    t.deepEqual(named("verify-namespace").dependencies, [b.urns.release]);
    t.deepEqual(
      [...named("verify-servers-ready").dependencies].sort(),
      [urnOf(named("verify-server-host")), urnOf(named("verify-server-pod"))].sort(),
    );
    for (const n of ["verify-cilium-state", "verify-evidence-node-1", "verify-evidence-node-3"]) {
      t.deepEqual(named(n).dependencies, [urnOf(named("verify-servers-ready"))], n);
    }
    const evidence = [
      "verify-cilium-state",
      "verify-evidence-node-1",
      "verify-evidence-node-2",
      "verify-evidence-node-3",
    ].map((n) => urnOf(named(n)));
    const chain = CHAIN;
    chain.forEach((step, i) => {
      const job = named(`verify-job-${step}`);
      // The flow read sits between the last pod iperf3 run and the netperf runs after it.
      const previous =
        i === 0
          ? "verify-servers-ready"
          : step === "rr-host-3"
            ? "verify-hubble-flows"
            : `verify-logs-${chain[i - 1] ?? ""}`;
      for (const dep of [urnOf(named(previous)), ...evidence]) {
        t.true(job.dependencies.includes(dep), `${job.name} depends on ${dep}`);
      }
      t.deepEqual(named(`verify-logs-${step}`).dependencies, [urnOf(job)]);
    });
    // After the last pod iperf3 run's reader; its arguments and trigger carry the server pod's IP and that Job's uid.
    t.deepEqual(
      [...named("verify-hubble-flows").dependencies].sort(),
      ["verify-job-pod-3", "verify-logs-pod-3", "verify-servers-ready"].map((n) => urnOf(named(n))).sort(),
    );
  },
);

test.serial(
  "commands run the project's scripts over SSH stdin, with quoted arguments and triggers that change only with what they read",
  (t) => {
    const key = b.verification.runKey;
    const ready = named("verify-servers-ready").inputs;
    t.is(
      ready.create,
      `sudo -n bash -s -- 'cilium-lab-iperf3' '360' 'iperf3-server-host-${key}' 'iperf3-server-pod-${key}'`,
    );
    t.deepEqual(ready.triggers, ["verify-server-host-uid", "verify-server-pod-uid"]);
    t.is(ready.stdin, nodeScript("wait-iperf3-servers.sh").text, "lib.sh, then the script");
    t.is(ready.logging, "stderr");
    t.is(ready.addPreviousOutputInEnv, false);

    const state = named("verify-cilium-state").inputs;
    t.is(state.create, "sudo -n bash -s -- 'cilium' '300'");
    const ev = named("verify-evidence-node-2").inputs;
    t.is(ev.create, "sudo -n bash -s -- '192.168.150.12'");
    t.deepEqual((ev.connection as { host: string; privateKey: string }).host, "192.168.150.12");
    const triggers = ev.triggers as string[];
    t.is(triggers[0], "sha256:release-1");
    t.regex(triggers[1] ?? "", /^[0-9a-f]{16}$/);
    t.is((JSON.parse(triggers[2] ?? "{}") as { pods: unknown[] }).pods.length, 2);

    const reader = named("verify-logs-pod-2").inputs;
    t.is(reader.create, `sudo -n bash -s -- 'cilium-lab-iperf3' 'iperf3-pod-2-${key}' '441'`);
    t.deepEqual(reader.triggers, ["verify-job-pod-2-uid"]);
    t.is(reader.stdin, nodeScript("read-iperf3-job.sh").text, "lib.sh, then the script");
  },
);

test.serial(
  "the datapath output states requested, observed and the verdict, with every check and the evidence",
  async (t) => {
    const d = await promiseOf(b.verification.datapath);
    t.is(d.requested, "vxlan");
    t.is(d.observed, "vxlan");
    t.is(d.verdict, "confirmed");
    t.deepEqual(d.reasons, []);
    t.true(d.checks.length > 20);
    const server = `iperf3-server-pod-${b.verification.runKey}`;
    t.deepEqual(
      d.checks
        .filter((c) => c.scope === `node-2 pod ${server}` || c.check.startsWith("routes of measured pod"))
        .map((c) => [c.scope, c.check, c.actual, c.ok]),
      [
        [`node-2 pod ${server}`, "route MTU", "default via 10.0.1.193 dev eth0 mtu 1450", true],
        ["node-2", `routes of measured pod ${server} (${SERVER_POD_IP})`, "read", true],
      ],
    );
    t.deepEqual(d.evidence.measuredPods, [
      { name: `iperf3-server-pod-${b.verification.runKey}`, node: "node-2", ip: SERVER_POD_IP },
    ]);
    t.deepEqual(
      d.evidence.nodes.map((n) => [n.node, n.tunnelDevices.map((x) => x.name), n.kernel, n.nic.driver]),
      [
        ["node-1", ["cilium_vxlan"], "6.2.0-39-generic", "virtio_net"],
        ["node-2", ["cilium_vxlan"], "6.2.0-39-generic", "virtio_net"],
        ["node-3", ["cilium_vxlan"], "6.2.0-39-generic", "virtio_net"],
      ],
    );
    t.deepEqual(Object.keys(d).sort(), [
      "checks",
      "evidence",
      "features",
      "notes",
      "observed",
      "observedBy",
      "reasons",
      "request",
      "requested",
      "verdict",
    ]);
  },
);

test.serial(
  "the throughput output has every run in order, statistics per path in labelled units and the paired ratio beside the article's",
  async (t) => {
    const th = await exportedInOrder(t, b, (v) => v.throughput, jobNames);
    t.deepEqual(Object.keys(th).sort(), [
      "ci95Method",
      "hostToHost",
      "podToPod",
      "ratio",
      "representative",
      "routingMode",
      "runs",
      "settings",
      "table",
      "units",
      "warning",
    ]);
    t.is(th.routingMode, "vxlan");
    t.is(th.podToPod.mibPerSecond.unit, "MiB/s");
    t.is(th.hostToHost.gbitPerSecond.unit, "Gbit/s");
    t.is(th.podToPod.runs, 3);
    t.deepEqual(th.ratio.perRun, [1, 1, 1]);
    t.is(th.ratio.article?.ratio, 493 / 1138);
    t.deepEqual(
      th.table.map((r) => [r.row, r.articleMiBPerSecond]),
      [
        ["host-to-host", 1138],
        ["pod-to-pod", 493],
      ],
    );
    t.deepEqual(th.settings.server, { node: "node-2", hostIp: "192.168.150.12", podIp: SERVER_POD_IP });
    t.deepEqual(th.settings.client, { node: "node-3" });
    t.is(th.settings.order, "host 1, pod 1, host 2, pod 2, host 3, pod 3");
    // The committed stacks run on KVM.
    t.true(th.representative);
  },
);

test.serial(
  "the same config builds the same names, inputs and triggers (a no-op up changes nothing); mode, version or iperf3 changes rename the runs",
  async (t) => {
    const snapshot = (x: Built) =>
      JSON.stringify(
        x.registrations
          .filter((r) => r.parent.includes("Verification"))
          .map((r) => [r.type, r.name, r.inputs])
          .sort(),
      );
    const first = snapshot(b);
    const again = await buildVxlan(log);
    t.is(snapshot(again), first);
    t.is(again.verification.runKey, b.verification.runKey);

    const cfg = stackConfig("vxlan");
    const keyOf = (c: typeof cfg, digest = "sha256:release-1") =>
      runKey({
        ciliumDigest: digest,
        routingMode: c.routingMode,
        ciliumVersion: c.ciliumVersion,
        features: c,
        settings: iperf3Settings(c),
        netperf: netperfSettings(c),
        server: "node-2",
        client: "node-3",
      });
    t.is(keyOf(cfg), b.verification.runKey);
    const geneve = await build("vxlan", stackConfig("vxlan", { routingMode: "geneve" }), {
      nodesRun: "geneve",
      configMap: { tunnel: "geneve", "kube-proxy-replacement": "disabled" },
      iperf3Log: log,
      digest: "sha256:release-2",
    });
    t.not(geneve.verification.runKey, b.verification.runKey);
    t.true(
      geneve.registrations.some(
        (r) =>
          (r.inputs.metadata as { name?: string } | undefined)?.name === `iperf3-pod-1-${geneve.verification.runKey}`,
      ),
    );
    t.not(keyOf({ ...cfg, ciliumVersion: "1.16.5" }), b.verification.runKey);
    t.not(keyOf({ ...cfg, iperf3Seconds: 30 }), b.verification.runKey);
    t.not(keyOf({ ...cfg, iperf3Streams: 2 }), b.verification.runKey);
    t.not(keyOf({ ...cfg, bpfMasquerade: true }), b.verification.runKey);
    t.not(keyOf({ ...cfg, netperfSeconds: 20 }), b.verification.runKey);
  },
);

test.serial(
  "under TCG (accelerator: qemu) the numbers are flagged as not representative and the waits are longer",
  async (t) => {
    const q = await buildVxlan(log, { accelerator: "qemu" });
    const th = await promiseOf(q.verification.throughput);
    t.false(th.representative);
    t.regex(th.warning ?? "", /^Measured with accelerator: qemu \(TCG/);
    const ready = q.registrations.find((r) => r.name === "verify-servers-ready");
    t.regex(String(ready?.inputs.create), /^sudo -n bash -s -- 'cilium-lab-iperf3' '960' /);
  },
);
