// Ubuntu's signed SHA256SUMS: throwaway GnuPG keys (gnupg) that sign a SHA256SUMS the way Ubuntu's
// cloud-image key does, gpgv checking it by fingerprint (its status lines, not its exit code), the
// host check, an Ubuntu image verified through its signed SHA256SUMS, and parsing SHA256SUMS.
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

import {
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  cachedImagePath,
  ensureBaseImage,
  parseSha256Sums,
  verifySignedSums,
} from "../../infra/libvirt/base-image";
import { checkGpgvAndKeyring, parseValidSigs, signedBy } from "../../infra/libvirt/base-image/gpgv";
import {
  inTmp,
  keyringOf,
  serve,
  signedRelease,
  throwawayKey,
  ubuntuInputs,
  type ThrowawayKey,
} from "./image-test-support";

const FIXTURES = path.join(__dirname, "fixtures");

// ---- gpgv's status lines ---------------------------------------------------------------------------
// fixtures/gpgv-status-two-signers.txt: `gpgv --status-fd 1 --keyring good.gpg two.gpg SHA256SUMS`
// captured on this CI host (gpgv 2.2.40, 2026-12-03) for a signature by two ed25519 keys of which
// the keyring holds one; gpgv exited 2.

test("the captured two-signer status has one VALIDSIG, and only its key passes", async (t) => {
  const status = await fs.readFile(path.join(FIXTURES, "gpgv-status-two-signers.txt"), "utf8");
  t.deepEqual(parseValidSigs(status), [
    {
      fingerprint: "842554C93761120594310379A8C642DA4818BDAE",
      primaryFingerprint: "842554C93761120594310379A8C642DA4818BDAE",
    },
  ]);
  t.true(signedBy(status, "8425 54C9 3761 1205 9431  0379 A8C6 42DA 4818 BDAE"));
  t.false(signedBy(status, "8191B86B6BEF36EAD4E3CB84ACA1A0EA85ED3BCE"), "the ERRSIG signer");
  t.false(signedBy(status, "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81"));
});

const validsigTable: {
  title: string;
  line: string;
  expected: { fingerprint: string; primaryFingerprint: string }[];
}[] = [
  {
    title: "a subkey signature names the primary key last",
    line: "[GNUPG:] VALIDSIG 1111111111111111111111111111111111111111 2024-04-23 1713830400 0 4 0 1 10 00 D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
    expected: [
      {
        fingerprint: "1111111111111111111111111111111111111111",
        primaryFingerprint: "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
      },
    ],
  },
  {
    title: "GOODSIG alone is not a VALIDSIG",
    line: "[GNUPG:] GOODSIG 1A5D6C4C7DB87C81 UEC Image Automatic Signing Key <cdimage@ubuntu.com>",
    expected: [],
  },
  {
    title: "a VALIDSIG in the text of another line does not count",
    line: "gpgv: [GNUPG:] VALIDSIG D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
    expected: [],
  },
];
for (const row of validsigTable) {
  test(`status parsing: ${row.title}`, (t) => {
    t.deepEqual(parseValidSigs(row.line), row.expected);
  });
}

/**
 * Runs `fn` in a fresh temp directory with two throwaway keys named `first` and `second` (stopped
 * afterwards) and an unsigned one-line SHA256SUMS for x.img.
 */
async function withTwoKeys(
  prefix: string,
  first: string,
  second: string,
  fn: (first: ThrowawayKey, second: ThrowawayKey, sums: string, dir: string) => Promise<void>,
): Promise<void> {
  await inTmp(prefix, async (dir, closing) => {
    const keys = [await throwawayKey(dir, first), await throwawayKey(dir, second)] as const;
    closing(...keys);
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *x.img\n`);
    await fn(...keys, sums, dir);
  });
}

/** gpgv's own exit code for a signature (its GNUPGHOME: a key's, never the user's). */
async function gpgvExit(home: string, keyring: string, sig: string, file: string): Promise<number> {
  try {
    await promisify(execFile)("gpgv", ["--keyring", keyring, sig, file], { env: { ...process.env, GNUPGHOME: home } });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

test("a SHA256SUMS signed by the expected key and by an unknown one passes, though gpgv exits 2", async (t) => {
  await withTwoKeys("gpg2", "good", "unknown", async (good, other, sums) => {
    await good.sign(sums, `${sums}.gpg`, [other]);
    t.is(await gpgvExit(good.home, good.keyring, `${sums}.gpg`, sums), 2, "gpgv's verdict alone would refuse it");
    await t.notThrowsAsync(verifySignedSums(sums, `${sums}.gpg`, good.keyring, sums, good.fingerprint));
  });
});

test("a valid signature by another key of the keyring is refused", async (t) => {
  await withTwoKeys("gpg2", "expected", "other", async (expected, other, sums, dir) => {
    const both = await keyringOf(dir, "both", [expected, other]);
    await other.sign(sums);
    t.is(await gpgvExit(expected.home, both, `${sums}.gpg`, sums), 0, "gpgv alone accepts it");
    const err = await t.throwsAsync(
      verifySignedSums(sums, `${sums}.gpg`, both, "https://mirror.invalid/SHA256SUMS", expected.fingerprint),
    );
    t.is(
      err?.message,
      `The signature of https://mirror.invalid/SHA256SUMS does not verify as key ${expected.fingerprint} from ${both} (valid signatures only by ${other.fingerprint}). ` +
        "The file may have been tampered with or signed by another key; nothing was downloaded from this source. Fix: retry later or from another mirror; never skip the check.",
    );
  });
});

test("the host check names a missing keyring and a missing gpgv with their fixes, and is empty when both are there", async (t) => {
  await inTmp("hostcheck", async (dir) => {
    const keyring = path.join(dir, "k.gpg");
    await fs.writeFile(keyring, "");
    t.deepEqual(checkGpgvAndKeyring(keyring), []);
    t.deepEqual(checkGpgvAndKeyring(keyring, "/nonexistent-bin"), [
      "`gpgv` is not on PATH: it checks the signature of Ubuntu's SHA256SUMS. Fix: apt-get install -y gpgv.",
    ]);
    t.deepEqual(checkGpgvAndKeyring(path.join(dir, "missing.gpg")), [
      `The signing keyring ${path.join(dir, "missing.gpg")} is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.`,
    ]);
  });
});

// ---- Ubuntu: signed SHA256SUMS ---------------------------------------------------------------------

test("gpgv accepts a SHA256SUMS signed by the expected key and refuses a tampered one", async (t) => {
  await inTmp("gpg", async (dir, closing) => {
    const key = await throwawayKey(dir, "signer");
    closing(key);
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    await key.sign(sums);
    await t.notThrowsAsync(verifySignedSums(sums, `${sums}.gpg`, key.keyring, sums, key.fingerprint));

    await fs.writeFile(sums, `${"b".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    const err = await t.throwsAsync(
      verifySignedSums(sums, `${sums}.gpg`, key.keyring, "https://mirror.invalid/SHA256SUMS", key.fingerprint),
    );
    t.regex(
      err?.message ?? "",
      new RegExp(
        `^The signature of https://mirror\\.invalid/SHA256SUMS does not verify as key ${key.fingerprint} from ${key.keyring} \\(gpgv exit 1: .*BAD signature from "cilium-lab signer <signer@invalid>"\\)\\. ` +
          "The file may have been tampered with or signed by another key; nothing was downloaded from this source\\. Fix: retry later or from another mirror; never skip the check\\.$",
      ),
    );
  });
});

test("gpgv refuses a SHA256SUMS signed by a key that is not in the keyring", async (t) => {
  await withTwoKeys("gpg", "trusted", "other", async (trusted, other, sums) => {
    await other.sign(sums);
    const err = await t.throwsAsync(verifySignedSums(sums, `${sums}.gpg`, trusted.keyring, sums, trusted.fingerprint));
    t.regex(err?.message ?? "", /\(gpgv exit 2: .*No public key\)/);
  });
});

test("a missing keyring names the fix", async (t) => {
  const err = await t.throwsAsync(
    verifySignedSums(
      "/nonexistent/SHA256SUMS",
      "/nonexistent/SHA256SUMS.gpg",
      "/nonexistent/ubuntu-cloudimage-keyring.gpg",
    ),
  );
  t.is(
    err?.message,
    "Cannot verify /nonexistent/SHA256SUMS: the signing keyring /nonexistent/ubuntu-cloudimage-keyring.gpg is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.",
  );
  t.is(UBUNTU_CLOUDIMAGE_KEYRING, "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg");
});

test("an Ubuntu image is verified through its signed SHA256SUMS, records serial and source, and a second stack needs no network", async (t) => {
  await inTmp("ubuntu", async (dir, closing) => {
    const key = await throwawayKey(dir, "cloudimage");
    const { routes, ...img } = await signedRelease(dir, key, "/releases/", {
      mib: 2,
      otherLines: `${"c".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.tar.gz\n`,
    });
    const server = await serve(routes);
    closing(server, key);
    const cache = path.join(dir, "cache");
    const inputs = ubuntuInputs([`${server.base}/releases/`], key, cache);
    const source = `${server.base}/releases/noble/release-20240423/`;
    const first = await ensureBaseImage(inputs, () => undefined);
    t.deepEqual(first, {
      path: cachedImagePath(cache, img.sha),
      sha256: img.sha,
      sizeBytes: img.size,
      downloadedBytes: img.size,
      serial: "20240423",
      source,
    });
    t.deepEqual(server.requests.sort(), [
      "/releases/noble/release-20240423/SHA256SUMS",
      "/releases/noble/release-20240423/SHA256SUMS.gpg",
      "/releases/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img",
    ]);
    await server.close();
    // The server is gone: the cached, re-verified SHA256SUMS and the cached image suffice.
    const second = await ensureBaseImage(inputs, () => undefined);
    t.deepEqual(second, { ...first, downloadedBytes: 0 });
  });
});

test("a tampered SHA256SUMS stops that source before any image byte is fetched from it, and the error lists it", async (t) => {
  await inTmp("ubuntu", async (dir, closing) => {
    const key = await throwawayKey(dir, "cloudimage");
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"d".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    await key.sign(sums);
    const d = "/releases/noble/release-20240423/";
    const server = await serve({
      [`${d}ubuntu-24.04-server-cloudimg-amd64.img`]: { body: Buffer.from("not reached") },
      [`${d}SHA256SUMS`]: { body: Buffer.from(`${"e".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`) },
      [`${d}SHA256SUMS.gpg`]: { body: await fs.readFile(`${sums}.gpg`) },
    });
    closing(server, key);
    const cache = path.join(dir, "cache");
    const inputs = ubuntuInputs([`${server.base}/releases/`], key, cache);
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    t.regex(
      err?.message ?? "",
      new RegExp(
        `^Base image ubuntu-24\\.04 \\(Ubuntu 24\\.04 serial 20240423, ubuntu-24\\.04-server-cloudimg-amd64\\.img\\): every source failed:\\n` +
          `  1\\. ${server.base}${d}: The signature of ${server.base}${d}SHA256SUMS does not verify as key ${key.fingerprint} from ${key.keyring} \\(gpgv exit 1: .*BAD signature`,
      ),
    );
    t.false(server.requests.includes(`${d}ubuntu-24.04-server-cloudimg-amd64.img`));
    t.deepEqual(await fs.readdir(cache), [], "no SHA256SUMS cached, no image");
  });
});

test("an Ubuntu image on a host without its keyring fails before any download, with the fix", async (t) => {
  await inTmp("ubuntu", async (dir, closing) => {
    const server = await serve({});
    closing(server);
    const inputs = ubuntuInputs(
      [`${server.base}/releases/`],
      { keyring: "/nonexistent/ubuntu-cloudimage-keyring.gpg", fingerprint: UBUNTU_CLOUDIMAGE_FINGERPRINT },
      path.join(dir, "cache"),
    );
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    t.is(
      err?.message,
      "Base image ubuntu-24.04: Ubuntu's signed SHA256SUMS cannot be checked on this host. The signing keyring /nonexistent/ubuntu-cloudimage-keyring.gpg is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.",
    );
    t.deepEqual(server.requests, []);
  });
});

const sumsTable: { title: string; text: string; file: string; expected: string | undefined }[] = [
  { title: "binary-mode line", text: `${"A".repeat(64)} *x.img\n`, file: "x.img", expected: "a".repeat(64) },
  { title: "text-mode line", text: `${"b".repeat(64)}  x.img\n`, file: "x.img", expected: "b".repeat(64) },
  { title: "other files only", text: `${"b".repeat(64)}  y.img\n`, file: "x.img", expected: undefined },
  { title: "a name that only ends the same", text: `${"b".repeat(64)}  ax.img\n`, file: "x.img", expected: undefined },
];
for (const row of sumsTable) {
  test(`SHA256SUMS parsing: ${row.title}`, (t) => {
    t.is(parseSha256Sums(row.text, row.file), row.expected);
  });
}
