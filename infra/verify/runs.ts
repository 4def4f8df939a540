/**
 * The measurement runs, strictly one after another (schedule.ts `measurementChain`): each client
 * Job waits for the previous run's reader and for the verdict's `gate`, and is followed by its
 * reader (`logs-…`, on the k3s server) that waits for the Job and prints its log; with Hubble on,
 * `hubble-flows` reads the server node's flows for the measured pod right after the last pod-path
 * iperf3 run, and the runs after it also wait for the flow proof it feeds. Nothing here runs before
 * the verdict passed: a refused datapath leaves every Job unregistered, and a failed flow proof
 * every Job after the flow read.
 */
import type { remote } from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { flowReadSeconds } from "./flow-proof";
import { HUBBLE_FLOWS_SCRIPT, hubbleFlowsArgs } from "./hubble";
import {
  IPERF3_PORT,
  NAMESPACE,
  clientJobArgs,
  latencyArgs,
  latencyJobArgs,
  testSlug,
  type ChainLink,
  type LatencyStep,
  type RunStep,
} from "./jobs";
import { scriptCommand, type Measurement } from "./measurement";
import type { Servers } from "./servers";

/** The readers of every run, and the flow read. */
export interface Readers {
  /** iperf3's readers, in iperf3 schedule order. */
  readonly iperf3: remote.Command[];
  /** netperf's readers, in latency schedule order. */
  readonly netperf: remote.Command[];
  /** `hubble-flows`, or `null` with Hubble off. */
  readonly flows: remote.Command | null;
}

/** The reader of one Job: read-iperf3-job.sh serves both tools (its 4th argument names the tool). */
function reader(m: Measurement, what: string, job: k8s.batch.v1.Job, name: string, seconds: number, tool: string) {
  return scriptCommand(m, `logs-${what}`, m.k3sServer, {
    args: tool === "iperf3" ? [NAMESPACE, name, String(seconds)] : [NAMESPACE, name, String(seconds), tool],
    script: "read-iperf3-job.sh",
    triggers: [job.metadata.uid],
    dependsOn: [job],
  });
}

function iperf3Run(m: Measurement, step: RunStep, servers: Servers, after: pulumi.Input<pulumi.Resource>[]) {
  const job = new k8s.batch.v1.Job(
    `${m.name}-job-${step.path}-${step.run}`,
    clientJobArgs({
      step,
      node: m.client.name,
      target: step.path === "host" ? m.server.ip : servers.podIp,
      settings: m.settings,
      key: m.key,
      activeDeadlineSeconds: m.limits.jobSeconds,
    }),
    { ...m.k8sOpts, dependsOn: after, deleteBeforeReplace: true },
  );
  return { job, reader: reader(m, `${step.path}-${step.run}`, job, step.job, m.limits.readerSeconds, "iperf3") };
}

function netperfRun(m: Measurement, step: LatencyStep, servers: Servers, after: pulumi.Input<pulumi.Resource>[]) {
  const what = `${testSlug(step.test)}-${step.path}-${step.run}`;
  const target: pulumi.Input<string> = step.path === "host" ? m.server.ip : servers.podIp;
  const job = new k8s.batch.v1.Job(
    `${m.name}-job-${what}`,
    latencyJobArgs({
      step,
      node: m.client.name,
      args: latencyArgs(step.test, target, m.netperf.seconds),
      image: m.netperf.image,
      key: m.key,
      activeDeadlineSeconds: m.latencyLimits.jobSeconds,
    }),
    { ...m.k8sOpts, dependsOn: after, deleteBeforeReplace: true },
  );
  return reader(m, what, job, step.job, m.latencyLimits.readerSeconds, "netperf");
}

/**
 * Every link of `chain`, each after the one before and after `gate`; the links after the flow read
 * also after `proofGate(flows)`, which rejects when the flow proof fails.
 */
export function runChain(
  m: Measurement,
  chain: readonly ChainLink[],
  servers: Servers,
  gate: pulumi.Output<pulumi.Resource>,
  proofGate: (flows: remote.Command) => pulumi.Output<pulumi.Resource>,
): Readers {
  const gates: pulumi.Output<pulumi.Resource>[] = [gate];
  let previous: pulumi.Resource = servers.ready;
  let lastPodJob: k8s.batch.v1.Job | undefined;
  const readers: { iperf3: remote.Command[]; netperf: remote.Command[]; flows: remote.Command | null } = {
    iperf3: [],
    netperf: [],
    flows: null,
  };
  for (const link of chain) {
    if (link.kind === "iperf3") {
      const run = iperf3Run(m, link.step, servers, [previous, ...gates]);
      readers.iperf3.push(run.reader);
      previous = run.reader;
      lastPodJob = link.step.path === "pod" ? run.job : lastPodJob;
    } else if (link.kind === "netperf") {
      const read = netperfRun(m, link.step, servers, [previous, ...gates]);
      readers.netperf.push(read);
      previous = read;
    } else {
      readers.flows = scriptCommand(m, "hubble-flows", m.k3sServer, {
        args: servers.podIp.apply((ip) =>
          hubbleFlowsArgs({
            node: m.server.name,
            serverPodIp: ip,
            port: IPERF3_PORT,
            timeoutSeconds: flowReadSeconds(m.config.accelerator),
          }),
        ),
        script: HUBBLE_FLOWS_SCRIPT,
        // Again whenever the pod run it reads is new.
        triggers: lastPodJob === undefined ? [] : [lastPodJob.metadata.uid],
        dependsOn: [previous],
      });
      previous = readers.flows;
      gates.push(proofGate(readers.flows));
    }
  }
  return readers;
}
