/**
 * The Verification's outputs from what its commands print (pure): the servers' addresses
 * (scripts/node/wait-iperf3-servers.sh), the `datapath` verdict from the collectors' documents, the
 * `throughput` from the iperf3 Jobs' `iperf3 -J` logs and the `latency` from the netperf Jobs' logs.
 */
import type { LabConfig } from "../config";
import {
  buildEvidence,
  datapathOutput,
  parseClusterFacts,
  parseNodeFacts,
  unreadableEvidence,
  type DatapathOutput,
  type NodeFacts,
  type RequestedDatapath,
} from "./evidence";
import { parseIperf3Json, runRecord, summarizeThroughput, type RunRecord, type ThroughputOutput } from "./iperf3";
import {
  NAMESPACE,
  clientArgs,
  latencyArgs,
  type Iperf3Settings,
  type LatencyStep,
  type NetperfSettings,
  type NodeRef,
  type RunStep,
} from "./jobs";
import {
  NETPERF_TESTS,
  latencyOf,
  latencyRunRecord,
  netserverArgs,
  parseNetperf,
  type LatencyOutput,
  type NetperfTest,
} from "./netperf";

export type { LatencyOutput } from "./netperf";

/** The server pods' addresses, as scripts/node/wait-iperf3-servers.sh prints them. */
export interface ServerAddresses {
  readonly host: { readonly name: string; readonly podIP: string; readonly hostIP: string; readonly node: string };
  readonly pod: { readonly name: string; readonly podIP: string; readonly hostIP: string; readonly node: string };
}

/** Parses scripts/node/wait-iperf3-servers.sh output. */
export function parseServerAddresses(text: string, hostPod: string, podPod: string): ServerAddresses {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`wait-iperf3-servers.sh printed no JSON document: ${text.slice(-300)}`, { cause: err });
  }
  const pods =
    typeof doc === "object" && doc !== null && Array.isArray((doc as { pods?: unknown }).pods)
      ? (doc as { pods: unknown[] }).pods
      : [];
  const find = (name: string) => {
    const p = pods.find(
      (x): x is Record<string, unknown> =>
        typeof x === "object" && x !== null && (x as { name?: unknown }).name === name,
    );
    if (p === undefined || typeof p.podIP !== "string" || p.podIP === "") {
      throw new Error(`wait-iperf3-servers.sh did not report pod ${name}'s IP: ${text.slice(-300)}`);
    }
    return {
      name,
      podIP: p.podIP,
      hostIP: typeof p.hostIP === "string" ? p.hostIP : "",
      node: typeof p.node === "string" ? p.node : "",
    };
  };
  return { host: find(hostPod), pod: find(podPod) };
}

/** The servers' addresses, or why they could not be read. */
export type ParsedAddresses = { readonly value: ServerAddresses } | { readonly error: string };

/** {@link parseServerAddresses} without throwing: a bad document becomes the verdict's problem. */
export function tryServerAddresses(text: string, hostPod: string, podPod: string): ParsedAddresses {
  try {
    return { value: parseServerAddresses(text, hostPod, podPod) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** The `datapath` output from the collectors' documents; a document that cannot be read proves nothing. */
export function verdictOf(
  request: RequestedDatapath,
  nodes: readonly NodeRef[],
  serverNode: string,
  state: string,
  srv: ParsedAddresses,
  texts: readonly string[],
): DatapathOutput {
  // A document that cannot be read proves nothing: the verdict refuses, naming it.
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
      return undefined;
    }
  };
  if ("error" in srv) {
    problems.push(srv.error);
  }
  const cluster = attempt(() => parseClusterFacts(state));
  const facts = nodes.map((n, i) => attempt(() => parseNodeFacts(texts[i] ?? "", n.name)));
  if (cluster === undefined || "error" in srv || problems.length > 0) {
    return unreadableEvidence(request, problems);
  }
  const evidence = buildEvidence({
    ciliumVersion: request.ciliumVersion,
    cluster,
    nodes: nodes.map((n, i) => ({ node: n.name, ip: n.ip, facts: facts[i] as NodeFacts })),
    expectedKeys: Object.keys(request.configMap ?? {}),
    measuredPods: [{ name: srv.value.pod.name, node: serverNode, ip: srv.value.pod.podIP }],
  });
  return datapathOutput(request, evidence);
}

/** The `throughput` output from the Job logs, in schedule order. */
export function throughputOf(
  m: {
    readonly config: Pick<LabConfig, "routingMode" | "accelerator">;
    readonly settings: Iperf3Settings;
    readonly server: NodeRef;
    readonly client: NodeRef;
  },
  schedule: readonly RunStep[],
  logs: readonly string[],
  podIp: string,
): ThroughputOutput {
  const { settings } = m;
  const runs: RunRecord[] = schedule.map((step, i) =>
    runRecord(
      step.path,
      step.run,
      step.order,
      step.job,
      parseIperf3Json(logs[i] ?? "", `${step.path}-to-${step.path} run ${step.run} (job ${NAMESPACE}/${step.job})`),
    ),
  );
  return summarizeThroughput({
    runs,
    routingMode: m.config.routingMode,
    accelerator: m.config.accelerator,
    settings: {
      image: settings.image,
      seconds: settings.seconds,
      omitSeconds: settings.omitSeconds,
      streams: settings.streams,
      runs: settings.runs,
      clientArgs: clientArgs("<target>", settings),
      server: { node: m.server.name, hostIp: m.server.ip, podIp },
      client: { node: m.client.name },
      order: schedule.map((s) => `${s.path} ${s.run}`).join(", "),
    },
  });
}

/** The `latency` output from the netperf Job logs, in latency schedule order. */
export function latencyOutputOf(
  m: {
    readonly config: Pick<LabConfig, "routingMode" | "accelerator">;
    readonly netperf: NetperfSettings;
    readonly server: NodeRef;
    readonly client: NodeRef;
  },
  schedule: readonly LatencyStep[],
  logs: readonly string[],
  podIp: string,
): LatencyOutput {
  const runs = schedule.map((step, i) =>
    latencyRunRecord(
      step.path,
      step.run,
      step.order,
      step.job,
      parseNetperf(
        logs[i] ?? "",
        step.test,
        `${step.path} ${step.test} run ${step.run} (job ${NAMESPACE}/${step.job})`,
      ),
    ),
  );
  const argv = (test: NetperfTest) => ["netperf", ...latencyArgs(test, "<target>", m.netperf.seconds)];
  return latencyOf({
    runs,
    routingMode: m.config.routingMode,
    accelerator: m.config.accelerator,
    settings: {
      image: m.netperf.image,
      seconds: m.netperf.seconds,
      runs: m.netperf.runs,
      tests: NETPERF_TESTS,
      clientArgs: Object.fromEntries(NETPERF_TESTS.map((t) => [t, argv(t)])),
      serverArgs: netserverArgs(),
      server: { node: m.server.name, hostIp: m.server.ip, podIp },
      client: { node: m.client.name },
      order: schedule.map((s) => `${s.test} ${s.path} ${s.run}`).join(", "),
    },
  });
}
