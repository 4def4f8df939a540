/**
 * Checking Ubuntu's signed `SHA256SUMS` with `gpgv`, by the signer's fingerprint.
 *
 * `gpgv`'s exit code alone is not the verdict: gpgv 2.2.40 exits 2 when a file carries one good
 * signature and one by a key the keyring lacks (captured here with `gpgv --status-fd 1`, see
 * test/nodes/fixtures/gpgv-status-two-signers.txt), so a second signer on `SHA256SUMS.gpg` would
 * break a check that fails on any non-zero exit. Instead the machine-readable status lines are read
 * (GnuPG doc/DETAILS, "VALIDSIG <fpr> <sig_creation_date> <sig-timestamp> <expire-timestamp>
 * <sig-version> <reserved> <pubkey-algo> <hash-algo> <sig-class> [ <primary-key-fpr> ]"): the
 * file verifies only when a `VALIDSIG` names the expected key, as signing key or primary key.
 * A valid signature by any other key of the keyring is not enough.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

import { notInstalled, run, tail } from "../exec";

/** Where Debian's and Ubuntu's `ubuntu-keyring` put the key that signs cloud-images.ubuntu.com. */
export const UBUNTU_CLOUDIMAGE_KEYRING = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/**
 * "UEC Image Automatic Signing Key" — the key whose detached signature `SHA256SUMS.gpg` carries
 * (documentation.ubuntu.com/security/software-integrity/image-verification; public gpgv logs of
 * cloud-images.ubuntu.com 2024–2026 show `D2EB 4462 6FDD C30B 513D 5BB7 1A5D 6C4C 7DB8 7C81`).
 */
export const UBUNTU_CLOUDIMAGE_FINGERPRINT = "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81";

/** A `[GNUPG:] VALIDSIG` line: the signing key and its primary key (equal for a primary-key signature). */
export interface ValidSig {
  readonly fingerprint: string;
  readonly primaryFingerprint: string;
}

/** Every `VALIDSIG` in gpgv's `--status-fd` output. */
export function parseValidSigs(status: string): ValidSig[] {
  const sigs: ValidSig[] = [];
  for (const line of status.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "[GNUPG:]" && fields[1] === "VALIDSIG" && fields[2] !== undefined) {
      const fingerprint = fields[2].toUpperCase();
      // The primary-key fingerprint is the last field when present (11 fields after the keyword).
      const primaryFingerprint =
        fields.length >= 12 ? (fields[fields.length - 1] ?? fingerprint).toUpperCase() : fingerprint;
      sigs.push({ fingerprint, primaryFingerprint });
    }
  }
  return sigs;
}

/** Upper-case hex without spaces: `d2eb 4462 …` → `D2EB4462…`. */
export function normalizeFingerprint(fpr: string): string {
  return fpr.replace(/\s+/g, "").toUpperCase();
}

/** Whether the status output holds a valid signature by `expected` (signing or primary key). */
export function signedBy(status: string, expected: string): boolean {
  const want = normalizeFingerprint(expected);
  return parseValidSigs(status).some((s) => s.fingerprint === want || s.primaryFingerprint === want);
}

const KEYRING_FIX =
  "Fix: install Ubuntu's keyring (Debian 13 or later, or bookworm-backports: apt-get install ubuntu-keyring; Ubuntu: apt-get install ubuntu-keyring), " +
  "or use cilium-lab:image custom with cilium-lab:imageUrl and cilium-lab:imageSha256.";

/**
 * Host check, cheap and synchronous (for preflight): `gpgv` on PATH and the keyring readable.
 * Returns one problem per line with its fix; empty when both are there.
 */
export function checkGpgvAndKeyring(
  keyringPath: string = UBUNTU_CLOUDIMAGE_KEYRING,
  pathEnv: string = process.env.PATH ?? "",
): string[] {
  const problems: string[] = [];
  const onPath = pathEnv.split(path.delimiter).some((dir) => {
    if (dir === "") {
      return false;
    }
    try {
      fs.accessSync(path.join(dir, "gpgv"), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!onPath) {
    problems.push(
      "`gpgv` is not on PATH: it checks the signature of Ubuntu's SHA256SUMS. Fix: apt-get install -y gpgv.",
    );
  }
  try {
    fs.accessSync(keyringPath, fs.constants.R_OK);
  } catch {
    problems.push(
      `The signing keyring ${keyringPath} is missing or unreadable. ` +
        (keyringPath === UBUNTU_CLOUDIMAGE_KEYRING
          ? KEYRING_FIX
          : "Fix: point keyringPath at an existing OpenPGP keyring."),
    );
  }
  return problems;
}

/**
 * Verifies that `sigPath` is a valid detached signature of `sumsPath` by the key `fingerprint`
 * (default Ubuntu's cloud-image key) found in `keyringPath`, with `gpgv` in a throwaway GNUPGHOME so
 * no user or system trust database is consulted. Throws with the fix when it does not verify;
 * `label` (a URL) names the file in messages.
 */
export async function verifySignedSums(
  sumsPath: string,
  sigPath: string,
  keyringPath: string = UBUNTU_CLOUDIMAGE_KEYRING,
  label: string = sumsPath,
  fingerprint: string = UBUNTU_CLOUDIMAGE_FINGERPRINT,
): Promise<void> {
  try {
    await fsp.access(keyringPath, fs.constants.R_OK);
  } catch (err) {
    const fix =
      keyringPath === UBUNTU_CLOUDIMAGE_KEYRING
        ? KEYRING_FIX
        : "Fix: point keyringPath at an existing OpenPGP keyring.";
    throw new Error(`Cannot verify ${label}: the signing keyring ${keyringPath} is missing or unreadable. ${fix}`, {
      cause: err,
    });
  }
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), "cilium-lab-gpgv-"));
  try {
    const result = await run("gpgv", ["--status-fd", "1", "--keyring", path.resolve(keyringPath), sigPath, sumsPath], {
      env: { GNUPGHOME: home },
    });
    if (result.code === 127) {
      throw notInstalled("gpgv", "gpgv", result);
    }
    if (!signedBy(result.stdout, fingerprint)) {
      const others = parseValidSigs(result.stdout).map((s) => s.fingerprint);
      const found =
        others.length > 0
          ? `valid signatures only by ${others.join(", ")}`
          : `gpgv exit ${result.code}: ${tail(result.stderr, 5)}`;
      throw new Error(
        `The signature of ${label} does not verify as key ${normalizeFingerprint(fingerprint)} from ${keyringPath} (${found}). ` +
          "The file may have been tampered with or signed by another key; nothing was downloaded from this source. " +
          "Fix: retry later or from another mirror; never skip the check.",
      );
    }
  } finally {
    await fsp.rm(home, { recursive: true, force: true });
  }
}
