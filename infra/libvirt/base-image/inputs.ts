/**
 * What a {@link BaseImage} is given and what it records, the check of its inputs, and the image's
 * identity (the one thing whose change makes a new image).
 */
import * as path from "node:path";

import type * as pulumi from "@pulumi/pulumi";

import type { Failure } from "../../provider";

/**
 * Arguments of {@link BaseImage}. Custom images set `url` and `expectedSha256`; Ubuntu images set
 * the release fields and leave those two empty.
 */
export interface BaseImageArgs {
  /** The `image` config value (`ubuntu-24.04`, `custom`…), for messages. */
  readonly image: pulumi.Input<string>;
  /** Custom: `https://`, `http://`, `file://` URL or absolute host path of the qcow2 image. Ubuntu: empty. */
  readonly url: pulumi.Input<string>;
  /** Custom: the SHA-256 to match (lower-case hex). Ubuntu: empty. */
  readonly expectedSha256: pulumi.Input<string>;
  /** Ubuntu: keyring holding the key that must have signed `SHA256SUMS`. Custom: empty. */
  readonly keyringPath: pulumi.Input<string>;
  /** The cache root (see {@link cacheRoot}); images go to `<cacheDir>/images`. */
  readonly cacheDir: pulumi.Input<string>;
  /** Ubuntu: the release (`24.04`), the image's identity. Custom: empty. */
  readonly release: pulumi.Input<string>;
  /** Ubuntu: the codename (`noble`). */
  readonly codename: pulumi.Input<string>;
  /** Ubuntu: the pinned serial (`20240423`); the floor when `resolveLatest`. */
  readonly pinnedSerial: pulumi.Input<string>;
  /** Ubuntu: the image file in the serial's directory. */
  readonly fileName: pulumi.Input<string>;
  /** Ubuntu: roots to try in order (UBUNTU_IMAGE_ROOTS). */
  readonly roots: pulumi.Input<readonly pulumi.Input<string>[]>;
  /** Ubuntu: read the simplestreams index for a later serial (EOL releases). */
  readonly resolveLatest: pulumi.Input<boolean>;
  /** Ubuntu: fingerprint of the key whose `VALIDSIG` SHA256SUMS needs (default Ubuntu's). */
  readonly signingKeyFingerprint: pulumi.Input<string>;
  /** Only in states written by commit bf709f1 (then the Ubuntu SHA256SUMS URL); ignored. */
  readonly sha256SumsUrl?: string;
}

/** The provider's inputs. */
export type BaseImageInputs = pulumi.Unwrap<BaseImageArgs>;

/** What the provider records (its create resolves these once; later `up`s keep them). */
export interface BaseImageOutputs extends BaseImageInputs {
  /** Only in states written by commit bf709f1 (then the Ubuntu SHA256SUMS URL); ignored. */
  readonly sha256SumsUrl?: string;
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

/** Problems with the inputs (empty when valid). */
export function checkBaseImageInputs(news: Partial<BaseImageInputs>): Failure[] {
  const failures: Failure[] = [];
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
