/**
 * Which Kubernetes objects in a stack's state went with a replaced cluster, and dropping them (issue
 * 14, K2). Run by lab.sh before `up` and `refresh` (`prepare`), and after an `up` that failed
 * (up.ts).
 *
 * Each group of Kubernetes resources is judged with the kubeconfig its own provider holds in state
 * (what the engine would use to read or delete them), against the server it names:
 * - `same`: the server's certificate is signed by that kubeconfig's CA. Kept, always.
 * - `new`: another CA signed it (a reinstalled k3s, a replaced server VM: same URL, new CA, empty
 *   etcd). The old cluster is gone from that URL; its objects are dropped from state, and an `up`
 *   creates them on the new cluster. Without this the Release's delete goes to the old cluster and
 *   fails whatever `deleteUnreachable` says (pulumi-kubernetes provider.go Delete: `can't delete Helm
 *   Release with unreachable cluster`), and `deletedWith` is no help inside a replacement (pulumi
 *   pkg/resource/deploy/step.go isDeletedWith only skips when the other resource is already condemned).
 * - `down`: nothing answers. Dropped only once the resources' `deletedWith` resource (the server VM)
 *   is gone from state: `refresh-then-check` refreshes the rest of the stack first (lab.sh before
 *   `refresh` and `up --refresh`), `check-state` reads the state as it is (after a failed `up`),
 *   `keep` never drops. A cluster that is down while its VM exists keeps everything.
 * A provider without a kubeconfig input, or one that cannot be parsed, is never judged: kept.
 */
import { kubeFromKubeconfig, type Kube } from "./helm-storage";
import {
  dropFromState,
  kubernetesResources,
  type ProviderGroup,
  providerGroups,
  pulumi,
  stateResources,
} from "./state";

/** What a stored kubeconfig finds behind its URL. */
export type ClusterIdentity = "same" | "new" | "down";

/** Node's TLS verification errors that mean "signed by a CA other than the stored one". */
const UNKNOWN_CA = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "UNABLE_TO_GET_ISSUER_CERT",
]);

/** `same`, `new` or `down`, from the transport error's `code` (kube-client keeps it). */
export async function clusterIdentity(kube: Kube): Promise<ClusterIdentity> {
  try {
    await kube.request("GET", "/version");
    return "same";
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    return UNKNOWN_CA.has(code) ? "new" : "down";
  }
}

/** What to do about a cluster that does not answer; see the module comment. */
export type WhenDown = "keep" | "refresh-then-check" | "check-state";

interface Judged {
  readonly group: ProviderGroup;
  readonly server: string;
  readonly identity: ClusterIdentity;
}

async function judge(groups: readonly ProviderGroup[]): Promise<Judged[]> {
  const judged: Judged[] = [];
  for (const group of groups) {
    if (group.kubeconfig === undefined) {
      continue;
    }
    let kube: Kube;
    try {
      kube = kubeFromKubeconfig(group.kubeconfig);
    } catch {
      continue; // not a kubeconfig this can read: never judged
    }
    judged.push({ group, server: kube.server, identity: await clusterIdentity(kube) });
  }
  return judged;
}

const urnsOf = (j: Judged): string[] => j.group.resources.map((r) => r.urn);

/** Drops the Kubernetes resources that went with a replaced cluster; returns how many groups were dropped. */
export async function dropReplaced(stack: string, whenDown: WhenDown): Promise<number> {
  const judged = await judge(providerGroups(stateResources(stack, true)));
  let dropped = 0;
  for (const j of judged.filter((x) => x.identity === "new")) {
    dropFromState(
      stack,
      urnsOf(j),
      `the cluster at ${j.server} is a new cluster (its certificate is not signed by the CA in the stack's kubeconfig, as its Kubernetes provider holds it in state: a reinstalled k3s or a replaced server VM)`,
    );
    dropped += 1;
  }
  const down = judged.filter((x) => x.identity === "down");
  if (whenDown === "keep" || down.length === 0) {
    return dropped;
  }
  if (whenDown === "refresh-then-check") {
    // Only a refresh can tell whether the server VM still exists. Refresh everything else first; a
    // Kubernetes resource whose deletedWith (the server VM) is then gone went with that VM.
    process.stderr.write(
      `scripts/lab.sh: the cluster at ${down.map((j) => j.server).join(", ")} does not answer; refreshing the rest of the stack first to see whether its server VM still exists\n`,
    );
    const k8s = kubernetesResources(stateResources(stack));
    const excluded = [...new Set(k8s.map((r) => r.urn))].flatMap((urn) => ["--exclude", urn]);
    pulumi(
      ["refresh", "--stack", stack, "--yes", "--skip-preview", "--clear-pending-creates", ...excluded],
      process.env,
      true,
    );
  }
  const present = new Set(stateResources(stack).map((r) => r.urn));
  for (const j of down) {
    const goneWith = new Set(
      j.group.resources.map((r) => r.deletedWith ?? "").filter((w) => w !== "" && !present.has(w)),
    );
    if (goneWith.size > 0) {
      // Everything the provider manages lives on that cluster: once its server VM is gone, all of it is.
      dropFromState(stack, urnsOf(j), `${[...goneWith].join(", ")} no longer exists`);
      dropped += 1;
    }
  }
  return dropped;
}
