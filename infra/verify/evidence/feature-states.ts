/**
 * The agent's words for each feature of the article's list, normalised to the vocabulary the
 * prediction uses (infra/cilium/features.ts `FeatureState`), and where each word comes from per
 * version. Pure: no I/O, no Pulumi. The spellings are those of cilium/cilium `pkg/client/client.go`
 * `FormatStatusResponse` (agent-status.ts lists them with their sources).
 */
import type { FeatureName, FeatureState } from "../../cilium/features";
import { parseCiliumVersion } from "../../cilium/values";
import type { AgentStatus } from "./agent-status";

/** The article's label of each line ("7. Hubble Relay: disabled"); IPv4 BIG TCP is the lab's addition. */
export const FEATURE_LABELS: Readonly<Record<FeatureName, string>> = {
  tunnel: "Datapath mode",
  kubeProxyReplacement: "KubeProxyReplacement",
  ipv6BigTcp: "IPv6 BIG TCP",
  ipv4BigTcp: "IPv4 BIG TCP",
  bandwidthManager: "BandwidthManager",
  hostRouting: "Host Routing",
  masquerading: "Masquerading",
  hubbleRelay: "Hubble Relay",
};

/** Features shown but never judged: IPv6 BIG TCP (the lab is IPv4-only, so nothing can ask for it). */
export const REPORT_ONLY: ReadonlySet<FeatureName> = new Set<FeatureName>(["ipv6BigTcp"]);

/** One feature as observed: the normalised state, the words it was read from, and which asked states it agrees with. */
export interface Observation {
  /** `null` when the source has no such line (or was not read). */
  readonly observed: FeatureState | null;
  /** The source's own words, e.g. `EDT with BPF [BBR] [enp1s0]`; `null` when absent. */
  readonly says: string | null;
  /** Where it was read: `cilium status: Host Routing:`, `tunnel devices`, `Deployment kube-system/hubble-relay`. */
  readonly source: string;
  /**
   * The asked states this observation agrees with (usually just `observed`): an agent that prints
   * the bandwidth manager without its congestion control agrees with both `edt` and `edt+bbr`.
   */
  readonly agrees: readonly FeatureState[];
}

function first(says: string): string {
  return says.split(" ")[0] ?? "";
}

/** `KubeProxyReplacement:` mode → `enabled` (`Strict` on 1.13, `True` from 1.14) | `disabled` (`Disabled`, `False`); other modes (`Partial`, `Probe`) in lower case. */
export function kubeProxyReplacementState(says: string): FeatureState {
  const mode = first(says);
  return mode === "Strict" || mode === "True"
    ? "enabled"
    : mode === "Disabled" || mode === "False"
      ? "disabled"
      : mode.toLowerCase();
}

/** `IPv4 BIG TCP:` / `IPv6 BIG TCP:` → `enabled` (`Enabled [65536]`) | `disabled`. */
export function bigTcpState(says: string): FeatureState {
  const word = first(says);
  return word === "Enabled" ? "enabled" : word === "Disabled" ? "disabled" : word.toLowerCase();
}

/**
 * `BandwidthManager:` → `disabled` | `edt` (`EDT with BPF [CUBIC] [eth0]`) | `edt+bbr` (`[BBR]`), and
 * the congestion control when printed (`null` in the older `EDT with BPF [eth0]`, devices only).
 */
export function bandwidthManagerState(says: string): { state: FeatureState; congestionControl: string | null } {
  if (says === "Disabled") {
    return { state: "disabled", congestionControl: null };
  }
  const m = /^EDT with BPF (.*)$/.exec(says);
  if (m === null) {
    return { state: says.toLowerCase(), congestionControl: null };
  }
  const groups = [...(m[1] ?? "").matchAll(/\[([^\]]*)\]/g)].map((g) => g[1] ?? "");
  const cc = groups.length >= 2 ? (groups[0] ?? null) : null;
  return { state: cc === "BBR" ? "edt+bbr" : "edt", congestionControl: cc };
}

/** `Host Routing:` (1.13–1.15) or the `Host:` of `Routing:` (1.16+) → `legacy` | `bpf`. */
export function hostRoutingState(says: string): FeatureState {
  return says === "Legacy" ? "legacy" : says === "BPF" ? "bpf" : says.toLowerCase();
}

/** `Masquerading:` → `iptables` (`IPTables [IPv4: Enabled, …]`) | `bpf` (`BPF [eth0] 10.0.0.0/8 […]`, `BPF (ip-masq-agent) …`) | `disabled`. */
export function masqueradingState(says: string): FeatureState {
  const word = first(says);
  return word === "IPTables"
    ? "iptables"
    : word === "BPF"
      ? "bpf"
      : word === "Disabled"
        ? "disabled"
        : word.toLowerCase();
}

/** Whether a version's agent prints `Routing: Network: … Host: …` instead of `Host Routing:` (1.16+, cilium/cilium#32036). */
export function printsRoutingLine(ciliumVersion: string): boolean {
  return parseCiliumVersion(ciliumVersion).minor >= 16;
}

/** An agent line read through `normalise`: absent → `null`. */
function fromLine(
  cli: string,
  label: string,
  says: string | null,
  normalise: (s: string) => FeatureState,
): Observation {
  const observed = says === null ? null : normalise(says);
  return { observed, says, source: `${cli}: ${label}:`, agrees: observed === null ? [] : [observed] };
}

/**
 * What an agent's status says of the five agent-side features (KubeProxyReplacement, both BIG TCP
 * lines, BandwidthManager, Host Routing, Masquerading) for a chart version; the tunnel and Hubble
 * Relay come from elsewhere (features.ts).
 */
export function agentObservations(
  a: AgentStatus,
  ciliumVersion: string,
): Record<
  "kubeProxyReplacement" | "ipv6BigTcp" | "ipv4BigTcp" | "bandwidthManager" | "hostRouting" | "masquerading",
  Observation
> {
  const cli = a.command;
  const bw = a.bandwidthManager === null ? null : bandwidthManagerState(a.bandwidthManager);
  const bwObserved = bw?.state ?? null;
  const hostRouting = printsRoutingLine(ciliumVersion)
    ? fromLine(cli, "Routing: … Host", a.routing?.host ?? null, hostRoutingState)
    : fromLine(cli, "Host Routing", a.hostRouting, hostRoutingState);
  return {
    kubeProxyReplacement: fromLine(cli, "KubeProxyReplacement", a.kubeProxyReplacement, kubeProxyReplacementState),
    ipv6BigTcp: fromLine(cli, "IPv6 BIG TCP", a.ipv6BigTcp, bigTcpState),
    ipv4BigTcp: fromLine(cli, "IPv4 BIG TCP", a.ipv4BigTcp, bigTcpState),
    bandwidthManager: {
      observed: bwObserved,
      says: a.bandwidthManager,
      source: `${cli}: BandwidthManager:`,
      agrees:
        bwObserved === null
          ? []
          : bwObserved === "edt" && bw?.congestionControl === null
            ? ["edt", "edt+bbr"]
            : [bwObserved],
    },
    hostRouting,
    masquerading: fromLine(cli, "Masquerading", a.masquerading, masqueradingState),
  };
}
