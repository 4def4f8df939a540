/**
 * Cilium's Helm values, as one pure function of (config, chart version, server IP), and what the
 * cluster must show once they are applied. No Pulumi, no I/O: every branch is table-tested against
 * the key lists of the real charts (test/cilium/data/).
 *
 * The article's install is
 *   helm install cilium cilium/cilium --version 1.13.4 --namespace kube-system \
 *     --set operator.replicas=1 --set k8sServiceHost=<server IP> --set k8sServicePort=6443 \
 *     --set hubble.relay.enabled=true --set hubble.ui.enabled=true
 * and its switch to native routing is
 *   helm upgrade cilium cilium/cilium --namespace kube-system --reuse-values \
 *     --set tunnel=disabled --set autoDirectNodeRoutes=true --set ipv4NativeRoutingCIDR=10.0.0.0/22
 * (https://e-whisper.pages.dev/posts/47083/). We send the full values on every update instead of
 * `--reuse-values`: Helm's reuse renders the new chart with the old release's values
 * (helm/helm v3 pkg/action/upgrade.go `reuseValues()`), so a 1.13 → 1.14+ upgrade would carry the
 * 1.13 `tunnel` key (refused by charts 1.15.8+ and 1.16.2+, silently ignored by 1.15.0–1.15.7 and
 * 1.16.0–1.16.1) and the 1.13 default `ipam.operator.clusterPoolIPv4PodCIDR` (refused from 1.14.0).
 */
import { parseCidr, parseIpv4 } from "../config/cidr";
import type { LabConfig, RoutingMode } from "../config";
import { CILIUM_SUPPORTED_MINORS } from "../versions";

/** A Cilium chart version, `1.<minor>.<patch>`. */
export interface CiliumVersion {
  readonly minor: number;
  readonly patch: number;
}

/** Thrown when the values cannot be rendered; the message says which input and why. */
export class CiliumValuesError extends Error {
  override name = "CiliumValuesError";
}

const VERSION_RE = /^1\.(\d+)\.(\d+)$/;
const SUPPORTED = `1.${CILIUM_SUPPORTED_MINORS.first}.0 to 1.${CILIUM_SUPPORTED_MINORS.last}.x`;

/**
 * Parses a chart version such as `1.13.4` and checks that its minor is one whose values this
 * project renders (see `CILIUM_SUPPORTED_MINORS`). The config parser refuses the same versions
 * earlier; this is the values function's own guard.
 */
export function parseCiliumVersion(text: string): CiliumVersion {
  const m = VERSION_RE.exec(text);
  if (!m) {
    throw new CiliumValuesError(
      `Cilium chart version ${JSON.stringify(text)} is not a release version (1.<minor>.<patch>, such as 1.13.4).`,
    );
  }
  const minor = Number(m[1]);
  const patch = Number(m[2]);
  if (minor < CILIUM_SUPPORTED_MINORS.first || minor > CILIUM_SUPPORTED_MINORS.last) {
    throw new CiliumValuesError(
      `Cilium chart version ${text} is outside ${SUPPORTED}, the versions whose Helm key names this lab renders and tests ` +
        `(routing, IPAM and kube-proxy replacement keys differ between versions). Set cilium-lab:ciliumVersion to a version in that range.`,
    );
  }
  return { minor, patch };
}

/**
 * Whether the chart selects the datapath with `routingMode` + `tunnelProtocol` (1.14+) rather than
 * `tunnel` (1.13). 1.14 deprecated `tunnel` and ignores it once `routingMode` is set; 1.15+ drop it
 * (cilium/charts cilium-1.14.19.tgz → cilium/values.yaml l.2128–2158; cilium-1.15.0 configmap).
 */
export function hasRoutingModeKeys(version: CiliumVersion): boolean {
  return version.minor >= 14;
}

/**
 * Whether `kubeProxyReplacement` takes booleans (1.14+) rather than `disabled`/`partial`/`strict`
 * (1.13; 1.14–1.15 still accept those as deprecated, 1.16+ refuse them: "kubeProxyReplacement must
 * be explicitly set to a valid value (true or false) to continue.").
 */
export function hasBooleanKubeProxyReplacement(version: CiliumVersion): boolean {
  return version.minor >= 14;
}

/** The stack config the values depend on. */
export type CiliumValuesConfig = Pick<
  LabConfig,
  | "routingMode"
  | "autoDirectNodeRoutes"
  | "podCidr"
  | "podCidrMaskSize"
  | "nativeRoutingCidr"
  | "kubeProxyReplacement"
  | "hubble"
>;

/** The datapath keys of charts below 1.14. */
type LegacyRouting = {
  readonly tunnel: "vxlan" | "geneve" | "disabled";
};
/** The datapath keys of charts 1.14 and later. */
type ModernRouting = {
  readonly routingMode: "tunnel" | "native";
  readonly tunnelProtocol?: "vxlan" | "geneve";
};
/** Native routing's keys, both eras. */
type NativeRouting = {
  readonly autoDirectNodeRoutes: boolean;
  readonly ipv4NativeRoutingCIDR: string;
};

/**
 * The values sent to the chart: the article's base, the routing keys of the chart's era, and our
 * extras. A type alias (not an interface) so that it is assignable to the Release's
 * `{ [key: string]: any }`.
 */
export type CiliumValues = {
  readonly k8sServiceHost: string;
  readonly k8sServicePort: number;
  readonly operator: { readonly replicas: 1; readonly rollOutPods: true };
  readonly hubble: { readonly relay: { readonly enabled: boolean }; readonly ui: { readonly enabled: boolean } };
  readonly ipam: {
    readonly mode: "cluster-pool";
    readonly operator: {
      readonly clusterPoolIPv4PodCIDRList: readonly string[];
      readonly clusterPoolIPv4MaskSize: number;
    };
  };
  readonly kubeProxyReplacement: "disabled" | "strict" | boolean;
  readonly rollOutCiliumPods: true;
} & (LegacyRouting | ModernRouting) &
  Partial<NativeRouting>;

/** The API server port k3s listens on (k3s-io/docs docs/cli/server.md `--https-listen-port` 6443). */
export const K8S_SERVICE_PORT = 6443;

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) {
      deepFreeze(v);
    }
    Object.freeze(o);
  }
  return o;
}

/**
 * The Helm values for Cilium `ciliumVersion` on a lab whose k3s server listens on `serverIp`.
 *
 * The article's `--set` flags, for every version:
 * - `operator.replicas: 1` (the chart's default is 2, one per node by required anti-affinity,
 *   1.13.4 values.yaml l.1869–1892; one is enough for a lab).
 * - `k8sServiceHost: <server lab IP>`, `k8sServicePort: 6443`: the agents reach the API server
 *   directly, not through the `kubernetes` Service that they themselves implement (needed with
 *   kube-proxy replacement, harmless without).
 * - `hubble.relay.enabled`, `hubble.ui.enabled` from `hubble` (the article enables both).
 *
 * Routing, in the chart's own vocabulary (never both: charts 1.15.8+ and 1.16.2+ refuse `tunnel`,
 * 1.15.0–1.15.7 and 1.16.0–1.16.1 silently ignore it and stay on VXLAN):
 * - below 1.14: `tunnel: vxlan | geneve | disabled` (cilium-1.13.4 values.yaml l.1722–1728);
 * - from 1.14: `routingMode: tunnel | native`, and `tunnelProtocol: vxlan | geneve` in tunnel mode
 *   (with `routingMode: native` it need not be set: cilium/cilium#42648; 1.17+ render
 *   `tunnel-protocol: vxlan` in the ConfigMap anyway, which says nothing about the mode).
 * - native: `autoDirectNodeRoutes` (true unless the stack says false: every node then installs a
 *   route to each peer's pod block via that peer, which needs all nodes on one L2 segment) and
 *   `ipv4NativeRoutingCIDR` = `nativeRoutingCidr`, the destinations not masqueraded between nodes
 *   (without it the agent refuses native routing with IPv4 masquerade on).
 *
 * Our extras, each needed for an honest, repeatable lab:
 * - `ipam.mode: cluster-pool` with `ipam.operator.clusterPoolIPv4PodCIDRList: [podCidr]` and
 *   `clusterPoolIPv4MaskSize: podCidrMaskSize` (same key names 1.13 → 1.20): the pod addresses are
 *   then ours, the same block k3s is given as `--cluster-cidr`, kept off the libvirt network, and
 *   covered by `ipv4NativeRoutingCIDR` (the default pool 10.0.0.0/8 would swallow k3s' service CIDR
 *   10.43.0.0/16). In 1.13 the list wins over the deprecated `clusterPoolIPv4PodCIDR` default
 *   whenever it is non-empty (1.13 cilium-configmap.yaml, quoted in cilium/cilium#24214); we never
 *   send the deprecated key, which 1.14+ refuse.
 * - `kubeProxyReplacement`: `disabled`/`strict` below 1.14, `false`/`true` after, always explicit
 *   (1.13.4's values.yaml only mentions it in a comment, l.1444; the templates default it).
 * - `rollOutCiliumPods: true`, `operator.rollOutPods: true`: a mode switch changes only the
 *   `cilium-config` ConfigMap, which the agents read at start; these flags add the ConfigMap's
 *   checksum to the pod templates, so `helm upgrade` really restarts the agents and the operator
 *   (both default false, 1.13.4 values.yaml l.111 and l.1849).
 *
 * Left alone on purpose: `MTU` (auto-detected, so VXLAN/Geneve pod routes get base − 50 = 1450 on
 * the 1500-MTU lab network as Cilium computes it), `bpf.masquerade`, `devices`, host routing,
 * bandwidth manager: nothing that changes the datapath beyond the article.
 *
 * Throws {@link CiliumValuesError} on inputs the config parser already refuses (version range,
 * auto direct routes with a tunnel, native routing without a CIDR) and on a server IP that is not
 * IPv4.
 */
export function ciliumValues(config: CiliumValuesConfig, ciliumVersion: string, serverIp: string): CiliumValues {
  const version = parseCiliumVersion(ciliumVersion);
  if (parseIpv4(serverIp) === undefined) {
    throw new CiliumValuesError(
      `k8sServiceHost must be the k3s server's IPv4 address on the lab network (got ${JSON.stringify(serverIp)}).`,
    );
  }
  const pool = parseCidr(config.podCidr);
  if (typeof pool === "string") {
    throw new CiliumValuesError(`podCidr ${JSON.stringify(config.podCidr)} ${pool}.`);
  }
  if (
    !Number.isInteger(config.podCidrMaskSize) ||
    config.podCidrMaskSize <= pool.prefix ||
    config.podCidrMaskSize > 28
  ) {
    throw new CiliumValuesError(
      `podCidrMaskSize ${config.podCidrMaskSize} must be longer than podCidr's /${pool.prefix} and at most 28.`,
    );
  }

  const native = config.routingMode === "native";
  if (!native && config.autoDirectNodeRoutes) {
    throw new CiliumValuesError(
      `autoDirectNodeRoutes cannot be true with routingMode ${config.routingMode}: Cilium's agent refuses to start ` +
        `("auto-direct-node-routes cannot be used with tunneling"). Use it only with routingMode native.`,
    );
  }
  if (native && typeof parseCidr(config.nativeRoutingCidr) === "string") {
    throw new CiliumValuesError(
      `routingMode native needs nativeRoutingCidr, an IPv4 CIDR covering every node's pod block (got ${JSON.stringify(config.nativeRoutingCidr)}): ` +
        `without it the agent refuses native routing with IPv4 masquerading on.`,
    );
  }

  const routing: LegacyRouting | ModernRouting = hasRoutingModeKeys(version)
    ? native
      ? { routingMode: "native" }
      : { routingMode: "tunnel", tunnelProtocol: config.routingMode }
    : { tunnel: native ? "disabled" : config.routingMode };
  const nativeKeys: Partial<NativeRouting> = native
    ? { autoDirectNodeRoutes: config.autoDirectNodeRoutes, ipv4NativeRoutingCIDR: config.nativeRoutingCidr }
    : {};
  const kubeProxyReplacement = hasBooleanKubeProxyReplacement(version)
    ? config.kubeProxyReplacement
    : config.kubeProxyReplacement
      ? "strict"
      : "disabled";

  return deepFreeze({
    k8sServiceHost: serverIp,
    k8sServicePort: K8S_SERVICE_PORT,
    operator: { replicas: 1, rollOutPods: true },
    hubble: { relay: { enabled: config.hubble }, ui: { enabled: config.hubble } },
    ...routing,
    ...nativeKeys,
    ipam: {
      mode: "cluster-pool",
      operator: { clusterPoolIPv4PodCIDRList: [config.podCidr], clusterPoolIPv4MaskSize: config.podCidrMaskSize },
    },
    kubeProxyReplacement,
    rollOutCiliumPods: true,
  });
}

/** What the cluster must show once the values are applied: the proof of which datapath runs. */
export interface CiliumDatapath {
  /** The stack's routing mode. */
  readonly routingMode: RoutingMode;
  /** The encapsulation device on every node in tunnel mode; `null` in native mode (the agent removes unused tunnel devices). */
  readonly tunnelDevice: "cilium_vxlan" | "cilium_geneve" | null;
  /**
   * Bytes Cilium subtracts from the base MTU on pod routes: 50 for VXLAN/Geneve over IPv4 (outer
   * IPv4 20 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14), 0 in native mode. Pod `eth0` keeps the
   * base MTU in both (cilium/cilium pkg/mtu/mtu.go `TunnelOverhead`, `getRouteMTU`).
   */
  readonly routeMtuOverhead: 50 | 0;
  /**
   * Entries the `cilium-config` ConfigMap must hold, in the chart version's vocabulary. It shows
   * what the chart rendered, not what a running agent uses: pair it with the agent's own report.
   */
  readonly configMap: Readonly<Record<string, string>>;
}

/** The datapath evidence verification checks for `config` on chart `ciliumVersion`. */
export function ciliumDatapath(config: CiliumValuesConfig, ciliumVersion: string): CiliumDatapath {
  const version = parseCiliumVersion(ciliumVersion);
  const native = config.routingMode === "native";
  const configMap: Record<string, string> = hasRoutingModeKeys(version)
    ? native
      ? { "routing-mode": "native" }
      : { "routing-mode": "tunnel", "tunnel-protocol": config.routingMode }
    : { tunnel: native ? "disabled" : config.routingMode };
  if (native) {
    configMap["auto-direct-node-routes"] = String(config.autoDirectNodeRoutes);
    configMap["ipv4-native-routing-cidr"] = config.nativeRoutingCidr;
  }
  configMap["kube-proxy-replacement"] = hasBooleanKubeProxyReplacement(version)
    ? String(config.kubeProxyReplacement)
    : config.kubeProxyReplacement
      ? "strict"
      : "disabled";
  return deepFreeze({
    routingMode: config.routingMode,
    tunnelDevice: native ? null : config.routingMode === "vxlan" ? "cilium_vxlan" : "cilium_geneve",
    routeMtuOverhead: native ? 0 : 50,
    configMap,
  });
}
