// Where Ubuntu images come from (issue 13 §1): the ordered sources per image, the simplestreams
// index that picks an EOL release's final serial, gpgv's status lines, and local HTTP servers on
// 127.0.0.1 playing the upstream hosts — the release host's 302 to the archive over http, a 404, a
// reset, a refused connection — with real gpg keys generated here.
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

import { cachedImagePath, ensureBaseImage, resolveSerial, type BaseImageInputs } from "../../infra/libvirt/base-image";
import { checkGpgvAndKeyring, parseValidSigs, signedBy, verifySignedSums } from "../../infra/libvirt/base-image/gpgv";
import { indexUrls, serialSources } from "../../infra/libvirt/base-image/sources";
import { compareSerials, pickSerial, productSerials } from "../../infra/libvirt/base-image/simplestreams";
import { UBUNTU_IMAGE_ROOTS, UBUNTU_IMAGES } from "../../infra/versions";
import {
  keyringOf,
  makeQcow2,
  serve,
  throwawayKey,
  tmp,
  trustedLocalCert,
  type Route,
  type ThrowawayKey,
} from "./image-test-support";

const FIXTURES = path.join(__dirname, "fixtures");

// ---- the sources, per image ----------------------------------------------------------------------

const sourceTable: { image: keyof typeof UBUNTU_IMAGES; expected: string[] }[] = [
  {
    image: "ubuntu-23.04",
    expected: [
      "https://cloud-images.ubuntu.com/releases/lunar/release-20231005/",
      "https://cloud-images-archive.ubuntu.com/releases/lunar/release-20231005/",
      "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/lunar/release-20231005/",
      "http://cloud-images-archive.ubuntu.com/releases/lunar/release-20231005/",
    ],
  },
  {
    image: "ubuntu-24.04",
    expected: [
      "https://cloud-images.ubuntu.com/releases/noble/release-20240423/",
      "https://cloud-images-archive.ubuntu.com/releases/noble/release-20240423/",
      "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/noble/release-20240423/",
      "http://cloud-images-archive.ubuntu.com/releases/noble/release-20240423/",
    ],
  },
  {
    image: "ubuntu-26.04",
    expected: [
      "https://cloud-images.ubuntu.com/releases/resolute/release-20260927/",
      "https://cloud-images-archive.ubuntu.com/releases/resolute/release-20260927/",
      "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/resolute/release-20260927/",
      "http://cloud-images-archive.ubuntu.com/releases/resolute/release-20260927/",
    ],
  },
];
for (const row of sourceTable) {
  test(`${row.image} is tried at the pinned serial on the release host, the archive, its S3 bucket, then the archive over http`, (t) => {
    const pin = UBUNTU_IMAGES[row.image];
    t.deepEqual(serialSources(UBUNTU_IMAGE_ROOTS, pin.codename, pin.serial), row.expected);
  });
}

test("only the EOL release reads Ubuntu's index, from the same roots in the same order", (t) => {
  t.deepEqual(
    Object.entries(UBUNTU_IMAGES).map(([name, pin]) => [name, pin.resolveLatest]),
    [
      ["ubuntu-23.04", true],
      ["ubuntu-24.04", false],
      ["ubuntu-26.04", false],
    ],
  );
  t.deepEqual(indexUrls(UBUNTU_IMAGE_ROOTS), [
    "https://cloud-images.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json",
    "https://cloud-images-archive.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json",
    "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json",
    "http://cloud-images-archive.ubuntu.com/releases/streams/v1/com.ubuntu.cloud:released:download.json",
  ]);
});

// ---- the simplestreams index ---------------------------------------------------------------------
// fixtures/simplestreams-released-download.json has the real file's shape: top-level keys, product
// fields and the noble 20240605.1 disk1.img item are copied from a 2024-08-22 copy of Ubuntu's
// releases/streams/v1/com.ubuntu.cloud:released:download.json (github.com/ieroglyph-cnncl-test/mpss-lib
// test/longjson.hpp); the lunar serials are real (a public test of the `spin` tool lists the 14, the
// last 20231005), their hashes and sizes are placeholders, and 20240117 carries no disk1.img on purpose.

test("the index parser lists a release's serials that carry the disk image, oldest first", async (t) => {
  const text = await fs.readFile(path.join(FIXTURES, "simplestreams-released-download.json"), "utf8");
  t.deepEqual(productSerials(text, "com.ubuntu.cloud:server:23.04:amd64", "ubuntu-23.04-server-cloudimg-amd64.img"), [
    "20230420",
    "20231003",
    "20231005",
  ]);
  t.deepEqual(productSerials(text, "com.ubuntu.cloud:server:24.04:amd64", "ubuntu-24.04-server-cloudimg-amd64.img"), [
    "20240605.1",
  ]);
  t.is(
    productSerials(text, "com.ubuntu.cloud:server:22.04:amd64", "ubuntu-22.04-server-cloudimg-amd64.img"),
    undefined,
  );
  t.deepEqual(productSerials(text, "com.ubuntu.cloud:server:23.04:amd64", "other.img"), []);
  t.throws(() => productSerials("<html>", "x", "y"), { message: /^not JSON: / });
  t.throws(() => productSerials('{"format":"index:1.0"}', "x", "y"), {
    message: 'no "products" object (format "index:1.0")',
  });
});

const serialTable: { serials: string[]; pinned: string; expected: string }[] = [
  { serials: ["20230420", "20231003", "20231005"], pinned: "20231005", expected: "20231005" },
  { serials: ["20230420", "20231003", "20231005"], pinned: "20231003", expected: "20231005" },
  { serials: ["20230420", "20231003"], pinned: "20231005", expected: "20231005" },
  { serials: ["20240523", "20240523.1"], pinned: "20240423", expected: "20240523.1" },
  { serials: [], pinned: "20231005", expected: "20231005" },
];
for (const row of serialTable) {
  test(`pinned ${row.pinned} with ${JSON.stringify(row.serials)} in the index picks ${row.expected} (never older than the pin)`, (t) => {
    t.is(pickSerial(row.serials, row.pinned), row.expected);
  });
}

test("serials order by day, then by the .N suffix", (t) => {
  t.deepEqual(["20240523.1", "20231005", "20240523", "20240522.2"].sort(compareSerials), [
    "20231005",
    "20240522.2",
    "20240523",
    "20240523.1",
  ]);
  t.throws(() => compareSerials("release", "20231005"), {
    message: 'not an Ubuntu image serial: "release" (expected yyyyMMdd or yyyyMMdd.N)',
  });
});

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
  const dir = await tmp("gpg2");
  const good = await throwawayKey(dir, "good");
  const other = await throwawayKey(dir, "unknown");
  try {
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *x.img\n`);
    await good.sign(sums, `${sums}.gpg`, [other]);
    t.is(await gpgvExit(good.home, good.keyring, `${sums}.gpg`, sums), 2, "gpgv's verdict alone would refuse it");
    await t.notThrowsAsync(verifySignedSums(sums, `${sums}.gpg`, good.keyring, sums, good.fingerprint));
  } finally {
    await good.stop();
    await other.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a valid signature by another key of the keyring is refused", async (t) => {
  const dir = await tmp("gpg2");
  const expected = await throwawayKey(dir, "expected");
  const other = await throwawayKey(dir, "other");
  try {
    const both = await keyringOf(dir, "both", [expected, other]);
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *x.img\n`);
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
  } finally {
    await expected.stop();
    await other.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("the host check names a missing keyring and a missing gpgv with their fixes, and is empty when both are there", async (t) => {
  const dir = await tmp("hostcheck");
  try {
    const keyring = path.join(dir, "k.gpg");
    await fs.writeFile(keyring, "");
    t.deepEqual(checkGpgvAndKeyring(keyring), []);
    t.deepEqual(checkGpgvAndKeyring(keyring, "/nonexistent-bin"), [
      "`gpgv` is not on PATH: it checks the signature of Ubuntu's SHA256SUMS. Fix: apt-get install -y gpgv.",
    ]);
    t.deepEqual(checkGpgvAndKeyring(path.join(dir, "missing.gpg")), [
      `The signing keyring ${path.join(dir, "missing.gpg")} is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.`,
    ]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---- upstream behaviour, played on 127.0.0.1 ----------------------------------------------------

const D = "noble/release-20240423/";
const IMG = "ubuntu-24.04-server-cloudimg-amd64.img";

function inputs(
  roots: string[],
  key: ThrowawayKey,
  cacheDir: string,
  over: Partial<BaseImageInputs> = {},
): BaseImageInputs {
  return {
    image: "ubuntu-24.04",
    url: "",
    expectedSha256: "",
    keyringPath: key.keyring,
    cacheDir,
    release: "24.04",
    codename: "noble",
    pinnedSerial: "20240423",
    fileName: IMG,
    roots,
    resolveLatest: false,
    signingKeyFingerprint: key.fingerprint,
    ...over,
  };
}

/** `<prefix><codename>/release-<serial>/` with the image and its SHA256SUMS signed by `key`. */
async function release(
  dir: string,
  key: ThrowawayKey,
  prefix: string,
  rel = D,
  file = IMG,
): Promise<{ routes: Record<string, Route>; sha: string; size: number }> {
  const img = await makeQcow2(dir, `${rel.replace(/\W/g, "-")}${file}`, 1);
  const sums = path.join(dir, `SHA256SUMS-${rel.replace(/\W/g, "-")}`);
  await fs.writeFile(sums, `${img.sha} *${file}\n`);
  await key.sign(sums);
  return {
    sha: img.sha,
    size: img.size,
    routes: {
      [`${prefix}${rel}${file}`]: { body: await fs.readFile(img.file) },
      [`${prefix}${rel}SHA256SUMS`]: { body: await fs.readFile(sums) },
      [`${prefix}${rel}SHA256SUMS.gpg`]: { body: await fs.readFile(`${sums}.gpg`) },
    },
  };
}

test("the https release host's 302 to the archive over http is followed, and the image comes from there verified", async (t) => {
  const dir = await tmp("redirect");
  const key = await throwawayKey(dir, "cloudimage");
  const served = await release(dir, key, "/releases/");
  const archive = await serve(served.routes);
  const redirects = Object.fromEntries(Object.keys(served.routes).map((p) => [p, { redirect: `${archive.base}${p}` }]));
  const releaseHost = await serve(redirects, {}, await trustedLocalCert(dir));
  t.regex(releaseHost.base, /^https:/);
  t.regex(archive.base, /^http:/);
  try {
    const cache = path.join(dir, "cache");
    const lines: string[] = [];
    const got = await ensureBaseImage(
      inputs([`${releaseHost.base}/releases/`, `${archive.base}/releases/`], key, cache),
      (l) => lines.push(l),
    );
    t.deepEqual(got, {
      path: cachedImagePath(cache, served.sha),
      sha256: served.sha,
      sizeBytes: served.size,
      downloadedBytes: served.size,
      serial: "20240423",
      source: `${releaseHost.base}/releases/${D}`,
    });
    t.deepEqual(releaseHost.requests, [
      `/releases/${D}SHA256SUMS`,
      `/releases/${D}SHA256SUMS.gpg`,
      `/releases/${D}${IMG}`,
    ]);
    t.deepEqual(archive.requests, [`/releases/${D}SHA256SUMS`, `/releases/${D}SHA256SUMS.gpg`, `/releases/${D}${IMG}`]);
  } finally {
    await releaseHost.close();
    await archive.close();
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("when every source fails, the error lists each source with its reason, then the fix", async (t) => {
  const dir = await tmp("allfail");
  const key = await throwawayKey(dir, "cloudimage");
  const gone = await serve({});
  const releaseHost = await serve({}, { redirect: `${gone.base}/moved` });
  const notFound = await serve({});
  const resets = await serve({}, { reset: true });
  const refused = await serve({});
  await refused.close();
  try {
    const roots = [releaseHost, notFound, resets, refused].map((s) => `${s.base}/releases/`);
    const err = await t.throwsAsync(ensureBaseImage(inputs(roots, key, path.join(dir, "cache")), () => undefined));
    t.is(
      err?.message,
      "Base image ubuntu-24.04 (Ubuntu 24.04 serial 20240423, ubuntu-24.04-server-cloudimg-amd64.img): every source failed:\n" +
        `  1. ${roots[0]}${D}: ${roots[0]}${D}SHA256SUMS: HTTP 404 Not Found (redirected to ${gone.base}/moved)\n` +
        `  2. ${roots[1]}${D}: ${roots[1]}${D}SHA256SUMS: HTTP 404 Not Found\n` +
        `  3. ${roots[2]}${D}: ${roots[2]}${D}SHA256SUMS: ECONNRESET socket hang up\n` +
        `  4. ${roots[3]}${D}: ${roots[3]}${D}SHA256SUMS: ECONNREFUSED connect ECONNREFUSED ${new URL(refused.base).host}\n` +
        "Fix: let this host reach one of these sources (the last one is plain http; integrity is proven by Ubuntu's signature and the image hash), " +
        "or set cilium-lab:image custom with cilium-lab:imageUrl (https://, http://, file:// or a path) and cilium-lab:imageSha256 of a copy you trust.",
    );
  } finally {
    for (const s of [gone, releaseHost, notFound, resets]) {
      await s.close();
    }
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a source whose image is missing after a good SHA256SUMS is skipped: all three files come from the next one", async (t) => {
  const dir = await tmp("skip");
  const key = await throwawayKey(dir, "cloudimage");
  const served = await release(dir, key, "/releases/");
  const partial = await serve({
    [`/releases/${D}SHA256SUMS`]: served.routes[`/releases/${D}SHA256SUMS`] ?? {},
    [`/releases/${D}SHA256SUMS.gpg`]: served.routes[`/releases/${D}SHA256SUMS.gpg`] ?? {},
  });
  const full = await serve(served.routes);
  try {
    const cache = path.join(dir, "cache");
    const lines: string[] = [];
    const got = await ensureBaseImage(
      inputs([`${partial.base}/releases/`, `${full.base}/releases/`], key, cache),
      (l) => lines.push(l),
    );
    t.is(got.source, `${full.base}/releases/${D}`);
    t.deepEqual(full.requests, [`/releases/${D}SHA256SUMS`, `/releases/${D}SHA256SUMS.gpg`, `/releases/${D}${IMG}`]);
    t.true(
      lines.includes(
        `[cilium-lab] base image ubuntu-24.04: ${partial.base}/releases/${D} failed (Downloading base image ${partial.base}/releases/${D}${IMG} failed: HTTP 404 Not Found.); trying the next source`,
      ),
      lines.join("\n"),
    );
  } finally {
    await partial.close();
    await full.close();
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---- resolving an EOL release's final serial ------------------------------------------------------

const LUNAR = {
  image: "ubuntu-23.04",
  release: "23.04",
  fileName: "ubuntu-23.04-server-cloudimg-amd64.img",
  resolveLatest: true,
};

test("an EOL release takes the newest serial from the first index that lists it, and downloads that serial", async (t) => {
  const dir = await tmp("resolve");
  const key = await throwawayKey(dir, "cloudimage");
  const index = await fs.readFile(path.join(FIXTURES, "simplestreams-released-download.json"));
  const served = await release(dir, key, "/releases/", "lunar/release-20231005/", LUNAR.fileName);
  const releaseHost = await serve({
    "/releases/streams/v1/com.ubuntu.cloud:released:download.json": {
      body: Buffer.from('{"format":"products:1.0","products":{}}'),
    },
  });
  const archive = await serve({
    ...served.routes,
    "/releases/streams/v1/com.ubuntu.cloud:released:download.json": { body: index },
  });
  try {
    const cache = path.join(dir, "cache");
    const lines: string[] = [];
    const roots = [`${releaseHost.base}/releases/`, `${archive.base}/releases/`];
    const got = await ensureBaseImage(
      inputs(roots, key, cache, { ...LUNAR, codename: "lunar", pinnedSerial: "20231003" }),
      (l) => lines.push(l),
    );
    t.like(got, { serial: "20231005", source: `${roots[1]}lunar/release-20231005/`, sha256: served.sha });
    t.is(
      lines[0],
      `[cilium-lab] base image ubuntu-23.04: serial 20231005 (newest of 3 in ${roots[1]}streams/v1/com.ubuntu.cloud:released:download.json; pinned 20231003)`,
    );
    t.deepEqual(releaseHost.requests, [
      "/releases/streams/v1/com.ubuntu.cloud:released:download.json",
      "/releases/lunar/release-20231005/SHA256SUMS",
    ]);
  } finally {
    await releaseHost.close();
    await archive.close();
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("an index that cannot be read leaves the pinned serial, and says so", async (t) => {
  const broken = await serve({
    "/a/streams/v1/com.ubuntu.cloud:released:download.json": { body: Buffer.from("<html>maintenance</html>") },
  });
  try {
    const lines: string[] = [];
    const roots = [`${broken.base}/a/`, `${broken.base}/b/`];
    const serial = await resolveSerial({ ...LUNAR, pinnedSerial: "20231005", roots }, (l) => lines.push(l));
    t.is(serial, "20231005");
    t.is(lines.length, 1);
    t.regex(
      lines[0] ?? "",
      new RegExp(
        `^\\[cilium-lab\\] base image ubuntu-23\\.04: Ubuntu's image index could not be read \\(${roots[0]}streams/v1/com\\.ubuntu\\.cloud:released:download\\.json: not JSON: .*; ` +
          `${roots[1]}streams/v1/com\\.ubuntu\\.cloud:released:download\\.json: HTTP 404 Not Found\\); using the pinned serial 20231005$`,
      ),
    );
  } finally {
    await broken.close();
  }
});
