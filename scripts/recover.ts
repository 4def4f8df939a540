/**
 * Kubernetes-side recovery for `scripts/lab.sh` (issue 14, K2 and K3). No `helm` or `kubectl` needed:
 * it talks to the apiserver itself with the kubeconfigs the stack holds (its Kubernetes providers'
 * in state, its `kubeconfig` output), read with `--show-secrets` and never printed.
 *
 *   tsx scripts/recover.ts prepare <stack> <up|refresh> [pulumi flags of the command that follows]
 *     Run by lab.sh before `up` and `refresh`: drops from state the Kubernetes objects of a cluster
 *     that was replaced behind the same URL (a reinstalled k3s, a replaced server VM: a new CA), or
 *     that is down while the refresh that follows finds its server VM gone (scripts/recover/replaced.ts
 *     says when, and why nothing is dropped from a cluster that still exists).
 *
 *   tsx scripts/recover.ts up <stack> [pulumi flags]
 *     What lab.sh runs for `up`: the same as `prepare`, then `pulumi up`; when that fails on the
 *     objects of a cluster replaced inside it (node-1's VM replaced by a config change, so k3s was
 *     reinstalled after the judgement above), they are dropped and `up` runs once more, once
 *     (scripts/recover/up.ts says when, and what it never retries).
 *
 *   tsx scripts/recover.ts recover <stack>
 *     After a killed `up`, Helm's latest revision of the Cilium release stays `pending-upgrade` (or
 *     `pending-install`/`pending-rollback`) and every later Helm operation fails with `another
 *     operation (install/upgrade/rollback) is in progress`. This rolls back to the last `deployed`
 *     revision as `helm rollback` does (scripts/recover/helm-storage.ts), then refreshes the stack.
 */
import { realpathSync } from "node:fs";
import * as path from "node:path";

import { RELEASE_NAME, RELEASE_NAMESPACE } from "../infra/cilium/release";
import { kubeFromKubeconfig, rollback, stuckRelease } from "./recover/helm-storage";
import { liveEngineProcesses } from "./recover/processes";
import { clusterIdentity, dropReplaced } from "./recover/replaced";
import { pulumi, stackKubeconfig } from "./recover/state";
import { upWithRetry, whenDownBefore } from "./recover/up";

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
  const usage =
    "usage: tsx scripts/recover.ts prepare <stack> <up|refresh> [pulumi flags...] | recover <stack> | up <stack> [pulumi flags...]";
  if (stack === undefined || stack === "") {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  try {
    if (command === "prepare") {
      const [forCommand = "up", ...flags] = rest;
      await dropReplaced(stack, whenDownBefore(forCommand, flags));
    } else if (command === "up") {
      return await upWithRetry(stack, rest);
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
