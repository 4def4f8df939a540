/**
 * `BaseImage`: the chosen cloud image, downloaded once per host into a cache shared by every stack,
 * verified before anything boots from it.
 *
 * - Cache: `${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-~/.cache}/cilium-lab}/images/<sha256>.qcow2`.
 *   Named by content, so a second stack (or a second `up` after `destroy`) finds it and downloads
 *   0 bytes. A file gets that name only by a rename after its hash matched, so a name is a proof.
 * - Ubuntu images: a pinned serial (infra/versions.ts UBUNTU_IMAGES; for an EOL release the final
 *   serial from Ubuntu's index, simplestreams.ts, never older than the pin), fetched from the roots
 *   in order (sources.ts; ubuntu.ts): from one root at a time `SHA256SUMS`, its detached
 *   signature `SHA256SUMS.gpg` — which must verify with `gpgv` as Ubuntu's cloud-image key
 *   (gpgv.ts; keyring `/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg` from Debian's/Ubuntu's
 *   `ubuntu-keyring`) — and the image, whose hash must be the one SHA256SUMS lists. A root that fails
 *   any step is skipped; when all fail, the error names each with its reason. The verified pair is
 *   cached too, so a second stack needs no network. Plain http is acceptable because of these
 *   proofs. (documentation.ubuntu.com/security/software-integrity/image-verification)
 * - Custom images (`https://`, `http://`, `file://` or an absolute path): the hash is `imageSha256`.
 * - Resolved once: the serial, the source and the SHA-256 are outputs, kept by every later `up`
 *   (see `compareIdentity`); only another release, another custom hash or another cache dir makes a new one.
 * - Download: progress on stderr at most every 25 %, into `<sha256>.qcow2.partial`, resumed with a
 *   `Range` request after an interruption; a hash mismatch deletes the partial file. Then
 *   `qemu-img info` must say qcow2 without a backing file (cache.ts): nothing boots from an image that
 *   was not verified.
 * - `delete` keeps the cached file on purpose: other stacks on this host may use it, and the next
 *   `up` would download it again. Remove the cache by hand: `rm -rf <cache>/images`.
 */
import * as fsp from "node:fs/promises";

import { defineProvider, dynamicResource, type Compared } from "../../provider";
import { fetchInto, type EnsuredImage } from "./cache";
import {
  checkBaseImageInputs,
  imageFacts,
  imageIdentity,
  type BaseImageArgs,
  type BaseImageInputs,
  type BaseImageOutputs,
} from "./inputs";
import type { LineLogger } from "./sources";
import { ensureUbuntuImage } from "./ubuntu";

export { cacheRoot, cachedImagePath, checkQcow2, type EnsuredImage } from "./cache";
export {
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  checkGpgvAndKeyring,
  verifySignedSums,
} from "./gpgv";
export * from "./inputs";
export { fetchResumable, type LineLogger } from "./sources";
export { parseSha256Sums, resolveSerial } from "./ubuntu";
export {
  BaseUploadError,
  BaseVolume,
  baseVolumeName,
  baseVolumeProvider,
  type BaseVolumeArgs,
  type BaseVolumeOutputs,
} from "./volume";

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

/**
 * What the diff compares: the image's identity (Ubuntu release or custom hash), under the input a
 * replacement names, and the cache dir. Anything else — a custom image's URL, the label, the
 * keyring, the roots, a newer pin in versions.ts, a state written by an older version of this
 * provider — changes no file, and is not even an update: an update's outputs are unknown in a
 * preview (the dynamic provider host cannot preview), which would show the base copy and every VM
 * as replaced. The resolved serial, source and hash are therefore never re-resolved by a later `up`.
 */
function compareIdentity(olds: Record<string, unknown>, news: Record<string, unknown>): Compared {
  const key = news.expectedSha256 !== "" ? "expectedSha256" : "release";
  return {
    olds: { [key]: imageIdentity(olds), cacheDir: olds.cacheDir },
    news: { [key]: imageIdentity(news), cacheDir: news.cacheDir },
  };
}

/** The provider; one module-level instance so its serialized text is cached. */
export const baseImageProvider = defineProvider<BaseImageInputs, BaseImageOutputs>({
  check: (news) => ({ inputs: news, failures: checkBaseImageInputs(news) }),
  normalize: compareIdentity,
  replaceKeys: ["expectedSha256", "release", "cacheDir"],
  updateKeys: [],
  // The cached file is never deleted, so create-before-delete is safe here.
  deleteBeforeReplace: false,

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
  // delete: the cached file is kept on purpose, the cache is shared by every stack on this host
  // (see the module comment).
});

/**
 * A verified base image in the host cache (see the module comment). Its `serial` and `source` are
 * undefined in states from bf709f1: use {@link imageFacts}.
 */
export const BaseImage = dynamicResource<BaseImageArgs, BaseImageOutputs>(
  baseImageProvider,
  { module: "libvirt", type: "BaseImage" },
  { outputs: ["path", "sha256", "sizeBytes", "downloadedBytes", "serial", "source"] },
);
export type BaseImage = InstanceType<typeof BaseImage>;
