/**
 * A small netfilter evaluator for the forwarding check (evaluate.ts): one model of tables, chains
 * and rules, which iptables.ts fills from `iptables-save` text and nft.ts from `nft -j list ruleset`
 * JSON with the conditions in match.ts, and the walk of a probe packet through a forward base chain.
 * Every match is three-valued (yes / no / maybe): what we cannot judge (ipsets, marks, physdev, `xt`
 * expressions…) is "maybe", and a verdict reached only through a "maybe" is reported as unsure.
 * Pure; IPv4 only (the lab network is IPv4).
 */
/** A match result: what we cannot judge is "maybe". */
export type Tri = "yes" | "no" | "maybe";
/** An address in a probe: a concrete IPv4 (as a number) or "somewhere on the internet". */
export type Addr = number | "internet";

/** A packet to walk through the chains. `null` interface: the uplink, name unknown. */
export interface Probe {
  readonly dir: "out" | "in";
  /** The lab's bridge (never the uplink's name). */
  readonly bridge: string;
  readonly iif: string | null;
  readonly oif: string | null;
  readonly saddr: Addr;
  readonly daddr: Addr;
  readonly proto: "tcp" | "udp";
  readonly sport: number | undefined;
  readonly dport: number | undefined;
  readonly state: "new" | "established";
}

export type Target =
  | { k: "accept" }
  | { k: "drop" }
  | { k: "return" }
  | { k: "continue" }
  | { k: "maybe" }
  | { k: "jump" | "goto"; chain: string };

export interface Rule {
  readonly conds: readonly ((p: Probe) => Tri)[];
  readonly target: Target;
  /** The rule as the user would recognise it. */
  readonly text: string;
}

export interface Chain {
  readonly name: string;
  readonly rules: readonly Rule[];
  readonly hook?: string;
  readonly policy?: "accept" | "drop";
}

export interface Table {
  readonly source: "iptables-legacy" | "iptables-nft" | "nft";
  readonly family: string;
  readonly name: string;
  readonly chains: ReadonlyMap<string, Chain>;
}

export const not = (t: Tri): Tri => (t === "yes" ? "no" : t === "no" ? "yes" : "maybe");
export const and = (ts: readonly Tri[]): Tri => (ts.includes("no") ? "no" : ts.includes("maybe") ? "maybe" : "yes");
export const or = (ts: readonly Tri[]): Tri => (ts.includes("yes") ? "yes" : ts.includes("maybe") ? "maybe" : "no");

interface Outcome {
  /** Some path accepts. */
  accept: boolean;
  /** Some path drops: the first rule (or policy) that does. */
  drop: string | undefined;
  /** Some path meets a verdict we cannot judge (NFQUEUE, an `xt` target, a missing chain). */
  unknown: string | undefined;
  /** The first rule whose match we could not judge and on which a verdict hangs. */
  hinge: string | undefined;
  /** Whether the walk can reach the chain's end (or a RETURN). */
  through: boolean;
}

function walkChain(table: Table, chain: Chain, p: Probe, depth: number): Outcome {
  const res: Outcome = { accept: false, drop: undefined, unknown: undefined, hinge: undefined, through: false };
  for (const rule of chain.rules) {
    const m = and(rule.conds.map((c) => c(p)));
    if (m === "no") {
      continue;
    }
    const t = rule.target;
    let o: Outcome = { accept: false, drop: undefined, unknown: undefined, hinge: undefined, through: false };
    let cont = false;
    if (t.k === "accept") {
      o.accept = true;
    } else if (t.k === "drop") {
      o.drop = rule.text;
    } else if (t.k === "return") {
      res.through = true;
    } else if (t.k === "continue") {
      cont = true;
    } else if (t.k === "maybe") {
      o.unknown = rule.text;
      cont = true;
    } else {
      const sub = table.chains.get(t.chain);
      if (!sub || depth > 32) {
        o.unknown = rule.text;
        cont = true;
      } else {
        o = walkChain(table, sub, p, depth + 1);
        if (t.k === "jump") {
          cont = o.through;
        } else if (o.through) {
          res.through = true; // a goto's chain returns to our caller
        }
      }
    }
    if (m === "maybe" && (o.accept || o.drop !== undefined || o.unknown !== undefined)) {
      res.hinge ??= rule.text;
    }
    res.accept ||= o.accept;
    res.drop ??= o.drop;
    res.unknown ??= o.unknown;
    res.hinge ??= o.hinge;
    if (m === "yes" && !cont) {
      return res;
    }
  }
  res.through = true;
  return res;
}

/**
 * Walks a probe through a base chain. `drop` alone: surely dropped; `accept` alone: surely
 * accepted; anything else: unsure, with `unsure` naming the rule it hangs on.
 */
export function walkBaseChain(
  table: Table,
  chain: Chain,
  p: Probe,
): { accept: boolean; drop: string | undefined; unsure: string | undefined } {
  const o = walkChain(table, chain, p, 0);
  if (o.through) {
    if (chain.policy === "drop") {
      o.drop ??= `policy DROP of chain ${chain.name}`;
    } else {
      o.accept = true;
    }
  }
  const sure = o.unknown === undefined && !(o.accept && o.drop !== undefined);
  return { accept: o.accept, drop: o.drop, unsure: sure ? undefined : (o.unknown ?? o.hinge ?? o.drop) };
}
