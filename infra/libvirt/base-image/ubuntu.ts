/**
 * An Ubuntu cloud image: the serial (the pin, or for an EOL release the newest in Ubuntu's index),
 * then per source `SHA256SUMS` with its gpgv-verified signature, cached per serial, and the image
 * whose hash that file lists. The first source that delivers all three verified wins.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

import { cachedImagePath, fetchInto, type EnsuredImage } from "./cache";
import { checkGpgvAndKeyring, verifySignedSums } from "./gpgv";
import type { BaseImageInputs } from "./inputs";
import {
  allSourcesFailed,
  fetchSmall,
  indexUrls,
  networkReason,
  serialSources,
  type LineLogger,
  type SourceFailure,
} from "./sources";
import { pickSerial, productId, productSerials } from "./simplestreams";

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

/**
 * An Ubuntu image: resolve the serial, then per root (in order) SHA256SUMS + signature + image, all
 * from that root; the first root that delivers all three verified wins. Every failure is listed.
 */
export async function ensureUbuntuImage(inputs: BaseImageInputs, log: LineLogger): Promise<EnsuredImage> {
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
