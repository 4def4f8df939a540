/**
 * `npm run lab -- doctor` end to end: scripts/lab.sh on a copy of the project, with the real
 * pulumi CLI, virsh and libvirtd, iptables/nft — and proof that it created nothing: no
 * .pulumi-state, no passphrase, the stack file byte for byte, the same libvirt networks and domains.
 * `--no-probe`: tests contact no public host (the probes are tested on 127.0.0.1 in doctor.test.ts).
 * Suffix .engine, the heaviest of its needs: the real pulumi CLI; it also needs libvirtd and root.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

import test, { type ExecutionContext } from "ava";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The files lab.sh and doctor read, copied; node_modules linked; no .pulumi-state. */
function projectCopy(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), "cl-doctor-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ["infra", "scripts", "stacks", "Pulumi.yaml", "package.json", "tsconfig.json"]) {
    cpSync(path.join(REPO_ROOT, name), path.join(dir, name), { recursive: true });
  }
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

/** Every libvirt network and domain name on the host. */
function libvirtObjects(): string {
  const list = (args: string[]): string =>
    spawnSync("virsh", ["-c", "qemu:///system", ...args], { encoding: "utf8" }).stdout;
  return `${list(["net-list", "--all", "--name"])}\n${list(["list", "--all", "--name"])}`;
}

function doctor(
  dir: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { code: number | null; stdout: string; stderr: string; seconds: number } {
  const started = Date.now();
  const r = spawnSync("bash", [path.join(dir, "scripts", "lab.sh"), "doctor", ...args], {
    cwd: dir,
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

/** A stack this host can run as far as doctor can tell: a custom image file, TCG, its own subnet. */
function writeStack(dir: string): { file: string; text: string } {
  const image = path.join(dir, "disk.qcow2");
  writeFileSync(image, "stand-in image\n");
  const file = path.join(dir, "stacks", "Pulumi.doctest.yaml");
  const text =
    "config:\n  cilium-lab:image: custom\n" +
    `  cilium-lab:imageUrl: file://${image}\n  cilium-lab:imageSha256: "${"0".repeat(64)}"\n` +
    "  cilium-lab:accelerator: qemu\n  cilium-lab:networkCidr: 192.168.214.0/24\n  cilium-lab:nodeCount: 2\n  cilium-lab:nodeCpus: 1\n  cilium-lab:nodeMemoryMiB: 1024\n";
  writeFileSync(file, text);
  return { file, text };
}

test("doctor --json on a stack this host can run: every row {check, status, detail, fix}, exit 0, in seconds, and nothing created (real pulumi, libvirt, iptables)", (t) => {
  const dir = projectCopy(t);
  const { file, text } = writeStack(dir);
  const before = libvirtObjects();
  const env = { ...process.env };
  delete env.PULUMI_CONFIG_PASSPHRASE;
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  // The CI toolchain turns plugin downloads off, and this machine has no plugins: doctor rightly
  // fails their rows there (`up` could not get them). A user's host downloads them on the first up.
  delete env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION;
  const r = doctor(dir, ["doctest", "--json", "--no-probe"], env);
  const rows = JSON.parse(r.stdout) as { check: string; status: string; detail: string; fix: string }[];
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.true(
    rows.every(
      (row) =>
        Object.keys(row).join() === "check,status,detail,fix" && ["ok", "fail", "unchecked"].includes(row.status),
    ),
  );
  t.deepEqual(
    rows
      .filter((row) => row.status === "ok")
      .map((row) => row.check)
      .slice(0, 2),
    ["stack config", "Pulumi CLI"],
  );
  t.deepEqual(rows.find((row) => row.check === "imageUrl")?.status, "ok");
  t.true(
    rows
      .filter((row) => row.check.includes("→"))
      .every((row) => row.status === "unchecked" && row.detail.startsWith("not probed (--no-probe)")),
  );
  t.false(existsSync(path.join(dir, ".pulumi-state")), "no state directory (and so no passphrase file)");
  t.is(readFileSync(file, "utf8"), text, "the stack file is untouched (no encryptionsalt)");
  t.is(libvirtObjects(), before, "no libvirt network or domain was created");
  t.true(r.seconds < 60, `took ${r.seconds} s`);
  t.log(`doctor took ${r.seconds.toFixed(1)} s`);
});

test("doctor runs before lab.sh's pulumi check: without pulumi on PATH it reports the CLI with its fix, exits 1 and still creates nothing", (t) => {
  const dir = projectCopy(t);
  writeStack(dir);
  const bin = path.join(dir, "bin");
  mkdirSync(bin);
  // Only node (for tsx) and the system tools; not the toolchain's pulumi.
  symlinkSync(process.execPath, path.join(bin, "node"));
  const env = { ...process.env, PATH: `${bin}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin` };
  t.is(spawnSync("bash", ["-c", "command -v pulumi"], { env }).status, 1, "pulumi must not be on this PATH");
  const r = doctor(dir, ["doctest", "--no-probe"], env);
  t.is(r.code, 1, `${r.stdout}\n${r.stderr}`);
  t.true(r.stdout.startsWith("cilium-lab doctor: stack doctest; upstreams not probed\n"), r.stdout);
  t.regex(
    r.stdout,
    /\n✗ Pulumi CLI +pulumi is not on PATH\n +fix: Install it \(https:\/\/www\.pulumi\.com\/docs\/install\/\), or on a host without internet access build it from Go modules: eval "\$\(bash scripts\/toolchain\.sh\)"\n/,
  );
  t.regex(r.stdout, /\n– plugin command 1\.2\.1 +no working pulumi CLI to ask\n/);
  t.true(r.stdout.endsWith("doctor: 1 check failed; fix it before `npm run lab -- up`.\n"), r.stdout);
  t.false(existsSync(path.join(dir, ".pulumi-state")));
});

test("doctor with a bad argument prints its usage and exits 2", (t) => {
  const dir = projectCopy(t);
  const r = doctor(dir, ["vxlan", "--yes"], process.env);
  t.is(r.code, 2);
  t.true(
    r.stdout.startsWith(
      'doctor: unexpected argument "--yes"\nusage: npm run lab -- doctor [stack] [--json] [--no-probe]',
    ),
    r.stdout,
  );
  t.false(existsSync(path.join(dir, ".pulumi-state")));
});
