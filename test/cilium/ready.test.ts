/**
 * The pure parts of the Cilium readiness gate (infra/cilium/ready-check.ts): when the agents, the
 * operator and Hubble count as ready, the release refusal, the bound per accelerator and the message
 * lines. The gate against a real apiserver is test/k8s/ready.engine.test.ts.
 */
import test from "ava";

import {
  daemonSetProblems,
  deploymentProblems,
  describePod,
  lastEvents,
  readyTimeoutSeconds,
  releaseCheck,
  releaseRefusal,
  timeoutMessage,
  watchedObjects,
  type DaemonSetLike,
  type DeploymentLike,
} from "../../infra/cilium/ready-check";

test("the bound is 600 s under kvm and 1800 s under qemu (TCG)", (t) => {
  t.deepEqual([readyTimeoutSeconds("kvm"), readyTimeoutSeconds("qemu")], [600, 1800]);
});

const ds = (generation: number, status: NonNullable<DaemonSetLike["status"]>): DaemonSetLike => ({
  metadata: { name: "cilium", generation },
  status,
});
const full = {
  observedGeneration: 2,
  desiredNumberScheduled: 3,
  updatedNumberScheduled: 3,
  numberReady: 3,
  numberAvailable: 3,
};

for (const [title, input, nodes, expected] of [
  ["every node runs an updated, Ready, available agent", ds(2, full), 3, []],
  [
    "the controller has not seen the new spec yet",
    ds(3, full),
    3,
    ["observedGeneration 2 < generation 3 (the controller has not seen the current spec)"],
  ],
  [
    "Helm's count: 1 of 3 agents ready (desired − maxUnavailable 2)",
    ds(2, { ...full, numberReady: 1, numberAvailable: 1 }),
    3,
    ["numberReady 1, want 3 (one per lab node)", "numberAvailable 1, want 3 (one per lab node)"],
  ],
  [
    "a rollout with one old agent left",
    ds(2, { ...full, updatedNumberScheduled: 2 }),
    3,
    ["updatedNumberScheduled 2, want 3 (one per lab node)"],
  ],
  [
    "a node the DaemonSet does not schedule on",
    ds(2, { ...full, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberReady: 2, numberAvailable: 2 }),
    3,
    [
      "desiredNumberScheduled 2, want 3 (one per lab node)",
      "updatedNumberScheduled 2, want 3 (one per lab node)",
      "numberReady 2, want 3 (one per lab node)",
      "numberAvailable 2, want 3 (one per lab node)",
    ],
  ],
  [
    "a fresh DaemonSet with zero fields omitted by the apiserver",
    ds(1, { observedGeneration: 1, desiredNumberScheduled: 2 }),
    2,
    [
      "updatedNumberScheduled 0, want 2 (one per lab node)",
      "numberReady 0, want 2 (one per lab node)",
      "numberAvailable 0, want 2 (one per lab node)",
    ],
  ],
] as const) {
  test(`agent DaemonSet: ${title}`, (t) => {
    t.deepEqual(daemonSetProblems(input, nodes), [...expected]);
  });
}

const dep = (generation: number, replicas: number, status: NonNullable<DeploymentLike["status"]>): DeploymentLike => ({
  metadata: { generation },
  spec: { replicas },
  status,
});

for (const [title, input, expected] of [
  [
    "rolled out with its one replica ready",
    dep(1, 1, { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }),
    [],
  ],
  [
    "Helm's count: 0 ready of 1 with maxUnavailable 1",
    dep(1, 1, {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      unavailableReplicas: 1,
    } as DeploymentLike["status"] & object),
    ["availableReplicas 0 of 1 updated", "readyReplicas 0, want at least 1"],
  ],
  [
    "an old replica still running beside the new one",
    dep(2, 1, { observedGeneration: 2, replicas: 2, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2 }),
    ["1 old replica(s) still present"],
  ],
  [
    "the controller has not seen the new spec",
    dep(3, 1, { observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }),
    ["observedGeneration 2 < generation 3 (the controller has not seen the current spec)"],
  ],
  [
    "no status at all yet",
    { metadata: { generation: 1 }, spec: { replicas: 1 } },
    [
      "observedGeneration 0 < generation 1 (the controller has not seen the current spec)",
      "updatedReplicas 0, want 1",
      "readyReplicas 0, want at least 1",
    ],
  ],
] as const) {
  test(`Deployment: ${title}`, (t) => {
    t.deepEqual(deploymentProblems(input), [...expected]);
  });
}

test("the gate watches the agents and the operator, and relay and UI only with hubble", (t) => {
  t.deepEqual(watchedObjects(false), [
    { kind: "DaemonSet", name: "cilium" },
    { kind: "Deployment", name: "cilium-operator" },
  ]);
  t.deepEqual(
    watchedObjects(true).map((o) => o.name),
    ["cilium", "cilium-operator", "hubble-relay", "hubble-ui"],
  );
});

const release = (status: string, revision: number) => ({ namespace: "kube-system", name: "cilium", status, revision });

/** Helm's stored revisions from `first` on, one per status. */
const stored = (first: number, ...statuses: string[]) => statuses.map((status, i) => ({ revision: first + i, status }));

/** The gate's refusal of the release at `revision` with `status`, rolling back to `target`. */
const refused = (revision: number, status: string, target: string): string =>
  `Helm release kube-system/cilium is at revision ${revision} with status "${status}", not "deployed": an earlier \`up\` was interrupted (or failed) while Helm worked on it, ` +
  `and Cilium may run a mix of old and new settings. Roll it back to ${target}: \`npm run lab -- recover lab\`, then run \`pulumi up\` again.`;

for (const [title, input, revisions, expected] of [
  ["a deployed release passes", release("deployed", 3), [{ revision: 3, status: "deployed" }], undefined],
  [
    "pending-upgrade after a killed up names revision, status and the revision to roll back to",
    release("pending-upgrade", 3),
    stored(1, "superseded", "deployed", "pending-upgrade"),
    refused(3, "pending-upgrade", "revision 2, the last deployed one"),
  ],
  [
    "a failed upgrade after a failed one rolls back past both",
    release("failed", 4),
    stored(2, "superseded", "failed", "failed"),
    refused(4, "failed", "revision 2, the last deployed one"),
  ],
  [
    "a first install that never completed has nothing to roll back to",
    release("pending-install", 1),
    [{ revision: 1, status: "pending-install" }],
    refused(1, "pending-install", "the last deployed revision (none is stored: the first install never completed)"),
  ],
] as const) {
  test(`release check: ${title}`, (t) => {
    t.is(releaseRefusal(input, revisions, "lab"), expected);
  });
}

test("a pod line shows node, phase, conditions with reasons and each container's waiting reason", (t) => {
  t.is(
    describePod({
      metadata: { name: "cilium-abcde" },
      spec: { nodeName: "node-2" },
      status: {
        phase: "Pending",
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "ContainersNotReady",
            message: "containers with unready status: [cilium-agent]",
          },
        ],
        containerStatuses: [
          {
            name: "cilium-agent",
            ready: false,
            state: {
              waiting: {
                reason: "ImagePullBackOff",
                message: 'Back-off pulling image "quay.io/cilium/cilium:v1.13.4"',
              },
            },
          },
        ],
      },
    }),
    'pod cilium-abcde on node-2: phase Pending; conditions: Ready=False (ContainersNotReady: containers with unready status: [cilium-agent]); containers: cilium-agent waiting ImagePullBackOff: Back-off pulling image "quay.io/cilium/cilium:v1.13.4"',
  );
  t.is(
    describePod({ metadata: { name: "p" }, status: { phase: "Pending" } }),
    "pod p on no node: phase Pending; conditions: none; containers: no status yet",
  );
});

test("the last events are the newest n, oldest first, with repeat counts", (t) => {
  const e = (at: string, reason: string, count?: number) => ({
    lastTimestamp: at,
    type: "Warning",
    reason,
    message: reason.toLowerCase(),
    count,
    involvedObject: { kind: "Pod", name: "p" },
  });
  t.deepEqual(
    lastEvents([e("2026-01-01T00:00:03Z", "C"), e("2026-01-01T00:00:01Z", "A"), e("2026-01-01T00:00:02Z", "B", 4)], 2),
    ["2026-01-01T00:00:02Z Warning B Pod/p: b (×4)", "2026-01-01T00:00:03Z Warning C Pod/p: c"],
  );
});

test("the timeout message lists each object with its problems, pods, events and logs, then the fix", (t) => {
  t.is(
    timeoutMessage("kube-system", 600, [
      {
        kind: "Deployment",
        name: "cilium-operator",
        problems: ["readyReplicas 0, want at least 1"],
        pods: ["pod o on no node: phase Pending; conditions: none; containers: no status yet"],
        events: [],
        logs: ["logs of o unavailable: pod o does not have a host assigned"],
      },
    ]),
    "Cilium was not ready after 600 s (Helm reported the release deployed, but Helm's wait lets Deployments and DaemonSets through with maxUnavailable pods missing):\n" +
      "- Deployment kube-system/cilium-operator: readyReplicas 0, want at least 1\n" +
      "    pod o on no node: phase Pending; conditions: none; containers: no status yet\n" +
      "    no events\n" +
      "    logs of o unavailable: pod o does not have a host assigned\n" +
      "Fix: read the pod status and events above (an image that cannot be pulled, a node that is NotReady, an agent that crashes: `kubectl -n kube-system logs ds/cilium`), " +
      "fix the cause, and run `pulumi up` again: it waits again. Under accelerator qemu (TCG) a slow first start can exceed the bound; run `pulumi up` again to keep waiting.",
  );
});

for (const [title, state, revisions, expected] of [
  [
    "state and Helm agree on a deployed revision",
    release("deployed", 2),
    stored(1, "superseded", "deployed"),
    undefined,
  ],
  [
    "state says deployed, but Helm stores a newer stuck revision: that one is refused",
    release("deployed", 2),
    stored(2, "deployed", "pending-upgrade"),
    refused(3, "pending-upgrade", "revision 2, the last deployed one"),
  ],
  [
    "state still holds the stuck revision after a rollback outside up: refresh, not another rollback",
    release("pending-upgrade", 3),
    stored(2, "superseded", "pending-upgrade", "deployed"),
    'Helm release kube-system/cilium is deployed at revision 4 in the cluster, but this stack\'s state still holds revision 3 with status "pending-upgrade" ' +
      "(Helm was rolled back or upgraded outside `up`): run `npm run lab -- refresh lab`, then `pulumi up` again.",
  ],
] as const) {
  test(`release check against Helm's storage: ${title}`, (t) => {
    t.is(releaseCheck(state, revisions, "lab"), expected);
  });
}
