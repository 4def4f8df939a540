/**
 * A stack built by the nodes layer at commit bf709f1 (before the base image recorded its serial and
 * source) keeps everything under the current code: the real engine (Automation API, inline program,
 * file backend), real libvirtd, 2 real TCG guests from the Debian test image as `image: custom`.
 *
 * 1. `git archive bf709f1 infra scripts tsconfig.json` into a temp dir (node_modules linked) and an
 *    `up` of that tree's LabNodes program: the state a user has today.
 * 2. `preview`, then `up`, of the current LabNodes program on the same stack: no create, replace or
 *    delete — the BaseImage's `path` (the id every Volume and Domain hangs on) stays; the updates,
 *    if any, are logged. The new `baseImageFacts` output is derived from the old state.
 * 3. destroy: nothing of the stack is left on the host.
 *
 * Needs what test/nodes/nodes.vm.test.ts needs (root, libvirtd, the pulumi CLI, the test image)
 * and git. Names: stack `cl-n-upg` → libvirt objects `cilium-lab-cl-n-upg*`, network 192.168.187.0/24.
 * Suffix .vm, the heaviest of its needs: it boots VMs; it also needs the real engine, libvirtd, root.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

import { parseLabConfig } from "../../infra/config";
import { planLab } from "../../infra/plan";
import { cachedImagePath } from "../../infra/libvirt/base-image";
import { LabNodes } from "../../infra/nodes/nodes";
import { REPO_ROOT, engineEnv, inlineStack, pulumiOnPath, tempDir } from "../engine/support";

const execFileAsync = promisify(execFile);

const OLD_COMMIT = "bf709f1";
const STACK = "cl-n-upg";
const PREFIX = `cilium-lab-${STACK}`;
const POOL_DIR = `/var/lib/libvirt/cilium-lab/${PREFIX}`;
const URI = "qemu:///system";

async function run(
  file: string,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
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

function virsh(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run("virsh", ["-q", "-c", URI, ...args]);
}

/** Removes what an interrupted run of this test left (only `cilium-lab-cl-n-upg*`). */
async function sweep(): Promise<void> {
  for (const d of (await virsh("list", "--all", "--name")).stdout.split("\n").filter((n) => n.startsWith(PREFIX))) {
    await virsh("destroy", d);
    await virsh("undefine", d, "--nvram", "--managed-save", "--snapshots-metadata");
  }
  for (const n of (await virsh("net-list", "--all", "--name")).stdout.split("\n").filter((x) => x.startsWith(PREFIX))) {
    await virsh("net-destroy", n);
    await virsh("net-undefine", n);
  }
  await fs.rm(POOL_DIR, { recursive: true, force: true });
}

/** Domains, networks and the pool directory of this stack still on the host. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  found.push(
    ...(await virsh("list", "--all", "--name")).stdout
      .split("\n")
      .filter((n) => n.startsWith(PREFIX))
      .map((n) => `domain ${n}`),
  );
  found.push(
    ...(await virsh("net-list", "--all", "--name")).stdout
      .split("\n")
      .filter((n) => n.startsWith(PREFIX))
      .map((n) => `network ${n}`),
  );
  if (await fs.stat(POOL_DIR).catch(() => undefined)) {
    found.push(`pool dir ${POOL_DIR}`);
  }
  return found;
}

/** Only the non-zero counts of an engine summary. */
function changes(summary: Record<string, number> | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(summary ?? {}).filter(([, n]) => n > 0));
}

/** The parts of the old tree the program uses, typed loosely: their signatures are the old ones. */
interface OldTree {
  parseLabConfig: (raw: Record<string, string>) => { config: unknown };
  planLab: (config: unknown, stack: string) => unknown;
  LabNodes: new (
    name: string,
    args: Record<string, unknown>,
  ) => { baseImage: { path: unknown; id: unknown }; domains: Record<string, { id: unknown }> };
}

test("a nodes stack built at bf709f1 previews and updates under the current code with no create, replace or delete", async (t) => {
  t.timeout(40 * 60_000, "two TCG boots on a shared 2-core host");
  if (process.getuid?.() !== 0) {
    t.fail(
      `needs root for qemu:///system and ${POOL_DIR} (uid ${process.getuid?.() ?? "?"}). Fix: run the tests as root.`,
    );
    return;
  }
  pulumiOnPath();
  const image = process.env.TEST_IMAGE ?? "";
  const imageSha = process.env.TEST_IMAGE_SHA256 ?? "";
  if (image === "" || imageSha === "") {
    t.fail(
      'No test image. Fix: eval "$(bash scripts/dev/build-test-image.sh)" (as root), or source the CI environment.',
    );
    return;
  }
  await sweep();

  // The old tree, as a user has it: infra/ and scripts/ of bf709f1, the project's node_modules.
  const oldRoot = tempDir(t, "upg-old");
  const archive = await run(
    "bash",
    ["-c", `git archive ${OLD_COMMIT} infra scripts tsconfig.json | tar -x -C ${JSON.stringify(oldRoot)}`],
    { cwd: REPO_ROOT },
  );
  if (archive.code !== 0) {
    t.fail(
      `git archive ${OLD_COMMIT} failed: ${archive.stderr.trim()}. Fix: run from a clone that has commit ${OLD_COMMIT}.`,
    );
    return;
  }
  await fs.symlink(path.join(REPO_ROOT, "node_modules"), path.join(oldRoot, "node_modules"), "dir");
  const req = (m: string): unknown => require(path.join(oldRoot, m));
  const old: OldTree = {
    parseLabConfig: (req("infra/config/parse") as OldTree).parseLabConfig,
    planLab: (req("infra/network/plan") as OldTree).planLab,
    LabNodes: (req("infra/nodes/nodes") as OldTree).LabNodes,
  };

  const cacheDir = tempDir(t, "upg-cache");
  const raw = {
    image: "custom",
    imageUrl: `file://${image}`,
    imageSha256: imageSha,
    accelerator: "qemu",
    networkCidr: "192.168.187.0/24",
    nodeCount: "2",
    nodeCpus: "1",
    nodeMemoryMiB: "1024",
    nodeDiskGiB: "8",
    bootTimeoutSeconds: "900",
  };
  const oldProgram = (): Promise<Record<string, unknown>> => {
    const config = old.parseLabConfig(raw).config;
    const nodes = new old.LabNodes("lab", { config, plan: old.planLab(config, STACK), stack: STACK, cacheDir });
    return Promise.resolve({
      imagePath: nodes.baseImage.path,
      vm1: nodes.domains["node-1"]?.id,
      vm2: nodes.domains["node-2"]?.id,
    });
  };
  const newProgram = (): Promise<Record<string, unknown>> => {
    const config = parseLabConfig(raw).config;
    const nodes = new LabNodes("lab", { config, plan: planLab(config, STACK), stack: STACK, cacheDir });
    return Promise.resolve({
      imagePath: nodes.baseImage.path,
      vm1: nodes.nodes[0]?.domain.id,
      vm2: nodes.nodes[1]?.domain.id,
      facts: nodes.baseImageFacts,
    });
  };

  const envVars = engineEnv(tempDir(t, "upg-backend"));
  const oldStack = await inlineStack(t, {
    stackName: STACK,
    projectName: "cl-n-upgrade",
    program: oldProgram,
    envVars,
  });
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) {
      await oldStack.destroy().catch(() => undefined);
      await sweep();
    }
  });

  // 1. The stack as bf709f1 builds it.
  const t0 = Date.now();
  const up1 = await oldStack.up();
  t.log(`old up: ${((Date.now() - t0) / 1000).toFixed(0)} s, ${JSON.stringify(changes(up1.summary.resourceChanges))}`);
  const oldState = (await oldStack.exportStack()).deployment as {
    resources?: { type: string; outputs?: Record<string, unknown> }[];
  };
  const oldImage = oldState.resources?.find((r) => r.type === "pulumi-nodejs:dynamic/libvirt:BaseImage")?.outputs ?? {};
  t.is(oldImage.serial, undefined, "the old state has no serial: this really is the old provider");
  t.is(oldImage.sha256SumsUrl, "", "the old state has the old inputs");

  // 2. The current code on the same stack: preview, then up.
  // Same workspace (its stack settings hold the passphrase salt), the program swapped.
  oldStack.workspace.program = newProgram;
  const newStack = oldStack;
  const preview = await newStack.preview({ diff: true });
  const previewed = changes(preview.changeSummary);
  t.log(`new preview: ${JSON.stringify(previewed)}`);
  for (const op of ["create", "replace", "delete", "create-replacement", "delete-replaced"]) {
    t.is(
      previewed[op],
      undefined,
      `preview plans ${op}: ${JSON.stringify(previewed)}\n${preview.stdout
        .split("\n")
        .filter((l) => /[+-]{1,2}|~/.test(l.trim().slice(0, 3)))
        .join("\n")}`,
    );
  }
  const up2 = await newStack.up({ diff: true });
  const done = changes(up2.summary.resourceChanges);
  t.log(`new up: ${JSON.stringify(done)}`);
  const updated = up2.stdout.split("\n").filter((l) => /^\s*~ /.test(l));
  t.log(`updated resources: ${updated.length === 0 ? "none" : updated.map((l) => l.trim()).join(" | ")}`);
  for (const op of ["create", "replace", "delete", "create-replacement", "delete-replaced"]) {
    t.is(done[op], undefined, `up did ${op}: ${JSON.stringify(done)}`);
  }
  t.is(
    up2.outputs.imagePath?.value,
    up1.outputs.imagePath?.value,
    "the base image path (what the Volumes and Domains hang on) is unchanged",
  );
  t.is(up2.outputs.imagePath?.value, cachedImagePath(cacheDir, imageSha));
  t.is(up2.outputs.vm1?.value, up1.outputs.vm1?.value);
  t.is(up2.outputs.vm2?.value, up1.outputs.vm2?.value);
  t.deepEqual(
    up2.outputs.facts?.value,
    { serial: "", source: `file://${image}`, sha256: imageSha },
    "facts derived from the old state, no network",
  );

  // 3. Destroy: nothing of the stack left (the shared image cache is a temp dir here).
  const down = await newStack.destroy();
  destroyed = true;
  t.deepEqual(Object.keys(changes(down.summary.resourceChanges)), ["delete"]);
  t.deepEqual(await leftovers(), [], "the host is clean");
});
