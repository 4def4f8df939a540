/**
 * `BaseImage`: the chosen cloud image, downloaded once per host into a cache shared by every stack,
 * verified before anything boots from it.
 *
 * - Cache: `${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-~/.cache}/cilium-lab}/images/<sha256>.qcow2`.
 *   Named by content, so a second stack (or a second `up` after `destroy`) finds it and downloads
 *   0 bytes. A file gets that name only by a rename after its hash matched, so a name is a proof.
 * - Ubuntu images: the expected hash comes from the release's `SHA256SUMS`, whose detached
 *   signature `SHA256SUMS.gpg` must verify (`gpgv`) against Ubuntu's cloud-image signing key,
 *   `/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg`. Debian ships that keyring in the package
 *   `ubuntu-keyring` (Debian 13 "trixie" and later, bookworm-backports; packages.debian.org
 *   ubuntu-keyring file list); Ubuntu in `ubuntu-keyring` / `ubuntu-cloudimage-keyring`. The
 *   verified `SHA256SUMS` pair is cached too, so a second stack needs no network at all.
 *   (documentation.ubuntu.com/security/software-integrity/image-verification)
 * - Custom images (`https://`, `file://` or an absolute path): the hash is `imageSha256`.
 * - Download: Node's http(s) with a progress line on stderr every 5 %, into `<sha256>.qcow2.partial`,
 *   resumed with a `Range` request when a previous run was interrupted; a hash mismatch deletes the
 *   partial file and fails with both hashes and the fix. Then `qemu-img info` must say qcow2
 *   without a backing file (reliability rule: verify base images before use).
 * - `delete` keeps the cached file on purpose: other stacks on this host may use it, and the next
 *   `up` would download it again. Remove the cache by hand: `rm -rf <cache>/images`.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";

import * as pulumi from "@pulumi/pulumi";

/** Where Debian's and Ubuntu's `ubuntu-keyring` put the key that signs cloud-images.ubuntu.com. */
export const UBUNTU_CLOUDIMAGE_KEYRING = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/** The cache root: `$CILIUM_LAB_CACHE`, else `$XDG_CACHE_HOME/cilium-lab`, else `~/.cache/cilium-lab`. */
export function cacheRoot(env: Readonly<Record<string, string | undefined>>, home: string): string {
  if (env.CILIUM_LAB_CACHE) {
    return path.resolve(env.CILIUM_LAB_CACHE);
  }
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(home, ".cache"), "cilium-lab");
}

/** The cached image file for a hash. */
export function cachedImagePath(cacheDir: string, sha256: string): string {
  return path.join(cacheDir, "images", `${sha256}.qcow2`);
}

/** The provider's inputs. */
export interface BaseImageInputs {
  /** The `image` config value (`ubuntu-24.04`, `custom`…), for messages. */
  readonly image: string;
  /** `https://`, `http://`, `file://` URL or absolute host path of the qcow2 image. */
  readonly url: string;
  /** Custom images: the SHA-256 to match (lower-case hex). Ubuntu images: empty. */
  readonly expectedSha256: string;
  /** Ubuntu images: the release's `SHA256SUMS` URL (`.gpg` beside it). Custom images: empty. */
  readonly sha256SumsUrl: string;
  /** Ubuntu images: keyring that must have signed `SHA256SUMS`. Custom images: empty. */
  readonly keyringPath: string;
  /** The cache root (see {@link cacheRoot}); images go to `<cacheDir>/images`. */
  readonly cacheDir: string;
}

/** What the provider records. */
export interface BaseImageOutputs extends BaseImageInputs {
  /** The verified image in the cache: `<cacheDir>/images/<sha256>.qcow2`. Also the resource ID. */
  readonly path: string;
  /** The verified SHA-256. */
  readonly sha256: string;
  readonly sizeBytes: number;
  /** Bytes fetched by the create/update that made this state: 0 when the cache already had it. */
  readonly downloadedBytes: number;
}

/** Writes one progress/info line; defaults to stderr (the engine shows provider stderr). */
export type LineLogger = (line: string) => void;

const SHA256_RE = /^[0-9a-f]{64}$/;

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The last lines of a command's stderr, for error messages. */
function tail(text: string, lines = 5): string {
  return text.trim().split("\n").slice(-lines).join(" | ");
}

/** Runs a command without a shell; resolves with exit code and output (never rejects on exit code). */
function run(
  cmd: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Throws "`tool` not found on PATH; install <package>" when `err` is ENOENT from spawn. */
function rethrowMissingTool(err: unknown, tool: string, pkg: string): never {
  if ((err as NodeJS.ErrnoException)?.code === "ENOENT") {
    throw new Error(`\`${tool}\` not found on PATH; install Debian package \`${pkg}\` (apt-get install -y ${pkg}).`, { cause: err });
  }
  throw err;
}

/**
 * The hash `SHA256SUMS` gives for `fileName`, or undefined. Lines are `<hex> *<name>` (binary) or
 * `<hex>  <name>` (text), as `sha256sum` writes them.
 */
export function parseSha256Sums(text: string, fileName: string): string | undefined {
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m && m[2] === fileName) {
      return m[1]?.toLowerCase();
    }
  }
  return undefined;
}

/**
 * Verifies that `sigPath` is a valid detached signature of `sumsPath` by a key in `keyringPath`
 * (default: Ubuntu's cloud-image keyring), with `gpgv` in a throwaway GNUPGHOME so no user or
 * system trust database is consulted. Throws with the fix when it does not verify.
 */
export async function verifySignedSums(
  sumsPath: string,
  sigPath: string,
  keyringPath: string = UBUNTU_CLOUDIMAGE_KEYRING,
  sumsUrl: string = sumsPath,
): Promise<void> {
  try {
    await fsp.access(keyringPath, fs.constants.R_OK);
  } catch (err) {
    const fix =
      keyringPath === UBUNTU_CLOUDIMAGE_KEYRING
        ? "Fix: install Ubuntu's keyring (Debian 13 or later, or bookworm-backports: apt-get install ubuntu-keyring; Ubuntu: apt-get install ubuntu-keyring), or use cilium-lab:image custom with cilium-lab:imageUrl and cilium-lab:imageSha256."
        : "Fix: point keyringPath at an existing OpenPGP keyring.";
    throw new Error(`Cannot verify ${sumsUrl}: the signing keyring ${keyringPath} is missing or unreadable. ${fix}`, { cause: err });
  }
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), "cilium-lab-gpgv-"));
  try {
    let result: { code: number; stderr: string };
    try {
      result = await run("gpgv", ["--keyring", path.resolve(keyringPath), sigPath, sumsPath], { GNUPGHOME: home });
    } catch (err) {
      rethrowMissingTool(err, "gpgv", "gpgv");
    }
    if (result.code !== 0) {
      throw new Error(
        `The signature of ${sumsUrl} does not verify against ${keyringPath} (gpgv exit ${result.code}: ${tail(result.stderr)}). ` +
          `The file may have been tampered with or signed by a key that keyring lacks; nothing was downloaded. ` +
          `Fix: retry later or from another mirror; never skip the check.`,
      );
    }
  } finally {
    await fsp.rm(home, { recursive: true, force: true });
  }
}

/** `protocol` is http(s), file, or an absolute path. */
function sourceKind(url: string): "http" | "file" {
  if (/^https?:\/\//.test(url)) {
    return "http";
  }
  if (url.startsWith("file://") || path.isAbsolute(url)) {
    return "file";
  }
  throw new Error(`Base image URL ${url} is not an https://, http://, file:// URL or an absolute path. Fix: set cilium-lab:imageUrl to one.`);
}

/** Issues a GET, following up to 5 redirects (never https → http). */
function httpGet(url: string, headers: Record<string, string>, redirects = 5): Promise<http.IncomingMessage> {
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
          reject(new Error(`Downloading ${url} failed: too many redirects.`));
        } else if (u.protocol === "https:" && next.protocol !== "https:") {
          reject(new Error(`Downloading ${url} failed: refusing a redirect from https to ${next.protocol} (${next.href}).`));
        } else {
          httpGet(next.href, headers, redirects - 1).then(resolve, reject);
        }
        return;
      }
      resolve(res);
    });
    req.setTimeout(60_000, () => req.destroy(new Error("no data for 60 s")));
    req.on("error", reject);
  });
}

/** What a fetch did. */
interface FetchResult {
  /** Bytes fetched in this call (a resumed download counts only the rest). */
  readonly fetched: number;
  /** Size of the complete file. */
  readonly size: number;
  /** SHA-256 over the whole file, prefix included. */
  readonly sha256: string;
}

/** Reports progress every 5 % (or every 64 MiB when the size is unknown). */
function progress(label: string, total: number | undefined, log: LineLogger): (done: number) => void {
  let next = 0;
  return (done: number) => {
    if (total !== undefined && total > 0) {
      const pct = Math.floor((done / total) * 100);
      if (pct >= next) {
        log(`[cilium-lab] ${label}: ${pct}% (${mib(done)} of ${mib(total)})`);
        next = Math.min(100, pct - (pct % 5) + 5);
        if (pct >= 100) {
          next = Infinity;
        }
      }
    } else if (done >= next) {
      log(`[cilium-lab] ${label}: ${mib(done)}`);
      next = done + 64 * 1048576;
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
export async function fetchResumable(url: string, partial: string, label: string, log: LineLogger, hint = ""): Promise<FetchResult> {
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
      throw new Error(`Base image ${url} cannot be read: ${(err as Error).message}. Fix: check cilium-lab:imageUrl (the file must exist on this host).`, { cause: err });
    }
    total = st.size;
    if (offset > total) {
      hash = createHash("sha256");
      offset = 0;
      await fsp.rm(partial, { force: true });
    }
    source = fs.createReadStream(file, { start: offset });
  } else {
    let res: http.IncomingMessage;
    try {
      res = await httpGet(url, offset > 0 ? { range: `bytes=${offset}-` } : {});
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(
        `Downloading base image ${url} failed: ${e.code ? `${e.code} ` : ""}${e.message}. Fix: check this host's access to ${new URL(url).host}, then run again.`,
        { cause: err },
      );
    }
    const status = res.statusCode ?? 0;
    const length = Number(res.headers["content-length"]);
    if (status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers["content-range"] ?? "");
      if (!m || Number(m[1]) !== offset) {
        res.resume();
        await fsp.rm(partial, { force: true });
        throw new Error(`Downloading base image ${url} failed: the server answered a resume at byte ${offset} with Content-Range "${res.headers["content-range"] ?? ""}". The partial file was deleted; run again to start over.`);
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
        throw new Error(`Downloading base image ${url} failed: HTTP 416 for a resume at byte ${offset} (the partial file is larger than the image). The partial file was deleted; run again to start over.`);
      }
      throw new Error(`Downloading base image ${url} failed: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ""}.${hint ? ` ${hint}` : ""}`);
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
  log(`[cilium-lab] ${label}: fetched ${mib(fetched)} in ${seconds.toFixed(1)} s${offset > 0 ? ` (resumed at ${mib(offset)})` : ""}`);
  return { fetched, size, sha256: hash.digest("hex") };
}

/** Fetches a small file (SHA256SUMS, its signature) whole into memory; at most 4 MiB. */
async function fetchSmall(url: string): Promise<Buffer> {
  if (sourceKind(url) === "file") {
    return fsp.readFile(url.startsWith("file://") ? fileURLToPath(url) : url);
  }
  let res: http.IncomingMessage;
  try {
    res = await httpGet(url, {});
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`Downloading ${url} failed: ${e.code ? `${e.code} ` : ""}${e.message}. Fix: check this host's access to ${new URL(url).host}.`, { cause: err });
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(
      `Downloading ${url} failed: HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ""}. ` +
        `The release may be EOL and moved; set cilium-lab:image custom with cilium-lab:imageUrl/imageSha256 to a current image.`,
    );
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res) {
    n += (chunk as Buffer).length;
    if (n > 4 * 1048576) {
      res.destroy();
      throw new Error(`Downloading ${url} failed: larger than 4 MiB, not a SHA256SUMS file.`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The SHA-256 the signed `SHA256SUMS` lists for the image: from the cache when a verified pair is
 * there (verified again, locally), else downloaded and verified first.
 */
export async function signedImageSha256(inputs: Pick<BaseImageInputs, "url" | "sha256SumsUrl" | "keyringPath" | "cacheDir">): Promise<string> {
  const { url, sha256SumsUrl, keyringPath, cacheDir } = inputs;
  const dir = path.join(cacheDir, "sha256sums", createHash("sha256").update(sha256SumsUrl).digest("hex").slice(0, 16));
  const sums = path.join(dir, "SHA256SUMS");
  const sig = path.join(dir, "SHA256SUMS.gpg");
  let cached = false;
  if (fs.existsSync(sums) && fs.existsSync(sig)) {
    try {
      await verifySignedSums(sums, sig, keyringPath, sha256SumsUrl);
      cached = true;
    } catch {
      // A cached pair that no longer verifies (keyring changed, file damaged): fetch it again.
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  if (!cached) {
    const [sumsBytes, sigBytes] = await Promise.all([fetchSmall(sha256SumsUrl), fetchSmall(`${sha256SumsUrl}.gpg`)]);
    await fsp.mkdir(cacheDir, { recursive: true, mode: 0o755 });
    const tmp = await fsp.mkdtemp(path.join(cacheDir, ".sha256sums-"));
    try {
      await fsp.writeFile(path.join(tmp, "SHA256SUMS"), sumsBytes, { mode: 0o644 });
      await fsp.writeFile(path.join(tmp, "SHA256SUMS.gpg"), sigBytes, { mode: 0o644 });
      await verifySignedSums(path.join(tmp, "SHA256SUMS"), path.join(tmp, "SHA256SUMS.gpg"), keyringPath, sha256SumsUrl);
      await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rename(tmp, dir);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }
  const fileName = path.posix.basename(new URL(url).pathname);
  const sha = parseSha256Sums(await fsp.readFile(sums, "utf8"), fileName);
  if (!sha) {
    throw new Error(`${sha256SumsUrl} (signature verified) lists no ${fileName}. Fix: check the image URL and its SHA256SUMS URL in infra/versions.ts UBUNTU_IMAGES.`);
  }
  return sha;
}

/** Holds `lockPath` (an exclusive file with our pid) while `fn` runs; waits for a live holder. */
async function withLock<T>(lockPath: string, fn: () => Promise<T>, waitMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fh = await fsp.open(lockPath, "wx", 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw err;
      }
      const holder = Number((await fsp.readFile(lockPath, "utf8").catch(() => "")).trim());
      let alive = false;
      if (Number.isInteger(holder) && holder > 0) {
        try {
          process.kill(holder, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        await fsp.rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`Waited ${Math.round(waitMs / 1000)} s for ${lockPath} (held by pid ${holder}, another download of the same image). Fix: wait for it, or remove the lock file if that process is gone.`);
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lockPath, { force: true });
  }
}

/** Checks the file is qcow2 without a backing file (`qemu-img info`); throws with the fix. */
export async function checkQcow2(file: string, url: string): Promise<void> {
  let result: { code: number; stdout: string; stderr: string };
  try {
    result = await run("qemu-img", ["info", "--output=json", file]);
  } catch (err) {
    rethrowMissingTool(err, "qemu-img", "qemu-utils");
  }
  if (result.code !== 0) {
    throw new Error(`qemu-img info ${file} failed (exit ${result.code}: ${tail(result.stderr)}); ${url} is not a usable disk image.`);
  }
  const info = JSON.parse(result.stdout) as { format?: string; "backing-filename"?: string };
  if (info.format !== "qcow2") {
    throw new Error(
      `${url} is not a qcow2 image: qemu-img info says format=${info.format ?? "unknown"}; expected qcow2. ` +
        `Fix: convert it (qemu-img convert -O qcow2 <in> <out>) and set cilium-lab:imageUrl and cilium-lab:imageSha256 to the result.`,
    );
  }
  if (info["backing-filename"] !== undefined) {
    throw new Error(`${url} is a qcow2 overlay with its own backing file (${info["backing-filename"]}); a base image must stand alone. Fix: qemu-img convert -O qcow2 it into a standalone image.`);
  }
}

/**
 * Makes the image available in the cache and returns where, with what it cost. The whole
 * procedure of the module comment; safe to run concurrently for the same image (file lock).
 */
export async function ensureBaseImage(
  inputs: BaseImageInputs,
  log: LineLogger = (line) => process.stderr.write(`${line}\n`),
): Promise<Pick<BaseImageOutputs, "path" | "sha256" | "sizeBytes" | "downloadedBytes">> {
  const custom = inputs.expectedSha256 !== "";
  const expected = custom ? inputs.expectedSha256.toLowerCase() : await signedImageSha256(inputs);
  const final = cachedImagePath(inputs.cacheDir, expected);
  await fsp.mkdir(path.dirname(final), { recursive: true, mode: 0o755 });
  return withLock(`${final}.lock`, async () => {
    const existing = await fsp.stat(final).catch(() => undefined);
    if (existing) {
      log(`[cilium-lab] base image ${inputs.image}: cached at ${final} (0 bytes downloaded)`);
      return { path: final, sha256: expected, sizeBytes: existing.size, downloadedBytes: 0 };
    }
    const partial = `${final}.partial`;
    const hint = custom
      ? "Fix: check cilium-lab:imageUrl."
      : "The release may be EOL and moved; set cilium-lab:image custom with cilium-lab:imageUrl/imageSha256 to a current image.";
    const got = await fetchResumable(inputs.url, partial, `base image ${inputs.image}`, log, hint);
    if (got.sha256 !== expected) {
      await fsp.rm(partial, { force: true });
      const fix = custom
        ? `Fix: if ${inputs.url} is the image you want, set cilium-lab:imageSha256 to its hash (sha256sum <file>); otherwise correct cilium-lab:imageUrl.`
        : `The file served differs from the one Ubuntu's signed SHA256SUMS lists; retry later or from another mirror.`;
      throw new Error(`sha256 mismatch for ${inputs.url}: got ${got.sha256}, expected ${expected}. The download was deleted. ${fix}`);
    }
    try {
      await checkQcow2(partial, inputs.url);
    } catch (err) {
      await fsp.rm(partial, { force: true });
      throw err;
    }
    await fsp.chmod(partial, 0o644);
    await fsp.rename(partial, final);
    return { path: final, sha256: expected, sizeBytes: got.size, downloadedBytes: got.fetched };
  });
}

/** Problems with the inputs (empty when valid). */
export function checkBaseImageInputs(news: Partial<BaseImageInputs>): pulumi.dynamic.CheckFailure[] {
  const failures: pulumi.dynamic.CheckFailure[] = [];
  const url = news.url ?? "";
  if (!/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S*)$/.test(url)) {
    failures.push({ property: "url", reason: `url must be an https://, http://, file:// URL or an absolute path (got ${JSON.stringify(url)})` });
  }
  const sha = news.expectedSha256 ?? "";
  if (sha !== "" && !SHA256_RE.test(sha)) {
    failures.push({ property: "expectedSha256", reason: `expectedSha256 must be 64 lower-case hex digits or empty (got ${JSON.stringify(sha)})` });
  }
  if (sha === "" && !news.sha256SumsUrl) {
    failures.push({ property: "sha256SumsUrl", reason: "without expectedSha256 the image must come with a signed SHA256SUMS URL" });
  }
  if (sha === "" && !news.keyringPath) {
    failures.push({ property: "keyringPath", reason: "without expectedSha256 a keyring to verify SHA256SUMS.gpg with is required" });
  }
  if (!news.cacheDir || !path.isAbsolute(news.cacheDir)) {
    failures.push({ property: "cacheDir", reason: `cacheDir must be an absolute path (got ${JSON.stringify(news.cacheDir)})` });
  }
  return failures;
}

/** Inputs whose change points at a different file: replacement. */
const REPLACE_KEYS = ["url", "expectedSha256", "sha256SumsUrl", "cacheDir"] as const;
/** Inputs whose change is recorded by an update (same file). */
const UPDATE_KEYS = ["image", "keyringPath"] as const;

/** The provider; one module-level instance (pulumi.md §1.4). */
export const baseImageProvider: pulumi.dynamic.ResourceProvider<BaseImageInputs, BaseImageOutputs> = {
  check(_olds: BaseImageInputs, news: BaseImageInputs) {
    const failures = checkBaseImageInputs(news);
    return Promise.resolve(failures.length > 0 ? { failures } : { inputs: news });
  },

  diff(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    const replaces = REPLACE_KEYS.filter((k) => olds[k] !== news[k]);
    const updates = UPDATE_KEYS.filter((k) => olds[k] !== news[k]);
    // The cached file is never deleted, so create-before-delete is safe here.
    return Promise.resolve({ changes: replaces.length + updates.length > 0, replaces });
  },

  async create(inputs: BaseImageInputs) {
    const got = await ensureBaseImage(inputs);
    return { id: got.path, outs: { ...inputs, ...got } };
  },

  async update(_id: string, _olds: BaseImageOutputs, news: BaseImageInputs) {
    const got = await ensureBaseImage(news);
    return { outs: { ...news, ...got } };
  },

  async read(id: string, props?: BaseImageOutputs) {
    try {
      await fsp.stat(props?.path ?? id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        // Removed from the cache by hand: gone. The next `up` downloads it again.
        return { id: "" };
      }
      throw err;
    }
    return { id, props };
  },

  delete() {
    // Kept on purpose: the cache is shared by every stack on this host (see the module comment).
    return Promise.resolve();
  },
};

/** Arguments of {@link BaseImage}. */
export interface BaseImageArgs {
  /** The `image` config value, for messages. */
  readonly image: pulumi.Input<string>;
  /** Image URL or absolute path. */
  readonly url: pulumi.Input<string>;
  /** Custom: the hash to match. Ubuntu: empty (the signed SHA256SUMS decides). */
  readonly expectedSha256: pulumi.Input<string>;
  /** Ubuntu: the release's SHA256SUMS URL. Custom: empty. */
  readonly sha256SumsUrl: pulumi.Input<string>;
  /** Ubuntu: the keyring SHA256SUMS.gpg must verify with. Custom: empty. */
  readonly keyringPath: pulumi.Input<string>;
  /** The cache root ({@link cacheRoot}). */
  readonly cacheDir: pulumi.Input<string>;
}

/** A verified base image in the host cache (see the module comment). */
export class BaseImage extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  declare readonly downloadedBytes: pulumi.Output<number>;

  constructor(name: string, args: BaseImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      baseImageProvider,
      name,
      { path: undefined, sha256: undefined, sizeBytes: undefined, downloadedBytes: undefined, ...args },
      opts,
      "libvirt",
      "BaseImage",
    );
  }
}
