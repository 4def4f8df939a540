/**
 * Refusals under mocks: nodes running VXLAN (tunnel device, 1450 pod routes, no direct routes)
 * while native routing was requested, an unreadable collector, an agent that does not run a
 * requested feature, and Hubble flows of the other datapath. The program must fail with the verdict
 * (or the flow proof) and the evidence, create no Job after the refusal, and never produce
 * throughput or latency. Runs each scenario in a child process (refused-scenario.ts), because the
 * failure is an unhandled error by design: that is how a Pulumi program fails `pulumi up`.
 */
import test, { type ExecutionContext } from "ava";
import * as path from "node:path";

import { VERDICT_REFUSED_REASON } from "../../infra/verify/flow-proof";
import { run } from "./support";

interface Outcome {
  readonly registered: string[];
  readonly errors: string[];
  readonly throughput: boolean;
  readonly latency: boolean;
  /** The exported datapath's `flowProofReason` (absent: it never resolved). */
  readonly flowProofReason?: string | null;
  readonly datapath: { verdict: string; requested: string; observed: string } | null;
  readonly fatal?: string;
}

async function scenario(name: "wrong-mode" | "unreadable" | "feature-off" | "flows-native"): Promise<Outcome> {
  const r = await run(process.execPath, ["--import=tsx", path.join(__dirname, "refused-scenario.ts"), name], {
    timeoutMs: 90_000,
  });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as Outcome;
  } catch {
    throw new Error(`refused-scenario.ts ${name} printed no result (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

/** What is registered before the verdict: namespace, servers, their wait and the evidence commands. */
const BEFORE_VERDICT = [
  "command:remote:Command verify-cilium-state",
  "command:remote:Command verify-evidence-node-1",
  "command:remote:Command verify-evidence-node-2",
  "command:remote:Command verify-evidence-node-3",
  "command:remote:Command verify-servers-ready",
  "kubernetes:core/v1:Namespace verify-namespace",
  "kubernetes:core/v1:Pod verify-server-host",
  "kubernetes:core/v1:Pod verify-server-pod",
  "lab:verify:Verification verify",
];

/**
 * Runs scenario `name` and checks a refusal by the verdict: the datapath output refused with
 * `requested` and `observed`, no number, nothing registered after the verdict, exactly one error,
 * whose lines begin with `first` when given; returns the error's lines.
 */
async function refusedByVerdict(
  t: ExecutionContext,
  name: Parameters<typeof scenario>[0],
  { requested, observed }: { readonly requested: string; readonly observed: string },
  first?: readonly string[],
): Promise<string[]> {
  const out = await scenario(name);
  t.is(out.fatal, undefined, out.fatal);
  t.deepEqual(out.datapath, { verdict: "refused", requested, observed });
  t.false(out.throughput);
  t.false(out.latency);
  t.deepEqual(
    out.registered.filter((x) => !x.startsWith("lab:test:") && !x.startsWith("pulumi:providers:")).sort(),
    BEFORE_VERDICT,
  );
  t.is(out.errors.length, 1, out.errors.join("\n---\n"));
  t.is(out.flowProofReason, VERDICT_REFUSED_REASON, "the exported datapath resolves, without a flow proof");
  const lines = (out.errors[0] ?? "").split("\n");
  if (first !== undefined) {
    t.deepEqual(lines.slice(0, first.length), first);
  }
  return lines;
}

test("tunnel evidence under a native request fails the program with the evidence, registers no Job, and exports no throughput", async (t) => {
  const lines = await refusedByVerdict(t, "wrong-mode", { requested: "native", observed: "vxlan" });
  t.is(
    lines[0],
    "ResourceError(hideStack=true): Datapath verification failed: requested native routing, observed vxlan tunnel (cilium-config: native routing; agents: unknown; nodes: vxlan tunnel). No throughput or latency is measured or exported.",
  );
  t.deepEqual(lines.slice(1, 5), [
    "Failed checks:",
    "- node-1: tunnel device: expected none, found cilium_vxlan (vxlan, mtu 1500, port 8472)",
    "- node-1 pod cni-node-1-0000: route MTU: expected no mtu below the NIC's 1500, found default via 10.0.0.193 dev eth0 mtu 1450",
    "- node-1: direct route to node-2's pod CIDR 10.0.1.0/24: expected 10.0.1.0/24 via 192.168.150.12 dev eth0, found 10.0.1.0/24 via 10.0.0.193 dev cilium_host mtu 1450",
  ]);
  t.true(lines.includes("Evidence:"));
});

test("a collector output that cannot be read refuses the datapath the same way: one error naming it, no Job, no throughput", async (t) => {
  await refusedByVerdict(t, "unreadable", { requested: "vxlan", observed: "unknown" }, [
    "ResourceError(hideStack=true): Datapath verification failed: requested vxlan tunnel, observed unknown (cilium-config: unknown; agents: unknown; nodes: unknown). No throughput or latency is measured or exported.",
    "Failed checks:",
    "- evidence: evidence from node-3 (scripts/node/collect-evidence.sh): not a JSON document (35 characters); output ends with: bash: line 1: ip: command not found",
  ]);
});

test("an agent that does not run a requested feature (bandwidthManager: on, BandwidthManager: Disabled) refuses the datapath with both sides: no Job, no throughput, no latency", async (t) => {
  const lines = await refusedByVerdict(t, "feature-off", { requested: "vxlan", observed: "vxlan" }, [
    "ResourceError(hideStack=true): Datapath verification failed: requested vxlan tunnel, observed vxlan tunnel (cilium-config: vxlan tunnel; agents: unknown; nodes: vxlan tunnel). No throughput or latency is measured or exported.",
    "The agents contradict the config's prediction on BandwidthManager (expected: what the config asks for; found: what the agent says runs).",
    "Failed checks:",
    '- node-1: feature BandwidthManager: expected edt (asked), found disabled (cilium status: BandwidthManager: "Disabled")',
    '- node-2: feature BandwidthManager: expected edt (asked), found disabled (cilium status: BandwidthManager: "Disabled")',
    '- node-3: feature BandwidthManager: expected edt (asked), found disabled (cilium status: BandwidthManager: "Disabled")',
  ]);
  t.true(
    lines.includes(
      "- cilium-config (chart 1.13.4): enable-bandwidth-manager=true enable-bbr=false kube-proxy-replacement=disabled tunnel=vxlan",
    ),
  );
});

test("Hubble flows that never reach the overlay under a confirmed vxlan verdict fail the program with the flow proof: the runs after the flow read are never created, no throughput, no latency", async (t) => {
  const out = await scenario("flows-native");
  t.is(out.fatal, undefined, out.fatal);
  t.deepEqual(out.datapath, { verdict: "confirmed", requested: "vxlan", observed: "vxlan" });
  t.false(out.throughput);
  t.false(out.latency);
  const jobs = out.registered
    .filter((x) => x.startsWith("kubernetes:batch/v1:Job "))
    .map((x) => x.replace("kubernetes:batch/v1:Job verify-job-", ""));
  // Runs 1 and 2 whole, run 3's iperf3; none of run 3's netperf runs, which come after the flow read.
  t.deepEqual(jobs.sort(), [
    ...["crr-host-1", "crr-host-2", "crr-pod-1", "crr-pod-2"],
    ...["host-1", "host-2", "host-3", "pod-1", "pod-2", "pod-3"],
    ...["rr-host-1", "rr-host-2", "rr-pod-1", "rr-pod-2"],
  ]);
  t.true(out.registered.includes("command:remote:Command verify-hubble-flows"));
  t.is(out.flowProofReason, null, "the proof was taken (and failed)");
  t.is(out.errors.length, 1, out.errors.join("\n---\n"));
  t.deepEqual((out.errors[0] ?? "").split("\n"), [
    "ResourceError(hideStack=true): Flow proof failed: Hubble in the Cilium 1.13.4 agent on node-2 saw 8 flows of TCP 10.0.1.77:5201 (TO_ENDPOINT 4, TO_STACK 4), none at TO_OVERLAY: the replies did not leave through the vxlan tunnel that was asked for. No throughput or latency is exported.",
    "Failed checks:",
    "- node-2 hubble: flows through the overlay: expected ≥ 1 at TO_OVERLAY (the server's replies leave through cilium_vxlan), found 0 (TO_ENDPOINT 4, TO_STACK 4)",
    "Observation points seen: TO_ENDPOINT, TO_STACK (8 flows).",
    "What to do: read the flows yourself on the k3s server (`sudo k3s kubectl -n kube-system exec <cilium pod on the server node> -c cilium-agent -- hubble observe --ip <server pod IP> --port 5201 --last 100`); if they show the other datapath, restart the agents (`sudo k3s kubectl -n kube-system rollout restart ds/cilium`) and run `pulumi up --refresh`.",
  ]);
});
