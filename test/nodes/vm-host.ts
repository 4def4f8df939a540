/**
 * The host side of the nodes VM tests (nodes.vm.test.ts, upgrade.vm.test.ts, network-mtu.vm.test.ts):
 * running tools, virsh on qemu:///system, SSH into a guest with its pinned host key, what a stack
 * left on the host (domains, networks, its libvirt storage pools with their volumes) and removing
 * it, all through virsh (the tests run as an unprivileged member of group libvirt), and the
 * non-zero counts of an engine summary.
 */
import type { ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

import { pinnedHostKeyOptions } from "../../infra/libvirt/domain";
import { listVolumes } from "../../infra/libvirt/storage";
import type { DestroyResult, Stack } from "@pulumi/pulumi/automation";

import { inlineStack, pulumiOnPath } from "../engine/support";

const execFileAsync = promisify(execFile);

/** The libvirt connection of the lab. */
export const URI = "qemu:///system";

/** A finished tool run. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file` with `args` (LC_ALL=C); a missing tool names the setup that installs it. */
export async function run(
  file: string,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 120_000,
      env: { ...process.env, LC_ALL: "C" },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(`\`${file}\` not found on PATH. Fix: bash .ci/host-setup.sh (installs .ci/apt-packages.txt).`);
    }
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `virsh -q -c qemu:///system <args>`. */
export function virsh(...args: string[]): Promise<Ran> {
  return run("virsh", ["-q", "-c", URI, ...args]);
}

/** Names virsh lists (`list`, `net-list`, `pool-list` with `--all --name`) that start with `prefix`. */
async function named(what: "list" | "net-list" | "pool-list", prefix: string): Promise<string[]> {
  return (await virsh(what, "--all", "--name")).stdout
    .split("\n")
    .map((n) => n.trim())
    .filter((n) => n.startsWith(prefix));
}

/** The volumes of a pool (started first, so that libvirt can list it). */
async function volumesOf(pool: string): Promise<string[]> {
  await virsh("pool-start", pool);
  return (await listVolumes(URI, pool).catch(() => [])).map((v) => v.name);
}

/**
 * Removes what an interrupted run left, through libvirt: domains, networks and storage pools
 * (with their volumes) named `prefix*`. The shared base pool (`cilium-lab-base`) is not the
 * stack's and stays.
 */
export async function sweep(prefix: string): Promise<void> {
  for (const d of await named("list", prefix)) {
    await virsh("destroy", d);
    await virsh("undefine", d, "--nvram", "--managed-save", "--snapshots-metadata");
  }
  for (const n of await named("net-list", prefix)) {
    await virsh("net-destroy", n);
    await virsh("net-undefine", n);
  }
  for (const p of await named("pool-list", prefix)) {
    for (const v of await volumesOf(p)) {
      await virsh("vol-delete", v, "--pool", p);
    }
    await virsh("pool-destroy", p);
    await virsh("pool-delete", p);
    await virsh("pool-undefine", p);
  }
}

/** Domains, networks and storage pools (with their volumes) named `prefix*` still on the host. */
export async function leftovers(prefix: string): Promise<string[]> {
  const found = [
    ...(await named("list", prefix)).map((n) => `domain ${n}`),
    ...(await named("net-list", prefix)).map((n) => `network ${n}`),
  ];
  for (const p of await named("pool-list", prefix)) {
    found.push(`pool ${p} (${(await volumesOf(p)).join(", ") || "empty"})`);
  }
  return found;
}

/** Only the non-zero counts of an engine summary. */
export function changes(summary: Record<string, number> | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(summary ?? {}).filter(([, n]) => n > 0));
}

/**
 * The stack config of a nodes VM test: the test image as `image: custom` (a `file://` URL and its
 * SHA-256, the path users take with their own image), TCG, small 1-CPU guests on `networkCidr`.
 */
export function testImageConfig(image: string, sha256: string, networkCidr: string, nodeCount: number) {
  return {
    image: "custom",
    imageUrl: `file://${image}`,
    imageSha256: sha256,
    accelerator: "qemu",
    networkCidr,
    nodeCount: String(nodeCount),
    nodeCpus: "1",
    nodeMemoryMiB: "1024",
    nodeDiskGiB: "8",
    bootTimeoutSeconds: "900",
  };
}

/**
 * The start of a nodes VM test: fails `t` (and returns false) unless libvirt at qemu:///system
 * answers this user (root, or a member of group libvirt); puts the pulumi CLI on PATH.
 */
export async function vmTestHost(t: ExecutionContext): Promise<boolean> {
  const version = await virsh("version");
  if (version.code !== 0) {
    t.fail(
      `libvirt at ${URI} does not answer uid ${process.getuid?.() ?? "?"}: ${version.stderr.trim()}. ` +
        "Fix: bash .ci/host-setup.sh, and run as root or as a member of group libvirt (with polkitd running).",
    );
    return false;
  }
  pulumiOnPath();
  return true;
}

/**
 * SSH as the lab user with the key in `<dir>/id`, trusting only `hostKey` for `ip` (a known_hosts
 * file per address and key in `dir`).
 */
export async function ssh(dir: string, ip: string, hostKey: string, command: string): Promise<Ran> {
  const knownHosts = path.join(
    dir,
    `known_hosts-${ip}-${createHash("sha256").update(hostKey).digest("hex").slice(0, 8)}`,
  );
  await fs.writeFile(knownHosts, `${ip} ${hostKey}\n`, { mode: 0o600 });
  return run(
    "ssh",
    [
      "-i",
      path.join(dir, "id"),
      ...pinnedHostKeyOptions(knownHosts),
      "-o",
      "ConnectTimeout=20",
      "-o",
      "LogLevel=ERROR",
      `lab@${ip}`,
      command,
    ],
    { timeoutMs: 300_000 },
  );
}

/** The Debian test image a VM test boots (`image: custom`): its path and SHA-256. */
export interface TestImage {
  readonly image: string;
  readonly sha256: string;
}

/**
 * The start of a nodes VM test that takes the test image from the environment: {@link vmTestHost},
 * TEST_IMAGE and TEST_IMAGE_SHA256 (else `t` fails, saying how to get them), and what an earlier
 * run of the stack left on the host swept. Undefined when the test cannot run.
 */
export async function vmTestStart(t: ExecutionContext, prefix: string): Promise<TestImage | undefined> {
  if (!(await vmTestHost(t))) {
    return undefined;
  }
  const image = process.env.TEST_IMAGE ?? "";
  const sha256 = process.env.TEST_IMAGE_SHA256 ?? "";
  if (image === "" || sha256 === "") {
    t.fail(
      'No test image. Fix: eval "$(bash scripts/dev/build-test-image.sh)" (as root), or source the CI environment.',
    );
    return undefined;
  }
  await sweep(prefix);
  return { image, sha256 };
}

/**
 * The engine stack of a nodes VM test ({@link inlineStack}) whose objects the test's teardown removes
 * (`destroy`, then a {@link sweep} of `prefix`) unless the test destroyed it itself with
 * the returned `destroy`.
 */
export async function vmTestStack(
  t: ExecutionContext,
  args: Parameters<typeof inlineStack>[1],
  prefix: string,
): Promise<{ stack: Stack; destroy: () => Promise<DestroyResult> }> {
  const stack = await inlineStack(t, args);
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) {
      await stack.destroy().catch(() => undefined);
      await sweep(prefix);
    }
  });
  const destroy = async (): Promise<DestroyResult> => {
    const result = await stack.destroy();
    destroyed = true;
    return result;
  };
  return { stack, destroy };
}
