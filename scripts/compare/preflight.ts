/**
 * Checks run before `compare` changes anything: the Pulumi CLI, libvirt access and the host-side
 * inputs the stack config names (air-gap directory, local chart, image file, gpgv and keyring).
 * Each failure says what is missing and the command that fixes it.
 */
import { execFile } from "node:child_process";

import { checkHostInputs, formatHostInputProblem, type HostInputOptions } from "../../infra/config/host-inputs";
import { loadStackConfig } from "../doctor/stack-config";

/** A failed prerequisite; `message` is shown as is, exit code 3. */
export class PreflightError extends Error {
  override readonly name = "PreflightError";
}

/** The result of running one command: exit code (or the spawn error code, e.g. `ENOENT`) and output. */
export interface CommandResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args…` with a timeout; never throws. */
export function run(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { env, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ code: 0, stdout, stderr });
        return;
      }
      const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
      resolve({
        code: typeof code === "number" || typeof code === "string" ? code : err.killed ? "ETIMEDOUT" : 1,
        stdout,
        stderr,
      });
    });
  });
}

/** Tail of a command's stderr for an error message. */
function tail(text: string, lines = 5): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

/**
 * `pulumi version` works; returns the version (e.g. `v3.248.0`). The message names both ways to
 * get a CLI: the installer, or scripts/toolchain.sh on hosts without internet access.
 */
export async function checkPulumi(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const r = await run("pulumi", ["version"], env);
  if (r.code === "ENOENT") {
    throw new PreflightError(
      "compare: the pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/), " +
        'or on a host without internet access build it from Go modules: eval "$(bash scripts/toolchain.sh)"',
    );
  }
  if (r.code !== 0) {
    throw new PreflightError(`compare: \`pulumi version\` failed (exit ${r.code}):\n${tail(r.stderr || r.stdout)}`);
  }
  return r.stdout.trim();
}

/**
 * `virsh -c <uri> version` works: libvirtd runs and this user may use it. Returns the first line of
 * the answer (e.g. `Compiled against library: libvirt 9.0.0`).
 */
export async function checkLibvirt(uri: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const r = await run("virsh", ["-c", uri, "version"], env);
  if (r.code === "ENOENT") {
    throw new PreflightError(
      "compare: virsh is not on PATH. Install libvirt (Debian/Ubuntu: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils)",
    );
  }
  if (r.code !== 0) {
    throw new PreflightError(
      `compare: no libvirt access: \`virsh -c ${uri} version\` failed (exit ${r.code}):\n${tail(r.stderr || r.stdout)}\n` +
        "Start libvirtd (systemctl start libvirtd, or libvirtd -d and virtlogd -d without systemd) and run as root " +
        "or as a member of the libvirt group.",
    );
  }
  return (
    r.stdout
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? ""
  );
}

/**
 * The host-side inputs of the stack's config (read from its stack file as `up` will see them; the
 * mode switches change no host-side key) are usable. The program checks them first too
 * (infra/index.ts), but failing here, before the backend and the stack are touched, leaves
 * everything as it was.
 * A config the parser refuses is left to the mode planning, which reports it with every mode.
 */
export function checkStackHostInputs(projectDir: string, stack: string, options: HostInputOptions = {}): void {
  const loaded = loadStackConfig(projectDir, stack);
  if (!loaded.ok) {
    return;
  }
  const problems = checkHostInputs(loaded.config, { cwd: projectDir, ...options });
  if (problems.length > 0) {
    throw new PreflightError(
      `compare: stack ${stack} names ${problems.length === 1 ? "a file or tool" : "files or tools"} this host cannot provide ` +
        `(${loaded.file.file}; nothing was changed):\n` +
        problems.map((p) => `- ${formatHostInputProblem(p)}`).join("\n"),
    );
  }
}
