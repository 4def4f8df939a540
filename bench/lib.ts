/**
 * What the benchmarks share: command-line options, the Debian test image, the image cache warm-up,
 * a throwaway Pulumi workspace for the nodes layer (Automation API, local file backend in a temp
 * dir), and statistics. Not a test: nothing here asserts.
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";

import { parseLabConfig } from "../infra/config";
import { ensureBaseImage } from "../infra/libvirt/base-image";
import { LabNodes } from "../infra/nodes/nodes";
import { planLab } from "../infra/plan";

const execFileAsync = promisify(execFile);
export const REPO = path.resolve(__dirname, "..");

/** The test image and its SHA-256. */
export interface TestImage {
  readonly image: string;
  readonly sha256: string;
}

/** A progress line on stderr, prefixed with the tool's name. */
export function logger(tool: string): (line: string) => void {
  return (line) => process.stderr.write(`[${tool}] ${line}\n`);
}

/**
 * Runs a child whose last stdout line is one JSON object (its progress goes to stderr, passed
 * through); resolves with that object, rejects naming `what` when it fails.
 */
export function jsonChild<T>(what: string, file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) {
        reject(new Error(`${what} exited ${code}; see its messages above`));
        return;
      }
      resolve(JSON.parse(line) as T);
    });
  });
}

/** `--name value` from argv, or the fallback. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

/** $TEST_IMAGE/$TEST_IMAGE_SHA256, else what scripts/dev/build-test-image.sh prints. */
export async function testImage(): Promise<TestImage> {
  if (process.env.TEST_IMAGE && process.env.TEST_IMAGE_SHA256) {
    return { image: process.env.TEST_IMAGE, sha256: process.env.TEST_IMAGE_SHA256 };
  }
  const { stdout } = await execFileAsync("bash", [path.join(REPO, "scripts/dev/build-test-image.sh")], {
    maxBuffer: 1 << 20,
  });
  const image = /^TEST_IMAGE=(.+)$/m.exec(stdout)?.[1];
  const sha256 = /^TEST_IMAGE_SHA256=([0-9a-f]{64})$/m.exec(stdout)?.[1];
  if (!image || !sha256) {
    throw new Error(
      `scripts/dev/build-test-image.sh printed no TEST_IMAGE/TEST_IMAGE_SHA256 (got ${JSON.stringify(stdout)})`,
    );
  }
  return { image, sha256 };
}

/** Puts the test image into the download cache (not timed: a one-time cost per host, like a download). */
export async function warmCache(img: TestImage, cacheDir: string): Promise<void> {
  await ensureBaseImage(
    {
      image: "custom",
      url: `file://${img.image}`,
      expectedSha256: img.sha256,
      sha256SumsUrl: "",
      keyringPath: "",
      cacheDir,
    },
    () => undefined,
  );
}

/** Stack config of the benchmarks' nodes: the test image, 1 vCPU, 1024 MiB, 8 GiB, a long boot timeout. */
export function nodesConfig(img: TestImage, accel: "kvm" | "qemu", nodes: number): Record<string, string> {
  return {
    image: "custom",
    imageUrl: `file://${img.image}`,
    imageSha256: img.sha256,
    accelerator: accel,
    nodeCount: String(nodes),
    nodeCpus: "1",
    nodeMemoryMiB: "1024",
    nodeDiskGiB: "8",
    bootTimeoutSeconds: "1800",
  };
}

/**
 * A stack of just the nodes layer (LabNodes) with `raw` as its config, in a temp work dir with a
 * local file backend; `dispose` destroys it (errors logged, not thrown) and removes the dir.
 */
export async function nodesStack(opts: {
  stack: string;
  raw: Record<string, string>;
  cacheDir: string;
  log: (line: string) => void;
}): Promise<{ stack: Stack; dispose: () => Promise<void> }> {
  const project = "cl-n-bench";
  const work = mkdtempSync(path.join(os.tmpdir(), `${opts.stack}-`));
  symlinkSync(path.join(REPO, "node_modules"), path.join(work, "node_modules"), "dir");
  const backend = path.join(work, "backend");
  mkdirSync(backend);
  const program = (): Promise<Record<string, unknown>> => {
    const config = parseLabConfig(opts.raw).config;
    const lab = new LabNodes("lab", {
      config,
      plan: planLab(config, opts.stack),
      stack: opts.stack,
      cacheDir: opts.cacheDir,
    });
    return Promise.resolve({ nodes: lab.nodes });
  };
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${backend}`,
    PULUMI_CONFIG_PASSPHRASE: project,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: opts.stack, projectName: project, program },
    {
      workDir: work,
      envVars,
      projectSettings: { name: project, runtime: "nodejs", backend: { url: envVars.PULUMI_BACKEND_URL } },
    },
  );
  const dispose = async (): Promise<void> => {
    opts.log(`pulumi destroy of ${opts.stack} (not timed)`);
    await stack.destroy().catch((e: unknown) => opts.log(`destroy failed: ${(e as Error).message}`));
    rmSync(work, { recursive: true, force: true });
  };
  return { stack, dispose };
}

/** `stack.up()`'s wall time in seconds; throws unless it succeeded. */
export async function timedUp(stack: Stack): Promise<number> {
  const t0 = process.hrtime.bigint();
  const up = await stack.up();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (up.summary.result !== "succeeded") {
    throw new Error(`pulumi up: ${up.summary.result}`);
  }
  return seconds;
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

/** Median, min and max, rounded to 0.1. */
export function spread(xs: readonly number[]): { median: number; min: number; max: number } {
  const r = (x: number): number => Number(x.toFixed(1));
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
}

/** Writes the result line to bench/out/<name>-<time>.json and stdout. */
export function writeResult(name: string, result: object): void {
  const line = JSON.stringify(result);
  mkdirSync(path.join(REPO, "bench/out"), { recursive: true });
  writeFileSync(
    path.join(REPO, "bench/out", `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
    `${line}\n`,
  );
  process.stdout.write(`${line}\n`);
}
