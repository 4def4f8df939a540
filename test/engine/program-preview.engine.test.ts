/**
 * `pulumi preview` of the real program (Pulumi.yaml → infra/index.ts, TypeScript through the
 * Node.js language host) for the committed stacks, with the real engine and a fresh file backend.
 * It runs on a copy of the project: `pulumi stack init` with the passphrase provider writes an
 * encryption salt into stacks/Pulumi.<stack>.yaml, which must not touch the checkout.
 *
 * What this machine cannot have: the Go module proxy serves no build of the `command` resource
 * plugin 1.2.1 (nor of `kubernetes` 4.34.2), so the engine stops at the first k3s command. The test
 * proves everything before that point for real — the program compiles under the engine's ts-node,
 * the stack config parses, the host preflight passes, and every resource of the nodes layer is
 * planned through our dynamic provider — and that the only error is that missing plugin.
 *
 * Suffix .engine, the heaviest of its needs: the real engine; it also needs libvirtd (the preflight).
 */
import test from "ava";

import { engineEnv, projectCopy, pulumi, tempDir } from "./support";

/** The plan's create lines (` +  <type> <name> create`) as `<type> <name>`, sorted. */
function plannedCreates(out: string): string[] {
  return [...new Set([...out.matchAll(/^ \+ {2}(\S+) (\S+) create\b/gm)].map((m) => `${m[1]} ${m[2]}`))].sort();
}

/**
 * What the nodes layer plans for three nodes on one libvirt host (the stack's pool and the base
 * volume uploaded to it, then per node disk, seed and VM), plus the components (the stack aside).
 */
const NODES_LAYER = [
  "lab:k3s:K3sCluster k3s",
  "lab:nodes:LabNodes lab",
  "pulumi-nodejs:dynamic/lab:LabSecrets lab-secrets",
  "pulumi-nodejs:dynamic/libvirt:BaseImage lab-image",
  "pulumi-nodejs:dynamic/libvirt:Network lab-network",
  "pulumi-nodejs:dynamic/libvirt:StoragePool lab-pool",
  "pulumi-nodejs:dynamic/libvirt:BaseVolume lab-base-volume",
  ...["node-1", "node-2", "node-3"].flatMap((n) => [
    `pulumi-nodejs:dynamic/libvirt:CloudInitDisk lab-seed-${n}`,
    `pulumi-nodejs:dynamic/libvirt:Domain lab-vm-${n}`,
    `pulumi-nodejs:dynamic/libvirt:Volume lab-disk-${n}`,
  ]),
].sort();

const MISSING_COMMAND_PLUGIN =
  "error: no resource plugin 'pulumi-resource-command' found in the workspace at version v1.2.1 or on your $PATH";

for (const stack of ["vxlan", "native", "geneve"]) {
  test(`pulumi preview of infra/index.ts for the ${stack} stack plans the whole nodes layer, then stops at the k3s commands: the command plugin 1.2.1 cannot be built from the Go module proxy here`, (t) => {
    const cwd = projectCopy(t);
    const env = engineEnv(tempDir(t, "backend"));
    pulumi(["stack", "init", stack, "--secrets-provider", "passphrase"], { cwd, env });
    // CI's /dev/kvm cannot run guests, and the host preflight checks that KVM works when asked for:
    // the copy runs under TCG, as the tests' VMs do.
    pulumi(["config", "set", "--stack", stack, "cilium-lab:accelerator", "qemu"], { cwd, env });
    const error = t.throws(() =>
      pulumi(["preview", "--stack", stack, "--non-interactive", "--color", "never"], { cwd, env }),
    );
    const out = error?.message ?? "";

    // The engine plans in parallel and stops at the first command's provider, so how many of the
    // later VMs make it into the plan varies; everything planned must belong to the nodes layer,
    // and the resources that depend on nothing (image, secrets, network) are always there.
    const planned = plannedCreates(out).filter((line) => !line.startsWith("pulumi:pulumi:Stack"));
    t.deepEqual(
      planned.filter((line) => !NODES_LAYER.includes(line)),
      [],
      out,
    );
    for (const first of [
      "lab:nodes:LabNodes lab",
      "pulumi-nodejs:dynamic/lab:LabSecrets lab-secrets",
      "pulumi-nodejs:dynamic/libvirt:BaseImage lab-image",
      "pulumi-nodejs:dynamic/libvirt:Network lab-network",
    ]) {
      t.true(planned.includes(first), `${first} is not in the plan:\n${out}`);
    }
    const errors = [...out.matchAll(/^\s*(error: .*)$/gm)].map((m) => m[1]);
    t.deepEqual([...new Set(errors)], [MISSING_COMMAND_PLUGIN], out);
  });
}
