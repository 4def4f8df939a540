/**
 * Where a base image's bytes come from, and how they are fetched: the ordered roots of an Ubuntu
 * serial (infra/versions.ts UBUNTU_IMAGE_ROOTS), plain and resumable downloads over http(s) or
 * from a local file, and the error that names every source that failed.
 *
 * Redirects are followed, https → http included: Ubuntu's release host answers old serials with a
 * 302 to `http://cloud-images-archive.ubuntu.com/…` (see UBUNTU_IMAGE_ROOTS). What is fetched is
 * trusted only after its proof: SHA256SUMS by its gpgv signature, the image by its SHA-256.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";

import { mib } from "../common";
import { SIMPLESTREAMS_INDEX } from "./simplestreams";

/** Writes one progress/info line; defaults to stderr (the engine shows provider stderr). */
export type LineLogger = (line: string) => void;

/** The directory of one serial under a root: `<root><codename>/release-<serial>/`. */
export function serialSource(root: string, codename: string, serial: string): string {
  return `${root.endsWith("/") ? root : `${root}/`}${codename}/release-${serial}/`;
}

/** Every source of a serial, in the roots' order. */
export function serialSources(roots: readonly string[], codename: string, serial: string): string[] {
  return roots.map((r) => serialSource(r, codename, serial));
}

/** The simplestreams index URL under every root, in order. */
export function indexUrls(roots: readonly string[]): string[] {
  return roots.map((r) => `${r.endsWith("/") ? r : `${r}/`}${SIMPLESTREAMS_INDEX}`);
}

/** One source that did not deliver, and why. */
export interface SourceFailure {
  readonly source: string;
  readonly reason: string;
}

/** The error after every source failed: each source with its reason, then the fix. */
export function allSourcesFailed(what: string, failures: readonly SourceFailure[], fix: string): Error {
  const list = failures.map((f, i) => `  ${i + 1}. ${f.source}: ${f.reason}`).join("\n");
  return new Error(`${what}: every source failed:\n${list}\n${fix}`);
}

/** `protocol` is http(s), file, or an absolute path. */
export function sourceKind(url: string): "http" | "file" {
  if (/^https?:\/\//.test(url)) {
    return "http";
  }
  if (url.startsWith("file://") || path.isAbsolute(url)) {
    return "file";
  }
  throw new Error(
    `Base image URL ${url} is not an https://, http://, file:// URL or an absolute path. Fix: set cilium-lab:imageUrl to one.`,
  );
}

/** A response and the URL that finally answered (after redirects). */
interface Answer {
  readonly res: http.IncomingMessage;
  readonly finalUrl: string;
}

/** Issues a GET, following up to 5 redirects (https → http too: integrity is proven after the fetch). */
function httpGet(url: string, headers: Record<string, string>, redirects = 5): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === "https:" ? https : http;
    const req = lib.get(u, { headers: { "user-agent": "cilium-lab", ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        const next = new URL(location, u);
        if (redirects <= 0) {
          reject(new Error(`too many redirects (last to ${next.href})`));
        } else if (next.protocol !== "https:" && next.protocol !== "http:") {
          reject(new Error(`refusing a redirect to ${next.href}`));
        } else {
          httpGet(next.href, headers, redirects - 1).then(resolve, reject);
        }
        return;
      }
      resolve({ res, finalUrl: u.href });
    });
    req.setTimeout(60_000, () => req.destroy(new Error("no data for 60 s")));
    req.on("error", reject);
  });
}

/** "HTTP 404 Not Found", with " (at <final URL>)" when a redirect led elsewhere. */
function statusText(res: http.IncomingMessage, url: string, finalUrl: string): string {
  return `HTTP ${res.statusCode ?? 0}${res.statusMessage ? ` ${res.statusMessage}` : ""}${finalUrl !== url ? ` (redirected to ${finalUrl})` : ""}`;
}

/** "ECONNRESET socket hang up" for a network error. */
export function networkReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return `${e.code ? `${e.code} ` : ""}${e.message}`;
}

/** Fetches a small file whole into memory (SHA256SUMS, its signature, the index); at most `limit` bytes. */
export async function fetchSmall(url: string, limit = 4 * 1048576): Promise<Buffer> {
  if (sourceKind(url) === "file") {
    return fsp.readFile(url.startsWith("file://") ? fileURLToPath(url) : url);
  }
  let answer: Answer;
  try {
    answer = await httpGet(url, {});
  } catch (err) {
    throw new Error(`${networkReason(err)}`, { cause: err });
  }
  const { res, finalUrl } = answer;
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(statusText(res, url, finalUrl));
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res) {
      n += (chunk as Buffer).length;
      if (n > limit) {
        res.destroy();
        throw new Error(`larger than ${mib(limit)}, not the file expected`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw new Error(`${networkReason(err)} after ${n} bytes`, { cause: err });
  }
  return Buffer.concat(chunks);
}

/** What a fetch did. */
export interface FetchResult {
  /** Bytes fetched in this call (a resumed download counts only the rest). */
  readonly fetched: number;
  /** Size of the complete file. */
  readonly size: number;
  /** SHA-256 over the whole file, prefix included. */
  readonly sha256: string;
}

/**
 * Reports progress at most once per 25 % (0, 25, 50, 75, 100), or every 256 MiB when the size is
 * unknown; the caller adds one final "fetched" line.
 */
export function progress(label: string, total: number | undefined, log: LineLogger): (done: number) => void {
  let next = 0;
  return (done: number) => {
    if (total !== undefined && total > 0) {
      const pct = Math.floor((done / total) * 100);
      if (pct >= next) {
        const step = Math.min(100, pct - (pct % 25));
        log(`[cilium-lab] ${label}: ${step}% (${mib(done)} of ${mib(total)})`);
        next = step >= 100 ? Infinity : step + 25;
      }
    } else if (done >= next) {
      log(`[cilium-lab] ${label}: ${mib(done)}`);
      next = done + 256 * 1048576;
    }
  };
}

/** Hashes an existing prefix (a `.partial` file), or gives an empty hash when there is none. */
async function hashPrefix(file: string): Promise<{ hash: ReturnType<typeof createHash>; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  try {
    await pipeline(
      fs.createReadStream(file),
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb();
        },
      }),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw err;
    }
  }
  return { hash, size };
}

/**
 * Fetches `url` into `partial`, continuing after the bytes already there; hashes as it goes.
 * Errors name the URL, what happened and the fix; `hint` is appended to HTTP status errors.
 */
export async function fetchResumable(
  url: string,
  partial: string,
  label: string,
  log: LineLogger,
  hint = "",
): Promise<FetchResult> {
  let { hash, size: offset } = await hashPrefix(partial);
  const started = Date.now();
  let fetched = 0;
  let total: number | undefined;
  let source: NodeJS.ReadableStream;

  if (sourceKind(url) === "file") {
    const file = url.startsWith("file://") ? fileURLToPath(url) : url;
    let st: fs.Stats;
    try {
      st = await fsp.stat(file);
    } catch (err) {
      throw new Error(
        `Base image ${url} cannot be read: ${(err as Error).message}. Fix: check cilium-lab:imageUrl (the file must exist on this host).`,
        { cause: err },
      );
    }
    total = st.size;
    if (offset > total) {
      hash = createHash("sha256");
      offset = 0;
      await fsp.rm(partial, { force: true });
    }
    source = fs.createReadStream(file, { start: offset });
  } else {
    let answer: Answer;
    try {
      answer = await httpGet(url, offset > 0 ? { range: `bytes=${offset}-` } : {});
    } catch (err) {
      throw new Error(
        `Downloading base image ${url} failed: ${networkReason(err)}. Fix: check this host's access to ${new URL(url).host}, then run again.`,
        { cause: err },
      );
    }
    const { res, finalUrl } = answer;
    const status = res.statusCode ?? 0;
    const length = Number(res.headers["content-length"]);
    if (status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers["content-range"] ?? "");
      if (!m || Number(m[1]) !== offset) {
        res.resume();
        await fsp.rm(partial, { force: true });
        throw new Error(
          `Downloading base image ${url} failed: the server answered a resume at byte ${offset} with Content-Range "${res.headers["content-range"] ?? ""}". The partial file was deleted; run again to start over.`,
        );
      }
      total = Number(m[3]);
    } else if (status === 200) {
      if (offset > 0) {
        // The server ignored the Range header: start over.
        hash = createHash("sha256");
        offset = 0;
        await fsp.rm(partial, { force: true });
      }
      total = Number.isFinite(length) ? length : undefined;
    } else {
      res.resume();
      if (status === 416 && offset > 0) {
        await fsp.rm(partial, { force: true });
        throw new Error(
          `Downloading base image ${url} failed: HTTP 416 for a resume at byte ${offset} (the partial file is larger than the image). The partial file was deleted; run again to start over.`,
        );
      }
      throw new Error(
        `Downloading base image ${url} failed: ${statusText(res, url, finalUrl)}.${hint ? ` ${hint}` : ""}`,
      );
    }
    source = res;
  }

  const report = progress(label, total, log);
  report(offset);
  const out = fs.createWriteStream(partial, { flags: "a", mode: 0o644 });
  try {
    await pipeline(
      source,
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          fetched += chunk.length;
          report(offset + fetched);
          cb(null, chunk);
        },
      }),
      out,
    );
  } catch (err) {
    throw new Error(
      `Downloading base image ${url} failed after ${offset + fetched}${total !== undefined ? ` of ${total}` : ""} bytes: ${(err as Error).message}. ` +
        `The partial file ${partial} is kept; run again to resume.`,
      { cause: err },
    );
  }
  const size = offset + fetched;
  if (total !== undefined && size !== total) {
    throw new Error(
      `Downloading base image ${url} failed: the connection ended after ${size} of ${total} bytes. The partial file ${partial} is kept; run again to resume.`,
    );
  }
  const seconds = (Date.now() - started) / 1000;
  log(
    `[cilium-lab] ${label}: fetched ${mib(fetched)} in ${seconds.toFixed(1)} s${offset > 0 ? ` (resumed at ${mib(offset)})` : ""}`,
  );
  return { fetched, size, sha256: hash.digest("hex") };
}
