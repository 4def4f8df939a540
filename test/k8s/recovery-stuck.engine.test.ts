// test-needs: k8s-toolchain (a real control plane and the kubernetes plugin)
/**
 * Issue 14 K3 end to end: an `up` killed while Helm waits, then `npm run lab -- recover`. The real
 * engine (Go-built pulumi), the Kubernetes plugin built from tools/pulumi-kubernetes (provider commit
 * f47bc2d6f199, used only under its own version) and a real kube-apiserver on loopback
 * (test/support/control-plane.ts). No pods run. The commands are the README's, through
 * scripts/lab.sh itself, on the project of test/k8s/support/recovery-project.ts.
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/recovery-stuck.engine.test.ts`.
 */
import test, { type ExecutionContext } from "ava";

import { alive, type ControlPlane, waitFor } from "../support/control-plane";
import {
  commandName,
  configure,
  descendants,
  lab,
  labAsync,
  labOk,
  listingsSettledTo,
  projectOnNewCluster,
  type Project,
  revisions,
  revisionStates,
  STACK,
} from "./support/recovery-project";

const UP = ["up", STACK, "--yes", "--skip-preview"];

/**
 * An upgrade whose wait never ends (1 operator replica, maxUnavailable 0, no node), killed hard: the
 * pulumi CLI alone first, and `lab.sh recover` must refuse while its orphaned plugin could still
 * record the upgrade; then every process under lab.sh, by PID.
 */
async function killedUpgrade(t: ExecutionContext, p: Project, cp: ControlPlane): Promise<void> {
  configure(t, p, { operatorReplicas: "1" });
  const up = labAsync(p, UP);
  await waitFor("Helm revision 2 pending-upgrade", 5 * 60_000, async () =>
    (await revisions(cp)).some((r) => r.version === 2 && r.status === "pending-upgrade") ? true : undefined,
  );
  await new Promise((r) => setTimeout(r, 3000));
  // SIGKILL to the engine and every process under it, by PID: the CLI starts each plugin in a
  // process group of its own, so a group kill would leave the Kubernetes plugin waiting on (and
  // later finishing) the upgrade.
  const tree = descendants(up.child.pid ?? 0);
  const killTree = (): void => {
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  t.teardown(killTree);
  t.true(tree.length >= 3, `processes under lab.sh: ${tree.join(" ")}`);
  // lab.sh runs the CLI under scripts/recover.ts up, which never retries an up ended by a signal.
  const cli = tree.find((pid) => commandName(pid) === "pulumi");
  t.not(cli, undefined, `no pulumi CLI among ${tree.map((pid) => `${pid} ${commandName(pid)}`).join(", ")}`);
  process.kill(cli ?? 0, "SIGKILL");
  t.is((await up.done).status, 137);
  const refused = lab(p, ["recover", STACK]);
  t.is(refused.status, 1, refused.stdout + refused.stderr);
  t.regex(
    refused.stderr,
    /an engine for stack rec is still running here, and could still change the release:\n(.|\n)*\n {2}\d+ pulumi-resource-kubernetes (.|\n)*Let it finish, or stop each by its PID/,
  );
  killTree();
  await waitFor("the engine's processes to be gone", 15_000, () =>
    Promise.resolve(tree.some(alive) ? undefined : true),
  );
  t.deepEqual(await revisionStates(cp), [
    [1, "deployed"],
    [2, "pending-upgrade"],
  ]);
}

/** The stuck release refuses `up` until `lab.sh recover` rolls it back. */
async function refusedThenRecovered(t: ExecutionContext, p: Project, cp: ControlPlane): Promise<void> {
  // The stuck release is seen, not hidden: `up` fails until it is recovered, and is not run again.
  const stuck = lab(p, UP);
  t.not(stuck.status, 0);
  t.regex(stuck.stdout + stuck.stderr, /the stack is currently locked/);
  t.notRegex(stuck.stdout + stuck.stderr, /running up once more/);
  t.log(
    `up before recover:\n${(stuck.stdout + stuck.stderr)
      .split("\n")
      .filter((l) => /error/i.test(l))
      .join("\n")}`,
  );

  const recovered = labOk(t, p, ["recover", STACK]);
  t.regex(recovered, /revision 2 was pending-upgrade; rolled back to revision 1 as revision 3 \(deployed\)/);
  t.deepEqual(
    (await revisions(cp)).map((r) => [r.version, r.status, r.labelStatus]),
    [
      [1, "superseded", "superseded"],
      [2, "superseded", "superseded"],
      [3, "deployed", "deployed"],
    ],
  );
  t.is((await revisions(cp))[2]?.description, "Rollback to 1");
  const operator = (await cp.request("GET", "/apis/apps/v1/namespaces/kube-system/deployments/cilium-operator"))
    .body as { spec: { replicas: number } };
  t.is(operator.spec.replicas, 0);
}

test.serial(
  "K3: an `up` SIGKILLed during the Release's wait leaves Helm's revision pending-upgrade; `lab.sh recover` refuses while the orphaned Kubernetes plugin still runs, then rolls back to the last deployed revision without helm, refreshes, and the next `up` upgrades cleanly; `destroy` then leaves the apiserver's listings equal to a fresh cluster's, Events aside",
  async (t) => {
    t.timeout(40 * 60_000);
    // No deletedWith here: destroy must delete the release and its objects through the provider
    // (the lab's deletedWith server VM skips those deletes because the cluster goes with the VM).
    const { p, cp, fresh } = await projectOnNewCluster(t, { deletedWithVm: "false" });
    labOk(t, p, UP);
    await killedUpgrade(t, p, cp);
    await refusedThenRecovered(t, p, cp);

    // A clean `up`: Helm accepts the upgrade again (no "another operation is in progress").
    configure(t, p, { operatorReplicas: "0", routingMode: "native" });
    labOk(t, p, UP);
    const revs = await revisions(cp);
    t.deepEqual(revs[revs.length - 1], {
      version: 4,
      status: "deployed",
      description: "Upgrade complete",
      labelStatus: "deployed",
    });
    const config = (await cp.request("GET", "/api/v1/namespaces/kube-system/configmaps/cilium-config")).body as {
      data: Record<string, string>;
    };
    t.is(config.data["routing-mode"], "native");

    labOk(t, p, ["destroy", STACK, "--yes", "--skip-preview"]);
    // Pods and ReplicaSets go by the controller-manager's garbage collection, a moment after.
    t.deepEqual(await listingsSettledTo(cp, fresh), fresh);
  },
);
