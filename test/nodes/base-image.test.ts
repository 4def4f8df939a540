// BaseImage for real: qcow2 files made with qemu-img (qemu-utils), served by file:// and by HTTP
// servers on 127.0.0.1. Each test has its own cache directory. The provider's methods:
// base-image-provider.test.ts; Ubuntu's signed SHA256SUMS and gpgv: base-image-signed.test.ts; the
// source order, the upstream redirects and the simplestreams index: base-image-sources.test.ts.
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

import { baseImageProvider, cacheRoot, cachedImagePath, ensureBaseImage } from "../../infra/libvirt/base-image";
import {
  customInputs,
  engineRoundTrip,
  imagesDirEntries,
  inTmp,
  makeQcow2,
  serve,
  sha256,
  tool,
  type Route,
} from "./image-test-support";

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
  await inTmp("img", async (dir) => {
    const img = await makeQcow2(dir, "custom.qcow2", 8);
    const cache = path.join(dir, "cache");
    const provider = await engineRoundTrip(baseImageProvider);
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
  });
});

test("a custom image given as an absolute host path works like file://", async (t) => {
  await inTmp("img", async (dir) => {
    const img = await makeQcow2(dir, "plain.qcow2", 1);
    const cache = path.join(dir, "cache");
    const got = await ensureBaseImage(customInputs(img.file, img.sha, cache), () => undefined);
    t.is(got.downloadedBytes, img.size);
    t.is(await sha256(got.path), img.sha);
  });
});

test("a checksum mismatch fails with both hashes and the fix, and leaves no file in the cache", async (t) => {
  await inTmp("img", async (dir) => {
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
  });
});

test("a file that is not qcow2 is refused after its hash matched, and nothing is cached", async (t) => {
  await inTmp("img", async (dir) => {
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
  });
});

test("a qcow2 overlay with its own backing file is refused", async (t) => {
  await inTmp("img", async (dir) => {
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
  });
});

// ---- HTTP ----------------------------------------------------------------------------------------

test("an HTTP download reports progress at most once per 25 % and lands in the cache", async (t) => {
  await inTmp("img", async (dir, closing) => {
    const img = await makeQcow2(dir, "served.qcow2", 8);
    const server = await serve({ "/served.qcow2": { body: await fs.readFile(img.file) } });
    closing(server);
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
  });
});

test("image URL 404: the error names the URL, the status and the fix, and nothing is left behind", async (t) => {
  await inTmp("img", async (dir, closing) => {
    const server = await serve({});
    closing(server);
    const cache = path.join(dir, "cache");
    const url = `${server.base}/releases/lunar/release-20231005/ubuntu-23.04-server-cloudimg-amd64.img`;
    const err = await t.throwsAsync(ensureBaseImage(customInputs(url, "a".repeat(64), cache), () => undefined));
    t.is(err?.message, `Downloading base image ${url} failed: HTTP 404 Not Found. Fix: check cilium-lab:imageUrl.`);
    t.deepEqual(await imagesDirEntries(cache), []);
  });
});

test("a connection refused names the host and the fix", async (t) => {
  await inTmp("img", async (dir) => {
    const server = await serve({});
    const url = `${server.base}/x.qcow2`;
    await server.close();
    const err = await t.throwsAsync(
      ensureBaseImage(customInputs(url, "a".repeat(64), path.join(dir, "cache")), () => undefined),
    );
    const host = new URL(url).host;
    t.is(
      err?.message,
      `Downloading base image ${url} failed: ECONNREFUSED connect ECONNREFUSED ${host}. Fix: check this host's access to ${host}, then run again.`,
    );
  });
});

test("an interrupted download keeps its partial file and the next run resumes with a Range request", async (t) => {
  await inTmp("img", async (dir, closing) => {
    const img = await makeQcow2(dir, "big.qcow2", 8);
    const body = await fs.readFile(img.file);
    const cut = 3 * 1048576;
    const routes: Record<string, Route> = { "/big.qcow2": { body, truncateAt: cut } };
    const server = await serve(routes);
    closing(server);
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
  });
});

test("a server that ignores Range gets the whole file again, and the result is still verified", async (t) => {
  await inTmp("img", async (dir, closing) => {
    const img = await makeQcow2(dir, "x.qcow2", 2);
    const body = await fs.readFile(img.file);
    const server = await serve({ "/x.qcow2": { body, ranges: false } });
    closing(server);
    const cache = path.join(dir, "cache");
    const final = cachedImagePath(cache, img.sha);
    await fs.mkdir(path.dirname(final), { recursive: true });
    await fs.writeFile(`${final}.partial`, body.subarray(0, 1000));
    const got = await ensureBaseImage(customInputs(`${server.base}/x.qcow2`, img.sha, cache), () => undefined);
    t.is(got.downloadedBytes, body.length);
    t.is(await sha256(final), img.sha);
  });
});
