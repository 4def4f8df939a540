/**
 * `iptables-save` text into the netfilter model (netfilter.ts). Format: lines `*table`,
 * `:CHAIN POLICY [p:b]`, `-A CHAIN <match options> -j TARGET`, `COMMIT` (iptables-save(8)).
 */
import { addrMatch, ifaceMatch, portSpec, protoMatch, stateMatch } from "./match";
import { not, or, type Chain, type Probe, type Rule, type Table, type Target, type Tri } from "./netfilter";

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

/** A match option's condition on the probe, made from the option's value. */
type MatchOption = (value: string) => (p: Probe) => Tri;

// Match options that take a value (iptables(8), iptables-extensions(8)), with every name they go by.
const MATCH_TABLE: readonly (readonly [readonly string[], MatchOption])[] = [
  [["-i", "--in-interface"], (v) => (p) => ifaceMatch(p.iif, v, p.bridge)],
  [["-o", "--out-interface"], (v) => (p) => ifaceMatch(p.oif, v, p.bridge)],
  [["-s", "--source"], (v) => (p) => or(v.split(",").map((a) => addrMatch(p.saddr, a)))],
  [["-d", "--destination"], (v) => (p) => or(v.split(",").map((a) => addrMatch(p.daddr, a)))],
  [["-p", "--protocol"], (v) => (p) => protoMatch(p.proto, v)],
  [["--dport", "--destination-port", "--dports"], (v) => (p) => portSpec(p.dport, v)],
  [["--sport", "--source-port", "--sports"], (v) => (p) => portSpec(p.sport, v)],
  [["--ctstate", "--state"], (v) => (p) => stateMatch(p.state, v.split(","))],
  // addrtype: the probes' addresses are plain unicast, never local to the host.
  [
    ["--dst-type", "--src-type"],
    (v) => () =>
      v.split(",").every((x) => x === "LOCAL" || x === "BROADCAST" || x === "MULTICAST")
        ? "no"
        : v === "UNICAST"
          ? "yes"
          : "maybe",
  ],
];
const MATCH_OPTIONS = new Map(MATCH_TABLE.flatMap(([names, match]) => names.map((name) => [name, match] as const)));

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
    const match = MATCH_OPTIONS.get(t);
    if (match) {
      add(match(v));
      i++;
      continue;
    }
    switch (t) {
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
export function parseIptablesTables(text: string, source: "iptables-legacy" | "iptables-nft"): Table[] {
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
