/**
 * A small netfilter evaluator for infra/libvirt/forwarding.ts: parses `iptables-save` text and
 * `nft -j list ruleset` JSON into one model and walks a probe packet through a forward base chain.
 * Every match is three-valued (yes / no / maybe): what we cannot judge (ipsets, marks, physdev, `xt`
 * expressions…) is "maybe", and a verdict reached only through a "maybe" is reported as unsure.
 * Pure; IPv4 only (the lab network is IPv4).
 *
 * Formats: iptables-save lines `*table`, `:CHAIN POLICY [p:b]`, `-A CHAIN <match options> -j TARGET`,
 * `COMMIT` (iptables-save(8)); nft JSON objects `{"chain": {family, table, name, hook?, policy?}}`
 * and `{"rule": {family, table, chain, handle, expr: [...]}}` with `match`/`accept`/`drop`/`jump`/…
 * statements (libnftables-json(5)), as printed by nft 1.0.6 on Debian 12.
 */
import { parseIpv4 } from "../config/cidr";

type Tri = "yes" | "no" | "maybe";
/** An address in a probe: a concrete IPv4 (as a number) or "somewhere on the internet". */
type Addr = number | "internet";

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

type Target =
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

const not = (t: Tri): Tri => (t === "yes" ? "no" : t === "no" ? "yes" : "maybe");
const and = (ts: readonly Tri[]): Tri => (ts.includes("no") ? "no" : ts.includes("maybe") ? "maybe" : "yes");
const or = (ts: readonly Tri[]): Tri => (ts.includes("yes") ? "yes" : ts.includes("maybe") ? "maybe" : "no");

// Ranges an internet destination is never in (RFC 1918, loopback, link-local, CGNAT, multicast and reserved).
const SPECIAL: readonly [number, number][] = [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["100.64.0.0", 10],
  ["224.0.0.0", 3],
].map(([a, n]) => [parseIpv4(a as string) ?? 0, n as number]);

const inPrefix = (addr: number, base: number, len: number): boolean =>
  len === 0 || Math.floor(addr / 2 ** (32 - len)) === Math.floor(base / 2 ** (32 - len));

/** Does `addr` fall in `lo..hi`, or in the prefix `text` (`a.b.c.d[/n]`)? */
function addrIn(addr: Addr, lo: number, hi: number): Tri {
  if (addr !== "internet") {
    return addr >= lo && addr <= hi ? "yes" : "no";
  }
  if (lo === 0 && hi === 2 ** 32 - 1) {
    return "yes";
  }
  return SPECIAL.some(([b, n]) => inPrefix(lo, b, n) && inPrefix(hi, b, n)) ? "no" : "maybe";
}

function prefixRange(text: string): [number, number] | undefined {
  const [a, n] = text.split("/");
  const base = parseIpv4(a ?? "");
  const len = n === undefined ? 32 : /^\d+$/.test(n) ? Number(n) : NaN;
  if (base === undefined || !(len >= 0 && len <= 32)) {
    return undefined;
  }
  const size = 2 ** (32 - len);
  const lo = base - (base % size);
  return [lo, lo + size - 1];
}

const addrMatch = (addr: Addr, text: string): Tri => {
  const r = prefixRange(text);
  return r ? addrIn(addr, r[0], r[1]) : "maybe";
};

/** Interface name against an iptables (`eth+`) or nft (`eth*`) pattern; `null` is the unknown uplink. */
function ifaceMatch(actual: string | null, pattern: string, bridge: string): Tri {
  const wild = pattern.endsWith("+") || pattern.endsWith("*");
  const stem = wild ? pattern.slice(0, -1) : pattern;
  if (actual !== null) {
    return (wild ? actual.startsWith(stem) : actual === stem) ? "yes" : "no";
  }
  // The uplink is neither the lab's bridge nor loopback; any other name it might have.
  if (!wild && (stem === bridge || stem === "lo")) {
    return "no";
  }
  return "maybe";
}

const portMatch = (port: number | undefined, lo: number, hi: number): Tri =>
  port === undefined ? (lo === 0 && hi >= 65535 ? "yes" : "maybe") : port >= lo && port <= hi ? "yes" : "no";

function portSpec(p: number | undefined, spec: string): Tri {
  return or(
    spec.split(",").map((part) => {
      const [a, b] = part.split(":");
      const lo = Number(a === "" ? 0 : a);
      const hi = b === undefined ? lo : Number(b === "" ? 65535 : b);
      return Number.isFinite(lo) && Number.isFinite(hi) ? portMatch(p, lo, hi) : "maybe";
    }),
  );
}

const stateMatch = (state: Probe["state"], names: readonly string[]): Tri =>
  names.some((n) => n.toLowerCase() === state) ? "yes" : names.some((n) => /^(snat|dnat)$/i.test(n)) ? "maybe" : "no";

const PROTO_NUM: Record<string, string> = { "6": "tcp", "17": "udp" };
const protoMatch = (proto: Probe["proto"], name: string): Tri => {
  const n = PROTO_NUM[name] ?? name.toLowerCase();
  return n === "all" || n === "0" ? "yes" : n === proto ? "yes" : "no";
};

// ---------------------------------------------------------------------------------------------
// iptables-save

function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? ""));
  }
  return out;
}

// Targets that let the packet go on to the next rule (iptables-extensions(8)).
const NON_TERMINATING = new Set([
  "LOG",
  "NFLOG",
  "ULOG",
  "MARK",
  "CONNMARK",
  "CT",
  "TRACE",
  "NOTRACK",
  "TCPMSS",
  "CHECKSUM",
  "CLASSIFY",
  "DSCP",
  "TOS",
  "AUDIT",
  "SET",
  "CONNSECMARK",
  "SECMARK",
  "TEE",
  "IDLETIMER",
  "LED",
  "RATEEST",
  "HMARK",
]);
// Options that take no value.
const FLAGS = new Set([
  "--syn",
  "-f",
  "--fragment",
  "--physdev-is-bridged",
  "--physdev-is-in",
  "--physdev-is-out",
  "--rcheck",
  "--update",
  "--set",
  "--remove",
  "--rsource",
  "--rdest",
]);

function iptablesRule(chainNames: ReadonlySet<string>, tokens: readonly string[], text: string): Rule {
  const conds: ((p: Probe) => Tri)[] = [];
  let target: Target = { k: "continue" };
  let neg = false;
  const add = (f: (p: Probe) => Tri): void => {
    const n = neg;
    conds.push(n ? (p) => not(f(p)) : f);
    neg = false;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? "";
    const v = tokens[i + 1] ?? "";
    if (t === "!") {
      neg = true;
      continue;
    }
    switch (t) {
      case "-i":
      case "--in-interface":
        add((p) => ifaceMatch(p.iif, v, p.bridge));
        i++;
        break;
      case "-o":
      case "--out-interface":
        add((p) => ifaceMatch(p.oif, v, p.bridge));
        i++;
        break;
      case "-s":
      case "--source":
        add((p) => or(v.split(",").map((a) => addrMatch(p.saddr, a))));
        i++;
        break;
      case "-d":
      case "--destination":
        add((p) => or(v.split(",").map((a) => addrMatch(p.daddr, a))));
        i++;
        break;
      case "-p":
      case "--protocol":
        add((p) => protoMatch(p.proto, v));
        i++;
        break;
      case "--dport":
      case "--destination-port":
      case "--dports":
        add((p) => portSpec(p.dport, v));
        i++;
        break;
      case "--sport":
      case "--source-port":
      case "--sports":
        add((p) => portSpec(p.sport, v));
        i++;
        break;
      case "--ctstate":
      case "--state":
        add((p) => stateMatch(p.state, v.split(",")));
        i++;
        break;
      case "--dst-type":
      case "--src-type":
        // addrtype: the probes' addresses are plain unicast, never local to the host.
        add(() =>
          v.split(",").every((x) => x === "LOCAL" || x === "BROADCAST" || x === "MULTICAST")
            ? "no"
            : v === "UNICAST"
              ? "yes"
              : "maybe",
        );
        i++;
        break;
      case "-m":
      case "--match":
      case "--comment":
      case "--log-prefix":
        i++;
        break;
      case "-j":
      case "--jump":
      case "-g":
      case "--goto": {
        const jump = t === "-j" || t === "--jump";
        target =
          v === "ACCEPT"
            ? { k: "accept" }
            : v === "DROP" || v === "REJECT"
              ? { k: "drop" }
              : v === "RETURN"
                ? { k: "return" }
                : chainNames.has(v)
                  ? { k: jump ? "jump" : "goto", chain: v }
                  : NON_TERMINATING.has(v)
                    ? { k: "continue" }
                    : { k: "maybe" };
        i = tokens.length; // the rest are target options
        break;
      }
      default:
        if (t.startsWith("-")) {
          add(() => "maybe");
          if (!FLAGS.has(t)) {
            while (i + 1 < tokens.length && !(tokens[i + 1] ?? "").startsWith("-") && tokens[i + 1] !== "!") {
              i++;
            }
          }
        }
    }
  }
  return { conds, target, text };
}

/** Parses `iptables-save` output into tables (the filter table's FORWARD is the forward hook). */
export function parseIptablesSave(text: string, source: "iptables-legacy" | "iptables-nft"): Table[] {
  const tables: Table[] = [];
  const blocks = text.split(/^\*/m).slice(1);
  for (const block of blocks) {
    const lines = block.split("\n");
    const name = (lines[0] ?? "").trim();
    const heads = lines.filter((l) => l.startsWith(":"));
    const chainNames = new Set(heads.map((l) => l.slice(1).split(" ")[0] ?? ""));
    const rules = new Map<string, Rule[]>([...chainNames].map((c) => [c, []]));
    for (const line of lines.filter((l) => l.startsWith("-A "))) {
      const tokens = tokenize(line);
      const chain = tokens[1] ?? "";
      rules.get(chain)?.push(iptablesRule(chainNames, tokens.slice(2), line.trim()));
    }
    const chains = new Map<string, Chain>();
    for (const head of heads) {
      const [chain = "", policy = "-"] = head.slice(1).split(" ");
      chains.set(chain, {
        name: chain,
        rules: rules.get(chain) ?? [],
        ...(name === "filter" && chain === "FORWARD" ? { hook: "forward" } : {}),
        ...(policy === "ACCEPT" ? { policy: "accept" as const } : policy === "DROP" ? { policy: "drop" as const } : {}),
      });
    }
    tables.push({ source, family: "ip", name, chains });
  }
  return tables;
}

// ---------------------------------------------------------------------------------------------
// nft -j

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

// ---------------------------------------------------------------------------------------------
// Walking

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
