/**
 * The forwarding verdict: the lab's probe packets walked through every forward base chain of the
 * host, with libvirt's own rules for the lab's network added as libvirt will add them.
 *
 * Where libvirt puts its rules (checked on Debian 12, libvirt 9.0.0, with `virsh net-create` and
 * `iptables-save`): chains LIBVIRT_FWX, LIBVIRT_FWI, LIBVIRT_FWO jumped to from the top of FORWARD
 * (`--insert FORWARD --jump LIBVIRT_FWO`…, libvirt src/network/network_iptables.c
 * iptablesSetupPrivateChains), per network `-A LIBVIRT_FWO -s <cidr> -i <bridge> -j ACCEPT` and
 * `-A LIBVIRT_FWI -d <cidr> -o <bridge> -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`.
 * libvirt ≥ 10.4 with the nftables backend: its own table `ip libvirt_network` with chain `forward`
 * ("type filter hook forward priority 0; policy accept;") jumping to guest_output / guest_input /
 * guest_cross (libvirt src/network/network_nftables.c, nftablesChains) — which cannot accept for
 * another table: Docker's or UFW's FORWARD DROP in `ip filter` still drops.
 *
 * `net.ipv4.ip_forward=0` is not judged before the network exists: libvirt sets it to 1 when it
 * starts a NAT network (seen on Debian 12: 0 before `virsh net-create`, 1 after).
 */
import { parseCidr } from "../../config/cidr";
import {
  gatherForwardingFacts,
  hostRunner,
  type ForwardingCheck,
  type ForwardingFacts,
  type ForwardingTarget,
  type Runner,
} from "./gather";
import { parseIptablesTables } from "./iptables";
import { type Chain, type Probe, type Table, walkBaseChain } from "./netfilter";
import { parseNftJson } from "./nft";

/** The check as one call (gather + evaluate): the row `doctor` and the preflight print. */
export function checkForwarding(target: ForwardingTarget, run: Runner = hostRunner): ForwardingCheck {
  return evaluateForwarding(target, gatherForwardingFacts(target, run));
}

const IPTABLES_NFT_TABLES = new Set(["filter", "nat", "mangle", "raw", "security"]);
const LIBVIRT_CHAINS = ["LIBVIRT_FWO", "LIBVIRT_FWI", "LIBVIRT_FWX"];

/** Builds the probe packets for the lab network: node-1 (.11) to the internet and back. */
function probes(bridge: string, node: number, uplink: string | undefined): Probe[] {
  const up = uplink ?? null;
  const request = (proto: Probe["proto"], port: number): Probe => ({
    dir: "out",
    bridge,
    iif: bridge,
    oif: up,
    saddr: node,
    daddr: "internet",
    proto,
    sport: undefined,
    dport: port,
    state: "new",
  });
  // The reply of a request: in on the uplink, addresses and ports swapped, conntrack ESTABLISHED.
  const reply = (p: Probe): Probe => ({
    ...p,
    dir: "in",
    iif: p.oif,
    oif: p.iif,
    saddr: p.daddr,
    daddr: p.saddr,
    sport: p.dport,
    dport: p.sport,
    state: "established",
  });
  const requests = [request("tcp", 443), request("udp", 53)];
  return [...requests, ...requests.map(reply)];
}

/** The rules libvirt adds for the lab's network, as parsed iptables rules (exact lines from `iptables-save` on libvirt 9.0). */
function libvirtIptablesRules(bridge: string, cidr: string): Record<string, string> {
  return {
    LIBVIRT_FWO: `-A LIBVIRT_FWO -s ${cidr} -i ${bridge} -j ACCEPT`,
    LIBVIRT_FWI: `-A LIBVIRT_FWI -d ${cidr} -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    LIBVIRT_FWX: `-A LIBVIRT_FWX -i ${bridge} -o ${bridge} -j ACCEPT`,
  };
}

/**
 * The tables as they will be once libvirt has started the lab's network, under one hypothesis
 * about libvirt's backend: `iptables` (libvirt < 10.4, or firewall_backend=iptables) or `nft`.
 */
function withLibvirt(
  tables: readonly Table[],
  backend: "iptables" | "nft",
  target: ForwardingTarget,
  iptablesBackend: "legacy" | "nft",
): Table[] {
  if (backend === "nft") {
    return [...tables]; // its own table's forward chain has policy accept: nothing of it drops the lab
  }
  const ours = libvirtIptablesRules(target.bridgeName, target.networkCidr);
  const hasChains = tables.some((t) => t.chains.has("LIBVIRT_FWO"));
  return tables.map((t) => {
    const isTarget = hasChains
      ? t.chains.has("LIBVIRT_FWO")
      : t.source === `iptables-${iptablesBackend}` && t.name === "filter";
    if (!isTarget) {
      return t;
    }
    const extra = parseIptablesTables(
      `*filter\n:FORWARD ACCEPT [0:0]\n${LIBVIRT_CHAINS.map((c) => `:${c} - [0:0]`).join("\n")}\n${LIBVIRT_CHAINS.map((c) => ours[c]).join("\n")}\n` +
        LIBVIRT_CHAINS.map((c) => `-A FORWARD -j ${c}`).join("\n") +
        "\nCOMMIT\n",
      t.source === "iptables-legacy" ? "iptables-legacy" : "iptables-nft",
    )[0];
    const chains = new Map<string, Chain>(t.chains);
    for (const name of LIBVIRT_CHAINS) {
      const added = extra?.chains.get(name)?.rules ?? [];
      chains.set(name, { name, rules: [...added, ...(t.chains.get(name)?.rules ?? [])] });
    }
    const fwd = t.chains.get("FORWARD");
    if (!hasChains && fwd) {
      chains.set("FORWARD", { ...fwd, rules: [...(extra?.chains.get("FORWARD")?.rules ?? []), ...fwd.rules] });
    }
    return { ...t, chains };
  });
}

/** All forward base chains of the host, from the three sources (iptables-nft's tables from its own save). */
export function hostTables(facts: ForwardingFacts): Table[] {
  const legacy = facts.iptablesLegacy !== undefined ? parseIptablesTables(facts.iptablesLegacy, "iptables-legacy") : [];
  const viaSave = facts.iptablesNft !== undefined ? parseIptablesTables(facts.iptablesNft, "iptables-nft") : [];
  const nft = facts.nftJson !== undefined ? parseNftJson(facts.nftJson) : [];
  const saved = new Set(viaSave.map((t) => t.name));
  const native = nft.filter((t) => !(t.family === "ip" && IPTABLES_NFT_TABLES.has(t.name) && saved.has(t.name)));
  return [...legacy, ...viaSave, ...native];
}

/** A forward base chain's verdict on one probe that it drops (or on which it hinges on a match we cannot judge). */
export interface Verdict {
  readonly table: Table;
  readonly chain: Chain;
  readonly dir: "out" | "in";
  readonly drop?: string;
  readonly unsure?: string;
}

/** Walks every probe through every forward base chain of the tables not skipped; the drops and the unsure ones. */
export function judge(tables: readonly Table[], ps: readonly Probe[], skip: (t: Table) => boolean): Verdict[] {
  const out: Verdict[] = [];
  for (const table of tables.filter((t) => !skip(t))) {
    for (const chain of [...table.chains.values()].filter((c) => c.hook === "forward")) {
      for (const p of ps) {
        const r = walkBaseChain(table, chain, p);
        if (r.unsure !== undefined) {
          out.push({ table, chain, dir: p.dir, unsure: r.unsure });
        } else if (r.drop !== undefined) {
          out.push({ table, chain, dir: p.dir, drop: r.drop });
        }
      }
    }
  }
  return out;
}

/** A table as the user knows it ("iptables-nft table filter", "nftables table inet firewalld"). */
export const label = (t: Table): string =>
  t.source === "nft" ? `nftables table ${t.family} ${t.name}` : `${t.source} table ${t.name}`;
const iptablesBin = (t: Table, backend: "legacy" | "nft" | undefined): string =>
  t.source === `iptables-${backend ?? "nft"}` ? "iptables" : t.source;

/** The fix for drops in one table, in the words of the tool that owns it. */
function fixFor(
  t: Table,
  chain: Chain,
  dirs: ReadonlySet<string>,
  bridge: string,
  backend: "legacy" | "nft" | undefined,
): string {
  const bin = iptablesBin(t, backend);
  if (t.source !== "nft" && t.chains.has("DOCKER-USER")) {
    // Docker's docs, "Packet filtering and firewalls" (docs.docker.com/engine/network/packet-filtering-firewalls/):
    // rules for forwarded traffic go into DOCKER-USER, which Docker evaluates before its own chains.
    return (
      `\`${bin} -I DOCKER-USER -i ${bridge} -j ACCEPT\` and ` +
      `\`${bin} -I DOCKER-USER -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\` ` +
      "(Docker keeps DOCKER-USER first in FORWARD; re-add them after a reboot, e.g. from a systemd unit after docker.service)"
    );
  }
  if (t.source !== "nft" && t.chains.has("ufw-user-forward")) {
    // ufw's before.rules already accepts RELATED,ESTABLISHED in ufw-before-forward; `route allow`
    // rules go to ufw-user-forward (ufw(8), "ufw route allow in on eth1 out on eth2").
    return `\`ufw route allow in on ${bridge}\`${dirs.has("in") ? ` and \`ufw route allow out on ${bridge}\`` : ""} (UFW's default routed policy is deny)`;
  }
  if (t.source === "nft" && t.family === "inet" && t.name === "firewalld") {
    // libvirt ships zone "libvirt" (target ACCEPT) for its bridges (libvirt src/network/libvirt.zone).
    return `\`firewall-cmd --permanent --zone=libvirt --change-interface=${bridge} && firewall-cmd --reload\``;
  }
  if (t.source === "nft") {
    return (
      `\`nft insert rule ${t.family} ${t.name} ${chain.name} iifname "${bridge}" accept\` and ` +
      `\`nft insert rule ${t.family} ${t.name} ${chain.name} oifname "${bridge}" ct state related,established accept\``
    );
  }
  return `\`${bin} -I ${chain.name} -i ${bridge} -j ACCEPT\` and \`${bin} -I ${chain.name} -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\``;
}

const owner = (t: Table): string =>
  t.chains.has("DOCKER-USER")
    ? " (Docker's)"
    : t.chains.has("ufw-user-forward")
      ? " (UFW's)"
      : t.name === "firewalld"
        ? " (firewalld's)"
        : "";

function describe(
  vs: readonly Verdict[],
  target: ForwardingTarget,
  backend: "legacy" | "nft" | undefined,
): { detail: string; fix: string } {
  const groups = new Map<string, Verdict[]>();
  for (const v of vs) {
    const key = `${label(v.table)}\u0000${v.chain.name}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  const parts: string[] = [];
  const fixes: string[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    if (!first) {
      continue;
    }
    const dirs = new Set(group.map((v) => v.dir));
    const what = [dirs.has("out") ? "new connections from the nodes" : "", dirs.has("in") ? "the replies to them" : ""]
      .filter((s) => s !== "")
      .join(" and ");
    parts.push(
      `${label(first.table)}${owner(first.table)} chain ${first.chain.name} drops ${what} (${first.drop ?? first.unsure ?? ""})`,
    );
    fixes.push(fixFor(first.table, first.chain, dirs, target.bridgeName, backend));
  }
  return { detail: parts.join("; "), fix: [...new Set(fixes)].join("; then ") };
}

/**
 * Judges the facts; pure. `fail` only when a forward hook surely drops the lab's traffic even after
 * libvirt has added its rules; `unchecked` when the rules could not be read or a match could not be
 * judged (or the answer depends on libvirt's firewall backend and no network has shown it yet).
 */
export function evaluateForwarding(target: ForwardingTarget, facts: ForwardingFacts): ForwardingCheck {
  const bridge = target.bridgeName;
  const cidr = parseCidr(target.networkCidr);
  if (typeof cidr === "string") {
    return { status: "unchecked", detail: `networkCidr ${target.networkCidr} ${cidr}`, fix: "" };
  }
  const howToCheck =
    "run the preflight as root, or look yourself: `sudo iptables-save | grep -E '^:FORWARD|DOCKER-USER|LIBVIRT_FW'` and `sudo nft list ruleset | grep -B3 'hook forward'`";
  if (facts.permissionDenied !== undefined && facts.iptablesNft === undefined && facts.nftJson === undefined) {
    return {
      status: "unchecked",
      detail: `forwarding for bridge ${bridge} not checked (needs root): ${facts.permissionDenied}`,
      fix: howToCheck,
    };
  }
  if (facts.iptablesLegacy === undefined && facts.iptablesNft === undefined && facts.nftJson === undefined) {
    return {
      status: "unchecked",
      detail: `forwarding for bridge ${bridge} not checked: none of iptables-legacy-save, iptables-nft-save, nft could read the rules`,
      fix: "`apt-get install iptables nftables`",
    };
  }
  const node = cidr.base + 11 < cidr.base + 2 ** (32 - cidr.prefix) ? cidr.base + 11 : cidr.base + 1;
  const ps = probes(bridge, node, facts.uplink);
  const tables = hostTables(facts);
  const backend = facts.iptablesBackend;
  // libvirt adds the bridge to firewalld's zone "libvirt" when it starts the network (libvirt.zone:
  // "libvirt will add the bridge devices for all new virtual networks to this zone"): before that,
  // firewalld's verdict on our bridge says nothing.
  const skip = (t: Table): boolean =>
    !facts.bridgeUp && t.source === "nft" && t.family === "inet" && t.name === "firewalld";
  const hasIptChains = tables.some((t) => t.source !== "nft" && t.chains.has("LIBVIRT_FWO"));
  const hasNftTable = tables.some((t) => t.source === "nft" && t.name === "libvirt_network");
  const hypotheses: ("iptables" | "nft")[] =
    hasIptChains && !hasNftTable ? ["iptables"] : hasNftTable && !hasIptChains ? ["nft"] : ["iptables", "nft"];
  const results = hypotheses.map((h) => judge(withLibvirt(tables, h, target, backend ?? "nft"), ps, skip));
  const drops = results.map((vs) => vs.filter((v) => v.drop !== undefined));
  const where = `forwarded traffic of bridge ${bridge} (${target.networkCidr}) to the internet`;
  if (drops.every((d) => d.length > 0)) {
    const { detail, fix } = describe(drops[0] ?? [], target, backend);
    return { status: "fail", detail: `${where} is dropped: ${detail}`, fix };
  }
  if (drops.some((d) => d.length > 0)) {
    const i = drops.findIndex((d) => d.length > 0);
    const { detail, fix } = describe(drops[i] ?? [], target, backend);
    return {
      status: "unchecked",
      detail: `${where} is dropped if libvirt uses its ${hypotheses[i] === "nft" ? "nftables" : "iptables"} firewall backend, which no running network shows yet: ${detail}`,
      fix: `after the first \`up\` the check can tell; or now: ${fix}`,
    };
  }
  const unsure = results.flat().filter((v) => v.unsure !== undefined);
  const first = unsure[0];
  if (first) {
    return {
      status: "unchecked",
      detail: `${where} may be dropped: ${label(first.table)} chain ${first.chain.name} has a rule this check cannot judge (${first.unsure ?? ""})`,
      fix: `if the nodes cannot download k3s, ${fixFor(first.table, first.chain, new Set(["out", "in"]), bridge, backend)}`,
    };
  }
  const ipf = facts.bridgeUp && facts.ipForward === "0";
  if (ipf) {
    return {
      status: "fail",
      detail: `bridge ${bridge} is up but net.ipv4.ip_forward is 0: the host forwards nothing`,
      fix: "`sysctl -w net.ipv4.ip_forward=1`",
    };
  }
  const n = tables
    .filter((t) => !skip(t))
    .reduce((sum, t) => sum + [...t.chains.values()].filter((c) => c.hook === "forward").length, 0);
  return {
    status: "ok",
    detail: `${where} is accepted by every forward hook (${n} base chain${n === 1 ? "" : "s"} checked)`,
    fix: "",
  };
}
