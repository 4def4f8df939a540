/**
 * `Network`: the stack's libvirt NAT network with fixed node addresses through DHCP host
 * reservations, an MTU (1500 by default) and the gateway as DNS server; autostart stays off (libvirt's default for
 * defined networks), so a host reboot does not bring lab networks back. Mirrors `libvirt.Network` of
 * the retired `@pulumi/libvirt`.
 *
 * The id is the network's UUID. Host reservations change in place (`virsh net-update --live
 * --config`); anything else replaces the network, deleting first (libvirt names are unique per host).
 * The MTU too: see `NetworkArgs.mtu` for why, and for the VMs that go with it.
 */
import { canonical, isUnknown } from "../../provider";
import { formatArgv, runTool, toolFailure, virsh, virshDefineXml, virshList, virshOk } from "../exec";
import {
  hostNetworkOf,
  networkOf,
  overlapMessage,
  parseLinkNames,
  parseHostRoutes,
  subnetConflicts,
  suggestFreeCidr,
  type HostNetwork,
} from "../hostnet";
import { foreignObjectError, ownedBy, ownedLibvirtResource } from "../owned";
import { dhcpHostXml, networkXml, parseDomainXml, parseNetworkXml, type DhcpHost, type ParsedNetwork } from "../xml";
import { checkNetwork, sortHosts } from "./check";
import type { NetworkArgs, NetworkInputs, NetworkOutputs } from "./types";

/** The outputs for a parsed network. */
function toOutputs(uri: string, net: ParsedNetwork, active: boolean): NetworkOutputs {
  const ip = net.ips[0];
  return {
    uri,
    uuid: net.uuid,
    networkName: net.name,
    bridgeName: net.bridge ?? "",
    cidr: ip ? networkOf(ip.address, ip.prefix) : "",
    gateway: ip?.address ?? "",
    hosts: sortHosts(net.hosts),
    mtu: net.mtu ?? 1500,
    stack: net.owner?.stack ?? "",
    active,
  };
}

/** Whether an existing network of ours already is what the inputs describe. */
function matches(net: ParsedNetwork, inputs: NetworkInputs): boolean {
  const out = toOutputs(inputs.uri, net, true);
  return (
    net.forwardMode === "nat" &&
    out.bridgeName === inputs.bridgeName &&
    out.cidr === inputs.cidr &&
    out.gateway === inputs.gateway &&
    out.mtu === (inputs.mtu ?? 1500) &&
    canonical(out.hosts) === canonical(sortHosts(inputs.hosts))
  );
}

async function dumpNetwork(uri: string, nameOrUuid: string, action: string): Promise<ParsedNetwork> {
  return parseNetworkXml(await virshOk(uri, ["net-dumpxml", nameOrUuid], action, "check that libvirtd is running"));
}

async function activeNames(uri: string, action: string): Promise<Set<string>> {
  return virshList(uri, ["net-list", "--name"], action);
}

/** Every libvirt network with its subnets and owner (for overlap and ownership checks). */
export async function listHostNetworks(uri: string, action: string): Promise<HostNetwork[]> {
  const names = await virshList(uri, ["net-list", "--all", "--name"], action);
  const nets: HostNetwork[] = [];
  for (const name of names) {
    const result = await virsh(uri, ["net-dumpxml", name]);
    if (result.code !== 0) {
      continue; // undefined between list and dump
    }
    nets.push(hostNetworkOf(parseNetworkXml(result.stdout)));
  }
  return nets;
}

async function removeNetwork(uri: string, nameOrUuid: string, action: string): Promise<void> {
  const stop = await virsh(uri, ["net-destroy", nameOrUuid]);
  if (stop.code !== 0 && !/is not active|Network not found/i.test(stop.stderr)) {
    throw toolFailure(action, stop, `stop it by hand: virsh net-destroy ${nameOrUuid}`, uri);
  }
  const r = await virsh(uri, ["net-undefine", nameOrUuid]);
  if (r.code !== 0 && !/Network not found/i.test(r.stderr)) {
    throw toolFailure(action, r, `undefine it by hand: virsh net-undefine ${nameOrUuid}`, uri);
  }
}

async function createNetwork(inputs: NetworkInputs): Promise<{ id: string; outs: NetworkOutputs }> {
  const { uri, networkName: name } = inputs;
  const action = `creating libvirt network "${name}"`;
  const all = await virshList(uri, ["net-list", "--all", "--name"], action);
  if (all.has(name)) {
    const existing = await dumpNetwork(uri, name, action);
    if (!ownedBy(existing.owner, inputs.stack)) {
      const remove = `virsh net-destroy ${name}; virsh net-undefine ${name}`;
      throw foreignObjectError(action, "network", name, inputs.stack, existing.owner, remove);
    }
    // Ours, left by an interrupted run: adopt it when it is what we want, else rebuild it.
    if (matches(existing, inputs)) {
      if (!(await activeNames(uri, action)).has(name)) {
        await virshOk(uri, ["net-start", name], action, `see \`virsh net-start ${name}\``);
      }
      return { id: existing.uuid, outs: toOutputs(uri, existing, true) };
    }
    await removeNetwork(uri, name, action);
  }

  const links = await runTool("ip", ["-j", "link", "show"]);
  if (links.code !== 0) {
    throw toolFailure(action, links, "check that iproute2 works");
  }
  if (parseLinkNames(links.stdout).includes(inputs.bridgeName)) {
    throw new Error(
      `${action} failed: bridge "${inputs.bridgeName}" already exists on the host and belongs to no network of this stack (\`ip link show ${inputs.bridgeName}\`). ` +
        `Nothing was changed. Fix: remove it (\`ip link del ${inputs.bridgeName}\`) if it is a leftover, or use another stack name.`,
    );
  }
  const routes = await runTool("ip", ["-j", "-4", "route", "show", "table", "all"]);
  if (routes.code !== 0) {
    throw toolFailure(action, routes, "check that iproute2 works");
  }
  const hostRoutes = parseHostRoutes(routes.stdout);
  const networks = await listHostNetworks(uri, action);
  const conflicts = subnetConflicts(inputs.cidr, hostRoutes, networks, {
    networkName: name,
    bridgeName: inputs.bridgeName,
    stack: inputs.stack,
  });
  if (conflicts.length > 0) {
    throw new Error(
      `${action} failed: ${overlapMessage(inputs.cidr, name, conflicts, suggestFreeCidr(hostRoutes, networks))} Nothing was changed.`,
    );
  }

  const prefix = Number(inputs.cidr.split("/")[1]);
  const xml = networkXml({
    name,
    bridge: inputs.bridgeName,
    gateway: inputs.gateway,
    prefix,
    mtu: inputs.mtu ?? 1500,
    hosts: inputs.hosts,
    stack: inputs.stack,
  });
  const define = await virshDefineXml(uri, "net-define", "network.xml", xml);
  if (define.code !== 0) {
    throw toolFailure(action, define, "the network XML was refused; see the libvirt message", uri);
  }
  const start = await virsh(uri, ["net-start", name]);
  if (start.code !== 0) {
    await virsh(uri, ["net-undefine", name]);
    throw toolFailure(
      `${action} (starting it)`,
      start,
      `the network was undefined again. Check the message (bridge or address in use?) and \`${formatArgv(["ip", "-4", "route"])}\``,
      uri,
    );
  }
  try {
    const net = await dumpNetwork(uri, name, action);
    return { id: net.uuid, outs: toOutputs(uri, net, true) };
  } catch (error) {
    await removeNetwork(uri, name, action);
    throw error;
  }
}

async function readNetwork(id: string, props: NetworkOutputs): Promise<{ id: string; props?: NetworkOutputs }> {
  const action = `reading libvirt network "${props.networkName}" (${id})`;
  // A listing that succeeds without our UUID is a definite "gone"; any failure throws so a refresh
  // with libvirtd down never drops the network from the state.
  const uuids = await virshList(props.uri, ["net-list", "--all", "--uuid"], action);
  if (!uuids.has(id)) {
    return { id: "" };
  }
  const net = await dumpNetwork(props.uri, id, action);
  const active = (await virshList(props.uri, ["net-list", "--uuid"], action)).has(id);
  return { id, props: toOutputs(props.uri, net, active) };
}

/** Domains (any state) with a NIC on `network`. */
async function domainsOn(uri: string, network: string, action: string): Promise<string[]> {
  const names = await virshList(uri, ["list", "--all", "--name"], action);
  const users: string[] = [];
  for (const name of names) {
    const r = await virsh(uri, ["dumpxml", name]);
    if (r.code === 0 && parseDomainXml(r.stdout).interfaces.some((i) => i.network === network)) {
      users.push(name);
    }
  }
  return users;
}

async function deleteNetwork(id: string, props: NetworkOutputs): Promise<void> {
  const action = `deleting libvirt network "${props.networkName}" (${id})`;
  const uuids = await virshList(props.uri, ["net-list", "--all", "--uuid"], action);
  if (!uuids.has(id)) {
    return;
  }
  const users = await domainsOn(props.uri, props.networkName, action);
  if (users.length > 0) {
    throw new Error(
      `${action} failed: domain(s) ${users.join(", ")} still have a NIC on it. Nothing was deleted. ` +
        `Fix: delete them first (\`virsh destroy <domain>; virsh undefine <domain> --nvram\`), then run the destroy again.`,
    );
  }
  await removeNetwork(props.uri, id, action);
}

async function updateNetwork(id: string, olds: NetworkOutputs, news: NetworkInputs): Promise<{ outs: NetworkOutputs }> {
  const action = `updating libvirt network "${news.networkName}"`;
  const { uri } = news;
  const active = (await virshList(uri, ["net-list", "--uuid"], action)).has(id);
  const key = (h: DhcpHost): string => canonical(h);
  const want = sortHosts(news.hosts);
  const have = sortHosts(olds.hosts);
  const flags = active ? ["--live", "--config"] : ["--config"];
  for (const h of have.filter((o) => !want.some((n) => key(n) === key(o)))) {
    const r = await virsh(uri, ["net-update", id, "delete", "ip-dhcp-host", dhcpHostXml(h), ...flags]);
    if (r.code !== 0 && !/couldn't locate a matching dhcp host/i.test(r.stderr)) {
      throw toolFailure(`${action} (removing reservation ${h.mac} → ${h.ip})`, r, "see the libvirt message", uri);
    }
  }
  for (const h of want.filter((n) => !have.some((o) => key(n) === key(o)))) {
    await virshOk(
      uri,
      ["net-update", id, "add", "ip-dhcp-host", dhcpHostXml(h), ...flags],
      `${action} (adding reservation ${h.mac} → ${h.ip})`,
      "another reservation may use the same MAC, IP or name",
    );
  }
  if (!active) {
    await virshOk(uri, ["net-start", id], `${action} (starting it)`, `see \`virsh net-start ${news.networkName}\``);
  }
  const read = await readNetwork(id, { ...olds, uri });
  if (!read.props) {
    throw new Error(`${action} failed: the network vanished during the update. Fix: run \`pulumi up --refresh\`.`);
  }
  return { outs: read.props };
}

/** Keys whose change replaces the network. */
export const NETWORK_REPLACE_KEYS = ["uri", "networkName", "bridgeName", "cidr", "gateway", "mtu", "stack"] as const;

/** Reservations in a stable order, so the same set compares equal; unknown stays unknown. */
function sortedHosts(hosts: unknown): unknown {
  return Array.isArray(hosts) && !isUnknown(hosts) ? sortHosts(hosts as DhcpHost[]) : hosts;
}

/**
 * The stack's libvirt NAT network (`pulumi-nodejs:dynamic/libvirt:Network`), stamped with our owner
 * metadata, and its provider (one instance shared by every Network). Create adopts a matching
 * leftover of the same stack, rebuilds a differing one, and refuses foreign networks, a taken bridge
 * name and overlapping subnets. Delete refuses while a domain still has a NIC on it. A network
 * stopped by hand is started again by the next `up`. Pass its `networkName` to `Domain.networkName`,
 * so domains are deleted before it.
 */
export const { provider: networkProvider, Resource: Network } = ownedLibvirtResource<
  NetworkArgs,
  NetworkInputs,
  NetworkOutputs
>(
  { type: "Network", startedKey: "active", defaults: { mtu: 1500 } },
  {
    check: checkNetwork,
    normalize: (olds, news) => ({
      olds: { ...olds, hosts: sortedHosts(olds.hosts) },
      news: { ...news, mtu: news.mtu ?? 1500, hosts: sortedHosts(news.hosts) },
    }),
    replaceKeys: NETWORK_REPLACE_KEYS,
    updateKeys: ["hosts"],
  },
  { create: createNetwork, read: readNetwork, update: updateNetwork, delete: deleteNetwork },
);
export type Network = InstanceType<typeof Network>;
