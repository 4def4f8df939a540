// scripts/lab-clean.sh against real libvirt: it lists and (with --yes) removes one stack's leftover
// domain, network and pool directory recognised by our metadata and marker, leaves foreign objects
// and other stacks alone, and purges the image cache only when asked.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { networkProvider } from "../../infra/libvirt/network";
import { volumeProvider } from "../../infra/libvirt/volume";
import { domainXml } from "../../infra/libvirt/xml";
import { POOL_ROOT, REPO_ROOT, URI, assertNothingLeft, direct, sweep, tempFile, virsh } from "./support";

const PREFIX = "cl-t-cln";
const ROOT = path.join(POOL_ROOT, "cl-t-cln-root");
const SCRIPT = path.join(REPO_ROOT, "scripts", "lab-clean.sh");

function clean(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync("bash", [SCRIPT, "--uri", URI, ...args], {
    encoding: "utf8",
    env: { ...process.env, LC_ALL: "C" },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test.before(() => sweep(PREFIX));
test.after.always(() => sweep(PREFIX));

test.serial(
  "lists one stack's leftovers, removes them with --yes, and leaves foreign objects and other stacks alone",
  async (t) => {
    // What a crashed `up` of stack cl-t-cln could leave: its network, a disk in its pool directory,
    // a domain on both.
    await direct(networkProvider).create({
      uri: URI,
      networkName: "cl-t-cln-net",
      bridgeName: "cl-t-cln-br",
      cidr: "192.168.195.0/24",
      gateway: "192.168.195.1",
      hosts: [],
      stack: "cl-t-cln",
    });
    const dir = path.join(ROOT, "cl-t-cln");
    const disk = await direct(volumeProvider).create({
      uri: URI,
      poolDir: dir,
      name: "node-1.qcow2",
      sizeGiB: 1,
      stack: "cl-t-cln",
    });
    fs.writeFileSync(path.join(dir, "node-1-console.log"), "boot\n");
    virsh(
      "define",
      tempFile(
        "d.xml",
        domainXml({
          name: "cl-t-cln-vm",
          stack: "cl-t-cln",
          vcpus: 1,
          memoryMiB: 128,
          accelerator: "qemu",
          diskPath: disk.id,
          seedPath: disk.id,
          networkName: "cl-t-cln-net",
          mac: "52:54:00:c1:c3:01",
          consoleLogPath: path.join(dir, "node-1-console.log"),
        }),
      ),
    );
    // Not ours: an unstamped network, and another stack's pool directory.
    virsh(
      "net-define",
      tempFile("n.xml", "<network><name>cl-t-cln-foreign</name><bridge name='cl-t-cln-fb'/></network>"),
    );
    const otherDir = path.join(ROOT, "cl-t-cln-other");
    await direct(volumeProvider).create({
      uri: URI,
      poolDir: otherDir,
      name: "x.qcow2",
      sizeGiB: 1,
      stack: "cl-t-cln-other",
    });

    const listed = clean("--stack", "cl-t-cln", "--pool-root", ROOT);
    t.is(listed.status, 0, listed.stderr);
    t.deepEqual(listed.stdout.trim().split("\n"), [
      "domain   cl-t-cln-vm                              stack cl-t-cln (shut off)",
      "network  cl-t-cln-net                             stack cl-t-cln",
      `pool dir ${dir.padEnd(40)} stack cl-t-cln (2 files, ${listed.stdout.match(/\(2 files, ([^)]+)\)/)?.[1] ?? "?"})`,
      "3 object(s) found; run again with --yes to remove them",
    ]);
    t.is(
      clean("--stack", "cl-t-cln", "--pool-root", ROOT, "--check").status,
      1,
      "--check fails when something is left",
    );
    t.true(virsh("list", "--all", "--name").includes("cl-t-cln-vm"), "listing changed nothing");

    const removed = clean("--stack", "cl-t-cln", "--pool-root", ROOT, "--yes");
    t.is(removed.status, 0, removed.stderr);
    t.deepEqual(removed.stdout.trim().split("\n").slice(-3), [
      "removed domain cl-t-cln-vm",
      "removed network cl-t-cln-net",
      `removed pool dir ${dir}`,
    ]);
    t.false(fs.existsSync(dir));

    const after = clean("--stack", "cl-t-cln", "--pool-root", ROOT, "--check");
    t.deepEqual([after.status, after.stdout], [0, `nothing of cilium-lab stack cl-t-cln found at ${URI}\n`]);
    t.true(virsh("net-list", "--all", "--name").includes("cl-t-cln-foreign"), "the foreign network is untouched");
    t.true(fs.existsSync(path.join(otherDir, "x.qcow2")), "the other stack's pool directory is untouched");

    // Every stack: the other stack's directory is listed too.
    t.regex(clean("--pool-root", ROOT).stdout, /pool dir .*cl-t-cln-other +stack cl-t-cln-other/);
    virsh("net-undefine", "cl-t-cln-foreign");
    fs.rmSync(ROOT, { recursive: true });
    assertNothingLeft(t, PREFIX);
  },
);

test.serial("--purge-image-cache lists the cache and removes it only with --yes", (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-cln-cache-"));
  fs.mkdirSync(path.join(cache, "images"));
  fs.writeFileSync(path.join(cache, "images", "ab.qcow2"), "x".repeat(4096));
  const env = { ...process.env, CILIUM_LAB_CACHE: cache };
  const run = (...args: string[]): { status: number | null; stdout: string } =>
    spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", env });
  const listed = run("--purge-image-cache");
  t.is(listed.status, 0);
  t.regex(
    listed.stdout,
    new RegExp(`^image cache ${cache}/images: \\S+\\n  ab\\.qcow2\\nrun again with --yes to remove it\\n$`),
  );
  t.true(fs.existsSync(path.join(cache, "images", "ab.qcow2")));
  const purged = run("--purge-image-cache", "--yes");
  t.regex(purged.stdout, new RegExp(`removed ${cache}/images\\n$`));
  t.false(fs.existsSync(path.join(cache, "images")));
  t.is(run("--purge-image-cache").stdout, `image cache ${cache}/images: absent, nothing to purge\n`);
  fs.rmSync(cache, { recursive: true });
});

test("lab-clean.sh is shellcheck-clean and documents its usage", (t) => {
  const r = spawnSync("shellcheck", [SCRIPT], { encoding: "utf8" });
  if (r.error) {
    return t.fail(`shellcheck not runnable (${r.error.message}): apt-get install shellcheck`);
  }
  t.is(r.status, 0, r.stdout);
  const help = spawnSync("bash", [SCRIPT, "--help"], { encoding: "utf8" });
  t.is(help.status, 2);
  t.regex(help.stderr, /^lab-clean\.sh: list, and with --yes remove/);
  t.regex(help.stderr, /--purge-image-cache/);
});
