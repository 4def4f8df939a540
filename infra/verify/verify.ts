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
 * 4. the verdict (pure, evidence.ts): if the datapath is not the requested one, `pulumi up` fails
 *    with the evidence in the message, and no Job runs, so no throughput exists to export;
 * 5. client Jobs on the last node, one after another (host 1, pod 1, host 2, …), each followed by
 *    `logs-<path>-<run>` (k3s server, SSH) that waits for the Job and reads its `iperf3 -J` log;
 * 6. statistics (pure, iperf3.ts) into the `throughput` output.
 *
 * Re-runs: server pods and Jobs are named with a key hashed from the Cilium release digest, the
 * routing mode, the Cilium version, the iperf3 image and settings and the two nodes (jobs.ts
 * `runKey`). Changing any of them renames (replaces) the pods and Jobs; the log readers are
 * triggered by the Job uid, the evidence commands by the release digest, the collector's hash and
 * the server pods' addresses. With unchanged inputs every name, argument and trigger is the same,
 * so a no-op `pulumi up` changes nothing and measures nothing.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import { remote, types as commandTypes } from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import type { CiliumDatapath } from "../cilium/values";
import {
  agentCli,
  buildEvidence,
  datapathOutput,
  parseClusterFacts,
  parseNodeFacts,
  unreadableEvidence,
  verdictFailureMessage,
  type DatapathOutput,
  type NodeFacts,
  type RequestedDatapath,
} from "./evidence";
import { parseIperf3Json, runRecord, summarizeThroughput, type RunRecord, type ThroughputOutput } from "./iperf3";
import {
  NAMESPACE,
  clientArgs,
  clientJobArgs,
  deadlines,
  iperf3Settings,
  namespaceArgs,
  pickPair,
  runKey,
  runSchedule,
  serverPodArgs,
  serverPodName,
  stdinScriptCommand,
} from "./jobs";

/** The scripts shipped to the machines over SSH stdin (never copied to disk there). */
const SCRIPTS_DIR = path.join(__dirname, "..", "..", "scripts");

/** Reads one of the project's scripts. */
export function readScript(name: string): string {
  return readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
}

/** A short content hash, for triggers. */
function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** A lab node as the verification needs it. */
export interface VerificationNode {
  /** Kubernetes node name (the VM's hostname): `node-1` … */
  readonly name: string;
  /** `server` for the k3s server (where `k3s kubectl` runs), `agent` otherwise. */
  readonly role: "server" | "agent";
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
   * Every lab node in plan order (node-1 first), with its SSH connection. Exactly one has role
   * `server`. iperf3's server runs on the second node and its client on the last (node-2 and
   * node-3 with three nodes, as the article); with two nodes the server moves to node-1.
   */
  readonly nodes: readonly VerificationNode[];
  /**
   * The Cilium component (or its `datapath` and `digest`): `datapath.configMap` lists the
   * `cilium-config` entries that must have been rendered, and `digest` changes exactly when the
   * release's content does, so the evidence is collected again and the Jobs re-run after every
   * Helm upgrade.
   */
  readonly cilium: { readonly datapath: CiliumDatapath; readonly digest: string };
}

/** The server pods' addresses, as scripts/wait-iperf3-servers.sh prints them. */
export interface ServerAddresses {
  readonly host: { readonly name: string; readonly podIP: string; readonly hostIP: string; readonly node: string };
  readonly pod: { readonly name: string; readonly podIP: string; readonly hostIP: string; readonly node: string };
}

/** Parses scripts/wait-iperf3-servers.sh output. */
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

    const provider = this.getProvider("kubernetes:core/v1:Namespace");
    if (provider === undefined) {
      throw new pulumi.ResourceError(
        `Verification "${name}" needs the lab cluster's Kubernetes provider: pass { provider: k8sProvider } in its options. ` +
          `Without it the iperf3 pods would go to whatever cluster ~/.kube/config points at.`,
        this,
      );
    }
    const { config, nodes, cilium } = args;
    const k3sServer = nodes.find((n) => n.role === "server");
    if (k3sServer === undefined || nodes.filter((n) => n.role === "server").length !== 1) {
      throw new pulumi.ResourceError(
        `Verification "${name}" needs exactly one node with role "server" (the k3s server, where k3s kubectl runs); got roles ${nodes.map((n) => `${n.name}=${n.role}`).join(", ")}.`,
        this,
      );
    }
    const settings = iperf3Settings(config);
    const { server, client } = pickPair(nodes);
    const key = runKey({
      ciliumDigest: cilium.digest,
      routingMode: config.routingMode,
      ciliumVersion: config.ciliumVersion,
      settings,
      server: server.name,
      client: client.name,
    });
    this.runKey = key;
    const limits = deadlines(settings, config.accelerator);
    const rolloutSeconds = config.accelerator === "qemu" ? 900 : 300;

    const k8sOpts = { parent: this, provider, deletedWith: opts?.deletedWith };
    const cmdOpts = { parent: this, deletedWith: opts?.deletedWith };
    const asError = (err: unknown): Error =>
      pulumi.ResourceError.isInstance(err)
        ? err
        : new pulumi.ResourceError(err instanceof Error ? err.message : String(err), this, true);

    // 1. The servers, once Cilium is ready.
    const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, namespaceArgs(), {
      ...k8sOpts,
      dependsOn: opts?.dependsOn,
    });
    const hostServerName = serverPodName("host", key);
    const podServerName = serverPodName("pod", key);
    const serverPods = (["host", "pod"] as const).map(
      (p) =>
        new k8s.core.v1.Pod(
          `${name}-server-${p}`,
          serverPodArgs({ path: p, node: server.name, image: settings.image, key }),
          {
            ...k8sOpts,
            dependsOn: [namespace],
            // The hostNetwork server binds port 5201 on the node: the old one must go first.
            deleteBeforeReplace: true,
          },
        ),
    );

    // 2. Both listen.
    const serversReady = new remote.Command(
      `${name}-servers-ready`,
      {
        connection: k3sServer.connection,
        create: stdinScriptCommand([NAMESPACE, String(limits.serverReadySeconds), hostServerName, podServerName]),
        stdin: readScript("wait-iperf3-servers.sh"),
        triggers: serverPods.map((p) => p.metadata.uid),
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      { ...cmdOpts, dependsOn: serverPods },
    );
    // Parsed without throwing: a bad document refuses the datapath below (one clean error) instead
    // of rejecting every input that uses the pod IP.
    const servers = serversReady.stdout.apply((text): { value: ServerAddresses } | { error: string } => {
      try {
        return { value: parseServerAddresses(text, hostServerName, podServerName) };
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) };
      }
    });
    const serverPodIp = servers.apply((s) => ("value" in s ? s.value.pod.podIP : ""));

    // 3. Evidence from both sides.
    const collector = readScript("collect-evidence.sh");
    const evidenceTriggers = [cilium.digest, hash(collector), serversReady.stdout];
    const clusterState = new remote.Command(
      `${name}-cilium-state`,
      {
        connection: k3sServer.connection,
        create: stdinScriptCommand([agentCli(config.ciliumVersion), String(rolloutSeconds)]),
        stdin: readScript("collect-cilium-state.sh"),
        triggers: [cilium.digest, hash(readScript("collect-cilium-state.sh")), serversReady.stdout],
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      { ...cmdOpts, dependsOn: [serversReady] },
    );
    const nodeEvidence = nodes.map(
      (n) =>
        new remote.Command(
          `${name}-evidence-${n.name}`,
          {
            connection: n.connection,
            create: stdinScriptCommand([n.ip]),
            stdin: collector,
            triggers: evidenceTriggers,
            logging: "stderr",
            addPreviousOutputInEnv: false,
          },
          { ...cmdOpts, dependsOn: [serversReady] },
        ),
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
      .all([clusterState.stdout, servers, pulumi.all(nodeEvidence.map((c) => c.stdout))])
      .apply(([state, srv, texts]) => {
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
          ciliumVersion: config.ciliumVersion,
          cluster,
          nodes: nodes.map((n, i) => ({ node: n.name, ip: n.ip, facts: facts[i] as NodeFacts })),
          expectedKeys: Object.keys(cilium.datapath.configMap),
          measuredPods: [{ name: srv.value.pod.name, node: server.name, ip: srv.value.pod.podIP }],
        });
        return datapathOutput(request, evidence);
      });
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
    const schedule = runSchedule(settings.runs, key);
    let previous: pulumi.Resource = serversReady;
    const readers: remote.Command[] = [];
    for (const step of schedule) {
      const job = new k8s.batch.v1.Job(
        `${name}-job-${step.path}-${step.run}`,
        clientJobArgs({
          step,
          node: client.name,
          target: step.path === "host" ? server.ip : serverPodIp,
          settings,
          key,
          activeDeadlineSeconds: limits.jobSeconds,
        }),
        { ...k8sOpts, dependsOn: [previous, gate], deleteBeforeReplace: true },
      );
      const reader = new remote.Command(
        `${name}-logs-${step.path}-${step.run}`,
        {
          connection: k3sServer.connection,
          create: stdinScriptCommand([NAMESPACE, step.job, String(limits.readerSeconds)]),
          stdin: readScript("read-iperf3-job.sh"),
          triggers: [job.metadata.uid],
          logging: "stderr",
          addPreviousOutputInEnv: false,
        },
        { ...cmdOpts, dependsOn: [job] },
      );
      readers.push(reader);
      previous = reader;
    }

    // 6. The numbers.
    // No `proven` here: the readers exist only once the verdict passed, so a refused datapath leaves
    // this output unresolved. (Serialising an output that rejects with the verdict's error would
    // prefix its message with `error serializing property …`.)
    this.throughput = pulumi.all([serverPodIp, pulumi.all(readers.map((r) => r.stdout))]).apply(([podIp, logs]) => {
      try {
        const runs: RunRecord[] = schedule.map((step, i) =>
          runRecord(
            step.path,
            step.run,
            step.order,
            step.job,
            parseIperf3Json(
              logs[i] ?? "",
              `${step.path}-to-${step.path} run ${step.run} (job ${NAMESPACE}/${step.job})`,
            ),
          ),
        );
        return summarizeThroughput({
          runs,
          routingMode: config.routingMode,
          accelerator: config.accelerator,
          settings: {
            image: settings.image,
            seconds: settings.seconds,
            omitSeconds: settings.omitSeconds,
            streams: settings.streams,
            runs: settings.runs,
            clientArgs: clientArgs("<target>", settings),
            server: { node: server.name, hostIp: server.ip, podIp },
            client: { node: client.name },
            order: schedule.map((s) => `${s.path} ${s.run}`).join(", "),
          },
        });
      } catch (err) {
        throw asError(err);
      }
    });

    this.registerOutputs({ datapath: this.datapath, throughput: this.throughput, runKey: this.runKey });
  }
}
