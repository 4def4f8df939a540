/**
 * The series' datapath switches (BPF masquerading, host routing, bandwidth manager, IPv4 BIG TCP) as
 * Helm values, and the `cilium-config` entries each one renders, per chart version. Pure, no I/O.
 *
 * Each switch sends only what changes the datapath: at the article's settings (iptables
 * masquerading, legacy host routing, no bandwidth manager, no BIG TCP) nothing is added, so the
 * values — and the release digest — of every lab from before these switches stay byte for byte the
 * same, and no existing lab sees a Helm upgrade for them.
 *
 * The ConfigMap entries are the real charts' renders, with helm 3.21.4 (kube 1.26.6) from
 * cilium/charts cilium-1.13.4.tgz, cilium-1.16.19.tgz and cilium-1.20.0.tgz, `--set` one switch over the
 * defaults (test/cilium/switches.test.ts holds the rendered entries). The templates behind them
 * (templates/cilium-configmap.yaml, the same in the 1.13 and 1.20 eras):
 *   {{- if (not (kindIs "invalid" .Values.bpf.masquerade)) }} enable-bpf-masquerade: {{ .Values.bpf.masquerade | quote }}
 *   {{- if (not (kindIs "invalid" .Values.bpf.hostLegacyRouting)) }} enable-host-legacy-routing: {{ … | quote }}
 *   {{- if .Values.bandwidthManager.enabled }} enable-bandwidth-manager, enable-bbr[, enable-bbr-hostns-only (1.18+)]
 *   enable-ipv4-big-tcp: {{ .Values.enableIPv4BIGTCP | quote }}   (1.14+, always rendered)
 * (`kindIs "invalid"` is true only for null: the values.yaml default `~` renders nothing, an explicit
 * `false` renders "false"; cilium/cilium main @002c6ff, and the 1.13-era template in the fork
 * cybozu-go/cilium @2214eae.)
 */
import type { LabConfig } from "../../config";
import { CiliumValuesError, hasBbrHostNamespaceOnly, hasIpv4BigTcp, type CiliumVersion } from "./version";

/** The stack config the switches depend on. */
export type SwitchConfig = Pick<
  LabConfig,
  "kubeProxyReplacement" | "bpfMasquerade" | "hostRouting" | "bandwidthManager" | "ipv4BigTcp"
>;

/** The switches' Helm values; each key is present only when a switch needs it. */
export type SwitchValues = {
  readonly bpf?: { readonly masquerade?: true; readonly hostLegacyRouting?: boolean };
  readonly bandwidthManager?: { readonly enabled: true; readonly bbr: boolean };
  readonly enableIPv4BIGTCP?: true;
};

/**
 * Whether `hostRouting: legacy` must be sent as `bpf.hostLegacyRouting: true`: only when the agent
 * would otherwise pick BPF host routing by itself. With the key unset (the chart default `~`) the
 * agent uses BPF host routing wherever it can, and falls back to legacy, with its reason in the log,
 * when IPsec is on, when masquerading is iptables' ("BPF host routing requires enable-bpf-masquerade."),
 * when kube-proxy replacement is off ("BPF host routing requires kube-proxy-replacement=true.", 1.13:
 * `strict`) or on kernels before 5.10 (cilium/cilium daemon/cmd/kube_proxy_replacement.go
 * `finishKubeProxyReplacementInit`, "Falling back to legacy host routing (enable-host-legacy-routing=true)").
 * So only kube-proxy replacement together with BPF masquerading can give BPF host routing by
 * accident; every lab kernel (5.15 and later) passes the 5.10 probe.
 */
export function forcesLegacyHostRouting(config: SwitchConfig): boolean {
  return config.hostRouting === "legacy" && config.kubeProxyReplacement && config.bpfMasquerade;
}

/**
 * The switches' Helm values for chart `version` (`ciliumVersion`, its text, for the error):
 * - `bpfMasquerade: true` → `bpf.masquerade: true`; false sends nothing (the chart's `~`: iptables).
 * - `hostRouting: bpf` → `bpf.hostLegacyRouting: false`, the request in the ConfigMap (the agent's
 *   default is the same; its status line proves what runs). `legacy` → `bpf.hostLegacyRouting: true`
 *   when {@link forcesLegacyHostRouting}, else nothing: the agent is then on legacy by its own rule,
 *   and sending `true` there would change nothing but the release of every existing lab (a Helm
 *   upgrade restarting all agents, and a re-run of the measurements, for the same datapath).
 * - `bandwidthManager: on` → `bandwidthManager: {enabled: true, bbr: false}`; `bbr` → `bbr: true`;
 *   `off` sends nothing (the chart's `enabled: false`, which renders no entry).
 * - `ipv4BigTcp: true` → `enableIPv4BIGTCP: true` (1.14+); false sends nothing (the chart's `false`).
 *
 * Throws {@link CiliumValuesError} for `ipv4BigTcp` on 1.13, whose chart has no such key (the config
 * parser refuses it earlier; this is the values function's own guard).
 */
export function switchValues(config: SwitchConfig, version: CiliumVersion, ciliumVersion: string): SwitchValues {
  if (config.ipv4BigTcp && !hasIpv4BigTcp(version)) {
    throw new CiliumValuesError(
      `ipv4BigTcp needs Cilium 1.14 or later: chart ${ciliumVersion} has no enableIPv4BIGTCP value (1.13 knows only IPv6 BIG TCP). ` +
        `Set cilium-lab:ipv4BigTcp false, or cilium-lab:ciliumVersion to 1.14.0 or later.`,
    );
  }
  const hostLegacyRouting = config.hostRouting === "bpf" ? false : forcesLegacyHostRouting(config) ? true : undefined;
  const bpf = {
    ...(config.bpfMasquerade ? { masquerade: true as const } : {}),
    ...(hostLegacyRouting === undefined ? {} : { hostLegacyRouting }),
  };
  return {
    ...(Object.keys(bpf).length > 0 ? { bpf } : {}),
    ...(config.bandwidthManager === "off"
      ? {}
      : { bandwidthManager: { enabled: true, bbr: config.bandwidthManager === "bbr" } }),
    ...(config.ipv4BigTcp ? { enableIPv4BIGTCP: true as const } : {}),
  };
}

/**
 * The `cilium-config` entries the switches' values render on chart `version`, exactly as the real
 * charts render them (strings, as in the ConfigMap). Only entries the lab's values cause are listed:
 * a switch at the article's setting adds none.
 */
export function switchConfigMap(config: SwitchConfig, version: CiliumVersion): Record<string, string> {
  const entries: Record<string, string> = {};
  if (config.bpfMasquerade) {
    entries["enable-bpf-masquerade"] = "true";
  }
  if (config.hostRouting === "bpf") {
    entries["enable-host-legacy-routing"] = "false";
  } else if (forcesLegacyHostRouting(config)) {
    entries["enable-host-legacy-routing"] = "true";
  }
  if (config.bandwidthManager !== "off") {
    entries["enable-bandwidth-manager"] = "true";
    entries["enable-bbr"] = String(config.bandwidthManager === "bbr");
    if (hasBbrHostNamespaceOnly(version)) {
      entries["enable-bbr-hostns-only"] = "false";
    }
  }
  if (config.ipv4BigTcp && hasIpv4BigTcp(version)) {
    entries["enable-ipv4-big-tcp"] = "true";
  }
  return entries;
}
