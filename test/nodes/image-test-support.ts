/**
 * Shared by the base-image tests: real tools (qemu-img, gpg, gpgv), throwaway signing keys, and
 * HTTP servers on 127.0.0.1 that play Ubuntu's image hosts (files, 404s, redirects, resets).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import * as pulumi from "@pulumi/pulumi";

import type { BaseImageInputs } from "../../infra/libvirt/base-image";

const requireFromString = require("require-from-string") as (code: string) => { handler: () => unknown };

const execFileAsync = promisify(execFile);

/** Runs a tool; a missing one fails the test with the package to install. */
export async function tool(
  file: string,
  args: readonly string[],
  pkg: string,
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  try {
    return (await execFileAsync(file, args, { env: { ...process.env, LC_ALL: "C", ...env } })).stdout;
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") {
      throw new Error(`\`${file}\` not found on PATH: install Debian package ${pkg} (listed in .ci/apt-packages.txt).`);
    }
    throw err;
  }
}

export async function tmp(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `cl-n-${prefix}-`));
}

export async function sha256(file: string): Promise<string> {
  return createHash("sha256")
    .update(await fs.readFile(file))
    .digest("hex");
}

/** A real qcow2 of about `mib` MiB on disk (fully preallocated, so progress has something to count). */
export async function makeQcow2(
  dir: string,
  name: string,
  mib: number,
): Promise<{ file: string; sha: string; size: number }> {
  const file = path.join(dir, name);
  await tool("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "preallocation=full", file, `${mib}M`], "qemu-utils");
  return { file, sha: await sha256(file), size: (await fs.stat(file)).size };
}

/** Every entry under `<cache>/images`, to prove nothing (no partial, no lock) is left behind. */
export async function imagesDirEntries(cache: string): Promise<string[]> {
  return (await fs.readdir(path.join(cache, "images")).catch(() => [] as string[])).sort();
}

export interface Route {
  readonly body?: Buffer;
  readonly status?: number;
  /** Answer with this status (302 by default) and `Location`. */
  readonly redirect?: string;
  /** Destroy the connection without an answer (a reset). */
  readonly reset?: boolean;
  /** Announce the full length but close the connection after this many bytes. */
  readonly truncateAt?: number;
  /** Answer `Range` requests with 206 (default true). */
  readonly ranges?: boolean;
}

export interface Server {
  readonly base: string;
  readonly requests: string[];
  close: () => Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 (openssl), trusted by this process's default https agent. */
export async function trustedLocalCert(dir: string): Promise<{ key: Buffer; cert: Buffer }> {
  const key = path.join(dir, "tls.key");
  const cert = path.join(dir, "tls.crt");
  await tool(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    "openssl",
  );
  const pem = { key: await fs.readFile(key), cert: await fs.readFile(cert) };
  // https.get without an agent uses the global agent, whose options reach tls.connect.
  https.globalAgent.options.ca = pem.cert;
  return pem;
}

/**
 * An HTTP server on 127.0.0.1 serving `routes` (https with `tls`); records each request's path
 * and Range header.
 */
export async function serve(
  routes: Record<string, Route>,
  fallback: Route = {},
  tls?: { key: Buffer; cert: Buffer },
): Promise<Server> {
  const requests: string[] = [];
  const handler: http.RequestListener = (req, res) => {
    const url = req.url ?? "";
    requests.push(`${url}${req.headers.range ? ` ${req.headers.range}` : ""}`);
    const route = routes[url] ?? fallback;
    if (route.reset) {
      req.socket.destroy();
      return;
    }
    if (route.redirect !== undefined) {
      res.writeHead(route.status ?? 302, { location: route.redirect }).end();
      return;
    }
    if (!route.body) {
      res.writeHead(route.status ?? 404).end();
      return;
    }
    const body = route.body;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m && route.ranges !== false) {
      const start = Number(m[1]);
      res.writeHead(206, {
        "content-length": body.length - start,
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { "content-length": body.length });
    if (route.truncateAt !== undefined) {
      res.write(body.subarray(0, route.truncateAt), () => res.destroy());
      return;
    }
    res.end(body);
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A throwaway signing key (real gpg): its public keyring, its fingerprint, and detached signing. */
export interface ThrowawayKey {
  readonly keyring: string;
  readonly fingerprint: string;
  /** Writes `<file>.gpg` (or `out`), signed by this key and any `also` keys. */
  sign: (file: string, out?: string, also?: readonly ThrowawayKey[]) => Promise<void>;
  stop: () => Promise<void>;
  readonly home: string;
  readonly uid: string;
}

export async function throwawayKey(dir: string, name: string): Promise<ThrowawayKey> {
  const home = path.join(dir, `gnupg-${name}`);
  await fs.mkdir(home, { mode: 0o700 });
  const uid = `${name}@invalid`;
  const gpg = (args: string[], h = home): Promise<string> =>
    tool("gpg", ["--batch", "--homedir", h, "--pinentry-mode", "loopback", "--passphrase", "", ...args], "gnupg");
  await gpg(["--quick-gen-key", `cilium-lab ${name} <${uid}>`, "ed25519", "sign", "never"]);
  const keyring = path.join(dir, `${name}.gpg`);
  await gpg(["--output", keyring, "--export"]);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(await gpg(["--with-colons", "--list-keys", uid]))?.[1] ?? "";
  return {
    keyring,
    fingerprint,
    home,
    uid,
    sign: async (file, out = `${file}.gpg`, also = []) => {
      if (also.length === 0) {
        await gpg(["--yes", "--detach-sign", "--output", out, file]);
        return;
      }
      // Several signers in one detached signature: import their secret keys into this home first.
      for (const other of also) {
        const secret = path.join(dir, `${other.uid}.sec`);
        await gpg(["--yes", "--output", secret, "--export-secret-keys", other.uid], other.home);
        await gpg(["--import", secret]);
      }
      await gpg(["--yes", "--detach-sign", "-u", uid, ...also.flatMap((o) => ["-u", o.uid]), "--output", out, file]);
    },
    stop: async () => {
      await tool("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], "gnupg").catch(() => "");
    },
  };
}

/** Writes a keyring holding the public keys of all `keys`. */
export async function keyringOf(dir: string, name: string, keys: readonly ThrowawayKey[]): Promise<string> {
  const out = path.join(dir, `${name}.gpg`);
  await fs.writeFile(out, Buffer.concat(await Promise.all(keys.map((k) => fs.readFile(k.keyring)))));
  return out;
}

/** What a test starts and must stop: a server (`close`) or a gpg agent (`stop`). */
export type Closable = { close(): Promise<void> } | { stop(): Promise<void> };

/**
 * Runs `fn` with a fresh temp directory. Whatever happens, the things `fn` passes to `closing` are
 * closed or stopped (in that order), then the directory is removed.
 */
export async function inTmp<T>(
  prefix: string,
  fn: (dir: string, closing: (...items: Closable[]) => void) => Promise<T>,
): Promise<T> {
  const dir = await tmp(prefix);
  const items: Closable[] = [];
  try {
    return await fn(dir, (...more) => items.push(...more));
  } finally {
    for (const item of items) {
      await ("close" in item ? item.close() : item.stop());
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}

// ---- BaseImage inputs and Ubuntu's release directories ---------------------------------------------

/** The Ubuntu fields of a custom image: all empty. */
export const NOT_UBUNTU = {
  release: "",
  codename: "",
  pinnedSerial: "",
  fileName: "",
  roots: [],
  resolveLatest: false,
  signingKeyFingerprint: "",
};

/** Custom-image inputs: a URL or path and its hash. */
export function customInputs(url: string, sha: string, cacheDir: string): BaseImageInputs {
  return { image: "custom", url, expectedSha256: sha, keyringPath: "", cacheDir, ...NOT_UBUNTU };
}

/** The noble image file and its serial's directory under a root. */
export const IMG = "ubuntu-24.04-server-cloudimg-amd64.img";
export const NOBLE = "noble/release-20240423/";

/** Ubuntu 24.04 inputs against `roots`, verified with `key`'s keyring and fingerprint. */
export function ubuntuInputs(
  roots: string[],
  key: Pick<ThrowawayKey, "keyring" | "fingerprint">,
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

/**
 * `<prefix><rel>` with the image `file` (a qcow2 of `mib` MiB) and its SHA256SUMS signed by `key`;
 * `otherLines` are listed in SHA256SUMS before the image.
 */
export async function signedRelease(
  dir: string,
  key: ThrowawayKey,
  prefix: string,
  options: { rel?: string; file?: string; mib?: number; otherLines?: string } = {},
): Promise<{ routes: Record<string, Route>; file: string; sha: string; size: number }> {
  const { rel = NOBLE, file = IMG, mib = 1, otherLines = "" } = options;
  const img = await makeQcow2(dir, `${rel.replace(/\W/g, "-")}${file}`, mib);
  const sums = path.join(dir, `SHA256SUMS-${rel.replace(/\W/g, "-")}`);
  await fs.writeFile(sums, `${otherLines}${img.sha} *${file}\n`);
  await key.sign(sums);
  return {
    ...img,
    routes: {
      [`${prefix}${rel}${file}`]: { body: await fs.readFile(img.file) },
      [`${prefix}${rel}SHA256SUMS`]: { body: await fs.readFile(sums) },
      [`${prefix}${rel}SHA256SUMS.gpg`]: { body: await fs.readFile(`${sums}.gpg`) },
    },
  };
}

/**
 * A provider after the engine's serialization round trip: `serializeFunction(() => provider)`, then
 * `require-from-string(text).handler()` as the dynamic provider host does. Closure problems show here.
 */
export async function engineRoundTrip<I, O>(
  provider: pulumi.dynamic.ResourceProvider<I, O>,
): Promise<pulumi.dynamic.ResourceProvider<I, O>> {
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  return requireFromString(sf.text).handler() as pulumi.dynamic.ResourceProvider<I, O>;
}
