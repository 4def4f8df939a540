/**
 * Shared helpers for the libvirt provider tests: real libvirtd (`qemu:///system`, TCG), the
 * engine's serialization round trip, leftover checks, scratch pool directories and tmpfs mounts.
 *
 * Names: every object these tests make starts with `cl-t-` and uses a CIDR in
 * 192.168.190.0–192.168.197.0/24, so other suites on the same host are never touched. ava runs
 * test files in parallel, so each file has its own /24s: network 190, 191, 196; domain 192;
 * boot 193; preflight 194; lab-clean 195; engine 197.
 */
import type { ExecutionContext } from "ava";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";

export const URI = "qemu:///system";
/** A URI whose socket does not exist: "libvirtd down" without stopping the shared daemon. */
export const DEAD_SOCKET = "/nonexistent/cl-t-libvirt-sock";
export const DEAD_URI = `qemu:///system?socket=${DEAD_SOCKET}`;
/** How a provider's virsh call against {@link DEAD_URI} fails (the provider prefixes what it was doing). */
export const DEAD_URI_UNREACHABLE = `cannot reach libvirt at ${DEAD_URI}: Failed to connect socket to '${DEAD_SOCKET}': No such file or directory (virsh exit 1). Fix: start the libvirt daemons (\`virtlogd -d && libvirtd -d\`, or \`systemctl start libvirtd\`) and check cilium-lab:libvirtUri.`;
/** Root of the tests' pool directories (traversable by libvirt-qemu, unlike /tmp's private dirs). */
export const POOL_ROOT = "/var/lib/libvirt/cilium-lab-test";
/** The repository root. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

const requireFromString = require("require-from-string") as (code: string) => {
  handler: () => pulumi.dynamic.ResourceProvider;
};

/** Loose provider type for calling methods with plain objects in tests. */
export interface AnyProvider {
  check(
    olds: object,
    news: object,
  ): Promise<{ inputs?: Record<string, unknown>; failures?: { property: string; reason: string }[] }>;
  diff(
    id: string,
    olds: object,
    news: object,
  ): Promise<{ changes?: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
  create(inputs: object): Promise<{ id: string; outs?: Record<string, unknown> }>;
  read(id: string, props: object): Promise<{ id?: string; props?: Record<string, unknown> }>;
  update(id: string, olds: object, news: object): Promise<{ outs?: Record<string, unknown> }>;
  delete(id: string, props: object): Promise<void>;
}

/** The provider object as tests call it directly. */
export function direct(provider: pulumi.dynamic.ResourceProvider): AnyProvider {
  return provider as unknown as AnyProvider;
}

/**
 * The provider after exactly what the engine does: `serializeFunction(() => provider)` into
 * `__provider`, then `require-from-string(text).handler()` in the provider host
 * (@pulumi/pulumi cmd/dynamic-provider). Closure problems surface here.
 */
export async function roundTrip(provider: pulumi.dynamic.ResourceProvider): Promise<AnyProvider> {
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  return requireFromString(sf.text).handler() as unknown as AnyProvider;
}

/** Runs a command; returns stdout; throws with stderr on failure. */
export function sh(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(file, args, {
      encoding: "utf8",
      env: { ...env, LC_ALL: "C" },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const e = error as { stderr?: string; code?: string };
    if (e.code === "ENOENT") {
      throw new Error(`\`${file}\` not found: install the Debian packages in .ci/apt-packages.txt (.ci/host-setup.sh)`);
    }
    throw new Error(`${file} ${args.join(" ")} failed: ${e.stderr ?? String(error)}`);
  }
}

/** Runs virsh against the system daemon. */
export function virsh(...args: string[]): string {
  return sh("virsh", ["-c", URI, ...args]);
}

/** Runs virsh; returns exit status and output without throwing. */
export function virshTry(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync("virsh", ["-c", URI, ...args], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function names(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** Domains, networks, storage pools and pool-directory files whose names start with `prefix`. */
export function leftovers(prefix: string): {
  domains: string[];
  networks: string[];
  pools: string[];
  files: string[];
  links: string[];
} {
  const files: string[] = [];
  if (fs.existsSync(POOL_ROOT)) {
    for (const entry of fs.readdirSync(POOL_ROOT)) {
      if (entry.startsWith(prefix)) {
        const dir = path.join(POOL_ROOT, entry);
        files.push(dir, ...(fs.statSync(dir).isDirectory() ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []));
      }
    }
  }
  const links = (JSON.parse(sh("ip", ["-j", "link", "show"])) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(prefix));
  return {
    domains: names(virsh("list", "--all", "--name")).filter((n) => n.startsWith(prefix)),
    networks: names(virsh("net-list", "--all", "--name")).filter((n) => n.startsWith(prefix)),
    pools: names(virsh("pool-list", "--all", "--name")).filter((n) => n.startsWith(prefix)),
    files,
    links,
  };
}

/** Asserts that nothing is left: `virsh list --all`, `net-list --all`, `pool-list --all`, `ip link` and the pool root show nothing with the prefix. */
export function assertNothingLeft(t: ExecutionContext, prefix: string): void {
  t.deepEqual(
    leftovers(prefix),
    { domains: [], networks: [], pools: [], files: [], links: [] },
    `leftovers with prefix ${prefix}`,
  );
}

/** Removes everything with the prefix (before a suite, in case an earlier run crashed; and after). */
export function sweep(prefix: string): void {
  const left = leftovers(prefix);
  for (const d of left.domains) {
    virshTry("destroy", d);
    virshTry("undefine", d, "--nvram");
  }
  for (const n of left.networks) {
    virshTry("net-destroy", n);
    virshTry("net-undefine", n);
  }
  for (const p of left.pools) {
    // Volumes first: `pool-delete` refuses a directory that still holds files, and an undefined
    // pool's directory can then only be removed by root.
    virshTry("pool-start", p);
    virshTry("pool-refresh", p);
    for (const row of virshTry("vol-list", p).stdout.split("\n").slice(2)) {
      const vol = row.trim().split(/\s+/)[0] ?? "";
      if (vol !== "") {
        virshTry("vol-delete", "--pool", p, vol);
      }
    }
    virshTry("pool-destroy", p);
    virshTry("pool-delete", p);
    virshTry("pool-undefine", p);
  }
  for (const l of left.links) {
    spawnSync("ip", ["link", "del", l]);
  }
  if (fs.existsSync(POOL_ROOT)) {
    for (const entry of fs.readdirSync(POOL_ROOT)) {
      if (entry.startsWith(prefix)) {
        const p = path.join(POOL_ROOT, entry);
        spawnSync("umount", [p]);
        fs.rmSync(p, { recursive: true, force: true });
      }
    }
  }
}

/** A pool directory path for a test (not created: the provider creates it). */
export function poolDir(name: string): string {
  fs.mkdirSync(POOL_ROOT, { recursive: true, mode: 0o755 });
  return path.join(POOL_ROOT, name);
}

/** Mounts a tmpfs of `size` (e.g. "8m") at `POOL_ROOT/<name>`; returns the mount point. */
export function mountTmpfs(name: string, size: string): string {
  const dir = poolDir(name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  sh("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
  return dir;
}

/** Unmounts and removes a tmpfs from {@link mountTmpfs}. */
export function unmountTmpfs(dir: string): void {
  spawnSync("umount", [dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Awaits a promise that must reject; returns the error. */
export async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<Error> {
  const error = await t.throwsAsync(promise);
  if (!error) {
    throw new Error("expected a rejection");
  }
  return error;
}

/** The libvirt-style stub domain XML for a foreign (unstamped) domain. */
export function foreignDomainXml(name: string): string {
  return `<domain type="qemu"><name>${name}</name><memory unit="MiB">64</memory><vcpu>1</vcpu><os><type arch="x86_64">hvm</type></os></domain>`;
}

const tempDirs: string[] = [];
process.on("exit", () => {
  for (const dir of tempDirs) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes text to a 0600 file in a fresh temp directory (removed when the test process exits); returns the file path. */
export function tempFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join("/tmp", "cl-t-"));
  tempDirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** A fresh ed25519 key pair with `comment`; its files live in a temp directory removed at exit. */
export function keyPair(comment: string): { priv: string; pub: string; file: string } {
  const file = tempFile("id", "");
  fs.rmSync(file);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return { priv: fs.readFileSync(file, "utf8"), pub: fs.readFileSync(`${file}.pub`, "utf8").trim(), file };
}

/** A suite's stack and network, both named `prefix`, and its pool directory `<prefix>-pool`. */
export function suiteNames(prefix: string): { stack: string; network: string; pool: string } {
  return { stack: prefix, network: prefix, pool: poolDir(`${prefix}-pool`) };
}

/**
 * The Debian test image: TEST_IMAGE and TEST_IMAGE_SHA256 when set (CI passes root's build to the
 * test user, whose own cache has none and who may not build it), else scripts/dev/build-test-image.sh
 * (cached after the first build). Fails with what is missing and how to get it.
 */
export function testImage(): { path: string; sha256: string } {
  const fromEnv = process.env.TEST_IMAGE;
  const shaFromEnv = process.env.TEST_IMAGE_SHA256;
  if (fromEnv && shaFromEnv && /^[0-9a-f]{64}$/.test(shaFromEnv)) {
    return { path: fromEnv, sha256: shaFromEnv };
  }
  const script = path.join(REPO_ROOT, "scripts", "dev", "build-test-image.sh");
  if (!fs.existsSync(script)) {
    throw new Error(`${script} is missing: the Debian test image builder is needed for the boot test`);
  }
  const r = spawnSync("bash", [script], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const image = /^TEST_IMAGE=(.+)$/m.exec(r.stdout)?.[1];
  const sha = /^TEST_IMAGE_SHA256=([0-9a-f]{64})$/m.exec(r.stdout)?.[1];
  if (r.status !== 0 || image === undefined || sha === undefined) {
    throw new Error(
      `bash scripts/dev/build-test-image.sh failed (exit ${r.status ?? "?"}); run it as root with the packages of .ci/apt-packages.txt installed. stderr tail:\n${r.stderr.split("\n").slice(-15).join("\n")}`,
    );
  }
  return { path: image, sha256: sha };
}

/**
 * Starts `<provider>.create(inputs)` of `infra/<module>` in a detached child process (with `env` added
 * to its environment), waits until `started()` (polled every `pollMs`), waits `settleMs` more, then
 * SIGKILLs the child's process group: what a killed `pulumi up` leaves behind. False when `started()`
 * never held within 60 s (the child is killed then too).
 */
export async function killedCreate(opts: {
  module: string;
  provider: string;
  inputs: unknown;
  started: () => boolean;
  pollMs: number;
  settleMs?: number;
  env?: Record<string, string>;
}): Promise<boolean> {
  const script = tempFile(
    "create.ts",
    `import { ${opts.provider} } from ${JSON.stringify(path.join(REPO_ROOT, "infra", opts.module))};\n` +
      `void ${opts.provider}.create!(${JSON.stringify(opts.inputs)});\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
    detached: true,
    stdio: "ignore",
  });
  const deadline = Date.now() + 60_000;
  while (!opts.started()) {
    if (Date.now() > deadline) {
      process.kill(-(child.pid ?? 0), "SIGKILL");
      return false;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs));
  }
  await new Promise((r) => setTimeout(r, opts.settleMs ?? 0));
  process.kill(-(child.pid ?? 0), "SIGKILL");
  return true;
}
