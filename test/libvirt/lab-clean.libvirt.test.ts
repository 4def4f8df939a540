// scripts/lab-clean.sh against real libvirt, run as whoever runs the suite (the unprivileged test user
// in CI): it lists and (with --yes) removes one stack's leftover domain, network and storage pool
// recognised by our metadata and marker volume, leaves foreign objects and other stacks alone, purges
// base volumes only when nothing backs onto them, handles root-era pool directories and several
// URIs, and purges the image cache only when asked. Every object is made and checked through virsh.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { ensureDirPool, poolTargetPath, writePoolMarker } from "../../infra/libvirt/storage";
import { domainXml, networkXml } from "../../infra/libvirt/xml";
import { silentPort, startSshd } from "./sshd-harness";
import { sweepPools } from "./storage-support";
import { DEAD_URI, REPO_ROOT, URI, leftovers, sweep as sweepPrefix, tempFile, virsh } from "./support";

const PREFIX = "cl-t-cln";
const IMAGES = "/var/lib/libvirt/images";
const SCRIPT = path.join(REPO_ROOT, "scripts", "lab-clean.sh");
const MARKER = "cilium-lab-pool.json";

function clean(
  args: string[],
  env: Record<string, string> = {},
): { status: number; stdout: string; stderr: string; lines: string[] } {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", env: { ...process.env, LC_ALL: "C", ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.trim().split("\n") };
}

/** An empty legacy pool root, so the host's own /var/lib/libvirt/cilium-lab never enters a test. */
const EMPTY_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-root-`));
const noLegacy = (): string[] => ["--pool-root", EMPTY_ROOT];

/**
 * A running dir pool under /var/lib/libvirt/images, made by the lab's own storage helpers, and
 * stamped with their marker for `stack` unless undefined (so the script reads what the lab writes).
 */
async function pool(name: string, stack: string | undefined): Promise<void> {
  await ensureDirPool(URI, name, poolTargetPath(name));
  if (stack !== undefined) {
    await writePoolMarker(URI, name, { project: "cilium-lab", stack });
  }
}

/** A 1 MiB qcow2 volume, optionally backed by `backing` (a path); returns its path. */
function volume(poolName: string, name: string, backing?: string): string {
  const extra = backing === undefined ? [] : ["--backing-vol", backing, "--backing-vol-format", "qcow2"];
  virsh("vol-create-as", poolName, name, "1M", "--format", "qcow2", ...extra);
  return virsh("vol-path", "--pool", poolName, name).trim();
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** Our test objects, by virsh. */
function ours(): { domains: string[]; networks: string[]; pools: string[] } {
  const { domains, networks, pools } = leftovers(PREFIX);
  return { domains, networks, pools };
}

/** Removes every test object through virsh (before the suite, in case a run crashed, and after). */
function sweep(): void {
  sweepPools(PREFIX);
  sweepPrefix(PREFIX);
}

test.before(sweep);
test.after.always(() => {
  sweep();
  fs.rmSync(EMPTY_ROOT, { recursive: true, force: true });
});

test.serial(
  "lists one stack's leftovers, removes them with --yes, and leaves foreign objects and other stacks alone",
  async (t) => {
    // What a crashed `up` of stack cl-t-cln could leave: its network, its pool with a disk and a
    // console log, a domain on them.
    const stack = PREFIX;
    virsh(
      "net-define",
      tempFile(
        "n.xml",
        networkXml({
          name: `${PREFIX}-net`,
          bridge: `${PREFIX}-br`,
          gateway: "192.168.195.1",
          prefix: 24,
          mtu: 1500,
          hosts: [],
          stack,
        }),
      ),
    );
    await pool(`${PREFIX}-s`, stack);
    const disk = volume(`${PREFIX}-s`, "node-1.qcow2");
    virsh("vol-create-as", `${PREFIX}-s`, "node-1-console.log", "0", "--format", "raw");
    virsh(
      "define",
      tempFile(
        "d.xml",
        domainXml({
          name: `${PREFIX}-vm`,
          stack,
          vcpus: 1,
          memoryMiB: 128,
          accelerator: "qemu",
          diskPath: disk,
          seedPath: disk,
          networkName: `${PREFIX}-net`,
          mac: "52:54:00:c1:c3:01",
          consoleLogPath: path.join(IMAGES, `${PREFIX}-s`, "node-1-console.log"),
        }),
      ),
    );
    // Not ours: an unstamped network, a pool without our marker, and another stack's pool.
    virsh(
      "net-define",
      tempFile("f.xml", `<network><name>${PREFIX}-foreign</name><bridge name='${PREFIX}-fb'/></network>`),
    );
    await pool(`${PREFIX}-f`, undefined);
    volume(`${PREFIX}-f`, "x.qcow2");
    await pool(`${PREFIX}-o`, `${PREFIX}-other`);
    volume(`${PREFIX}-o`, "x.qcow2");

    const args = ["--uri", URI, "--stack", stack, ...noLegacy()];
    const listed = clean(args);
    t.is(listed.status, 0, listed.stderr);
    t.deepEqual(listed.lines, [
      `domain   ${PREFIX}-vm                              stack ${stack} (shut off)`,
      `network  ${PREFIX}-net                             stack ${stack}`,
      `pool     ${PREFIX}-s                               stack ${stack} (2 volume(s) besides the marker, ${IMAGES}/${PREFIX}-s)`,
      `3 object(s) found at ${URI}; run again with --yes to remove them`,
    ]);
    t.is(clean([...args, "--check"]).status, 1, "--check fails when something is left");
    t.deepEqual(ours().domains, [`${PREFIX}-vm`], "listing changed nothing");

    const removed = clean([...args, "--yes"]);
    t.is(removed.status, 0, removed.stderr);
    t.deepEqual(removed.lines.slice(-3), [
      `removed domain ${PREFIX}-vm`,
      `removed network ${PREFIX}-net`,
      `removed pool ${PREFIX}-s`,
    ]);
    const after = clean([...args, "--check"]);
    t.deepEqual([after.status, after.stdout], [0, `nothing of cilium-lab stack ${stack} found at ${URI}\n`]);
    t.deepEqual(ours(), { domains: [], networks: [`${PREFIX}-foreign`], pools: [`${PREFIX}-f`, `${PREFIX}-o`] });
    t.regex(virsh("vol-list", `${PREFIX}-f`), /x\.qcow2/, "the foreign pool keeps its volume");

    // Every stack: the other stack's pool is listed too, even inactive (started to read its marker,
    // and stopped again).
    virsh("pool-destroy", `${PREFIX}-o`);
    t.regex(
      clean(["--uri", URI, ...noLegacy()]).stdout,
      new RegExp(`^pool     ${PREFIX}-o +stack ${PREFIX}-other \\(1 volume\\(s\\) besides the marker`, "m"),
    );
    t.regex(virsh("pool-info", `${PREFIX}-o`), /State:\s+inactive/);
    sweep();
    t.deepEqual(ours(), { domains: [], networks: [], pools: [] });
  },
);

test.serial("--purge-base removes only the base volumes nothing backs onto, then the base pool", async (t) => {
  const base = `${PREFIX}-base`;
  await pool(base, "*");
  const used = volume(base, "base-aaaaaaaaaaaaaaaa.qcow2");
  volume(base, "base-bbbbbbbbbbbbbbbb.qcow2");
  await pool(`${PREFIX}-p`, `${PREFIX}-p`);
  volume(`${PREFIX}-p`, "node-1.qcow2", used);
  const purge = (...more: string[]): ReturnType<typeof clean> =>
    clean(["--uri", URI, "--purge-base", "--base-pool", base, ...noLegacy(), ...more]);

  // Another stack's cleanup keeps the base volume stack p still backs onto.
  const first = purge("--stack", `${PREFIX}-none`, "--yes");
  t.is(first.status, 0, first.stderr);
  t.deepEqual(first.lines, [
    "base     base-aaaaaaaaaaaaaaaa.qcow2              in use, kept",
    "base     base-bbbbbbbbbbbbbbbb.qcow2              unused",
    "removed base volume base-bbbbbbbbbbbbbbbb.qcow2",
  ]);
  t.deepEqual(
    lines(virsh("vol-list", base))
      .slice(2)
      .map((l) => l.split(/\s+/)[0]),
    ["base-aaaaaaaaaaaaaaaa.qcow2", MARKER],
  );

  // Listing stack p with --purge-base: its pool, and the base volume still in use until it is gone.
  const listed = purge("--stack", `${PREFIX}-p`, "--check");
  t.is(listed.status, 1);
  t.deepEqual(listed.lines.slice(1), [
    "base     base-aaaaaaaaaaaaaaaa.qcow2              in use, kept",
    `1 object(s) found at ${URI}; run again with --yes to remove them`,
  ]);

  // Stack p's pool goes first, so its base volume is unused by the time the base pool is read.
  const second = purge("--stack", `${PREFIX}-p`, "--yes");
  t.is(second.status, 0, second.stderr);
  t.deepEqual(second.lines.slice(1), [
    `removed pool ${PREFIX}-p`,
    "base     base-aaaaaaaaaaaaaaaa.qcow2              unused",
    `pool     ${base}                            the base pool, empty once those are gone`,
    "removed base volume base-aaaaaaaaaaaaaaaa.qcow2",
    `removed pool ${base}`,
  ]);
  t.deepEqual(ours().pools, []);

  // A pool of that name without the base marker is never purged.
  await pool(base, undefined);
  volume(base, "base-cccccccccccccccc.qcow2");
  const foreign = purge("--yes");
  t.is(foreign.status, 0, foreign.stderr);
  t.regex(foreign.stderr, new RegExp(`pool ${base} at .* has no cilium-lab base marker \\(${MARKER}\\); left alone`));
  t.regex(virsh("vol-list", base), /base-cccccccccccccccc\.qcow2/);
  sweep();
});

test.serial("root-era pool directories under --pool-root are listed and removed with --yes", (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-legacy-`));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, "cilium-lab-x");
  const other = path.join(root, "cilium-lab-y");
  for (const [d, stack] of [
    [dir, `${PREFIX}-legacy`],
    [other, `${PREFIX}-other`],
  ] as const) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, ".cilium-lab-pool.json"), JSON.stringify({ project: "cilium-lab", stack }));
    fs.writeFileSync(path.join(d, "node-1.qcow2"), "x");
  }
  const args = ["--uri", URI, "--stack", `${PREFIX}-legacy`, "--pool-root", root];
  const listed = clean(args);
  t.is(listed.status, 0, listed.stderr);
  t.deepEqual(listed.lines.slice(1), [
    `pool dir ${dir.padEnd(40)} stack ${PREFIX}-legacy (1 files, ${/\(1 files, ([^)]+)\)/.exec(listed.stdout)?.[1] ?? "?"})`,
    `1 object(s) found under ${root}; run again with --yes to remove them`,
  ]);
  const removed = clean([...args, "--yes"]);
  t.deepEqual([removed.status, removed.lines.at(-1)], [0, `removed pool dir ${dir}`]);
  t.deepEqual(fs.readdirSync(root), ["cilium-lab-y"], "the other stack's directory stays");
});

test.serial("each --uri is a host of its own; one that cannot be reached is named with its fix", async (t) => {
  const reached = clean(["--uri", URI, "--uri", DEAD_URI, "--stack", `${PREFIX}-none`, ...noLegacy()]);
  t.is(reached.status, 2);
  t.is(reached.stdout, `nothing of cilium-lab stack ${PREFIX}-none found at ${URI}\n`);
  t.regex(
    reached.stderr,
    /^lab-clean: cannot reach libvirt at qemu:\/\/\/system\?socket=\S+: .*\. Fix: start libvirtd/,
  );

  // A loopback port that accepts and never answers: ssh waits for a banner that never comes.
  const silent = await silentPort();
  t.teardown(() => silent.close());
  const uri = `qemu+ssh://nobody@127.0.0.1:${silent.port}/system?no_tty=1`;
  const started = Date.now();
  const hung = clean(["--uri", uri, ...noLegacy()], { LAB_CLEAN_TIMEOUT: "3" });
  t.is(hung.status, 2);
  t.true(Date.now() - started < 20_000, `gave up after ${Date.now() - started} ms`);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the accept runs once the event loop does
  t.true(silent.accepted() > 0, "ssh connected to the silent port");
  t.is(
    hung.stderr,
    `lab-clean: cannot reach libvirt at ${uri}: no answer within 3 s. Fix: check the host, port and sshd (ssh -p PORT user@host true), or raise LAB_CLEAN_TIMEOUT.\n`,
  );
});

test.serial("through qemu+ssh it lists and removes a stack's pool on that host like a local URI", async (t) => {
  // A private sshd on loopback as the test's own user: the same libvirtd, reached through ssh and
  // virt-ssh-helper, so nothing of lab-clean may assume the host's files are local.
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  sshd.trustHostKey();
  const uri = sshd.uri({ no_tty: "1" });
  const stack = `${PREFIX}-ssh`;
  await pool(`${PREFIX}-r`, stack);
  volume(`${PREFIX}-r`, "node-1.qcow2");
  const args = ["--uri", uri, "--stack", stack, ...noLegacy()];
  const listed = clean(args);
  t.is(listed.status, 0, listed.stderr);
  t.deepEqual(listed.lines, [
    `pool     ${PREFIX}-r                               stack ${stack} (1 volume(s) besides the marker, ${IMAGES}/${PREFIX}-r)`,
    `1 object(s) found at ${uri}; run again with --yes to remove them`,
  ]);
  const removed = clean([...args, "--yes"]);
  t.deepEqual([removed.status, removed.lines.at(-1)], [0, `removed pool ${PREFIX}-r`], removed.stderr);
  t.deepEqual(ours().pools, []);
  t.regex(sshd.log(), /Accepted publickey for /, "the calls went through the sshd");
});

test.serial("--purge-image-cache lists the cache and removes it only with --yes", (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-cache-`));
  t.teardown(() => fs.rmSync(cache, { recursive: true, force: true }));
  fs.mkdirSync(path.join(cache, "images"));
  fs.writeFileSync(path.join(cache, "images", "ab.qcow2"), "x".repeat(4096));
  const run = (...args: string[]): { status: number | null; stdout: string } =>
    clean(args, { CILIUM_LAB_CACHE: cache });
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
  t.regex(help.stderr, /--purge-base/);
  t.regex(help.stderr, /--uri URI +a libvirt host, repeatable/);
});
