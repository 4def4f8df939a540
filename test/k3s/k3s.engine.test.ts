/**
 * The k3s layer in `pulumi preview` of the real program (Pulumi.yaml → infra/index.ts) with the
 * real engine: a wrong `k3sAirgapDir` stops the program with the air-gap error — printed without a
 * stack trace — before any k3s command is registered, so no node is ever touched.
 *
 * (A preview that gets as far as the k3s commands needs the pulumi-resource-command 1.2.1 plugin,
 * which cannot be built here: the Go module proxy serves no version of
 * github.com/pulumi/pulumi-command/provider. The mock tests list the k3s resources instead,
 * test/k3s/support/expected.ts.)
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";

import test from "ava";

import { engineEnv, projectCopy, pulumi, pulumiOnPath, tempDir } from "../engine/support";

/** `pulumi preview --json`, which exits non-zero on a program error: returns the parsed output. */
function previewJson(
  cwd: string,
  env: Record<string, string>,
): { steps?: { op: string; urn: string }[]; diagnostics?: { message: string; severity: string }[] } {
  try {
    return JSON.parse(
      execFileSync(pulumiOnPath(), ["preview", "--stack", "vxlan", "--json", "--non-interactive"], {
        cwd,
        env,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
      }),
    ) as never;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    try {
      return JSON.parse(e.stdout ?? "") as never;
    } catch {
      throw new Error(`pulumi preview printed no JSON\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`, {
        cause: error,
      });
    }
  }
}

test("pulumi preview with a wrong k3sAirgapDir fails with the air-gap error before any k3s command exists (real engine)", (t) => {
  t.timeout(10 * 60_000);
  const airgap = tempDir(t, "airgap");
  writeFileSync(path.join(airgap, "k3s"), "not a binary\n");
  const cwd = projectCopy(t);
  // the host preflight checks libvirt, which this test is not about.
  const env = { ...engineEnv(tempDir(t, "backend")), CILIUM_LAB_PREFLIGHT: "off" };
  pulumi(["stack", "init", "vxlan", "--secrets-provider", "passphrase"], { cwd, env });
  pulumi(["config", "set", "--stack", "vxlan", "cilium-lab:k3sAirgapDir", airgap], { cwd, env });

  const out = previewJson(cwd, env);
  const errors = (out.diagnostics ?? []).filter((d) => d.severity === "error").map((d) => d.message);
  if (errors.some((m) => m.includes("TSError"))) {
    // seen with Pulumi.yaml `main: infra/index.ts`: the engine runs ts-node in infra/, finds no
    // tsconfig.json there and compiles with TypeScript's defaults (no ES2022 lib: `new Error(m, { cause })` fails).
    t.fail(
      `the engine could not compile the program; does infra/ have a tsconfig.json (e.g. {"extends": "../tsconfig.json"})?\n${errors.join("\n")}`,
    );
    return;
  }
  // The program checks every host-side input before any resource (infra/config/host-inputs.ts), in
  // the words of infra/k3s/airgap.ts.
  const expected =
    "cilium-lab: 3 problems with files or tools on this host that the stack config names (checked before anything is created; nothing was):\n" +
    `- cilium-lab:k3sAirgapDir "${airgap}": k3s: not an ELF executable (it starts with "not a bi"). Fix: Download https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s (linux amd64) as ${airgap}/k3s. (Or set cilium-lab:k3sAirgapDir to "" to install from the internet.)\n` +
    `- cilium-lab:k3sAirgapDir "${airgap}": install.sh: missing. Fix: Download https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh (or https://get.k3s.io) as ${airgap}/install.sh.\n` +
    `- cilium-lab:k3sAirgapDir "${airgap}": k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too). Fix: Download https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s-airgap-images-amd64.tar.zst into ${airgap}.`;
  t.true(
    errors.some((m) => m.trim().replace(/^error: /, "") === expected),
    `expected exactly the air-gap error (no stack trace); got:\n${errors.join("\n---\n")}`,
  );
  const commands = (out.steps ?? []).filter((s) => s.urn.includes("command:remote:"));
  t.deepEqual(commands, [], "no k3s command may be registered before the air-gap directory is valid");
});
