/**
 * Which libvirt host each node ran on, read from the stack's `nodeHosts` output (infra/index.ts:
 * one `{ name, host }` per node in node order, `host` being the node's libvirt URI: `libvirtUri`,
 * or `nodeHosts` round-robin), and whether the measured pair ran on one host or two. PURE:
 * collect.ts puts it in the environment, report.ts renders its rows.
 *
 * The URIs are shown as recorded: the lab accepts no password in a libvirt URI, so none can be
 * in them. infra/libvirt/uri.ts takes an authority of `[user@]host[:port]` (no `user:password@`)
 * and only the query parameters `socket`, `keyfile` (the path of a key file, not a key), `command`,
 * `netcat`, `proxy`, `mode`, `no_tty` and `no_verify=0`; the stack config is checked against it before
 * any node exists. Hosts are told apart by URI: two URIs that reach one daemon (qemu:///system and
 * qemu+ssh to loopback) count as two hosts, as they do for the config's rule on the measured pair.
 */
import { pickPair } from "../../infra/verify/schedule";
import type { ModeRun } from "./orchestrate";
import { variantName, type NodeHostsView } from "./results";

/** Where the hosts were read, when a run's stack has the output. */
export const NODE_HOSTS_SOURCE = "stack output nodeHosts";

/** What a run's stack says when it has no `nodeHosts` output (stacks made before it existed). */
export const NODE_HOSTS_NOT_RECORDED = "not recorded (stack without the nodeHosts output)";

/** When no run read the stack's outputs at all (every `up` failed before its outputs). */
export const NODE_HOSTS_NO_OUTPUTS = "not recorded (no run read the stack's outputs)";

/** One node's host, as the stack output lists it. */
export interface NodeHost {
  readonly name: string;
  readonly host: string;
}

/** `a` when every source says `a`, else `x: a; y: b` (undefined when there is none). */
export function agreed(values: readonly { readonly who: string; readonly value: string }[]): string | undefined {
  if (values.length === 0) {
    return undefined;
  }
  const distinct = [...new Set(values.map((v) => v.value))];
  return distinct.length === 1 ? distinct[0] : values.map((v) => `${v.who}: ${v.value}`).join("; ");
}

function isNodeHost(v: unknown): v is NodeHost {
  if (typeof v !== "object" || v === null) {
    return false;
  }
  const o = v as Record<string, unknown>;
  return typeof o.name === "string" && typeof o.host === "string";
}

/** The `nodeHosts` output of one run's stack, or why there is none (never a guess). */
export function nodeHostsOf(
  outputs: Readonly<Record<string, unknown>> | undefined,
): { readonly hosts: readonly NodeHost[] } | { readonly missing: string } {
  if (outputs === undefined || !("nodeHosts" in outputs)) {
    return { missing: NODE_HOSTS_NOT_RECORDED };
  }
  const v = outputs.nodeHosts;
  if (Array.isArray(v) && v.length > 0 && v.every(isNodeHost)) {
    return { hosts: v.map(({ name, host }) => ({ name, host })) };
  }
  return {
    missing: `not recorded (stack output nodeHosts is not a list of { name, host }: ${JSON.stringify(v).slice(0, 200)})`,
  };
}

/**
 * The measured pair (infra/verify/schedule.ts `pickPair`, iperf3 and netperf server ↔ client) and
 * where it ran: `node-2 ↔ node-3 is on two hosts: traffic crosses a NIC`, or `… is on one host:
 * traffic never leaves it`; with fewer than two nodes, that there is no pair.
 */
export function pairPlacement(hosts: readonly NodeHost[]): string {
  if (hosts.length < 2) {
    return `no measured pair: ${hosts.length} node${hosts.length === 1 ? "" : "s"}`;
  }
  const { server, client } = pickPair(hosts.map((h) => ({ name: h.name, ip: h.host })));
  return server.ip === client.ip
    ? `${server.name} ↔ ${client.name} is on one host: traffic never leaves it`
    : `${server.name} ↔ ${client.name} is on two hosts: traffic crosses a NIC`;
}

/**
 * The environment's node hosts over the runs that read their stack's outputs: one value per node
 * when every run agrees, else each run's value (`vxlan: qemu:///system; native: …`), as the other
 * per-node facts are collapsed.
 */
export function nodeHostsView(runs: readonly ModeRun[]): NodeHostsView {
  const read = runs
    .filter((r) => r.outputs !== undefined)
    .map((r) => ({ who: variantName(r), ...nodeHostsOf(r.outputs) }));
  if (read.length === 0) {
    return { source: NODE_HOSTS_NO_OUTPUTS, hosts: {} };
  }
  const source = agreed(read.map((r) => ({ who: r.who, value: "hosts" in r ? NODE_HOSTS_SOURCE : r.missing }))) ?? "";
  const recorded = read.filter((r) => "hosts" in r);
  if (recorded.length === 0) {
    return { source, hosts: {} };
  }
  const names = [...new Set(recorded.flatMap((r) => ("hosts" in r ? r.hosts.map((h) => h.name) : [])))];
  const valueOf = (r: (typeof read)[number], node: string): string =>
    "hosts" in r ? (r.hosts.find((h) => h.name === node)?.host ?? "no such node") : r.missing;
  const hosts: Record<string, string> = {};
  for (const node of names) {
    hosts[node] = agreed(read.map((r) => ({ who: r.who, value: valueOf(r, node) }))) ?? "";
  }
  const pair = agreed(read.map((r) => ({ who: r.who, value: "hosts" in r ? pairPlacement(r.hosts) : r.missing })));
  return { source, hosts, ...(pair !== undefined ? { pair } : {}) };
}

/** report.md's rows for the node hosts: one per node, then the measured pair; or where they are missing. */
export function nodeHostRows(view: NodeHostsView | undefined): [string, string][] {
  if (view === undefined) {
    return [];
  }
  if (Object.keys(view.hosts).length === 0) {
    return [["node hosts", view.source]];
  }
  return [
    ...Object.entries(view.hosts).map(([node, host]): [string, string] => [`${node} host`, host]),
    ...(view.pair !== undefined ? [["measured pair", view.pair] as [string, string]] : []),
  ];
}
