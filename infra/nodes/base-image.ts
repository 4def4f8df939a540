/**
 * `BaseImage`: the chosen cloud image, downloaded once per host into a cache shared by every stack,
 * verified before anything boots from it.
 *
 * - Cache: `${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-~/.cache}/cilium-lab}/images/<sha256>.qcow2`.
 *   Named by content, so a second stack (or a second `up` after `destroy`) finds it and downloads
 *   0 bytes. A file gets that name only by a rename after its hash matched, so a name is a proof.
 * - Ubuntu images: a pinned serial (infra/versions.ts UBUNTU_IMAGES; for an EOL release the final
 *   serial from Ubuntu's index, infra/nodes/simplestreams.ts, never older than the pin), fetched from
 *   the roots in order (image-sources.ts): from one root at a time `SHA256SUMS`, its detached
 *   signature `SHA256SUMS.gpg` — which must verify with `gpgv` as Ubuntu's cloud-image key
 *   (gpgv.ts; keyring `/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg` from Debian's/Ubuntu's
 *   `ubuntu-keyring`) — and the image, whose hash must be the one SHA256SUMS lists. A root that fails
 *   any step is skipped; when all fail, the error names each with its reason. The verified pair is
 *   cached too, so a second stack needs no network. Plain http is acceptable because of these
 *   proofs. (documentation.ubuntu.com/security/software-integrity/image-verification)
 * - Custom images (`https://`, `http://`, `file://` or an absolute path): the hash is `imageSha256`.
 * - Resolved once: the serial, the source and the SHA-256 are outputs, kept by every later `up`
 *   (see `diff`); only another release, another custom hash or another cache dir makes a new one.
 * - Download: progress on stderr at most every 25 %, into `<sha256>.qcow2.partial`, resumed with a
 *   `Range` request after an interruption; a hash mismatch deletes the partial file. Then
 *   `qemu-img info` must say qcow2 without a backing file (reliability rule: verify base images).
 * - `delete` keeps the cached file on purpose: other stacks on this host may use it, and the next
 *   `up` would download it again. Remove the cache by hand: `rm -rf <cache>/images`.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";

import { checkGpgvAndKeyring, rethrowMissingTool, runTool, tail, verifySignedSums } from "./gpgv";
import {
  allSourcesFailed,
  fetchResumable,
  fetchSmall,
  indexUrls,
  networkReason,
  serialSources,
  type LineLogger,
  type SourceFailure,
} from "./image-sources";
import { pickSerial, productId, productSerials } from "./simplestreams";

export {
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  checkGpgvAndKeyring,
  verifySignedSums,
} from "./gpgv";
export { fetchResumable, type LineLogger } from "./image-sources";

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

/**
 * The provider's inputs. Custom images set `url` and `expectedSha256`; Ubuntu images set the
 * release fields and leave those two empty.
 */
export interface BaseImageInputs {
  /** The `image` config value (`ubuntu-24.04`, `custom`…), for messages. */
  readonly image: string;
  /** Custom: `https://`, `http://`, `file://` URL or absolute host path of the qcow2 image. Ubuntu: empty. */
  readonly url: string;
  /** Custom: the SHA-256 to match (lower-case hex). Ubuntu: empty. */
  readonly expectedSha256: string;
  /** Ubuntu: keyring holding the key that must have signed `SHA256SUMS`. Custom: empty. */
  readonly keyringPath: string;
  /** The cache root (see {@link cacheRoot}); images go to `<cacheDir>/images`. */
  readonly cacheDir: string;
  /** Ubuntu: the release (`24.04`), the image's identity. Custom: empty. */
  readonly release: string;
  /** Ubuntu: the codename (`noble`). */
  readonly codename: string;
  /** Ubuntu: the pinned serial (`20240423`); the floor when `resolveLatest`. */
  readonly pinnedSerial: string;
  /** Ubuntu: the image file in the serial's directory. */
  readonly fileName: string;
  /** Ubuntu: roots to try in order (UBUNTU_IMAGE_ROOTS). */
  readonly roots: readonly string[];
  /** Ubuntu: read the simplestreams index for a later serial (EOL releases). */
  readonly resolveLatest: boolean;
  /** Ubuntu: fingerprint of the key whose `VALIDSIG` SHA256SUMS needs (default Ubuntu's). */
  readonly signingKeyFingerprint: string;
  /** Only in states written by commit bf709f1 (then the Ubuntu SHA256SUMS URL); ignored. */
  readonly sha256SumsUrl?: string;
}

/** What the provider records (its create resolves these once; later `up`s keep them). */
export interface BaseImageOutputs extends BaseImageInputs {
  /** The verified image in the cache: `<cacheDir>/images/<sha256>.qcow2`. Also the resource ID. */
  readonly path: string;
  /** The verified SHA-256. */
  readonly sha256: string;
  readonly sizeBytes: number;
  /** Bytes fetched by the create that made this state: 0 when the cache already had it. */
  readonly downloadedBytes: number;
  /** Ubuntu: the serial actually used. Custom: empty. Absent in states from bf709f1 (see {@link imageFacts}). */
  readonly serial?: string;
  /** Where the image came from: the serial's directory URL (Ubuntu) or the URL/path (custom). Absent before. */
  readonly source?: string;
}

/** Serial, source and hash of a state, also of one written by bf709f1 (derived from its `url`, no network). */
export function imageFacts(
  outs: Partial<Pick<BaseImageOutputs, "url" | "expectedSha256" | "serial" | "source" | "sha256">>,
): { serial: string; source: string; sha256: string } {
  const url = outs.url ?? "";
  const custom = (outs.expectedSha256 ?? "") !== "";
  const legacySerial = custom ? "" : (/\/release-([^/]+)\/[^/]*$/.exec(url)?.[1] ?? "");
  const legacySource = custom ? url : url.replace(/[^/]*$/, "");
  return { serial: outs.serial ?? legacySerial, source: outs.source ?? legacySource, sha256: outs.sha256 ?? "" };
}

const SHA256_RE = /^[0-9a-f]{64}$/;

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
 * The serial to fetch: the pin, or with `resolveLatest` the newest serial of the release in the
 * first index (root order) that lists the release — never older than the pin. An index that cannot
 * be read leaves the pin, said in a log line.
 */
export async function resolveSerial(
  inputs: Pick<BaseImageInputs, "image" | "release" | "pinnedSerial" | "fileName" | "roots" | "resolveLatest">,
  log: LineLogger,
): Promise<string> {
  const { image, release, pinnedSerial, fileName, roots } = inputs;
  if (!inputs.resolveLatest) {
    return pinnedSerial;
  }
  const product = productId(release);
  const misses: string[] = [];
  for (const url of indexUrls(roots)) {
    let serials: string[] | undefined;
    try {
      serials = productSerials((await fetchSmall(url, 64 * 1048576)).toString("utf8"), product, fileName);
    } catch (err) {
      misses.push(`${url}: ${(err as Error).message}`);
      continue;
    }
    if (serials === undefined || serials.length === 0) {
      misses.push(`${url}: no ${product} with ${fileName}`);
      continue;
    }
    const serial = pickSerial(serials, pinnedSerial);
    log(
      `[cilium-lab] base image ${image}: serial ${serial} (newest of ${serials.length} in ${url}; pinned ${pinnedSerial})`,
    );
    return serial;
  }
  log(
    `[cilium-lab] base image ${image}: Ubuntu's image index could not be read (${misses.join("; ")}); using the pinned serial ${pinnedSerial}`,
  );
  return pinnedSerial;
}

/** The cached, verified SHA256SUMS pair of one serial: `<cacheDir>/sha256sums/<codename>-release-<serial>/`. */
function sumsCacheDir(cacheDir: string, codename: string, serial: string): string {
  return path.join(cacheDir, "sha256sums", `${codename}-release-${serial}`);
}

/** The hash a cached pair lists for the image (verified again, locally), with the source it came from. */
async function cachedSums(dir: string, inputs: BaseImageInputs): Promise<{ sha: string; source: string } | undefined> {
  const sums = path.join(dir, "SHA256SUMS");
  const sig = path.join(dir, "SHA256SUMS.gpg");
  if (!fs.existsSync(sums) || !fs.existsSync(sig)) {
    return undefined;
  }
  try {
    await verifySignedSums(sums, sig, inputs.keyringPath, sums, inputs.signingKeyFingerprint);
    const sha = parseSha256Sums(await fsp.readFile(sums, "utf8"), inputs.fileName);
    const source = (await fsp.readFile(path.join(dir, "source"), "utf8")).trim();
    return sha ? { sha, source } : undefined;
  } catch {
    // No longer verifies (keyring changed, file damaged): fetch it again.
    await fsp.rm(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** Downloads SHA256SUMS + signature from `source`, verifies, caches the pair; the image's hash. */
async function signedSumsFrom(source: string, dir: string, inputs: BaseImageInputs): Promise<string> {
  const sumsUrl = `${source}SHA256SUMS`;
  const fetchOne = async (url: string): Promise<Buffer> => {
    try {
      return await fetchSmall(url);
    } catch (err) {
      throw new Error(`${url}: ${(err as Error).message}`, { cause: err });
    }
  };
  // One after the other, so the reason a source failed is always the first file's.
  const sumsBytes = await fetchOne(sumsUrl);
  const sigBytes = await fetchOne(`${sumsUrl}.gpg`);
  await fsp.mkdir(inputs.cacheDir, { recursive: true, mode: 0o755 });
  const tmp = await fsp.mkdtemp(path.join(inputs.cacheDir, ".sha256sums-"));
  try {
    await fsp.writeFile(path.join(tmp, "SHA256SUMS"), sumsBytes, { mode: 0o644 });
    await fsp.writeFile(path.join(tmp, "SHA256SUMS.gpg"), sigBytes, { mode: 0o644 });
    await fsp.writeFile(path.join(tmp, "source"), `${source}\n`, { mode: 0o644 });
    await verifySignedSums(
      path.join(tmp, "SHA256SUMS"),
      path.join(tmp, "SHA256SUMS.gpg"),
      inputs.keyringPath,
      sumsUrl,
      inputs.signingKeyFingerprint,
    );
    const sha = parseSha256Sums(sumsBytes.toString("utf8"), inputs.fileName);
    if (!sha) {
      throw new Error(`${sumsUrl} (signature verified) lists no ${inputs.fileName}`);
    }
    await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(tmp, dir);
    return sha;
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
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
        throw new Error(
          `Waited ${Math.round(waitMs / 1000)} s for ${lockPath} (held by pid ${holder}, another download of the same image). Fix: wait for it, or remove the lock file if that process is gone.`,
        );
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
    result = await runTool("qemu-img", ["info", "--output=json", file]);
  } catch (err) {
    rethrowMissingTool(err, "qemu-img", "qemu-utils");
  }
  if (result.code !== 0) {
    throw new Error(
      `qemu-img info ${file} failed (exit ${result.code}: ${tail(result.stderr)}); ${url} is not a usable disk image.`,
    );
  }
  const info = JSON.parse(result.stdout) as { format?: string; "backing-filename"?: string };
  if (info.format !== "qcow2") {
    throw new Error(
      `${url} is not a qcow2 image: qemu-img info says format=${info.format ?? "unknown"}; expected qcow2. ` +
        `Fix: convert it (qemu-img convert -O qcow2 <in> <out>) and set cilium-lab:imageUrl and cilium-lab:imageSha256 to the result.`,
    );
  }
  if (info["backing-filename"] !== undefined) {
    throw new Error(
      `${url} is a qcow2 overlay with its own backing file (${info["backing-filename"]}); a base image must stand alone. Fix: qemu-img convert -O qcow2 it into a standalone image.`,
    );
  }
}

/** The part of the outputs a create produces. */
export type EnsuredImage = Pick<BaseImageOutputs, "path" | "sha256" | "sizeBytes" | "downloadedBytes"> & {
  readonly serial: string;
  readonly source: string;
};

/** Fetches `url` into the cache as `<expected>.qcow2` unless it is there; checks hash and format. */
async function fetchInto(
  inputs: Pick<BaseImageInputs, "image" | "cacheDir">,
  url: string,
  expected: string,
  custom: boolean,
  log: LineLogger,
): Promise<Pick<EnsuredImage, "path" | "sha256" | "sizeBytes" | "downloadedBytes">> {
  const final = cachedImagePath(inputs.cacheDir, expected);
  await fsp.mkdir(path.dirname(final), { recursive: true, mode: 0o755 });
  return withLock(`${final}.lock`, async () => {
    const existing = await fsp.stat(final).catch(() => undefined);
    if (existing) {
      log(`[cilium-lab] base image ${inputs.image}: cached at ${final} (0 bytes downloaded)`);
      return { path: final, sha256: expected, sizeBytes: existing.size, downloadedBytes: 0 };
    }
    const partial = `${final}.partial`;
    const hint = custom ? "Fix: check cilium-lab:imageUrl." : "";
    const got = await fetchResumable(url, partial, `base image ${inputs.image}`, log, hint);
    if (got.sha256 !== expected) {
      await fsp.rm(partial, { force: true });
      const fix = custom
        ? `Fix: if ${url} is the image you want, set cilium-lab:imageSha256 to its hash (sha256sum <file>); otherwise correct cilium-lab:imageUrl.`
        : `The file served differs from the one Ubuntu's signed SHA256SUMS lists; retry later or from another mirror.`;
      throw new Error(
        `sha256 mismatch for ${url}: got ${got.sha256}, expected ${expected}. The download was deleted. ${fix}`,
      );
    }
    try {
      await checkQcow2(partial, url);
    } catch (err) {
      await fsp.rm(partial, { force: true });
      throw err;
    }
    await fsp.chmod(partial, 0o644);
    await fsp.rename(partial, final);
    return { path: final, sha256: expected, sizeBytes: got.size, downloadedBytes: got.fetched };
  });
}

/**
 * An Ubuntu image: resolve the serial, then per root (in order) SHA256SUMS + signature + image, all
 * from that root; the first root that delivers all three verified wins. Every failure is listed.
 */
async function ensureUbuntuImage(inputs: BaseImageInputs, log: LineLogger): Promise<EnsuredImage> {
  const hostProblems = checkGpgvAndKeyring(inputs.keyringPath);
  if (hostProblems.length > 0) {
    // A host problem: no other source would help.
    throw new Error(
      `Base image ${inputs.image}: Ubuntu's signed SHA256SUMS cannot be checked on this host. ${hostProblems.join(" ")}`,
    );
  }
  const serial = await resolveSerial(inputs, log);
  const dir = sumsCacheDir(inputs.cacheDir, inputs.codename, serial);
  const cached = await cachedSums(dir, inputs);
  if (cached && fs.existsSync(cachedImagePath(inputs.cacheDir, cached.sha))) {
    const got = await fetchInto(inputs, `${cached.source}${inputs.fileName}`, cached.sha, false, log);
    return { ...got, serial, source: cached.source };
  }
  const failures: SourceFailure[] = [];
  for (const source of serialSources(inputs.roots, inputs.codename, serial)) {
    try {
      const sha = await signedSumsFrom(source, dir, inputs);
      const got = await fetchInto(inputs, `${source}${inputs.fileName}`, sha, false, log);
      return { ...got, serial, source };
    } catch (err) {
      failures.push({ source, reason: (err as Error).message });
      log(`[cilium-lab] base image ${inputs.image}: ${source} failed (${networkReason(err)}); trying the next source`);
    }
  }
  throw allSourcesFailed(
    `Base image ${inputs.image} (Ubuntu ${inputs.release} serial ${serial}, ${inputs.fileName})`,
    failures,
    "Fix: let this host reach one of these sources (the last one is plain http; integrity is proven by Ubuntu's signature and the image hash), " +
      "or set cilium-lab:image custom with cilium-lab:imageUrl (https://, http://, file:// or a path) and cilium-lab:imageSha256 of a copy you trust.",
  );
}

/**
 * Makes the image available in the cache and returns where, with what it cost and where it came
 * from. The whole procedure of the module comment; safe to run concurrently (file lock).
 */
export async function ensureBaseImage(
  inputs: EnsureInputs,
  log: LineLogger = (line) => process.stderr.write(`${line}\n`),
): Promise<EnsuredImage> {
  if (inputs.expectedSha256 !== "") {
    const got = await fetchInto(inputs, inputs.url, inputs.expectedSha256.toLowerCase(), true, log);
    return { ...got, serial: "", source: inputs.url };
  }
  const failures = checkBaseImageInputs(inputs);
  if (failures.length > 0) {
    throw new Error(`Base image ${inputs.image}: ${failures.map((f) => f.reason).join("; ")}`);
  }
  return ensureUbuntuImage(inputs as BaseImageInputs, log);
}

/** A custom image needs only these; an Ubuntu image all of {@link BaseImageInputs}. */
export type EnsureInputs = Pick<BaseImageInputs, "image" | "url" | "expectedSha256" | "cacheDir"> &
  Partial<BaseImageInputs>;

/** Problems with the inputs (empty when valid). */
export function checkBaseImageInputs(news: Partial<BaseImageInputs>): pulumi.dynamic.CheckFailure[] {
  const failures: pulumi.dynamic.CheckFailure[] = [];
  const sha = news.expectedSha256 ?? "";
  if (sha !== "" && !SHA256_RE.test(sha)) {
    failures.push({
      property: "expectedSha256",
      reason: `expectedSha256 must be 64 lower-case hex digits or empty (got ${JSON.stringify(sha)})`,
    });
  }
  if (sha !== "") {
    const url = news.url ?? "";
    if (!/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S*)$/.test(url)) {
      failures.push({
        property: "url",
        reason: `url must be an https://, http://, file:// URL or an absolute path (got ${JSON.stringify(url)})`,
      });
    }
  } else {
    if (!/^\d+\.\d+$/.test(news.release ?? "")) {
      failures.push({
        property: "release",
        reason: `without expectedSha256 the image must be an Ubuntu release like 24.04 (got ${JSON.stringify(news.release)})`,
      });
    }
    if (!/^[a-z]+$/.test(news.codename ?? "") || !/^\d{8}(\.\d+)?$/.test(news.pinnedSerial ?? "") || !news.fileName) {
      failures.push({
        property: "pinnedSerial",
        reason: "an Ubuntu image needs codename, pinnedSerial (yyyyMMdd) and fileName",
      });
    }
    if (!news.roots || news.roots.length === 0 || news.roots.some((r) => !/^https?:\/\/\S+\/$/.test(r))) {
      failures.push({
        property: "roots",
        reason: `roots must be http(s) URLs ending in / (got ${JSON.stringify(news.roots)})`,
      });
    }
    if (!news.keyringPath) {
      failures.push({
        property: "keyringPath",
        reason: "without expectedSha256 a keyring to verify SHA256SUMS.gpg with is required",
      });
    }
    if (!/^[0-9A-Fa-f]{40}$/.test(news.signingKeyFingerprint ?? "")) {
      failures.push({
        property: "signingKeyFingerprint",
        reason: `signingKeyFingerprint must be 40 hex digits (got ${JSON.stringify(news.signingKeyFingerprint)})`,
      });
    }
  }
  if (!news.cacheDir || !path.isAbsolute(news.cacheDir)) {
    failures.push({
      property: "cacheDir",
      reason: `cacheDir must be an absolute path (got ${JSON.stringify(news.cacheDir)})`,
    });
  }
  return failures;
}

/**
 * What the image is: a custom hash or an Ubuntu release. States from bf709f1 have no `release`:
 * their `image` (`ubuntu-24.04`) names it.
 */
export function imageIdentity(p: Partial<Pick<BaseImageInputs, "image" | "expectedSha256" | "release">>): string {
  const sha = (p.expectedSha256 ?? "").toLowerCase();
  if (sha !== "") {
    return `sha256:${sha}`;
  }
  return `ubuntu:${p.release || (/^ubuntu-(\d+\.\d+)$/.exec(p.image ?? "")?.[1] ?? p.image ?? "")}`;
}

/** The resolved outputs kept from `olds`, missing ones (bf709f1 states) derived without network. */
function keptOutputs(
  olds: BaseImageOutputs,
): Pick<BaseImageOutputs, "path" | "sha256" | "sizeBytes" | "downloadedBytes" | "serial" | "source"> {
  const facts = imageFacts(olds);
  return {
    path: olds.path,
    sha256: olds.sha256,
    sizeBytes: olds.sizeBytes,
    downloadedBytes: olds.downloadedBytes,
    serial: facts.serial,
    source: facts.source,
  };
}

/** The provider; one module-level instance (pulumi.md §1.4). */
export const baseImageProvider: pulumi.dynamic.ResourceProvider<BaseImageInputs, BaseImageOutputs> = {
  check(_olds: BaseImageInputs, news: BaseImageInputs) {
    const failures = checkBaseImageInputs(news);
    return Promise.resolve(failures.length > 0 ? { failures } : { inputs: news });
  },

  /**
   * Replace only for another image identity (Ubuntu release or custom hash) or another cache dir.
   * Anything else — a custom image's URL, the label, the keyring, the roots, a newer pin in
   * versions.ts, a state written by an older version of this provider — changes no file, and is not
   * even an update: an update's outputs are unknown in a preview (the dynamic provider host cannot
   * preview), which would show the base copy and every VM as replaced. The resolved serial, source
   * and hash are therefore never re-resolved by a later `up`.
   */
  diff(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    const replaces: string[] = [];
    if (imageIdentity(olds) !== imageIdentity(news)) {
      replaces.push(news.expectedSha256 !== "" ? "expectedSha256" : "release");
    }
    if (olds.cacheDir !== news.cacheDir) {
      replaces.push("cacheDir");
    }
    // The cached file is never deleted, so create-before-delete is safe here.
    return Promise.resolve({ changes: replaces.length > 0, replaces });
  },

  async create(inputs: BaseImageInputs) {
    const got = await ensureBaseImage(inputs);
    return { id: got.path, outs: { ...inputs, ...got } };
  },

  /** Not reached through `diff` (see there); keeps what was resolved, with the new inputs. */
  update(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    return Promise.resolve({ outs: { ...news, ...keptOutputs(olds) } });
  },

  /** Refresh: gone when removed from the cache by hand; completes a bf709f1 state's outputs. */
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
    return { id, props: props ? { ...props, ...keptOutputs(props) } : props };
  },

  delete() {
    // Kept on purpose: the cache is shared by every stack on this host (see the module comment).
    return Promise.resolve();
  },
};

/** Arguments of {@link BaseImage}: the inputs, each possibly an Output. */
export type BaseImageArgs = {
  readonly [K in keyof Omit<BaseImageInputs, "sha256SumsUrl">]: pulumi.Input<BaseImageInputs[K]>;
};

/** A verified base image in the host cache (see the module comment). */
export class BaseImage extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  declare readonly downloadedBytes: pulumi.Output<number>;
  /** The serial used (Ubuntu); undefined in states from bf709f1 — use {@link imageFacts}. */
  declare readonly serial: pulumi.Output<string | undefined>;
  /** Where the image came from; undefined in states from bf709f1 — use {@link imageFacts}. */
  declare readonly source: pulumi.Output<string | undefined>;
  declare readonly url: pulumi.Output<string>;
  declare readonly expectedSha256: pulumi.Output<string>;

  constructor(name: string, args: BaseImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      baseImageProvider,
      name,
      {
        path: undefined,
        sha256: undefined,
        sizeBytes: undefined,
        downloadedBytes: undefined,
        serial: undefined,
        source: undefined,
        ...args,
      },
      opts,
      "libvirt",
      "BaseImage",
    );
  }
}
