/**
 * The series' switches on a running lab, the whole program (infra/index.ts) under mocks: a variant
 * changes only the Cilium release's values and the measurement (its run key names new server pods
 * and Jobs, so new pods get the new datapath, and the evidence is collected again), except that
 * `kubeProxyReplacement` also re-runs k3s's installer on every node. Never a VM, a disk, the
 * network, another k3s step, the Kubernetes provider or Cilium's readiness gate. Mocks prove what
 * the program asks the engine for, not what Cilium then runs (the verification's tests do that).
 */
import test from "ava";

import { changedInputs, key, record, type Registration } from "./recorded";

const base = record("vxlan");
const kpr = record("vxlan", "kubeProxyReplacement=true");
const BPF_HOST_ROUTING = ["kubeProxyReplacement=true", "bpfMasquerade=true", "hostRouting=bpf"];
const bpfHostRouting = record("vxlan", ...BPF_HOST_ROUTING);
/** Each switch from a valid configuration to another: BBR needs BPF host routing, which needs BPF masquerading and kube-proxy replacement. */
const variants = {
  "bandwidthManager: on": { from: base, to: record("vxlan", "bandwidthManager=on") },
  "bpfMasquerade: true": { from: kpr, to: record("vxlan", "kubeProxyReplacement=true", "bpfMasquerade=true") },
  "hostRouting: bpf": { from: record("vxlan", "kubeProxyReplacement=true", "bpfMasquerade=true"), to: bpfHostRouting },
  "bandwidthManager: bbr": { from: bpfHostRouting, to: record("vxlan", ...BPF_HOST_ROUTING, "bandwidthManager=bbr") },
  "kubeProxyReplacement: true": { from: base, to: kpr },
};

/** Every run's suffix: per repetition iperf3 host and pod, netperf TCP_RR and TCP_CRR host and pod. */
const RUNS = [1, 2, 3].flatMap((r) => ["", "rr-", "crr-"].flatMap((t) => [`${t}host-${r}`, `${t}pod-${r}`]));

/**
 * What a new run key and a new release digest change in the measurement: the server pods' and
 * Jobs' names and labels (a Job's pod template carries the key too), the wait's and readers'
 * command lines (they name them), and the evidence commands' triggers (the digest).
 */
const MEASUREMENT: Record<string, string[]> = {
  "kubernetes:core/v1:Pod verify-server-host": ["metadata"],
  "kubernetes:core/v1:Pod verify-server-pod": ["metadata"],
  "command:remote:Command verify-servers-ready": ["create"],
  "command:remote:Command verify-cilium-state": ["triggers"],
  ...Object.fromEntries(
    ["node-1", "node-2", "node-3"].map((n) => [`command:remote:Command verify-evidence-${n}`, ["triggers"]]),
  ),
  ...Object.fromEntries(RUNS.map((r) => [`kubernetes:batch/v1:Job verify-job-${r}`, ["metadata", "spec"]])),
  ...Object.fromEntries(RUNS.map((r) => [`command:remote:Command verify-logs-${r}`, ["create"]])),
};

const K3S_INSTALLS: Record<string, string[]> = Object.fromEntries(
  ["node-1", "node-2", "node-3"].map((n) => [`command:remote:Command k3s-install-${n}`, ["create"]]),
);

/** The run key in the server pod's name. */
function runKeyOf(rs: readonly Registration[]): string {
  const pod = rs.find((r) => r.name === "verify-server-pod")?.inputs.metadata as { name: string } | undefined;
  return /^iperf3-server-pod-([0-9a-f]{8})$/.exec(pod?.name ?? "")?.[1] ?? "";
}

/** The top-level Helm values that differ. */
function changedValues(a: readonly Registration[], b: readonly Registration[]): Record<string, unknown> {
  const values = (rs: readonly Registration[]) =>
    (rs.find((r) => r.name === "cilium-release")?.inputs.values ?? {}) as Record<string, unknown>;
  const [va, vb] = [values(a), values(b)];
  return Object.fromEntries(
    [...new Set([...Object.keys(va), ...Object.keys(vb)])]
      .filter((k) => JSON.stringify(va[k]) !== JSON.stringify(vb[k]))
      .map((k) => [k, vb[k]]),
  );
}

for (const [name, { from, to }] of Object.entries(variants)) {
  const k3s = name.startsWith("kubeProxyReplacement");
  test(`switching ${name} changes the Cilium release's values and the measurement${k3s ? ", and re-runs k3s's installer on every node" : ""}: nothing else`, (t) => {
    t.deepEqual(to.map(key).sort(), from.map(key).sort(), "the same resources, by type and name");
    t.deepEqual(changedInputs(from, to), {
      ...(k3s ? K3S_INSTALLS : {}),
      "kubernetes:helm.sh/v3:Release cilium-release": ["values"],
      ...MEASUREMENT,
    });
  });
}

test("each switch renames every server pod and Job with one new run key (so new pods get the new datapath), and sends only its own Helm values", (t) => {
  const keys = new Set([base, ...Object.values(variants).map((v) => v.to)].map(runKeyOf));
  t.is(keys.size, 6, "six configurations, six run keys");
  for (const { to } of Object.values(variants)) {
    const k = runKeyOf(to);
    t.regex(k, /^[0-9a-f]{8}$/);
    const names = to
      .filter((r) => r.type === "kubernetes:batch/v1:Job" || r.type === "kubernetes:core/v1:Pod")
      .map((r) => (r.inputs.metadata as { name: string }).name);
    t.deepEqual(names, [
      `iperf3-server-host-${k}`,
      `iperf3-server-pod-${k}`,
      ...RUNS.map((r) => (/^(rr|crr)-/.test(r) ? `netperf-${r}-${k}` : `iperf3-${r}-${k}`)),
    ]);
  }
  t.deepEqual(Object.keys(changedValues(base, variants["bandwidthManager: on"].to)), ["bandwidthManager"]);
  t.like(changedValues(base, variants["bandwidthManager: on"].to), { bandwidthManager: { enabled: true } });
  t.deepEqual(Object.keys(changedValues(bpfHostRouting, variants["bandwidthManager: bbr"].to)), ["bandwidthManager"]);
  t.like(changedValues(bpfHostRouting, variants["bandwidthManager: bbr"].to), {
    bandwidthManager: { enabled: true, bbr: true },
  });
  t.deepEqual(Object.keys(changedValues(base, kpr)), ["kubeProxyReplacement"]);
  t.deepEqual(Object.keys(changedValues(kpr, variants["bpfMasquerade: true"].to)), ["bpf"]);
  t.like(changedValues(kpr, variants["bpfMasquerade: true"].to), { bpf: { masquerade: true } });
  t.deepEqual(Object.keys(changedValues(variants["hostRouting: bpf"].from, bpfHostRouting)), ["bpf"]);
  t.like(changedValues(kpr, bpfHostRouting), { bpf: { masquerade: true, hostLegacyRouting: false } });
});

test("switching hubble off removes the Hubble flow read and changes the Cilium release, its readiness gate's hubble input and the measurement, nothing else", (t) => {
  const off = record("vxlan", "hubble=false");
  t.deepEqual(
    base.map(key).filter((k) => !off.map(key).includes(k)),
    ["command:remote:Command verify-hubble-flows"],
  );
  t.deepEqual(
    off.map(key).filter((k) => !base.map(key).includes(k)),
    [],
  );
  t.deepEqual(changedInputs(base, off), {
    "kubernetes:helm.sh/v3:Release cilium-release": ["values"],
    "pulumi-nodejs:dynamic/lab:CiliumReady cilium-ready": ["hubble"],
    ...MEASUREMENT,
  });
  t.deepEqual(changedValues(base, off), { hubble: { relay: { enabled: false }, ui: { enabled: false } } });
});
