/**
 * The compare preflight against this host's real libvirtd and pulumi CLI: the libvirt check
 * answers, and `npm run compare` with a wrong air-gap directory stops before the backend exists.
 * The rest of the preflight (no root, no daemon) is in preflight.test.ts.
 *
 * Suffix .engine, the heaviest of its needs: the real pulumi CLI; it also needs libvirtd and root.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { main } from "../../scripts/compare/index";
import { checkLibvirt } from "../../scripts/compare/preflight";
import { project } from "./project-dir";

test("libvirt access: `virsh -c qemu:///system version` answers on this host (real libvirtd)", async (t) => {
  const line = await checkLibvirt("qemu:///system").catch((err: unknown) => {
    t.fail(`${String(err)}\nStart it: virtlogd -d; libvirtd -d (or systemctl start libvirtd)`);
    return "";
  });
  t.regex(line, /libvirt/i);
});

test("npm run compare with a wrong k3sAirgapDir exits 3 before the backend exists: no .pulumi-state, no passphrase, the stack file untouched (real pulumi and libvirt)", async (t) => {
  const airgap = await fs.mkdtemp(path.join(os.tmpdir(), "clc-airgap-"));
  t.teardown(() => fs.rm(airgap, { recursive: true, force: true }));
  const stackFile = `config:\n  cilium-lab:k3sAirgapDir: ${airgap}\n`;
  const dir = await project(t, stackFile);
  const err: string[] = [];
  const env = { ...process.env };
  delete env.PULUMI_BACKEND_URL;
  delete env.PULUMI_CONFIG_PASSPHRASE;
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  const code = await main(
    ["--stack", "lab"],
    { out: () => undefined, err: (l) => err.push(l) },
    { projectDir: dir, env },
  );
  t.is(code, 3, err.join("\n"));
  t.true(
    err
      .join("\n")
      .startsWith(
        `compare: stack lab names files or tools this host cannot provide (${dir}/stacks/Pulumi.lab.yaml; nothing was changed):\n- cilium-lab:k3sAirgapDir "${airgap}": k3s: missing.`,
      ),
    err.join("\n"),
  );
  t.deepEqual((await fs.readdir(dir)).sort(), ["Pulumi.yaml", "stacks"]);
  t.is(await fs.readFile(path.join(dir, "stacks", "Pulumi.lab.yaml"), "utf8"), stackFile);
});
