/**
 * The iperf3 measurement as Kubernetes objects, and the shell commands that wait for them: pure
 * builders (plain objects and strings), so node pinning, arguments, image, deadlines, names and
 * re-run keys are table-tested without a cluster (test/verify/jobs.test.ts).
 *
 * Shape (the article's test, measured properly):
 * - two iperf3 servers on the SECOND node (node-2, as the article's `cilium-62-2`): a pod on the
 *   pod network and a hostNetwork pod (the host-to-host baseline on the same machine), each a bare
 *   Pod with a startup probe on port 5201, so Ready means "iperf3 listens";
 * - one client Job per run on the LAST node (node-3, the article's `cilium-62-3`), alternating
 *   host 1, pod 1, host 2, pod 2, …: the host client (hostNetwork) targets the server node's lab IP,
 *   the pod client targets the server pod's IP, which `scripts/node/wait-iperf3-servers.sh` reads once the
 *   pod is Ready (no DNS, no Service: traffic goes pod IP to pod IP, as in the article);
 * - every Job runs `iperf3 -c <target> -p 5201 -J -t <s> -O <o> -P <n> --connect-timeout 10000`.
 * Pods and Jobs carry `pulumi.com/skipAwait`: our scripts wait instead, so that a failure comes back
 * with the pod's log tail, which the provider's own await does not show.
 */
import { createHash } from "node:crypto";

import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import type { PathName } from "./iperf3";

/** iperf3's default port, for both servers (they live in different network namespaces). */
export const IPERF3_PORT = 5201;

/** The namespace of the measurement. */
export const NAMESPACE = "cilium-lab-iperf3";

/** How long the client waits for the TCP connection, ms: a black-holed route fails in 10 s, not after TCP's ~2 min. */
export const CONNECT_TIMEOUT_MS = 10000;

/** The iperf3 part of the stack config. */
export type Iperf3Config = Pick<
  LabConfig,
  "iperf3Image" | "iperf3Seconds" | "iperf3Runs" | "iperf3Streams" | "iperf3OmitSeconds"
>;

/** The resolved iperf3 settings. */
export interface Iperf3Settings {
  /** `iperf3Image` as parsed: the pinned image unless the stack names another. */
  readonly image: string;
  readonly seconds: number;
  readonly omitSeconds: number;
  readonly streams: number;
  readonly runs: number;
}

/** The iperf3 keys of the parsed config (which already resolved the image default), as settings. */
export function iperf3Settings(config: Iperf3Config): Iperf3Settings {
  return {
    image: config.iperf3Image,
    seconds: config.iperf3Seconds,
    omitSeconds: config.iperf3OmitSeconds,
    streams: config.iperf3Streams,
    runs: config.iperf3Runs,
  };
}

/** A node by Kubernetes name and lab IP. */
export interface NodeRef {
  readonly name: string;
  readonly ip: string;
}

/**
 * Server on the second node, client on the last (node-2 and node-3 with the default three nodes,
 * as the article). With two nodes, "second" and "last" coincide, so the server goes to the first
 * node (the k3s server, which k3s does not taint) and the traffic still crosses nodes.
 */
export function pickPair(nodes: readonly NodeRef[]): { readonly server: NodeRef; readonly client: NodeRef } {
  if (nodes.length < 2) {
    throw new RangeError(
      `iperf3 needs two nodes to measure between; got ${nodes.length} (${nodes.map((n) => n.name).join(", ")})`,
    );
  }
  const client = nodes[nodes.length - 1] as NodeRef;
  const server = (nodes.length >= 3 ? nodes[1] : nodes[0]) as NodeRef;
  return { server, client };
}

/**
 * The key that names the measurement's objects: a hash of everything that should make the numbers
 * change — the Cilium release content (its digest covers chart version and every value, the routing
 * mode among them), the routing mode and Cilium version again (explicit, whatever the digest
 * covers), the iperf3 image and settings, and the two nodes. Server pods and Jobs are named with
 * it, so a change renames (replaces) them and their log readers (triggered on the Job uid) run
 * again; an `up` with the same inputs computes the same names and changes nothing.
 */
export function runKey(input: {
  readonly ciliumDigest: string;
  readonly routingMode: string;
  readonly ciliumVersion: string;
  readonly settings: Iperf3Settings;
  readonly server: string;
  readonly client: string;
}): string {
  const s = input.settings;
  const text = JSON.stringify([
    "iperf3-v1",
    input.ciliumDigest,
    input.routingMode,
    input.ciliumVersion,
    s.image,
    s.seconds,
    s.omitSeconds,
    s.streams,
    s.runs,
    input.server,
    input.client,
  ]);
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** One client run in the schedule. */
export interface RunStep {
  readonly path: PathName;
  /** 1-based repetition. */
  readonly run: number;
  /** 1-based position in the sequence. */
  readonly order: number;
  /** The Job's Kubernetes name: `iperf3-<path>-<run>-<key>`. */
  readonly job: string;
}

/** host 1, pod 1, host 2, pod 2, …: interleaved, so slow drift (thermal, neighbours) hits both paths alike. */
export function runSchedule(runs: number, key: string): RunStep[] {
  const steps: RunStep[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const path of ["host", "pod"] as const) {
      steps.push({ path, run, order: steps.length + 1, job: `iperf3-${path}-${run}-${key}` });
    }
  }
  return steps;
}

/** The server pod name of a path. */
export function serverPodName(path: PathName, key: string): string {
  return `iperf3-server-${path}-${key}`;
}

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

/** Wait budgets, seconds. */
export interface Deadlines {
  /** For the server pods to be Ready (image pull included). */
  readonly serverReadySeconds: number;
  /** A client Job's `activeDeadlineSeconds` (image pull on the client node, connect, run). */
  readonly jobSeconds: number;
  /** How long the log reader waits for a Job: a little longer than the Job's own deadline, so the Job's reason is the one reported. */
  readonly readerSeconds: number;
}

/**
 * Pulling the image is the slow part: 5 min with KVM, 15 min under TCG, where decompressing layers
 * runs on emulated CPUs.
 */
export function deadlines(s: Iperf3Settings, accelerator: LabConfig["accelerator"]): Deadlines {
  const pull = accelerator === "qemu" ? 900 : 300;
  const job = pull + CONNECT_TIMEOUT_MS / 1000 + s.omitSeconds + s.seconds + 60;
  return { serverReadySeconds: pull + 60, jobSeconds: job, readerSeconds: job + 60 };
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
 * path, one `iperf3` container with `args` (plus `container`'s extra fields), no Service
 * environment and no service account token (iperf3 needs neither), a 2 s grace period.
 */
function iperf3PodSpec(
  node: string,
  path: PathName,
  restartPolicy: "Always" | "Never",
  image: string,
  args: pulumi.Input<string>[],
  container: Omit<k8s.types.input.core.v1.Container, "name" | "image" | "command" | "args"> = {},
): k8s.types.input.core.v1.PodSpec {
  return {
    nodeSelector: { "kubernetes.io/hostname": node },
    hostNetwork: path === "host",
    restartPolicy,
    terminationGracePeriodSeconds: 2,
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    containers: [{ name: "iperf3", image, command: ["iperf3"], args, ...container }],
  };
}

/** An iperf3 server pod on `node`; `path: host` runs it in the node's network namespace. */
export function serverPodArgs(input: {
  readonly path: PathName;
  readonly node: string;
  readonly image: string;
  readonly key: string;
}): k8s.core.v1.PodArgs {
  return {
    metadata: {
      name: serverPodName(input.path, input.key),
      namespace: NAMESPACE,
      labels: labels("server", input.path, input.key),
      annotations: SKIP_AWAIT,
    },
    spec: iperf3PodSpec(input.node, input.path, "Always", input.image, [...SERVER_ARGS], {
      ports: [{ name: "iperf3", containerPort: IPERF3_PORT, protocol: "TCP" }],
      // A startup probe, not a readiness probe: it connects until iperf3 listens, then stops, so
      // no probe connection ever lands in the middle of a measurement.
      startupProbe: { tcpSocket: { port: IPERF3_PORT }, periodSeconds: 2, failureThreshold: 30 },
    }),
  };
}

/** A client Job: one iperf3 run from `node` to `target`; no retries, so a failure is reported, not hidden. */
export function clientJobArgs(input: {
  readonly step: RunStep;
  readonly node: string;
  readonly target: pulumi.Input<string>;
  readonly settings: Iperf3Settings;
  readonly key: string;
  readonly activeDeadlineSeconds: number;
}): k8s.batch.v1.JobArgs {
  const l = { ...labels("client", input.step.path, input.key), "cilium-lab/run": String(input.step.run) };
  return {
    metadata: { name: input.step.job, namespace: NAMESPACE, labels: l, annotations: SKIP_AWAIT },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.activeDeadlineSeconds,
      template: {
        metadata: { labels: l },
        spec: iperf3PodSpec(
          input.node,
          input.step.path,
          "Never",
          input.settings.image,
          clientArgs(input.target, input.settings),
        ),
      },
    },
  };
}

/** Single-quotes a word for sh. */
export function shq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `sudo bash -s -- <args>`: the script comes on stdin, so nothing is copied to the machine. */
export function stdinScriptCommand(args: readonly string[]): string {
  return ["sudo", "-n", "bash", "-s", "--", ...args.map(shq)].join(" ");
}
