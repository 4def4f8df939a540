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
