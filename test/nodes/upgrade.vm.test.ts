// test-runs-as: root
/**
 * A lab created as root by the nodes layer at commit bf709f1 (disks, seeds and console logs as
 * plain files in `/var/lib/libvirt/cilium-lab/<network>`, a per-stack copy of the base image, no
 * serial or source recorded) migrates to libvirt pools under the current code: the real engine
 * (Automation API, inline program, file backend), real libvirtd, 2 real TCG guests from the Debian
 * test image as `image: custom`. This is the README's migration path for labs created as root.
 *
 * 1. `git archive bf709f1 infra scripts tsconfig.json` into a temp dir (node_modules linked) and an
 *    `up` of that tree's LabNodes program: the state a user has.
 * 2. `preview`, then `up`, of the current LabNodes program on the same stack: the base image (its
 *    `path` and resolved facts), the secrets and the network stay; the stack's pool and the base
 *    volume are created; each disk, seed and VM is replaced (the old states, with `poolDir`, are
 *    deleted by the current providers); the old base copy is deleted, and with it the directory.
 * 3. destroy: nothing of the stack is left on the host.
 *
 * Runs as root: the old code wrote into /var/lib/libvirt/cilium-lab itself. Needs libvirtd, the
 * pulumi CLI, the test image and git. Names: stack `cl-n-upg` → libvirt objects
 * `cilium-lab-cl-n-upg*`, network 192.168.187.0/24. Suffix .vm: it boots VMs.
 */
import test, { type ExecutionContext } from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import type { PreviewResult, Stack, UpResult } from "@pulumi/pulumi/automation";

import { parseLabConfig } from "../../infra/config";
import { cachedImagePath } from "../../infra/libvirt/base-image";
import { LabNodes } from "../../infra/nodes/nodes";
import { planLab } from "../../infra/plan";
import { REPO_ROOT, engineEnv, tempDir } from "../engine/support";
import { changes, leftovers, run, testImageConfig, vmTestStack, vmTestStart } from "./vm-host";

const OLD_COMMIT = "bf709f1";
const STACK = "cl-n-upg";
const PREFIX = `cilium-lab-${STACK}`;
/** The pool directory the old code used (root-only files, no libvirt pool). */
const OLD_POOL_DIR = `/var/lib/libvirt/cilium-lab/${PREFIX}`;

/** The parts of the old tree the program uses, typed loosely: their signatures are the old ones. */
interface OldTree {
  parseLabConfig: (raw: Record<string, string>) => { config: unknown };
  planLab: (config: unknown, stack: string) => unknown;
  LabNodes: new (
    name: string,
    args: Record<string, unknown>,
  ) => { baseImage: { path: unknown; id: unknown }; domains: Record<string, { id: unknown }> };
}

/** infra/ and scripts/ of bf709f1 in a temp dir, the project's node_modules linked: the old tree as a user has it. */
async function oldTree(t: ExecutionContext): Promise<OldTree | undefined> {
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
    return undefined;
  }
  await fs.symlink(path.join(REPO_ROOT, "node_modules"), path.join(oldRoot, "node_modules"), "dir");
  const req = (m: string): unknown => require(path.join(oldRoot, m));
  return {
    parseLabConfig: (req("infra/config/parse") as OldTree).parseLabConfig,
    planLab: (req("infra/network/plan") as OldTree).planLab,
    LabNodes: (req("infra/nodes/nodes") as OldTree).LabNodes,
  };
}

/** The old and the current LabNodes program on the same config: the base image path and both VMs' ids. */
function programs(
  old: OldTree,
  raw: Record<string, string>,
  cacheDir: string,
): { oldProgram: () => Promise<Record<string, unknown>>; newProgram: () => Promise<Record<string, unknown>> } {
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
  return { oldProgram, newProgram };
}

/**
 * 2. The current code's preview and up on the old stack: the migration to libvirt pools. Kept: the
 * base image (this machine's cache), the secrets and the network. New: the stack's pool and the
 * base volume. Replaced: each node's disk (now a volume of the pool, backed by the base volume),
 * seed (uploaded into the pool) and VM. Deleted: the per-stack base copy (no longer needed).
 */
async function migrate(t: ExecutionContext, newStack: Stack): Promise<UpResult> {
  const expected = { create: 2, replace: 6, delete: 1 };
  const preview: PreviewResult = await newStack.preview({ diff: true });
  const previewed = changes(preview.changeSummary);
  t.log(`new preview: ${JSON.stringify(previewed)}`);
  t.like(
    previewed,
    expected,
    "preview: pool and base volume created, disks, seeds and VMs replaced, base copy deleted",
  );
  const up2 = await newStack.up({ diff: true });
  const done = changes(up2.summary.resourceChanges);
  t.log(`new up: ${JSON.stringify(done)}`);
  t.like(done, expected, "up: as previewed");
  t.is(done.update, previewed.update, "updates as previewed");
  return up2;
}

test("a nodes stack built as root at bf709f1 migrates to libvirt pools: image, secrets and network kept, disks, seeds and VMs replaced, the base copy and the old directory gone", async (t) => {
  t.timeout(40 * 60_000, "two TCG boots on a shared 2-core host");
  const img = await vmTestStart(t, PREFIX);
  await fs.rm(OLD_POOL_DIR, { recursive: true, force: true });
  if (img === undefined) {
    return;
  }
  const { image, sha256: imageSha } = img;

  // The old tree, as a user has it: infra/ and scripts/ of bf709f1, the project's node_modules.
  const old = await oldTree(t);
  if (old === undefined) {
    return;
  }
  const cacheDir = tempDir(t, "upg-cache");
  const raw = testImageConfig(image, imageSha, "192.168.187.0/24", 2);
  const { oldProgram, newProgram } = programs(old, raw, cacheDir);

  const envVars = engineEnv(tempDir(t, "upg-backend"));
  const { stack: oldStack, destroy } = await vmTestStack(
    t,
    { stackName: STACK, projectName: "cl-n-upgrade", program: oldProgram, envVars },
    PREFIX,
  );
  t.teardown(() => fs.rm(OLD_POOL_DIR, { recursive: true, force: true }));

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
  const up2 = await migrate(t, newStack);
  t.is(
    up2.outputs.imagePath?.value,
    up1.outputs.imagePath?.value,
    "the base image path (what the Volumes and Domains hang on) is unchanged",
  );
  t.is(up2.outputs.imagePath?.value, cachedImagePath(cacheDir, imageSha));
  t.not(up2.outputs.vm1?.value, up1.outputs.vm1?.value, "node-1 is a new VM on a pool volume");
  t.not(up2.outputs.vm2?.value, up1.outputs.vm2?.value, "node-2 is a new VM on a pool volume");
  t.false(
    await fs.stat(OLD_POOL_DIR).then(
      () => true,
      () => false,
    ),
    `the old pool directory ${OLD_POOL_DIR} is gone`,
  );
  t.deepEqual(
    up2.outputs.facts?.value,
    { serial: "", source: `file://${image}`, sha256: imageSha },
    "facts derived from the old state, no network",
  );

  // 3. Destroy: nothing of the stack left (the shared image cache is a temp dir here).
  const down = await destroy();
  t.deepEqual(Object.keys(changes(down.summary.resourceChanges)), ["delete"]);
  t.deepEqual(await leftovers(PREFIX), [], "the host is clean");
});
