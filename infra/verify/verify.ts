/**
 * Verification: prove the datapath, then measure pod↔pod and host↔host with iperf3, and export
 * numbers that say which datapath produced them.
 *
 * Order of events (each step waits for the one before):
 * 1. namespace `cilium-lab-iperf3` and the two iperf3 server pods on the server node (pod network
 *    and hostNetwork), after the Cilium release is ready (`opts.dependsOn`);
 * 2. `servers-ready` (k3s server, SSH): waits until both servers listen, prints their addresses;
 * 3. evidence: `cilium-state` on the k3s server (cilium-config, CiliumNodes, `cilium[-dbg] status`
 *    in every agent) and `evidence-<node>` on every node (links, routes, pod routes, NIC, offloads,
 *    kernel): the iperf3 server pod exists by now, so the route MTU of the very pod that will be
 *    measured is among the evidence;
 * 4. the verdict (pure, evidence/): if the datapath is not the requested one, `pulumi up` fails
 *    with the evidence in the message, and no Job runs, so no throughput exists to export;
 * 5. client Jobs on the last node, one after another (host 1, pod 1, host 2, …), each followed by
 *    `logs-<path>-<run>` (k3s server, SSH) that waits for the Job and reads its `iperf3 -J` log;
 * 6. statistics (pure, iperf3/) into the `throughput` output.
 *
 * Re-runs: server pods and Jobs are named with a key hashed from the Cilium release digest, the
 * routing mode, the Cilium version, the iperf3 image and settings and the two nodes (jobs.ts
 * `runKey`). Changing any of them renames (replaces) the pods and Jobs; the log readers are
 * triggered by the Job uid, the evidence commands by the release digest, the collector's hash and
 * the server pods' addresses. With unchanged inputs every name, argument and trigger is the same,
 * so a no-op `pulumi up` changes nothing and measures nothing.
 */
import { createHash } from "node:crypto";

import { remote, types as commandTypes } from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import { nodeScript } from "../node-scripts";
import type { CiliumDatapath } from "../cilium/values";
import { requireClusterProvider } from "../k3s/cluster-provider";
import { agentCli, verdictFailureMessage, type DatapathOutput, type RequestedDatapath } from "./evidence";
import type { ThroughputOutput } from "./iperf3";
import {
  NAMESPACE,
  clientJobArgs,
  deadlines,
  iperf3Settings,
  type Deadlines,
  type Iperf3Settings,
  type NodeRef,
  type RunStep,
  namespaceArgs,
  pickPair,
  runKey,
  runSchedule,
  serverPodArgs,
  serverPodName,
  stdinScriptCommand,
} from "./jobs";
import { throughputOf, tryServerAddresses, verdictOf, type ParsedAddresses } from "./outputs";

export { parseServerAddresses, type ServerAddresses } from "./outputs";

/** A short content hash, for triggers. */
function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** A lab node as the verification needs it: the nodes layer's `LabNode` fits. */
export interface VerificationNode {
  /** Kubernetes node name (the VM's hostname): `node-1` … */
  readonly name: string;
  /** The node's address on the lab network (planLab): the host-to-host target, and what its InternalIP must be. */
  readonly ip: string;
  /** SSH connection to the node (infra/nodes), with `hostKey` set; a secret. */
  readonly connection: pulumi.Input<commandTypes.input.remote.ConnectionArgs>;
}

/** The stack config the verification reads. */
export type VerificationConfig = Pick<
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
>;

/** Inputs of {@link Verification}. The Kubernetes provider comes through `opts.provider`. */
export interface VerificationArgs {
  /**
   * The parsed stack config. `routingMode`, `autoDirectNodeRoutes`, `nativeRoutingCidr` and
   * `ciliumVersion` are what the evidence must prove; `iperf3*` shape the runs (image, `-t`, `-O`,
   * `-P`, repetitions); `accelerator: qemu` marks the numbers as not representative and lengthens
   * the waits. Changing the routing mode, the Cilium version or any iperf3 setting re-runs the
   * measurement (new server pods and Jobs); nothing else does.
   */
  readonly config: VerificationConfig;
  /**
   * Every lab node in plan order (node-1 first), with its SSH connection (`LabNodes.nodes`).
   * iperf3's server runs on the second node and its client on the last (node-2 and node-3 with
   * three nodes, as the article); with two nodes the server moves to node-1.
   */
  readonly nodes: readonly VerificationNode[];
  /** The k3s server node (`LabNodes.server`): where `k3s kubectl` runs (the waits, the cluster state, the Job logs). */
  readonly server: VerificationNode;
  /**
   * The Cilium component (or its `datapath` and `digest`): `datapath.configMap` lists the
   * `cilium-config` entries that must have been rendered, and `digest` changes exactly when the
   * release's content does, so the evidence is collected again and the Jobs re-run after every
   * Helm upgrade.
   */
  readonly cilium: { readonly datapath: CiliumDatapath; readonly digest: string };
}

/** What the steps of one Verification share. */
interface Measurement {
  /** The component's name: the prefix of every resource name. */
  readonly name: string;
  readonly config: VerificationConfig;
  readonly settings: Iperf3Settings;
  /** The k3s server: where `k3s kubectl` runs. */
  readonly k3sServer: VerificationNode;
  /** iperf3's server and client nodes. */
  readonly server: NodeRef;
  readonly client: NodeRef;
  /** The run key naming the server pods and Jobs. */
  readonly key: string;
  readonly limits: Deadlines;
  /** Options of every Kubernetes object (parent, provider, deletedWith). */
  readonly k8sOpts: pulumi.CustomResourceOptions;
  /** Options of every remote command (parent, deletedWith). */
  readonly cmdOpts: pulumi.CustomResourceOptions;
}

/** The listening iperf3 servers. */
interface Servers {
  /** `servers-ready`: its stdout is the servers' addresses. */
  readonly ready: remote.Command;
  /** The parsed addresses, or why they could not be read. */
  readonly addresses: pulumi.Output<ParsedAddresses>;
  /** The server pod's IP (empty when unreadable). */
  readonly podIp: pulumi.Output<string>;
}

/**
 * Proves the datapath and measures it. Outputs: `datapath` (requested, observed, verdict, every
 * check and the evidence) and `throughput` (every run, statistics per path in MiB/s and Gbit/s,
 * the paired pod/host ratio beside the article's).
 *
 * Options: `provider` (required: the lab cluster's `kubernetes.Provider`, used for the namespace,
 * pods and Jobs), `dependsOn` (the Cilium release: nothing starts before it is ready), and
 * `deletedWith` (the server VM: `pulumi destroy` then skips deleting pods and Jobs from a cluster
 * that is going away). All three are passed on to the children explicitly.
 */
export class Verification extends pulumi.ComponentResource {
  /** The `datapath` output: requested, observed, verdict, checks and evidence. */
  readonly datapath: pulumi.Output<DatapathOutput>;
  /** The `throughput` output; never resolves to numbers when the verdict refused the datapath. */
  readonly throughput: pulumi.Output<ThroughputOutput>;
  /** The run key naming the server pods and Jobs (see jobs.ts `runKey`). */
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
    const { server, client } = pickPair(nodes);
    this.runKey = runKey({
      ciliumDigest: cilium.digest,
      routingMode: config.routingMode,
      ciliumVersion: config.ciliumVersion,
      settings,
      server: server.name,
      client: client.name,
    });
    const m: Measurement = {
      name,
      config,
      settings,
      k3sServer: args.server,
      server,
      client,
      key: this.runKey,
      limits: deadlines(settings, config.accelerator),
      k8sOpts: { parent: this, provider, deletedWith: opts?.deletedWith },
      cmdOpts: { parent: this, deletedWith: opts?.deletedWith },
    };

    // 1. The servers, once Cilium is ready; 2. both listen.
    const servers = this.startServers(m, opts?.dependsOn);

    // 3. Evidence from both sides.
    const collector = nodeScript("collect-evidence.sh").text;
    const clusterState = this.command(m, "cilium-state", m.k3sServer, {
      args: [agentCli(config.ciliumVersion), String(config.accelerator === "qemu" ? 900 : 300)],
      stdin: nodeScript("collect-cilium-state.sh").text,
      triggers: [cilium.digest, hash(nodeScript("collect-cilium-state.sh").text), servers.ready.stdout],
      dependsOn: [servers.ready],
    });
    const nodeEvidence = nodes.map((n) =>
      this.command(m, `evidence-${n.name}`, n, {
        args: [n.ip],
        stdin: collector,
        triggers: [cilium.digest, hash(collector), servers.ready.stdout],
        dependsOn: [servers.ready],
      }),
    );

    // 4. The verdict.
    const request: RequestedDatapath = {
      routingMode: config.routingMode,
      autoDirectNodeRoutes: config.autoDirectNodeRoutes,
      nativeRoutingCidr: config.nativeRoutingCidr,
      ciliumVersion: config.ciliumVersion,
      configMap: cilium.datapath.configMap,
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
    const schedule = runSchedule(settings.runs, m.key);
    const readers = this.runJobs(m, schedule, servers, gate);

    // 6. The numbers.
    // No `proven` here: the readers exist only once the verdict passed, so a refused datapath leaves
    // this output unresolved. (Serialising an output that rejects with the verdict's error would
    // prefix its message with `error serializing property …`.)
    this.throughput = pulumi.all([servers.podIp, pulumi.all(readers.map((r) => r.stdout))]).apply(([podIp, logs]) => {
      try {
        return throughputOf(m, schedule, logs, podIp);
      } catch (err) {
        throw pulumi.ResourceError.isInstance(err)
          ? err
          : new pulumi.ResourceError(err instanceof Error ? err.message : String(err), this, true);
      }
    });

    this.registerOutputs({ datapath: this.datapath, throughput: this.throughput, runKey: this.runKey });
  }

  /** A script of scripts/ run over SSH stdin on `node` (`<name>-<what>`), its stderr logged. */
  private command(
    m: Measurement,
    what: string,
    node: VerificationNode,
    c: { args: string[]; stdin: string; triggers: pulumi.Input<string>[]; dependsOn: pulumi.Resource[] },
  ): remote.Command {
    return new remote.Command(
      `${m.name}-${what}`,
      {
        connection: node.connection,
        create: stdinScriptCommand(c.args),
        stdin: c.stdin,
        triggers: c.triggers,
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      { ...m.cmdOpts, dependsOn: c.dependsOn },
    );
  }

  /** The namespace, both iperf3 server pods and the wait until both listen (their addresses). */
  private startServers(m: Measurement, after: pulumi.ComponentResourceOptions["dependsOn"]): Servers {
    const namespace = new k8s.core.v1.Namespace(`${m.name}-namespace`, namespaceArgs(), {
      ...m.k8sOpts,
      dependsOn: after,
    });
    const hostServerName = serverPodName("host", m.key);
    const podServerName = serverPodName("pod", m.key);
    const serverPods = (["host", "pod"] as const).map(
      (p) =>
        new k8s.core.v1.Pod(
          `${m.name}-server-${p}`,
          serverPodArgs({ path: p, node: m.server.name, image: m.settings.image, key: m.key }),
          {
            ...m.k8sOpts,
            dependsOn: [namespace],
            // The hostNetwork server binds port 5201 on the node: the old one must go first.
            deleteBeforeReplace: true,
          },
        ),
    );
    const ready = this.command(m, "servers-ready", m.k3sServer, {
      args: [NAMESPACE, String(m.limits.serverReadySeconds), hostServerName, podServerName],
      stdin: nodeScript("wait-iperf3-servers.sh").text,
      triggers: serverPods.map((p) => p.metadata.uid),
      dependsOn: serverPods,
    });
    // Parsed without throwing: a bad document refuses the datapath (one clean error) instead of
    // rejecting every input that uses the pod IP.
    const addresses = ready.stdout.apply((text) => tryServerAddresses(text, hostServerName, podServerName));
    return { ready, addresses, podIp: addresses.apply((s) => ("value" in s ? s.value.pod.podIP : "")) };
  }

  /** One client Job per scheduled run, each followed by its log reader; every Job after `gate`. */
  private runJobs(
    m: Measurement,
    schedule: readonly RunStep[],
    servers: Servers,
    gate: pulumi.Output<pulumi.Resource>,
  ): remote.Command[] {
    let previous: pulumi.Resource = servers.ready;
    const readers: remote.Command[] = [];
    for (const step of schedule) {
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
        { ...m.k8sOpts, dependsOn: [previous, gate], deleteBeforeReplace: true },
      );
      const reader = this.command(m, `logs-${step.path}-${step.run}`, m.k3sServer, {
        args: [NAMESPACE, step.job, String(m.limits.readerSeconds)],
        stdin: nodeScript("read-iperf3-job.sh").text,
        triggers: [job.metadata.uid],
        dependsOn: [job],
      });
      readers.push(reader);
      previous = reader;
    }
    return readers;
  }
}
