/**
 * The flow proof's wiring: the `hubble-flows` command line (scripts/node/hubble-flows.sh, on the
 * k3s server, asking the agent on the server pod's node), its output judged by infra/verify/hubble
 * (`hubbleFlowProof`: the measured iperf3 flow went to the overlay in tunnel modes, not in native),
 * the message that fails `pulumi up` when the proof fails, and the exported `datapath` output: the
 * verdict with `flowProof` (or `null` and the reason, with Hubble off).
 */
import type { remote } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import type { DatapathOutput } from "./evidence";
import { hubbleFlowProof, type FlowProof } from "./hubble";
import type { Measurement } from "./measurement";
import { IPERF3_PORT } from "./schedule";

export type { FlowProof } from "./hubble";

/** The flow proof in the `datapath` output: the proof, or `null` and why there is none. */
export interface FlowProofResult {
  readonly flowProof: FlowProof | null;
  /** Why `flowProof` is `null`; `null` when the proof was taken. */
  readonly flowProofReason: string | null;
}

/** The exported `datapath` output: the verdict, its checks and evidence, and the flow proof. */
export type DatapathReport = DatapathOutput & FlowProofResult;

/** The reason of a `null` flow proof. */
export const HUBBLE_OFF_REASON =
  "cilium-lab:hubble is false (no Hubble Relay or UI): the lab takes the flow-level proof only when Hubble is on (the agents' own Hubble server still runs, chart default hubble.enabled), so the verdict rests on the configuration, the agents' status and the node evidence.";

/** The reason of a `null` flow proof when the verdict refused the datapath (no run, so no flow to read). */
export const VERDICT_REFUSED_REASON =
  "the datapath verdict refused the datapath, so nothing was measured and no flow was read.";

/** How long `hubble observe` in the agent pod may take, seconds: `kubectl exec` is slow under TCG. */
export function flowReadSeconds(accelerator: "kvm" | "qemu"): number {
  return accelerator === "qemu" ? 300 : 60;
}

/** Judges the flow read's output; an output the judge cannot read is a failed proof, never a pass. */
export function flowProofFromOutput(
  m: Pick<Measurement, "config" | "server">,
  serverPodIp: string,
  output: string,
): FlowProofResult {
  try {
    const proof = hubbleFlowProof({
      routingMode: m.config.routingMode,
      ciliumVersion: m.config.ciliumVersion,
      serverPodIp,
      port: IPERF3_PORT,
      output,
      node: m.server.name,
    });
    return { flowProof: proof, flowProofReason: null };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const proof: FlowProof = {
      ok: false,
      observationPoints: [],
      flows: 0,
      checks: [
        {
          scope: `${m.server.name} hubble`,
          check: "hubble observe output",
          expected: "flows the judge can read",
          actual: message,
          ok: false,
        },
      ],
      summary: `The flows of the measured connection could not be judged: ${message}`,
    };
    return { flowProof: proof, flowProofReason: null };
  }
}

/** The flow proof of a Verification: judged from `flows`' stdout, or `null` with the reason when Hubble is off. */
export function flowProofOf(
  m: Pick<Measurement, "config" | "server">,
  flows: remote.Command | null,
  serverPodIp: pulumi.Output<string>,
): pulumi.Output<FlowProofResult> {
  if (flows === null) {
    return pulumi.output({ flowProof: null, flowProofReason: HUBBLE_OFF_REASON });
  }
  return pulumi.all([serverPodIp, flows.stdout]).apply(([ip, text]) => flowProofFromOutput(m, ip, text));
}

/** The error message of `pulumi up` when the flow proof fails: what the flows show, every failed check, the fix. */
export function flowProofFailureMessage(p: FlowProof): string {
  return [
    `Flow proof failed: ${p.summary} No throughput or latency is exported.`,
    "Failed checks:",
    ...p.checks.filter((c) => !c.ok).map((c) => `- ${c.scope}: ${c.check}: expected ${c.expected}, found ${c.actual}`),
    `Observation points seen: ${p.observationPoints.length === 0 ? "none" : p.observationPoints.join(", ")} (${p.flows} flows).`,
    "What to do: read the flows yourself on the k3s server (`sudo k3s kubectl -n kube-system exec <cilium pod on the server node> -c cilium-agent -- hubble observe --ip <server pod IP> --port 5201 --last 100`); " +
      "if they show the other datapath, restart the agents (`sudo k3s kubectl -n kube-system rollout restart ds/cilium`) and run `pulumi up --refresh`.",
  ].join("\n");
}
