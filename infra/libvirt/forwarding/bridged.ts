/**
 * Bridge mode's netfilter trap. With br_netfilter loaded and `net.bridge.bridge-nf-call-iptables=1`
 * (the kernel's default once the module is loaded), frames the host merely *bridges* between ports
 * of a bridge — node to node, node to the LAN's gateway — also traverse the iptables/nftables
 * `forward` hook, with the bridge as both input and output interface. A FORWARD policy of DROP
 * (Docker sets one) then silently drops the nodes' traffic on the bridge. libvirt's wiki,
 * "Net.bridge.bridge-nf-call and sysctl.conf" (wiki.libvirt.org/Net.bridge.bridge-nf-call_and_sysctl.conf.html):
 * such processing "results in guest traffic being blocked due to host iptables rules that only
 * account for the host itself", and recommends `net.bridge.bridge-nf-call-iptables = 0`.
 *
 * Probes: node-1 (.11) to node-2 (.12) on TCP 22 and 6443, new, and the replies, in and out on the
 * bridge, walked through every forward base chain (no libvirt rules: bridge mode has no libvirt
 * network). Pure.
 */
import { parseCidr } from "../../config/cidr";
import { hostTables, judge, label, type Verdict } from "./evaluate";
import type { ForwardingCheck, ForwardingFacts, ForwardingTarget } from "./gather";
import type { Probe, Table } from "./netfilter";

/** Node-to-node probes on the bridge, and their replies. */
function bridgedProbes(bridge: string, from: number, to: number): Probe[] {
  const request = (dport: number): Probe => ({
    dir: "out",
    bridge,
    iif: bridge,
    oif: bridge,
    saddr: from,
    daddr: to,
    proto: "tcp",
    sport: undefined,
    dport,
    state: "new",
  });
  const requests = [request(22), request(6443)];
  const replies = requests.map((p): Probe => ({
    ...p,
    dir: "in",
    saddr: p.daddr,
    daddr: p.saddr,
    sport: p.dport,
    dport: p.sport,
    state: "established",
  }));
  return [...requests, ...replies];
}

/** The fix in the words of the tool that owns the dropping table. */
function bridgedFix(t: Table, chain: string, bridge: string, backend: "legacy" | "nft" | undefined): string {
  const bin = t.source === `iptables-${backend ?? "nft"}` ? "iptables" : t.source;
  if (t.source !== "nft" && t.chains.has("DOCKER-USER")) {
    // Docker evaluates DOCKER-USER first in FORWARD (docs.docker.com/engine/network/packet-filtering-firewalls/).
    return `\`${bin} -I DOCKER-USER -i ${bridge} -o ${bridge} -j ACCEPT\` (Docker keeps DOCKER-USER first in FORWARD; re-add it after a reboot)`;
  }
  if (t.source === "nft") {
    return `\`nft insert rule ${t.family} ${t.name} ${chain} iifname "${bridge}" oifname "${bridge}" accept\``;
  }
  return `\`${bin} -I ${chain} -i ${bridge} -o ${bridge} -j ACCEPT\``;
}

/**
 * Whether the forward hook passes frames bridged on `target.bridgeName` (to be asked only when
 * bridge-nf-call-iptables is 1): `fail` when some chain surely drops them, `unchecked` when the
 * rules are unreadable (not root) or hinge on a match we cannot judge.
 */
export function evaluateBridgedForwarding(target: ForwardingTarget, facts: ForwardingFacts): ForwardingCheck {
  const bridge = target.bridgeName;
  const cidr = parseCidr(target.networkCidr);
  if (typeof cidr === "string") {
    return { status: "unchecked", detail: `networkCidr ${target.networkCidr} ${cidr}`, fix: "" };
  }
  if (facts.iptablesLegacy === undefined && facts.iptablesNft === undefined && facts.nftJson === undefined) {
    return {
      status: "unchecked",
      detail:
        facts.permissionDenied !== undefined
          ? `the FORWARD rules for frames bridged on ${bridge} not checked (needs root): ${facts.permissionDenied}`
          : `the FORWARD rules for frames bridged on ${bridge} not checked: none of iptables-legacy-save, iptables-nft-save, nft could read them`,
      fix: `run the preflight as root, or look yourself: \`sudo iptables-save | grep -E '^:FORWARD|DOCKER-USER'\`; or turn the trap off: \`sysctl -w net.bridge.bridge-nf-call-iptables=0\``,
    };
  }
  const tables = hostTables(facts);
  const verdicts: Verdict[] = judge(tables, bridgedProbes(bridge, cidr.base + 11, cidr.base + 12), () => false);
  const drop = verdicts.find((v) => v.drop !== undefined);
  const where = `frames bridged on ${bridge} (node to node, node to gateway)`;
  if (drop) {
    return {
      status: "fail",
      detail: `${where} are dropped in ${label(drop.table)} (${drop.drop ?? `chain ${drop.chain.name}`})`,
      fix: bridgedFix(drop.table, drop.chain.name, bridge, facts.iptablesBackend),
    };
  }
  const unsure = verdicts.find((v) => v.unsure !== undefined);
  if (unsure) {
    return {
      status: "unchecked",
      detail: `${where} may be dropped: ${label(unsure.table)} chain ${unsure.chain.name} has a rule this check cannot judge (${unsure.unsure ?? ""})`,
      fix: `if the nodes cannot reach each other, ${bridgedFix(unsure.table, unsure.chain.name, bridge, facts.iptablesBackend)}`,
    };
  }
  return { status: "ok", detail: `${where} pass every forward hook`, fix: "" };
}
