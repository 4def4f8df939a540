/**
 * The k3s layer: one k3s server on node-1 and agents on the other nodes, installed over SSH with
 * k3s's own install script, flannel and network policy off so that Cilium becomes the CNI (the
 * article's cluster). Its outputs are the admin kubeconfig (a secret, pointing at the server's lab
 * address) for the explicit Kubernetes provider, and a resource every Kubernetes object waits for.
 *
 * Per node (see pulumi-command's remote-nodejs example for the shape: a first wait, everything
 * else after it; https://github.com/pulumi/pulumi-command/tree/v1.2.1/examples):
 *   wait (cloud-init done) → [online: probe the upstreams, scripts/probe-upstreams.sh] → prepare
 *   (modules, sysctls, address, staging dir) → copy the install and uninstall scripts [and the
 *   air-gap files] → install (server first; agents after it).
 * Then, on the server, the kubeconfig read, after every install.
 *
 * Scripts run on the nodes are the files in scripts/: the small ones go on stdin
 * (`bash -s -- args`), the two that need stdin for something else (the token) or must still exist
 * at destroy time are copied to the node. The token is never on a command line: it is the first
 * line of the install command's stdin (the install's other arguments follow it, so the command line
 * pulumi-command prints on failure stays short), which install-k3s.sh writes into a 0600 file.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, resolve } from "node:path";

import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import { KERNEL_MODULES, SYSCTLS } from "../nodes/cloud-init";
import { IPERF3_IMAGE } from "../versions";
import { checkAirgapDir, type AirgapArtifacts } from "./airgap";
import {
  AIRGAP_STAGING_DIR,
  INSTALL_SCRIPT_PATH,
  UNINSTALL_SCRIPT_PATH,
  installCommand,
  installStdin,
  kubeconfigCommand,
  prepareCommand,
  probeCommand,
  rewriteKubeconfigServer,
  serverUrl,
  uninstallCommand,
  upstreamProbes,
  waitCommand,
  type InstallInput,
  type InstallSource,
  type K3sRole,
} from "./args";

/** The repository's scripts/ directory. */
const SCRIPTS_DIR = resolve(__dirname, "../../scripts");

/** A script of scripts/ as the program ships it. */
export interface NodeScript {
  /** Absolute host path. */
  readonly path: string;
  readonly text: string;
  /** Hex SHA-256 of the file. */
  readonly sha256: string;
}

/** Reads `scripts/<name>`. */
export function nodeScript(name: string): NodeScript {
  const path = resolve(SCRIPTS_DIR, name);
  const text = readFileSync(path, "utf8");
  return { path, text, sha256: createHash("sha256").update(text).digest("hex") };
}

/** A lab node as the k3s layer needs it (the nodes layer's plan). */
export interface K3sNodeSpec {
  /** Kubernetes node name and resource name suffix: `node-1`…. */
  readonly name: string;
  /** `server` for node-1, `agent` for the others. */
  readonly role: K3sRole;
  /** The node's fixed lab address. */
  readonly ip: string;
}

/** An SSH connection for `@pulumi/command` (host key pinned, private key secret). */
export type NodeConnection = command.types.input.remote.ConnectionArgs;

/** The inputs of {@link K3sCluster}. */
export interface K3sClusterArgs {
  /**
   * The lab's nodes in plan order: exactly one `server`, first (node-1), then the agents. The
   * server's address becomes the API address in the kubeconfig; changing a node's address replaces
   * its commands (the connection changes).
   */
  readonly nodes: readonly K3sNodeSpec[];
  /**
   * SSH connection per node name, from the nodes layer: `host`, `user`, `privateKey` (a secret) and
   * `hostKey` (the node's pinned OpenSSH public key line; without it `@pulumi/command` would accept
   * any host key). Required for every node.
   */
  readonly connections: Readonly<Record<string, pulumi.Input<NodeConnection>>>;
  /**
   * The VM (libvirt domain) per node name. Every command on a node waits for it (`dependsOn`) and is
   * not deleted on its own when the VM is deleted in the same operation (`deletedWith`): uninstalling
   * k3s from a VM that is going away would only wait for SSH timeouts. Its `id` ties every step to
   * the VM: a replaced VM keeps its address and host key (so the connection does not change), and
   * the new id makes every step run again on it.
   */
  readonly domains: Readonly<Record<string, pulumi.CustomResource>>;
  /**
   * The cluster token (a secret; it is made secret here if it is not). Reaches the nodes only as
   * the install command's stdin and a 0600 file.
   */
  readonly token: pulumi.Input<string>;
  /** The k3s release, `vX.Y.Z+k3sN` (`cilium-lab:k3sVersion`). Changing it upgrades k3s in place. */
  readonly k3sVersion: string;
  /** The pod CIDR (`cilium-lab:podCidr`); k3s's `--cluster-cidr` follows it. */
  readonly podCidr: string;
  /** Let Cilium replace kube-proxy: k3s runs with `--disable-kube-proxy` (`cilium-lab:kubeProxyReplacement`). */
  readonly kubeProxyReplacement: boolean;
  /**
   * `cilium-lab:k3sAirgapDir`: empty installs from the internet (the nodes download k3s's install
   * script and binary from GitHub); else an absolute host directory with `k3s`, `install.sh` and
   * `k3s-airgap-images-amd64.tar.zst` (plus any other image tarballs), checked on the host before
   * any SSH step and copied to every node.
   */
  readonly airgapDir: string;
  /**
   * Seconds a node may take to become reachable and finish cloud-init (`cilium-lab:bootTimeoutSeconds`):
   * bounds the first SSH step's dialing and its `cloud-init status --wait`.
   */
  readonly bootTimeoutSeconds: number;
  /**
   * The iperf3 image the verification pulls (`cilium-lab:iperf3Image`; default: the pinned one in
   * infra/versions.ts). In online mode each node's first step after cloud-init probes its registry,
   * beside k3s's downloads and the k3s and Cilium registries (see upstreamProbes in args.ts).
   */
  readonly iperf3Image?: string;
}

/**
 * Thrown when the nodes, connections and domains given to {@link K3sCluster} do not fit together
 * (a `pulumi.RunError`: printed without a stack trace).
 */
export class K3sArgsError extends pulumi.RunError {
  override name = "K3sArgsError";
}

/** Every problem of the node list against the connections and domains, one line each. */
export function checkNodes(
  nodes: readonly K3sNodeSpec[],
  connectionNames: readonly string[],
  domainNames: readonly string[],
): string[] {
  const problems: string[] = [];
  if (nodes.length === 0) {
    return ["no nodes: the k3s layer needs at least the server node"];
  }
  const servers = nodes.filter((n) => n.role === "server").map((n) => n.name);
  if (servers.length !== 1 || nodes[0]?.role !== "server") {
    problems.push(
      `exactly one server, first in the list, is required (servers: ${servers.join(", ") || "none"}; first: ${nodes[0]?.name ?? "none"})`,
    );
  }
  const seen = new Set<string>();
  for (const key of ["name", "ip"] as const) {
    seen.clear();
    for (const n of nodes) {
      if (seen.has(n[key])) {
        problems.push(`duplicate node ${key} ${n[key]}`);
      }
      seen.add(n[key]);
    }
  }
  for (const n of nodes) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n.name)) {
      problems.push(
        `node name ${JSON.stringify(n.name)} is not a valid Kubernetes node name (lower-case letters, digits, '-')`,
      );
    }
    if (!connectionNames.includes(n.name)) {
      problems.push(`no SSH connection for ${n.name}`);
    }
    if (!domainNames.includes(n.name)) {
      problems.push(`no domain (VM) for ${n.name}`);
    }
  }
  return [...new Set(problems)];
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

    const problems = checkNodes(args.nodes, Object.keys(args.connections), Object.keys(args.domains));
    if (problems.length > 0) {
      throw new K3sArgsError(`the k3s layer got nodes it cannot install:\n${problems.map((p) => `- ${p}`).join("\n")}`);
    }
    // before any SSH step: a wrong air-gap directory fails the program here, preview included.
    const artifacts = args.airgapDir === "" ? undefined : checkAirgapDir(args.airgapDir, args.k3sVersion);
    this.source = artifacts ? "airgap" : "online";

    const scripts = {
      wait: nodeScript("wait-cloud-init.sh"),
      probe: nodeScript("probe-upstreams.sh"),
      prepare: nodeScript("prepare-node.sh"),
      install: nodeScript("install-k3s.sh"),
      uninstall: nodeScript("uninstall-k3s.sh"),
      kubeconfig: nodeScript("read-kubeconfig.sh"),
    };
    const server = args.nodes[0] as K3sNodeSpec;
    this.serverIp = server.ip;
    this.serverUrl = serverUrl(server.ip);
    const token = pulumi.secret(args.token);
    // Dialing the first step's SSH: ~5 s per failed attempt once the back-off saturates (refused
    // connections), so this spans the boot budget (pulumi-command's default, 10, gives up after
    // ~8 s). The nodes layer's connections already wait for SSH; this only raises their limit.
    const dialErrorLimit = Math.max(10, Math.ceil(args.bootTimeoutSeconds / 5));
    const copies: Copy[] = [
      { name: "install-script", source: scripts.install.path, remotePath: INSTALL_SCRIPT_PATH },
      { name: "uninstall-script", source: scripts.uninstall.path, remotePath: UNINSTALL_SCRIPT_PATH },
      ...(artifacts ? airgapCopies(artifacts) : []),
    ];

    const installs: command.remote.Command[] = [];
    for (const node of args.nodes) {
      const connection = args.connections[node.name] as pulumi.Input<NodeConnection>;
      const domain = args.domains[node.name] as pulumi.CustomResource;
      const onNode = { parent: this, deletedWith: domain };
      // steps without a `delete` are replaced when the VM is; the install is updated instead (see
      // installCommand in args.ts: a replacement would run the old uninstall after the new install).
      const triggers = [domain.id];

      const wait = new command.remote.Command(
        `${name}-wait-${node.name}`,
        {
          connection: pulumi
            .output(connection)
            .apply((c) => ({ ...c, dialErrorLimit: Math.max(c.dialErrorLimit ?? 10, dialErrorLimit) })),
          create: waitCommand(node.name, args.bootTimeoutSeconds),
          stdin: scripts.wait.text,
          triggers,
          logging: "stderr",
          addPreviousOutputInEnv: false,
        },
        { ...onNode, dependsOn: [domain] },
      );
      // online only: the node reaches every upstream the install and the first pods need (seconds,
      // instead of a DNS or firewall failure minutes into the install).
      const probe =
        this.source === "online"
          ? new command.remote.Command(
              `${name}-probe-${node.name}`,
              {
                connection,
                create: probeCommand(
                  node.name,
                  upstreamProbes({ k3sVersion: args.k3sVersion, iperf3Image: args.iperf3Image ?? IPERF3_IMAGE }),
                ),
                stdin: scripts.probe.text,
                triggers,
                logging: "stderr",
                addPreviousOutputInEnv: false,
              },
              { ...onNode, dependsOn: [wait] },
            )
          : undefined;
      const prepare = new command.remote.Command(
        `${name}-prepare-${node.name}`,
        {
          connection,
          create: prepareCommand({ node: node.name, nodeIp: node.ip, modules: KERNEL_MODULES, sysctls: SYSCTLS }),
          stdin: scripts.prepare.text,
          triggers,
          logging: "stderr",
          addPreviousOutputInEnv: false,
        },
        { ...onNode, dependsOn: [wait, ...(probe ? [probe] : [])] },
      );
      const copied = copies.map(
        (c) =>
          new command.remote.CopyToRemote(
            `${name}-${c.name}-${node.name}`,
            { connection, source: new pulumi.asset.FileAsset(c.source), remotePath: c.remotePath, triggers },
            { ...onNode, dependsOn: [prepare] },
          ),
      );
      const installInput = (vmId: string): InstallInput => ({
        role: node.role,
        nodeName: node.name,
        nodeIp: node.ip,
        podCidr: args.podCidr,
        kubeProxyReplacement: args.kubeProxyReplacement,
        source: this.source,
        version: args.k3sVersion,
        serverIp: server.ip,
        scriptSha256: scripts.install.sha256,
        vmId,
      });
      const install = new command.remote.Command(
        `${name}-install-${node.name}`,
        {
          connection,
          // a short command line (node, role, the settings users change, a hash of every argument)
          // and the rest of the arguments after the token on stdin: see installCommand in args.ts.
          create: domain.id.apply((vmId) => installCommand(installInput(vmId))),
          delete: uninstallCommand(node.name, node.role),
          // secret, because the token is.
          stdin: pulumi.all([token, domain.id]).apply(([t, vmId]) => installStdin(t, installInput(vmId))),
          logging: "stderr",
          addPreviousOutputInEnv: false,
        },
        {
          ...onNode,
          // agents join a running server.
          dependsOn: [prepare, ...copied, ...(node.role === "agent" ? [installs[0] as command.remote.Command] : [])],
          additionalSecretOutputs: ["stdin"],
        },
      );
      installs.push(install);
    }
    this.installs = installs;

    const serverConnection = args.connections[server.name] as pulumi.Input<NodeConnection>;
    const serverDomain = args.domains[server.name] as pulumi.CustomResource;
    const read = new command.remote.Command(
      `${name}-kubeconfig`,
      {
        connection: serverConnection,
        create: kubeconfigCommand(server.name),
        stdin: scripts.kubeconfig.text,
        triggers: [serverDomain.id],
        logging: "none",
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        deletedWith: serverDomain,
        // after every install: anything using the kubeconfig then finds all nodes registered.
        dependsOn: installs,
        additionalSecretOutputs: ["stdout"],
      },
    );
    this.ready = read;
    // the engine keeps `stdout` secret (additionalSecretOutputs); the wrap keeps the derived value
    // secret too, and makes it visible to mocks, which ignore additionalSecretOutputs.
    this.kubeconfig = pulumi.secret(read.stdout.apply((text) => rewriteKubeconfigServer(text, server.ip)));

    this.registerOutputs({ kubeconfig: this.kubeconfig, serverIp: this.serverIp, serverUrl: this.serverUrl });
  }
}
