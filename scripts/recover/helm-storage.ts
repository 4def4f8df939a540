/**
 * Helm 3's release storage and a rollback, straight against the apiserver (no `helm` binary).
 *
 * Storage (Helm v3.18.6, the version pulumi-kubernetes bundles): one Secret per revision named
 * `sh.helm.release.v1.<name>.v<version>` (pkg/storage/storage.go makeKey) in the release namespace,
 * type `helm.sh/release.v1`, labels `owner=helm`, `name`, `status`, `version` (and `createdAt`,
 * `modifiedAt`; pkg/storage/driver/secrets.go newSecretsObject), `data.release` =
 * base64(gzip(JSON of the release)) (pkg/storage/driver/util.go encodeRelease; the Secret's own
 * encoding adds one more base64 on the wire).
 *
 * Rollback (pkg/action/rollback.go): a new revision `current + 1` with the chart, config, manifest and
 * hooks of the target revision, description `Rollback to <target>`; the target's objects are applied,
 * objects only the current revision has are deleted (pkg/kube/client.go Update); every earlier
 * `deployed` revision and the current one become `superseded` and the new one `deployed`.
 * Differences here, on purpose: objects are applied with server-side apply (`force`, field manager
 * `helm`) instead of Helm's client-side three-way merge, so a field only the stuck revision set
 * stays until the next `up`'s upgrade; no hooks run (the lab's chart has none) and no wait.
 */
import { gunzipSync, gzipSync } from "node:zlib";

import { parseAllDocuments } from "yaml";

import { type KubeClient, kubeClient, kubeCredentials } from "../../infra/cilium/kube-client";

/** The apiserver as recover sees it: 2xx and 404 resolve, any other status rejects with the API's message. */
export type Kube = KubeClient;

/** A client for the stack's kubeconfig output (current context; inline CA, client certificate or token). */
export function kubeFromKubeconfig(yamlText: string): Kube {
  return kubeClient(kubeCredentials(yamlText, "run: npm run lab -- up <stack> --refresh"), {
    timeoutMs: 15_000,
    rejectStatus: (status) => !((status >= 200 && status < 300) || status === 404),
  });
}

/** The JSON Helm stores per revision (pkg/release/release.go, info.go); fields we do not touch pass through. */
export interface HelmRelease {
  name: string;
  namespace: string;
  version: number;
  manifest: string;
  info: {
    status: string;
    description?: string;
    first_deployed?: string;
    last_deployed?: string;
    notes?: string;
    [k: string]: unknown;
  };
  labels?: Record<string, string>;
  [k: string]: unknown;
}

interface Secret {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; resourceVersion?: string };
  data?: { release?: string };
}

export function decodeRelease(secretData: string): HelmRelease {
  const helmB64 = Buffer.from(secretData, "base64").toString("utf8");
  let bytes = Buffer.from(helmB64, "base64");
  if (bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 0x08) {
    bytes = gunzipSync(bytes);
  }
  return JSON.parse(bytes.toString("utf8")) as HelmRelease;
}

export function encodeRelease(release: HelmRelease): string {
  return Buffer.from(gzipSync(Buffer.from(JSON.stringify(release)), { level: 9 }).toString("base64")).toString(
    "base64",
  );
}

export interface StuckRelease {
  readonly namespace: string;
  readonly name: string;
  /** Every revision, oldest first. */
  readonly revisions: { secret: Secret; release: HelmRelease }[];
  readonly stuck: HelmRelease;
}

/** The release's revisions when the latest is `pending-*`; undefined when it is not stuck (or absent). */
export async function stuckRelease(kube: Kube, namespace: string, name: string): Promise<StuckRelease | undefined> {
  const list = await kube.request(
    "GET",
    `/api/v1/namespaces/${namespace}/secrets?labelSelector=${encodeURIComponent(`owner=helm,name=${name}`)}`,
  );
  const items = ((list.body as { items?: Secret[] }).items ?? []).filter((s) => s.data?.release !== undefined);
  const revisions = items
    .map((secret) => ({ secret, release: decodeRelease(secret.data?.release ?? "") }))
    .sort((a, b) => a.release.version - b.release.version);
  const latest = revisions[revisions.length - 1]?.release;
  if (latest === undefined || !latest.info.status.startsWith("pending-")) {
    return undefined;
  }
  return { namespace, name, revisions, stuck: latest };
}

interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

function manifestObjects(manifest: string): ManifestObject[] {
  return parseAllDocuments(manifest)
    .map((d) => d.toJSON() as ManifestObject | null)
    .filter((o): o is ManifestObject => o !== null && typeof o === "object" && typeof o.kind === "string");
}

/** REST path of an object, from the apiserver's discovery (kind → plural, namespaced). */
async function objectPath(kube: Kube, o: ManifestObject, defaultNamespace: string): Promise<string> {
  const base = o.apiVersion.includes("/") ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const list = (await kube.request("GET", base)).body as {
    resources?: { name: string; kind: string; namespaced: boolean }[];
  };
  const r = list.resources?.find((x) => x.kind === o.kind && !x.name.includes("/"));
  if (r === undefined) {
    throw new Error(`the apiserver serves no ${o.kind} in ${o.apiVersion}`);
  }
  return r.namespaced
    ? `${base}/namespaces/${o.metadata.namespace ?? defaultNamespace}/${r.name}/${o.metadata.name}`
    : `${base}/${r.name}/${o.metadata.name}`;
}

const key = (o: ManifestObject, ns: string): string =>
  `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ns}/${o.metadata.name}`;

/** Rolls `s` back to its last `deployed` revision (see the module comment); returns what it did. */
export async function rollback(kube: Kube, s: StuckRelease): Promise<string> {
  const target = [...s.revisions].reverse().find((r) => r.release.info.status === "deployed")?.release;
  const where = `Helm release ${s.namespace}/${s.name}`;
  if (target === undefined) {
    throw new Error(
      `${where}: revision ${s.stuck.version} is ${s.stuck.info.status} and no revision is deployed, so there is nothing to roll back to. ` +
        `Delete the release's storage and objects, then install again: kubectl -n ${s.namespace} delete secret -l owner=helm,name=${s.name}, then npm run lab -- up <stack>`,
    );
  }
  const targetObjects = manifestObjects(target.manifest);
  const keep = new Set(targetObjects.map((o) => key(o, s.namespace)));
  for (const o of targetObjects) {
    const p = await objectPath(kube, o, s.namespace);
    await kube
      .request("PATCH", `${p}?fieldManager=helm&force=true`, o, { contentType: "application/apply-patch+yaml" })
      .catch((error: unknown) => {
        throw new Error(
          `${where}: applying ${o.kind} ${o.metadata.name} of revision ${target.version} failed: ${(error as Error).message}`,
          { cause: error },
        );
      });
  }
  for (const o of manifestObjects(s.stuck.manifest).filter((x) => !keep.has(key(x, s.namespace)))) {
    await kube.request("DELETE", `${await objectPath(kube, o, s.namespace)}?propagationPolicy=Background`);
  }

  const now = new Date().toISOString();
  const secretsPath = `/api/v1/namespaces/${s.namespace}/secrets`;
  const write = async (secret: Secret | undefined, release: HelmRelease): Promise<void> => {
    const labels: Record<string, string> = {
      ...(secret?.metadata.labels ?? {}),
      name: s.name,
      owner: "helm",
      status: release.info.status,
      version: String(release.version),
    };
    if (secret === undefined) {
      labels.createdAt = String(Math.floor(Date.now() / 1000));
    } else {
      labels.modifiedAt = String(Math.floor(Date.now() / 1000));
    }
    const name = `sh.helm.release.v1.${s.name}.v${release.version}`;
    const body = {
      apiVersion: "v1",
      kind: "Secret",
      type: "helm.sh/release.v1",
      metadata: {
        name,
        namespace: s.namespace,
        labels,
        ...(secret?.metadata.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      data: { release: encodeRelease(release) },
    };
    await (secret === undefined
      ? kube.request("POST", secretsPath, body)
      : kube.request("PUT", `${secretsPath}/${name}`, body));
  };
  const version = s.stuck.version + 1;
  await write(undefined, {
    ...target,
    version,
    info: {
      ...target.info,
      status: "deployed",
      description: `Rollback to ${target.version}`,
      first_deployed: s.stuck.info.first_deployed ?? target.info.first_deployed,
      last_deployed: now,
    },
  });
  for (const r of s.revisions) {
    if (r.release.version === s.stuck.version || r.release.info.status === "deployed") {
      await write(r.secret, { ...r.release, info: { ...r.release.info, status: "superseded" } });
    }
  }
  return `${where}: revision ${s.stuck.version} was ${s.stuck.info.status}; rolled back to revision ${target.version} as revision ${version} (deployed)`;
}
