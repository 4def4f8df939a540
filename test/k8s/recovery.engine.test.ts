// test-needs: k8s-toolchain (a real control plane and the kubernetes plugin)
/**
 * Issue 14 K2 end to end: the real engine (Go-built pulumi), the Kubernetes plugin built from
 * tools/pulumi-kubernetes (provider commit f47bc2d6f199, used only under its own version) and a real
 * kube-apiserver on loopback (test/support/control-plane.ts). No pods run. The commands are the
 * README's, through scripts/lab.sh itself, on the project of test/k8s/support/recovery-project.ts.
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/recovery.engine.test.ts`.
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import * as path from "node:path";

import test, { type ExecutionContext } from "ava";

import { type ControlPlane } from "../support/control-plane";
import {
  configure,
  configureFirst,
  installKubeconfig,
  installRequested,
  lab,
  labAsync,
  labOk,
  listingsSettledTo,
  makeProject,
  newCluster,
  port,
  projectOnNewCluster,
  type Project,
  revisionStates,
  STACK,
} from "./support/recovery-project";

const UP = ["up", STACK, "--yes", "--skip-preview"];

/** The release at revision 1, deployed, and the object beside it: what a first `up` makes on `cp`. */
async function assertInstalled(t: ExecutionContext, cp: ControlPlane): Promise<void> {
  t.deepEqual(await revisionStates(cp), [[1, "deployed"]]);
  t.is((await cp.request("GET", "/api/v1/namespaces/default/configmaps/lab-beside")).status, 200);
}

/** k3s reinstalled (same URL, new CA, empty cluster), then the README's `up`, then its `up --refresh`. */
async function newClusterThenUp(t: ExecutionContext, p: Project, cp: ControlPlane): Promise<ControlPlane> {
  // The old code failed here on the Release's delete: `can't delete Helm Release with unreachable cluster ... x509`.
  const url = cp.server;
  await cp.stop();
  ({ cp } = await newCluster(p, port(cp)));
  t.is(cp.server, url);
  const upOut = labOk(t, p, UP);
  t.regex(upOut, /is a new cluster \(its certificate is not signed by the CA in the stack's kubeconfig/);
  await assertInstalled(t, cp);

  // The README's refresh path, again on a new cluster behind the same URL.
  await cp.stop();
  ({ cp } = await newCluster(p, port(cp)));
  labOk(t, p, ["up", STACK, "--refresh", "--yes", "--skip-preview"]);
  await assertInstalled(t, cp);
  return cp;
}

/** A down cluster whose VM exists keeps its objects; once the VM is gone, refresh drops them and `up` rebuilds. */
async function downThenVmGone(t: ExecutionContext, p: Project, cp: ControlPlane): Promise<void> {
  // The cluster does not answer but its server VM exists (a stopped VM): nothing is dropped, the
  // refresh fails with the provider's reason and the state keeps every Kubernetes resource.
  const url = cp.server;
  await cp.stop();
  const down = lab(p, ["refresh", STACK, "--yes", "--skip-preview"]);
  t.not(down.status, 0);
  t.regex(down.stdout + down.stderr, /unreachable cluster/);
  const state = (): string =>
    spawnSync("bash", [path.join(p.dir, "scripts", "lab.sh"), "output", STACK, "--json"], {
      cwd: p.dir,
      env: p.env,
      encoding: "utf8",
    }).stdout;
  t.regex(state(), /releaseStatus/);

  // node-1's VM deleted by hand: the README's refresh drops what went with it, then `up` rebuilds.
  rmSync(p.vmFile);
  const refreshed = labOk(t, p, ["refresh", STACK, "--yes", "--skip-preview"]);
  t.regex(refreshed, /no longer exists; dropping 2 Kubernetes resource\(s\) from state/);
  ({ cp } = await newCluster(p, Number(new URL(url).port)));
  labOk(t, p, UP);
  t.deepEqual(await revisionStates(cp), [[1, "deployed"]]);
}

test.serial(
  "K2: after the cluster behind the server URL is replaced (new CA, empty etcd), `lab.sh up` recovers and the README's `lab.sh up --refresh` recovers; a down cluster whose VM still exists keeps its objects in state, one whose VM is gone is dropped and `up` recreates them",
  async (t) => {
    t.timeout(40 * 60_000);
    const { p, cp } = await projectOnNewCluster(t);
    labOk(t, p, UP);
    t.deepEqual(await revisionStates(cp), [[1, "deployed"]]);
    await downThenVmGone(t, p, await newClusterThenUp(t, p, cp));
    labOk(t, p, ["destroy", STACK, "--yes", "--skip-preview"]);
  },
);

/** The state's Kubernetes providers, and the resources still marked for deletion. */
function stateSummary(p: Project): { providers: number; pendingDeletes: string[] } {
  const exported = spawnSync("pulumi", ["stack", "export", "--stack", STACK], {
    cwd: p.dir,
    env: p.env,
    encoding: "utf8",
  });
  const resources =
    (JSON.parse(exported.stdout) as { deployment?: { resources?: { type: string; urn: string; delete?: boolean }[] } })
      .deployment?.resources ?? [];
  return {
    providers: resources.filter((r) => r.type === "pulumi:providers:kubernetes").length,
    pendingDeletes: resources.filter((r) => r.delete === true).map((r) => r.urn),
  };
}

test.serial(
  "K2 in one up: a config change that replaces node-1's VM reinstalls k3s during `lab.sh up` (a new CA and an empty cluster behind the same URL); the up fails on the old Release's delete, lab.sh drops the old cluster's objects and runs up once more, which completes; destroy then leaves the new cluster's listings equal to a fresh cluster's",
  async (t) => {
    t.timeout(40 * 60_000);
    const p = makeProject(t);
    const first = await newCluster(p, undefined, installKubeconfig(p, 1));
    configureFirst(t, p, { installDir: p.installDir, vmGeneration: "1" });
    labOk(t, p, UP);
    await assertInstalled(t, first.cp);

    // The config change: node-1's VM is replaced, and the k3s install on it runs again. While the
    // `up` waits in that install, the old cluster goes and a new one answers behind the same URL.
    configure(t, p, { vmGeneration: "2" });
    const started = Date.now();
    const up = labAsync(p, UP);
    await installRequested(p, 2);
    await first.cp.stop();
    const second = await newCluster(p, port(first.cp), installKubeconfig(p, 2));
    const { status, output } = await up.done;
    t.log(`lab.sh up with the cluster replaced inside it: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    t.is(status, 0, output);
    t.regex(output, /can't delete Helm Release with unreachable cluster/);
    t.regex(output, /is a new cluster \(its certificate is not signed by the CA in the stack's kubeconfig/);
    t.regex(output, /running up once more to create them on the new cluster/);
    await assertInstalled(t, second.cp);
    t.deepEqual(stateSummary(p), { providers: 1, pendingDeletes: [] });

    // Nothing of the old cluster's is left in state, and the new cluster holds only what the program
    // made: once destroy deletes it through the provider, the listings are a fresh cluster's.
    configure(t, p, { deletedWithVm: "false" });
    labOk(t, p, UP);
    labOk(t, p, ["destroy", STACK, "--yes", "--skip-preview"]);
    t.deepEqual(await listingsSettledTo(second.cp, second.fresh), second.fresh);
  },
);
