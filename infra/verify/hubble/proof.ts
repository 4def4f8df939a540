/**
 * The flow-level proof: what the Cilium agent on the iperf3 server's node saw of the measured
 * connection, from its own Hubble ring buffer (scripts/node/hubble-flows.sh), judged against the
 * routing mode. Pure: no I/O, no Pulumi.
 *
 * Why these observation points (cilium/cilium bpf/):
 * - tunnel mode: the server pod's replies are encapsulated by its endpoint program and traced
 *   TRACE_TO_OVERLAY (Hubble's TO_OVERLAY) before they leave through cilium_vxlan/cilium_geneve; the
 *   client's packets arrive FROM_OVERLAY and are delivered TO_ENDPOINT.
 * - native routing: no packet of the connection touches a tunnel device; replies go TO_STACK
 *   (legacy host routing) or straight to the NIC (BPF host routing), requests arrive FROM_NETWORK.
 * - the chart's default `bpf.monitorAggregation: medium` (install/kubernetes/cilium/values.yaml)
 *   makes `emit_trace_notify()` (bpf/lib/trace.h) drop every TRACE_FROM_* event and report TRACE_TO_*
 *   ones only when the connection's TCP flags change (SYN, FIN …) or every `bpf.monitorInterval`
 *   (5s), so a 10-second stream leaves a handful of flows, and FROM_OVERLAY is usually not among
 *   them: the tunnel proof rests on TO_OVERLAY.
 * - the agent keeps `hubble.eventBufferCapacity` events ("4095" in the chart's values.yaml), all
 *   traffic of the node together: read soon after the measurement, or they are gone.
 */
import type { RoutingMode } from "../../config";
import type { Check } from "../evidence";
import { parseHubbleFlows, type HubbleFlow } from "./flows";

/** What the judge needs: the measured connection and the script's stdout. */
export interface FlowProofInput {
  readonly routingMode: RoutingMode;
  readonly ciliumVersion: string;
  /** The iperf3 server pod's IP (on the node whose agent was asked). */
  readonly serverPodIp: string;
  /** The iperf3 client pod's IP: when set, only flows between the two pods count. */
  readonly clientPodIp?: string;
  /** The iperf3 port (5201). */
  readonly port: number;
  /** stdout of scripts/node/hubble-flows.sh. */
  readonly output: string;
  /** The node whose agent was asked: the checks' scope (`<node> hubble`; `hubble` without it). */
  readonly node?: string;
}

/** The flow-level proof, one part of the datapath verdict. */
export interface FlowProof {
  readonly ok: boolean;
  /** The observation points of the measured connection's flows, sorted, each once. */
  readonly observationPoints: string[];
  /** How many flows of the measured connection the agent reported. */
  readonly flows: number;
  readonly checks: Check[];
  /** One sentence: what was seen and what it proves, or why nothing could be proven and the fix. */
  readonly summary: string;
}

/** The overlay's observation points (api/v1/flow/flow.proto TraceObservationPoint 4 and 9). */
export const OVERLAY_POINTS: readonly string[] = ["TO_OVERLAY", "FROM_OVERLAY"];

/** Why an empty answer can happen, and what to do: part of every "no flows" result. */
export const NO_FLOWS_REASON =
  "the agent's Hubble ring buffer (hubble-event-buffer-capacity, 4095 events by default) was overwritten " +
  "by other traffic before the query, or Hubble is disabled in the agents (Helm hubble.enabled=false), " +
  "or the query ran before the iperf3 connection";

/** The fix for an empty answer. */
export const NO_FLOWS_FIX =
  "keep Hubble enabled (hubble.enabled=true, the chart's default) and run `pulumi up` again: the " +
  "measurement runs anew and the flows are read right after it";

/** Whether `f` belongs to the measured connection. */
export function isMeasuredFlow(f: HubbleFlow, serverPodIp: string, port: number, clientPodIp?: string): boolean {
  if (f.protocol !== "TCP") {
    return false;
  }
  const toServer = f.destination === serverPodIp && f.destinationPort === port;
  const fromServer = f.source === serverPodIp && f.sourcePort === port;
  if (!toServer && !fromServer) {
    return false;
  }
  if (clientPodIp === undefined) {
    return true;
  }
  return toServer ? f.source === clientPodIp : f.destination === clientPodIp;
}

/** `TO_ENDPOINT 3, TO_OVERLAY 2`: each point with its count, sorted by name. */
export function countPoints(flows: readonly HubbleFlow[]): string {
  const counts = new Map<string, number>();
  for (const f of flows) {
    counts.set(f.observationPoint, (counts.get(f.observationPoint) ?? 0) + 1);
  }
  return [...counts.keys()]
    .sort()
    .map((p) => `${p} ${counts.get(p)}`)
    .join(", ");
}

/** Judges the agent's flows of the measured connection against the routing mode. */
export function hubbleFlowProof(input: FlowProofInput): FlowProof {
  const { routingMode, serverPodIp, clientPodIp, port } = input;
  const parsed = parseHubbleFlows(input.output);
  const measured = parsed.flows.filter((f) => isMeasuredFlow(f, serverPodIp, port, clientPodIp));
  const scope = input.node === undefined ? "hubble" : `${input.node} hubble`;
  const conn = `TCP ${serverPodIp}:${port}${clientPodIp === undefined ? "" : ` ↔ ${clientPodIp}`}`;
  const points = [...new Set(measured.map((f) => f.observationPoint))].sort();
  const seen = measured.length > 0;
  const lost = parsed.lostEvents > 0 ? `; ${parsed.lostEvents} lost-events notices` : "";

  const checks: Check[] = [
    {
      scope,
      check: "flows of the measured connection",
      expected: `≥ 1 flow of ${conn} in the agent's Hubble ring buffer`,
      actual: seen
        ? `${measured.length} (of ${parsed.flows.length} flows printed${lost})`
        : `none (of ${parsed.flows.length} flows printed${lost}): ${NO_FLOWS_REASON}`,
      ok: seen,
    },
  ];
  const overlay = measured.filter((f) => OVERLAY_POINTS.includes(f.observationPoint));
  const toOverlay = overlay.filter((f) => f.observationPoint === "TO_OVERLAY");
  const actualPoints = seen ? ` (${countPoints(measured)})` : "";
  if (routingMode === "native") {
    checks.push({
      scope,
      check: "flows through the overlay",
      expected: "none at TO_OVERLAY or FROM_OVERLAY (native routing: no tunnel)",
      actual: seen ? `${overlay.length}${actualPoints}` : "no flows to judge",
      ok: seen && overlay.length === 0,
    });
  } else {
    checks.push({
      scope,
      check: "flows through the overlay",
      expected: `≥ 1 at TO_OVERLAY (the server's replies leave through cilium_${routingMode})`,
      actual: seen ? `${toOverlay.length}${actualPoints}` : "no flows to judge",
      ok: toOverlay.length > 0,
    });
  }
  const ok = checks.every((c) => c.ok);
  return {
    ok,
    observationPoints: points,
    flows: measured.length,
    checks,
    summary: summarize(input, conn, measured, ok, overlay.length, toOverlay.length),
  };
}

function summarize(
  input: FlowProofInput,
  conn: string,
  measured: readonly HubbleFlow[],
  ok: boolean,
  overlay: number,
  toOverlay: number,
): string {
  const who = `the Cilium ${input.ciliumVersion} agent${input.node === undefined ? "" : ` on ${input.node}`}`;
  if (measured.length === 0) {
    return `Hubble in ${who} reported no flow of ${conn}: ${NO_FLOWS_REASON}. Fix: ${NO_FLOWS_FIX}.`;
  }
  const points = countPoints(measured);
  if (input.routingMode === "native") {
    return ok
      ? `Hubble in ${who} saw ${measured.length} flows of ${conn} (${points}), none through the overlay: native routing, confirmed per flow.`
      : `Hubble in ${who} saw ${overlay} of ${measured.length} flows of ${conn} at the overlay (${points}): the connection was tunnelled although native routing was asked for.`;
  }
  return ok
    ? `Hubble in ${who} saw ${measured.length} flows of ${conn} (${points}), ${toOverlay} leaving through the overlay: ${input.routingMode} tunnel, confirmed per flow.`
    : `Hubble in ${who} saw ${measured.length} flows of ${conn} (${points}), none at TO_OVERLAY: the replies did not leave through the ${input.routingMode} tunnel that was asked for.`;
}
