// test-needs: k8s-toolchain (a real kube-apiserver)
/**
 * The Verification's Kubernetes objects under a cluster-wide Pod Security default of
 * `enforce: restricted` (test/support/control-plane.ts `podSecurity`), on a real kube-apiserver
 * v1.33.13 with its PodSecurity admission plugin. The objects are the ones infra/verify/jobs.ts
 * builds for the program; no pod runs (no scheduler or kubelet), admission is what is tested.
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/psa.engine.test.ts`.
 */
import test from "ava";

import {
  clientJobArgs,
  iperf3Settings,
  namespaceArgs,
  NAMESPACE,
  runSchedule,
  serverPodArgs,
} from "../../infra/verify/jobs";
import { IPERF3_IMAGE } from "../../infra/versions";
import { waitFor } from "../support/control-plane";
import { controlPlaneForFile, createNamespace } from "./support/plane";

const plane = controlPlaneForFile({ podSecurity: "restricted" });

const settings = iperf3Settings({
  iperf3Image: IPERF3_IMAGE,
  iperf3Seconds: 10,
  iperf3OmitSeconds: 1,
  iperf3Streams: 1,
  iperf3Runs: 1,
});
const hostServer = (namespace: string) => {
  const args = serverPodArgs({ path: "host", node: "node-2", image: settings.image, key: "k1" }) as {
    metadata: Record<string, unknown>;
    spec: unknown;
  };
  return { apiVersion: "v1", kind: "Pod", metadata: { ...args.metadata, namespace }, spec: args.spec };
};

test.serial(
  "with a cluster-wide restricted default, a hostNetwork iperf3 server pod is refused in a namespace without a Pod Security label",
  async (t) => {
    const { request } = plane();
    t.is(await createNamespace(plane(), "psa-control"), 201);
    const res = await request("POST", "/api/v1/namespaces/psa-control/pods", hostServer("psa-control"));
    t.is(res.status, 403, JSON.stringify(res.body));
    t.regex(
      (res.body as { message: string }).message,
      /violates PodSecurity "restricted:latest": host namespaces \(hostNetwork=true\)/,
    );
  },
);

test.serial(
  "with a cluster-wide restricted default, the Verification's privileged namespace admits its hostNetwork and pod-network server pods, and its host client Job's pod is created",
  async (t) => {
    const { request, logTail } = plane();
    t.is(
      (await request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", ...namespaceArgs() })).status,
      201,
    );
    for (const path of ["host", "pod"] as const) {
      const args = serverPodArgs({ path, node: "node-2", image: settings.image, key: "k1" });
      const res = await request("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
        apiVersion: "v1",
        kind: "Pod",
        ...args,
      });
      t.is(res.status, 201, `${path} server: ${JSON.stringify(res.body)}`);
    }
    const step = runSchedule(1, "k1")[0];
    if (step === undefined) {
      throw new Error("runSchedule(1) gave no step");
    }
    t.is(step.path, "host");
    const job = clientJobArgs({
      step,
      node: "node-3",
      target: "10.0.0.11",
      settings,
      key: "k1",
      activeDeadlineSeconds: 60,
    });
    const created = await request("POST", `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, {
      apiVersion: "batch/v1",
      kind: "Job",
      ...job,
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    // The Job controller creates the pod through the same admission: it exists (Pending, no node runs it).
    const pods = await waitFor(
      `the Job ${step.job}'s pod`,
      60_000,
      async () => {
        const list = (
          await request(
            "GET",
            `/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=${encodeURIComponent(`job-name=${step.job}`)}`,
          )
        ).body as { items?: { spec: { hostNetwork?: boolean } }[] };
        return (list.items ?? []).length > 0 ? list.items : undefined;
      },
      async () =>
        `events: ${JSON.stringify((await request("GET", `/api/v1/namespaces/${NAMESPACE}/events`)).body)}\nkube-controller-manager log:\n${logTail("kube-controller-manager")}`,
    );
    t.deepEqual(
      pods.map((p) => p.spec.hostNetwork),
      [true],
    );
  },
);
