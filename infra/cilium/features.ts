/**
 * The article's feature list and what the stack config predicts the Cilium agent will run. Pure:
 * no Pulumi, no I/O. The prediction comes from the Cilium version, the image's kernel, kube-proxy
 * replacement, BPF masquerading and the NIC driver (virtio_net on every lab VM); requests that
 * cannot work are refused by the config parser (infra/config/rules.ts) with their reason.
 *
 * SKELETON (types shared by the prediction and the verification's observation); the requirement
 * matrix and `predictFeatures` are filled in with their sources.
 */
import type { LabConfig } from "../config";

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

/** The stack config the prediction reads. */
export type FeatureConfig = Pick<
  LabConfig,
  | "routingMode"
  | "ciliumVersion"
  | "image"
  | "kubeProxyReplacement"
  | "bpfMasquerade"
  | "hostRouting"
  | "bandwidthManager"
  | "ipv4BigTcp"
  | "hubble"
>;
