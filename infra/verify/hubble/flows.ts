/**
 * Parses what `hubble observe -o jsonpb` prints (scripts/node/hubble-flows.sh runs it in a Cilium
 * agent pod): one JSON document per line. Pure: no I/O.
 *
 * The format, from its sources (cilium/cilium unless named):
 * - the CLI prints each `observer.GetFlowsResponse` with Go's `json.Encoder`, one line each:
 *   `case JSONPBOutput: return p.jsonEncoder.Encode(res)` (cilium/hubble pkg/printer/printer.go, the
 *   v0.11 CLI the 1.13 agent image downloads in images/cilium/download-hubble.sh; the same line in
 *   hubble/pkg/printer/printer.go once the CLI lives in cilium/cilium). The response's fields are
 *   `flow` (1), `node_name` (1000) and `time` (1001) (api/v1/observer/observer.proto), so a line is
 *   `{"flow":{…},"node_name":"…","time":"…"}` — the envelope of the real lines in
 *   Documentation/observability/hubble/configuration/export.rst (Hubble's exporter writes the same
 *   message): `{"flow":{"time":"2023-08-21T12:12:18.510175415Z","verdict":"DROPPED",…},
 *   "node_name":"kind-kind/kind-worker","time":"2023-08-21T12:12:18.510175415Z"}`.
 * - the Flow inside is protojson with the proto's own field names (api/v1/flow/flow.pb.json.go:
 *   `protojson.MarshalOptions{UseProtoNames: true}`), from api/v1/flow/flow.proto: `verdict` (2),
 *   `IP` (5: `source`, `destination`, `ipVersion`), `l4` (6: a oneof, `TCP` / `UDP` / `SCTP` with
 *   `source_port`, `destination_port`), `Type` (10), `node_name` (11), `event_type` (19),
 *   `traffic_direction` (22), `trace_observation_point` (24), `is_reply` (26, a BoolValue: absent =
 *   unknown). Enums
 *   print as their names; protojson leaves out zero values, so a missing `trace_observation_point`
 *   is UNKNOWN_POINT (a drop or policy-verdict event has none) and a missing `verdict`
 *   VERDICT_UNKNOWN, and prints an enum value the CLI's proto does not know as its number.
 * - older CLIs print the bare Flow for `-o json` (`case JSONOutput: return p.jsonEncoder.Encode(f)`);
 *   such lines are accepted too.
 */

/**
 * TraceObservationPoint names by number (api/v1/flow/flow.proto), for a CLI that printed a number.
 * TO_OVERLAY (4) and FROM_OVERLAY (9), the only ones the judge reads, are in every version's proto;
 * TO_NETWORK (11) and FROM_CRYPTO / TO_CRYPTO (12, 13) were added later, and an agent newer than its
 * CLI's proto prints such a value as a number.
 */
export const OBSERVATION_POINTS: Readonly<Record<number, string>> = {
  0: "UNKNOWN_POINT",
  1: "TO_PROXY",
  2: "TO_HOST",
  3: "TO_STACK",
  4: "TO_OVERLAY",
  101: "TO_ENDPOINT",
  5: "FROM_ENDPOINT",
  6: "FROM_PROXY",
  7: "FROM_HOST",
  8: "FROM_STACK",
  9: "FROM_OVERLAY",
  10: "FROM_NETWORK",
  11: "TO_NETWORK",
  12: "FROM_CRYPTO",
  13: "TO_CRYPTO",
};

/** One flow, the fields the judge reads. */
export interface HubbleFlow {
  /** 1-based line number in the output. */
  readonly line: number;
  /** `GetFlowsResponse` (`{"flow":…}`, `-o jsonpb`) or `Flow` (a bare flow, old `-o json`). */
  readonly envelope: "GetFlowsResponse" | "Flow";
  readonly time: string | null;
  readonly nodeName: string | null;
  /** `L3_L4`, `L7`, … (`Type`); null when absent. */
  readonly type: string | null;
  /** `FORWARDED`, `DROPPED`, …; `VERDICT_UNKNOWN` when absent. */
  readonly verdict: string;
  /** `TO_OVERLAY`, `TO_ENDPOINT`, …; `UNKNOWN_POINT` when absent. */
  readonly observationPoint: string;
  readonly source: string | null;
  readonly destination: string | null;
  /** `TCP`, `UDP`, `SCTP`, `ICMPv4`, `ICMPv6`: the key under `l4`; null without `l4`. */
  readonly protocol: string | null;
  readonly sourcePort: number | null;
  readonly destinationPort: number | null;
  /** null: the CLI left `is_reply` out (direction unknown). */
  readonly isReply: boolean | null;
}

/** What the output held besides flows. */
export interface ParsedFlows {
  readonly flows: readonly HubbleFlow[];
  /** Lines carrying `lost_events` (events Hubble dropped: its buffer or the perf ring was full). */
  readonly lostEvents: number;
  /** Other responses (`node_status`, `agent_event`, `debug_event`): counted, not judged. */
  readonly otherEvents: number;
}

/** A line `hubble observe` cannot have printed. */
export class HubbleFlowsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HubbleFlowsError";
  }
}

/** The longest piece of a bad line an error quotes. */
export const QUOTE_CHARS = 200;

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The keys a GetFlowsResponse carries instead of `flow` (api/v1/observer/observer.proto). */
const OTHER_RESPONSES = ["node_status", "agent_event", "debug_event"];

/** Keys only a Flow has at its top level: a bare flow (old `-o json`) has at least one. */
const FLOW_KEYS = ["IP", "l4", "verdict", "trace_observation_point", "Type", "event_type", "source", "destination"];

/** Parses every line of `hubble observe -o jsonpb` (or old `-o json`) output. */
export function parseHubbleFlows(text: string): ParsedFlows {
  const flows: HubbleFlow[] = [];
  let lostEvents = 0;
  let otherEvents = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? "").trim();
    if (raw === "") {
      continue;
    }
    const n = i + 1;
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (err) {
      throw new HubbleFlowsError(
        `hubble observe output line ${n} is not JSON (${err instanceof Error ? err.message : String(err)}): ${quote(raw)}. ` +
          "Fix: the lines must come from `hubble observe -o jsonpb` (scripts/node/hubble-flows.sh), nothing else on stdout.",
        { cause: err },
      );
    }
    if (!isObject(doc)) {
      throw new HubbleFlowsError(`hubble observe output line ${n} is not a JSON object: ${quote(raw)}`);
    }
    if ("flow" in doc) {
      if (!isObject(doc.flow)) {
        throw new HubbleFlowsError(`hubble observe output line ${n}: "flow" is not an object: ${quote(raw)}`);
      }
      flows.push(readFlow(doc.flow, n, raw, "GetFlowsResponse", doc));
    } else if ("lost_events" in doc) {
      lostEvents++;
    } else if (OTHER_RESPONSES.some((k) => k in doc)) {
      otherEvents++;
    } else if (FLOW_KEYS.some((k) => k in doc)) {
      flows.push(readFlow(doc, n, raw, "Flow", {}));
    } else {
      throw new HubbleFlowsError(
        `hubble observe output line ${n} is neither a GetFlowsResponse ({"flow":…}) nor a Flow: ${quote(raw)}`,
      );
    }
  }
  return { flows, lostEvents, otherEvents };
}

function readFlow(f: Json, n: number, raw: string, envelope: HubbleFlow["envelope"], outer: Json): HubbleFlow {
  const bad = (field: string, want: string): HubbleFlowsError =>
    new HubbleFlowsError(`hubble observe output line ${n}: ${field} is not ${want}: ${quote(raw)}`);
  const str = (v: unknown, field: string): string | null => {
    if (v === undefined) {
      return null;
    }
    if (typeof v !== "string") {
      throw bad(field, "a string");
    }
    return v;
  };
  const obj = (v: unknown, field: string): Json | null => {
    if (v === undefined) {
      return null;
    }
    if (!isObject(v)) {
      throw bad(field, "an object");
    }
    return v;
  };
  const port = (v: unknown, field: string): number => {
    if (v === undefined) {
      return 0; // protojson leaves a zero port out
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) {
      throw bad(field, "a port number");
    }
    return v;
  };

  const ip = obj(f.IP, "flow.IP");
  const l4 = obj(f.l4, "flow.l4");
  let protocol: string | null = null;
  let sourcePort: number | null = null;
  let destinationPort: number | null = null;
  if (l4 !== null) {
    protocol = Object.keys(l4)[0] ?? null;
    if (protocol === "TCP" || protocol === "UDP" || protocol === "SCTP") {
      const p = obj(l4[protocol], `flow.l4.${protocol}`) ?? {};
      sourcePort = port(p.source_port, `flow.l4.${protocol}.source_port`);
      destinationPort = port(p.destination_port, `flow.l4.${protocol}.destination_port`);
    }
  }
  let observationPoint = "UNKNOWN_POINT";
  const top = f.trace_observation_point;
  if (typeof top === "string") {
    observationPoint = top;
  } else if (typeof top === "number") {
    observationPoint = OBSERVATION_POINTS[top] ?? String(top);
  } else if (top !== undefined) {
    throw bad("flow.trace_observation_point", "an enum name or number");
  }
  const isReply = f.is_reply;
  if (isReply !== undefined && typeof isReply !== "boolean") {
    throw bad("flow.is_reply", "a boolean");
  }
  const verdict = f.verdict;
  if (verdict !== undefined && typeof verdict !== "string" && typeof verdict !== "number") {
    throw bad("flow.verdict", "an enum name or number");
  }
  return {
    line: n,
    envelope,
    time: str(outer.time, "time") ?? str(f.time, "flow.time"),
    nodeName: str(outer.node_name, "node_name") ?? str(f.node_name, "flow.node_name"),
    type: typeof f.Type === "number" ? String(f.Type) : str(f.Type, "flow.Type"),
    verdict: verdict === undefined ? "VERDICT_UNKNOWN" : String(verdict),
    observationPoint,
    source: ip === null ? null : str(ip.source, "flow.IP.source"),
    destination: ip === null ? null : str(ip.destination, "flow.IP.destination"),
    protocol,
    sourcePort,
    destinationPort,
    isReply: isReply === undefined ? null : isReply,
  };
}
