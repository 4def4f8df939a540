/**
 * Cilium chart versions: which releases the lab renders values for, and which key names each era
 * of the chart has. Pure, no I/O.
 */
import { CILIUM_SUPPORTED_MINORS } from "../../versions";

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

/**
 * Whether the chart has `enableIPv4BIGTCP` (1.14+; cilium/charts cilium-1.14.19.tgz → cilium/values.yaml
 * l.1639 "Enables IPv4 BIG TCP support", absent from cilium-1.13.4.tgz's values.yaml, which has only
 * `enableIPv6BIGTCP`, l.1488). From 1.14 the ConfigMap always renders `enable-ipv4-big-tcp`.
 */
export function hasIpv4BigTcp(version: CiliumVersion): boolean {
  return version.minor >= 14;
}

/**
 * Whether the chart renders `enable-bbr-hostns-only` beside `enable-bbr` when the bandwidth manager is
 * on: `bandwidthManager.bbrHostNamespaceOnly` came with cilium/cilium#38898 ("Enable BBR only in host
 * namespace", merged 2025-04, released in 1.18.0); cilium-1.18.12.tgz's values.yaml has it (l.468),
 * cilium-1.16.19.tgz's has not. 1.17 is not known to have it, so nothing is expected of 1.17.
 */
export function hasBbrHostNamespaceOnly(version: CiliumVersion): boolean {
  return version.minor >= 18;
}
