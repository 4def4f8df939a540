/**
 * `nft -j list ruleset` JSON into the netfilter model (netfilter.ts). Format: objects
 * `{"chain": {family, table, name, hook?, policy?}}` and `{"rule": {family, table, chain, handle,
 * expr: [...]}}` with `match`/`accept`/`drop`/`jump`/… statements (libnftables-json(5)), as printed
 * by nft 1.0.6 on Debian 12.
 */
import { parseIpv4 } from "../../config/cidr";
import { addrIn, addrMatch, ifaceMatch, portMatch, protoMatch, stateMatch } from "./match";
import { and, not, or, type Probe, type Rule, type Table, type Target, type Tri } from "./netfilter";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const obj = (j: Json | undefined): Record<string, Json> =>
  j !== null && typeof j === "object" && !Array.isArray(j) ? j : {};

/** One right-hand value against a field of the probe. */
function valueMatch(field: string, p: Probe, right: Json): Tri {
  if (Array.isArray(right)) {
    return or(right.map((r) => valueMatch(field, p, r)));
  }
  const o = obj(right);
  if ("set" in o) {
    return valueMatch(field, p, o.set ?? []);
  }
  if (typeof right === "string" && right.startsWith("@")) {
    return "maybe"; // a named set: its elements are elsewhere
  }
  switch (field) {
    case "iifname":
    case "iif":
      return typeof right === "string" ? ifaceMatch(p.iif, right, p.bridge) : "maybe";
    case "oifname":
    case "oif":
      return typeof right === "string" ? ifaceMatch(p.oif, right, p.bridge) : "maybe";
    case "saddr":
    case "daddr": {
      const a = field === "saddr" ? p.saddr : p.daddr;
      if (typeof right === "string") {
        return addrMatch(a, right);
      }
      const pre = obj(o.prefix);
      if (typeof pre.addr === "string" && typeof pre.len === "number") {
        return addrMatch(a, `${pre.addr}/${pre.len}`);
      }
      const range = o.range;
      if (Array.isArray(range) && typeof range[0] === "string" && typeof range[1] === "string") {
        return addrIn(a, parseIpv4(range[0]) ?? 0, parseIpv4(range[1]) ?? 0);
      }
      return "maybe";
    }
    case "l4proto":
    case "protocol":
      return typeof right === "string" || typeof right === "number" ? protoMatch(p.proto, String(right)) : "maybe";
    case "sport":
    case "dport": {
      const port = field === "sport" ? p.sport : p.dport;
      if (typeof right === "number") {
        return portMatch(port, right, right);
      }
      const range = o.range;
      return Array.isArray(range) && typeof range[0] === "number" && typeof range[1] === "number"
        ? portMatch(port, range[0], range[1])
        : "maybe";
    }
    case "state":
      return typeof right === "string" ? stateMatch(p.state, [right]) : "maybe";
    default:
      return "maybe";
  }
}

/** A `match` expression of nft JSON as a condition. */
function nftMatch(m: Record<string, Json>): (p: Probe) => Tri {
  const left = obj(m.left);
  const op = typeof m.op === "string" ? m.op : "==";
  const right = m.right ?? null;
  let field = "";
  let pre: (p: Probe) => Tri = () => "yes";
  const meta = obj(left.meta);
  const payload = obj(left.payload);
  const ct = obj(left.ct);
  if (typeof meta.key === "string") {
    if (meta.key === "nfproto") {
      return () => (op === "!=" ? not : (t: Tri) => t)(right === "ipv4" ? "yes" : "no");
    }
    field = meta.key;
  } else if (typeof payload.protocol === "string" && typeof payload.field === "string") {
    const proto = payload.protocol;
    if (proto === "ip6" || proto === "icmp" || proto === "icmpv6" || proto === "ip6hdr") {
      return () => "no"; // implies a protocol the IPv4 TCP/UDP probes are not
    }
    if (proto === "tcp" || proto === "udp") {
      pre = (p) => (p.proto === proto ? "yes" : "no");
    }
    field = proto === "ip" && payload.field === "protocol" ? "protocol" : payload.field;
    if (proto === "ip" && payload.field !== "saddr" && payload.field !== "daddr" && payload.field !== "protocol") {
      field = "unknown";
    }
  } else if (ct.key === "state") {
    field = "state";
  } else if (ct.key === "status") {
    // The lab's flows are masqueraded, never DNATed; other status bits we do not judge.
    const dnat = right === "dnat" || (Array.isArray(right) && right.length === 1 && right[0] === "dnat");
    return () => (dnat && op !== "!=" ? "no" : "maybe");
  }
  return (p) => {
    const base = pre(p);
    if (base === "no") {
      return "no";
    }
    const v = field === "" || field === "unknown" ? "maybe" : valueMatch(field, p, right);
    return and([base, op === "!=" ? not(v) : op === "==" || op === "in" ? v : "maybe"]);
  };
}

function nftTarget(stmt: Record<string, Json>): Target | undefined {
  const jump = obj(stmt.jump);
  const go = obj(stmt.goto);
  return "accept" in stmt
    ? { k: "accept" }
    : "drop" in stmt || "reject" in stmt
      ? { k: "drop" }
      : "return" in stmt
        ? { k: "return" }
        : "continue" in stmt
          ? { k: "continue" }
          : typeof jump.target === "string"
            ? { k: "jump", chain: jump.target }
            : typeof go.target === "string"
              ? { k: "goto", chain: go.target }
              : "queue" in stmt || ("xt" in stmt && obj(stmt.xt).type !== "match")
                ? { k: "maybe" }
                : undefined;
}

// Statements that neither match nor decide (libnftables-json(5) "Statements").
const NEUTRAL = new Set([
  "counter",
  "log",
  "mangle",
  "notrack",
  "set",
  "map",
  "ct helper",
  "ct timeout",
  "ct expectation",
  "masquerade",
  "snat",
  "dnat",
  "redirect",
  "tproxy",
  "flow",
  "fwd",
  "dup",
  "secmark",
  "synproxy",
  "meter",
]);

function nftRules(r: Record<string, Json>, text: string): Rule[] {
  const exprs = Array.isArray(r.expr) ? r.expr : [];
  const conds: ((p: Probe) => Tri)[] = [];
  for (const e of exprs) {
    const stmt = obj(e);
    const key = Object.keys(stmt)[0] ?? "";
    if (key === "match") {
      conds.push(nftMatch(obj(stmt.match)));
      continue;
    }
    if (key === "vmap") {
      // A verdict map: one rule per element (an element matches → its verdict; none → go on).
      const vm = obj(stmt.vmap);
      const elems = obj(vm.data).set;
      if (!Array.isArray(elems)) {
        return [{ conds: [...conds], target: { k: "maybe" }, text }];
      }
      return elems.map((el) => {
        const [value, verdict] = Array.isArray(el) ? el : [null, null];
        const m = nftMatch({ op: "==", left: vm.key ?? null, right: value ?? null });
        return { conds: [...conds, m], target: nftTarget(obj(verdict ?? null)) ?? { k: "maybe" }, text };
      });
    }
    const t = nftTarget(stmt);
    if (t) {
      return [
        {
          conds,
          target: t,
          text: `${text}: ${key === "jump" || key === "goto" ? `${key} ${t.k === "jump" || t.k === "goto" ? t.chain : ""}` : key}`,
        },
      ];
    }
    if (key === "xt" || key === "limit" || key === "quota") {
      conds.push(() => "maybe");
    } else if (!NEUTRAL.has(key)) {
      conds.push(() => "maybe");
    }
  }
  return [{ conds, target: { k: "continue" }, text }];
}

/** Parses `nft -j list ruleset` into tables of families `ip` and `inet` (the ones IPv4 traverses). */
export function parseNftJson(text: string): Table[] {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    return [];
  }
  const items = obj(doc).nftables;
  const list = Array.isArray(items) ? items.map(obj) : [];
  const tables = new Map<
    string,
    {
      family: string;
      name: string;
      chains: Map<string, { name: string; rules: Rule[]; hook?: string; policy?: "accept" | "drop" }>;
    }
  >();
  const key = (f: Json | undefined, t: Json | undefined): string => JSON.stringify([f ?? null, t ?? null]);
  for (const item of list) {
    const t = obj(item.table);
    if (typeof t.name === "string" && (t.family === "ip" || t.family === "inet")) {
      tables.set(key(t.family, t.name), { family: t.family, name: t.name, chains: new Map() });
    }
  }
  for (const item of list) {
    const c = obj(item.chain);
    const table = tables.get(key(c.family, c.table));
    if (table && typeof c.name === "string") {
      table.chains.set(c.name, {
        name: c.name,
        rules: [],
        ...(c.type === "filter" && typeof c.hook === "string" ? { hook: c.hook } : {}),
        ...(c.policy === "drop" ? { policy: "drop" as const } : { policy: "accept" as const }),
      });
    }
  }
  for (const item of list) {
    const r = obj(item.rule);
    const chain = tables.get(key(r.family, r.table))?.chains.get(typeof r.chain === "string" ? r.chain : "");
    if (chain) {
      const comment = typeof r.comment === "string" ? ` comment "${r.comment}"` : "";
      chain.rules.push(
        ...nftRules(r, `rule handle ${JSON.stringify(r.handle ?? null)} of chain ${chain.name}${comment}`),
      );
    }
  }
  return [...tables.values()].map((t) => ({
    source: "nft" as const,
    family: t.family,
    name: t.name,
    chains: t.chains,
  }));
}
