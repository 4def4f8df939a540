/**
 * The `features` stack output and its checks: per node, the article's feature lines as the agents
 * say they run, beside what the config asked for (the prediction, infra/cilium/features.ts
 * `predictFeatures`) and the article's starting list. Five lines come from the agent's status
 * (feature-states.ts); the tunnel from the node's tunnel devices up to 1.15 and from the agent's
 * `Routing:` line from 1.16; Hubble Relay from the `hubble-relay` Deployment, one cluster-wide fact
 * (shown on every node's list and judged once, scope `cluster`).
 *
 * Judging: a predicted state (not `null`) must equal the observed one, else the verdict is refused
 * with both (`feature <label>: expected <asked>, found <observed> (<source>: "<words>")`). A `null`
 * prediction is not checked (the version has no such line, or config cannot know); IPv6 BIG TCP is
 * never checked (the lab is IPv4-only). Cilium falls back silently when a requirement is missing
 * (BPF host routing without kube-proxy replacement stays `Legacy`), so only the agent's own line
 * proves what runs. Pure: no I/O, no Pulumi.
 */
import { ARTICLE_FEATURES, FEATURE_NAMES, type FeatureName, type FeatureState } from "../../cilium/features";
import type { DatapathEvidence, NodeEvidence, ObservedMode } from "./build";
import type { HubbleRelayFacts } from "./collectors";
import { FEATURE_LABELS, REPORT_ONLY, agentObservations, printsRoutingLine, type Observation } from "./feature-states";
import { agentMode, nodeMode } from "./observed";
import type { Check, RequestedDatapath } from "./verdict";

/** One feature on one node: asked, observed, the article's starting value, and whether they agree. */
export interface FeatureLine {
  readonly feature: FeatureName;
  /** The article's label, e.g. `Host Routing`. */
  readonly label: string;
  /** The article's starting value, word for word (`Legacy`); `null` for IPv4 BIG TCP (not in the article). */
  readonly article: string | null;
  /** What the config predicts (`null`: not checked). */
  readonly asked: FeatureState | null;
  /** What runs, normalised (`null`: the source has no such line, or was not read). */
  readonly observed: FeatureState | null;
  /** The source's own words (`EDT with BPF [BBR] [enp1s0]`, `1/1 ready`). */
  readonly agentSays: string | null;
  /** Where `observed` was read. */
  readonly source: string;
  /** Whether `asked` was judged (a prediction, and not report-only). */
  readonly checked: boolean;
  /** `true` unless it was judged and contradicts. */
  readonly ok: boolean;
}

/** The Hubble Relay Deployment, cluster-wide. */
export interface RelayOutput {
  /** `null` when the Deployment was not collected. */
  readonly deployment: HubbleRelayFacts | null;
  readonly line: FeatureLine;
}

/** The `features` stack output. */
export interface FeaturesOutput {
  /** Every judged line agrees with the prediction. */
  readonly ok: boolean;
  /** Per node, every feature in the article's order (IPv4 BIG TCP after IPv6's). */
  readonly nodes: readonly { readonly node: string; readonly lines: readonly FeatureLine[] }[];
  readonly relay: RelayOutput;
}

const RELAY_SOURCE = "Deployment hubble-relay";

/** Lines without a per-node check: the tunnel (the datapath checks judge it) and Hubble Relay (judged once, scope `cluster`). */
const NOT_PER_NODE: ReadonlySet<FeatureName> = new Set<FeatureName>(["tunnel", "hubbleRelay"]);

/** The tunnel as `features` names it: `vxlan` | `geneve` | `disabled` (native), else the mode word. */
function tunnelState(mode: ObservedMode): FeatureState {
  return mode === "native" ? "disabled" : mode;
}

function observation(observed: FeatureState | null, says: string | null, source: string): Observation {
  return { observed, says, source, agrees: observed === null ? [] : [observed] };
}

/** The tunnel on a node: the agent's `Routing:` line from 1.16, the node's tunnel devices before. */
function tunnelObservation(n: NodeEvidence, ciliumVersion: string): Observation {
  if (printsRoutingLine(ciliumVersion)) {
    const mode = agentMode(n.agent);
    return observation(
      mode === null ? null : tunnelState(mode),
      n.agent?.routing ? n.agent.routing.line : null,
      `${n.agent?.command ?? "agent status"}: Routing:`,
    );
  }
  const devices = n.tunnelDevices.map((d) => d.name);
  return observation(
    tunnelState(nodeMode(n)),
    devices.length === 0 ? "no cilium_vxlan or cilium_geneve" : devices.join(", "),
    "tunnel devices (ip -d link)",
  );
}

/** Hubble Relay from its Deployment: `enabled` when every desired replica (at least one) is ready, `disabled` when absent, else `not ready`. */
export function relayObservation(relay: HubbleRelayFacts | null | undefined): Observation {
  if (relay === null || relay === undefined) {
    return observation(null, null, `${RELAY_SOURCE} (not collected)`);
  }
  if (!relay.exists) {
    return observation("disabled", "no Deployment", RELAY_SOURCE);
  }
  const ready = relay.ready >= Math.max(relay.desired, 1);
  const rollout = relay.rolloutError?.replace(/\s+/g, " ").trim();
  const says = `${relay.ready}/${relay.desired} ready${rollout ? ` (${rollout})` : ""}`;
  return observation(ready ? "enabled" : "not ready", says, RELAY_SOURCE);
}

/** One line: `asked` judged against the observation unless it is `null` or report-only. */
function line(feature: FeatureName, asked: FeatureState | null, o: Observation): FeatureLine {
  const checked = asked !== null && !REPORT_ONLY.has(feature);
  return {
    feature,
    label: FEATURE_LABELS[feature],
    article: feature === "ipv4BigTcp" ? null : ARTICLE_FEATURES[feature],
    asked,
    observed: o.observed,
    agentSays: o.says,
    source: o.source,
    checked,
    ok: !checked || o.agrees.includes(asked),
  };
}

/** Every feature's observation on one node. */
function nodeObservations(n: NodeEvidence, evidence: DatapathEvidence): Record<FeatureName, Observation> {
  const relay = relayObservation(evidence.hubbleRelay);
  const tunnel = tunnelObservation(n, evidence.ciliumVersion);
  if (n.agent === null) {
    const none = observation(null, null, "no Cilium agent pod on this node");
    return {
      tunnel,
      kubeProxyReplacement: none,
      ipv6BigTcp: none,
      ipv4BigTcp: none,
      bandwidthManager: none,
      hostRouting: none,
      masquerading: none,
      hubbleRelay: relay,
    };
  }
  return { tunnel, ...agentObservations(n.agent, evidence.ciliumVersion), hubbleRelay: relay };
}

/** The `features` output: per node, every feature asked / observed / article, and the relay. */
export function featuresOutput(requested: RequestedDatapath, evidence: DatapathEvidence): FeaturesOutput {
  const asked = (f: FeatureName): FeatureState | null => requested.features?.[f] ?? null;
  const nodes = evidence.nodes.map((n) => {
    const obs = nodeObservations(n, evidence);
    return { node: n.node, lines: FEATURE_NAMES.map((f) => line(f, asked(f), obs[f])) };
  });
  const relay: RelayOutput = {
    deployment: evidence.hubbleRelay ?? null,
    line: line("hubbleRelay", asked("hubbleRelay"), relayObservation(evidence.hubbleRelay)),
  };
  return {
    ok: relay.line.ok && nodes.every((n) => n.lines.every((l) => l.ok)),
    nodes,
    relay,
  };
}

/** A line's observed side in words: `legacy (cilium-dbg status: Routing: … Host: "Legacy")`. */
export function describeObserved(l: FeatureLine): string {
  const words = l.agentSays === null ? "no such line" : `"${l.agentSays}"`;
  return `${l.observed ?? "nothing"} (${l.source} ${words})`;
}

/** The check name of a feature line (in `checks` and the refusal's reasons). */
export function featureCheckName(l: Pick<FeatureLine, "label">): string {
  return `feature ${l.label}`;
}

/**
 * The feature checks: every judged line of every node whose agent answered `Ok` (a node without
 * one already fails `agent status`, and a failed status has no lines to judge), and Hubble Relay
 * once for the cluster. The tunnel line is not a check of its
 * own: the datapath checks judge the same facts against the routing mode the prediction comes from
 * (`tunnel device`, and from 1.16 `agent routing`), so a wrong tunnel is refused once, by them.
 */
export function featureChecks(requested: RequestedDatapath, evidence: DatapathEvidence): Check[] {
  if (requested.features === undefined) {
    return [];
  }
  const out = featuresOutput(requested, evidence);
  const toCheck = (scope: string, l: FeatureLine): Check => ({
    scope,
    check: featureCheckName(l),
    expected: `${l.asked ?? "?"} (asked)`,
    actual: describeObserved(l),
    ok: l.ok,
  });
  const withAgent = new Set(evidence.nodes.filter((n) => n.agent?.ok === true).map((n) => n.node));
  return [
    ...out.nodes
      .filter((n) => withAgent.has(n.node))
      .flatMap((n) => n.lines.filter((l) => l.checked && !NOT_PER_NODE.has(l.feature)).map((l) => toCheck(n.node, l))),
    ...(out.relay.line.checked ? [toCheck("cluster", out.relay.line)] : []),
  ];
}
