/**
 * The host-side inputs the stack config names — files and tools on THIS host that the program will
 * read — checked before any resource is registered. A wrong one must fail `pulumi up` at once,
 * `--skip-preview` included (the Automation API's `stack.up()` always skips the preview): the
 * engine keeps going with whatever was registered before a throw, so a check that runs after the
 * nodes layer is declared boots every VM first (seen: 13 resources and 96 s before the air-gap
 * error).
 *
 * Inputs:
 * - `k3sAirgapDir`: the k3s binary, install.sh and image tarballs (infra/k3s/airgap.ts).
 * - `ciliumChart`: a local chart directory (with `Chart.yaml`) or packaged `.tgz` of `ciliumVersion`.
 *   Helm installs "from a chart directory or a packaged chart archive" and reads `name`/`version`
 *   from `Chart.yaml`, both required (https://helm.sh/docs/topics/charts/ "The Chart.yaml File");
 *   Helm ignores the requested version for local charts, so the file's own version must match.
 * - `imageUrl` as `file://` or an absolute path (image custom): a readable regular file.
 * - Ubuntu images: `gpgv` and Ubuntu's cloud-image keyring, which prove the signed SHA256SUMS
 *   (infra/libvirt/base-image/gpgv.ts).
 *
 * Read-only and synchronous (the program has no top-level await); reads only headers and
 * Chart.yaml. Used by the program (infra/index.ts), `npm run compare`'s preflight and doctor.
 */
import { closeSync, constants, accessSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";

import { chartSource } from "../cilium/release";
import { AirgapDirError, checkAirgapDir } from "../k3s/airgap";
import { checkGpgvAndKeyring, UBUNTU_CLOUDIMAGE_KEYRING } from "../libvirt/base-image/gpgv";
import { CILIUM_HELM_REPO } from "../versions";
import { PROJECT } from "./keys";
import type { LabConfig } from "./parse";

/** The config values the host-side checks read. */
export type HostInputConfig = Pick<
  LabConfig,
  "k3sAirgapDir" | "k3sVersion" | "ciliumChart" | "ciliumVersion" | "image" | "imageUrl"
>;

/** One unusable host-side input: which key names it, its value, what is wrong and how to fix it. */
export interface HostInputProblem {
  /** The config key (without `cilium-lab:`); `image` for the tools an Ubuntu image needs. */
  readonly key: "k3sAirgapDir" | "ciliumChart" | "imageUrl" | "image";
  readonly value: string;
  /** What is wrong, one sentence without the final period. */
  readonly problem: string;
  /** What to do. */
  readonly fix: string;
}

/** One input and its verdict; `skipped` says why it was not checked (not used by this config). */
export interface HostInputCheck {
  /** Row title, e.g. `k3sAirgapDir`. */
  readonly input: string;
  readonly key: HostInputProblem["key"];
  readonly value: string;
  readonly skipped?: string;
  /** What was found when it is fine. */
  readonly ok?: string;
  readonly problems: readonly HostInputProblem[];
}

/** Where the checks look; tests pass their own. */
export interface HostInputOptions {
  /** Relative `ciliumChart` paths resolve against this (the project directory). Default `process.cwd()`. */
  readonly cwd?: string;
  /** Ubuntu's cloud-image keyring. Default {@link UBUNTU_CLOUDIMAGE_KEYRING}. */
  readonly keyringPath?: string;
  /** PATH searched for `gpgv`. Default `process.env.PATH`. */
  readonly pathEnv?: string;
  /**
   * Whether to require `gpgv` and the keyring (Ubuntu images). Default true. The program passes
   * false in a preview: a preview downloads and verifies no image, so it does not need them.
   */
  readonly signatureTools?: boolean;
}

/** `<problem>. Fix: <fix>` texts (airgap.ts, gpgv.ts) split into their two halves. */
function splitFix(text: string, fixStart: RegExp): { problem: string; fix: string } {
  const m = fixStart.exec(text);
  if (m === null) {
    return { problem: text.replace(/\.$/, ""), fix: "" };
  }
  return { problem: text.slice(0, m.index).replace(/\.$/, ""), fix: text.slice(m.index + m[0].length).trim() };
}

/** Where an air-gap problem line's fix starts ("k3s: missing. Download …"). */
const AIRGAP_FIX = /\. (?=(Download|Create|Keep|Remove|Re-export) )/;

function checkAirgap(config: HostInputConfig): HostInputCheck {
  const base = { input: "k3sAirgapDir", key: "k3sAirgapDir", value: config.k3sAirgapDir } as const;
  if (config.k3sAirgapDir === "") {
    return { ...base, skipped: "empty: the nodes download k3s from the internet", problems: [] };
  }
  try {
    const found = checkAirgapDir(config.k3sAirgapDir, config.k3sVersion);
    return {
      ...base,
      ok: `k3s, install.sh and ${found.imageTarballs.length} image tarball(s) for ${config.k3sVersion}`,
      problems: [],
    };
  } catch (err) {
    if (!(err instanceof AirgapDirError)) {
      throw err;
    }
    const problems = err.problems.map((line, i) => {
      const { problem, fix } = splitFix(line, AIRGAP_FIX);
      const online = i === 0 ? ` (Or set ${PROJECT}:k3sAirgapDir to "" to install from the internet.)` : "";
      return { key: "k3sAirgapDir", value: config.k3sAirgapDir, problem, fix: `${fix}${online}`.trim() } as const;
    });
    return { ...base, problems };
  }
}

/** The first `n` bytes of a file. */
function head(file: string, n: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** A string field of a tar header (NUL-terminated). */
function tarField(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
}

/**
 * `<chart>/Chart.yaml` from a gzipped chart archive (POSIX ustar, as `helm package` writes it with
 * Go's archive/tar: name at 0, octal size at 124, prefix at 345, 512-byte blocks).
 */
export function chartYamlFromTgz(file: string): string | undefined {
  const tar = gunzipSync(readFileSync(file));
  for (let off = 0; off + 512 <= tar.length;) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) {
      return undefined;
    }
    const prefix = tarField(block, 345, 155);
    const name = prefix === "" ? tarField(block, 0, 100) : `${prefix}/${tarField(block, 0, 100)}`;
    const size = parseInt(tarField(block, 124, 12).trim() || "0", 8);
    if (/^[^/]+\/Chart\.yaml$/.test(name)) {
      return tar.subarray(off + 512, off + 512 + size).toString("utf8");
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

function checkChart(config: HostInputConfig, cwd: string): HostInputCheck {
  const base = { input: "ciliumChart", key: "ciliumChart", value: config.ciliumChart } as const;
  if (config.ciliumChart === "") {
    return {
      ...base,
      skipped: `empty: Helm downloads chart ${config.ciliumVersion} from ${CILIUM_HELM_REPO}`,
      problems: [],
    };
  }
  const v = config.ciliumVersion;
  const pull = `Fetch it with \`helm pull cilium/cilium --version ${v} --destination ./charts\` and set ${PROJECT}:ciliumChart ./charts/cilium-${v}.tgz, or set it to "" to use ${CILIUM_HELM_REPO}.`;
  const problem = (what: string, fix: string = pull): HostInputCheck => ({
    ...base,
    problems: [{ key: "ciliumChart", value: config.ciliumChart, problem: what, fix }],
  });
  try {
    chartSource(v, config.ciliumChart, cwd);
  } catch (err) {
    const m = /^(.*?): the Helm values are rendered for .*?\. (Set .*)$/s.exec((err as Error).message);
    return problem(m?.[1] ?? (err as Error).message, m?.[2] ?? pull);
  }
  const abs = path.resolve(cwd, config.ciliumChart);
  const where = abs === config.ciliumChart ? abs : `${abs}, resolved against ${cwd}`;
  let chartYaml: string | undefined;
  try {
    const st = statSync(abs);
    if (st.isDirectory()) {
      try {
        chartYaml = readFileSync(path.join(abs, "Chart.yaml"), "utf8");
      } catch (err) {
        return problem(
          `${where} is a directory without a readable Chart.yaml (${(err as NodeJS.ErrnoException).code ?? "error"}): not a Helm chart`,
        );
      }
    } else if (st.isFile()) {
      accessSync(abs, constants.R_OK);
      const h = head(abs, 2);
      if (h.length < 2 || h[0] !== 0x1f || h[1] !== 0x8b) {
        return problem(`${where} is not a gzipped chart archive (.tgz)`);
      }
      try {
        chartYaml = chartYamlFromTgz(abs);
      } catch (err) {
        return problem(`${where} cannot be unpacked (${(err as Error).message}): a truncated download?`);
      }
      if (chartYaml === undefined) {
        return problem(`${where} holds no <chart>/Chart.yaml: not a Helm chart archive`);
      }
    } else {
      return problem(`${where} is neither a file nor a directory`);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    return problem(`${where} ${code === "ENOENT" ? "does not exist" : `cannot be read (${code})`}`);
  }
  let meta: { name?: unknown; version?: unknown } | null;
  try {
    meta = YAML.parse(chartYaml) as typeof meta;
  } catch (err) {
    return problem(`the Chart.yaml of ${where} is not YAML (${(err as Error).message.split("\n")[0] ?? ""})`);
  }
  const scalar = (v: unknown): string => (typeof v === "string" || typeof v === "number" ? String(v) : "");
  const name = scalar(meta?.name);
  const version = scalar(meta?.version);
  if (name !== "cilium") {
    return problem(`${where} is chart ${JSON.stringify(name)}, not cilium`);
  }
  if (version !== v) {
    return problem(
      `${where} is chart cilium ${version} but ${PROJECT}:ciliumVersion is ${v} (the Helm values are rendered for ${v}'s key names)`,
      `Set ${PROJECT}:ciliumVersion to ${version}, or ${pull.charAt(0).toLowerCase()}${pull.slice(1)}`,
    );
  }
  return { ...base, ok: `chart cilium ${version} (${abs})`, problems: [] };
}

function checkImageFile(config: HostInputConfig): HostInputCheck {
  const base = { input: "imageUrl", key: "imageUrl", value: config.imageUrl } as const;
  if (config.image !== "custom") {
    return { ...base, skipped: `image ${config.image}: downloaded, no host file`, problems: [] };
  }
  const isFileUrl = config.imageUrl.startsWith("file://");
  if (!isFileUrl && !path.isAbsolute(config.imageUrl)) {
    return { ...base, skipped: "an http(s):// URL: downloaded, no host file", problems: [] };
  }
  const fix = `Point ${PROJECT}:imageUrl at an existing qcow2 file (file:///path or /path) readable by this user, and set ${PROJECT}:imageSha256 to its \`sha256sum\`.`;
  let file: string;
  try {
    file = isFileUrl ? fileURLToPath(config.imageUrl) : config.imageUrl;
  } catch (err) {
    return {
      ...base,
      problems: [
        {
          key: "imageUrl",
          value: config.imageUrl,
          problem: `is not a usable file:// URL (${(err as Error).message})`,
          fix,
        },
      ],
    };
  }
  try {
    const st = statSync(file);
    if (!st.isFile()) {
      return {
        ...base,
        problems: [{ key: "imageUrl", value: config.imageUrl, problem: `${file} is not a regular file`, fix }],
      };
    }
    accessSync(file, constants.R_OK);
    return { ...base, ok: `${file}, ${(st.size / 1024 ** 2).toFixed(0)} MiB`, problems: [] };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    return {
      ...base,
      problems: [
        {
          key: "imageUrl",
          value: config.imageUrl,
          problem: `${file} ${code === "ENOENT" ? "does not exist" : `cannot be read (${code})`}`,
          fix,
        },
      ],
    };
  }
}

function checkSignatureTools(
  config: HostInputConfig,
  keyringPath: string,
  pathEnv: string,
  wanted: boolean,
): HostInputCheck {
  const base = { input: "gpgv and Ubuntu's keyring", key: "image", value: config.image } as const;
  if (config.image === "custom") {
    return { ...base, skipped: "image custom: checked against imageSha256, no signature", problems: [] };
  }
  if (!wanted) {
    return { ...base, skipped: "a preview downloads and verifies no image", problems: [] };
  }
  const problems = checkGpgvAndKeyring(keyringPath, pathEnv).map((line) => {
    const { problem, fix } = splitFix(line, /\s*Fix: /);
    return { key: "image", value: config.image, problem, fix } as const;
  });
  return { ...base, ...(problems.length === 0 ? { ok: `gpgv on PATH, ${keyringPath} readable` } : {}), problems };
}

/** Every host-side input with its verdict, in a fixed order (doctor shows one row each). */
export function hostInputChecks(config: HostInputConfig, options: HostInputOptions = {}): HostInputCheck[] {
  return [
    checkAirgap(config),
    checkChart(config, options.cwd ?? process.cwd()),
    checkImageFile(config),
    checkSignatureTools(
      config,
      options.keyringPath ?? UBUNTU_CLOUDIMAGE_KEYRING,
      options.pathEnv ?? process.env.PATH ?? "",
      options.signatureTools ?? true,
    ),
  ];
}

/** Every problem of every host-side input; empty when all are usable. */
export function checkHostInputs(config: HostInputConfig, options: HostInputOptions = {}): HostInputProblem[] {
  return hostInputChecks(config, options).flatMap((c) => c.problems);
}

/** One problem as a line: `cilium-lab:<key> "<value>": <problem>. Fix: <fix>` */
export function formatHostInputProblem(p: HostInputProblem): string {
  return `${PROJECT}:${p.key} ${JSON.stringify(p.value)}: ${p.problem}.${p.fix === "" ? "" : ` Fix: ${p.fix}`}`;
}

/**
 * Every unusable host-side input in one error. A `pulumi.RunError`, so `pulumi up`/`preview`
 * prints the message without a stack trace.
 */
export class HostInputsError extends pulumi.RunError {
  override name = "HostInputsError";
  constructor(readonly problems: readonly HostInputProblem[]) {
    super(
      `${PROJECT}: ${problems.length} problem${problems.length === 1 ? "" : "s"} with files or tools on this host that the stack config names ` +
        `(checked before anything is created; nothing was):\n` +
        problems.map((p) => `- ${formatHostInputProblem(p)}`).join("\n"),
    );
  }
}

/** Throws one {@link HostInputsError} listing every problem; returns when every input is usable. */
export function assertHostInputs(config: HostInputConfig, options: HostInputOptions = {}): void {
  const problems = checkHostInputs(config, options);
  if (problems.length > 0) {
    throw new HostInputsError(problems);
  }
}
