/**
 * Hubble flow-level proof of the datapath: the Cilium agent on the iperf3 server's node is asked for
 * the measured connection's flows (scripts/node/hubble-flows.sh runs `hubble observe -o jsonpb` in
 * it) and the answer is judged against the routing mode. Pure: no I/O, no Pulumi; table-tested in
 * test/verify/hubble*.test.ts.
 *
 * - flows.ts: the CLI's JSON lines (GetFlowsResponse envelope, or a bare Flow) → HubbleFlow;
 * - proof.ts: tunnel ⇒ the replies seen TO_OVERLAY; native ⇒ flows seen, none at the overlay.
 */
export {
  HubbleFlowsError,
  OBSERVATION_POINTS,
  QUOTE_CHARS,
  parseHubbleFlows,
  type HubbleFlow,
  type ParsedFlows,
} from "./flows";
export {
  NO_FLOWS_FIX,
  NO_FLOWS_REASON,
  OVERLAY_POINTS,
  countPoints,
  hubbleFlowProof,
  isMeasuredFlow,
  type FlowProof,
  type FlowProofInput,
} from "./proof";

/** The node script that prints the flows (scripts/node/). */
export const HUBBLE_FLOWS_SCRIPT = "hubble-flows.sh";

/**
 * The script's command line: `--node <node> --server-ip <ip> --port <port>` and, when given,
 * `--last` and `--timeout` (scripts/node/hubble-flows.sh documents them and its exit codes).
 */
export function hubbleFlowsArgs(args: {
  readonly node: string;
  readonly serverPodIp: string;
  readonly port: number;
  readonly last?: number;
  readonly timeoutSeconds?: number;
}): string[] {
  const argv = ["--node", args.node, "--server-ip", args.serverPodIp, "--port", String(args.port)];
  if (args.last !== undefined) {
    argv.push("--last", String(args.last));
  }
  if (args.timeoutSeconds !== undefined) {
    argv.push("--timeout", String(args.timeoutSeconds));
  }
  return argv;
}
