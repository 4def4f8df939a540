/**
 * The lab's plan: the names and addresses of its libvirt network and of every node, and the libvirt
 * host each node runs on, derived from the stack name and config alone (pure), so every layer and
 * every test agrees on them before any resource exists. (The network itself, the libvirt resource,
 * is created by the nodes layer; in bridge mode there is none.)
 */
import { createHash } from "node:crypto";

import { parseCidr, formatIpv4, type Cidr } from "./config/cidr";
import { KEYS, NODE_HOST_OFFSET, PROJECT, type LabConfig } from "./config";

/** A VM of the lab. */
export interface PlannedNode {
  /** Hostname and Kubernetes node name: `node-1` … `node-N`. */
  readonly name: string;
  /** `server` for node-1 (k3s server), `agent` for the others. */
  readonly role: "server" | "agent";
  /** The fixed address given by the DHCP reservation. */
  readonly ip: string;
  /** The NIC's MAC, unique per stack and node: `52:54:00` (QEMU's prefix) + stack hash + index. */
  readonly mac: string;
  /** The libvirt domain name, `cilium-lab-<stack>-node-N`: unique per host. */
  readonly domainName: string;
  /** The libvirt URI of the node's host: `nodeHosts` round-robin, else `libvirtUri`. */
  readonly hostUri: string;
}

/** The libvirt network and nodes of one stack. */
export interface LabPlan {
  /** libvirt network name, `cilium-lab-<stack>`. */
  readonly networkName: string;
  /** Linux bridge name: at most 15 characters (IFNAMSIZ - 1), `cl-<stack prefix>-<hash>`. */
  readonly bridgeName: string;
  /** NAT: the network's gateway and DNS server, its first host address. Bridge mode: config `gateway`. */
  readonly gateway: string;
  /** The nodes' DNS servers: NAT, the gateway (libvirt's dnsmasq); bridge mode, config `dns` or else the gateway. */
  readonly dns: readonly string[];
  /** The prefix length of the network. */
  readonly prefix: number;
  readonly nodes: readonly PlannedNode[];
  /** The distinct libvirt URIs of the nodes' hosts, in node order. */
  readonly hosts: readonly string[];
}

/** What the plan reads; the keys beyond networkCidr and nodeCount take their defaults when absent. */
export type PlanConfig = Pick<LabConfig, "networkCidr" | "nodeCount"> &
  Partial<Pick<LabConfig, "libvirtUri" | "nodeHosts" | "networkMode" | "gateway" | "dns">>;

/** A short stable hash of project and stack, to tell two stacks' bridges and MACs apart. */
function stackHash(stack: string): string {
  return createHash("sha256").update(`${PROJECT}/${stack}`).digest("hex");
}

/**
 * Plans names and addresses. `stack` must be a valid Pulumi stack name; the parts used in Linux
 * and libvirt names are reduced to `[a-z0-9-]`.
 */
export function planLab(config: PlanConfig, stack: string): LabPlan {
  const cidr = parseCidr(config.networkCidr) as Cidr;
  const hash = stackHash(stack);
  const safe = stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-");
  const hostUris = config.nodeHosts !== undefined && config.nodeHosts.length > 0 ? config.nodeHosts : undefined;
  const uri = config.libvirtUri ?? String(KEYS.libvirtUri.default);
  const nodes = Array.from({ length: config.nodeCount }, (_, i): PlannedNode => {
    const n = i + 1;
    return {
      name: `node-${n}`,
      role: n === 1 ? "server" : "agent",
      ip: formatIpv4(cidr.base + NODE_HOST_OFFSET + n),
      mac: `52:54:00:${hash.slice(0, 2)}:${hash.slice(2, 4)}:${n.toString(16).padStart(2, "0")}`,
      domainName: `${PROJECT}-${safe}-node-${n}`,
      hostUri: hostUris === undefined ? uri : (hostUris[i % hostUris.length] ?? uri),
    };
  });
  const gateway = config.networkMode === "bridge" && config.gateway ? config.gateway : formatIpv4(cidr.base + 1);
  return {
    networkName: `${PROJECT}-${safe}`,
    bridgeName: `cl-${safe.slice(0, 6)}-${hash.slice(0, 4)}`,
    gateway,
    dns: config.networkMode === "bridge" && config.dns !== undefined && config.dns.length > 0 ? config.dns : [gateway],
    prefix: cidr.prefix,
    nodes,
    hosts: [...new Set(nodes.map((node) => node.hostUri))],
  };
}
