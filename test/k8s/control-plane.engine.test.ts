// test-needs: k8s-toolchain (etcd, kube-apiserver, kube-controller-manager and the kubernetes plugin)
/**
 * Smoke test of the real control plane (test/support/control-plane.ts: etcd 3.5.21,
 * kube-apiserver and kube-controller-manager v1.33.13, built from Go modules by
 * scripts/k8s-toolchain.sh) and of the Kubernetes plugin built from tools/pulumi-kubernetes: provider
 * commit f47bc2d6f199 (2026-01-15, after release 4.24.1; no release), installed and used only under
 * its own version 4.24.2-0.20260115033456-f47bc2d6f199, never under the 4.34.2 the npm SDK asks for.
 *
 * Real engine, real apiserver, no pods run (no scheduler, kubelet or node). Run it under the heavy
 * lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/control-plane.engine.test.ts`.
 * These tests never skip: without the binaries they fail and say how to build them.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import test from "ava";

import { alive, k8sPluginVersion, waitFor } from "../support/control-plane";
import { engineEnv, inlineStack, installedResourcePlugins, REPO_ROOT, tempDir } from "../engine/support";
import { controlPlaneForFile, createNamespace } from "./support/plane";

const plane = controlPlaneForFile();

type Obj = {
  metadata?: { uid?: string };
  status?: Record<string, unknown>;
  data?: Record<string, string>;
  items?: { metadata: { name: string } }[];
};

test.serial(
  "the apiserver answers on loopback TLS: /version says v1.33.13, /readyz says ok, and a request without a client certificate may not list namespaces",
  async (t) => {
    const { request } = plane();
    const version = await request("GET", "/version");
    t.is(version.status, 200);
    t.like(version.body, { gitVersion: "v1.33.13", major: "1", minor: "33" });
    t.deepEqual(await request("GET", "/readyz"), { status: 200, body: "ok" });
    // Anonymous requests are system:anonymous, which RBAC does not allow to list namespaces.
    t.is((await request("GET", "/api/v1/namespaces", undefined, { anonymous: true })).status, 403);
    t.is((await request("GET", "/api/v1/namespaces")).status, 200);
  },
);

test.serial(
  "a Deployment gets status from the controller-manager: 1 replica, 1 updated, 1 unavailable, through a ReplicaSet and a Pending pod (no node runs it)",
  async (t) => {
    const { request, logTail } = plane();
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "smoke", namespace: "default" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "smoke" } },
        template: {
          metadata: { labels: { app: "smoke" } },
          spec: { containers: [{ name: "c", image: "registry.invalid/smoke:1" }] },
        },
      },
    };
    t.is((await request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)).status, 201);
    const status = await waitFor(
      "the Deployment's status from the controller-manager",
      120_000,
      async () => {
        const s = ((await request("GET", "/apis/apps/v1/namespaces/default/deployments/smoke")).body as Obj).status;
        return s !== undefined && s.observedGeneration === 1 && s.replicas === 1 ? s : undefined;
      },
      () => `kube-controller-manager log:\n${logTail("kube-controller-manager")}`,
    );
    t.like(status, { observedGeneration: 1, replicas: 1, updatedReplicas: 1, unavailableReplicas: 1 });
    t.is(status.readyReplicas, undefined);
    // The pod exists (the ServiceAccount controller made `default`, which pod admission requires) and is never scheduled.
    const pods = (await request("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dsmoke")).body as {
      items: { status: { phase: string } }[];
    };
    t.deepEqual(
      pods.items.map((p) => p.status.phase),
      ["Pending"],
    );
  },
);

test.serial(
  "a namespace finalizes on delete: the controller-manager empties it and the apiserver removes it",
  async (t) => {
    const { request, logTail } = plane();
    t.is(await createNamespace(plane(), "smoke-ns"), 201);
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "inside", namespace: "smoke-ns" },
      data: { a: "b" },
    };
    t.is((await request("POST", "/api/v1/namespaces/smoke-ns/configmaps", cm)).status, 201);
    t.is((await request("DELETE", "/api/v1/namespaces/smoke-ns")).status, 200);
    await waitFor(
      "namespace smoke-ns to be gone",
      120_000,
      async () => ((await request("GET", "/api/v1/namespaces/smoke-ns")).status === 404 ? true : undefined),
      async () =>
        `namespace: ${JSON.stringify((await request("GET", "/api/v1/namespaces/smoke-ns")).body)}\nkube-controller-manager log:\n${logTail("kube-controller-manager")}`,
    );
    t.is((await request("GET", "/api/v1/namespaces/smoke-ns/configmaps/inside")).status, 404);
  },
);

test.serial(
  "the Kubernetes plugin is installed in PULUMI_HOME only under its own version, never under the 4.34.2 the npm SDK asks for",
  (t) => {
    const version = k8sPluginVersion();
    t.is(version, "4.24.2-0.20260115033456-f47bc2d6f199");
    const env = engineEnv(tempDir(t, "plugins"));
    const kubernetes = installedResourcePlugins(env)
      .filter((p) => p.name === "kubernetes")
      .map((p) => p.version);
    t.deepEqual(kubernetes, [version], `PULUMI_HOME=${env.PULUMI_HOME ?? "(unset)"}`);
  },
);

test.serial(
  "an inline program with an explicit Provider pinned to the built plugin's version creates a ConfigMap on the apiserver, and destroy deletes it",
  async (t) => {
    t.timeout(15 * 60_000);
    const { request, kubeconfig } = plane();
    const version = k8sPluginVersion();
    const envVars = engineEnv(tempDir(t, "backend"));
    const stack = await inlineStack(t, {
      stackName: "k8ssmoke",
      projectName: "k8s-smoke",
      envVars,
      program: () => {
        // `version` picks the plugin binary; without it the SDK would ask for its own 4.34.2.
        const provider = new k8s.Provider("test", { kubeconfig: pulumi.secret(kubeconfig) }, { version });
        const cm = new k8s.core.v1.ConfigMap(
          "smoke",
          { metadata: { name: "pulumi-smoke", namespace: "default" }, data: { greeting: "hello" } },
          { provider, version },
        );
        return Promise.resolve({ uid: cm.metadata.uid });
      },
    });
    t.teardown(() =>
      stack.destroy({ color: "never" }).then(
        () => undefined,
        () => undefined,
      ),
    );

    const up = await stack.up({ color: "never" });
    t.is(up.summary.result, "succeeded");
    const live = (await request("GET", "/api/v1/namespaces/default/configmaps/pulumi-smoke")).body as Obj;
    t.deepEqual(live.data, { greeting: "hello" });
    t.is(up.outputs.uid?.value, live.metadata?.uid);

    const state = (await stack.exportStack()).deployment as {
      resources?: { type: string; inputs?: { version?: string } }[];
    };
    const providers = (state.resources ?? [])
      .filter((r) => r.type === "pulumi:providers:kubernetes")
      .map((r) => r.inputs?.version);
    t.deepEqual(providers, [version]);

    const destroy = await stack.destroy({ color: "never" });
    t.is(destroy.summary.result, "succeeded");
    t.is((await request("GET", "/api/v1/namespaces/default/configmaps/pulumi-smoke")).status, 404);
  },
);

for (const [how, arg, signal] of [
  ["exits without calling stop()", "exit", undefined],
  ["is ended by SIGTERM (how ava ends a timed-out worker)", "wait", "SIGTERM"],
  ["is ended by SIGINT (Ctrl+C)", "wait", "SIGINT"],
] as const) {
  test.serial(
    `when the process holding a control plane ${how}, etcd, kube-apiserver and kube-controller-manager are gone and the temp dir is removed`,
    async (t) => {
      t.timeout(5 * 60_000);
      const child = spawn(
        process.execPath,
        ["--import=tsx", path.join(__dirname, "fixtures", "hold-control-plane.ts"), arg],
        {
          cwd: REPO_ROOT,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const held = await waitFor(
        "the child's control plane",
        180_000,
        () =>
          Promise.resolve(
            out.includes("\n")
              ? (JSON.parse(out.split("\n")[0] ?? "") as { pids: Record<string, number>; dir: string })
              : undefined,
          ),
        () => `child stderr: ${err}`,
      );
      const pids = Object.values(held.pids);
      t.is(pids.length, 3);
      if (signal !== undefined) {
        t.deepEqual(pids.map(alive), [true, true, true]);
        child.kill(signal);
      }
      await exited;
      // KILLed processes are reaped by init, which may take a moment.
      await waitFor("the processes to be reaped", 15_000, () =>
        Promise.resolve(pids.some(alive) ? undefined : true),
      ).catch(() => undefined);
      t.deepEqual([...pids.map(alive), existsSync(held.dir)], [false, false, false, false], `child stderr: ${err}`);
    },
  );
}

test.serial(
  "stop() ends etcd, kube-apiserver and kube-controller-manager by PID and removes the temp dir",
  async (t) => {
    const current = plane();
    const { pids, dir } = current;
    t.deepEqual(
      [alive(pids.etcd), alive(pids.apiserver), alive(pids.controllerManager), existsSync(dir)],
      [true, true, true, true],
    );
    await current.stop();
    t.deepEqual(
      [alive(pids.etcd), alive(pids.apiserver), alive(pids.controllerManager), existsSync(dir)],
      [false, false, false, false],
    );
  },
);
