/**
 * The measurement's objects as data: node pinning, arguments, images, deadlines, names, the order of
 * the iperf3 and netperf runs, and the run key that decides when the measurement runs again.
 */
import test from "ava";

import {
  CONNECT_TIMEOUT_MS,
  NAMESPACE,
  SERVER_ARGS,
  clientArgs,
  clientJobArgs,
  deadlines,
  featureKeys,
  iperf3Settings,
  latencyArgs,
  latencyDeadlines,
  latencyJobArgs,
  latencySchedule,
  measurementChain,
  namespaceArgs,
  netperfSettings,
  pickPair,
  runKey,
  runSchedule,
  serverPodArgs,
  shq,
  stdinScriptCommand,
  type FeatureKeys,
  type Iperf3Settings,
  type NetperfSettings,
} from "../../infra/verify/jobs";
import { IPERF3_IMAGE, NETPERF_IMAGE } from "../../infra/versions";

const CONFIG = { iperf3Image: IPERF3_IMAGE, iperf3Seconds: 10, iperf3Runs: 3, iperf3Streams: 1, iperf3OmitSeconds: 1 };
const S: Iperf3Settings = iperf3Settings(CONFIG);
const N: NetperfSettings = netperfSettings({ netperfImage: NETPERF_IMAGE, netperfSeconds: 10, iperf3Runs: 3 });
/** The article's starting list, as the config keys' defaults. */
const ARTICLE_KEYS: FeatureKeys = {
  kubeProxyReplacement: false,
  bpfMasquerade: false,
  hostRouting: "legacy",
  bandwidthManager: "off",
  ipv4BigTcp: false,
  networkMtu: 1500,
  hubble: true,
};
const NODES = ["node-1", "node-2", "node-3"].map((name, i) => ({ name, ip: `192.168.150.${11 + i}` }));

/** The client Job node-3 runs (pod network): no retries, a deadline, one container. */
const podClientJob = (name: string, labels: Record<string, string>, deadline: number, container: object) => ({
  metadata: { name, namespace: NAMESPACE, labels, annotations: { "pulumi.com/skipAwait": "true" } },
  spec: {
    backoffLimit: 0,
    activeDeadlineSeconds: deadline,
    template: {
      metadata: { labels },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": "node-3" },
        hostNetwork: false,
        restartPolicy: "Never",
        terminationGracePeriodSeconds: 2,
        enableServiceLinks: false,
        automountServiceAccountToken: false,
        containers: [container],
      },
    },
  },
});

test("the server goes to the second node and the client to the last, as in the article; with two nodes the server moves to node-1", (t) => {
  t.deepEqual(pickPair(NODES), { server: NODES[1], client: NODES[2] });
  t.deepEqual(pickPair(NODES.slice(0, 2)), { server: NODES[0], client: NODES[1] });
  const five = [...NODES, { name: "node-4", ip: "192.168.150.14" }, { name: "node-5", ip: "192.168.150.15" }];
  t.deepEqual(pickPair(five), { server: NODES[1], client: five[4] });
  t.throws(() => pickPair(NODES.slice(0, 1)), { message: "iperf3 needs two nodes to measure between; got 1 (node-1)" });
});

test("runs alternate host and pod, numbered in order, each Job named by path, run and key", (t) => {
  t.deepEqual(runSchedule(2, "k1"), [
    { path: "host", run: 1, order: 1, job: "iperf3-host-1-k1" },
    { path: "pod", run: 1, order: 2, job: "iperf3-pod-1-k1" },
    { path: "host", run: 2, order: 3, job: "iperf3-host-2-k1" },
    { path: "pod", run: 2, order: 4, job: "iperf3-pod-2-k1" },
  ]);
  t.is(runSchedule(20, "abcdef12").length, 40);
  t.true(runSchedule(20, "abcdef12").every((s) => s.job.length <= 63));
});

test("the client runs iperf3 -c <target> -p 5201 -J -t -O -P with a connect timeout; the server listens on 5201", (t) => {
  t.deepEqual(clientArgs("10.0.1.20", { ...S, seconds: 30, omitSeconds: 2, streams: 4 }), [
    "-c",
    "10.0.1.20",
    "-p",
    "5201",
    "-J",
    "-t",
    "30",
    "-O",
    "2",
    "-P",
    "4",
    "--connect-timeout",
    String(CONNECT_TIMEOUT_MS),
  ]);
  t.deepEqual(SERVER_ARGS, ["-s", "-p", "5201"]);
});

test("the run key changes with the routing mode, the Cilium version, the release content, any iperf3 setting and the nodes, and only then", (t) => {
  const base = {
    ciliumDigest: "sha256:aaa",
    routingMode: "vxlan",
    ciliumVersion: "1.13.4",
    features: ARTICLE_KEYS,
    settings: S,
    netperf: N,
    server: "node-2",
    client: "node-3",
  };
  const key = runKey(base);
  t.regex(key, /^[0-9a-f]{8}$/);
  t.is(runKey({ ...base, settings: { ...S } }), key);
  // Only the feature keys count, in a fixed order, whatever else the config object carries.
  t.is(runKey({ ...base, features: { ...ARTICLE_KEYS, routingMode: "native" } as FeatureKeys }), key);
  t.deepEqual(
    Object.keys(featureKeys(Object.fromEntries(Object.entries(ARTICLE_KEYS).reverse()) as FeatureKeys)),
    Object.keys(ARTICLE_KEYS),
  );
  const features: Partial<FeatureKeys>[] = [
    { kubeProxyReplacement: true },
    { bpfMasquerade: true },
    { hostRouting: "bpf" },
    { bandwidthManager: "on" },
    { bandwidthManager: "bbr" },
    { ipv4BigTcp: true },
    { networkMtu: 9000 },
    { hubble: false },
  ];
  const changed = [
    ...features.map((f) => ({ ...base, features: { ...ARTICLE_KEYS, ...f } })),
    { ...base, netperf: { ...N, image: "other@sha256:" + "c".repeat(64) } },
    { ...base, netperf: { ...N, seconds: 20 } },
    { ...base, netperf: { ...N, runs: 4 } },
    { ...base, routingMode: "native" },
    { ...base, ciliumVersion: "1.16.5" },
    { ...base, ciliumDigest: "sha256:bbb" },
    { ...base, settings: { ...S, image: "other@sha256:" + "b".repeat(64) } },
    { ...base, settings: { ...S, seconds: 11 } },
    { ...base, settings: { ...S, omitSeconds: 0 } },
    { ...base, settings: { ...S, streams: 2 } },
    { ...base, settings: { ...S, runs: 4 } },
    { ...base, server: "node-1" },
    { ...base, client: "node-2" },
  ].map(runKey);
  t.is(new Set([key, ...changed]).size, changed.length + 1);
});

test("server pods are pinned to their node, the host one on the node's network, with a startup probe on 5201 and no provider await", (t) => {
  const host = serverPodArgs({ path: "host", node: "node-2", image: "img@sha256:1", key: "k1" });
  t.deepEqual(host, {
    metadata: {
      name: "iperf3-server-host-k1",
      namespace: NAMESPACE,
      labels: {
        "app.kubernetes.io/name": "iperf3",
        "app.kubernetes.io/part-of": "cilium-lab",
        "app.kubernetes.io/component": "server",
        "cilium-lab/path": "host",
        "cilium-lab/run-key": "k1",
      },
      annotations: { "pulumi.com/skipAwait": "true" },
    },
    spec: {
      nodeSelector: { "kubernetes.io/hostname": "node-2" },
      hostNetwork: true,
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 2,
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      containers: [
        {
          name: "iperf3",
          image: "img@sha256:1",
          command: ["iperf3"],
          args: ["-s", "-p", "5201"],
          ports: [{ name: "iperf3", containerPort: 5201, protocol: "TCP" }],
          startupProbe: { tcpSocket: { port: 5201 }, periodSeconds: 2, failureThreshold: 30 },
        },
        {
          name: "netserver",
          image: NETPERF_IMAGE,
          command: ["netserver"],
          args: ["-D", "-p", "12865"],
          ports: [{ name: "netserver", containerPort: 12865, protocol: "TCP" }],
          startupProbe: { tcpSocket: { port: 12865 }, periodSeconds: 2, failureThreshold: 30 },
        },
      ],
    },
  });
  const pod = serverPodArgs({ path: "pod", node: "node-2", image: "img@sha256:1", netperfImage: "np@1", key: "k1" });
  t.is(pod.metadata && (pod.metadata as { name?: string }).name, "iperf3-server-pod-k1");
  t.false((pod.spec as { hostNetwork?: boolean }).hostNetwork);
  t.deepEqual(
    (pod.spec as { containers: { name: string; image: string }[] }).containers.map((c) => [c.name, c.image]),
    [
      ["iperf3", "img@sha256:1"],
      ["netserver", "np@1"],
    ],
  );
});

test("client Jobs are pinned to the client node, never retried, bounded by a deadline, and run the exact iperf3 arguments", (t) => {
  const step = runSchedule(1, "k1")[1];
  if (step === undefined) {
    throw new Error("no pod step");
  }
  const job = clientJobArgs({
    step,
    node: "node-3",
    target: "10.0.1.20",
    settings: S,
    key: "k1",
    activeDeadlineSeconds: 381,
  });
  const labels = {
    "app.kubernetes.io/name": "iperf3",
    "app.kubernetes.io/part-of": "cilium-lab",
    "app.kubernetes.io/component": "client",
    "cilium-lab/path": "pod",
    "cilium-lab/run-key": "k1",
    "cilium-lab/run": "1",
  };
  t.deepEqual(
    job,
    podClientJob("iperf3-pod-1-k1", labels, 381, {
      name: "iperf3",
      image: IPERF3_IMAGE,
      command: ["iperf3"],
      args: clientArgs("10.0.1.20", S),
    }),
  );
  const hostStep = runSchedule(1, "k1")[0];
  if (hostStep === undefined) {
    throw new Error("no host step");
  }
  const hostJob = clientJobArgs({
    step: hostStep,
    node: "node-3",
    target: "192.168.150.12",
    settings: S,
    key: "k1",
    activeDeadlineSeconds: 381,
  });
  t.true((hostJob.spec as { template: { spec: { hostNetwork: boolean } } }).template.spec.hostNetwork);
});

test("deadlines leave room for the image pull (5 min with KVM, 15 under TCG), and the reader waits a minute past the Job's own deadline", (t) => {
  t.deepEqual(deadlines(S, "kvm"), {
    serverReadySeconds: 360,
    jobSeconds: 300 + 10 + 1 + 10 + 60,
    readerSeconds: 381 + 60,
  });
  t.deepEqual(deadlines({ ...S, seconds: 300, omitSeconds: 10 }, "qemu"), {
    serverReadySeconds: 960,
    jobSeconds: 900 + 10 + 10 + 300 + 60,
    readerSeconds: 1280 + 60,
  });
});

test("the namespace admits hostNetwork pods whatever the cluster's default Pod Security level", (t) => {
  t.deepEqual(namespaceArgs(), {
    metadata: {
      name: "cilium-lab-iperf3",
      labels: { "app.kubernetes.io/part-of": "cilium-lab", "pod-security.kubernetes.io/enforce": "privileged" },
    },
  });
});

test("scripts run as `sudo -n bash -s -- <quoted args>` with the script on stdin", (t) => {
  t.is(stdinScriptCommand(["192.168.150.12"]), "sudo -n bash -s -- '192.168.150.12'");
  t.is(
    stdinScriptCommand([NAMESPACE, "iperf3-pod-1-k1", "441"]),
    "sudo -n bash -s -- 'cilium-lab-iperf3' 'iperf3-pod-1-k1' '441'",
  );
  t.is(shq("it's"), `'it'\\''s'`);
});

test("netperf runs TCP_RR then TCP_CRR, host then pod, per repetition; the chain interleaves them with iperf3 and reads the flows after the last pod iperf3 run", (t) => {
  t.deepEqual(latencySchedule(1, "k1"), [
    { test: "TCP_RR", path: "host", run: 1, order: 1, job: "netperf-rr-host-1-k1" },
    { test: "TCP_RR", path: "pod", run: 1, order: 2, job: "netperf-rr-pod-1-k1" },
    { test: "TCP_CRR", path: "host", run: 1, order: 3, job: "netperf-crr-host-1-k1" },
    { test: "TCP_CRR", path: "pod", run: 1, order: 4, job: "netperf-crr-pod-1-k1" },
  ]);
  t.true(latencySchedule(20, "abcdef12").every((s) => s.job.length <= 63));
  const word = (l: ReturnType<typeof measurementChain>[number]) =>
    l.kind === "flows" ? "flows" : l.kind === "iperf3" ? `${l.step.path} ${l.step.run}` : l.step.job.slice(0, -3);
  const chain = (flows: boolean) =>
    measurementChain(runSchedule(2, "k1"), latencySchedule(2, "k1"), flows).map(word).join(", ");
  t.is(
    chain(true),
    "host 1, pod 1, netperf-rr-host-1, netperf-rr-pod-1, netperf-crr-host-1, netperf-crr-pod-1, " +
      "host 2, pod 2, flows, netperf-rr-host-2, netperf-rr-pod-2, netperf-crr-host-2, netperf-crr-pod-2",
  );
  t.is(chain(false), chain(true).replace("flows, ", ""));
});

test("a netperf Job runs netperf -H <target> -p 12865 -l <s> -j -t <test> -- -o <selectors> on the client node, never retried, within its deadline", (t) => {
  const step = latencySchedule(1, "k1")[3];
  if (step === undefined) {
    throw new Error("no crr pod step");
  }
  const args = latencyArgs(step.test, "10.0.1.20", N.seconds);
  t.deepEqual(args, [
    ..."-H 10.0.1.20 -p 12865 -l 10 -j -t TCP_CRR -- -o".split(" "),
    "MIN_LATENCY,P50_LATENCY,P90_LATENCY,P99_LATENCY,MEAN_LATENCY,STDDEV_LATENCY,MAX_LATENCY,TRANSACTION_RATE",
  ]);
  const labels = {
    "app.kubernetes.io/name": "netperf",
    "app.kubernetes.io/part-of": "cilium-lab",
    "app.kubernetes.io/component": "client",
    "cilium-lab/path": "pod",
    "cilium-lab/run-key": "k1",
    "cilium-lab/run": "1",
    "cilium-lab/test": "TCP_CRR",
  };
  t.deepEqual(
    latencyJobArgs({ step, node: "node-3", args, image: NETPERF_IMAGE, key: "k1", activeDeadlineSeconds: 380 }),
    podClientJob("netperf-crr-pod-1-k1", labels, 380, {
      name: "netperf",
      image: NETPERF_IMAGE,
      command: ["netperf"],
      args,
    }),
  );
  t.deepEqual(latencyDeadlines(N, "kvm"), { jobSeconds: 300 + 10 + 10 + 60, readerSeconds: 380 + 60 });
  t.deepEqual(latencyDeadlines({ ...N, seconds: 300 }, "qemu"), {
    jobSeconds: 900 + 10 + 300 + 60,
    readerSeconds: 1270 + 60,
  });
});
