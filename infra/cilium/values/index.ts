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
import { parseCidr, parseIpv4 } from "../../config/cidr";
import type { LabConfig, RoutingMode } from "../../config";
import { switchConfigMap, switchValues, type SwitchConfig, type SwitchValues } from "./switches";
import { CiliumValuesError, hasBooleanKubeProxyReplacement, hasRoutingModeKeys, parseCiliumVersion } from "./version";

export {
  CiliumValuesError,
  hasBbrHostNamespaceOnly,
  hasBooleanKubeProxyReplacement,
  hasIpv4BigTcp,
  hasRoutingModeKeys,
  parseCiliumVersion,
  type CiliumVersion,
} from "./version";
export {
  forcesLegacyHostRouting,
  switchConfigMap,
  switchValues,
  type SwitchConfig,
  type SwitchValues,
} from "./switches";

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
  | "networkMtu"
> &
  SwitchConfig;

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
  Partial<NativeRouting> &
  SwitchValues;

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
 * The series' switches (./switches.ts `switchValues`): `bpf.masquerade: true` for `bpfMasquerade`;
 * `bpf.hostLegacyRouting` false for `hostRouting: bpf`, true for `legacy` only where the agent would
 * otherwise choose BPF host routing (kube-proxy replacement with BPF masquerading); `bandwidthManager`
 * `{enabled, bbr}` for `on`/`bbr`; `enableIPv4BIGTCP: true` for `ipv4BigTcp` (1.14+). At the article's
 * settings nothing is sent, so the defaults' values are those of the lab before the switches existed
 * and no existing lab gets a Helm upgrade from them. Not sending `hostLegacyRouting: true` for every
 * `legacy` is a choice: the explicit key would restate in the ConfigMap what the agent does anyway
 * without BPF masquerading or kube-proxy replacement, at the price of one Helm upgrade (every agent
 * restarted, the measurements re-run) on every existing lab. The proof of the host routing that runs
 * is the agent's own status line (`Host Routing:`, 1.16+ `Routing: … Host:`), which the
 * verification's feature checks read, not the ConfigMap.
 *
 * `MTU` is not set, on purpose, whatever `networkMtu` is. Cilium auto-detects the MTU of the device
 * carrying the default route (the node's NIC, whose MTU libvirt takes from the network's `<mtu>`) and
 * derives the pod routes from it: base in native mode, base − 50 in tunnel mode (pkg/mtu
 * `TunnelOverhead`, `getRouteMTU`). Setting `MTU` to `networkMtu` as well would make the pods follow
 * the config even where the NICs did not, hiding a mismatch; left to auto-detection, a NIC that did not
 * get the network's MTU shows up in the verification's pod-route-MTU check (expected from
 * `networkMtu`, {@link CiliumDatapath}). Also left alone: `devices` (auto-detected).
 *
 * Throws {@link CiliumValuesError} on inputs the config parser already refuses (version range,
 * auto direct routes with a tunnel, native routing without a CIDR, IPv4 BIG TCP on 1.13) and on a
 * server IP that is not IPv4.
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
    ...switchValues(config, version, ciliumVersion),
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
   * The MTU the nodes' NICs must have, `networkMtu` (libvirt gives the network's MTU to every
   * interface on it), and so the base Cilium detects: pod routes carry `networkMtu − routeMtuOverhead`
   * in tunnel mode (1450 on the default 1500) and no lower cap in native mode. The lab does not set
   * Helm's `MTU`, so this is a check of the network, not an echo of a value sent.
   */
  readonly networkMtu: number;
  /**
   * Entries the `cilium-config` ConfigMap must hold, in the chart version's vocabulary: the routing
   * and kube-proxy replacement keys, and the entries the series' switches render (./switches.ts
   * `switchConfigMap`, copied from the real charts' renders). It shows what the chart rendered, not
   * what a running agent uses: pair it with the agent's own report.
   */
  readonly configMap: Readonly<Record<string, string>>;
}

/**
 * The datapath evidence verification checks for `config` on chart `ciliumVersion`. Throws
 * {@link CiliumValuesError} where {@link ciliumValues} does for the version and the switches.
 */
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
  switchValues(config, version, ciliumVersion);
  Object.assign(configMap, switchConfigMap(config, version));
  return deepFreeze({
    routingMode: config.routingMode,
    tunnelDevice: native ? null : config.routingMode === "vxlan" ? "cilium_vxlan" : "cilium_geneve",
    routeMtuOverhead: native ? 0 : 50,
    networkMtu: config.networkMtu,
    configMap,
  });
}
