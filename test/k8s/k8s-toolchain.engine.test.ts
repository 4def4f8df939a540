// test-needs: k8s-toolchain (what the script exported)
/**
 * scripts/k8s-toolchain.sh: the binaries it exports are the pinned ones, and a second run is served
 * from its cache. Needs what the script exported in this shell (see test/support/control-plane.ts);
 * never skips.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as path from "node:path";

import test from "ava";

import { controlPlaneBinaries, k8sPluginVersion } from "../support/control-plane";
import { goModRequirement, REPO_ROOT } from "../engine/support";

const run = (file: string, args: string[]): string => execFileSync(file, args, { encoding: "utf8" }).trim();

test("kube-apiserver and kube-controller-manager report the k8s.io/kubernetes version tools/k8s-control-plane pins, and etcd the go.etcd.io/etcd/server/v3 one", (t) => {
  const bin = controlPlaneBinaries();
  const k8s = goModRequirement("k8s-control-plane", "k8s.io/kubernetes");
  const etcd = goModRequirement("k8s-control-plane", "go.etcd.io/etcd/server/v3");
  t.deepEqual([k8s, etcd], ["v1.33.13", "v3.5.21"]);
  t.is(run(bin.apiserver, ["--version"]), `Kubernetes ${k8s}`);
  t.is(run(bin.controllerManager, ["--version"]), `Kubernetes ${k8s}`);
  t.is(run(bin.etcd, ["--version"]).split("\n")[0], `etcd Version: ${etcd.slice(1)}`);
});

test("the plugin version is the provider commit tools/pulumi-kubernetes pins, stamped as 4.24.1 plus commits: 4.24.2-0.<commit time>-<commit>", (t) => {
  const pseudo = goModRequirement("pulumi-kubernetes", "github.com/pulumi/pulumi-kubernetes/provider/v4");
  t.is(pseudo, "v4.0.0-20260115033456-f47bc2d6f199");
  t.is(k8sPluginVersion(), "4.24.2-0.20260115033456-f47bc2d6f199");
});

test("run again, scripts/k8s-toolchain.sh prints the same export lines from its cache within 10 s and builds nothing", (t) => {
  const started = Date.now();
  const result = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "k8s-toolchain.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const seconds = (Date.now() - started) / 1000;
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    result.stderr
      .split("\n")
      .filter((l) => / (reusing|building) /.test(l))
      .map((l) =>
        l
          .replace(/^\[k8s-toolchain +\d+s\] /, "")
          .replace(/ \S*\//, " ")
          .replace(/_[0-9a-f]{12}$/, ""),
      ),
    [
      "reusing k8s-control-plane-v1.33.13_etcd-v3.5.21",
      "reusing pulumi-kubernetes-4.24.2-0.20260115033456-f47bc2d6f199",
    ],
  );
  const out = result.stdout;
  const bin = controlPlaneBinaries();
  t.deepEqual(out.trim().split("\n"), [
    `export CILIUM_LAB_ETCD=${bin.etcd}`,
    `export CILIUM_LAB_KUBE_APISERVER=${bin.apiserver}`,
    `export CILIUM_LAB_KUBE_CONTROLLER_MANAGER=${bin.controllerManager}`,
    `export CILIUM_LAB_K8S_PLUGIN_VERSION=${k8sPluginVersion()}`,
  ]);
  t.true(seconds < 10, `took ${seconds} s`);
});
