/**
 * The k3s layer: one k3s server on node-1 and agents on the other nodes, installed over SSH with
 * k3s's own install script, flannel and network policy off so that Cilium becomes the CNI (the
 * article's cluster). Its outputs are the admin kubeconfig (a secret, pointing at the server's lab
 * address) for the explicit Kubernetes provider, and a resource every Kubernetes object waits for.
 *
 * Per node (see pulumi-command's remote-nodejs example for the shape: a first wait, everything
 * else after it; https://github.com/pulumi/pulumi-command/tree/v1.2.1/examples):
 *   wait (cloud-init done) → [online: probe the upstreams, scripts/node/probe-upstreams.sh] → prepare
 *   (modules, sysctls, address, staging dir) → copy the install and uninstall scripts [and the
 *   air-gap files] → install (server first; agents after it).
 * Then, on the server, the kubeconfig read, after every install.
 *
 * Scripts run on the nodes are the files in scripts/node/, each with lib.sh in front of it
 * (infra/node-scripts.ts; the hash covers both): the small ones go on stdin
 * (`bash -s -- args`), the two that need stdin for something else (the token) or must still exist
 * at destroy time are copied to the node. The token is never on a command line: it is the first
 * line of the install command's stdin (the install's other arguments follow it, so the command line
 * pulumi-command prints on failure stays short), which install-k3s.sh writes into a 0600 file.
 */
import { basename } from "node:path";

import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import { nodeScript, type NodeScript } from "../node-scripts";
import { KERNEL_MODULES, SYSCTLS } from "../nodes/cloud-init";
import { checkAirgapDir, type AirgapArtifacts } from "./airgap";
import {
  AIRGAP_STAGING_DIR,
  INSTALL_SCRIPT_PATH,
  UNINSTALL_SCRIPT_PATH,
  installCommand,
  installStdin,
  kubeconfigCommand,
  prepareCommand,
  serverUrl,
  uninstallCommand,
  waitCommand,
  type InstallInput,
  type InstallSource,
  type K3sRole,
} from "./args";
import { rewriteKubeconfigServer } from "./kubeconfig";
import { probeCommand, upstreamProbes } from "./probe";

/** An SSH connection for `@pulumi/command` (host key pinned, private key secret). */
export type NodeConnection = command.types.input.remote.ConnectionArgs;

/** A lab node as the k3s layer needs it: the nodes layer's `LabNode` fits. */
export interface K3sNode {
  /** Kubernetes node name and resource name suffix: `node-1`…. */
  readonly name: string;
  /** `server` for node-1, `agent` for the others. */
  readonly role: K3sRole;
  /** The node's fixed lab address; changing it replaces its commands (the connection changes). */
  readonly ip: string;
  /**
   * SSH connection: `host`, `user`, `privateKey` (a secret) and `hostKey` (the node's pinned OpenSSH
   * public key line; without it `@pulumi/command` would accept any host key).
   */
  readonly connection: pulumi.Input<NodeConnection>;
  /**
   * The node's VM (libvirt domain). Every command on the node waits for it (`dependsOn`) and is not
   * deleted on its own when the VM is deleted in the same operation (`deletedWith`): uninstalling
   * k3s from a VM that is going away would only wait for SSH timeouts. Its `id` ties every step to
   * the VM: a replaced VM keeps its address and host key (so the connection does not change), and
   * the new id makes every step run again on it.
   */
  readonly domain: pulumi.CustomResource;
}

/**
 * The stack config the k3s layer reads. `k3sVersion`: the release, `vX.Y.Z+k3sN` (changing it
 * upgrades k3s in place). `podCidr`: k3s's `--cluster-cidr`. `kubeProxyReplacement`: k3s runs with
 * `--disable-kube-proxy`. `k3sAirgapDir`: empty installs from the internet (the nodes download k3s's
 * install script and binary from GitHub), else a host directory with `k3s`, `install.sh` and
 * `k3s-airgap-images-amd64.tar.zst` (plus any other image tarballs), checked on the host before any
 * SSH step and copied to every node. `bootTimeoutSeconds`: bounds the first SSH step's dialing and its
 * `cloud-init status --wait`. `iperf3Image`: in online mode each node probes its registry beside
 * k3s's downloads and the k3s and Cilium registries (see upstreamProbes in args.ts).
 */
export type K3sConfig = Pick<
  LabConfig,
  "k3sVersion" | "podCidr" | "kubeProxyReplacement" | "k3sAirgapDir" | "bootTimeoutSeconds" | "iperf3Image"
>;

/** The inputs of {@link K3sCluster}. */
export interface K3sClusterArgs {
  /** The parsed stack config (see {@link K3sConfig}). */
  readonly config: K3sConfig;
  /** The lab's nodes in plan order (`LabNodes.nodes`): the server installs first, the agents after it. */
  readonly nodes: readonly K3sNode[];
  /**
   * The server node, one of `nodes` (`LabNodes.server`): its address becomes the API address in the
   * kubeconfig, and the kubeconfig is read from it.
   */
  readonly server: K3sNode;
  /**
   * The cluster token (a secret; it is made secret here if it is not). Reaches the nodes only as
   * the install command's stdin and a 0600 file.
   */
  readonly token: pulumi.Input<string>;
}

/** The copy of one host file onto a node. */
interface Copy {
  readonly name: string;
  readonly source: string;
  readonly remotePath: string;
}

/** The air-gap files a node gets, with stable resource name suffixes. */
function airgapCopies(artifacts: AirgapArtifacts): Copy[] {
  return [
    { name: "airgap-k3s", source: artifacts.k3sBinary, remotePath: `${AIRGAP_STAGING_DIR}/k3s` },
    { name: "airgap-installer", source: artifacts.installScript, remotePath: `${AIRGAP_STAGING_DIR}/install.sh` },
    ...artifacts.imageTarballs.map((path) => ({
      name: `airgap-image-${basename(path)
        .replace(/[^A-Za-z0-9]+/g, "-")
        .toLowerCase()}`,
      source: path,
      remotePath: `${AIRGAP_STAGING_DIR}/images/${basename(path)}`,
    })),
  ];
}

/** What every node's steps share. */
interface StepInputs {
  /** The component's name: the prefix of every resource name. */
  readonly name: string;
  readonly config: K3sConfig;
  readonly source: InstallSource;
  readonly scripts: Readonly<Record<"wait" | "probe" | "prepare" | "install" | "kubeconfig", NodeScript>>;
  /** Host files copied to every node before its install. */
  readonly copies: readonly Copy[];
  /** The cluster token, secret. */
  readonly token: pulumi.Output<string>;
  readonly serverIp: string;
}

/**
 * k3s on the lab's nodes: the server on node-1, agents on the others, flannel and network policy
 * off, kube-proxy off when Cilium replaces it. Does not wait for nodes to be Ready: without a CNI
 * they stay NotReady until Cilium runs.
 */
export class K3sCluster extends pulumi.ComponentResource {
  /** k3s's admin kubeconfig, pointing at `https://<server lab IP>:6443`. A secret. */
  readonly kubeconfig: pulumi.Output<string>;
  /** The server's lab address. */
  readonly serverIp: string;
  /** `https://<serverIp>:6443`. */
  readonly serverUrl: string;
  /** How k3s was installed. */
  readonly source: InstallSource;
  /** The install command of every node, server first. */
  readonly installs: readonly command.remote.Command[];
  /**
   * Completes after every node's install (server and all agents): the kubeconfig read. Everything
   * Kubernetes waits for it, through the kubeconfig or explicitly with `dependsOn`.
   */
  readonly ready: pulumi.Resource;

  constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("lab:k3s:K3sCluster", name, {}, opts);
    const { config, nodes, server } = args;

    // before any SSH step: a wrong air-gap directory fails the program here, preview included.
    const artifacts = config.k3sAirgapDir === "" ? undefined : checkAirgapDir(config.k3sAirgapDir, config.k3sVersion);
    this.source = artifacts ? "airgap" : "online";
    this.serverIp = server.ip;
    this.serverUrl = serverUrl(server.ip);
    const scripts = {
      wait: nodeScript("wait-cloud-init.sh"),
      probe: nodeScript("probe-upstreams.sh"),
      prepare: nodeScript("prepare-node.sh"),
      install: nodeScript("install-k3s.sh"),
      uninstall: nodeScript("uninstall-k3s.sh"),
      kubeconfig: nodeScript("read-kubeconfig.sh"),
    };
    const steps: StepInputs = {
      name,
      config,
      source: this.source,
      scripts,
      copies: [
        { name: "install-script", source: scripts.install.path, remotePath: INSTALL_SCRIPT_PATH },
        { name: "uninstall-script", source: scripts.uninstall.path, remotePath: UNINSTALL_SCRIPT_PATH },
        ...(artifacts ? airgapCopies(artifacts) : []),
      ],
      token: pulumi.secret(args.token),
      serverIp: server.ip,
    };

    // The server first; agents join a running server.
    const serverInstall = this.install(server, steps, []);
    const agents = nodes.filter((n) => n.name !== server.name);
    this.installs = [serverInstall, ...agents.map((n) => this.install(n, steps, [serverInstall]))];

    const read = this.readKubeconfig(server, steps, this.installs);
    this.ready = read;
    // the engine keeps `stdout` secret (additionalSecretOutputs); the wrap keeps the derived value
    // secret too, and makes it visible to mocks, which ignore additionalSecretOutputs.
    this.kubeconfig = pulumi.secret(read.stdout.apply((text) => rewriteKubeconfigServer(text, server.ip)));

    this.registerOutputs({ kubeconfig: this.kubeconfig, serverIp: this.serverIp, serverUrl: this.serverUrl });
  }

  /**
   * A node's steps before its install: wait (cloud-init done) → [online: probe the upstreams] →
   * prepare → copy the scripts [and the air-gap files]. Returns what the install waits for.
   */
  private prepare(node: K3sNode, s: StepInputs): pulumi.Resource[] {
    const { connection, domain } = node;
    const onNode = { parent: this, deletedWith: domain };
    // steps without a `delete` are replaced when the VM is; the install is updated instead (see
    // installCommand in args.ts: a replacement would run the old uninstall after the new install).
    const triggers = [domain.id];
    const step = (what: string, create: string, stdin: string, dependsOn: pulumi.Resource[]) =>
      new command.remote.Command(
        `${s.name}-${what}-${node.name}`,
        { connection, create, stdin, triggers, logging: "stderr", addPreviousOutputInEnv: false },
        { ...onNode, dependsOn },
      );
    // Dialing the first step's SSH: ~5 s per failed attempt once the back-off saturates (refused
    // connections), so this spans the boot budget (pulumi-command's default, 10, gives up after
    // ~8 s). The nodes layer's connections already wait for SSH; this only raises their limit.
    const dialErrorLimit = Math.max(10, Math.ceil(s.config.bootTimeoutSeconds / 5));
    const wait = new command.remote.Command(
      `${s.name}-wait-${node.name}`,
      {
        connection: pulumi
          .output(connection)
          .apply((c) => ({ ...c, dialErrorLimit: Math.max(c.dialErrorLimit ?? 10, dialErrorLimit) })),
        create: waitCommand(node.name, s.config.bootTimeoutSeconds),
        stdin: s.scripts.wait.text,
        triggers,
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      { ...onNode, dependsOn: [domain] },
    );
    // online only: the node reaches every upstream the install and the first pods need (seconds,
    // instead of a DNS or firewall failure minutes into the install).
    const probes = upstreamProbes({
      k3sVersion: s.config.k3sVersion,
      iperf3Image: s.config.iperf3Image,
    });
    const probe =
      s.source === "online" ? step("probe", probeCommand(node.name, probes), s.scripts.probe.text, [wait]) : undefined;
    const prepare = step(
      "prepare",
      prepareCommand({ node: node.name, nodeIp: node.ip, modules: KERNEL_MODULES, sysctls: SYSCTLS }),
      s.scripts.prepare.text,
      [wait, ...(probe ? [probe] : [])],
    );
    const copied = s.copies.map(
      (c) =>
        new command.remote.CopyToRemote(
          `${s.name}-${c.name}-${node.name}`,
          { connection, source: new pulumi.asset.FileAsset(c.source), remotePath: c.remotePath, triggers },
          { ...onNode, dependsOn: [prepare] },
        ),
    );
    return [prepare, ...copied];
  }

  /** A node's k3s install (its `delete` uninstalls k3s), after the node's own steps and `after`. */
  private install(node: K3sNode, s: StepInputs, after: readonly pulumi.Resource[]): command.remote.Command {
    const prepared = this.prepare(node, s);
    const installInput = (vmId: string): InstallInput => ({
      role: node.role,
      nodeName: node.name,
      nodeIp: node.ip,
      podCidr: s.config.podCidr,
      kubeProxyReplacement: s.config.kubeProxyReplacement,
      source: s.source,
      version: s.config.k3sVersion,
      serverIp: s.serverIp,
      scriptSha256: s.scripts.install.sha256,
      vmId,
    });
    return new command.remote.Command(
      `${s.name}-install-${node.name}`,
      {
        connection: node.connection,
        // a short command line (node, role, the settings users change, a hash of every argument)
        // and the rest of the arguments after the token on stdin: see installCommand in args.ts.
        create: node.domain.id.apply((vmId) => installCommand(installInput(vmId))),
        delete: uninstallCommand(node.name, node.role),
        // secret, because the token is.
        stdin: pulumi.all([s.token, node.domain.id]).apply(([t, vmId]) => installStdin(t, installInput(vmId))),
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        deletedWith: node.domain,
        // agents join a running server: `after` is the server's install.
        dependsOn: [...prepared, ...after],
        additionalSecretOutputs: ["stdin"],
      },
    );
  }

  /** The kubeconfig read on the server, after every install: anything using it then finds all nodes registered. */
  private readKubeconfig(
    server: K3sNode,
    s: StepInputs,
    installs: readonly command.remote.Command[],
  ): command.remote.Command {
    return new command.remote.Command(
      `${s.name}-kubeconfig`,
      {
        connection: server.connection,
        create: kubeconfigCommand(server.name),
        stdin: s.scripts.kubeconfig.text,
        triggers: [server.domain.id],
        logging: "none",
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        deletedWith: server.domain,
        dependsOn: [...installs],
        additionalSecretOutputs: ["stdout"],
      },
    );
  }
}
