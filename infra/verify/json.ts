/**
 * Reading untyped JSON (collector documents, `ip -j`, `iperf3 -J`) without trusting its shape: each
 * helper returns the value when it has the expected type, else `null`. Pure: no I/O, no Pulumi.
 */

/** A JSON object. */
export type Json = Record<string, unknown>;

/** Whether `v` is a JSON object (not an array, not `null`). */
export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `v` when it is a string, else `null`. */
export function stringOrNull(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** `v` when it is a finite number, else `null`. */
export function numberOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
