/**
 * The air-gap directory check, on real directories of the host: an empty one and wrong ones fail
 * with the exact error (every problem, each with where to download the right file for the
 * configured k3s release); fake files of the right shape (an ELF header written here, a shell
 * script, zstd/gzip/tar magic) pass. No real k3s binary can be obtained on our machines.
 */
import test from "ava";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { AirgapDirError, checkAirgapDir } from "../../infra/k3s/airgap";

const VERSION = "v1.26.6+k3s1";
const K3S_URL = "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s";
const IMAGES_URL = "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s-airgap-images-amd64.tar.zst";
const SCRIPT_URL = "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh";
const FOOTER = `Or set cilium-lab:k3sAirgapDir to "" to install from the internet (the nodes then need to reach github.com).`;

/** A 64-byte ELF64 little-endian header: e_type 2 (EXEC), e_machine as given (0x3e = x86-64). */
function elfHeader(machine = 0x3e, elfClass = 2): Buffer {
  const h = Buffer.alloc(64);
  h.write("\x7fELF", 0, "latin1");
  h[4] = elfClass;
  h[5] = 1;
  h[6] = 1;
  h.writeUInt16LE(2, 16);
  h.writeUInt16LE(machine, 18);
  return h;
}

const INSTALL_SH = "#!/bin/sh\nset -e\n# the k3s installer honours INSTALL_K3S_SKIP_DOWNLOAD\n";
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
const GZIP = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
function tar(): Buffer {
  const b = Buffer.alloc(1024);
  b.write("hello.txt", 0);
  b.write("ustar", 257, "latin1");
  return b;
}

/** A fresh directory with `files` (name → content); removed after the test. */
function dirWith(t: { teardown(fn: () => void): void }, files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), "cl-airgap-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

function refusal(dir: string): AirgapDirError {
  try {
    checkAirgapDir(dir, VERSION);
  } catch (err) {
    if (err instanceof AirgapDirError) {
      return err;
    }
    throw err;
  }
  throw new Error(`expected ${dir} to be refused`);
}

test("an empty directory is refused with the three missing files and where to download each for the k3s version", (t) => {
  const dir = dirWith(t, {});
  t.is(
    refusal(dir).message,
    `cilium-lab:k3sAirgapDir ${dir} cannot be used to install k3s v1.26.6+k3s1 (3 problems):\n` +
      `- k3s: missing. Download ${K3S_URL} (linux amd64) as ${dir}/k3s.\n` +
      `- install.sh: missing. Download ${SCRIPT_URL} (or https://get.k3s.io) as ${dir}/install.sh.\n` +
      `- k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too). Download ${IMAGES_URL} into ${dir}.\n` +
      FOOTER,
  );
});

test("a directory of wrong files (a text file named k3s, an HTML page as install.sh, a tarball that is not zstd) is refused naming each", (t) => {
  const dir = dirWith(t, {
    k3s: "not a binary\n",
    "install.sh": "<!DOCTYPE html><html>404</html>\n",
    "k3s-airgap-images-amd64.tar.zst": GZIP,
  });
  t.is(
    refusal(dir).message,
    `cilium-lab:k3sAirgapDir ${dir} cannot be used to install k3s v1.26.6+k3s1 (3 problems):\n` +
      `- k3s: not an ELF executable (it starts with "not a bi"). Download ${K3S_URL} (linux amd64) as ${dir}/k3s.\n` +
      `- install.sh: not a shell script (it starts with "<!DOCTYP": an HTML page?). Download ${SCRIPT_URL} (or https://get.k3s.io) as ${dir}/install.sh.\n` +
      `- k3s-airgap-images-amd64.tar.zst: not a zstd file (it starts with bytes 1f 8b 08 00 00 00 00 00). Download ${IMAGES_URL} into ${dir}.\n` +
      FOOTER,
  );
});

test("an arm64 k3s, a foreign shell script, images for another architecture and a broken extra tarball are each refused", (t) => {
  const dir = dirWith(t, {
    k3s: elfHeader(0xb7),
    "install.sh": "#!/bin/bash\necho hello\n",
    "k3s-airgap-images-amd64.tar": tar(),
    "k3s-airgap-images-arm64.tar.zst": ZSTD,
    "cilium.tar.gz": "oops",
  });
  t.is(
    refusal(dir).message,
    `cilium-lab:k3sAirgapDir ${dir} cannot be used to install k3s v1.26.6+k3s1 (4 problems):\n` +
      `- k3s: an ELF executable for arm64, not x86-64. Download ${K3S_URL} (linux amd64) as ${dir}/k3s.\n` +
      `- install.sh: a shell script, but not k3s's install script (it never mentions INSTALL_K3S_SKIP_DOWNLOAD). Download ${SCRIPT_URL} (or https://get.k3s.io) as ${dir}/install.sh.\n` +
      `- k3s-airgap-images-arm64.tar.zst: images for another architecture (the lab's nodes are amd64). Remove it. Download ${IMAGES_URL} into ${dir}.\n` +
      `- cilium.tar.gz: not a gzip file (it starts with "oops"). Re-export it (e.g. docker save <image> | zstd > cilium.tar.gz) or remove it.\n` +
      FOOTER,
  );
});

test("two copies of the k3s images and a 32-bit k3s are refused", (t) => {
  const dir = dirWith(t, {
    k3s: elfHeader(0x03, 1),
    "install.sh": INSTALL_SH,
    "k3s-airgap-images-amd64.tar.zst": ZSTD,
    "k3s-airgap-images-amd64.tar.gz": GZIP,
  });
  t.deepEqual(refusal(dir).problems, [
    `k3s: an ELF file but not 64-bit little-endian (EI_CLASS 1, EI_DATA 1). Download ${K3S_URL} (linux amd64) as ${dir}/k3s.`,
    "k3s-airgap-images-amd64.tar.gz, k3s-airgap-images-amd64.tar.zst: the same images 2 times. Keep one of them (k3s would import each).",
  ]);
});

test("a directory that does not exist is refused with everything to download", (t) => {
  const dir = join(tmpdir(), "cl-airgap-does-not-exist");
  t.is(
    refusal(dir).message,
    `cilium-lab:k3sAirgapDir ${dir} cannot be used to install k3s v1.26.6+k3s1 (1 problem):\n` +
      `- ${dir} cannot be read (ENOENT). Create it and put k3s, install.sh and k3s-airgap-images-amd64.tar.zst in it: ` +
      `Download ${K3S_URL} (linux amd64) as ${dir}/k3s. Download ${SCRIPT_URL} (or https://get.k3s.io) as ${dir}/install.sh. ` +
      `Download ${IMAGES_URL} into ${dir}.\n` +
      FOOTER,
  );
});

test("a file given as the directory is refused", (t) => {
  const parent = dirWith(t, { "not-a-dir": "x" });
  const dir = join(parent, "not-a-dir");
  t.regex(refusal(dir).problems[0] ?? "", new RegExp(`^${dir} is not a directory\\. `));
});

test("fake but well-shaped artifacts pass: k3s images first, then the extra image tarballs by name; other files are ignored", (t) => {
  const dir = dirWith(t, {
    k3s: elfHeader(),
    "install.sh": INSTALL_SH,
    "k3s-airgap-images-amd64.tar.zst": ZSTD,
    "iperf3.tar": tar(),
    "cilium-1.13.4.tar.gz": GZIP,
    "sha256sum-amd64.txt": "abc  k3s\n",
    "README.md": "notes\n",
  });
  mkdirSync(join(dir, "subdir"));
  chmodSync(join(dir, "k3s"), 0o644); // not executable on the host: the node gets mode 0755 anyway.
  t.deepEqual(checkAirgapDir(dir, VERSION), {
    dir,
    k3sBinary: join(dir, "k3s"),
    installScript: join(dir, "install.sh"),
    imageTarballs: [
      join(dir, "k3s-airgap-images-amd64.tar.zst"),
      join(dir, "cilium-1.13.4.tar.gz"),
      join(dir, "iperf3.tar"),
    ],
  });
});

test("the images tarball may be .tar.gz or .tar instead of .tar.zst", (t) => {
  for (const [name, content] of [
    ["k3s-airgap-images-amd64.tar.gz", GZIP],
    ["k3s-airgap-images-amd64.tar", tar()],
  ] as const) {
    const dir = dirWith(t, { k3s: elfHeader(), "install.sh": INSTALL_SH, [name]: content });
    t.deepEqual(checkAirgapDir(dir, VERSION).imageTarballs, [join(dir, name)]);
  }
});
