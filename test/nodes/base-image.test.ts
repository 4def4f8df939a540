// BaseImage for real: qcow2 files made with qemu-img (qemu-utils), served by file:// and by HTTP
// servers on 127.0.0.1, throwaway GnuPG keys (gnupg) that sign a SHA256SUMS the way Ubuntu's
// cloud-image key does, and gpgv checking it by fingerprint. Each test has its own cache directory.
// The source order, the upstream redirects and the simplestreams index: base-image-sources.test.ts.
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

import * as pulumi from "@pulumi/pulumi";

import {
  UBUNTU_CLOUDIMAGE_KEYRING,
  baseImageProvider,
  cacheRoot,
  cachedImagePath,
  checkBaseImageInputs,
  ensureBaseImage,
  parseSha256Sums,
  verifySignedSums,
  type BaseImageInputs,
  type BaseImageOutputs,
} from "../../infra/libvirt/base-image";
import { imagesDirEntries, makeQcow2, serve, sha256, throwawayKey, tmp, tool, type Route } from "./image-test-support";

const requireFromString = require("require-from-string") as (code: string) => {
  handler: () => pulumi.dynamic.ResourceProvider;
};

const NOT_UBUNTU = {
  release: "",
  codename: "",
  pinnedSerial: "",
  fileName: "",
  roots: [],
  resolveLatest: false,
  signingKeyFingerprint: "",
};

function customInputs(url: string, sha: string, cacheDir: string): BaseImageInputs {
  return { image: "custom", url, expectedSha256: sha, keyringPath: "", cacheDir, ...NOT_UBUNTU };
}

/** Ubuntu-image inputs against local roots, verified with a test key. */
function ubuntuInputs(
  roots: string[],
  keyring: string,
  fingerprint: string,
  cacheDir: string,
  over: Partial<BaseImageInputs> = {},
): BaseImageInputs {
  return {
    image: "ubuntu-24.04",
    url: "",
    expectedSha256: "",
    keyringPath: keyring,
    cacheDir,
    release: "24.04",
    codename: "noble",
    pinnedSerial: "20240423",
    fileName: "ubuntu-24.04-server-cloudimg-amd64.img",
    roots,
    resolveLatest: false,
    signingKeyFingerprint: fingerprint,
    ...over,
  };
}

/** The provider after the engine's serialization round trip (pulumi.md §1.9). */
async function engineProvider(): Promise<pulumi.dynamic.ResourceProvider<BaseImageInputs, BaseImageOutputs>> {
  const sf = await pulumi.runtime.serializeFunction(() => baseImageProvider, { allowSecrets: true });
  return requireFromString(sf.text).handler() as pulumi.dynamic.ResourceProvider<BaseImageInputs, BaseImageOutputs>;
}

// ---- cache location -------------------------------------------------------------------------------

const cacheTable: { env: Record<string, string>; expected: string }[] = [
  { env: {}, expected: "/home/u/.cache/cilium-lab" },
  { env: { XDG_CACHE_HOME: "/var/cache/u" }, expected: "/var/cache/u/cilium-lab" },
  { env: { XDG_CACHE_HOME: "/var/cache/u", CILIUM_LAB_CACHE: "/srv/lab-cache" }, expected: "/srv/lab-cache" },
];
for (const row of cacheTable) {
  test(`the cache root with ${JSON.stringify(row.env)} is ${row.expected}`, (t) => {
    t.is(cacheRoot(row.env, "/home/u"), row.expected);
  });
}

test("an image is cached under images/<sha256>.qcow2", (t) => {
  t.is(cachedImagePath("/c", "ab".repeat(32)), `/c/images/${"ab".repeat(32)}.qcow2`);
});

// ---- custom images --------------------------------------------------------------------------------

test("a file:// custom image is copied into the cache, and a second stack's create downloads 0 bytes", async (t) => {
  const dir = await tmp("img");
  try {
    const img = await makeQcow2(dir, "custom.qcow2", 8);
    const cache = path.join(dir, "cache");
    const provider = await engineProvider();
    const inputs = customInputs(pathToFileURL(img.file).href, img.sha, cache);

    const first = await provider.create(inputs);
    const final = cachedImagePath(cache, img.sha);
    t.is(first.id, final);
    t.deepEqual(first.outs, {
      ...inputs,
      path: final,
      sha256: img.sha,
      sizeBytes: img.size,
      downloadedBytes: img.size,
      serial: "",
      source: inputs.url,
    });
    t.is(await sha256(final), img.sha);
    t.is((await fs.stat(final)).mode & 0o777, 0o644);

    // Another stack on the same host: same cache, nothing fetched.
    const lines: string[] = [];
    const second = await ensureBaseImage(inputs, (l) => lines.push(l));
    t.deepEqual(second, {
      path: final,
      sha256: img.sha,
      sizeBytes: img.size,
      downloadedBytes: 0,
      serial: "",
      source: inputs.url,
    });
    t.deepEqual(lines, [`[cilium-lab] base image custom: cached at ${final} (0 bytes downloaded)`]);
    t.deepEqual(await imagesDirEntries(cache), [`${img.sha}.qcow2`]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a custom image given as an absolute host path works like file://", async (t) => {
  const dir = await tmp("img");
  try {
    const img = await makeQcow2(dir, "plain.qcow2", 1);
    const cache = path.join(dir, "cache");
    const got = await ensureBaseImage(customInputs(img.file, img.sha, cache), () => undefined);
    t.is(got.downloadedBytes, img.size);
    t.is(await sha256(got.path), img.sha);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a checksum mismatch fails with both hashes and the fix, and leaves no file in the cache", async (t) => {
  const dir = await tmp("img");
  try {
    const img = await makeQcow2(dir, "custom.qcow2", 1);
    const cache = path.join(dir, "cache");
    const wrong = "0".repeat(64);
    const url = pathToFileURL(img.file).href;
    const err = await t.throwsAsync(ensureBaseImage(customInputs(url, wrong, cache), () => undefined));
    t.is(
      err?.message,
      `sha256 mismatch for ${url}: got ${img.sha}, expected ${wrong}. The download was deleted. ` +
        `Fix: if ${url} is the image you want, set cilium-lab:imageSha256 to its hash (sha256sum <file>); otherwise correct cilium-lab:imageUrl.`,
    );
    t.deepEqual(await imagesDirEntries(cache), []);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a file that is not qcow2 is refused after its hash matched, and nothing is cached", async (t) => {
  const dir = await tmp("img");
  try {
    const raw = path.join(dir, "disk.raw");
    await tool("qemu-img", ["create", "-q", "-f", "raw", raw, "1M"], "qemu-utils");
    const cache = path.join(dir, "cache");
    const err = await t.throwsAsync(ensureBaseImage(customInputs(raw, await sha256(raw), cache), () => undefined));
    t.is(
      err?.message,
      `${raw} is not a qcow2 image: qemu-img info says format=raw; expected qcow2. ` +
        "Fix: convert it (qemu-img convert -O qcow2 <in> <out>) and set cilium-lab:imageUrl and cilium-lab:imageSha256 to the result.",
    );
    t.deepEqual(await imagesDirEntries(cache), []);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a qcow2 overlay with its own backing file is refused", async (t) => {
  const dir = await tmp("img");
  try {
    const base = await makeQcow2(dir, "base.qcow2", 1);
    const overlay = path.join(dir, "overlay.qcow2");
    await tool("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base.file, overlay], "qemu-utils");
    const cache = path.join(dir, "cache");
    const err = await t.throwsAsync(
      ensureBaseImage(customInputs(overlay, await sha256(overlay), cache), () => undefined),
    );
    t.is(
      err?.message,
      `${overlay} is a qcow2 overlay with its own backing file (${base.file}); a base image must stand alone. Fix: qemu-img convert -O qcow2 it into a standalone image.`,
    );
    t.deepEqual(await imagesDirEntries(cache), []);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---- HTTP ----------------------------------------------------------------------------------------

test("an HTTP download reports progress at most once per 25 % and lands in the cache", async (t) => {
  const dir = await tmp("img");
  const img = await makeQcow2(dir, "served.qcow2", 8);
  const server = await serve({ "/served.qcow2": { body: await fs.readFile(img.file) } });
  try {
    const cache = path.join(dir, "cache");
    const lines: string[] = [];
    const got = await ensureBaseImage(customInputs(`${server.base}/served.qcow2`, img.sha, cache), (l) =>
      lines.push(l),
    );
    t.deepEqual(got, {
      path: cachedImagePath(cache, img.sha),
      sha256: img.sha,
      sizeBytes: img.size,
      downloadedBytes: img.size,
      serial: "",
      source: `${server.base}/served.qcow2`,
    });
    const percents = lines.filter((l) => l.includes("%")).map((l) => Number(/: (\d+)% \(/.exec(l)?.[1]));
    t.deepEqual(percents, [0, 25, 50, 75, 100]);
    t.is(lines.length, 6, "five progress lines and the fetched line");
    t.regex(lines[1] ?? "", /^\[cilium-lab\] base image custom: 25% \(\d+\.\d MiB of \d+\.\d MiB\)$/);
    t.regex(lines[lines.length - 1] ?? "", /^\[cilium-lab\] base image custom: fetched \d+\.\d MiB in \d+\.\d s$/);
    t.deepEqual(server.requests, ["/served.qcow2"]);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("image URL 404: the error names the URL, the status and the fix, and nothing is left behind", async (t) => {
  const dir = await tmp("img");
  const server = await serve({});
  try {
    const cache = path.join(dir, "cache");
    const url = `${server.base}/releases/lunar/release-20231005/ubuntu-23.04-server-cloudimg-amd64.img`;
    const err = await t.throwsAsync(ensureBaseImage(customInputs(url, "a".repeat(64), cache), () => undefined));
    t.is(err?.message, `Downloading base image ${url} failed: HTTP 404 Not Found. Fix: check cilium-lab:imageUrl.`);
    t.deepEqual(await imagesDirEntries(cache), []);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a connection refused names the host and the fix", async (t) => {
  const dir = await tmp("img");
  const server = await serve({});
  const url = `${server.base}/x.qcow2`;
  await server.close();
  try {
    const err = await t.throwsAsync(
      ensureBaseImage(customInputs(url, "a".repeat(64), path.join(dir, "cache")), () => undefined),
    );
    const host = new URL(url).host;
    t.is(
      err?.message,
      `Downloading base image ${url} failed: ECONNREFUSED connect ECONNREFUSED ${host}. Fix: check this host's access to ${host}, then run again.`,
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("an interrupted download keeps its partial file and the next run resumes with a Range request", async (t) => {
  const dir = await tmp("img");
  const img = await makeQcow2(dir, "big.qcow2", 8);
  const body = await fs.readFile(img.file);
  const cut = 3 * 1048576;
  const routes: Record<string, Route> = { "/big.qcow2": { body, truncateAt: cut } };
  const server = await serve(routes);
  try {
    const cache = path.join(dir, "cache");
    const inputs = customInputs(`${server.base}/big.qcow2`, img.sha, cache);
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    const partial = `${cachedImagePath(cache, img.sha)}.partial`;
    t.regex(
      err?.message ?? "",
      new RegExp(
        `^Downloading base image ${inputs.url} failed (after \\d+ of ${body.length} bytes: .*|: the connection ended after \\d+ of ${body.length} bytes)\\. The partial file ${partial} is kept; run again to resume\\.$`,
      ),
    );
    const kept = (await fs.stat(partial)).size;
    t.true(kept > 0 && kept <= cut, `partial holds ${kept} bytes`);

    routes["/big.qcow2"] = { body };
    const lines: string[] = [];
    const got = await ensureBaseImage(inputs, (l) => lines.push(l));
    t.is(got.downloadedBytes, body.length - kept);
    t.is(await sha256(got.path), img.sha);
    t.deepEqual(server.requests, ["/big.qcow2", `/big.qcow2 bytes=${kept}-`]);
    t.regex(lines[lines.length - 1] ?? "", /\(resumed at \d+\.\d MiB\)$/);
    t.deepEqual(await imagesDirEntries(cache), [`${img.sha}.qcow2`]);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a server that ignores Range gets the whole file again, and the result is still verified", async (t) => {
  const dir = await tmp("img");
  const img = await makeQcow2(dir, "x.qcow2", 2);
  const body = await fs.readFile(img.file);
  const server = await serve({ "/x.qcow2": { body, ranges: false } });
  try {
    const cache = path.join(dir, "cache");
    const final = cachedImagePath(cache, img.sha);
    await fs.mkdir(path.dirname(final), { recursive: true });
    await fs.writeFile(`${final}.partial`, body.subarray(0, 1000));
    const got = await ensureBaseImage(customInputs(`${server.base}/x.qcow2`, img.sha, cache), () => undefined);
    t.is(got.downloadedBytes, body.length);
    t.is(await sha256(final), img.sha);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
// ---- Ubuntu: signed SHA256SUMS ---------------------------------------------------------------------

test("gpgv accepts a SHA256SUMS signed by the expected key and refuses a tampered one", async (t) => {
  const dir = await tmp("gpg");
  const key = await throwawayKey(dir, "signer");
  try {
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
  } finally {
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("gpgv refuses a SHA256SUMS signed by a key that is not in the keyring", async (t) => {
  const dir = await tmp("gpg");
  const trusted = await throwawayKey(dir, "trusted");
  const other = await throwawayKey(dir, "other");
  try {
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *x.img\n`);
    await other.sign(sums);
    const err = await t.throwsAsync(verifySignedSums(sums, `${sums}.gpg`, trusted.keyring, sums, trusted.fingerprint));
    t.regex(err?.message ?? "", /\(gpgv exit 2: .*No public key\)/);
  } finally {
    await trusted.stop();
    await other.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
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

/** A release directory `<root>/noble/release-20240423/` with a signed SHA256SUMS and the image. */
async function noble(
  dir: string,
  key: Awaited<ReturnType<typeof throwawayKey>>,
  prefix = "/releases/",
): Promise<{ routes: Record<string, Route>; img: { file: string; sha: string; size: number } }> {
  const img = await makeQcow2(dir, "ubuntu-24.04-server-cloudimg-amd64.img", 2);
  const sums = path.join(dir, "SHA256SUMS");
  await fs.writeFile(
    sums,
    `${"c".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.tar.gz\n${img.sha} *ubuntu-24.04-server-cloudimg-amd64.img\n`,
  );
  await key.sign(sums);
  const d = `${prefix}noble/release-20240423/`;
  return {
    img,
    routes: {
      [`${d}ubuntu-24.04-server-cloudimg-amd64.img`]: { body: await fs.readFile(img.file) },
      [`${d}SHA256SUMS`]: { body: await fs.readFile(sums) },
      [`${d}SHA256SUMS.gpg`]: { body: await fs.readFile(`${sums}.gpg`) },
    },
  };
}

test("an Ubuntu image is verified through its signed SHA256SUMS, records serial and source, and a second stack needs no network", async (t) => {
  const dir = await tmp("ubuntu");
  const key = await throwawayKey(dir, "cloudimage");
  const { routes, img } = await noble(dir, key);
  const server = await serve(routes);
  try {
    const cache = path.join(dir, "cache");
    const inputs = ubuntuInputs([`${server.base}/releases/`], key.keyring, key.fingerprint, cache);
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
  } finally {
    await server.close().catch(() => undefined);
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a tampered SHA256SUMS stops that source before any image byte is fetched from it, and the error lists it", async (t) => {
  const dir = await tmp("ubuntu");
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
  try {
    const cache = path.join(dir, "cache");
    const inputs = ubuntuInputs([`${server.base}/releases/`], key.keyring, key.fingerprint, cache);
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
  } finally {
    await server.close();
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("an Ubuntu image on a host without its keyring fails before any download, with the fix", async (t) => {
  const dir = await tmp("ubuntu");
  const server = await serve({});
  try {
    const inputs = ubuntuInputs(
      [`${server.base}/releases/`],
      "/nonexistent/ubuntu-cloudimage-keyring.gpg",
      "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
      path.join(dir, "cache"),
    );
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    t.is(
      err?.message,
      "Base image ubuntu-24.04: Ubuntu's signed SHA256SUMS cannot be checked on this host. The signing keyring /nonexistent/ubuntu-cloudimage-keyring.gpg is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.",
    );
    t.deepEqual(server.requests, []);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
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

// ---- provider methods ----------------------------------------------------------------------------

test("read keeps a cached image and reports one removed by hand as gone", async (t) => {
  const dir = await tmp("img");
  try {
    const img = await makeQcow2(dir, "r.qcow2", 1);
    const provider = await engineProvider();
    const { id, outs } = await provider.create(customInputs(img.file, img.sha, path.join(dir, "cache")));
    t.deepEqual(await provider.read?.(id, outs), { id, props: outs });
    await fs.rm(id);
    t.deepEqual(await provider.read?.(id, outs), { id: "" });
    // delete keeps the cache on purpose and never fails.
    await t.notThrowsAsync(async () => provider.delete?.(id, outs as BaseImageOutputs));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** The state commit bf709f1 wrote for a custom image and for ubuntu-24.04 (no serial, no source). */
const OLD_CUSTOM = {
  image: "custom",
  url: "file:///img.qcow2",
  expectedSha256: "a".repeat(64),
  sha256SumsUrl: "",
  keyringPath: "",
  cacheDir: "/cache",
  path: `/cache/images/${"a".repeat(64)}.qcow2`,
  sha256: "a".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
} as unknown as BaseImageOutputs;
const OLD_NOBLE = {
  image: "ubuntu-24.04",
  url: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img",
  expectedSha256: "",
  sha256SumsUrl: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/SHA256SUMS",
  keyringPath: UBUNTU_CLOUDIMAGE_KEYRING,
  cacheDir: "/cache",
  path: `/cache/images/${"b".repeat(64)}.qcow2`,
  sha256: "b".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
} as unknown as BaseImageOutputs;
const NEW_CUSTOM: BaseImageOutputs = {
  ...customInputs("file:///img.qcow2", "a".repeat(64), "/cache"),
  path: OLD_CUSTOM.path,
  sha256: "a".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
  serial: "",
  source: "file:///img.qcow2",
};
const NOBLE_NEWS = ubuntuInputs(
  ["https://cloud-images.ubuntu.com/releases/"],
  UBUNTU_CLOUDIMAGE_KEYRING,
  "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
  "/cache",
);

const diffTable: {
  title: string;
  olds: BaseImageOutputs;
  news: BaseImageInputs;
  expected: pulumi.dynamic.DiffResult;
}[] = [
  {
    title: "the same inputs: no change",
    olds: NEW_CUSTOM,
    news: customInputs("file:///img.qcow2", "a".repeat(64), "/cache"),
    expected: { changes: false, replaces: [] },
  },
  {
    title: "another URL for the same hash: no change (same file)",
    olds: NEW_CUSTOM,
    news: customInputs("file:///other.qcow2", "a".repeat(64), "/cache"),
    expected: { changes: false, replaces: [] },
  },
  {
    title: "another hash: replace",
    olds: NEW_CUSTOM,
    news: customInputs("file:///img.qcow2", "b".repeat(64), "/cache"),
    expected: { changes: true, replaces: ["expectedSha256"] },
  },
  {
    title: "another cache: replace",
    olds: NEW_CUSTOM,
    news: customInputs("file:///img.qcow2", "a".repeat(64), "/other"),
    expected: { changes: true, replaces: ["cacheDir"] },
  },
  {
    title: "another image label: no change",
    olds: NEW_CUSTOM,
    news: { ...customInputs("file:///img.qcow2", "a".repeat(64), "/cache"), image: "renamed" },
    expected: { changes: false, replaces: [] },
  },
  {
    title: "a custom image becomes Ubuntu 24.04: replace",
    olds: NEW_CUSTOM,
    news: NOBLE_NEWS,
    expected: { changes: true, replaces: ["release"] },
  },
  {
    title: "a bf709f1 custom state under the new inputs: no change",
    olds: OLD_CUSTOM,
    news: customInputs("file:///img.qcow2", "a".repeat(64), "/cache"),
    expected: { changes: false, replaces: [] },
  },
  {
    title: "a bf709f1 ubuntu-24.04 state under the new inputs: no change",
    olds: OLD_NOBLE,
    news: NOBLE_NEWS,
    expected: { changes: false, replaces: [] },
  },
  {
    title: "a bf709f1 ubuntu-24.04 state, config now ubuntu-26.04: replace",
    olds: OLD_NOBLE,
    news: { ...NOBLE_NEWS, image: "ubuntu-26.04", release: "26.04", codename: "resolute", pinnedSerial: "20260927" },
    expected: { changes: true, replaces: ["release"] },
  },
  {
    title: "a newer pin or other roots for the same release: no change (never re-resolved)",
    olds: {
      ...NOBLE_NEWS,
      path: "/p",
      sha256: "b".repeat(64),
      sizeBytes: 1,
      downloadedBytes: 1,
      serial: "20240423",
      source: "https://x/",
    },
    news: { ...NOBLE_NEWS, pinnedSerial: "20250101", roots: ["http://mirror.invalid/"] },
    expected: { changes: false, replaces: [] },
  },
];
for (const row of diffTable) {
  test(`diff: ${row.title}`, async (t) => {
    // A replacement never deletes first: the cached file is shared and kept.
    t.deepEqual(await baseImageProvider.diff?.("id", row.olds, row.news), {
      ...row.expected,
      deleteBeforeReplace: false,
    });
  });
}

test("refresh and update complete a bf709f1 state's serial and source from its URL, without network, keeping its path", async (t) => {
  const dir = await tmp("old");
  try {
    const file = path.join(dir, "images", `${"b".repeat(64)}.qcow2`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, "x");
    const olds = { ...OLD_NOBLE, cacheDir: dir, path: file } as BaseImageOutputs;
    const read = await baseImageProvider.read?.(file, olds);
    t.deepEqual(read, {
      id: file,
      props: {
        ...olds,
        serial: "20240423",
        source: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/",
      },
    });
    const updated = await baseImageProvider.update?.(file, olds, { ...NOBLE_NEWS, cacheDir: dir });
    t.deepEqual(updated?.outs, {
      ...NOBLE_NEWS,
      cacheDir: dir,
      path: file,
      sha256: "b".repeat(64),
      sizeBytes: 1,
      downloadedBytes: 1,
      serial: "20240423",
      source: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/",
    });
    const custom = await baseImageProvider.read?.(OLD_CUSTOM.path, { ...OLD_CUSTOM, path: file });
    t.like(custom?.props, { serial: "", source: "file:///img.qcow2", path: file });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

const checkTable: { title: string; news: Partial<BaseImageInputs>; properties: string[] }[] = [
  {
    title: "a custom image",
    news: customInputs("https://example.invalid/x.qcow2", "a".repeat(64), "/c"),
    properties: [],
  },
  {
    title: "a custom image over http",
    news: customInputs("http://example.invalid/x.qcow2", "a".repeat(64), "/c"),
    properties: [],
  },
  { title: "an Ubuntu image", news: NOBLE_NEWS, properties: [] },
  { title: "a relative path", news: customInputs("images/x.qcow2", "a".repeat(64), "/c"), properties: ["url"] },
  { title: "an upper-case hash", news: customInputs("/x.qcow2", "A".repeat(64), "/c"), properties: ["expectedSha256"] },
  {
    title: "no hash and no release",
    news: customInputs("/x.qcow2", "", "/c"),
    properties: ["release", "pinnedSerial", "roots", "keyringPath", "signingKeyFingerprint"],
  },
  {
    title: "an Ubuntu image with a root without a trailing slash",
    news: { ...NOBLE_NEWS, roots: ["https://x.invalid/releases"] },
    properties: ["roots"],
  },
  { title: "a relative cache", news: customInputs("/x.qcow2", "a".repeat(64), "cache"), properties: ["cacheDir"] },
];
for (const row of checkTable) {
  test(`check: ${row.title}`, (t) => {
    t.deepEqual(
      checkBaseImageInputs(row.news).map((f) => f.property),
      row.properties,
    );
  });
}
