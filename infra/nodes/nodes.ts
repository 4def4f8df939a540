/**
 * The nodes layer: from the stack config and the address plan to three (or N) SSH-ready VMs.
 *
 * Resources, in data-flow order (destroy runs it backwards because every edge is an Output):
 * BaseImage (this machine's cache) and LabSecrets → NAT mode only: the Network → per libvirt host
 * (hosts.ts) the stack's StoragePool and a BaseVolume (the image uploaded once into that host's
 * shared base pool) → per node an overlay Volume backed by its host's BaseVolume, a CloudInitDisk
 * seed in the pool and a Domain that consumes the overlay's path, the seed's path, the pool's name
 * and the network's name (or, in bridge mode, the host bridge). So `destroy` deletes the domains,
 * then the overlays and seeds, then the pools (and the network); the base volumes stay (a cache).
 * The Domain's create waits until SSH answers with the pinned host key, so later layers can run
 * commands as soon as it exists.
 *
 * Everything on a libvirt host goes through libvirt's API (pools, volumes, uploads), so the lab
 * runs as a member of group `libvirt`, and on `qemu+ssh://` hosts; the guests' qemu user reads the
 * overlays' backing file in the base pool, which libvirt labels for it.
 *
 * Bridge mode (`networkMode: bridge`): no libvirt network; every node attaches to the host bridge
 * `bridge`, and its seed carries its static address (network-config v2 from the plan's address,
 * prefix, gateway and DNS) and the duplicate-address check that powers the node off on a conflict.
 */
import * as os from "node:os";

import * as pulumi from "@pulumi/pulumi";

import type { LabConfig } from "../config";
import { CloudInitDisk, Domain, Network, Volume, type NetworkArgs } from "../libvirt";
import { poolTargetPath, stackPoolName } from "../libvirt/storage";
import type { LabPlan, PlannedNode } from "../plan";
import { UBUNTU_IMAGE_ROOTS, UBUNTU_IMAGES } from "../versions";
import {
  BaseImage,
  cacheRoot,
  imageFacts,
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  type BaseImageArgs,
} from "../libvirt/base-image";
import { LAB_USER, instanceIdFor, renderMetaData, renderNetworkConfig, renderUserData } from "./cloud-init";
import { hostStorage, storageOf, type HostStorage } from "./hosts";
import { LabSecrets } from "./secrets";

/**
 * An SSH connection for `@pulumi/command` `remote.Command` (structurally its `ConnectionArgs`).
 * The whole object is a secret Output because it holds the private key.
 */
export interface SshConnection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The stack's generated OpenSSH private key. */
  readonly privateKey: string;
  /** The node's pinned host key (`ssh-ed25519 AAAA…`): without it pulumi-command accepts any host key. */
  readonly hostKey: string;
  /** Dial attempts before giving up; the Domain already waited for SSH, so few are needed. */
  readonly dialErrorLimit: number;
  /** Seconds per dial attempt. */
  readonly perDialTimeout: number;
}

/** Dial attempts for later layers' commands (pulumi-command's default is 10). */
export const DIAL_ERROR_LIMIT = 20;
/** Seconds per dial attempt (pulumi-command's default is 15). */
export const PER_DIAL_TIMEOUT = 10;

/** A node as later layers get it: plain facts from the plan, its SSH connection and its VM. */
export interface LabNode {
  /** Hostname and Kubernetes node name: `node-1`…. */
  readonly name: string;
  /** `server` (node-1, the k3s server) or `agent`. */
  readonly role: "server" | "agent";
  /** The node's fixed address on the lab network. */
  readonly ip: string;
  /** The libvirt URI of the host the node runs on (the plan's `hostUri`). */
  readonly hostUri: string;
  /** SSH connection for `remote.Command` (secret; built from the Domain's outputs, so it waits for SSH). */
  readonly connection: pulumi.Output<SshConnection>;
  /** The node's VM: use as `deletedWith` (and its `id` as a trigger) for commands that run on it. */
  readonly domain: Domain;
}

/**
 * The target directory of the stack's libvirt pool on its (first) host,
 * `/var/lib/libvirt/images/<network name>`: libvirtd creates and owns it.
 */
export function defaultPoolDir(plan: Pick<LabPlan, "networkName">): string {
  return poolTargetPath(stackPoolName(plan.networkName));
}

/** The {@link BaseImage} arguments for the configured `image` (pure); a custom image has no Ubuntu pin. */
export function baseImageArgs(
  config: Pick<LabConfig, "image" | "imageUrl" | "imageSha256">,
  cacheDir: string,
  keyringPath: string = UBUNTU_CLOUDIMAGE_KEYRING,
  signingKeyFingerprint: string = UBUNTU_CLOUDIMAGE_FINGERPRINT,
): BaseImageArgs {
  const pin = config.image === "custom" ? undefined : UBUNTU_IMAGES[config.image];
  return {
    image: config.image,
    url: pin ? "" : config.imageUrl,
    expectedSha256: pin ? "" : config.imageSha256.toLowerCase(),
    keyringPath: pin ? keyringPath : "",
    cacheDir,
    release: pin?.release ?? "",
    codename: pin?.codename ?? "",
    pinnedSerial: pin?.serial ?? "",
    fileName: pin?.fileName ?? "",
    roots: pin ? [...UBUNTU_IMAGE_ROOTS] : [],
    resolveLatest: pin?.resolveLatest ?? false,
    signingKeyFingerprint: pin ? signingKeyFingerprint : "",
  };
}

/** What the stack's base image is, as resolved once by its create (the `versions` stack output). */
export interface BaseImageFacts {
  /** Ubuntu serial used (`20240423`); empty for a custom image. */
  readonly serial: string;
  /** The directory URL it came from (Ubuntu) or the custom image's URL/path. */
  readonly source: string;
  readonly sha256: string;
}

/** Arguments of {@link LabNodes}. */
export interface LabNodesArgs {
  /**
   * The parsed stack config. Used: image/imageUrl/imageSha256 (base image), networkMode, bridge,
   * networkCidr and networkMtu (network), nodeCpus, nodeMemoryMiB, nodeDiskGiB, accelerator,
   * libvirtUri, bootTimeoutSeconds (VMs) and sshAuthorizedKey (authorized besides the generated
   * key); the hosts, gateway and DNS come from the plan. Changing sizes or the image replaces VMs;
   * changing networkMtu replaces the network and every VM.
   */
  readonly config: LabConfig;
  /** `planLab(config, stack)`: names, MACs, addresses and hosts of the network and every node. */
  readonly plan: LabPlan;
  /** The Pulumi stack: written into libvirt ownership stamps and key comments. */
  readonly stack: string;
  /**
   * Image cache root shared by all stacks. Default `$CILIUM_LAB_CACHE`, else
   * `$XDG_CACHE_HOME/cilium-lab`, else `~/.cache/cilium-lab`. Changing it downloads the image again.
   */
  readonly cacheDir?: string;
  /** Keyring that must have signed an Ubuntu release's SHA256SUMS. Default Ubuntu's cloud-image keyring. */
  readonly keyringPath?: string;
  /** Fingerprint of the key whose valid signature SHA256SUMS needs. Default Ubuntu's cloud-image key. */
  readonly signingKeyFingerprint?: string;
}

/**
 * The lab's VMs (`lab:nodes:LabNodes`): verified base image, generated keys and token, the libvirt
 * network and one SSH-ready Domain per planned node. Gives later layers every node as one list
 * (plain facts, a secret SSH connection with the host key pinned, its Domain for `deletedWith`), the
 * k3s server among them, and the k3s token.
 */
export class LabNodes extends pulumi.ComponentResource {
  /** Every node, in plan order (`node-1`, the k3s server, first). */
  readonly nodes: readonly LabNode[];
  /** The k3s server node (node-1): the API address, where `k3s kubectl` runs, what the cluster is deleted with. */
  readonly server: LabNode;
  /** The k3s cluster token (secret), generated once per stack. */
  readonly k3sToken: pulumi.Output<string>;
  /** The generated login key's public line. */
  readonly sshPublicKey: pulumi.Output<string>;
  /** The generated login key (secret). */
  readonly sshPrivateKey: pulumi.Output<string>;
  /** Node name → pinned host public key line. */
  readonly hostPublicKeys: pulumi.Output<Record<string, string>>;
  /** The libvirt NAT network; undefined in bridge mode. */
  readonly network: Network | undefined;
  /** The base image in this machine's cache. */
  readonly baseImage: BaseImage;
  /** Per libvirt host URI: the stack's pool there and the base image uploaded to it. */
  readonly hosts: ReadonlyMap<string, HostStorage>;
  /** Serial, source and SHA-256 of the base image, resolved once (also for stacks made before they were recorded). */
  readonly baseImageFacts: pulumi.Output<BaseImageFacts>;

  constructor(name: string, args: LabNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("lab:nodes:LabNodes", name, {}, opts);
    const { config, plan, stack } = args;
    const cacheDir = args.cacheDir ?? cacheRoot(process.env, os.homedir());

    this.baseImage = new BaseImage(
      `${name}-image`,
      baseImageArgs(config, cacheDir, args.keyringPath, args.signingKeyFingerprint),
      { parent: this },
    );
    this.baseImageFacts = factsOf(this.baseImage);

    const secrets = new LabSecrets(
      `${name}-secrets`,
      { nodes: plan.nodes.map((n) => n.name), comment: plan.networkName },
      { parent: this },
    );
    // Mocks ignore additionalSecretOutputs; wrapping makes the secrecy visible (and testable) here.
    this.sshPrivateKey = pulumi.secret(secrets.sshPrivateKey);
    this.k3sToken = pulumi.secret(secrets.k3sToken);
    this.sshPublicKey = secrets.sshPublicKey;
    this.hostPublicKeys = secrets.hostPublicKeys;

    this.network =
      config.networkMode === "bridge"
        ? undefined
        : new Network(`${name}-network`, networkArgs(config, plan, stack), { parent: this });
    this.hosts = hostStorage(name, plan, stack, this.baseImage, this);
    const shared: SharedNodeInputs = {
      name,
      config,
      plan,
      stack,
      userPublicKey: secrets.sshPublicKey,
      hostPrivateKeys: pulumi.secret(secrets.hostPrivateKeys),
    };
    this.nodes = plan.nodes.map((node) => this.newNode(node, shared));
    this.server = serverOf(this.nodes);
    this.registerOutputs({
      nodes: this.nodes.map(({ name: n, role, ip }) => ({ name: n, role, ip })),
      nodeHosts: Object.fromEntries(this.nodes.map((n) => [n.name, n.hostUri])),
      k3sToken: this.k3sToken,
      sshPublicKey: this.sshPublicKey,
      hostPublicKeys: this.hostPublicKeys,
      baseImage: this.baseImage.path,
      baseImageFacts: this.baseImageFacts,
    });
  }

  /** One node: its overlay disk, its cloud-init seed and its VM, and the SSH connection to it. */
  private newNode(node: PlannedNode, shared: SharedNodeInputs): LabNode {
    const { name, config, stack } = shared;
    const uri = node.hostUri;
    const { pool, base } = storageOf(this.hosts, uri, node.name);
    const disk = new Volume(
      `${name}-disk-${node.name}`,
      {
        uri,
        pool: pool.poolName,
        name: `${node.name}.qcow2`,
        backingPath: base.path,
        sizeGiB: config.nodeDiskGiB,
        stack,
      },
      { parent: this },
    );
    const hostPublicKey = this.hostPublicKeys.apply((keys) => hostKeyOf(keys, node.name));
    const seed = new CloudInitDisk(
      `${name}-seed-${node.name}`,
      { uri, pool: pool.poolName, name: `${node.name}-seed`, ...seedData(node, shared, hostPublicKey), stack },
      { parent: this },
    );
    // The constructor made the NAT network exactly when networkMode is not bridge: no network
    // means bridge mode, so the network alone picks the NIC.
    const network = this.network;
    const domain = new Domain(
      `${name}-vm-${node.name}`,
      {
        uri,
        domainName: node.domainName,
        vcpus: config.nodeCpus,
        memoryMiB: config.nodeMemoryMiB,
        diskPath: disk.path,
        seedPath: seed.path,
        ...(network === undefined ? { bridgeName: config.bridge } : { networkName: network.networkName }),
        mac: node.mac,
        ip: node.ip,
        accelerator: config.accelerator,
        pool: pool.poolName,
        consoleLogPath: pulumi.interpolate`${pool.targetPath}/${node.name}-console.log`,
        bootTimeoutSeconds: config.bootTimeoutSeconds,
        sshUser: LAB_USER,
        sshPrivateKey: this.sshPrivateKey,
        hostPublicKey,
        stack,
        // The disk holds only what the seed and k3s put there, and k3s is reinstalled on a new
        // VM (its commands are triggered by the Domain's id): a recreated node starts clean.
        freshDisk: true,
      },
      { parent: this },
    );
    // Built from the Domain's outputs, so a command using it waits for the VM to be SSH-ready.
    const connection = pulumi.secret(
      pulumi
        .all([domain.ip, domain.hostPublicKey, this.sshPrivateKey])
        .apply(([host, hostKey, privateKey]): SshConnection => ({
          host,
          port: 22,
          user: LAB_USER,
          privateKey,
          hostKey,
          dialErrorLimit: DIAL_ERROR_LIMIT,
          perDialTimeout: PER_DIAL_TIMEOUT,
        })),
    );
    return { name: node.name, role: node.role, ip: node.ip, hostUri: uri, connection, domain };
  }
}

/** What every node of one LabNodes shares. */
interface SharedNodeInputs {
  /** The component's name: the prefix of every resource name. */
  readonly name: string;
  readonly config: LabConfig;
  readonly plan: LabPlan;
  readonly stack: string;
  /** The generated login key's public line. */
  readonly userPublicKey: pulumi.Output<string>;
  /** Node name → host private key (secret). */
  readonly hostPrivateKeys: pulumi.Output<Record<string, string>>;
}

/**
 * The Network arguments: one NAT network with a DHCP reservation per planned node, at the configured
 * MTU. The MTU reaches the nodes' NICs when they start (see `NetworkArgs.mtu`), and Cilium takes its
 * MTU from the NIC; the default 1500 gives the network XML every earlier version wrote.
 */
function networkArgs(config: LabConfig, plan: LabPlan, stack: string): NetworkArgs {
  return {
    uri: config.libvirtUri,
    networkName: plan.networkName,
    bridgeName: plan.bridgeName,
    cidr: config.networkCidr,
    gateway: plan.gateway,
    hosts: plan.nodes.map((n) => ({ mac: n.mac, ip: n.ip, hostname: n.name })),
    mtu: config.networkMtu,
    stack,
  };
}

/**
 * A node's cloud-init documents: user-data (secret: it holds the host private key), meta-data,
 * network-config. Bridge mode: the static address from the plan and the duplicate-address check.
 */
function seedData(
  node: PlannedNode,
  shared: SharedNodeInputs,
  hostPublicKey: pulumi.Output<string>,
): { userData: pulumi.Output<string>; metaData: pulumi.Output<string>; networkConfig: string } {
  const { config, plan } = shared;
  const bridged = config.networkMode === "bridge";
  const networkConfig = renderNetworkConfig(
    bridged
      ? { mac: node.mac, static: { address: node.ip, prefix: plan.prefix, gateway: plan.gateway, dns: plan.dns } }
      : { mac: node.mac },
  );
  const userData = pulumi
    .all([shared.userPublicKey, shared.hostPrivateKeys, hostPublicKey])
    .apply(([userKey, privs, pub]) =>
      renderUserData({
        hostname: node.name,
        authorizedKeys: config.sshAuthorizedKey === "" ? [userKey] : [userKey, config.sshAuthorizedKey],
        hostKey: { privateKey: hostKeyOf(privs, node.name), publicKey: pub },
        ...(bridged ? { duplicateAddressCheck: { address: node.ip, mac: node.mac } } : {}),
      }),
    );
  // The instance-id is a hash prefix of the (secret) user-data: it reveals nothing of the keys,
  // so it stays readable in previews.
  const metaData = pulumi.unsecret(
    userData.apply((ud) =>
      renderMetaData({ instanceId: instanceIdFor(node.domainName, ud, networkConfig), hostname: node.name }),
    ),
  );
  return { userData: pulumi.secret(userData), metaData, networkConfig };
}

/** The base image's facts as the `versions` output shows them. */
function factsOf(bi: BaseImage): pulumi.Output<BaseImageFacts> {
  return pulumi
    .all([bi.url, bi.expectedSha256, bi.serial, bi.source, bi.sha256])
    .apply(([url, expectedSha256, serial, source, sha256]) =>
      imageFacts({ url, expectedSha256, serial, source, sha256 }),
    );
}

/** The k3s server of the node list: the plan makes node-1 the server and the config at least 2 nodes. */
function serverOf(nodes: readonly LabNode[]): LabNode {
  const server = nodes[0];
  if (server === undefined || server.role !== "server") {
    throw new Error(
      `the node plan has no server first (nodes: ${nodes.map((n) => `${n.name}=${n.role}`).join(", ") || "none"}): nodeCount must be at least 2`,
    );
  }
  return server;
}

/** A node's entry of a per-node key map; a missing one is a bug in LabSecrets, named as such. */
function hostKeyOf(keys: Readonly<Record<string, string>>, node: string): string {
  const key = keys[node];
  if (key === undefined) {
    throw new Error(
      `LabSecrets has no host key for ${node} (has: ${Object.keys(keys).join(", ")}); run \`pulumi up\` again to add it.`,
    );
  }
  return key;
}
