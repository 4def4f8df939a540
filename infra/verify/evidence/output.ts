/**
 * Output formatting: the `datapath` stack output (the verdict with its evidence), the same output
 * when the evidence could not be read, and the messages of a refused datapath. Pure: no Pulumi, no I/O.
 */
import type { RoutingMode } from "../../config";
import type { DatapathEvidence, ObservedMode } from "./build";
import { KUBE_PROXY_CHAIN } from "./collectors";
import { featureCheckName, featuresOutput, type FeaturesOutput } from "./features";
import { FEATURE_LABELS } from "./feature-states";
import { formatRoute } from "./ip";
import { describeDevices, modeWord, type ObservedDatapath } from "./observed";
import { KUBE_PROXY_CHECK, verdict, type Check, type RequestedDatapath } from "./verdict";

/** The multi-line summary of the evidence that goes into a failure message. */
export function describeEvidence(evidence: DatapathEvidence): string[] {
  const cm = Object.entries(evidence.configured.configMap)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const lines = [`cilium-config (chart ${evidence.ciliumVersion}): ${cm === "" ? "no routing keys" : cm}`];
  for (const c of evidence.cluster) {
    lines.push(
      `node ${c.name}: InternalIP ${c.internalIp ?? "?"}, pod CIDRs ${c.podCidrs.join(", ") || "none"} (${c.podCidrSource})`,
    );
  }
  for (const n of evidence.nodes) {
    const pods = n.pods
      .filter((p) => p.wired)
      .map((p) => `${p.pod ?? p.netns} [${p.routes.map(formatRoute).join("; ")}]`)
      .join(", ");
    const agent =
      n.agent === null
        ? "no agent"
        : `${n.agent.command}: Cilium ${n.agent.state ?? "?"} ${n.agent.version ?? ""}`.trimEnd() +
          (n.agent.routing
            ? `, Routing: ${n.agent.routing.line}`
            : n.agent.hostRouting
              ? `, Host Routing: ${n.agent.hostRouting}`
              : "");
    lines.push(
      `${n.node} (${n.ip}): tunnel devices ${describeDevices(n)}; routes to other pod CIDRs ${n.podCidrRoutes.map(formatRoute).join("; ") || "none"}; ` +
        `pod routes ${pods || "none (no pod namespaces)"}; ${agent}` +
        (n.iptables.kubeProxyChains.length > 0
          ? `; kube-proxy's ${KUBE_PROXY_CHAIN} in ${n.iptables.kubeProxyChains.join(", ")}`
          : ""),
    );
  }
  return lines;
}

/** The `datapath` stack output. */
export interface DatapathOutput {
  /** The requested routing mode (`vxlan`, `geneve`, `native`). */
  readonly requested: RoutingMode;
  /** What runs on the nodes (tunnel devices); `observedBy` has each side's view. */
  readonly observed: ObservedMode;
  /** `confirmed` when every check passed; `refused` otherwise (and `pulumi up` fails: no throughput). */
  readonly verdict: "confirmed" | "refused";
  /** The full request the checks were made against. */
  readonly request: RequestedDatapath;
  /** The routing mode as cilium-config, the agents and the nodes each show it, plus pod route MTUs and direct routes. */
  readonly observedBy: ObservedDatapath;
  /** One line per failed check; empty when confirmed. */
  readonly reasons: readonly string[];
  /** Every check, passed or failed: the proof. */
  readonly checks: readonly Check[];
  /** Kernel, NIC MTU, driver and offloads per node: recorded, not judged. */
  readonly notes: readonly string[];
  readonly evidence: DatapathEvidence;
  /** The article's feature lines per node, asked / observed / article (also the `features` stack output). */
  readonly features: FeaturesOutput;
}

/** Judges the evidence and shapes the `datapath` output. */
export function datapathOutput(request: RequestedDatapath, evidence: DatapathEvidence): DatapathOutput {
  const v = verdict(request, evidence);
  return {
    requested: request.routingMode,
    observed: v.observed.routingMode,
    verdict: v.ok ? "confirmed" : "refused",
    request,
    observedBy: v.observed,
    reasons: v.reasons,
    checks: v.checks,
    notes: v.notes,
    evidence,
    features: featuresOutput(request, evidence),
  };
}

/**
 * The `datapath` output when the evidence itself could not be read (a collector printed something
 * that is not its document): nothing is proven, so the verdict is `refused`, with each problem as
 * a reason. Keeps the failure on the same path as a wrong datapath: one clear error, no Job.
 */
export function unreadableEvidence(request: RequestedDatapath, problems: readonly string[]): DatapathOutput {
  const unknown: ObservedDatapath = {
    routingMode: "unknown",
    configured: "unknown",
    agents: "unknown",
    nodes: "unknown",
    podRouteMtus: [],
    directNodeRoutes: null,
  };
  const evidence: DatapathEvidence = {
    ciliumVersion: request.ciliumVersion,
    measuredPods: [],
    configured: { configMap: {}, mode: "unknown", readAs: "not read" },
    cluster: [],
    nodes: [],
    hubbleRelay: null,
  };
  return {
    requested: request.routingMode,
    observed: "unknown",
    verdict: "refused",
    request,
    observedBy: unknown,
    reasons: problems.map((p) => `evidence: ${p}`),
    checks: problems.map((p) => ({
      scope: "evidence",
      check: "collector output",
      expected: "a readable document",
      actual: p,
      ok: false,
    })),
    notes: [],
    evidence,
    features: featuresOutput(request, evidence),
  };
}

/** The error message of `pulumi up` when the datapath is not the requested one: the verdict and the evidence. */
export function verdictFailureMessage(d: DatapathOutput): string {
  const o = d.observedBy;
  const kubeProxyNodes = d.checks.filter((c) => c.check === KUBE_PROXY_CHECK && !c.ok).map((c) => c.scope);
  const kubeProxyFix =
    kubeProxyNodes.length === 0
      ? []
      : [
          `kube-proxy is still in the datapath of ${kubeProxyNodes.join(", ")} although Cilium replaces it: on each, restart k3s ` +
            "(`sudo systemctl restart k3s-agent`; `k3s` on the server) so it takes `--disable-kube-proxy` from the server, remove kube-proxy's rules " +
            "(`sudo sh -c 'iptables-save | grep -v KUBE- | iptables-restore'`, the same with ip6tables-save/ip6tables-restore), then `pulumi up` again.",
        ];
  const featureNames = new Set(Object.values(FEATURE_LABELS).map((label) => featureCheckName({ label })));
  const contradicted = [...new Set(d.checks.filter((c) => !c.ok && featureNames.has(c.check)).map((c) => c.check))];
  return [
    `Datapath verification failed: requested ${modeWord(d.requested)}, observed ${modeWord(d.observed)} ` +
      `(cilium-config: ${modeWord(o.configured)}; agents: ${modeWord(o.agents)}; nodes: ${modeWord(o.nodes)}). ` +
      `No throughput or latency is measured or exported.`,
    ...(contradicted.length === 0
      ? []
      : [
          `The agents contradict the config's prediction on ${contradicted.map((c) => c.replace(/^feature /, "")).join(", ")} ` +
            "(expected: what the config asks for; found: what the agent says runs).",
        ]),
    "Failed checks:",
    ...d.reasons.map((r) => `- ${r}`),
    "Evidence:",
    ...describeEvidence(d.evidence).map((l) => `- ${l}`),
    ...d.notes.map((l) => `- ${l}`),
    ...kubeProxyFix.map((l) => `What to do: ${l}`),
    ...(contradicted.length === 0
      ? []
      : [
          "What to do: the agent falls back silently when a feature's requirement is missing (BPF host routing needs kube-proxy " +
            "replacement, BPF masquerading and kernel ≥ 5.10; BIG TCP needs native routing, a recent kernel and a NIC driver that " +
            "supports it; BBR needs kernel ≥ 5.18): read the agent's log (`sudo k3s kubectl -n kube-system logs ds/cilium | grep -i " +
            "'falling back\\|cannot enable'`), fix the requirement or the config, restart the agents, then `pulumi up` again.",
        ]),
    "What to do: if cilium-config is right but the agents or nodes disagree, the agents run an older configuration: " +
      "`sudo k3s kubectl -n kube-system rollout restart ds/cilium`, then recreate the pods (a pod's route MTU is fixed when it is created), " +
      "then `pulumi up` again. If cilium-config is wrong, the Helm values are: check cilium-lab:routingMode and cilium-lab:ciliumVersion.",
  ].join("\n");
}
