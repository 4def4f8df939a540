/**
 * Cilium on the lab's k3s cluster: one Helm release, the article's `helm install`/`helm upgrade`,
 * with values chosen by stack config and rendered for the chart version's key names.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type { LabConfig, RoutingMode } from "../config";
import { requireClusterProvider } from "../k3s/cluster-provider";
import {
  MAX_HISTORY,
  RELEASE_NAME,
  RELEASE_NAMESPACE,
  chartSource,
  releaseDigest,
  releaseTimeoutSeconds,
} from "./release";
import {
  ciliumDatapath,
  ciliumValues,
  type CiliumDatapath,
  type CiliumValues,
  type CiliumValuesConfig,
} from "./values";

/** The stack config Cilium depends on: what the values depend on, the chart and the wait. */
export type CiliumConfig = CiliumValuesConfig & Pick<LabConfig, "ciliumVersion" | "ciliumChart" | "accelerator">;

/** Inputs of {@link Cilium}. The Kubernetes provider comes through `opts.provider` (or `opts.providers`). */
export interface CiliumArgs {
  /**
   * The parsed stack config. `routingMode`, `autoDirectNodeRoutes`, `nativeRoutingCidr`, `podCidr`,
   * `podCidrMaskSize`, `kubeProxyReplacement`, `hubble` and the series' switches (`bpfMasquerade`,
   * `hostRouting`, `bandwidthManager`, `ipv4BigTcp`) become Helm values; `ciliumVersion` and
   * `ciliumChart` pick the chart; `accelerator` sizes the wait. Changing any of them updates the
   * release in place (a Helm upgrade with the full values, restarting agents and operator); nothing
   * is replaced. A switch at its default sends nothing, so the defaults give the release of the lab
   * before the switches existed. `networkMtu` is no Helm value (Cilium detects the NIC's MTU): only
   * the datapath evidence's expected MTU reads it.
   */
  readonly config: CiliumConfig;
  /**
   * The k3s server's address on the lab network (`planLab(...).nodes[0].ip`): `k8sServiceHost`, so
   * the agents reach the API server at `<serverIp>:6443` without the `kubernetes` Service. A plain
   * string, so the values are known in preview and shown in diffs. Changing it changes the values.
   */
  readonly serverIp: string;
}

/**
 * The Cilium Helm release `cilium` in `kube-system`. Helm's wait does NOT mean Cilium is ready: Helm
 * 3.18 (`pkg/kube/ready.go`) counts a Deployment ready at `replicas − maxUnavailable` ready pods and
 * the agent DaemonSet at `desired − maxUnavailable`, which Cilium's chart makes 0 for the operator and
 * Hubble and for the agents on 2 nodes. `CiliumReady` (./ready.ts) waits for that after the release.
 *
 * Options: `provider` (required: the lab cluster's `kubernetes.Provider`), `deletedWith` (the server
 * VM: deleting the VM takes the release with it, so `pulumi destroy` does not try to uninstall from
 * a cluster that is going away; pulumi-kubernetes#2675: the Release ignores `deleteUnreachable`),
 * `dependsOn` (the k3s layer, so every node has joined before Helm waits for the DaemonSet). All
 * three are passed on to the release itself, which is also `deleteBeforeReplace`.
 */
export class Cilium extends pulumi.ComponentResource {
  /** The Helm release, for `dependsOn`. */
  readonly release: k8s.helm.v3.Release;
  /** Helm's view after install/upgrade: `status` (`deployed`), `revision` (+1 per upgrade), `version` (chart), `appVersion`. */
  readonly status: pulumi.Output<k8s.types.output.helm.v3.ReleaseStatus>;
  /** The routing mode the values select. */
  readonly routingMode: RoutingMode;
  /** The chart version the values are rendered for; compare with `status.version`. */
  readonly ciliumVersion: string;
  /** The full values sent to Helm (the same object on every run with the same config). */
  readonly values: CiliumValues;
  /** What the cluster must show: tunnel device, network MTU and pod route MTU overhead, `cilium-config` entries (routing and the series' switches). */
  readonly datapath: CiliumDatapath;
  /** `sha256:` digest of chart and values: a verification trigger that changes exactly when the release's content does. */
  readonly digest: string;

  constructor(name: string, args: CiliumArgs, opts?: pulumi.ComponentResourceOptions) {
    super("lab:cilium:Cilium", name, {}, opts);

    const provider = requireClusterProvider(this, `Cilium "${name}"`, "kubernetes:helm.sh/v3:Release", "the release");

    const { config, serverIp } = args;
    this.routingMode = config.routingMode;
    this.ciliumVersion = config.ciliumVersion;
    this.values = ciliumValues(config, config.ciliumVersion, serverIp);
    this.datapath = ciliumDatapath(config, config.ciliumVersion);
    const source = chartSource(config.ciliumVersion, config.ciliumChart, process.cwd());
    this.digest = releaseDigest(source, this.values);

    this.release = new k8s.helm.v3.Release(
      `${name}-release`,
      {
        name: RELEASE_NAME,
        namespace: RELEASE_NAMESPACE,
        ...source,
        values: this.values,
        // Full values on every upgrade, against the new chart's defaults: never the previous
        // release's values (the article's --reuse-values would carry 1.13 keys into 1.14+).
        resetValues: true,
        // Helm's wait: it catches objects the apiserver refuses and a rollout with more than
        // maxUnavailable pods missing, not an agent, operator or Hubble that never gets ready
        // (see the class comment); CiliumReady waits for those.
        skipAwait: false,
        timeout: releaseTimeoutSeconds(config.accelerator),
        // No rollback or purge on failure: a failed install or mode switch stays as it is, with the
        // agent's logs and events, for `kubectl -n kube-system logs ds/cilium`; the next `pulumi up`
        // upgrades it again. `atomic` would uninstall a failed first install and silently roll a
        // failed switch back to the previous mode; `cleanupOnFail` would delete what the failed
        // upgrade created before anyone could look at it.
        atomic: false,
        cleanupOnFail: false,
        maxHistory: MAX_HISTORY,
      },
      {
        parent: this,
        provider,
        deletedWith: opts?.deletedWith,
        dependsOn: opts?.dependsOn,
        // Helm release names are unique per namespace: if the release ever has to be replaced (a
        // replaced Kubernetes provider replaces every object it manages), Pulumi's default
        // create-before-delete would fail with Helm's "cannot re-use a name that is still in use".
        deleteBeforeReplace: true,
      },
    );
    this.status = this.release.status;

    this.registerOutputs({
      status: this.status,
      routingMode: this.routingMode,
      ciliumVersion: this.ciliumVersion,
      values: this.values,
      datapath: this.datapath,
      digest: this.digest,
    });
  }
}
