/**
 * The measurement as Kubernetes objects: pure builders (plain objects), so node pinning, arguments,
 * images, deadlines and names are table-tested without a cluster (test/verify/jobs.test.ts). The
 * plan they follow (settings, run key, order, names, waits) is schedule.ts, re-exported here.
 *
 * Shape (the article's test, measured properly, with latency beside it):
 * - two server pods on the SECOND node (node-2, as the article's `cilium-62-2`): one on the pod
 *   network and one hostNetwork (the host-to-host baseline on the same machine). Each runs two
 *   containers: iperf3 (`-s -p 5201`) and netperf's netserver (control port 12865), each with a
 *   startup probe on its port, so Ready means "both listen", and both tools measure the very pod
 *   (and pod IP) whose routes the evidence reads. The hostNetwork pod binds both ports on the node;
 * - one client Job per run on the LAST node (node-3, the article's `cilium-62-3`): the host client
 *   (hostNetwork) targets the server node's lab IP, the pod client the server pod's IP, which
 *   `scripts/node/wait-iperf3-servers.sh` reads once the pod is Ready (no DNS, no Service: traffic
 *   goes pod IP to pod IP, as in the article);
 * - iperf3 Jobs run `iperf3 -c <target> -p 5201 -J -t <s> -O <o> -P <n> --connect-timeout 10000`,
 *   netperf Jobs `netperf -H <target>` with TCP_RR or TCP_CRR, `-j` and the latency selectors
 *   (infra/verify/netperf).
 * Pods and Jobs carry `pulumi.com/skipAwait`: our scripts wait instead, so that a failure comes back
 * with the pod's log tail, which the provider's own await does not show.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

import { NETPERF_IMAGE } from "../versions";
import type { PathName } from "./iperf3";
import { NETSERVER_PORT, netperfClientArgs, netserverArgs } from "./netperf";
import {
  CONNECT_TIMEOUT_MS,
  IPERF3_PORT,
  NAMESPACE,
  serverPodName,
  type Iperf3Settings,
  type LatencyStep,
  type LatencyTest,
  type RunStep,
} from "./schedule";

export * from "./schedule";

/** The client's arguments (after the `iperf3` command). */
export function clientArgs<T = string>(target: T, s: Iperf3Settings): (string | T)[] {
  return [
    "-c",
    target,
    "-p",
    String(IPERF3_PORT),
    "-J",
    "-t",
    String(s.seconds),
    "-O",
    String(s.omitSeconds),
    "-P",
    String(s.streams),
    "--connect-timeout",
    String(CONNECT_TIMEOUT_MS),
  ];
}

/** The server's arguments: listen on 5201, serve one test after another until deleted. */
export const SERVER_ARGS: readonly string[] = ["-s", "-p", String(IPERF3_PORT)];

/** A program's argv as a container's `command` (the program) and `args` (the rest). */
export function commandOf(argv: readonly string[], program: string): { command: string[]; args: string[] } {
  const [first, ...rest] = argv;
  if (first !== program) {
    throw new Error(`expected an argv starting with ${program}, got: ${argv.join(" ")}`);
  }
  return { command: [program], args: rest };
}

/** A netperf client's arguments after `netperf`, for `test` against `target` (infra/verify/netperf). */
export function latencyArgs<T = string>(test: LatencyTest, target: T, seconds: number): (string | T)[] {
  const [program, ...args] = netperfClientArgs({ test, target, seconds });
  if (program !== "netperf") {
    throw new Error(`netperf's argv must start with netperf, got ${String(program)}`);
  }
  return args;
}

/** Labels on every object of the measurement. */
export function labels(component: "server" | "client", path: PathName, key: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "iperf3",
    "app.kubernetes.io/part-of": "cilium-lab",
    "app.kubernetes.io/component": component,
    "cilium-lab/path": path,
    "cilium-lab/run-key": key,
  };
}

const SKIP_AWAIT = { "pulumi.com/skipAwait": "true" };

/** The namespace; `privileged` so the hostNetwork pods are admitted whatever the cluster's default Pod Security level. */
export function namespaceArgs(): k8s.core.v1.NamespaceArgs {
  return {
    metadata: {
      name: NAMESPACE,
      labels: {
        "app.kubernetes.io/part-of": "cilium-lab",
        "pod-security.kubernetes.io/enforce": "privileged",
      },
    },
  };
}

/**
 * The pod spec of a server or client: pinned to `node`, on the node's own network for the `host`
 * path, the given containers, no Service environment and no service account token (neither tool
 * needs them), a 2 s grace period.
 */
function podSpec(
  node: string,
  path: PathName,
  restartPolicy: "Always" | "Never",
  containers: k8s.types.input.core.v1.Container[],
): k8s.types.input.core.v1.PodSpec {
  return {
    nodeSelector: { "kubernetes.io/hostname": node },
    hostNetwork: path === "host",
    restartPolicy,
    terminationGracePeriodSeconds: 2,
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    containers,
  };
}

/**
 * A listening container: a startup probe, not a readiness probe, so it connects until the server
 * listens, then stops, and no probe connection ever lands in the middle of a measurement.
 */
function serverContainer(name: string, image: string, argv: readonly string[], port: number) {
  return {
    name,
    image,
    ...commandOf(argv, name),
    ports: [{ name, containerPort: port, protocol: "TCP" }],
    startupProbe: { tcpSocket: { port }, periodSeconds: 2, failureThreshold: 30 },
  };
}

/**
 * A server pod on `node` (iperf3, and netserver from `netperfImage`, the pinned network-perf image
 * when omitted); `path: host` runs it in the node's network namespace.
 */
export function serverPodArgs(input: {
  readonly path: PathName;
  readonly node: string;
  readonly image: string;
  readonly netperfImage?: string;
  readonly key: string;
}): k8s.core.v1.PodArgs {
  return {
    metadata: {
      name: serverPodName(input.path, input.key),
      namespace: NAMESPACE,
      labels: labels("server", input.path, input.key),
      annotations: SKIP_AWAIT,
    },
    spec: podSpec(input.node, input.path, "Always", [
      serverContainer("iperf3", input.image, ["iperf3", ...SERVER_ARGS], IPERF3_PORT),
      serverContainer("netserver", input.netperfImage ?? NETPERF_IMAGE, netserverArgs(), NETSERVER_PORT),
    ]),
  };
}

/** A client Job's object: one container, no retries (a failure is reported, not hidden), bounded by a deadline. */
function clientJob(
  name: string,
  l: Record<string, string>,
  node: string,
  path: PathName,
  activeDeadlineSeconds: number,
  container: k8s.types.input.core.v1.Container,
): k8s.batch.v1.JobArgs {
  return {
    metadata: { name, namespace: NAMESPACE, labels: l, annotations: SKIP_AWAIT },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds,
      template: { metadata: { labels: l }, spec: podSpec(node, path, "Never", [container]) },
    },
  };
}

/** An iperf3 client Job: one run from `node` to `target`. */
export function clientJobArgs(input: {
  readonly step: RunStep;
  readonly node: string;
  readonly target: pulumi.Input<string>;
  readonly settings: Iperf3Settings;
  readonly key: string;
  readonly activeDeadlineSeconds: number;
}): k8s.batch.v1.JobArgs {
  const l = { ...labels("client", input.step.path, input.key), "cilium-lab/run": String(input.step.run) };
  return clientJob(input.step.job, l, input.node, input.step.path, input.activeDeadlineSeconds, {
    name: "iperf3",
    image: input.settings.image,
    command: ["iperf3"],
    args: clientArgs(input.target, input.settings),
  });
}

/** A netperf client Job: one TCP_RR or TCP_CRR run from `node`; `args` are {@link latencyArgs} for its target. */
export function latencyJobArgs(input: {
  readonly step: LatencyStep;
  readonly node: string;
  readonly args: pulumi.Input<string>[];
  readonly image: string;
  readonly key: string;
  readonly activeDeadlineSeconds: number;
}): k8s.batch.v1.JobArgs {
  const l = {
    ...labels("client", input.step.path, input.key),
    "app.kubernetes.io/name": "netperf",
    "cilium-lab/run": String(input.step.run),
    "cilium-lab/test": input.step.test,
  };
  return clientJob(input.step.job, l, input.node, input.step.path, input.activeDeadlineSeconds, {
    name: "netperf",
    image: input.image,
    command: ["netperf"],
    args: input.args,
  });
}
