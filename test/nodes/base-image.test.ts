// BaseImage for real: qcow2 files made with qemu-img (qemu-utils), served by file:// and by an HTTP
// server on 127.0.0.1, a throwaway GnuPG key (gnupg) that signs a SHA256SUMS the way Ubuntu's
// cloud-image key does, and gpgv checking it. Each test has its own cache directory.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

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
} from "../../infra/nodes/base-image";

const execFileAsync = promisify(execFile);
const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };

/** Runs a tool; a missing one fails the test with the package to install. */
async function tool(file: string, args: readonly string[], pkg: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    return (await execFileAsync(file, args, { env: { ...process.env, LC_ALL: "C", ...env } })).stdout;
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") {
      throw new Error(`\`${file}\` not found on PATH: install Debian package ${pkg} (listed in .ci/apt-packages.txt).`);
    }
    throw err;
  }
}

async function tmp(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `cl-n-${prefix}-`));
}

async function sha256(file: string): Promise<string> {
  return createHash("sha256").update(await fs.readFile(file)).digest("hex");
}

/** A real qcow2 of about `mib` MiB on disk (fully preallocated, so progress has something to count). */
async function makeQcow2(dir: string, name: string, mib: number): Promise<{ file: string; sha: string; size: number }> {
  const file = path.join(dir, name);
  await tool("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "preallocation=full", file, `${mib}M`], "qemu-utils");
  return { file, sha: await sha256(file), size: (await fs.stat(file)).size };
}

/** Every entry under `<cache>/images`, to prove nothing (no partial, no lock) is left behind. */
async function imagesDirEntries(cache: string): Promise<string[]> {
  return (await fs.readdir(path.join(cache, "images")).catch(() => [] as string[])).sort();
}

interface Route {
  readonly body?: Buffer;
  readonly status?: number;
  /** Announce the full length but close the connection after this many bytes. */
  readonly truncateAt?: number;
  /** Answer `Range` requests with 206 (default true). */
  readonly ranges?: boolean;
}

/** An HTTP server on 127.0.0.1 serving `routes`; records each request's path and Range header. */
async function serve(routes: Record<string, Route>): Promise<{ base: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? "";
    requests.push(`${url}${req.headers.range ? ` ${req.headers.range}` : ""}`);
    const route = routes[url];
    if (!route?.body) {
      res.writeHead(route?.status ?? 404).end();
      return;
    }
    const body = route.body;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m && route.ranges !== false) {
      const start = Number(m[1]);
      res.writeHead(206, { "content-length": body.length - start, "content-range": `bytes ${start}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { "content-length": body.length });
    if (route.truncateAt !== undefined) {
      res.write(body.subarray(0, route.truncateAt), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function customInputs(url: string, sha: string, cacheDir: string): BaseImageInputs {
  return { image: "custom", url, expectedSha256: sha, sha256SumsUrl: "", keyringPath: "", cacheDir };
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
    t.deepEqual(first.outs, { ...inputs, path: final, sha256: img.sha, sizeBytes: img.size, downloadedBytes: img.size });
    t.is(await sha256(final), img.sha);
    t.is((await fs.stat(final)).mode & 0o777, 0o644);

    // Another stack on the same host: same cache, nothing fetched.
    const lines: string[] = [];
    const second = await ensureBaseImage(inputs, (l) => lines.push(l));
    t.deepEqual(second, { path: final, sha256: img.sha, sizeBytes: img.size, downloadedBytes: 0 });
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
    const err = await t.throwsAsync(ensureBaseImage(customInputs(overlay, await sha256(overlay), cache), () => undefined));
    t.is(err?.message, `${overlay} is a qcow2 overlay with its own backing file (${base.file}); a base image must stand alone. Fix: qemu-img convert -O qcow2 it into a standalone image.`);
    t.deepEqual(await imagesDirEntries(cache), []);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---- HTTP ----------------------------------------------------------------------------------------

test("an HTTP download reports progress every 5 % on one line each and lands in the cache", async (t) => {
  const dir = await tmp("img");
  const img = await makeQcow2(dir, "served.qcow2", 8);
  const server = await serve({ "/served.qcow2": { body: await fs.readFile(img.file) } });
  try {
    const cache = path.join(dir, "cache");
    const lines: string[] = [];
    const got = await ensureBaseImage(customInputs(`${server.base}/served.qcow2`, img.sha, cache), (l) => lines.push(l));
    t.deepEqual(got, { path: cachedImagePath(cache, img.sha), sha256: img.sha, sizeBytes: img.size, downloadedBytes: img.size });
    const percents = lines.filter((l) => l.includes("%")).map((l) => Number(/: (\d+)% \(/.exec(l)?.[1]));
    t.deepEqual(percents, Array.from({ length: 21 }, (_, i) => i * 5));
    t.regex(lines[1] ?? "", /^\[cilium-lab\] base image custom: 5% \(\d+\.\d MiB of \d+\.\d MiB\)$/);
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
    const err = await t.throwsAsync(ensureBaseImage(customInputs(url, "a".repeat(64), path.join(dir, "cache")), () => undefined));
    const host = new URL(url).host;
    t.is(err?.message, `Downloading base image ${url} failed: ECONNREFUSED connect ECONNREFUSED ${host}. Fix: check this host's access to ${host}, then run again.`);
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
    t.regex(err?.message ?? "", new RegExp(`^Downloading base image ${inputs.url} failed (after \\d+ of ${body.length} bytes: .*|: the connection ended after \\d+ of ${body.length} bytes)\\. The partial file ${partial} is kept; run again to resume\\.$`));
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

/** A throwaway signing key: its public keyring and a function that signs a file (detached). */
async function throwawayKey(dir: string, name: string): Promise<{ keyring: string; sign: (file: string) => Promise<void>; stop: () => Promise<void> }> {
  const home = path.join(dir, `gnupg-${name}`);
  await fs.mkdir(home, { mode: 0o700 });
  const gpg = (args: string[]): Promise<string> =>
    tool("gpg", ["--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", "", ...args], "gnupg");
  await gpg(["--quick-gen-key", `cilium-lab ${name} <${name}@invalid>`, "ed25519", "sign", "never"]);
  const keyring = path.join(dir, `${name}.gpg`);
  await gpg(["--output", keyring, "--export"]);
  return {
    keyring,
    sign: async (file) => {
      await gpg(["--yes", "--detach-sign", "--output", `${file}.gpg`, file]);
    },
    stop: async () => {
      await tool("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], "gnupg").catch(() => "");
    },
  };
}

test("gpgv accepts a SHA256SUMS signed by a key in the given keyring and refuses a tampered one", async (t) => {
  const dir = await tmp("gpg");
  const key = await throwawayKey(dir, "signer");
  try {
    const sums = path.join(dir, "SHA256SUMS");
    await fs.writeFile(sums, `${"a".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    await key.sign(sums);
    await t.notThrowsAsync(verifySignedSums(sums, `${sums}.gpg`, key.keyring));

    await fs.writeFile(sums, `${"b".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    const err = await t.throwsAsync(verifySignedSums(sums, `${sums}.gpg`, key.keyring, "https://mirror.invalid/SHA256SUMS"));
    t.regex(
      err?.message ?? "",
      new RegExp(
        `^The signature of https://mirror\\.invalid/SHA256SUMS does not verify against ${key.keyring} \\(gpgv exit 1: .*BAD signature from "cilium-lab signer <signer@invalid>"\\)\\. ` +
          "The file may have been tampered with or signed by a key that keyring lacks; nothing was downloaded\\. Fix: retry later or from another mirror; never skip the check\\.$",
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
    const err = await t.throwsAsync(verifySignedSums(sums, `${sums}.gpg`, trusted.keyring));
    t.regex(err?.message ?? "", /\(gpgv exit 2: .*No public key\)/);
  } finally {
    await trusted.stop();
    await other.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a missing Ubuntu keyring names the package that ships it", async (t) => {
  const err = await t.throwsAsync(verifySignedSums("/nonexistent/SHA256SUMS", "/nonexistent/SHA256SUMS.gpg", "/nonexistent/ubuntu-cloudimage-keyring.gpg"));
  t.is(err?.message, "Cannot verify /nonexistent/SHA256SUMS: the signing keyring /nonexistent/ubuntu-cloudimage-keyring.gpg is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.");
  t.is(UBUNTU_CLOUDIMAGE_KEYRING, "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg");
});

test("an Ubuntu-style image is verified through its signed SHA256SUMS, and a second stack needs no network", async (t) => {
  const dir = await tmp("ubuntu");
  const key = await throwawayKey(dir, "cloudimage");
  const img = await makeQcow2(dir, "ubuntu-24.04-server-cloudimg-amd64.img", 2);
  const sums = path.join(dir, "SHA256SUMS");
  await fs.writeFile(sums, `${"c".repeat(64)} *ubuntu-24.04-server-cloudimg-amd64.tar.gz\n${img.sha} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
  await key.sign(sums);
  const server = await serve({
    "/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img": { body: await fs.readFile(img.file) },
    "/noble/release-20240423/SHA256SUMS": { body: await fs.readFile(sums) },
    "/noble/release-20240423/SHA256SUMS.gpg": { body: await fs.readFile(`${sums}.gpg`) },
  });
  try {
    const cache = path.join(dir, "cache");
    const inputs: BaseImageInputs = {
      image: "ubuntu-24.04",
      url: `${server.base}/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img`,
      expectedSha256: "",
      sha256SumsUrl: `${server.base}/noble/release-20240423/SHA256SUMS`,
      keyringPath: key.keyring,
      cacheDir: cache,
    };
    const first = await ensureBaseImage(inputs, () => undefined);
    t.deepEqual(first, { path: cachedImagePath(cache, img.sha), sha256: img.sha, sizeBytes: img.size, downloadedBytes: img.size });
    t.deepEqual(server.requests.sort(), [
      "/noble/release-20240423/SHA256SUMS",
      "/noble/release-20240423/SHA256SUMS.gpg",
      "/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img",
    ]);
    await server.close();
    // The server is gone: the cached, re-verified SHA256SUMS and the cached image suffice.
    const second = await ensureBaseImage(inputs, () => undefined);
    t.is(second.downloadedBytes, 0);
    t.is(second.path, first.path);
  } finally {
    await server.close().catch(() => undefined);
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a tampered SHA256SUMS stops an Ubuntu-style image before any image byte is fetched", async (t) => {
  const dir = await tmp("ubuntu");
  const key = await throwawayKey(dir, "cloudimage");
  const sums = path.join(dir, "SHA256SUMS");
  await fs.writeFile(sums, `${"d".repeat(64)} *img.img\n`);
  await key.sign(sums);
  const tampered = Buffer.from(`${"e".repeat(64)} *img.img\n`);
  const server = await serve({
    "/r/img.img": { body: Buffer.from("not reached") },
    "/r/SHA256SUMS": { body: tampered },
    "/r/SHA256SUMS.gpg": { body: await fs.readFile(`${sums}.gpg`) },
  });
  try {
    const cache = path.join(dir, "cache");
    const inputs: BaseImageInputs = {
      image: "ubuntu-24.04",
      url: `${server.base}/r/img.img`,
      expectedSha256: "",
      sha256SumsUrl: `${server.base}/r/SHA256SUMS`,
      keyringPath: key.keyring,
      cacheDir: cache,
    };
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    t.regex(err?.message ?? "", new RegExp(`^The signature of ${inputs.sha256SumsUrl} does not verify against ${key.keyring} \\(gpgv exit 1: .*BAD signature`));
    t.false(server.requests.includes("/r/img.img"));
    t.deepEqual(await fs.readdir(cache), [], "no SHA256SUMS cached, no image");
  } finally {
    await server.close();
    await key.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a SHA256SUMS 404 (an EOL release that moved) says so and how to pin another image", async (t) => {
  const dir = await tmp("ubuntu");
  const server = await serve({});
  try {
    const inputs: BaseImageInputs = {
      image: "ubuntu-23.04",
      url: `${server.base}/lunar/img.img`,
      expectedSha256: "",
      sha256SumsUrl: `${server.base}/lunar/SHA256SUMS`,
      keyringPath: "/nonexistent.gpg",
      cacheDir: path.join(dir, "cache"),
    };
    const err = await t.throwsAsync(ensureBaseImage(inputs, () => undefined));
    t.is(err?.message, `Downloading ${inputs.sha256SumsUrl} failed: HTTP 404 Not Found. The release may be EOL and moved; set cilium-lab:image custom with cilium-lab:imageUrl/imageSha256 to a current image.`);
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

const OLDS: BaseImageOutputs = {
  ...customInputs("file:///img.qcow2", "a".repeat(64), "/cache"),
  path: `/cache/images/${"a".repeat(64)}.qcow2`,
  sha256: "a".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
};
const diffTable: { title: string; news: BaseImageInputs; expected: pulumi.dynamic.DiffResult }[] = [
  { title: "the same inputs: no change", news: customInputs("file:///img.qcow2", "a".repeat(64), "/cache"), expected: { changes: false, replaces: [] } },
  { title: "another URL: replace", news: customInputs("file:///other.qcow2", "a".repeat(64), "/cache"), expected: { changes: true, replaces: ["url"] } },
  { title: "another hash: replace", news: customInputs("file:///img.qcow2", "b".repeat(64), "/cache"), expected: { changes: true, replaces: ["expectedSha256"] } },
  { title: "another cache: replace", news: customInputs("file:///img.qcow2", "a".repeat(64), "/other"), expected: { changes: true, replaces: ["cacheDir"] } },
  { title: "another image label: update in place", news: { ...customInputs("file:///img.qcow2", "a".repeat(64), "/cache"), image: "renamed" }, expected: { changes: true, replaces: [] } },
];
for (const row of diffTable) {
  test(`diff: ${row.title}`, async (t) => {
    t.deepEqual(await baseImageProvider.diff?.("id", OLDS, row.news), row.expected);
  });
}

const checkTable: { title: string; news: Partial<BaseImageInputs>; properties: string[] }[] = [
  { title: "a custom image", news: customInputs("https://example.invalid/x.qcow2", "a".repeat(64), "/c"), properties: [] },
  { title: "an Ubuntu image", news: { image: "ubuntu-24.04", url: "https://x.invalid/a.img", expectedSha256: "", sha256SumsUrl: "https://x.invalid/SHA256SUMS", keyringPath: "/k.gpg", cacheDir: "/c" }, properties: [] },
  { title: "a relative path", news: customInputs("images/x.qcow2", "a".repeat(64), "/c"), properties: ["url"] },
  { title: "an upper-case hash", news: customInputs("/x.qcow2", "A".repeat(64), "/c"), properties: ["expectedSha256"] },
  { title: "no hash and no SHA256SUMS", news: customInputs("/x.qcow2", "", "/c"), properties: ["sha256SumsUrl", "keyringPath"] },
  { title: "a relative cache", news: customInputs("/x.qcow2", "a".repeat(64), "cache"), properties: ["cacheDir"] },
];
for (const row of checkTable) {
  test(`check: ${row.title}`, (t) => {
    t.deepEqual(checkBaseImageInputs(row.news).map((f) => f.property), row.properties);
  });
}
