/**
 * The measurement's plan as data (pure): the settings from stack config, which two nodes, the run
 * key that names everything, the order the runs go in, the Kubernetes names, the wait budgets, and
 * the shell command line of a script sent on stdin. Table-tested in test/verify/jobs.test.ts.
 *
 * Order: per repetition, iperf3 host, iperf3 pod, then netperf TCP_RR host and pod, then TCP_CRR
 * host and pod (host 1, pod 1, rr host 1, rr pod 1, crr host 1, crr pod 1, host 2, …), so slow
 * drift (thermal, neighbours) hits every path and test alike. With Hubble on, the flow proof reads
 * the server node's flows right after the last pod-path iperf3 run, before TCP_CRR's thousands of
 * short connections can push its flows out of the agent's ring buffer.
 */
import { createHash } from "node:crypto";

import type { LabConfig } from "../config";
import type { PathName } from "./iperf3";
import { NETPERF_TESTS, type NetperfTest } from "./netperf";

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

/** The latency part of the stack config (repetitions are iperf3's: the runs interleave). */
export type NetperfConfig = Pick<LabConfig, "netperfImage" | "netperfSeconds" | "iperf3Runs">;

/** The resolved netperf settings. */
export interface NetperfSettings {
  /** `netperfImage` as parsed: the pinned network-perf image unless the stack names another. */
  readonly image: string;
  /** netperf `-l`. */
  readonly seconds: number;
  /** Repetitions of each test and path: `iperf3Runs`. */
  readonly runs: number;
}

/** The netperf keys of the parsed config, as settings. */
export function netperfSettings(config: NetperfConfig): NetperfSettings {
  return { image: config.netperfImage, seconds: config.netperfSeconds, runs: config.iperf3Runs };
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
 * The feature keys of the stack config: each changes what the agents run (or, `networkMtu`, the
 * NIC under them), so each is part of the run key.
 */
export type FeatureKeys = Pick<
  LabConfig,
  "kubeProxyReplacement" | "bpfMasquerade" | "hostRouting" | "bandwidthManager" | "ipv4BigTcp" | "networkMtu" | "hubble"
>;

/** The feature keys of a parsed config, in a fixed order (the run key hashes them). */
export function featureKeys(config: FeatureKeys): FeatureKeys {
  return {
    kubeProxyReplacement: config.kubeProxyReplacement,
    bpfMasquerade: config.bpfMasquerade,
    hostRouting: config.hostRouting,
    bandwidthManager: config.bandwidthManager,
    ipv4BigTcp: config.ipv4BigTcp,
    networkMtu: config.networkMtu,
    hubble: config.hubble,
  };
}

/**
 * The key that names the measurement's objects: a hash of everything that should make the numbers
 * change — the Cilium release content (its digest covers chart version and every value, the routing
 * mode among them), the routing mode, Cilium version and every feature key again (explicit, whatever
 * the digest covers: `networkMtu` changes no Helm value), the iperf3 and netperf images and
 * settings, and the two nodes. Server pods and Jobs are named with it, so a change renames
 * (replaces) them — new pods get the new datapath settings, such as a pod route MTU, which Cilium
 * fixes when it wires a pod — and their log readers (triggered on the Job uid) run again; an `up`
 * with the same inputs computes the same names and changes nothing.
 */
export function runKey(input: {
  readonly ciliumDigest: string;
  readonly routingMode: string;
  readonly ciliumVersion: string;
  readonly features: FeatureKeys;
  readonly settings: Iperf3Settings;
  readonly netperf: NetperfSettings;
  readonly server: string;
  readonly client: string;
}): string {
  const s = input.settings;
  const n = input.netperf;
  const text = JSON.stringify([
    "measure-v2",
    input.ciliumDigest,
    input.routingMode,
    input.ciliumVersion,
    featureKeys(input.features),
    [s.image, s.seconds, s.omitSeconds, s.streams, s.runs],
    [n.image, n.seconds, n.runs],
    input.server,
    input.client,
  ]);
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** What every client run in a schedule has, iperf3's and netperf's alike. */
interface ScheduledRun {
  readonly path: PathName;
  /** 1-based repetition. */
  readonly run: number;
  /** 1-based position among the runs of its tool (iperf3 or netperf). */
  readonly order: number;
  /** The Job's Kubernetes name. */
  readonly job: string;
}

/**
 * Repeats `perRun` (the runs of one repetition, in order) `runs` times, numbering each run's
 * repetition and position and naming its Job with `job`.
 */
function repeatRuns<T extends { readonly path: PathName }>(
  runs: number,
  perRun: readonly T[],
  job: (step: T, run: number) => string,
): (T & ScheduledRun)[] {
  const steps: (T & ScheduledRun)[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const step of perRun) {
      steps.push({ ...step, run, order: steps.length + 1, job: job(step, run) });
    }
  }
  return steps;
}

/** The two paths, in the order each repetition runs them. */
const PATHS = [{ path: "host" }, { path: "pod" }] as const;

/** One iperf3 client run in the schedule; `order` counts the iperf3 runs, `job` is `iperf3-<path>-<run>-<key>`. */
export type RunStep = ScheduledRun;

/** iperf3's runs: host 1, pod 1, host 2, pod 2, …. */
export function runSchedule(runs: number, key: string): RunStep[] {
  return repeatRuns(runs, PATHS, ({ path }, run) => `iperf3-${path}-${run}-${key}`);
}

/** netperf's request/response tests: one transaction per round trip, on one connection (RR) or a new one each (CRR). */
export type LatencyTest = NetperfTest;

/** The latency tests in the order they run. */
export const LATENCY_TESTS: readonly LatencyTest[] = NETPERF_TESTS;

/** `rr` / `crr`: the test in resource and Job names. */
export function testSlug(test: LatencyTest): string {
  return test === "TCP_RR" ? "rr" : "crr";
}

/** One netperf client run in the schedule; `order` counts the netperf runs, `job` is `netperf-<rr|crr>-<path>-<run>-<key>`. */
export interface LatencyStep extends ScheduledRun {
  readonly test: LatencyTest;
}

/** netperf's runs: rr host 1, rr pod 1, crr host 1, crr pod 1, rr host 2, …. */
export function latencySchedule(runs: number, key: string): LatencyStep[] {
  const perRun = LATENCY_TESTS.flatMap((test) => PATHS.map(({ path }) => ({ test, path })));
  return repeatRuns(runs, perRun, ({ test, path }, run) => `netperf-${testSlug(test)}-${path}-${run}-${key}`);
}

/** One link of the measurement chain: each waits for the one before. */
export type ChainLink =
  | { readonly kind: "iperf3"; readonly step: RunStep }
  | { readonly kind: "netperf"; readonly step: LatencyStep }
  | { readonly kind: "flows" };

/**
 * Every run in the order it happens: per repetition its iperf3 runs, then its netperf runs; with
 * `flowProof`, the Hubble flow read right after the last pod-path iperf3 run.
 */
export function measurementChain(
  iperf3: readonly RunStep[],
  latency: readonly LatencyStep[],
  flowProof: boolean,
): ChainLink[] {
  const runs = Math.max(0, ...iperf3.map((s) => s.run), ...latency.map((s) => s.run));
  const chain: ChainLink[] = [];
  for (let run = 1; run <= runs; run++) {
    chain.push(...iperf3.filter((s) => s.run === run).map((step) => ({ kind: "iperf3" as const, step })));
    if (flowProof && run === runs) {
      chain.push({ kind: "flows" });
    }
    chain.push(...latency.filter((s) => s.run === run).map((step) => ({ kind: "netperf" as const, step })));
  }
  return chain;
}

/** The server pod name of a path (iperf3 and netserver run in the same pod). */
export function serverPodName(path: PathName, key: string): string {
  return `iperf3-server-${path}-${key}`;
}

/** Wait budgets, seconds. */
export interface Deadlines {
  /** For the server pods to be Ready (image pull included). */
  readonly serverReadySeconds: number;
  /** A client Job's `activeDeadlineSeconds` (image pull on the client node, connect, run). */
  readonly jobSeconds: number;
  /** How long the log reader waits for a Job: a little longer than the Job's own deadline, so the Job's reason is the one reported. */
  readonly readerSeconds: number;
}

/** Pulling an image: 5 min with KVM, 15 min under TCG, where decompressing layers runs on emulated CPUs. */
function pullSeconds(accelerator: LabConfig["accelerator"]): number {
  return accelerator === "qemu" ? 900 : 300;
}

/** The iperf3 waits: pull, connect timeout, omitted and measured seconds, and a minute. */
export function deadlines(s: Iperf3Settings, accelerator: LabConfig["accelerator"]): Deadlines {
  const pull = pullSeconds(accelerator);
  const job = pull + CONNECT_TIMEOUT_MS / 1000 + s.omitSeconds + s.seconds + 60;
  return { serverReadySeconds: pull + 60, jobSeconds: job, readerSeconds: job + 60 };
}

/**
 * A netperf Job's waits: pull, netperf's control connection (it has no connect timeout: a
 * black-holed netserver ends at the Job's deadline), the test's seconds and a minute.
 */
export function latencyDeadlines(
  n: NetperfSettings,
  accelerator: LabConfig["accelerator"],
): Pick<Deadlines, "jobSeconds" | "readerSeconds"> {
  const job = pullSeconds(accelerator) + CONNECT_TIMEOUT_MS / 1000 + n.seconds + 60;
  return { jobSeconds: job, readerSeconds: job + 60 };
}

/** Single-quotes a word for sh. */
export function shq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `sudo bash -s -- <args>`: the script comes on stdin, so nothing is copied to the machine. */
export function stdinScriptCommand(args: readonly string[]): string {
  return ["sudo", "-n", "bash", "-s", "--", ...args.map(shq)].join(" ");
}
