/**
 * Kubernetes-side recovery for `scripts/lab.sh` (issue 14, K2 and K3). No `helm` or `kubectl` needed:
 * it talks to the apiserver itself with the stack's `kubeconfig` output, which is read with
 * `pulumi stack output kubeconfig --show-secrets` and never printed.
 *
 *   tsx scripts/recover.ts prepare <stack> [pulumi flags of the command that follows]
 *     Run by lab.sh before `up` and `refresh`. When the cluster behind the stored URL is a NEW cluster
 *     (a reinstalled k3s, a replaced server VM: the server's certificate is not signed by the stored
 *     CA), the Kubernetes objects in state went with the old cluster; they are dropped from state with
 *     a refresh of just those resources under PULUMI_K8S_DELETE_UNREACHABLE=true, and the `up` that
 *     follows creates them on the new cluster. Without this the Release's delete goes to the old
 *     cluster and fails whatever `deleteUnreachable` says (pulumi-kubernetes provider.go Delete:
 *     `can't delete Helm Release with unreachable cluster`), and `deletedWith` is no help inside a
 *     replacement (pulumi pkg/resource/deploy/step.go isDeletedWith only skips when the other
 *     resource is already condemned). When the server does not answer at all and the command
 *     refreshes, the rest of the stack is refreshed first; a Kubernetes resource whose `deletedWith`
 *     resource (the server VM) is then gone from state is dropped the same way. A cluster that
 *     answers with its own CA, or is down while its VM still exists, is left alone: nothing is
 *     dropped from a cluster that may still exist.
 *
 *   tsx scripts/recover.ts recover <stack>
 *     After a killed `up`, Helm's latest revision of the Cilium release stays `pending-upgrade` (or
 *     `pending-install`/`pending-rollback`) and every later Helm operation fails with `another
 *     operation (install/upgrade/rollback) is in progress`. This rolls back to the last `deployed`
 *     revision as `helm rollback` does (see rollback() below), then refreshes the stack.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import * as path from "node:path";

import { RELEASE_NAME, RELEASE_NAMESPACE } from "../infra/cilium/release";
import { type Kube, kubeFromKubeconfig, rollback, stuckRelease } from "./recover/helm-storage";

function pulumi(args: string[], env: NodeJS.ProcessEnv = process.env, inherit = false): string {
  try {
    return (
      execFileSync("pulumi", args, {
        env,
        encoding: "utf8",
        stdio: ["ignore", inherit ? "inherit" : "pipe", inherit ? "inherit" : "pipe"],
        maxBuffer: 256 * 1024 * 1024,
      }) ?? ""
    );
  } catch (error) {
    const e = error as { status?: number; stderr?: string };
    // Never echo stdout: it may hold the kubeconfig.
    throw new Error(
      `pulumi ${args.filter((a) => a !== "--show-secrets").join(" ")} exited ${e.status ?? "?"}: ${(e.stderr ?? "").trim()}`,
      { cause: error },
    );
  }
}

/** The stack's kubeconfig output, or undefined when the stack has none yet (never printed). */
function stackKubeconfig(stack: string): string | undefined {
  let out: string;
  try {
    out = pulumi(["stack", "output", "--stack", stack, "--json", "--show-secrets"]);
  } catch {
    return undefined; // a stack never deployed has no outputs
  }
  const outputs = JSON.parse(out || "{}") as { kubeconfig?: unknown };
  return typeof outputs.kubeconfig === "string" && outputs.kubeconfig !== "" ? outputs.kubeconfig : undefined;
}

interface StateResource {
  urn: string;
  type: string;
  provider?: string;
  deletedWith?: string;
}

function stateResources(stack: string): StateResource[] {
  const state = JSON.parse(pulumi(["stack", "export", "--stack", stack])) as {
    deployment?: { resources?: StateResource[] };
  };
  return state.deployment?.resources ?? [];
}

/** Resources managed through a `kubernetes` provider (not the providers themselves). */
export function kubernetesResources(resources: readonly StateResource[]): StateResource[] {
  return resources.filter((r) => (r.provider ?? "").includes("::pulumi:providers:kubernetes::"));
}

function dropFromState(stack: string, urns: string[], why: string): void {
  if (urns.length === 0) {
    return;
  }
  process.stderr.write(
    `scripts/lab.sh: ${why}; dropping ${urns.length} Kubernetes resource(s) from state (they went with the old cluster):\n${urns.map((u) => `  ${u}\n`).join("")}`,
  );
  // PULUMI_K8S_DELETE_UNREACHABLE: Read of an unreachable cluster's object answers "deleted", so the
  // refresh drops it (pulumi-kubernetes provider/pkg/provider/provider.go Read, `deleteUnreachable`).
  // The Provider in infra/index.ts sets no `deleteUnreachable` input, so this variable decides.
  pulumi(
    ["refresh", "--stack", stack, "--yes", "--skip-preview", ...urns.flatMap((u) => ["--target", u])],
    { ...process.env, PULUMI_K8S_DELETE_UNREACHABLE: "true" },
    true,
  );
}

/** What the stored kubeconfig finds behind its URL. */
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

export async function clusterIdentity(kube: Kube): Promise<ClusterIdentity> {
  try {
    await kube.request("GET", "/version");
    return "same";
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    return UNKNOWN_CA.has(code) ? "new" : "down";
  }
}

async function prepare(stack: string, flags: string[], command: string): Promise<void> {
  const kubeconfig = stackKubeconfig(stack);
  if (kubeconfig === undefined) {
    return;
  }
  const kube = kubeFromKubeconfig(kubeconfig);
  const identity = await clusterIdentity(kube);
  if (identity === "same") {
    return;
  }
  const k8s = kubernetesResources(stateResources(stack));
  if (identity === "new") {
    dropFromState(
      stack,
      k8s.map((r) => r.urn),
      `the cluster at ${kube.server} is a new cluster (its certificate is not signed by the CA in the stack's kubeconfig: a reinstalled k3s or a replaced server VM)`,
    );
    return;
  }
  const refreshes =
    command === "refresh" ||
    flags.includes("--refresh") ||
    flags.includes("-r") ||
    flags.some((f) => f.startsWith("--refresh="));
  if (!refreshes || k8s.length === 0) {
    return;
  }
  // Down: only a refresh can tell whether the server VM still exists. Refresh everything else first;
  // a Kubernetes resource whose deletedWith (the server VM) is then gone went with that VM.
  process.stderr.write(
    `scripts/lab.sh: the cluster at ${kube.server} does not answer; refreshing the rest of the stack first to see whether its server VM still exists\n`,
  );
  pulumi(
    [
      "refresh",
      "--stack",
      stack,
      "--yes",
      "--skip-preview",
      "--clear-pending-creates",
      ...k8s.flatMap((r) => ["--exclude", r.urn]),
    ],
    process.env,
    true,
  );
  const present = new Set(stateResources(stack).map((r) => r.urn));
  const gone = k8s.filter((r) => r.deletedWith !== undefined && r.deletedWith !== "" && !present.has(r.deletedWith));
  const goneWith = new Set(gone.map((r) => r.deletedWith));
  // Everything the lab's provider manages lives on that cluster: once its server VM is gone, all of it is.
  const dropped = gone.length > 0 ? k8s.map((r) => r.urn) : [];
  dropFromState(stack, dropped, `${[...goneWith].join(", ")} no longer exists`);
}

/**
 * Processes that could still write the release: a `pulumi … --stack <stack>` CLI working in this
 * project, or a plugin orphaned by a killed CLI (parent PID 1) working in this project. The CLI starts
 * each plugin in a process group of its own, so killing the CLI's group leaves the Kubernetes plugin
 * waiting on the upgrade; were the rollback to make the release ready, that plugin would then record
 * the stuck revision as `deployed` after all (seen in test/k8s/recovery.engine.test.ts). Linux /proc.
 */
export function liveEngineProcesses(projectDir: string, stack: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return found;
  }
  const project = realpathSync(projectDir);
  for (const entry of entries) {
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) !== project) {
        continue;
      }
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8")
        .split("\0")
        .filter((a) => a !== "");
      const exe = path.basename(argv[0] ?? "");
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1];
      const cli =
        exe === "pulumi" && argv.some((a, i) => (a === "--stack" && argv[i + 1] === stack) || a === `--stack=${stack}`);
      const orphanedPlugin = exe.startsWith("pulumi-") && ppid === "1";
      if (cli || orphanedPlugin) {
        found.push({ pid: Number(entry), command: [exe, ...argv.slice(1)].join(" ").slice(0, 200) });
      }
    } catch {
      // not ours to read, or exited meanwhile
    }
  }
  return found;
}

async function recover(stack: string): Promise<void> {
  const live = liveEngineProcesses(process.cwd(), stack);
  if (live.length > 0) {
    throw new Error(
      `an engine for stack ${stack} is still running here, and could still change the release:\n${live.map((p) => `  ${p.pid} ${p.command}\n`).join("")}` +
        `Let it finish, or stop each by its PID (kill ${live.map((p) => p.pid).join(" ")}), then run recover again.`,
    );
  }
  const kubeconfig = stackKubeconfig(stack);
  if (kubeconfig === undefined) {
    throw new Error(
      `stack ${stack} has no kubeconfig output: it was never deployed, so there is no release to recover. Run: npm run lab -- up ${stack}`,
    );
  }
  const kube = kubeFromKubeconfig(kubeconfig);
  const identity = await clusterIdentity(kube);
  if (identity !== "same") {
    throw new Error(
      `the cluster at ${kube.server} ${identity === "new" ? "is a new cluster (its certificate is not signed by the stack's CA)" : "does not answer"}: there is no stuck release on it to recover. ` +
        (identity === "new"
          ? `Run: npm run lab -- up ${stack}`
          : `Start node-1's VM (virsh start), or run: npm run lab -- up ${stack} --refresh`),
    );
  }
  const stuck = await stuckRelease(kube, RELEASE_NAMESPACE, RELEASE_NAME);
  if (stuck === undefined) {
    process.stdout.write(
      `recover: Helm release ${RELEASE_NAMESPACE}/${RELEASE_NAME} is not stuck (no pending revision); nothing rolled back.\n`,
    );
  } else {
    const done = await rollback(kube, stuck);
    process.stdout.write(`recover: ${done}\n`);
  }
  // A killed `up` leaves the stack's lock (file backends: .pulumi/locks) and pending operations;
  // `cancel` is the CLI's way to clear the former, the refresh the latter.
  try {
    pulumi(["cancel", "--stack", stack, "--yes"]);
  } catch {
    // nothing to cancel
  }
  process.stdout.write(`recover: refreshing stack ${stack} so its state matches the cluster\n`);
  pulumi(["refresh", "--stack", stack, "--yes", "--skip-preview"], process.env, true);
  process.stdout.write(`recover: done. Next: npm run lab -- up ${stack}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, stack, ...rest] = argv;
  const usage = "usage: tsx scripts/recover.ts prepare <stack> <up|refresh> [pulumi flags...] | recover <stack>";
  if (stack === undefined || stack === "") {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  try {
    if (command === "prepare") {
      const [forCommand = "up", ...flags] = rest;
      await prepare(stack, flags, forCommand);
    } else if (command === "recover") {
      await recover(stack);
    } else {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    return 0;
  } catch (error) {
    process.stderr.write(`scripts/lab.sh ${command}: ${(error as Error).message}\n`);
    return 1;
  }
}

// Run as a script (also through a symlinked scripts/ directory, as the engine test does).
if (process.argv[1] !== undefined && realpathSync(path.resolve(process.argv[1])) === realpathSync(__filename)) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
