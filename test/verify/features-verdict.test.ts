/**
 * The `features` output and its verdict on the three-node lab: per node, what the config asked for
 * (the prediction), what the agents say runs and the article's starting list; a contradiction
 * refuses the verdict with both sides, like a wrong datapath. Agents print the fixtures of
 * test/verify/fixtures/agent-status-*.txt (sources in each file).
 */
import test from "ava";

import { predictFeatures, type FeatureConfig, type PredictedFeatures } from "../../infra/cilium/features";
import { parseLabConfig } from "../../infra/config/parse";
import {
  datapathOutput,
  verdictFailureMessage,
  type DatapathOutput,
  type HubbleRelayFacts,
} from "../../infra/verify/evidence";
import { agentStatusFixture, cm113, cm117, lab, req, type Mode } from "./lab-evidence";
import type { LabNode } from "./support";

const RELAY_UP: HubbleRelayFacts = { exists: true, desired: 1, ready: 1, rolloutError: null };

/** The parser's defaults: the article's lab (1.13.4, vxlan, kube-proxy, iptables masquerading, Hubble on). */
const ARTICLE_CONFIG: FeatureConfig = parseLabConfig({}).config;

/** Native routing with kube-proxy replacement, BPF masquerading, BPF host routing, IPv4 BIG TCP and EDT. */
const SWITCHED: PredictedFeatures = {
  ...predictFeatures(ARTICLE_CONFIG),
  ...{ tunnel: "disabled", kubeProxyReplacement: "enabled", ipv4BigTcp: "enabled", bandwidthManager: "edt" },
  ...{ hostRouting: "bpf", masquerading: "bpf" },
};

function judged(
  mode: Mode,
  version: string,
  features: PredictedFeatures | undefined,
  agent: (n: LabNode) => string,
  relay: HubbleRelayFacts = RELAY_UP,
): DatapathOutput {
  const cm = version.startsWith("1.13") ? cm113(mode) : cm117(mode);
  return datapathOutput(
    { ...req(mode, version), ...(features ? { features } : {}) },
    lab(cm, mode, { version, agent, relay }),
  );
}

/** node-2's lines as `feature: asked | observed | article | ok`. */
function table(d: DatapathOutput): string[] {
  const node2 = d.features.nodes.find((n) => n.node === "node-2");
  return (node2?.lines ?? []).map(
    (l) =>
      `${l.label}: ${l.asked ?? "-"} | ${l.observed ?? "-"} | ${l.article ?? "-"} | ${l.ok ? "ok" : "CONTRADICTS"}`,
  );
}

test("the article's lab on 1.13.4: asked (the prediction) equals observed on every line, beside the article's list", (t) => {
  const asked = predictFeatures(ARTICLE_CONFIG);
  const d = judged("vxlan", "1.13.4", asked, (n) => agentStatusFixture("1.13.4-article", n));
  t.deepEqual(d.reasons, []);
  t.is(d.verdict, "confirmed");
  t.true(d.features.ok);
  t.deepEqual(table(d), [
    "Datapath mode: vxlan | vxlan | tunnel | ok",
    "KubeProxyReplacement: disabled | disabled | Disabled | ok",
    "IPv6 BIG TCP: disabled | disabled | Disabled | ok",
    "IPv4 BIG TCP: - | - | - | ok",
    "BandwidthManager: disabled | disabled | Disabled | ok",
    "Host Routing: legacy | legacy | Legacy | ok",
    "Masquerading: iptables | iptables | IPtables | ok",
    "Hubble Relay: enabled | enabled | disabled | ok",
  ]);
  const node2 = d.features.nodes.find((n) => n.node === "node-2");
  t.like(node2?.lines[0], { source: "tunnel devices (ip -d link)", agentSays: "cilium_vxlan", checked: true });
  t.like(node2?.lines[5], { source: "cilium status: Host Routing:", agentSays: "Legacy" });
  t.like(d.features.relay, { deployment: RELAY_UP, line: { observed: "enabled", agentSays: "1/1 ready" } });
  t.deepEqual(
    d.checks.filter((c) => c.scope === "node-2" && c.check.startsWith("feature ")).map((c) => c.check),
    ["feature KubeProxyReplacement", "feature BandwidthManager", "feature Host Routing", "feature Masquerading"],
    "the tunnel is judged by the datapath checks, IPv6 BIG TCP is report-only, IPv4 BIG TCP has no prediction on 1.13, Hubble Relay is judged once for the cluster",
  );
  t.deepEqual(
    d.checks.filter((c) => c.check === "feature Hubble Relay").map((c) => [c.scope, c.actual]),
    [["cluster", 'enabled (Deployment hubble-relay "1/1 ready")']],
  );
});

test("the series' switches on 1.16.19 and 1.20.0: the tunnel and host routing come from the agent's Routing: line", (t) => {
  const d16 = judged("native", "1.16.19", SWITCHED, (n) => agentStatusFixture("1.16.19-bpf", n));
  t.deepEqual(d16.reasons, []);
  t.deepEqual(table(d16), [
    "Datapath mode: disabled | disabled | tunnel | ok",
    "KubeProxyReplacement: enabled | enabled | Disabled | ok",
    "IPv6 BIG TCP: disabled | disabled | Disabled | ok",
    "IPv4 BIG TCP: enabled | enabled | - | ok",
    "BandwidthManager: edt | edt | Disabled | ok",
    "Host Routing: bpf | bpf | Legacy | ok",
    "Masquerading: bpf | bpf | IPtables | ok",
    "Hubble Relay: enabled | enabled | disabled | ok",
  ]);
  const line0 = d16.features.nodes[0]?.lines[0];
  t.like(line0, { source: "cilium-dbg status: Routing:", agentSays: "Network: Native Host: BPF" });

  const bbr = { ...SWITCHED, ipv4BigTcp: "disabled", bandwidthManager: "edt+bbr" };
  const d20 = judged("native", "1.20.0", bbr, (n) => agentStatusFixture("1.20.0-bpf", n));
  t.deepEqual(d20.reasons, []);
  t.true(d20.features.ok);
  t.deepEqual(table(d20).slice(3, 5), [
    "IPv4 BIG TCP: disabled | disabled | - | ok",
    "BandwidthManager: edt+bbr | edt+bbr | Disabled | ok",
  ]);
});

test("an agent that fell back to legacy host routing refuses the verdict, with what was asked and what the agent says", (t) => {
  const d = judged("native", "1.20.0", { ...SWITCHED, ipv4BigTcp: "disabled", bandwidthManager: "edt+bbr" }, (n) =>
    agentStatusFixture("1.20.0-bpf", n).replace("Host: BPF", "Host: Legacy"),
  );
  t.is(d.verdict, "refused");
  t.false(d.features.ok);
  t.deepEqual(d.reasons, [
    'node-1: feature Host Routing: expected bpf (asked), found legacy (cilium-dbg status: Routing: … Host: "Legacy")',
    'node-2: feature Host Routing: expected bpf (asked), found legacy (cilium-dbg status: Routing: … Host: "Legacy")',
    'node-3: feature Host Routing: expected bpf (asked), found legacy (cilium-dbg status: Routing: … Host: "Legacy")',
  ]);
  const message = verdictFailureMessage(d);
  t.true(
    message.startsWith("Datapath verification failed: requested native routing, observed native routing"),
    message,
  );
  t.true(message.includes("No throughput or latency is measured or exported."));
  t.true(
    message.includes(
      "The agents contradict the config's prediction on Host Routing (expected: what the config asks for; found: what the agent says runs).",
    ),
    message,
  );
  t.true(
    message.includes(
      '- node-2: feature Host Routing: expected bpf (asked), found legacy (cilium-dbg status: Routing: … Host: "Legacy")',
    ),
    message,
  );
  t.true(
    message.includes("What to do: the agent falls back silently when a feature's requirement is missing"),
    message,
  );
});

test("a missing Hubble Relay, a missing status line and a wrong tunnel each refuse; IPv6 BIG TCP and null predictions never do", (t) => {
  const asked = predictFeatures(ARTICLE_CONFIG);
  const noRelay = judged("vxlan", "1.13.4", asked, (n) => agentStatusFixture("1.13.4-article", n), {
    exists: false,
    desired: 0,
    ready: 0,
    rolloutError: null,
  });
  t.deepEqual(noRelay.reasons, [
    'cluster: feature Hubble Relay: expected enabled (asked), found disabled (Deployment hubble-relay "no Deployment")',
  ]);

  const noLine = judged("vxlan", "1.13.4", asked, (n) =>
    agentStatusFixture("1.13.4-article", n).replace(/^BandwidthManager:.*\n/m, ""),
  );
  t.is(
    noLine.reasons[0],
    "node-1: feature BandwidthManager: expected disabled (asked), found nothing (cilium status: BandwidthManager: no such line)",
  );

  const reportOnly = judged("vxlan", "1.13.4", { ...asked, ipv6BigTcp: "enabled" }, (n) =>
    agentStatusFixture("1.13.4-article", n),
  );
  t.deepEqual(reportOnly.reasons, []);
  t.like(reportOnly.features.nodes[0]?.lines[2], {
    feature: "ipv6BigTcp",
    asked: "enabled",
    observed: "disabled",
    checked: false,
    ok: true,
  });

  // Native asked, the nodes still tunnel: the datapath checks refuse it once; the line shows both sides.
  const tunnel = datapathOutput(
    { ...req("native"), features: { ...asked, tunnel: "disabled" } },
    lab(cm113("native"), "vxlan", { agent: (n) => agentStatusFixture("1.13.4-article", n), relay: RELAY_UP }),
  );
  t.is(tunnel.verdict, "refused");
  t.true(
    tunnel.reasons.includes("node-1: tunnel device: expected none, found cilium_vxlan (vxlan, mtu 1500, port 8472)"),
  );
  t.false(tunnel.reasons.some((r) => r.includes(": feature ")));
  t.false(tunnel.features.ok);
  t.like(tunnel.features.nodes[0]?.lines[0], {
    asked: "disabled",
    observed: "vxlan",
    agentSays: "cilium_vxlan",
    ok: false,
  });
  t.false(verdictFailureMessage(tunnel).includes("contradict"));
});

test("without a prediction nothing is judged, and the features output still shows what runs", (t) => {
  const d = judged("vxlan", "1.16.19", undefined, (n) => agentStatusFixture("1.16.19-article", n));
  t.deepEqual(d.reasons, []);
  t.false(d.checks.some((c) => c.check.startsWith("feature ")));
  t.deepEqual(table(d), [
    "Datapath mode: - | vxlan | tunnel | ok",
    "KubeProxyReplacement: - | disabled | Disabled | ok",
    "IPv6 BIG TCP: - | disabled | Disabled | ok",
    "IPv4 BIG TCP: - | disabled | - | ok",
    "BandwidthManager: - | disabled | Disabled | ok",
    "Host Routing: - | legacy | Legacy | ok",
    "Masquerading: - | iptables | IPtables | ok",
    "Hubble Relay: - | enabled | disabled | ok",
  ]);
});

test("an agent that is not Ok refuses through its status check alone: its feature lines are shown, not judged", (t) => {
  const d = judged("vxlan", "1.13.4", predictFeatures(ARTICLE_CONFIG), (n) =>
    n.name === "node-3"
      ? agentStatusFixture("1.13.4-article", n)
          .replace("Cilium:                  Ok   1.13.4", "Cilium:                  Failure   1.13.4")
          .replace(/^BandwidthManager:.*\n/m, "")
      : agentStatusFixture("1.13.4-article", n),
  );
  t.deepEqual(d.reasons, ["node-3: agent status: expected Cilium: Ok, found Cilium: Failure"]);
  t.false(d.features.ok);
  t.like(d.features.nodes[2]?.lines[4], { feature: "bandwidthManager", observed: null, ok: false });
});
