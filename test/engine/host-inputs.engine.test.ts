/**
 * The real program (Pulumi.yaml → infra/index.ts) with the real engine and real libvirt, run the
 * way `npm run compare` runs it: the Automation API's `stack.up()`, which always passes
 * `--skip-preview`. A wrong host-side input (here an air-gap directory with a text file as `k3s`)
 * must stop the program before any resource is registered: the engine keeps whatever was
 * registered before a throw, so a check made later (inside the k3s layer) created the network and
 * booted every VM first (13 resources, 96 s) and failed only then.
 *
 * The stack is small and on a network of its own (2 nodes, TCG, 192.168.213.0/24), so that a
 * program that does NOT check first gets past the host preflight and really creates its network:
 * the assertions below then fail, and the teardown removes what was created.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";

import { LocalWorkspace } from "@pulumi/pulumi/automation";
import test from "ava";

import { engineEnv, projectCopy, REPO_ROOT, tempDir } from "./support";

const STACK = "hostinputs";
const V = "v1.26.6%2Bk3s1";

/** Names of libvirt objects of this stack that exist (networks and domains, active or not). */
function labObjects(): string[] {
  const virsh = (args: string[]): string[] =>
    execFileSync("virsh", ["-c", "qemu:///system", ...args], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l === `cilium-lab-${STACK}` || l.startsWith(`cilium-lab-${STACK}-`));
  return [
    ...virsh(["net-list", "--all", "--name"]).map((n) => `network ${n}`),
    ...virsh(["list", "--all", "--name"]).map((d) => `domain ${d}`),
  ];
}

test("up --skip-preview (Automation API stack.up()) with a wrong k3sAirgapDir fails with the air-gap problems and creates nothing: no resource in the state, no libvirt network or domain (real engine, real libvirt)", async (t) => {
  t.timeout(10 * 60_000);
  t.deepEqual(labObjects(), [], `leftovers of an earlier run: bash scripts/lab-clean.sh --stack ${STACK} --yes`);
  const airgap = tempDir(t, "airgap");
  writeFileSync(path.join(airgap, "k3s"), "not a binary\n");
  const image = path.join(tempDir(t, "image"), "disk.qcow2");
  writeFileSync(image, "a stand-in: nothing may read it\n");

  const cwd = projectCopy(t);
  const env = engineEnv(tempDir(t, "backend"));
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: STACK, workDir: cwd },
    { envVars: env, secretsProvider: "passphrase" },
  );
  t.teardown(async () => {
    // Only a program that does not check first leaves anything: remove it.
    await stack.destroy({ color: "never" }).catch(() => undefined);
    execFileSync("bash", [path.join(REPO_ROOT, "scripts", "lab-clean.sh"), "--stack", STACK, "--yes"], {
      stdio: "ignore",
    });
  });
  await stack.setAllConfig({
    "cilium-lab:k3sAirgapDir": { value: airgap },
    "cilium-lab:accelerator": { value: "qemu" },
    "cilium-lab:networkCidr": { value: "192.168.213.0/24" },
    "cilium-lab:nodeCount": { value: "2" },
    "cilium-lab:nodeCpus": { value: "1" },
    "cilium-lab:nodeMemoryMiB": { value: "1024" },
    // A custom image file, so the result does not depend on this host having Ubuntu's keyring.
    "cilium-lab:image": { value: "custom" },
    "cilium-lab:imageUrl": { value: `file://${image}` },
    "cilium-lab:imageSha256": { value: "0".repeat(64) },
  });

  const started = Date.now();
  const output: string[] = [];
  const err = await t.throwsAsync(stack.up({ color: "never", onOutput: (o) => output.push(o) }));
  const seconds = (Date.now() - started) / 1000;
  const text = `${err?.message ?? ""}\n${output.join("")}`;

  const expected =
    "cilium-lab: 3 problems with files or tools on this host that the stack config names (checked before anything is created; nothing was):\n" +
    `- cilium-lab:k3sAirgapDir "${airgap}": k3s: not an ELF executable (it starts with "not a bi"). Fix: Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s (linux amd64) as ${airgap}/k3s. (Or set cilium-lab:k3sAirgapDir to "" to install from the internet.)\n` +
    `- cilium-lab:k3sAirgapDir "${airgap}": install.sh: missing. Fix: Download https://raw.githubusercontent.com/k3s-io/k3s/${V}/install.sh (or https://get.k3s.io) as ${airgap}/install.sh.\n` +
    `- cilium-lab:k3sAirgapDir "${airgap}": k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too). Fix: Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s-airgap-images-amd64.tar.zst into ${airgap}.`;
  // The CLI indents diagnostics: compare line by line.
  const flat = text
    .split("\n")
    .map((l) => l.trim())
    .join("\n");
  t.true(flat.includes(expected), `the up must fail with exactly the host-input error:\n${text}`);
  t.false(/^\s+at .*\(.*:\d+:\d+\)$/m.test(text), `printed with a stack trace:\n${text}`);

  const state = await stack.exportStack();
  const resources = ((state.deployment as { resources?: { type: string; urn: string }[] }).resources ?? []).filter(
    (r) => r.type !== "pulumi:pulumi:Stack",
  );
  t.deepEqual(
    resources.map((r) => r.urn),
    [],
    "no resource may be registered",
  );
  t.deepEqual(labObjects(), [], "no libvirt object of the stack may exist");
  t.log(`up failed after ${seconds.toFixed(1)} s`);
});
