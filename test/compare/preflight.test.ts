/**
 * Prerequisites checked before `compare` starts, against the real tools: virsh and libvirtd, the
 * Pulumi CLI's absence, the host-side inputs of the stack's config (real files), and the
 * backend/passphrase choice shared with scripts/lab.sh. What needs a reachable libvirtd or the
 * pulumi CLI is in preflight.engine.test.ts.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { labBackend } from "../../scripts/compare/backend";
import { checkLibvirt, checkPulumi, checkStackHostInputs, PreflightError } from "../../scripts/compare/preflight";
import { project } from "./project-dir";

test("no libvirt access: a URI libvirtd cannot be reached at fails with virsh's own error and how to fix it", async (t) => {
  const uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
  const err = await t.throwsAsync(checkLibvirt(uri), { instanceOf: PreflightError });
  t.true(
    err?.message.startsWith(`compare: no libvirt access: \`virsh -c ${uri} version\` failed (exit 1):\n`),
    err?.message,
  );
  t.true(err?.message.includes("/nonexistent/libvirt-sock"), "virsh's stderr is quoted");
  t.true(
    err?.message.endsWith(
      "Start libvirtd (systemctl start libvirtd, or libvirtd -d and virtlogd -d without systemd) and run as root or as a member of the libvirt group.",
    ),
  );
});

test("no virsh at all: says which packages to install", async (t) => {
  const err = await t.throwsAsync(checkLibvirt("qemu:///system", { ...process.env, PATH: "/nonexistent" }), {
    instanceOf: PreflightError,
  });
  t.is(
    err?.message,
    "compare: virsh is not on PATH. Install libvirt (Debian/Ubuntu: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils)",
  );
});

test("no pulumi on PATH: the message names the installer and scripts/toolchain.sh", async (t) => {
  const err = await t.throwsAsync(checkPulumi({ ...process.env, PATH: "/nonexistent" }), {
    instanceOf: PreflightError,
  });
  t.is(
    err?.message,
    "compare: the pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/), or on a host without internet access " +
      'build it from Go modules: eval "$(bash scripts/toolchain.sh)"',
  );
});

test("backend: file://<repo>/.pulumi-state and a generated 0600 passphrase file, like scripts/lab.sh; kept on the next call", async (t) => {
  const repo = await fs.mkdtemp(path.join(os.tmpdir(), "clc-backend-"));
  t.teardown(() => fs.rm(repo, { recursive: true, force: true }));
  const first = await labBackend(repo, {});
  const file = path.join(repo, ".pulumi-state", "passphrase");
  t.deepEqual(first.envVars, {
    PULUMI_BACKEND_URL: `file://${repo}/.pulumi-state`,
    PULUMI_CONFIG_PASSPHRASE_FILE: file,
  });
  t.is(first.generatedPassphraseFile, file);
  const stat = await fs.stat(file);
  t.is(stat.mode & 0o777, 0o600);
  const secret = await fs.readFile(file, "utf8");
  t.regex(secret, /^[A-Za-z0-9+/]{32}\n$/, "24 random bytes in base64, as `head -c 24 /dev/urandom | base64`");
  const second = await labBackend(repo, {});
  t.is(second.generatedPassphraseFile, undefined);
  t.is(await fs.readFile(file, "utf8"), secret);
});

test("backend: PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE (even empty) or _FILE from the environment win, and no file is written", async (t) => {
  const repo = await fs.mkdtemp(path.join(os.tmpdir(), "clc-backend-"));
  t.teardown(() => fs.rm(repo, { recursive: true, force: true }));
  const a = await labBackend(repo, { PULUMI_BACKEND_URL: "file:///elsewhere", PULUMI_CONFIG_PASSPHRASE: "" });
  t.deepEqual(a.envVars, { PULUMI_BACKEND_URL: "file:///elsewhere", PULUMI_CONFIG_PASSPHRASE: "" });
  t.is(a.passphraseSource, "PULUMI_CONFIG_PASSPHRASE");
  const b = await labBackend(repo, { PULUMI_CONFIG_PASSPHRASE_FILE: "/run/secret" });
  t.deepEqual(b.envVars, {
    PULUMI_BACKEND_URL: `file://${repo}/.pulumi-state`,
    PULUMI_CONFIG_PASSPHRASE_FILE: "/run/secret",
  });
  t.is(b.passphraseSource, "PULUMI_CONFIG_PASSPHRASE_FILE (/run/secret)");
  await t.throwsAsync(fs.stat(path.join(repo, ".pulumi-state", "passphrase")));
});

const V = "v1.26.6%2Bk3s1";

test("host-side inputs: an air-gap directory without k3s in the stack file stops compare before anything, every file named with its download URL", async (t) => {
  const airgap = await fs.mkdtemp(path.join(os.tmpdir(), "clc-airgap-"));
  t.teardown(() => fs.rm(airgap, { recursive: true, force: true }));
  const dir = await project(
    t,
    `config:\n  cilium-lab:k3sAirgapDir: ${airgap}\n  cilium-lab:image: custom\n  cilium-lab:imageUrl: /etc/os-release\n  cilium-lab:imageSha256: "${"0".repeat(64)}"\n`,
  );
  const err = t.throws(() => checkStackHostInputs(dir, "lab"), { instanceOf: PreflightError });
  t.is(
    err?.message,
    `compare: stack lab names files or tools this host cannot provide (${dir}/stacks/Pulumi.lab.yaml; nothing was changed):\n` +
      `- cilium-lab:k3sAirgapDir "${airgap}": k3s: missing. Fix: Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s (linux amd64) as ${airgap}/k3s. (Or set cilium-lab:k3sAirgapDir to "" to install from the internet.)\n` +
      `- cilium-lab:k3sAirgapDir "${airgap}": install.sh: missing. Fix: Download https://raw.githubusercontent.com/k3s-io/k3s/${V}/install.sh (or https://get.k3s.io) as ${airgap}/install.sh.\n` +
      `- cilium-lab:k3sAirgapDir "${airgap}": k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too). Fix: Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s-airgap-images-amd64.tar.zst into ${airgap}.`,
  );
});

test("host-side inputs: a stack without a stack file gets the defaults, whose Ubuntu image needs gpgv and Ubuntu's keyring", async (t) => {
  const dir = await project(t);
  const err = t.throws(
    () => checkStackHostInputs(dir, "lab", { keyringPath: `${dir}/no-keyring.gpg`, pathEnv: "/nonexistent" }),
    { instanceOf: PreflightError },
  );
  t.is(
    err?.message,
    `compare: stack lab names files or tools this host cannot provide (${dir}/stacks/Pulumi.lab.yaml; nothing was changed):\n` +
      '- cilium-lab:image "ubuntu-23.04": `gpgv` is not on PATH: it checks the signature of Ubuntu\'s SHA256SUMS. Fix: apt-get install -y gpgv.\n' +
      `- cilium-lab:image "ubuntu-23.04": The signing keyring ${dir}/no-keyring.gpg is missing or unreadable. Fix: point keyringPath at an existing OpenPGP keyring.`,
  );
  await fs.writeFile(path.join(dir, "keyring.gpg"), "k");
  t.notThrows(
    () => checkStackHostInputs(dir, "lab", { keyringPath: path.join(dir, "keyring.gpg") }),
    "with both there",
  );
});

test("host-side inputs: a relative ciliumChart resolves against the project directory, and a config the parser refuses is left to the mode planning", async (t) => {
  const dir = await project(
    t,
    'config:\n  cilium-lab:ciliumChart: ./charts/cilium-1.13.4.tgz\n  cilium-lab:image: custom\n  cilium-lab:imageUrl: /etc/os-release\n  cilium-lab:imageSha256: "' +
      "0".repeat(64) +
      '"\n',
  );
  const err = t.throws(() => checkStackHostInputs(dir, "lab"), { instanceOf: PreflightError });
  t.true(
    err?.message.includes(
      `- cilium-lab:ciliumChart "./charts/cilium-1.13.4.tgz": ${dir}/charts/cilium-1.13.4.tgz, resolved against ${dir} does not exist. Fix: `,
    ),
    err?.message,
  );
  const invalid = await project(t, "config:\n  cilium-lab:nodeCount: 1\n");
  t.notThrows(() => checkStackHostInputs(invalid, "lab", { keyringPath: "/nonexistent" }));
});
