/**
 * The article's `helm upgrade --set tunnel=disabled …`, as `pulumi config set routingMode native`:
 * the whole program (infra/index.ts) under mocks, once with the vxlan stack file and once with the
 * same stack switched to native routing. Mocks prove what the program asks the engine for; they do
 * not prove Cilium accepts it (the values tables check keys against the charts).
 */
import test from "ava";

import { changedInputs, key, record, type Registration } from "./recorded";

const vxlan = record("vxlan");
const native = record("vxlan", "routingMode=native", "autoDirectNodeRoutes=true", "nativeRoutingCidr=10.0.0.0/22");

test("the program registers the same 85 resources, by type and name, in vxlan and native mode", (t) => {
  // the nodes layer's stack pool and base volume on its one libvirt host among them,
  // three of them the upstream probes of the nodes (k3s-probe-node-N, online mode), one the Cilium readiness gate,
  // 12 netperf Jobs and their 12 readers (TCP_RR and TCP_CRR, host and pod, 3 runs), one the Hubble flow read.
  t.is(vxlan.length, 85);
  t.deepEqual(native.map(key).sort(), vxlan.map(key).sort());
  t.is(new Set(vxlan.map(key)).size, vxlan.length, "logical names are unique");
});

test("switching vxlan to native changes only the Cilium release's values and the verification's triggers and run names", (t) => {
  const changed = changedInputs(vxlan, native);
  t.deepEqual(changed["kubernetes:helm.sh/v3:Release cilium-release"], ["values"]);
  const others = Object.keys(changed).filter((k) => k !== "kubernetes:helm.sh/v3:Release cilium-release");
  // Everything else that changes belongs to the verification layer (its run key names the server
  // pods and Jobs, and its commands re-run), never a VM, a disk, the network or a k3s step.
  t.deepEqual(
    others.filter((k) => !/ verify-/.test(k)),
    [],
  );
  t.true(others.length > 0, "the verification must re-run after a mode switch");
});

test("the Helm release sends VXLAN's and native routing's keys as the article's flags on Cilium 1.13.4", (t) => {
  const values = (rs: readonly Registration[]) =>
    rs.find((r) => r.type === "kubernetes:helm.sh/v3:Release")?.inputs.values as Record<string, unknown> | undefined;
  t.like(values(vxlan), { tunnel: "vxlan" });
  t.false("autoDirectNodeRoutes" in (values(vxlan) ?? {}));
  t.false("ipv4NativeRoutingCIDR" in (values(vxlan) ?? {}));
  t.like(values(native), { tunnel: "disabled", autoDirectNodeRoutes: true, ipv4NativeRoutingCIDR: "10.0.0.0/22" });
});

test("after the release the program waits for Cilium on every node: the readiness gate gets the release's status and revision, 3 nodes, hubble, and 600 s under kvm (1800 s under qemu, without hubble when it is off)", (t) => {
  const gate = (rs: readonly Registration[]) => rs.find((r) => r.name === "cilium-ready");
  const unknown = { __pulumiUnknown: true };
  const expected = {
    type: "pulumi-nodejs:dynamic/lab:CiliumReady",
    name: "cilium-ready",
    inputs: {
      hubble: true,
      kubeconfig: unknown,
      namespace: "kube-system",
      nodeCount: 3,
      releaseName: "cilium",
      releaseRevision: unknown,
      releaseStatus: unknown,
      stack: "vxlan",
      timeoutSeconds: 600,
    },
  };
  t.deepEqual(gate(vxlan), expected);
  t.deepEqual(
    gate(native),
    expected,
    "a mode switch reaches the gate through the release's new revision, not its own inputs",
  );
  t.deepEqual(gate(record("vxlan", "accelerator=qemu", "hubble=false")), {
    ...expected,
    inputs: { ...expected.inputs, hubble: false, timeoutSeconds: 1800 },
  });
});
