/**
 * The host-side check of `cilium-lab:k3sAirgapDir`, run while the program is evaluated (preview
 * included), before any SSH step: a missing or wrong file fails the whole `pulumi up` with one
 * error listing every problem and where to download the right file for the configured k3sVersion,
 * instead of a failure on the third node halfway through an install.
 *
 * What k3s's air-gap install needs (https://docs.k3s.io/installation/airgap): the `k3s` binary of
 * the release, the images tarball `k3s-airgap-images-<arch>.tar.zst` (or `.tar.gz`, `.tar`) placed
 * in /var/lib/rancher/k3s/agent/images/, and the install script run with
 * `INSTALL_K3S_SKIP_DOWNLOAD=true`. Every other image tarball in the directory (Cilium, Hubble,
 * iperf3) goes to the same images directory on every node; k3s imports them at start.
 *
 * Files are recognised by their first bytes, not their names: an HTML error page saved as `k3s`, an
 * arm64 binary, or a truncated tarball is caught here.
 */
import { closeSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

import * as pulumi from "@pulumi/pulumi";

import { installerUrl, releaseAssetUrl } from "./args";

/** The k3s images tarball name stem for the lab's nodes (x86-64 VMs). */
export const K3S_IMAGES_STEM = "k3s-airgap-images-amd64";
/** Accepted image tarball suffixes, in the order k3s's releases list them (zstd is the smallest). */
export const IMAGE_SUFFIXES = [".tar.zst", ".tar.gz", ".tar"] as const;

/** The checked contents of an air-gap directory: absolute paths. */
export interface AirgapArtifacts {
  /** The directory, as configured. */
  readonly dir: string;
  /** The linux amd64 `k3s` binary. */
  readonly k3sBinary: string;
  /** k3s's `install.sh`. */
  readonly installScript: string;
  /** The k3s images tarball first, then every other image tarball, by name. */
  readonly imageTarballs: readonly string[];
}

/**
 * One error for every problem of an air-gap directory; `problems` has one line each. A
 * `pulumi.RunError`, so `pulumi up`/`preview` prints the message without a stack trace.
 */
export class AirgapDirError extends pulumi.RunError {
  override name = "AirgapDirError";
  constructor(
    readonly dir: string,
    readonly version: string,
    readonly problems: readonly string[],
  ) {
    super(
      `cilium-lab:k3sAirgapDir ${dir} cannot be used to install k3s ${version} ` +
        `(${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `- ${p}`).join("\n") +
        `\nOr set cilium-lab:k3sAirgapDir to "" to install from the internet (the nodes then need to reach github.com).`,
    );
  }
}

/** The first `n` bytes of a file (fewer if it is shorter). */
function head(path: string, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const read = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** How a file's first bytes look in a message: printable text quoted, else hex. */
function describeStart(bytes: Buffer): string {
  if (bytes.length === 0) {
    return "it is empty";
  }
  const start = bytes.subarray(0, 8);
  const text = start.toString("latin1");
  if (/^[\x20-\x7e]+$/.test(text)) {
    return `it starts with ${JSON.stringify(text)}`;
  }
  return `it starts with bytes ${[...start].map((b) => b.toString(16).padStart(2, "0")).join(" ")}`;
}

/** e_machine values a wrong download would have. */
const ELF_MACHINES: Record<number, string> = {
  0x03: "x86 (32-bit)",
  0x28: "arm",
  0xb7: "arm64",
  0x16: "s390x",
  0x3e: "x86-64",
};

/** Why `path` is not a linux x86-64 ELF executable, or undefined when it is one. */
function notAnAmd64Executable(path: string): string | undefined {
  const h = head(path, 64);
  if (h.length < 20 || h[0] !== 0x7f || h.toString("latin1", 1, 4) !== "ELF") {
    return `not an ELF executable (${describeStart(h)}${h.toString("latin1", 0, 1) === "<" ? ": an HTML page?" : ""})`;
  }
  if (h[4] !== 2 || h[5] !== 1) {
    return `an ELF file but not 64-bit little-endian (EI_CLASS ${h[4]}, EI_DATA ${h[5]})`;
  }
  const type = h.readUInt16LE(16);
  if (type !== 2 && type !== 3) {
    return `an ELF file but not an executable (e_type ${type})`;
  }
  const machine = h.readUInt16LE(18);
  if (machine !== 0x3e) {
    return `an ELF executable for ${ELF_MACHINES[machine] ?? `machine 0x${machine.toString(16)}`}, not x86-64`;
  }
  return undefined;
}

/** Why `path` is not k3s's install script, or undefined when it looks like it. */
function notTheInstallScript(path: string): string | undefined {
  const h = head(path, 64 * 1024);
  const text = h.toString("utf8");
  const first = text.split("\n", 1)[0] ?? "";
  if (!/^#!\s*\/(usr\/)?bin\/(env\s+)?(ba|da)?sh\b/.test(first)) {
    return `not a shell script (${describeStart(h)}${first.startsWith("<") ? ": an HTML page?" : ""})`;
  }
  if (!text.includes("INSTALL_K3S_SKIP_DOWNLOAD")) {
    return "a shell script, but not k3s's install script (it never mentions INSTALL_K3S_SKIP_DOWNLOAD)";
  }
  return undefined;
}

/** Why `path` is not an image tarball of the kind its name says, or undefined. */
function notATarball(path: string, name: string): string | undefined {
  const h = head(path, 512);
  if (name.endsWith(".tar.zst")) {
    return h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528 ? undefined : `not a zstd file (${describeStart(h)})`;
  }
  if (name.endsWith(".tar.gz")) {
    return h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b ? undefined : `not a gzip file (${describeStart(h)})`;
  }
  return h.length >= 262 && h.toString("latin1", 257, 262) === "ustar"
    ? undefined
    : `not a tar archive (${describeStart(h)})`;
}

/** The image tarball suffix of a file name, if it has one. */
function imageSuffix(name: string): string | undefined {
  return IMAGE_SUFFIXES.find((s) => name.endsWith(s));
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Checks an air-gap directory for k3s `version`; returns its artifacts or throws one
 * {@link AirgapDirError} listing every problem with its fix. Reads only the first bytes of each
 * file: cheap enough for every preview.
 */
export function checkAirgapDir(dir: string, version: string): AirgapArtifacts {
  const k3sUrl = releaseAssetUrl(version, "k3s");
  const imagesUrl = releaseAssetUrl(version, `${K3S_IMAGES_STEM}.tar.zst`);
  const scriptUrl = installerUrl(version);
  const fixK3s = `Download ${k3sUrl} (linux amd64) as ${join(dir, "k3s")}.`;
  const fixImages = `Download ${imagesUrl} into ${dir}.`;
  const fixScript = `Download ${scriptUrl} (or https://get.k3s.io) as ${join(dir, "install.sh")}.`;

  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) {
      throw new AirgapDirError(dir, version, [
        `${dir} is not a directory. Create it and put k3s, install.sh and ${K3S_IMAGES_STEM}.tar.zst in it: ${fixK3s} ${fixScript} ${fixImages}`,
      ]);
    }
    names = readdirSync(dir).sort();
  } catch (err) {
    if (err instanceof AirgapDirError) {
      throw err;
    }
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new AirgapDirError(dir, version, [
      `${dir} cannot be read (${code}). Create it and put k3s, install.sh and ${K3S_IMAGES_STEM}.tar.zst in it: ${fixK3s} ${fixScript} ${fixImages}`,
    ]);
  }

  const problems: string[] = [];
  const k3sBinary = join(dir, "k3s");
  if (!isFile(k3sBinary)) {
    problems.push(`k3s: missing. ${fixK3s}`);
  } else {
    const why = notAnAmd64Executable(k3sBinary);
    if (why) {
      problems.push(`k3s: ${why}. ${fixK3s}`);
    }
  }

  const installScript = join(dir, "install.sh");
  if (!isFile(installScript)) {
    problems.push(`install.sh: missing. ${fixScript}`);
  } else {
    const why = notTheInstallScript(installScript);
    if (why) {
      problems.push(`install.sh: ${why}. ${fixScript}`);
    }
  }

  const k3sImages = names.filter((n) => IMAGE_SUFFIXES.some((s) => n === `${K3S_IMAGES_STEM}${s}`));
  const otherArch = names.filter((n) => n.startsWith("k3s-airgap-images-") && imageSuffix(n) && !k3sImages.includes(n));
  const extras = names.filter(
    (n) => imageSuffix(n) && !k3sImages.includes(n) && !otherArch.includes(n) && isFile(join(dir, n)),
  );
  if (k3sImages.length === 0) {
    problems.push(`${K3S_IMAGES_STEM}.tar.zst: missing (.tar.gz or .tar are accepted too). ${fixImages}`);
  } else if (k3sImages.length > 1) {
    problems.push(
      `${k3sImages.join(", ")}: the same images ${k3sImages.length} times. Keep one of them (k3s would import each).`,
    );
  }
  for (const name of otherArch) {
    problems.push(`${name}: images for another architecture (the lab's nodes are amd64). Remove it. ${fixImages}`);
  }
  for (const name of [...k3sImages, ...extras]) {
    const path = join(dir, name);
    if (!isFile(path)) {
      problems.push(
        `${name}: not a regular file. ${name === k3sImages[0] ? fixImages : "Remove it or replace it with an image tarball."}`,
      );
      continue;
    }
    const why = notATarball(path, name);
    if (why) {
      problems.push(
        `${name}: ${why}. ${k3sImages.includes(name) ? fixImages : `Re-export it (e.g. docker save <image> | zstd > ${name}) or remove it.`}`,
      );
    }
  }

  if (problems.length > 0) {
    throw new AirgapDirError(dir, version, problems);
  }
  return {
    dir,
    k3sBinary,
    installScript,
    imageTarballs: [...k3sImages, ...extras].map((n) => join(dir, n)),
  };
}
