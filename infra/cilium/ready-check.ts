/**
 * Pure parts of the Cilium readiness gate (infra/cilium/ready.ts): when the agent DaemonSet and the
 * operator and Hubble Deployments count as ready, whether Helm's release may be trusted, how long
 * to wait, and the messages. No Pulumi, no I/O: table-tested in test/cilium/ready.test.ts.
 *
 * Why a gate at all: Helm's wait (3.18.6 `pkg/kube/ready.go`, the version the Kubernetes plugin
 * bundles) counts a Deployment ready at `replicas − maxUnavailable` ready pods and a DaemonSet at
 * `desiredNumberScheduled − maxUnavailable`. Cilium's chart sets `maxUnavailable: 1` on the operator
 * (1 replica here), relay and UI, and `maxUnavailable: 2` on the agents
 * (cilium/cilium install/kubernetes/cilium/values.yaml v1.13.4 l.290, l.1070, l.1307, l.1883), so Helm
 * reports `deployed` with 0 operator, 0 Hubble and (on 2 nodes) 0 agent pods ready.
 */
import type { Accelerator } from "../config";

/**
 * How long the gate waits for Cilium, in seconds. Helm's own wait returns within seconds (see the
 * module comment), so this bound covers the whole start: every node pulls the agent image (and the
 * operator's and Hubble's nodes theirs) and the agents load their BPF programs (1.13 compiles them
 * with clang at start). On a KVM host that fits in minutes: 600 s leaves a slow download twice
 * Helm's 300 s default. Under TCG (`accelerator: qemu`) guest CPU work runs several times slower
 * (boots take ~10× longer) and decompression and BPF loading are CPU work: 1800 s. Estimates, not
 * measurements; a timeout fails `up` with what is not ready, and the next `up` waits again.
 */
export function readyTimeoutSeconds(accelerator: Accelerator): number {
  return accelerator === "qemu" ? 1800 : 600;
}

/** The fields of a DaemonSet the gate reads. */
export interface DaemonSetLike {
  readonly metadata?: { readonly name?: string; readonly generation?: number };
  readonly status?: {
    readonly observedGeneration?: number;
    readonly desiredNumberScheduled?: number;
    readonly updatedNumberScheduled?: number;
    readonly numberReady?: number;
    readonly numberAvailable?: number;
  };
}

/** The fields of a Deployment the gate reads. */
export interface DeploymentLike {
  readonly metadata?: { readonly name?: string; readonly generation?: number };
  readonly spec?: { readonly replicas?: number };
  readonly status?: {
    readonly observedGeneration?: number;
    readonly replicas?: number;
    readonly updatedReplicas?: number;
    readonly readyReplicas?: number;
    readonly availableReplicas?: number;
  };
}

/**
 * Why the agent DaemonSet is not ready on `nodeCount` nodes (empty when it is): every node runs an
 * updated, Ready and available agent, and the controller has seen the current spec. Unset counts are 0
 * (the apiserver omits zero fields).
 */
export function daemonSetProblems(ds: DaemonSetLike, nodeCount: number): string[] {
  const s = ds.status ?? {};
  const generation = ds.metadata?.generation ?? 0;
  const observed = s.observedGeneration ?? 0;
  const problems: string[] = [];
  if (observed < generation) {
    problems.push(
      `observedGeneration ${observed} < generation ${generation} (the controller has not seen the current spec)`,
    );
  }
  const counts: [string, number][] = [
    ["desiredNumberScheduled", s.desiredNumberScheduled ?? 0],
    ["updatedNumberScheduled", s.updatedNumberScheduled ?? 0],
    ["numberReady", s.numberReady ?? 0],
    ["numberAvailable", s.numberAvailable ?? 0],
  ];
  for (const [field, value] of counts) {
    if (value !== nodeCount) {
      problems.push(`${field} ${value}, want ${nodeCount} (one per lab node)`);
    }
  }
  return problems;
}

/**
 * Why a Deployment is not ready (empty when it is), as `kubectl rollout status` judges it
 * (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go `DeploymentStatusViewer`): the current
 * spec observed, every replica updated, no old replica left, every updated replica available, and
 * at least one ready replica.
 */
export function deploymentProblems(d: DeploymentLike): string[] {
  const s = d.status ?? {};
  const generation = d.metadata?.generation ?? 0;
  const observed = s.observedGeneration ?? 0;
  const want = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const problems: string[] = [];
  if (observed < generation) {
    problems.push(
      `observedGeneration ${observed} < generation ${generation} (the controller has not seen the current spec)`,
    );
  }
  if (updated < want) {
    problems.push(`updatedReplicas ${updated}, want ${want}`);
  }
  if (total > updated) {
    problems.push(`${total - updated} old replica(s) still present`);
  }
  if (available < updated) {
    problems.push(`availableReplicas ${available} of ${updated} updated`);
  }
  if (ready < 1) {
    problems.push(`readyReplicas ${ready}, want at least 1`);
  }
  return problems;
}

/** The objects the gate waits for: the agent DaemonSet `cilium`, `cilium-operator`, and with Hubble `hubble-relay` and `hubble-ui`. */
export function watchedObjects(
  hubble: boolean,
): { readonly kind: "DaemonSet" | "Deployment"; readonly name: string }[] {
  return [
    { kind: "DaemonSet", name: "cilium" },
    { kind: "Deployment", name: "cilium-operator" },
    ...(hubble
      ? ([
          { kind: "Deployment", name: "hubble-relay" },
          { kind: "Deployment", name: "hubble-ui" },
        ] as const)
      : []),
  ];
}

/** One revision of a Helm release as Helm's storage Secret labels it (`sh.helm.release.v1.<name>.v<N>`: labels `version`, `status`). */
export interface HelmRevision {
  readonly revision: number;
  readonly status: string;
}

/**
 * The refusal for a release that is not `deployed` (undefined when it is): Helm left it
 * `pending-install`/`pending-upgrade`/`pending-rollback` (a killed `up`), `failed` or other. A
 * `refresh` copies such a status into state and the next `up` would otherwise "succeed" without
 * upgrading. `revisions` are Helm's stored revisions, to name the last deployed one.
 */
export function releaseRefusal(
  release: { readonly namespace: string; readonly name: string; readonly status: string; readonly revision: number },
  revisions: readonly HelmRevision[],
  stack: string,
): string | undefined {
  if (release.status === "deployed") {
    return undefined;
  }
  const lastDeployed = [...revisions]
    .filter((r) => r.revision < release.revision && (r.status === "deployed" || r.status === "superseded"))
    .sort((a, b) => b.revision - a.revision)[0];
  const target =
    lastDeployed === undefined
      ? "the last deployed revision (none is stored: the first install never completed)"
      : `revision ${lastDeployed.revision}, the last deployed one`;
  return (
    `Helm release ${release.namespace}/${release.name} is at revision ${release.revision} with status "${release.status}", not "deployed": ` +
    `an earlier \`up\` was interrupted (or failed) while Helm worked on it, and Cilium may run a mix of old and new settings. ` +
    `Roll it back to ${target}: \`npm run lab -- recover ${stack}\`, then run \`pulumi up\` again.`
  );
}

/**
 * The release check the gate runs: `release` is what the stack's state holds (the Release's
 * `status.status`/`status.revision`), `revisions` what Helm stores in the cluster. Refuses a state
 * that is not `deployed` — unless Helm already stores a newer deployed revision (rolled back or
 * upgraded outside this `up`, e.g. `helm rollback` by hand), where the state is only stale and a
 * refresh fixes it — and a newer stored revision that is not deployed. Undefined when it passes.
 */
export function releaseCheck(
  release: { readonly namespace: string; readonly name: string; readonly status: string; readonly revision: number },
  revisions: readonly HelmRevision[],
  stack: string,
): string | undefined {
  const newest = newestRevision(revisions);
  const newer = newest !== undefined && newest.revision > release.revision ? newest : undefined;
  if (release.status !== "deployed" && newer?.status === "deployed") {
    return (
      `Helm release ${release.namespace}/${release.name} is deployed at revision ${newer.revision} in the cluster, but this stack's state still holds ` +
      `revision ${release.revision} with status "${release.status}" (Helm was rolled back or upgraded outside \`up\`): ` +
      `run \`npm run lab -- refresh ${stack}\`, then \`pulumi up\` again.`
    );
  }
  return releaseRefusal(newer === undefined ? release : { ...release, ...newer }, revisions, stack);
}

/** The newest stored revision, or undefined when Helm stores none. */
export function newestRevision(revisions: readonly HelmRevision[]): HelmRevision | undefined {
  return [...revisions].sort((a, b) => b.revision - a.revision)[0];
}

/** The parts of a Pod the message shows. */
export interface PodLike {
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly conditions?: readonly {
      readonly type?: string;
      readonly status?: string;
      readonly reason?: string;
      readonly message?: string;
    }[];
    readonly containerStatuses?: readonly {
      readonly name?: string;
      readonly ready?: boolean;
      readonly state?: {
        readonly waiting?: { readonly reason?: string; readonly message?: string };
        readonly terminated?: { readonly reason?: string; readonly exitCode?: number };
      };
    }[];
  };
}

/** One line per pod: name, node, phase, conditions, and each container's waiting/terminated reason. */
export function describePod(pod: PodLike): string {
  const s = pod.status ?? {};
  const conditions = (s.conditions ?? []).map(
    (c) => `${c.type ?? "?"}=${c.status ?? "?"}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ""})` : ""}`,
  );
  const containers = (s.containerStatuses ?? []).map((c) => {
    const waiting = c.state?.waiting;
    const terminated = c.state?.terminated;
    const state = waiting
      ? `waiting ${waiting.reason ?? ""}${waiting.message ? `: ${waiting.message}` : ""}`
      : terminated
        ? `terminated ${terminated.reason ?? ""} (exit ${terminated.exitCode ?? "?"})`
        : c.ready
          ? "ready"
          : "running, not ready";
    return `${c.name ?? "?"} ${state}`;
  });
  return (
    `pod ${pod.metadata?.name ?? "?"} on ${pod.spec?.nodeName ?? "no node"}: phase ${s.phase ?? "unknown"}` +
    `; conditions: ${conditions.length > 0 ? conditions.join(", ") : "none"}` +
    `; containers: ${containers.length > 0 ? containers.join(", ") : "no status yet"}`
  );
}

/** The parts of an Event the message shows. */
export interface EventLike {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly count?: number;
  readonly lastTimestamp?: string | null;
  readonly eventTime?: string | null;
  readonly involvedObject?: { readonly kind?: string; readonly name?: string };
}

/** The last `n` events, oldest first, one line each. */
export function lastEvents(events: readonly EventLike[], n: number): string[] {
  const when = (e: EventLike): string => e.lastTimestamp ?? e.eventTime ?? "";
  return [...events]
    .sort((a, b) => (when(a) < when(b) ? -1 : when(a) > when(b) ? 1 : 0))
    .slice(-n)
    .map(
      (e) =>
        `${when(e) || "?"} ${e.type ?? "?"} ${e.reason ?? "?"} ${e.involvedObject?.kind ?? "?"}/${e.involvedObject?.name ?? "?"}: ${e.message ?? ""}${(e.count ?? 1) > 1 ? ` (×${e.count})` : ""}`,
    );
}

/** What the gate found about one object that is not ready, for the timeout message. */
export interface NotReadyReport {
  readonly kind: string;
  readonly name: string;
  /** From {@link daemonSetProblems}/{@link deploymentProblems}, or "not found". */
  readonly problems: readonly string[];
  readonly pods: readonly string[];
  readonly events: readonly string[];
  /** Per pod: its log tail, or `logs unavailable: <reason>`. */
  readonly logs: readonly string[];
}

/** The timeout error: what is not ready, with pods, events and logs, and the fix. */
export function timeoutMessage(namespace: string, timeoutSeconds: number, reports: readonly NotReadyReport[]): string {
  const parts = reports.map((r) =>
    [
      `- ${r.kind} ${namespace}/${r.name}: ${r.problems.join("; ")}`,
      ...(r.pods.length > 0 ? r.pods.map((p) => `    ${p}`) : ["    no pods"]),
      ...(r.events.length > 0 ? ["    last events:", ...r.events.map((e) => `      ${e}`)] : ["    no events"]),
      ...r.logs.map((l) => `    ${l.split("\n").join("\n      ")}`),
    ].join("\n"),
  );
  return (
    `Cilium was not ready after ${timeoutSeconds} s (Helm reported the release deployed, but Helm's wait lets Deployments and DaemonSets through ` +
    `with maxUnavailable pods missing):\n${parts.join("\n")}\n` +
    `Fix: read the pod status and events above (an image that cannot be pulled, a node that is NotReady, an agent that crashes: ` +
    `\`kubectl -n ${namespace} logs ds/cilium\`), fix the cause, and run \`pulumi up\` again: it waits again. ` +
    `Under accelerator qemu (TCG) a slow first start can exceed the bound; run \`pulumi up\` again to keep waiting.`
  );
}
