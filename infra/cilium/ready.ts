/**
 * `CiliumReady`: the gate between the Cilium release and anything that needs Cilium working
 * (the Verification). Helm's wait lets `deployed` through with 0 operator, 0 Hubble and on 2 nodes 0
 * agent pods ready (see ready-check.ts), so this resource waits, within a bound set by the
 * accelerator, until every lab node runs an updated, Ready and available agent, the operator
 * Deployment is rolled out with a ready replica, and with `hubble` relay and UI are too. On timeout
 * it fails with what is not ready, its pods' status, the objects' last events and log tails.
 *
 * It also refuses a release that is not `deployed` (K3): after a killed `up`, Helm leaves the release
 * `pending-upgrade`; `pulumi refresh` copies that into the Release's state, and the next `up` would
 * report success without upgrading. How the gate learns the status, and why a no-op `up` stays a
 * no-op: its inputs carry the Release's own outputs `status.status` and `status.revision`. A refresh
 * that reads a new status (or an upgrade that makes a new revision) changes those inputs, so `diff`
 * reports a change and `update` checks again; with the same status and revision `diff` reports none
 * and `preview` shows the gate unchanged, without contacting the cluster. When it does check, it
 * also reads Helm's storage Secrets' labels (`sh.helm.release.v1.<name>.v<N>`: `status`, `version`;
 * metadata only, never the release payload), so a newer stuck revision than the one in state is
 * refused too, and the refusal names the last deployed revision to roll back to.
 *
 * Talks to the apiserver through kube-client.ts (plain `https` with the kubeconfig's client
 * certificate, a secret input never logged or put in an error; why not @kubernetes/client-node is
 * there). Dynamic providers are serialized closures, so modules are required inside the methods.
 */
import * as pulumi from "@pulumi/pulumi";

import { defineProvider, dynamicResource } from "../provider";
import { kubeClient, kubeCredentials, type KubeResponse } from "./kube-client";
import {
  daemonSetProblems,
  deploymentProblems,
  describePod,
  lastEvents,
  releaseCheck,
  timeoutMessage,
  watchedObjects,
  type EventLike,
  type HelmRevision,
  type NotReadyReport,
} from "./ready-check";

/** The provider's inputs; also its state. */
export interface CiliumReadyInputs {
  /** Kubeconfig YAML of the lab cluster. Secret. */
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly releaseName: string;
  /** The Release's `status.status`: `deployed`, or what Helm left (`pending-upgrade`, `failed`…). */
  readonly releaseStatus: string;
  /** The Release's `status.revision`. */
  readonly releaseRevision: number;
  /** Lab nodes: the agent DaemonSet must run on each. */
  readonly nodeCount: number;
  /** Whether relay and UI are deployed and waited for. */
  readonly hubble: boolean;
  /** The bound, in seconds. */
  readonly timeoutSeconds: number;
  /** The stack, for the recovery command in messages. */
  readonly stack: string;
}

/** Inputs whose change makes the gate check again. The timeout and stack name only shape a check. */
export const RECHECK_INPUTS = [
  "kubeconfig",
  "namespace",
  "releaseName",
  "releaseStatus",
  "releaseRevision",
  "nodeCount",
  "hubble",
] as const;

/**
 * The gate's apiserver reader: GETs with a 30 s bound, every status resolved (the gate reads 204s
 * and 404s itself). Built inside the provider's methods: its modules are required when called.
 */
function apiClient(kubeconfig: string): (path: string, accept?: string) => Promise<KubeResponse> {
  const { request } = kubeClient(
    kubeCredentials(kubeconfig, "the lab's kubeconfig comes from the k3s server's /etc/rancher/k3s/k3s.yaml"),
    { timeoutMs: 30_000 },
  );
  return (path, accept) => request("GET", path, undefined, accept === undefined ? {} : { accept });
}

type Api = ReturnType<typeof apiClient>;
type Obj = {
  metadata?: { name?: string; generation?: number; labels?: Record<string, string> };
  spec?: { selector?: { matchLabels?: Record<string, string> }; replicas?: number };
  status?: Record<string, unknown>;
};

/** Helm's stored revisions of a release, from its storage Secrets' labels (metadata only). */
async function helmRevisions(api: Api, namespace: string, name: string): Promise<HelmRevision[]> {
  const selector = encodeURIComponent(`owner=helm,name=${name}`);
  // PartialObjectMetadataList: labels without the Secrets' data (https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables … "metadata only").
  const res = await api(
    `/api/v1/namespaces/${namespace}/secrets?labelSelector=${selector}`,
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
  );
  if (res.status !== 200) {
    throw new Error(`listing Helm's release Secrets in ${namespace} answered ${res.status}: ${res.text.slice(0, 300)}`);
  }
  return ((res.body as { items?: Obj[] }).items ?? []).map((s) => ({
    revision: Number(s.metadata?.labels?.version ?? 0),
    status: s.metadata?.labels?.status ?? "unknown",
  }));
}

/** The refusal for the release in the inputs or a newer stuck stored revision (see `releaseCheck`); undefined when deployed. */
async function checkRelease(api: Api, inputs: CiliumReadyInputs): Promise<string | undefined> {
  const revisions = await helmRevisions(api, inputs.namespace, inputs.releaseName);
  return releaseCheck(
    {
      namespace: inputs.namespace,
      name: inputs.releaseName,
      status: inputs.releaseStatus,
      revision: inputs.releaseRevision,
    },
    revisions,
    inputs.stack,
  );
}

/** What is not ready now (empty when everything is). With `detail`, also pods, events and logs. */
async function notReady(api: Api, inputs: CiliumReadyInputs, detail: boolean): Promise<NotReadyReport[]> {
  const ns = inputs.namespace;
  const reports: NotReadyReport[] = [];
  for (const { kind, name } of watchedObjects(inputs.hubble)) {
    const res = await api(
      `/apis/apps/v1/namespaces/${ns}/${kind === "DaemonSet" ? "daemonsets" : "deployments"}/${name}`,
    );
    if (res.status !== 200 && res.status !== 404) {
      throw new Error(`reading ${kind} ${ns}/${name} answered ${res.status}: ${res.text.slice(0, 300)}`);
    }
    const obj = res.status === 200 ? (res.body as Obj) : undefined;
    const problems =
      obj === undefined
        ? ["not found (the chart did not create it: is this Cilium's chart, with these values?)"]
        : kind === "DaemonSet"
          ? daemonSetProblems(obj, inputs.nodeCount)
          : deploymentProblems(obj);
    if (problems.length === 0) {
      continue;
    }
    if (!detail || obj === undefined) {
      reports.push({ kind, name, problems, pods: [], events: [], logs: [] });
      continue;
    }
    const selector = encodeURIComponent(
      Object.entries(obj.spec?.selector?.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    );
    const pods = (
      (
        (await api(`/api/v1/namespaces/${ns}/pods?labelSelector=${selector}`)).body as
          { items?: (Obj & { spec?: { nodeName?: string } })[] } | undefined
      )?.items ?? []
    ).slice(0, 5);
    const events: EventLike[] = [];
    for (const involved of [name, ...pods.map((p) => p.metadata?.name ?? "")]) {
      const list = await api(
        `/api/v1/namespaces/${ns}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${involved}`)}`,
      );
      events.push(...((list.body as { items?: EventLike[] } | undefined)?.items ?? []));
    }
    const logs: string[] = [];
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? "";
      // The log endpoint answers text/plain but refuses `Accept: text/plain` (it negotiates serializers); `*/*` as curl sends.
      const log = await api(`/api/v1/namespaces/${ns}/pods/${podName}/log?tailLines=20`, "*/*");
      // A pod without a node has no log: kube-apiserver v1.33 answers 204 No Content (seen against the test control plane).
      const reason =
        log.status === 204
          ? `the pod is not on a node yet (${pod.spec?.nodeName === undefined ? "unscheduled" : `node ${pod.spec.nodeName}`}; the apiserver answered 204 No Content)`
          : ((log.body as { message?: string } | undefined)?.message ??
            `${log.status} ${log.text.trim().slice(0, 300)}`);
      logs.push(
        log.status === 200
          ? `log of ${podName} (last 20 lines):\n${log.text.trimEnd() || "(empty)"}`
          : `logs of ${podName} unavailable: ${reason}`,
      );
    }
    reports.push({ kind, name, problems, pods: pods.map(describePod), events: lastEvents(events, 5), logs });
  }
  return reports;
}

/** Refuses a release that is not deployed, then waits until Cilium is ready or the bound passes. */
async function gate(inputs: CiliumReadyInputs): Promise<void> {
  const api = apiClient(inputs.kubeconfig);
  const refusal = await checkRelease(api, inputs);
  if (refusal !== undefined) {
    throw new Error(refusal);
  }
  const deadline = Date.now() + inputs.timeoutSeconds * 1000;
  for (;;) {
    if ((await notReady(api, inputs, false)).length === 0) {
      return;
    }
    if (Date.now() >= deadline) {
      const reports = await notReady(api, inputs, true);
      if (reports.length === 0) {
        return;
      }
      throw new Error(timeoutMessage(inputs.namespace, inputs.timeoutSeconds, reports));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * The provider (infra/provider.ts): never replaced; a change of a {@link RECHECK_INPUTS} key is an
 * update that checks again and stores the new inputs; a refresh keeps the state (the gate is a
 * check, with nothing of its own in the cluster: the Release's refreshed status reaches the gate
 * through its inputs on the next `up`); delete has nothing to remove. No provider version: the
 * gate's states never had one.
 */
export const ciliumReadyProvider = defineProvider<CiliumReadyInputs, CiliumReadyInputs>({
  replaceKeys: [],
  updateKeys: RECHECK_INPUTS,
  deleteBeforeReplace: false,
  async create(inputs: CiliumReadyInputs) {
    await gate(inputs);
    return { id: `${inputs.namespace}/${inputs.releaseName}`, outs: inputs };
  },
  async update(_id: string, _olds: CiliumReadyInputs, news: CiliumReadyInputs) {
    await gate(news);
    return { outs: news };
  },
});

/** Arguments of {@link CiliumReady}. */
export interface CiliumReadyArgs {
  /** The lab cluster's kubeconfig. Secret: it is marked secret here whatever the caller passes. */
  readonly kubeconfig: pulumi.Input<string>;
  /** The Helm release's namespace and name (`kube-system`, `cilium`). */
  readonly namespace: string;
  readonly releaseName: string;
  /** The Release's `status` output: `status` and `revision` are read. */
  readonly releaseStatus: pulumi.Input<{ readonly status: string; readonly revision: number }>;
  /** Number of lab nodes; each must run a Ready agent. */
  readonly nodeCount: number;
  /** `hubble` stack config: wait for relay and UI too. */
  readonly hubble: boolean;
  /** The bound in seconds: `readyTimeoutSeconds(config.accelerator)` in the program, short in tests. */
  readonly timeoutSeconds: number;
  /** The stack name, for the recovery command. */
  readonly stack: string;
}

/** The registered resource: the provider's inputs as `pulumi.Input`s; the kubeconfig output secret. */
const CiliumReadyResource = dynamicResource<
  { readonly [K in keyof CiliumReadyInputs]: pulumi.Input<CiliumReadyInputs[K]> },
  CiliumReadyInputs
>(ciliumReadyProvider, { module: "lab", type: "CiliumReady" }, { outputs: [], secretOutputs: ["kubeconfig"] });

/** Cilium counted ready only when it is (see the module comment). */
export class CiliumReady extends CiliumReadyResource {
  constructor(name: string, args: CiliumReadyArgs, opts?: pulumi.CustomResourceOptions) {
    const status = pulumi.output(args.releaseStatus);
    super(
      name,
      {
        kubeconfig: pulumi.secret(args.kubeconfig),
        namespace: args.namespace,
        releaseName: args.releaseName,
        releaseStatus: status.apply((s) => s.status),
        releaseRevision: status.apply((s) => s.revision),
        nodeCount: args.nodeCount,
        hubble: args.hubble,
        timeoutSeconds: args.timeoutSeconds,
        stack: args.stack,
      },
      opts,
    );
  }
}
