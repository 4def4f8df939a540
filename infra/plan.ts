/**
 * The lab's plan: the names and addresses of its libvirt network and of every node, derived from
 * the stack name and config alone (pure), so every layer and every test agrees on them before any
 * resource exists. (The network itself, the libvirt resource, is created by the nodes layer.)
 */
import { createHash } from "node:crypto";

import { parseCidr, formatIpv4, type Cidr } from "./config/cidr";
import { NODE_HOST_OFFSET, PROJECT, type LabConfig } from "./config";

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
}

/** The libvirt network and nodes of one stack. */
export interface LabPlan {
  /** libvirt network name, `cilium-lab-<stack>`. */
  readonly networkName: string;
  /** Linux bridge name: at most 15 characters (IFNAMSIZ - 1), `cl-<stack prefix>-<hash>`. */
  readonly bridgeName: string;
  /** The network's gateway and DNS server: the first host address. */
  readonly gateway: string;
  /** The prefix length of the network. */
  readonly prefix: number;
  readonly nodes: readonly PlannedNode[];
}

/** A short stable hash of project and stack, to tell two stacks' bridges and MACs apart. */
function stackHash(stack: string): string {
  return createHash("sha256").update(`${PROJECT}/${stack}`).digest("hex");
}

/**
 * Plans names and addresses. `stack` must be a valid Pulumi stack name; the parts used in Linux
 * and libvirt names are reduced to `[a-z0-9-]`.
 */
export function planLab(config: Pick<LabConfig, "networkCidr" | "nodeCount">, stack: string): LabPlan {
  const cidr = parseCidr(config.networkCidr) as Cidr;
  const hash = stackHash(stack);
  const safe = stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-");
  const nodes = Array.from({ length: config.nodeCount }, (_, i): PlannedNode => {
    const n = i + 1;
    return {
      name: `node-${n}`,
      role: n === 1 ? "server" : "agent",
      ip: formatIpv4(cidr.base + NODE_HOST_OFFSET + n),
      mac: `52:54:00:${hash.slice(0, 2)}:${hash.slice(2, 4)}:${n.toString(16).padStart(2, "0")}`,
      domainName: `${PROJECT}-${safe}-node-${n}`,
    };
  });
  return {
    networkName: `${PROJECT}-${safe}`,
    bridgeName: `cl-${safe.slice(0, 6)}-${hash.slice(0, 4)}`,
    gateway: formatIpv4(cidr.base + 1),
    prefix: cidr.prefix,
    nodes,
  };
}
