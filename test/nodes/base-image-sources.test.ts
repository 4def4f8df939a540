// Where Ubuntu images come from: the ordered sources per image, the simplestreams index that picks
// an EOL release's final serial, and local HTTP servers on 127.0.0.1 playing the upstream hosts — the release host's 302 to the archive over http, a 404, a
// reset, a refused connection — with real gpg keys generated here.
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { cachedImagePath, ensureBaseImage, resolveSerial } from "../../infra/libvirt/base-image";
import type { BaseImageInputs } from "../../infra/libvirt/base-image/inputs";
import { indexUrls, serialSources } from "../../infra/libvirt/base-image/sources";
import { compareSerials, pickSerial, productSerials } from "../../infra/libvirt/base-image/simplestreams";
import { UBUNTU_IMAGE_ROOTS, UBUNTU_IMAGES } from "../../infra/versions";
import {
  IMG,
  NOBLE,
  serve,
  signedRelease,
  throwawayKey,
  inTmp,
  tmp,
  trustedLocalCert,
  ubuntuInputs,
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

// ---- upstream behaviour, played on 127.0.0.1 ----------------------------------------------------

/** What a source serves for noble, in the order it is asked for: the signed SHA256SUMS, then the image. */
const RELEASE_FILES = [`/releases/${NOBLE}SHA256SUMS`, `/releases/${NOBLE}SHA256SUMS.gpg`, `/releases/${NOBLE}${IMG}`];

/** ensureBaseImage of Ubuntu inputs against `roots`, verified with `key`, cached in `dir`/cache: the image, the cache and what it logged. */
async function ensureUbuntu(
  dir: string,
  key: ThrowawayKey,
  roots: string[],
  over: Partial<BaseImageInputs> = {},
): Promise<{ got: Awaited<ReturnType<typeof ensureBaseImage>>; cache: string; lines: string[] }> {
  const cache = path.join(dir, "cache");
  const lines: string[] = [];
  const got = await ensureBaseImage(ubuntuInputs(roots, key, cache, over), (l) => lines.push(l));
  return { got, cache, lines };
}

test("the https release host's 302 to the archive over http is followed, and the image comes from there verified", async (t) => {
  await inTmp("redirect", async (dir, closing) => {
    const key = await throwawayKey(dir, "cloudimage");
    const served = await signedRelease(dir, key, "/releases/");
    const archive = await serve(served.routes);
    const redirects = Object.fromEntries(
      Object.keys(served.routes).map((p) => [p, { redirect: `${archive.base}${p}` }]),
    );
    const releaseHost = await serve(redirects, {}, await trustedLocalCert(dir));
    t.regex(releaseHost.base, /^https:/);
    t.regex(archive.base, /^http:/);
    closing(releaseHost, archive, key);
    const { got, cache } = await ensureUbuntu(dir, key, [`${releaseHost.base}/releases/`, `${archive.base}/releases/`]);
    t.deepEqual(got, {
      path: cachedImagePath(cache, served.sha),
      sha256: served.sha,
      sizeBytes: served.size,
      downloadedBytes: served.size,
      serial: "20240423",
      source: `${releaseHost.base}/releases/${NOBLE}`,
    });
    t.deepEqual(releaseHost.requests, RELEASE_FILES);
    t.deepEqual(archive.requests, RELEASE_FILES);
  });
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
    const err = await t.throwsAsync(
      ensureBaseImage(ubuntuInputs(roots, key, path.join(dir, "cache")), () => undefined),
    );
    t.is(
      err?.message,
      "Base image ubuntu-24.04 (Ubuntu 24.04 serial 20240423, ubuntu-24.04-server-cloudimg-amd64.img): every source failed:\n" +
        `  1. ${roots[0]}${NOBLE}: ${roots[0]}${NOBLE}SHA256SUMS: HTTP 404 Not Found (redirected to ${gone.base}/moved)\n` +
        `  2. ${roots[1]}${NOBLE}: ${roots[1]}${NOBLE}SHA256SUMS: HTTP 404 Not Found\n` +
        `  3. ${roots[2]}${NOBLE}: ${roots[2]}${NOBLE}SHA256SUMS: ECONNRESET socket hang up\n` +
        `  4. ${roots[3]}${NOBLE}: ${roots[3]}${NOBLE}SHA256SUMS: ECONNREFUSED connect ECONNREFUSED ${new URL(refused.base).host}\n` +
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
  await inTmp("skip", async (dir, closing) => {
    const key = await throwawayKey(dir, "cloudimage");
    const served = await signedRelease(dir, key, "/releases/");
    const partial = await serve({
      [`/releases/${NOBLE}SHA256SUMS`]: served.routes[`/releases/${NOBLE}SHA256SUMS`] ?? {},
      [`/releases/${NOBLE}SHA256SUMS.gpg`]: served.routes[`/releases/${NOBLE}SHA256SUMS.gpg`] ?? {},
    });
    const full = await serve(served.routes);
    closing(partial, full, key);
    const { got, lines } = await ensureUbuntu(dir, key, [`${partial.base}/releases/`, `${full.base}/releases/`]);
    t.is(got.source, `${full.base}/releases/${NOBLE}`);
    t.deepEqual(full.requests, RELEASE_FILES);
    t.true(
      lines.includes(
        `[cilium-lab] base image ubuntu-24.04: ${partial.base}/releases/${NOBLE} failed (Downloading base image ${partial.base}/releases/${NOBLE}${IMG} failed: HTTP 404 Not Found.); trying the next source`,
      ),
      lines.join("\n"),
    );
  });
});

// ---- resolving an EOL release's final serial ------------------------------------------------------

const LUNAR = {
  image: "ubuntu-23.04",
  release: "23.04",
  fileName: "ubuntu-23.04-server-cloudimg-amd64.img",
  resolveLatest: true,
};

test("an EOL release takes the newest serial from the first index that lists it, and downloads that serial", async (t) => {
  await inTmp("resolve", async (dir, closing) => {
    const key = await throwawayKey(dir, "cloudimage");
    const index = await fs.readFile(path.join(FIXTURES, "simplestreams-released-download.json"));
    const served = await signedRelease(dir, key, "/releases/", {
      rel: "lunar/release-20231005/",
      file: LUNAR.fileName,
    });
    const releaseHost = await serve({
      "/releases/streams/v1/com.ubuntu.cloud:released:download.json": {
        body: Buffer.from('{"format":"products:1.0","products":{}}'),
      },
    });
    const archive = await serve({
      ...served.routes,
      "/releases/streams/v1/com.ubuntu.cloud:released:download.json": { body: index },
    });
    closing(releaseHost, archive, key);
    const roots = [`${releaseHost.base}/releases/`, `${archive.base}/releases/`];
    const { got, lines } = await ensureUbuntu(dir, key, roots, {
      ...LUNAR,
      codename: "lunar",
      pinnedSerial: "20231003",
    });
    t.like(got, { serial: "20231005", source: `${roots[1]}lunar/release-20231005/`, sha256: served.sha });
    t.is(
      lines[0],
      `[cilium-lab] base image ubuntu-23.04: serial 20231005 (newest of 3 in ${roots[1]}streams/v1/com.ubuntu.cloud:released:download.json; pinned 20231003)`,
    );
    t.deepEqual(releaseHost.requests, [
      "/releases/streams/v1/com.ubuntu.cloud:released:download.json",
      "/releases/lunar/release-20231005/SHA256SUMS",
    ]);
  });
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
