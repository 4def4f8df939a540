/**
 * The config rules about where the nodes run and how they reach the network: `networkMode` with
 * its `bridge`, `gateway` and `dns`, the libvirt URIs (`libvirtUri`, `nodeHosts`) and the keys that
 * only fit one mode. Like rules.ts, each is a named function over the {@link ConfigReader} that reads
 * only values which passed their own key's rules; each problem names the key, the value, what is
 * accepted and the fix.
 */
import { isSshUri, parseLibvirtUri } from "../libvirt/uri";
import { pickPair } from "../verify/schedule";
import { cidrLast, formatIpv4, parseIpv4, type Cidr } from "./cidr";
import { acceptedText, KEYS, NODE_HOST_OFFSET, PROJECT, type KeyName } from "./keys";
import type { ConfigReader } from "./reader";

/** A comma-separated list key (`dns`, `nodeHosts`) as its entries: trimmed, empty entries dropped. */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

/**
 * Why the URI grammar (infra/libvirt/uri.ts) refuses a URI, without the quoted URI it names (the
 * config line quotes the value itself); `undefined`: accepted.
 */
function uriProblem(uri: string): string | undefined {
  const parsed = parseLibvirtUri(uri);
  if (parsed.ok) {
    return undefined;
  }
  const quoted = JSON.stringify(uri);
  const { reason } = parsed;
  if (reason.startsWith(`${quoted}: `)) {
    return reason.slice(quoted.length + 2);
  }
  return reason.endsWith(`; got ${quoted}`) ? reason.slice(0, -`; got ${quoted}`.length) : reason;
}

/** The bridge-mode keys that mean nothing with NAT. */
const BRIDGE_ONLY: readonly KeyName[] = ["bridge", "gateway", "dns"];

/** Node N's address (1-based) in the node network. */
function nodeAddress(network: Cidr, n: number): number {
  return network.base + NODE_HOST_OFFSET + n;
}

/**
 * Bridge mode needs the bridge and the gateway; the gateway is an address of the node network that
 * no node holds; every DNS server is an IPv4 address; the MTU is the bridge's. With NAT the
 * bridge-mode keys are refused rather than ignored, so a half-switched stack is noticed.
 */
export function checkNetworkMode(r: ConfigReader): void {
  const mode = r.get("networkMode");
  if (mode === "nat") {
    for (const key of BRIDGE_ONLY) {
      if (r.text(key) !== "") {
        r.fail(
          key,
          "is only used with networkMode bridge, not nat",
          r.text(key),
          "Remove it, or set networkMode bridge",
        );
      }
    }
    return;
  }
  if (mode !== "bridge") {
    return;
  }
  if (r.text("bridge") === "") {
    r.fail(
      "bridge",
      "is required with networkMode bridge",
      "",
      "The name of an existing, up host bridge such as br0 (`ip -br link show type bridge` lists them)",
    );
  }
  checkGateway(r);
  for (const server of splitList(r.text("dns"))) {
    if (parseIpv4(server) === undefined) {
      r.fail(
        "dns",
        `lists ${JSON.stringify(server)}, which is not an IPv4 address`,
        r.text("dns"),
        acceptedText("dns"),
      );
    }
  }
  const mtu = r.get("networkMtu");
  if (mtu !== undefined && mtu !== KEYS.networkMtu.default) {
    r.fail(
      "networkMtu",
      "must stay 1500 with networkMode bridge: the nodes' MTU is the host bridge's, which the host sets, not this lab",
      mtu,
      "Remove it (`pulumi config rm cilium-lab:networkMtu`) and set the bridge's MTU on the host, or use networkMode nat",
    );
  }
}

/** The gateway is set, an IPv4 address inside networkCidr, and neither its network, broadcast nor a node address. */
function checkGateway(r: ConfigReader): void {
  const text = r.text("gateway");
  const network = r.get("networkCidr");
  const example = network ? formatIpv4(network.base + 1) : "192.168.150.1";
  const accepted = `An IPv4 address inside networkCidr that is no node's address, such as ${example}`;
  if (text === "") {
    r.fail("gateway", "is required with networkMode bridge", text, `${accepted} (the LAN's router)`);
    return;
  }
  const gateway = parseIpv4(text);
  if (gateway === undefined) {
    r.fail("gateway", "is not an IPv4 address", text, accepted);
    return;
  }
  if (!network) {
    return;
  }
  const nodeCount = r.get("nodeCount") ?? 0;
  const node = Array.from({ length: nodeCount }, (_, i) => i + 1).find((n) => nodeAddress(network, n) === gateway);
  if (gateway < network.base || gateway > cidrLast(network)) {
    r.fail("gateway", `is outside networkCidr ${r.text("networkCidr")}`, text, accepted);
  } else if (gateway === network.base || gateway === cidrLast(network)) {
    r.fail("gateway", `is networkCidr ${r.text("networkCidr")}'s network or broadcast address`, text, accepted);
  } else if (node !== undefined) {
    r.fail(
      "gateway",
      `is node-${node}'s address (node N gets host address ${NODE_HOST_OFFSET}+N of networkCidr)`,
      text,
      accepted,
    );
  }
}

/**
 * `libvirtUri` follows the URI grammar of infra/libvirt/uri.ts; a remote one needs bridge mode:
 * behind the remote host's NAT the nodes would be unreachable from the machine that runs Pulumi.
 */
export function checkLibvirtUri(r: ConfigReader): void {
  const uri = r.text("libvirtUri");
  const problem = uriProblem(uri);
  if (problem !== undefined) {
    r.fail("libvirtUri", problem, uri, acceptedText("libvirtUri"));
  } else if (isSshUri(uri) && r.get("networkMode") === "nat") {
    r.fail(
      "libvirtUri",
      "is remote, which needs networkMode bridge: with nat the nodes would sit behind the remote host's NAT, unreachable from this machine",
      uri,
      "Set networkMode bridge (with bridge and gateway of the remote host's LAN), or use qemu:///system",
    );
  }
}

/**
 * `nodeHosts`: bridge mode only (nodes on several hosts meet on a LAN, not on one host's NAT), not
 * with a non-default `libvirtUri`, one valid URI per node at most, and a layout that puts the
 * measured pair (infra/verify/schedule.ts `pickPair`) on different hosts, so their traffic crosses a NIC.
 */
export function checkNodeHosts(r: ConfigReader): void {
  const text = r.text("nodeHosts");
  const hosts = splitList(text);
  if (hosts.length === 0) {
    return;
  }
  const mode = r.get("networkMode");
  if (mode === "nat") {
    r.fail(
      "nodeHosts",
      "requires networkMode bridge: nodes on several hosts reach each other over a LAN, not through one host's NAT",
      text,
      "Set networkMode bridge (with bridge and gateway), or remove nodeHosts",
    );
  }
  const uri = r.text("libvirtUri");
  if (uri !== KEYS.libvirtUri.default) {
    r.fail(
      "nodeHosts",
      `cannot be combined with libvirtUri ${uri}: nodeHosts names every node's host`,
      text,
      `List every host in nodeHosts and remove libvirtUri (\`pulumi config rm ${PROJECT}:libvirtUri\`)`,
    );
  }
  for (const host of hosts) {
    const problem = uriProblem(host);
    if (problem !== undefined) {
      r.fail("nodeHosts", `lists ${JSON.stringify(host)}: ${problem}`, text, acceptedText("nodeHosts"));
    }
  }
  const nodeCount = r.get("nodeCount");
  if (nodeCount !== undefined) {
    checkLayout(r, hosts, nodeCount);
  }
}

/** At most one host per node, and the measured pair on different hosts (with the fix: an order that does it). */
function checkLayout(r: ConfigReader, hosts: readonly string[], nodeCount: number): void {
  const text = r.text("nodeHosts");
  if (hosts.length > nodeCount) {
    r.fail(
      "nodeHosts",
      `lists ${hosts.length} hosts for ${nodeCount} nodes`,
      text,
      `One URI per node (at most ${nodeCount}), or fewer repeated round-robin`,
    );
    return;
  }
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({
    name: `node-${i + 1}`,
    ip: hosts[i % hosts.length] ?? "",
  }));
  const { server, client } = pickPair(nodes);
  if (server.ip !== client.ip) {
    return;
  }
  const distinct = [...new Set(hosts)];
  const where = `puts the measured pair ${server.name} and ${client.name} both on ${server.ip}, so their traffic never crosses a NIC`;
  if (distinct.length < 2) {
    r.fail("nodeHosts", where, text, "List at least two different hosts, or use libvirtUri for a single host");
    return;
  }
  r.fail(
    "nodeHosts",
    where,
    text,
    `Order the list so that ${server.name} and ${client.name} land on different hosts, such as ${suggestLayout(distinct, nodeCount, server.name, client.name)}`,
  );
}

/** One host per node, round-robin over the distinct hosts, with the pair's client moved off the server's host. */
function suggestLayout(distinct: readonly string[], nodeCount: number, server: string, client: string): string {
  const layout = Array.from({ length: nodeCount }, (_, i) => distinct[i % distinct.length] ?? "");
  const serverIndex = Number(server.slice("node-".length)) - 1;
  const clientIndex = Number(client.slice("node-".length)) - 1;
  if (layout[serverIndex] === layout[clientIndex]) {
    layout[clientIndex] = distinct.find((host) => host !== layout[serverIndex]) ?? "";
  }
  return layout.join(",");
}
