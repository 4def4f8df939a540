/**
 * Pure settings of the Cilium Helm release: where the chart comes from, how long Helm waits, and a
 * digest of what is installed that verification can use as a trigger. No resources, no I/O.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";

import type { Accelerator } from "../config";
import { canonical } from "../provider";
import { CILIUM_HELM_REPO } from "../versions";

/** The Helm release name, as in the article's `helm install cilium …`; `helm -n kube-system history cilium` finds it. */
export const RELEASE_NAME = "cilium";

/** Cilium runs in kube-system, as `cilium install` and the article put it. */
export const RELEASE_NAMESPACE = "kube-system";

/**
 * Release revisions Helm keeps (one Secret each, holding the whole rendered chart). Helm's library
 * default is 0, unlimited (the CLI's `--history-max` is 10); a lab switching modes back and forth
 * would grow k3s' datastore without bound. Five keeps the last few switches for `helm rollback`.
 */
export const MAX_HISTORY = 5;

/**
 * How long Helm waits on install and on each upgrade, in seconds. Helm's wait is weaker than "ready":
 * it lets a Deployment through at `replicas − maxUnavailable` ready pods and a DaemonSet at
 * `desired − maxUnavailable` (Helm 3.18 `pkg/kube/ready.go`), i.e. with 0 operator, 0 Hubble and on
 * 2 nodes 0 agent pods for Cilium's chart. `CiliumReady` (./ready.ts, `readyTimeoutSeconds`) waits
 * for every agent, the operator and Hubble afterwards; this bound matters only when Helm's own
 * counts are not met.
 *
 * Helm's default (pulumi-kubernetes `defaultTimeoutSeconds`) is 300 s. A first install pulls the
 * agent, operator and Hubble images on every node at once and the agents then load their BPF
 * programs (1.13 compiles them with clang at start): on a KVM host that fits in minutes, so 600 s
 * leaves a slow download twice the default. Under TCG (`accelerator: qemu`) guest CPU work runs
 * several times slower (boots take ~10× longer), and image decompression and BPF loading are CPU
 * work, so 1800 s. Both are estimates, not measurements; a timeout leaves the release in state
 * with its error, and the next `pulumi up` upgrades it again.
 */
export function releaseTimeoutSeconds(accelerator: Accelerator): number {
  return accelerator === "qemu" ? 1800 : 600;
}

/** Where Helm gets the chart: the repository at a version, or a local chart. */
export type ChartSource =
  | { readonly chart: "cilium"; readonly version: string; readonly repositoryOpts: { readonly repo: string } }
  | { readonly chart: string };

const TGZ_VERSION_RE = /^cilium-(\d+\.\d+\.\d+)\.tgz$/;

/**
 * The chart for `ciliumVersion`: `cilium` from Cilium's Helm repository at that version, or, when
 * `ciliumChart` is set (air-gapped hosts), that local `.tgz` or directory, made absolute against
 * `cwd` (the project directory) so the provider process resolves it the same way.
 *
 * Helm ignores `version` for local charts, so a local chart must be the chart of `ciliumVersion`:
 * the values are rendered for that version's key names. A `.tgz` named `cilium-X.Y.Z.tgz` (the name
 * `helm pull cilium/cilium --version X.Y.Z` writes) is checked against it; the release's
 * `status.version` proves the chart actually installed.
 */
export function chartSource(ciliumVersion: string, ciliumChart: string, cwd: string): ChartSource {
  if (ciliumChart === "") {
    return { chart: "cilium", version: ciliumVersion, repositoryOpts: { repo: CILIUM_HELM_REPO } };
  }
  const m = TGZ_VERSION_RE.exec(path.basename(ciliumChart));
  if (m && m[1] !== ciliumVersion) {
    throw new Error(
      `cilium-lab:ciliumChart ${ciliumChart} is chart ${m[1]} but cilium-lab:ciliumVersion is ${ciliumVersion}: ` +
        `the Helm values are rendered for ${ciliumVersion}'s key names. Set ciliumVersion to ${m[1]}, or fetch the matching chart ` +
        `with \`helm pull cilium/cilium --version ${ciliumVersion}\`.`,
    );
  }
  return { chart: path.resolve(cwd, ciliumChart) };
}

/**
 * `sha256:<hex>` of the chart source and values, as the providers' stable JSON ({@link canonical}:
 * object keys sorted at every level, so equal values always give the same text): changes exactly
 * when what Helm installs changes, so verification can re-run (and recreate its pods, whose route
 * MTU is fixed at creation) after a mode switch or a chart upgrade, and not otherwise.
 */
export function releaseDigest(source: ChartSource, values: unknown): string {
  return `sha256:${createHash("sha256")
    .update(canonical({ chart: source, values }))
    .digest("hex")}`;
}
