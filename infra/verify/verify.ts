/**
 * Verification: prove the datapath, then measure pod↔pod and host↔host with iperf3 (throughput)
 * and netperf (latency), and export numbers that say which datapath produced them.
 *
 * Order of events (each step waits for the one before):
 * 1. namespace `cilium-lab-iperf3` and the two server pods on the server node (pod network and
 *    hostNetwork; iperf3 and netserver in each), after the Cilium release is ready
 *    (`opts.dependsOn`) — servers.ts;
 * 2. `servers-ready` (k3s server, SSH): waits until both servers listen, prints their addresses;
 * 3. evidence: `cilium-state` on the k3s server (cilium-config, CiliumNodes, `cilium[-dbg] status`
 *    in every agent, hubble-relay) and `evidence-<node>` on every node (links, routes, pod routes,
 *    NIC, offloads, kernel): the server pod exists by now, so the route MTU of the very pod that
 *    will be measured is among the evidence;
 * 4. the verdict (pure, evidence/), the routing mode and every feature the config predicts
 *    (infra/cilium/features.ts) against what the agents say: if anything differs, `pulumi up`
 *    fails with both sides in the message, and no Job runs, so no number exists to export;
 * 5. client Jobs on the last node, one after another (iperf3 host 1, pod 1, netperf TCP_RR host 1,
 *    pod 1, TCP_CRR host 1, pod 1, iperf3 host 2, …), each followed by `logs-<run>` (k3s server,
 *    SSH) that waits for the Job and reads its log; with Hubble on, `hubble-flows` reads the
 *    server node's flows of the last pod-path iperf3 run — runs.ts;
 * 6. the flow proof (pure, hubble/): the measured flow went to the overlay in tunnel modes and not
 *    in native. When it fails, `pulumi up` fails with it and no number is exported;
 * 7. statistics (pure, iperf3/ and netperf/) into the `throughput` and `latency` outputs.
 *
 * Re-runs: server pods and Jobs are named with a key hashed from the Cilium release digest, the
 * routing mode, the Cilium version, every feature key, the iperf3 and netperf images and settings
 * and the two nodes (schedule.ts `runKey`). Changing any of them renames (replaces) the pods and
 * Jobs; the log readers and the flow read are triggered by a Job's uid, the evidence commands by
 * the release digest, the collector's hash and the server pods' addresses. With unchanged inputs
 * every name, argument and trigger is the same, so a no-op `pulumi up` changes nothing and
 * measures nothing.
 */
import * as pulumi from "@pulumi/pulumi";

import { predictFeatures, type FeatureConfig } from "../cilium/features";
import type { CiliumDatapath } from "../cilium/values";
import type { LabConfig } from "../config";
import { requireClusterProvider } from "../k3s/cluster-provider";
import { nodeScript } from "../node-scripts";
import { agentCli, verdictFailureMessage, type DatapathOutput, type RequestedDatapath } from "./evidence";
import {
  VERDICT_REFUSED_REASON,
  flowProofFailureMessage,
  flowProofOf,
  type DatapathReport,
  type FlowProofResult,
} from "./flow-proof";
import type { ThroughputOutput } from "./iperf3";
import {
  deadlines,
  iperf3Settings,
  latencyDeadlines,
  latencySchedule,
  measurementChain,
  netperfSettings,
  pickPair,
  runKey,
  runSchedule,
  type LatencyStep,
  type RunStep,
} from "./jobs";
import { hash, scriptCommand, type Measurement, type VerificationNode } from "./measurement";
import { latencyOutputOf, throughputOf, verdictOf, type LatencyOutput } from "./outputs";
import { runChain, type Readers } from "./runs";
import { startServers } from "./servers";

export { parseServerAddresses, type ServerAddresses } from "./outputs";
export type { VerificationNode } from "./measurement";

/** The stack config the verification reads (with everything the feature prediction reads). */
export type VerificationConfig = FeatureConfig &
  Pick<
    LabConfig,
    | "routingMode"
    | "autoDirectNodeRoutes"
    | "nativeRoutingCidr"
    | "ciliumVersion"
    | "accelerator"
    | "iperf3Image"
    | "iperf3Seconds"
    | "iperf3Runs"
    | "iperf3Streams"
    | "iperf3OmitSeconds"
    | "netperfImage"
    | "netperfSeconds"
    | "image"
    | "kubeProxyReplacement"
    | "bpfMasquerade"
    | "hostRouting"
    | "bandwidthManager"
    | "ipv4BigTcp"
    | "networkMtu"
    | "hubble"
  >;

/** Inputs of {@link Verification}. The Kubernetes provider comes through `opts.provider`. */
export interface VerificationArgs {
  /**
   * The parsed stack config. `routingMode`, `autoDirectNodeRoutes`, `nativeRoutingCidr`,
   * `ciliumVersion` and the feature keys are what the evidence must prove (the features as
   * `predictFeatures` predicts them); `iperf3*` and `netperf*` shape the runs (images, lengths,
   * repetitions); `hubble` adds the flow proof; `accelerator: qemu` marks the numbers as not
   * representative and lengthens the waits. Changing the routing mode, the Cilium version, a
   * feature key or any iperf3 or netperf setting re-runs the measurement (new server pods and
   * Jobs); nothing else does.
   */
  readonly config: VerificationConfig;
  /**
   * Every lab node in plan order (node-1 first), with its SSH connection (`LabNodes.nodes`).
   * The servers run on the second node and the clients on the last (node-2 and node-3 with three
   * nodes, as the article); with two nodes the servers move to node-1.
   */
  readonly nodes: readonly VerificationNode[];
  /** The k3s server node (`LabNodes.server`): where `k3s kubectl` runs (the waits, the cluster state, the Job logs, the flows). */
  readonly server: VerificationNode;
  /**
   * The Cilium component (or its `datapath` and `digest`): `datapath.configMap` lists the
   * `cilium-config` entries that must have been rendered, and `digest` changes exactly when the
   * release's content does, so the evidence is collected again and the Jobs re-run after every
   * Helm upgrade.
   */
  readonly cilium: { readonly datapath: CiliumDatapath; readonly digest: string };
}

/**
 * Proves the datapath and measures it. Outputs: `datapath` (requested, observed, verdict, every
 * check, the features and the evidence), `datapathReport` (the same with the flow proof: the
 * exported `datapath`), `throughput` (every run, statistics per path in MiB/s and Gbit/s, the
 * paired pod/host ratio beside the article's) and `latency` (every netperf run, per path and test
 * median and spread in µs and transactions/s).
 *
 * Options: `provider` (required: the lab cluster's `kubernetes.Provider`, used for the namespace,
 * pods and Jobs), `dependsOn` (the Cilium release: nothing starts before it is ready), and
 * `deletedWith` (the server VM: `pulumi destroy` then skips deleting pods and Jobs from a cluster
 * that is going away). All three are passed on to the children explicitly.
 */
export class Verification extends pulumi.ComponentResource {
  /** The verdict: requested, observed, verdict, checks, features and evidence (before any run). */
  readonly datapath: pulumi.Output<DatapathOutput>;
  /** The flow proof of the measured iperf3 flow, or `null` with the reason (Hubble off). */
  readonly flowProof: pulumi.Output<FlowProofResult>;
  /** The `datapath` stack output: the verdict with the flow proof. */
  readonly datapathReport: pulumi.Output<DatapathReport>;
  /** The `throughput` output; never resolves to numbers when the verdict or the flow proof refused. */
  readonly throughput: pulumi.Output<ThroughputOutput>;
  /** The `latency` output; never resolves to numbers when the verdict or the flow proof refused. */
  readonly latency: pulumi.Output<LatencyOutput>;
  /** The run key naming the server pods and Jobs (see schedule.ts `runKey`). */
  readonly runKey: string;

  constructor(name: string, args: VerificationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("lab:verify:Verification", name, {}, opts);

    const provider = requireClusterProvider(
      this,
      `Verification "${name}"`,
      "kubernetes:core/v1:Namespace",
      "the iperf3 pods",
    );
    const { config, nodes, cilium } = args;
    const settings = iperf3Settings(config);
    const netperf = netperfSettings(config);
    const { server, client } = pickPair(nodes);
    this.runKey = runKey({
      ciliumDigest: cilium.digest,
      routingMode: config.routingMode,
      ciliumVersion: config.ciliumVersion,
      features: config,
      settings,
      netperf,
      server: server.name,
      client: client.name,
    });
    const m: Measurement = {
      name,
      config,
      settings,
      netperf,
      k3sServer: args.server,
      server,
      client,
      key: this.runKey,
      limits: deadlines(settings, config.accelerator),
      latencyLimits: latencyDeadlines(netperf, config.accelerator),
      k8sOpts: { parent: this, provider, deletedWith: opts?.deletedWith },
      cmdOpts: { parent: this, deletedWith: opts?.deletedWith },
    };

    // 1. The servers, once Cilium is ready; 2. both listen.
    const servers = startServers(m, opts?.dependsOn);

    // 3. Evidence from both sides.
    const clusterState = scriptCommand(m, "cilium-state", m.k3sServer, {
      args: [agentCli(config.ciliumVersion), String(config.accelerator === "qemu" ? 900 : 300)],
      script: "collect-cilium-state.sh",
      triggers: [cilium.digest, hash(nodeScript("collect-cilium-state.sh").text), servers.ready.stdout],
      dependsOn: [servers.ready],
    });
    const nodeEvidence = nodes.map((n) =>
      scriptCommand(m, `evidence-${n.name}`, n, {
        args: [n.ip],
        script: "collect-evidence.sh",
        triggers: [cilium.digest, hash(nodeScript("collect-evidence.sh").text), servers.ready.stdout],
        dependsOn: [servers.ready],
      }),
    );

    // 4. The verdict: the routing mode and every predicted feature.
    const request: RequestedDatapath = {
      routingMode: config.routingMode,
      autoDirectNodeRoutes: config.autoDirectNodeRoutes,
      nativeRoutingCidr: config.nativeRoutingCidr,
      ciliumVersion: config.ciliumVersion,
      configMap: cilium.datapath.configMap,
      kubeProxyReplacement: config.kubeProxyReplacement,
      features: predictFeatures(config),
      networkMtu: cilium.datapath.networkMtu,
    };
    this.datapath = pulumi
      .all([clusterState.stdout, servers.addresses, pulumi.all(nodeEvidence.map((c) => c.stdout))])
      .apply(([state, srv, texts]) => verdictOf(request, nodes, m.server.name, state, srv, texts));
    // Everything after this point depends on `proven`: a refused datapath rejects it, so no Job is
    // ever created and `pulumi up` fails with the verdict and the evidence.
    const proven = this.datapath.apply((d) => {
      if (d.verdict !== "confirmed") {
        throw new pulumi.ResourceError(verdictFailureMessage(d), this, true);
      }
      return true;
    });
    // As a dependency: resolves to the Cilium state command and carries every evidence command.
    const gate: pulumi.Output<pulumi.Resource> = proven.apply(() => clusterState);

    // 5. The runs, strictly one after another.
    const iperf3Steps = runSchedule(settings.runs, m.key);
    const latencySteps = latencySchedule(netperf.runs, m.key);
    const chain = measurementChain(iperf3Steps, latencySteps, config.hubble);
    // 6. The flow proof, between the last pod iperf3 run and the netperf runs after it: a failed
    // proof rejects their dependency, so they are never created and `pulumi up` fails with it.
    let judged: pulumi.Output<FlowProofResult> | undefined;
    const readers = runChain(m, chain, servers, gate, (flows) => {
      judged = flowProofOf(m, flows, servers.podIp);
      return judged.apply((f) => {
        if (f.flowProof !== null && !f.flowProof.ok) {
          throw new pulumi.ResourceError(flowProofFailureMessage(f.flowProof), this, true);
        }
        return flows;
      });
    });
    this.flowProof = judged ?? flowProofOf(m, null, servers.podIp);
    // A refused verdict runs nothing, so it has no flow proof: the report says so instead of waiting for one.
    const flowProof = this.flowProof;
    this.datapathReport = this.datapath.apply((d) =>
      d.verdict === "confirmed"
        ? flowProof.apply((f): DatapathReport => ({ ...d, ...f }))
        : pulumi.output<DatapathReport>({ ...d, flowProof: null, flowProofReason: VERDICT_REFUSED_REASON }),
    );
    // 7. The numbers, only once the flow proof passed.
    const numbers = this.numbers(m, readers, servers.podIp, iperf3Steps, latencySteps);
    this.throughput = numbers.throughput;
    this.latency = numbers.latency;

    this.registerOutputs({
      datapath: this.datapathReport,
      throughput: this.throughput,
      latency: this.latency,
      runKey: this.runKey,
    });
  }

  /**
   * The `throughput` and `latency` outputs from the readers' logs, once the flow proof passed (or
   * was not taken): after a failed proof neither output ever resolves (the runs after the flow read
   * fail `pulumi up` with the proof).
   */
  private numbers(
    m: Measurement,
    readers: Readers,
    podIp: pulumi.Output<string>,
    iperf3Steps: readonly RunStep[],
    latencySteps: readonly LatencyStep[],
  ): { throughput: pulumi.Output<ThroughputOutput>; latency: pulumi.Output<LatencyOutput> } {
    // No `proven` here: the readers exist only once the verdict passed, so a refused datapath leaves
    // these outputs unresolved. Likewise a failed flow proof never resolves `proofPassed`: serialising
    // an output that rejects with the proof's error would prefix its message with `error serializing
    // property …`; the error is raised once, by the runs after the flow read (runChain's proofGate).
    const proofPassed = this.flowProof.apply((f) =>
      f.flowProof === null || f.flowProof.ok ? Promise.resolve(true) : new Promise<boolean>(() => undefined),
    );
    const of = <T>(logs: pulumi.Output<string>[], build: (texts: string[], ip: string) => T): pulumi.Output<T> =>
      pulumi.all([proofPassed, podIp, pulumi.all(logs)]).apply(([, ip, texts]) => {
        try {
          return build(texts, ip);
        } catch (err) {
          throw pulumi.ResourceError.isInstance(err)
            ? err
            : new pulumi.ResourceError(err instanceof Error ? err.message : String(err), this, true);
        }
      });
    return {
      throughput: of(
        readers.iperf3.map((r) => r.stdout),
        (logs, ip) => throughputOf(m, iperf3Steps, logs, ip),
      ),
      latency: of(
        readers.netperf.map((r) => r.stdout),
        (logs, ip) => latencyOutputOf(m, latencySteps, logs, ip),
      ),
    };
  }
}
