/**
 * What the steps of one Verification share (the `Measurement`), and the one way they run a script
 * of scripts/node/ on a node: over SSH stdin, its stderr logged. The component (verify.ts) builds
 * the Measurement; servers.ts and runs.ts create their resources through it, as children of the
 * component (`cmdOpts` and `k8sOpts` carry `parent`).
 */
import { createHash } from "node:crypto";

import { remote, types as commandTypes } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import { nodeScript } from "../node-scripts";
import {
  stdinScriptCommand,
  type Deadlines,
  type Iperf3Settings,
  type NetperfSettings,
  type NodeRef,
} from "./schedule";

/** A short content hash, for triggers. */
export function hash(text: string): string {
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

/** What the steps of one Verification share. */
export interface Measurement {
  /** The component's name: the prefix of every resource name. */
  readonly name: string;
  readonly config: Pick<LabConfig, "routingMode" | "ciliumVersion" | "accelerator" | "hubble">;
  readonly settings: Iperf3Settings;
  readonly netperf: NetperfSettings;
  /** The k3s server: where `k3s kubectl` runs. */
  readonly k3sServer: VerificationNode;
  /** The measurement's server and client nodes. */
  readonly server: NodeRef;
  readonly client: NodeRef;
  /** The run key naming the server pods and Jobs. */
  readonly key: string;
  /** iperf3's waits (the servers' wait covers netserver too: same pods). */
  readonly limits: Deadlines;
  /** netperf's waits. */
  readonly latencyLimits: Pick<Deadlines, "jobSeconds" | "readerSeconds">;
  /** Options of every Kubernetes object (parent, provider, deletedWith). */
  readonly k8sOpts: pulumi.CustomResourceOptions;
  /** Options of every remote command (parent, deletedWith). */
  readonly cmdOpts: pulumi.CustomResourceOptions;
}

/** A script of scripts/node/ run over SSH stdin on `node` (`<name>-<what>`), its stderr logged. */
export function scriptCommand(
  m: Measurement,
  what: string,
  node: VerificationNode,
  c: {
    args: pulumi.Input<pulumi.Input<string>[]>;
    script: string;
    triggers: pulumi.Input<string>[];
    dependsOn: pulumi.Resource[];
  },
): remote.Command {
  return new remote.Command(
    `${m.name}-${what}`,
    {
      connection: node.connection,
      create: pulumi.output(c.args).apply(stdinScriptCommand),
      stdin: nodeScript(c.script).text,
      triggers: c.triggers,
      logging: "stderr",
      addPreviousOutputInEnv: false,
    },
    { ...m.cmdOpts, dependsOn: c.dependsOn },
  );
}
