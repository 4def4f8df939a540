/**
 * Prerequisites checked before `compare` starts, against the real tools: virsh and libvirtd, the
 * Pulumi CLI's absence, and the backend/passphrase choice shared with scripts/lab.sh.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { labBackend } from "../../scripts/compare/backend";
import { checkLibvirt, checkPulumi, PreflightError } from "../../scripts/compare/preflight";

test("libvirt access: `virsh -c qemu:///system version` answers on this host (real libvirtd)", async (t) => {
  const line = await checkLibvirt("qemu:///system").catch((err: unknown) => {
    t.fail(`${String(err)}\nStart it: virtlogd -d; libvirtd -d (or systemctl start libvirtd)`);
    return "";
  });
  t.regex(line, /libvirt/i);
});

test("no libvirt access: a URI libvirtd cannot be reached at fails with virsh's own error and how to fix it", async (t) => {
  const uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
  const err = await t.throwsAsync(checkLibvirt(uri), { instanceOf: PreflightError });
  t.true(err?.message.startsWith(`compare: no libvirt access: \`virsh -c ${uri} version\` failed (exit 1):\n`), err?.message);
  t.true(err?.message.includes("/nonexistent/libvirt-sock"), "virsh's stderr is quoted");
  t.true(err?.message.endsWith("Start libvirtd (systemctl start libvirtd, or libvirtd -d and virtlogd -d without systemd) and run as root or as a member of the libvirt group."));
});

test("no virsh at all: says which packages to install", async (t) => {
  const err = await t.throwsAsync(checkLibvirt("qemu:///system", { ...process.env, PATH: "/nonexistent" }), { instanceOf: PreflightError });
  t.is(err?.message, "compare: virsh is not on PATH. Install libvirt (Debian/Ubuntu: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils)");
});

test("no pulumi on PATH: the message names the installer and scripts/toolchain.sh", async (t) => {
  const err = await t.throwsAsync(checkPulumi({ ...process.env, PATH: "/nonexistent" }), { instanceOf: PreflightError });
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
  t.deepEqual(first.envVars, { PULUMI_BACKEND_URL: `file://${repo}/.pulumi-state`, PULUMI_CONFIG_PASSPHRASE_FILE: file });
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
  t.deepEqual(b.envVars, { PULUMI_BACKEND_URL: `file://${repo}/.pulumi-state`, PULUMI_CONFIG_PASSPHRASE_FILE: "/run/secret" });
  t.is(b.passphraseSource, "PULUMI_CONFIG_PASSPHRASE_FILE (/run/secret)");
  await t.throwsAsync(fs.stat(path.join(repo, ".pulumi-state", "passphrase")));
});
