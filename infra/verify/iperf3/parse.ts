/**
 * Parsing one `iperf3 -J` client document. Which fields and why: throughput is the RECEIVER side,
 * `end.sum_received.bits_per_second` (what arrived, not what was queued; the article quotes 493
 * receiver vs 494 sender), retransmits are `end.sum_sent.retransmits` (the sender's TCP counter),
 * CPU is `end.cpu_utilization_percent` (`host_total` on the client, `remote_total` on the server).
 * see https://github.com/esnet/iperf/blob/master/src/iperf_api.c (JSON keys)
 * Pure: no I/O, no Pulumi.
 */
import { isObject, type Json } from "../json";

/** One iperf3 client run, as read from its `-J` document. */
export interface Iperf3Result {
  /** Receiver-side throughput over the measured seconds (omitted seconds excluded), bit/s. */
  readonly bitsPerSecond: number;
  /** Bytes the receiver got in the measured seconds. */
  readonly bytes: number;
  /** Measured seconds (`end.sum_received.seconds`). */
  readonly seconds: number;
  /** Sender retransmits; `null` when iperf3 cannot read them (non-Linux, UDP). */
  readonly retransmits: number | null;
  /** Client (sender) CPU, % (`cpu_utilization_percent.host_total`). */
  readonly clientCpuPercent: number;
  /** Server (receiver) CPU, % (`cpu_utilization_percent.remote_total`). */
  readonly serverCpuPercent: number;
  /** The TCP MSS iperf3 saw (`start.tcp_mss_default`): route MTU − 52 with timestamps (1398 over a 1450 route, 1448 over 1500). */
  readonly tcpMss: number | null;
  /** Parallel streams (`start.test_start.num_streams`). */
  readonly streams: number | null;
  /** Omitted warm-up seconds (`start.test_start.omit`). */
  readonly omitSeconds: number | null;
  /** `start.timestamp.time`, the client's clock at start. */
  readonly startedAt: string | null;
  /** `start.version`, e.g. `iperf 3.12`. */
  readonly iperf3Version: string | null;
  /** Addresses of the first stream: `local → remote`, proof of which path was measured. */
  readonly connection: { readonly local: string; readonly remote: string } | null;
}

/**
 * A measuring tool's output that is not a usable result (the base of {@link Iperf3OutputError} and
 * netperf's `NetperfError`). `tail` holds the end of the output, for the message.
 */
export class ToolOutputError extends Error {
  override name = "ToolOutputError";
  constructor(
    message: string,
    readonly tail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** iperf3 output that is not a usable result. `tail` holds the end of the output, for the message. */
export class Iperf3OutputError extends ToolOutputError {
  override name = "Iperf3OutputError";
}

/** How much of a bad output a message quotes. */
export const TAIL_CHARS = 400;

/** The last `TAIL_CHARS` characters of `text`, marked when cut. */
export function tailOf(text: string, chars: number = TAIL_CHARS): string {
  const trimmed = text.trimEnd();
  return trimmed.length <= chars ? trimmed : `…${trimmed.slice(trimmed.length - chars)}`;
}

function numberAt(o: Json | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function objectAt(o: Json | undefined, key: string): Json | undefined {
  const v = o?.[key];
  return isObject(v) ? v : undefined;
}

/**
 * Parses one `iperf3 -J` client document (as `kubectl logs` returns it: the JSON object, possibly
 * with log lines before or after it, which are ignored). `label` names the run in messages,
 * e.g. `pod-to-pod run 2 (job iperf3-pod-2-ab12cd34)`.
 *
 * Throws {@link Iperf3OutputError}:
 * - empty output: `iperf3 <label>: no output.`
 * - no complete JSON object (a run killed mid-way, a cut log):
 *   `iperf3 <label>: the output is not a complete JSON document (<n> characters; truncated?). Output ends with: <tail>`
 * - an `error` field (iperf3 3.12 exits 0 with `-J` when it cannot connect, so this is the only
 *   reliable failure signal): `iperf3 <label> failed: <error>. Output ends with: <tail>`
 * - no receiver summary: `iperf3 <label>: no end.sum_received.bits_per_second in the output (…)`
 */
export function parseIperf3Json(text: string, label: string): Iperf3Result {
  if (text.trim() === "") {
    throw new Iperf3OutputError(`iperf3 ${label}: no output.`, "");
  }
  const tail = tailOf(text);
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  let doc: unknown;
  try {
    if (start < 0 || end < start) {
      throw new SyntaxError("no JSON object");
    }
    doc = JSON.parse(text.slice(start, end + 1));
  } catch (err) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: the output is not a complete JSON document (${text.length} characters; truncated?). Output ends with: ${tail}`,
      tail,
      { cause: err },
    );
  }
  if (!isObject(doc)) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: the output is JSON but not an iperf3 document. Output ends with: ${tail}`,
      tail,
    );
  }
  if (typeof doc.error === "string" && doc.error !== "") {
    throw new Iperf3OutputError(`iperf3 ${label} failed: ${doc.error}. Output ends with: ${tail}`, tail);
  }
  const end_ = objectAt(doc, "end");
  const received = objectAt(end_, "sum_received");
  const bitsPerSecond = numberAt(received, "bits_per_second");
  if (bitsPerSecond === undefined) {
    throw new Iperf3OutputError(
      `iperf3 ${label}: no end.sum_received.bits_per_second in the output (a UDP or reverse-mode run, or an older iperf3?). Output ends with: ${tail}`,
      tail,
    );
  }
  const sent = objectAt(end_, "sum_sent");
  const cpu = objectAt(end_, "cpu_utilization_percent");
  const startDoc = objectAt(doc, "start");
  const testStart = objectAt(startDoc, "test_start");
  const connected = startDoc?.connected;
  const first = Array.isArray(connected) && isObject(connected[0]) ? connected[0] : undefined;
  const timestamp = objectAt(startDoc, "timestamp");
  return {
    bitsPerSecond,
    bytes: numberAt(received, "bytes") ?? 0,
    seconds: numberAt(received, "seconds") ?? 0,
    retransmits: numberAt(sent, "retransmits") ?? null,
    clientCpuPercent: numberAt(cpu, "host_total") ?? 0,
    serverCpuPercent: numberAt(cpu, "remote_total") ?? 0,
    tcpMss: numberAt(startDoc, "tcp_mss_default") ?? null,
    streams: numberAt(testStart, "num_streams") ?? null,
    omitSeconds: numberAt(testStart, "omit") ?? null,
    startedAt: typeof timestamp?.time === "string" ? timestamp.time : null,
    iperf3Version: typeof startDoc?.version === "string" ? startDoc.version : null,
    connection:
      first && typeof first.local_host === "string" && typeof first.remote_host === "string"
        ? {
            local: `${first.local_host}:${String(first.local_port)}`,
            remote: `${first.remote_host}:${String(first.remote_port)}`,
          }
        : null,
  };
}
