/**
 * One HTTP(S) request per upstream, from this host, with a short timeout: does the host answer,
 * and with what. One `GET` with `Range: bytes=0-0` (a large file is not downloaded), redirects not
 * followed (a 3xx is an answer: its target host is named), the body discarded.
 */
import * as http from "node:http";
import * as https from "node:https";

import type { UpstreamEndpoint } from "../../infra/upstreams";

/** What one probe saw. */
export type ProbeAnswer =
  | { readonly answered: true; readonly status: number; readonly location?: string; readonly seconds: number }
  | { readonly answered: false; readonly reason: string; readonly seconds: number };

/** Default bound of one probe, connection and response headers included. */
export const PROBE_TIMEOUT_MS = 4_000;

/** Why a request failed, in the words a firewall admin needs (DNS, TCP, TLS, timeout). */
export function failureReason(err: NodeJS.ErrnoException, host: string, timeoutMs: number): string {
  const code = err.code ?? "";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_FAIL" || code === "EAI_NODATA") {
    return `DNS: cannot resolve ${host} (${code})`;
  }
  if (code === "ECONNREFUSED") {
    return `TCP: connection to ${host} refused`;
  }
  if (code === "ECONNRESET") {
    return `TCP: connection to ${host} reset`;
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return `TCP: ${host} unreachable (${code})`;
  }
  if (code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT") {
    return `no answer from ${host} within ${timeoutMs / 1000} s`;
  }
  if (/CERT|SSL|TLS|EPROTO/.test(code) || /certificate|ssl|tls/i.test(err.message)) {
    return `TLS: ${err.message} (${code || "error"})`;
  }
  return `${err.message}${code ? ` (${code})` : ""}`;
}

/** Requests `url` once; never throws. */
export function probe(url: string, timeoutMs: number = PROBE_TIMEOUT_MS): Promise<ProbeAnswer> {
  const started = Date.now();
  const seconds = (): number => Math.round((Date.now() - started) / 100) / 10;
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      resolve({ answered: false, reason: `not a URL: ${url}`, seconds: 0 });
      return;
    }
    const lib = u.protocol === "https:" ? https : http;
    let done = false;
    const finish = (a: ProbeAnswer): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(a);
      }
    };
    const req = lib.get(u, { headers: { "user-agent": "cilium-lab-doctor", range: "bytes=0-0" } }, (res) => {
      res.resume();
      const location = res.headers.location;
      finish({
        answered: true,
        status: res.statusCode ?? 0,
        ...(location !== undefined ? { location: new URL(location, u).href } : {}),
        seconds: seconds(),
      });
      req.destroy();
    });
    const timer = setTimeout(() => {
      finish({ answered: false, reason: `no answer from ${u.host} within ${timeoutMs / 1000} s`, seconds: seconds() });
      req.destroy();
    }, timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) =>
      finish({ answered: false, reason: failureReason(err, u.host, timeoutMs), seconds: seconds() }),
    );
  });
}

/** Whether an answer is what the endpoint needs, and the words for it. */
export function judge(endpoint: Pick<UpstreamEndpoint, "expect">, answer: ProbeAnswer): { ok: boolean; text: string } {
  if (!answer.answered) {
    return { ok: false, text: answer.reason };
  }
  const redirect = answer.location !== undefined ? ` → ${new URL(answer.location).host}` : "";
  const text = `HTTP ${answer.status}${redirect} (${answer.seconds} s)`;
  if (endpoint.expect === "service") {
    return { ok: true, text };
  }
  return { ok: answer.status >= 200 && answer.status < 400, text };
}
