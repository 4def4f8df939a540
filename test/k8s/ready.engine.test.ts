// test-needs: k8s-toolchain (a real control plane and the kubernetes plugin)
/**
 * The Cilium readiness gate (infra/cilium/ready.ts) against a real kube-apiserver and
 * kube-controller-manager (test/support/control-plane.ts), with the real engine, the project's own
 * `Cilium` component installing the stand-in chart test/k8s/charts/cilium-shaped (the real chart
 * cannot be fetched here) through the Kubernetes plugin built from tools/pulumi-kubernetes (provider
 * commit f47bc2d6f199), pinned by its own version on an explicit Provider.
 *
 * No kubelet or scheduler runs. Two Node objects are created through the API, so the real DaemonSet
 * controller wants 2 agents; the real ReplicaSet/Deployment/DaemonSet controllers create the pods and
 * compute every count the gate reads. Where a pod must be "running", this test acts as the kubelet
 * would: it writes the pod's status (phase Running, condition Ready=True) through the pods/status
 * subresource. It never writes a DaemonSet's or Deployment's status: those stay the controllers'.
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/ready.engine.test.ts`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import test, { type ExecutionContext } from "ava";

import { Cilium } from "../../infra/cilium/cilium";
import { CiliumReady } from "../../infra/cilium/ready";
import { parseLabConfig } from "../../infra/config";
import { type ControlPlane, k8sPluginVersion, startControlPlane } from "../support/control-plane";
import { engineEnv, REPO_ROOT } from "../engine/support";
import { readStackConfig } from "../support/stack-files";

const CHART = path.join(REPO_ROOT, "test", "k8s", "charts", "cilium-shaped");
const STACK = "k8sready";

let cp: ControlPlane | undefined;
let stack: Stack | undefined;
const dirs: string[] = [];
/** What the program builds on the next run. */
const variant = { routingMode: "tunnel", timeoutSeconds: 20 };

function plane(): ControlPlane {
  if (cp === undefined) {
    throw new Error("the control plane did not start (see test.before)");
  }
  return cp;
}

function program(kubeconfig: string) {
  return (): Promise<Record<string, unknown>> => {
    const version = k8sPluginVersion();
    const raw = { ...readStackConfig("vxlan"), ciliumChart: CHART, nodeCount: "2", hubble: "true" };
    const native =
      variant.routingMode === "native"
        ? { routingMode: "native", autoDirectNodeRoutes: "true", nativeRoutingCidr: "10.0.0.0/22" }
        : {};
    const config = parseLabConfig({ ...raw, ...native }).config;
    const provider = new k8s.Provider("k8s", { kubeconfig: pulumi.secret(kubeconfig) }, { version });
    const cilium = new Cilium("cilium", { config, serverIp: "10.0.0.10" }, { provider });
    const ready = new CiliumReady(
      "cilium-ready",
      {
        kubeconfig: pulumi.secret(kubeconfig),
        namespace: "kube-system",
        releaseName: "cilium",
        releaseStatus: cilium.status,
        nodeCount: 2,
        hubble: true,
        timeoutSeconds: variant.timeoutSeconds,
        stack: STACK,
      },
      { dependsOn: [cilium.release] },
    );
    return Promise.resolve({ status: cilium.status, gate: ready.id });
  };
}

test.before(async () => {
  cp = await startControlPlane();
  for (const name of ["node-1", "node-2"]) {
    const res = await cp.request("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { "kubernetes.io/hostname": name } },
    });
    if (res.status !== 201) {
      throw new Error(`creating Node ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }
  const backend = mkdtempSync(path.join(os.tmpdir(), "cilium-lab-ready-backend-"));
  const work = mkdtempSync(path.join(os.tmpdir(), "cilium-lab-ready-inline-"));
  dirs.push(backend, work);
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(work, "node_modules"), "dir");
  const envVars = engineEnv(backend);
  stack = await LocalWorkspace.createOrSelectStack(
    { stackName: STACK, projectName: "k8s-ready", program: program(cp.kubeconfig) },
    {
      workDir: work,
      envVars,
      projectSettings: { name: "k8s-ready", runtime: "nodejs", backend: { url: envVars.PULUMI_BACKEND_URL ?? "" } },
    },
  );
});

test.after.always(async () => {
  await stack?.destroy({ color: "never" }).catch(() => undefined);
  await cp?.stop();
  for (const dir of dirs) {
    rmSync(dir, { recursive: true, force: true });
  }
});

function theStack(): Stack {
  if (stack === undefined) {
    throw new Error("the stack was not created (see test.before)");
  }
  return stack;
}

type Pod = {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
};

/**
 * Acts as the kubelet for the pods `selected` picks: writes phase Running and Ready=True through
 * pods/status, every 500 ms until stopped (new pods appear on rollouts). Conflicts are retried.
 */
function kubelet(selected: (pod: Pod) => boolean): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    const { request } = plane();
    while (running) {
      const pods =
        ((await request("GET", "/api/v1/namespaces/kube-system/pods")).body as { items?: Pod[] }).items ?? [];
      for (const pod of pods.filter(selected)) {
        if (pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
          continue;
        }
        const now = new Date().toISOString();
        const conditions = ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map((type) => ({
          type,
          status: "True",
          lastTransitionTime: now,
        }));
        await request("PUT", `/api/v1/namespaces/kube-system/pods/${pod.metadata.name}/status`, {
          ...pod,
          status: { ...pod.status, phase: "Running", conditions, startTime: now },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

const agentOrOperator = (pod: Pod): boolean =>
  pod.metadata.labels?.["k8s-app"] === "cilium" || pod.metadata.labels?.["io.cilium/app"] === "operator";

async function failedUp(): Promise<{ message: string; seconds: number }> {
  const started = Date.now();
  const error = await theStack()
    .up({ color: "never" })
    .then(
      () => undefined,
      (e: unknown) => e as Error,
    );
  if (error === undefined) {
    throw new Error("up succeeded, but the gate should have failed it");
  }
  return { message: error.message, seconds: (Date.now() - started) / 1000 };
}

/** The gate's line for each Deployment of `names` with its one replica updated but not ready. */
function notReadyDeployments(t: ExecutionContext, message: string, names: readonly string[]): void {
  for (const name of names) {
    t.true(
      message.includes(
        `- Deployment kube-system/${name}: availableReplicas 0 of 1 updated; readyReplicas 0, want at least 1`,
      ),
      message,
    );
  }
}

test.serial(
  "with no pod ready, Helm reports the release deployed but up fails after the 20 s bound, naming the agent DaemonSet, the operator, relay and UI with their counts, Pending pods and why logs are unavailable",
  async (t) => {
    t.timeout(10 * 60_000);
    variant.timeoutSeconds = 20;
    const { message, seconds } = await failedUp();
    // The Release itself succeeded: Helm's wait let it through.
    const helm = (
      (
        await plane().request(
          "GET",
          "/api/v1/namespaces/kube-system/secrets?labelSelector=owner%3Dhelm%2Cname%3Dcilium",
        )
      ).body as { items: { metadata: { labels: Record<string, string> } }[] }
    ).items;
    t.deepEqual(
      helm.map((s) => [s.metadata.labels.version, s.metadata.labels.status]),
      [["1", "deployed"]],
    );
    t.true(message.includes("Cilium was not ready after 20 s"), message);
    t.true(
      message.includes(
        "- DaemonSet kube-system/cilium: numberReady 0, want 2 (one per lab node); numberAvailable 0, want 2 (one per lab node)",
      ),
      message,
    );
    notReadyDeployments(t, message, ["cilium-operator", "hubble-relay", "hubble-ui"]);
    t.regex(message, /pod cilium-operator-[a-z0-9]+-[a-z0-9]+ on no node: phase Pending/);
    t.regex(
      message,
      /logs of cilium-[a-z0-9]+ unavailable: the pod is not on a node yet \(unscheduled; the apiserver answered 204 No Content\)/,
    );
    t.regex(message, /Fix: read the pod status and events above/);
    // Bounded: the 20 s wait plus install and engine start-up, not Helm's 600 s.
    t.true(seconds >= 20 && seconds < 20 + 120, `up took ${seconds} s`);
    t.false(
      message.includes("client-key-data") || message.includes("PRIVATE KEY"),
      "the kubeconfig never appears in an error",
    );
  },
);

test.serial(
  "with every agent and the operator ready but Hubble not, up fails naming only hubble-relay and hubble-ui",
  async (t) => {
    t.timeout(10 * 60_000);
    const stop = kubelet(agentOrOperator);
    try {
      const { message } = await failedUp();
      t.false(message.includes("DaemonSet kube-system/cilium"), message);
      t.false(message.includes("Deployment kube-system/cilium-operator"), message);
      notReadyDeployments(t, message, ["hubble-relay", "hubble-ui"]);
    } finally {
      await stop();
    }
  },
);

test.serial(
  "with every agent, the operator, relay and UI ready, up succeeds; a second preview shows the gate unchanged; a mode switch (Helm revision 2) waits again and succeeds",
  async (t) => {
    t.timeout(10 * 60_000);
    variant.timeoutSeconds = 120;
    const stop = kubelet(() => true);
    try {
      const up = await theStack().up({ color: "never" });
      t.is(up.summary.result, "succeeded");
      t.like(up.outputs.status?.value, { status: "deployed", revision: 1 });
      // The counts the gate accepted are the controllers' own, from the pods' written status.
      const ds = (await plane().request("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium")).body as {
        status: Record<string, number>;
      };
      t.like(ds.status, { desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberReady: 2, numberAvailable: 2 });
      // The kubeconfig (with its client key) is a secret in the gate's inputs and outputs (exportStack
      // shows secrets decrypted, with the secret signature), and no file of the backend holds the key.
      const state = (await theStack().exportStack()).deployment as {
        resources?: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[];
      };
      const gate = (state.resources ?? []).find((r) => r.type === "pulumi-nodejs:dynamic/lab:CiliumReady");
      const secretSig = "4dabf18193072939515e22adb298388d";
      t.deepEqual(
        [
          (gate?.inputs?.kubeconfig as Record<string, unknown> | undefined)?.[secretSig],
          (gate?.outputs?.kubeconfig as Record<string, unknown> | undefined)?.[secretSig],
        ],
        ["1b47061264138c4ac30d75fd1eb44270", "1b47061264138c4ac30d75fd1eb44270"],
      );
      const clientKey = /client-key-data: (\S+)/.exec(plane().kubeconfig)?.[1] ?? "";
      t.true(clientKey.length > 100);
      const files = readdirSync(dirs[0] ?? "", { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name));
      t.true(files.length > 0);
      t.deepEqual(
        files.filter((f) => readFileSync(f).toString("latin1").includes(clientKey)),
        [],
        "no backend file holds the client key",
      );
      const preview = await theStack().preview({ color: "never" });
      t.deepEqual(Object.keys(preview.changeSummary).sort(), ["same"], JSON.stringify(preview.changeSummary));
      variant.routingMode = "native";
      const upgrade = await theStack().up({ color: "never" });
      t.like(upgrade.outputs.status?.value, { status: "deployed", revision: 2 });
      t.is(upgrade.summary.resourceChanges?.update, 2, JSON.stringify(upgrade.summary.resourceChanges));
    } finally {
      await stop();
    }
  },
);

/** Rewrites Helm's storage Secret of `revision` to `status`, as a killed `helm upgrade` leaves it (label and payload). */
async function setHelmStatus(revision: number, status: string): Promise<void> {
  const { request } = plane();
  const name = `sh.helm.release.v1.cilium.v${revision}`;
  const secret = (await request("GET", `/api/v1/namespaces/kube-system/secrets/${name}`)).body as {
    metadata: { labels: Record<string, string> };
    data: { release: string };
  };
  // Helm's secrets driver stores base64(gzip(JSON)) in data.release (helm/helm pkg/storage/driver/util.go encodeRelease).
  const release = JSON.parse(
    gunzipSync(Buffer.from(Buffer.from(secret.data.release, "base64").toString(), "base64")).toString(),
  ) as { info: { status: string } };
  release.info.status = status;
  secret.data.release = Buffer.from(gzipSync(Buffer.from(JSON.stringify(release))).toString("base64")).toString(
    "base64",
  );
  secret.metadata.labels.status = status;
  const res = await request("PUT", `/api/v1/namespaces/kube-system/secrets/${name}`, secret);
  if (res.status !== 200) {
    throw new Error(`updating ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

test.serial(
  "after refresh copies a pending-upgrade release into state, up refuses it naming the release, revision 2, its status and the recover command to roll back to revision 1",
  async (t) => {
    t.timeout(10 * 60_000);
    await setHelmStatus(2, "pending-upgrade");
    await theStack().refresh({ color: "never" });
    const { message } = await failedUp();
    t.true(
      message.includes(
        'Helm release kube-system/cilium is at revision 2 with status "pending-upgrade", not "deployed": an earlier `up` was interrupted (or failed) while Helm worked on it, ' +
          "and Cilium may run a mix of old and new settings. Roll it back to revision 1, the last deployed one: `npm run lab -- recover k8sready`, then run `pulumi up` again.",
      ),
      message,
    );
    // Helm's storage again says deployed: the next up passes the gate's release check.
    await setHelmStatus(2, "deployed");
    await theStack().refresh({ color: "never" });
    const stop = kubelet(() => true);
    try {
      t.is((await theStack().up({ color: "never" })).summary.result, "succeeded");
    } finally {
      await stop();
    }
  },
);
