/**
 * The article's feature list and what the stack config predicts the Cilium agent will run. Pure:
 * no Pulumi, no I/O. The prediction comes from the Cilium version, the image's kernel, kube-proxy
 * replacement, BPF masquerading and the NIC driver (virtio_net on every lab VM); requests that
 * cannot work are refused by the config parser (infra/config/rules.ts) with their reason.
 *
 * The requirement matrix, with its sources, is feature-requirements.ts; the refusals are
 * feature-problems.ts. Cilium falls back silently for some missing requirements (BPF host routing
 * stays Legacy), so only the agent's own status line proves what runs: the verification compares
 * it with this prediction.
 */
import type { LabConfig } from "../config";
import {
  bpfHostRoutingRuns,
  bpfMasqueradeRuns,
  ciliumMinor,
  IPV4_BIG_TCP_FIRST_MINOR,
  kernelAtLeast,
  MIN_KERNEL,
  nicSupportsBigTcp,
  platformOf,
  type Platform,
} from "./feature-requirements";

export { featureProblems, featureProblemsOn, featureWarnings, type FeatureProblem } from "./feature-problems";
export {
  BIG_TCP_NICS,
  kernelAtLeast,
  kernelOf,
  LAB_NIC_DRIVER,
  MIN_KERNEL,
  platformOf,
  type Platform,
} from "./feature-requirements";

/**
 * The seven lines of the article's starting list (cilium-cli's summary after a default install),
 * plus IPv4 BIG TCP, which the lab can request (the article's line is IPv6 BIG TCP, report-only
 * because the lab is IPv4-only).
 */
export type FeatureName =
  | "tunnel"
  | "kubeProxyReplacement"
  | "ipv6BigTcp"
  | "ipv4BigTcp"
  | "bandwidthManager"
  | "hostRouting"
  | "masquerading"
  | "hubbleRelay";

/** The features in the order the article lists them (IPv4 BIG TCP after IPv6's). */
export const FEATURE_NAMES: readonly FeatureName[] = [
  "tunnel",
  "kubeProxyReplacement",
  "ipv6BigTcp",
  "ipv4BigTcp",
  "bandwidthManager",
  "hostRouting",
  "masquerading",
  "hubbleRelay",
];

/**
 * One feature's state, in a small normalised vocabulary both sides use: the prediction here, and
 * the verification's parse of the agent's words (`Disabled`, `Strict`, `EDT with BPF [BBR] [eth0]`…).
 * - tunnel: `vxlan` | `geneve` | `disabled`
 * - kubeProxyReplacement, ipv6BigTcp, ipv4BigTcp, hubbleRelay: `enabled` | `disabled`
 * - bandwidthManager: `disabled` | `edt` | `edt+bbr`
 * - hostRouting: `legacy` | `bpf`
 * - masquerading: `iptables` | `bpf` | `disabled`
 * `null` in a prediction: the version has no such line (IPv4 BIG TCP on 1.13) or it cannot be known
 * from config (a custom image's kernel).
 */
export type FeatureState = string;

/** What the config predicts, feature by feature. */
export type PredictedFeatures = Readonly<Record<FeatureName, FeatureState | null>>;

/**
 * The article's starting list, word for word ("after the default cilium install, the Cilium feature
 * enablement status is as follows": 1. datapath mode: tunnel … 7. Hubble Relay: disabled). The
 * article has no IPv4 BIG TCP line.
 */
export const ARTICLE_FEATURES: Readonly<Record<Exclude<FeatureName, "ipv4BigTcp">, string>> = {
  tunnel: "tunnel",
  kubeProxyReplacement: "Disabled",
  ipv6BigTcp: "Disabled",
  bandwidthManager: "Disabled",
  hostRouting: "Legacy",
  masquerading: "IPtables",
  hubbleRelay: "disabled",
};

/**
 * The config key that switches each feature (`null`: none, IPv6 BIG TCP is report-only). Masquerading
 * is switched by `bpfMasquerade`, Hubble Relay by `hubble` (relay and UI together).
 */
export const FEATURE_KEYS: Readonly<Record<FeatureName, keyof LabConfig | null>> = {
  tunnel: "routingMode",
  kubeProxyReplacement: "kubeProxyReplacement",
  ipv6BigTcp: null,
  ipv4BigTcp: "ipv4BigTcp",
  bandwidthManager: "bandwidthManager",
  hostRouting: "hostRouting",
  masquerading: "bpfMasquerade",
  hubbleRelay: "hubble",
};

/** The stack config keys the prediction reads. */
export const FEATURE_CONFIG_KEYS = [
  "routingMode",
  "ciliumVersion",
  "image",
  "kubeProxyReplacement",
  "bpfMasquerade",
  "hostRouting",
  "bandwidthManager",
  "ipv4BigTcp",
  "hubble",
] as const satisfies readonly (keyof LabConfig)[];

/** The stack config the prediction reads. */
export type FeatureConfig = Pick<LabConfig, (typeof FEATURE_CONFIG_KEYS)[number]>;

/** On or off, in the vocabulary's words. */
function onOff(on: boolean): FeatureState {
  return on ? "enabled" : "disabled";
}

/** A tri-state (`null`: unknowable) as one of two states. */
function either(value: boolean | null, yes: FeatureState, no: FeatureState): FeatureState | null {
  return value === null ? null : value ? yes : no;
}

/**
 * The bandwidth manager. `on` is EDT with fq ("BandwidthManager: EDT with BPF"), disabled by the
 * agent on kernels before 5.1. `bbr` adds BBR for pods, which needs kernel 5.18 and BPF host routing:
 * without either the agent refuses to start ("BPF bandwidth manager's BBR setup requires BPF host
 * routing.", log.Fatal in cilium/cilium v1.13 pkg/bandwidth/bandwidth.go InitBandwidthManager; an
 * error in later pkg/datapath/linux/bandwidth/bandwidth.go), so nothing is predicted (`null`).
 * Tuning guide "Bandwidth Manager" / "BBR congestion control for Pods",
 * https://docs.cilium.io/en/v1.13/operations/performance/tuning/. The guide also lists kube-proxy
 * replacement under the bandwidth manager's requirements, but the agent checks only the kernel and
 * its devices (v1.13 pkg/bandwidth/bandwidth.go ProbeBandwidthManager, InitBandwidthManager), and
 * "The bandwidth enforcement is supported for direct routing as well as tunneling mode"
 * (https://docs.cilium.io/en/stable/network/kubernetes/bandwidth-manager/): the config refuses
 * nothing there, and the verification reads the agent's `BandwidthManager:` line.
 */
function bandwidthManagerState(config: FeatureConfig, platform: Platform): FeatureState | null {
  if (config.bandwidthManager === "off") {
    return "disabled";
  }
  if (platform.kernel === null) {
    return null;
  }
  if (!kernelAtLeast(platform.kernel, MIN_KERNEL.bandwidthManager)) {
    return "disabled";
  }
  if (config.bandwidthManager === "on") {
    return "edt";
  }
  const hostRouting = bpfHostRoutingRuns(config, platform);
  return kernelAtLeast(platform.kernel, MIN_KERNEL.bbr) && hostRouting === true ? "edt+bbr" : null;
}

/**
 * IPv4 BIG TCP: no such line on 1.13 (`null`). Requested, the agent refuses to start in tunnel mode
 * or with legacy host routing ("BIG TCP is not supported in tunneling mode" / "... with legacy host
 * routing", cilium/cilium pkg/datapath/linux/bigtcp/bigtcp.go validateConfig; log.Fatal in 1.14's
 * InitBIGTCP): `null`. On an older kernel, or when the NIC does not take the larger GSO size, it
 * disables the feature and says so in its log ("Cannot enable --enable-ipv4-big-tcp, needs kernel
 * 6.3 or newer"; "Could not modify IPv4 gro_max_size and gso_max_size, disabling BIG TCP").
 */
function ipv4BigTcpState(config: FeatureConfig, platform: Platform): FeatureState | null {
  if (ciliumMinor(config.ciliumVersion) < IPV4_BIG_TCP_FIRST_MINOR) {
    return null;
  }
  if (!config.ipv4BigTcp) {
    return "disabled";
  }
  const hostRouting = bpfHostRoutingRuns(config, platform);
  if (config.routingMode !== "native" || hostRouting !== true || platform.kernel === null) {
    return null;
  }
  const runs = kernelAtLeast(platform.kernel, MIN_KERNEL.ipv4BigTcp) && nicSupportsBigTcp(platform.nicDriver);
  return onOff(runs);
}

/**
 * What the agent will run on a node of the given platform, feature by feature. Meaningful for the
 * configs the parser accepts ({@link featureProblems} empty); for a refused request it gives the
 * state Cilium silently falls back to, or `null` where the agent would not start.
 * - tunnel: the routing mode (native: `disabled`).
 * - kubeProxyReplacement: as configured.
 * - ipv6BigTcp: always `disabled`: the lab is IPv4-only and never sets `enableIPv6BIGTCP`
 *   (report-only, the article's line).
 * - ipv4BigTcp, bandwidthManager: see above.
 * - hostRouting: `bpf` only when requested with kube-proxy replacement, BPF masquerading and
 *   kernel 5.10; else `legacy` (see bpfHostRoutingRuns).
 * - masquerading: `bpf` with `bpfMasquerade` and kube-proxy replacement, else `iptables` (the lab
 *   never turns masquerading off).
 * - hubbleRelay: the `hubble` key (Helm `hubble.relay.enabled`).
 */
export function predictFeaturesOn(config: FeatureConfig, platform: Platform): PredictedFeatures {
  return {
    tunnel: config.routingMode === "native" ? "disabled" : config.routingMode,
    kubeProxyReplacement: onOff(config.kubeProxyReplacement),
    ipv6BigTcp: "disabled",
    ipv4BigTcp: ipv4BigTcpState(config, platform),
    bandwidthManager: bandwidthManagerState(config, platform),
    hostRouting: either(bpfHostRoutingRuns(config, platform), "bpf", "legacy"),
    masquerading: either(bpfMasqueradeRuns(config), "bpf", "iptables"),
    hubbleRelay: onOff(config.hubble),
  };
}

/** What the agent will run on the lab's nodes: {@link predictFeaturesOn} with the image's kernel and virtio_net. */
export function predictFeatures(config: FeatureConfig): PredictedFeatures {
  return predictFeaturesOn(config, platformOf(config));
}
