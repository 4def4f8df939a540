/**
 * A refused datapath under mocks: nodes running VXLAN (tunnel device, 1450 pod routes, no direct
 * routes) while native routing was requested. The program must fail with the verdict and the
 * evidence, create no Job and no log reader, and never produce throughput. Runs the scenario in a
 * child process (refused-scenario.ts), because the failure is an unhandled error by design: that
 * is how a Pulumi program fails `pulumi up`.
 */
import test from "ava";
import * as path from "node:path";

import { run } from "./support";

interface Outcome {
  readonly registered: string[];
  readonly errors: string[];
  readonly throughput: boolean;
  readonly datapath: { verdict: string; requested: string; observed: string } | null;
  readonly fatal?: string;
}

async function scenario(name: "wrong-mode" | "unreadable"): Promise<Outcome> {
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

test("tunnel evidence under a native request fails the program with the evidence, registers no Job, and exports no throughput", async (t) => {
  const out = await scenario("wrong-mode");
  t.is(out.fatal, undefined, out.fatal);
  t.deepEqual(out.datapath, { verdict: "refused", requested: "native", observed: "vxlan" });
  t.false(out.throughput);
  const mine = out.registered.filter((x) => !x.startsWith("lab:test:") && !x.startsWith("pulumi:providers:"));
  t.deepEqual(mine.sort(), BEFORE_VERDICT);
  t.is(out.errors.length, 1, out.errors.join("\n---\n"));
  const [error] = out.errors;
  const lines = (error ?? "").split("\n");
  t.is(
    lines[0],
    "ResourceError(hideStack=true): Datapath verification failed: requested native routing, observed vxlan tunnel (cilium-config: native routing; agents: unknown; nodes: vxlan tunnel). No throughput is measured or exported.",
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
  const out = await scenario("unreadable");
  t.is(out.fatal, undefined, out.fatal);
  t.deepEqual(out.datapath, { verdict: "refused", requested: "vxlan", observed: "unknown" });
  t.false(out.throughput);
  t.deepEqual(
    out.registered.filter((x) => !x.startsWith("lab:test:") && !x.startsWith("pulumi:providers:")).sort(),
    BEFORE_VERDICT,
  );
  t.is(out.errors.length, 1, out.errors.join("\n---\n"));
  t.deepEqual((out.errors[0] ?? "").split("\n").slice(0, 3), [
    "ResourceError(hideStack=true): Datapath verification failed: requested vxlan tunnel, observed unknown (cilium-config: unknown; agents: unknown; nodes: unknown). No throughput is measured or exported.",
    "Failed checks:",
    "- evidence: evidence from node-3 (scripts/node/collect-evidence.sh): not a JSON document (35 characters); output ends with: bash: line 1: ip: command not found",
  ]);
});
