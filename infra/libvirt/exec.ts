/**
 * Running host tools (`virsh`, `qemu-img`, `cloud-localds`, `ssh`, `ip`) from dynamic provider
 * methods, and turning their failures into errors that name the command, the exit code, the
 * stderr tail and a fix.
 *
 * Why the odd shape: provider objects are serialized by Pulumi's closure serializer (function text
 * plus captured values) and run in the engine's provider host. A module-level
 * `promisify(execFile)` is a native bound function and cannot be serialized, so every builtin is
 * `require`d inside the function that uses it. Binary paths are read from the environment inside
 * the call, so tests can point `VIRSH_BIN` & co. at a shim without anything being captured at
 * serialization time.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import { NO_ANSWER_MARKER, classifySshFailure } from "./remote";
import { connectUri, isSshUri } from "./uri";

/** The builtin modules providers use. */
interface Builtins {
  "node:child_process": typeof import("node:child_process");
  "node:fs/promises": typeof import("node:fs/promises");
  "node:fs": typeof import("node:fs");
  "node:path": typeof import("node:path");
  "node:os": typeof import("node:os");
  "node:crypto": typeof import("node:crypto");
  "node:net": typeof import("node:net");
}

/** A builtin module, loaded when called (serialization-safe). */
function builtin<K extends keyof Builtins>(name: K): Builtins[K] {
  return require(name) as Builtins[K];
}

export const childProcess = (): Builtins["node:child_process"] => builtin("node:child_process");
export const fsp = (): Builtins["node:fs/promises"] => builtin("node:fs/promises");
export const fsSync = (): Builtins["node:fs"] => builtin("node:fs");
export const pathMod = (): Builtins["node:path"] => builtin("node:path");
export const osMod = (): Builtins["node:os"] => builtin("node:os");
export const cryptoMod = (): Builtins["node:crypto"] => builtin("node:crypto");
export const netMod = (): Builtins["node:net"] => builtin("node:net");

/** The host tools we run, the environment variable that overrides each path, and its Debian package. */
export const TOOLS = {
  virsh: { env: "VIRSH_BIN", pkg: "libvirt-clients" },
  "qemu-img": { env: "QEMU_IMG_BIN", pkg: "qemu-utils" },
  "cloud-localds": { env: "CLOUD_LOCALDS_BIN", pkg: "cloud-image-utils" },
  ssh: { env: "SSH_BIN", pkg: "openssh-client" },
  ip: { env: "IP_BIN", pkg: "iproute2" },
} as const;

/** A tool name from {@link TOOLS}. */
export type Tool = keyof typeof TOOLS;

/** The path to run for a tool: `$<TOOL>_BIN` when set (read at call time), else the name on PATH. */
export function toolPath(tool: Tool): string {
  const override = process.env[TOOLS[tool].env];
  return override !== undefined && override !== "" ? override : tool;
}

/** The outcome of one command; never thrown, so callers decide what a failure means. */
export interface RunResult {
  /** The command as run, for messages (never contains secrets: secrets go through files or stdin). */
  readonly argv: readonly string[];
  /** Exit code; 127 when the binary was not found, 124 when it was killed by our timeout. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Written to stdin, then stdin is closed. */
  readonly input?: string;
  /** Kill after this many milliseconds (code 124). Default 120 000. */
  readonly timeoutMs?: number;
  /** Working directory. */
  readonly cwd?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run in a process group of its own and kill the whole group on timeout: `virsh -c qemu+ssh://`
   * runs ssh as its child, which would otherwise outlive a killed virsh while it waits on a host
   * that never answers.
   */
  readonly killGroup?: boolean;
}

/**
 * Runs a command with `LC_ALL=C` (libvirt messages are gettext-translated; we match stable English
 * substrings) and resolves with its result, whatever the exit code.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  if (options.killGroup === true) {
    return runInGroup(file, args, options);
  }
  const cp = childProcess();
  const argv = [file, ...args];
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve) => {
    const child = cp.execFile(
      file,
      args,
      {
        env: { ...process.env, ...options.env, LC_ALL: "C", LANG: "C" },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
        cwd: options.cwd,
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ argv, code: 0, stdout, stderr });
          return;
        }
        const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (e.code === "ENOENT") {
          resolve({ argv, code: 127, stdout, stderr: `${file}: command not found` });
        } else if (e.killed === true) {
          resolve({ argv, code: 124, stdout, stderr: `${stderr}\n${file}: timed out after ${timeoutMs} ms` });
        } else {
          resolve({ argv, code: typeof e.code === "number" ? e.code : 1, stdout, stderr: stderr || e.message });
        }
      },
    );
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) {
      child.stdin?.end(options.input);
    } else {
      child.stdin?.end();
    }
  });
}

/**
 * {@link run} with `killGroup`: spawned as the leader of a new process group (`detached`; execFile
 * would drop that option), and at the timeout the whole group gets SIGKILL, so children such as
 * the ssh under `virsh -c qemu+ssh://` die with it.
 */
function runInGroup(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const argv = [file, ...args];
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve) => {
    const child = childProcess().spawn(file, args, {
      env: { ...process.env, ...options.env, LC_ALL: "C", LANG: "C" },
      cwd: options.cwd,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let done = false;
    // Declared before `finish` uses it: Pulumi's closure serializer rejects a use before the
    // declaration ("Unexpected missing variable in closure environment: timer").
    let timer: NodeJS.Timeout | undefined = undefined;
    const finish = (result: RunResult): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(result);
      }
    };
    timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") {
        finish({ argv, code: 127, stdout: "", stderr: `${file}: command not found` });
      }
    });
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (timedOut) {
        finish({ argv, code: 124, stdout, stderr: `${stderr}\n${file}: timed out after ${timeoutMs} ms` });
      } else {
        finish({ argv, code: code ?? 1, stdout, stderr: stderr || (signal === null ? "" : `killed by ${signal}`) });
      }
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input);
  });
}

/**
 * Runs `virsh -c <uri> <args>`. For `qemu+ssh://` URIs: `no_tty=1` is added (ssh never prompts, see
 * uri.ts connectUri), virsh and its ssh run as one process group killed at the timeout, and when
 * the call timed out a short probe (`virsh uri`) tells a host that does not answer at all (stderr
 * then carries {@link NO_ANSWER_MARKER}) from a slow command on a working connection.
 */
export async function virsh(uri: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  if (!isSshUri(uri)) {
    return run(toolPath("virsh"), ["-c", uri, ...args], options);
  }
  const target = connectUri(uri);
  const result = await run(toolPath("virsh"), ["-c", target, ...args], { ...options, killGroup: true });
  if (result.code !== 124) {
    return result;
  }
  const probeMs = Math.min(15_000, options.timeoutMs ?? 120_000);
  const probe = await run(toolPath("virsh"), ["-c", target, "uri"], { timeoutMs: probeMs, killGroup: true });
  const why =
    probe.code === 0
      ? "the connection works (`virsh uri` answered): the command itself took longer"
      : `${NO_ANSWER_MARKER} within ${options.timeoutMs ?? 120_000} ms, and \`virsh uri\` got none within ${probeMs} ms either${probe.code === 124 ? "" : `: ${tail(probe.stderr, 1)}`}`;
  return { ...result, stderr: `${result.stderr}\n${why}` };
}

/** Runs a tool from {@link TOOLS} by name. */
export function runTool(tool: Tool, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(toolPath(tool), args, options);
}

/** The last `n` non-empty lines of a text, with virsh's `error: ` prefixes removed, joined by " / ". */
export function tail(text: string, n = 3): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim().replace(/^error: /, ""))
    .filter((l) => l !== "");
  return lines.slice(-n).join(" / ");
}

/** Shell-like rendering of an argv for messages. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** Whether virsh failed because it could not connect to the daemon (as opposed to a missing object). */
export function isConnectionFailure(result: RunResult): boolean {
  return /failed to connect to the hypervisor|Failed to connect socket|Cannot recv data|End of file while reading data|authentication failed/i.test(
    result.stderr,
  );
}

/**
 * Whether virsh was refused because this user may not manage the daemon: polkit found no rule
 * granting `org.libvirt.unix.manage` (Debian grants group `libvirt` in
 * /usr/share/polkit-1/rules.d/60-libvirt.rules), or the socket's permissions shut the user out.
 * libvirt's messages (src/util/virpolkit.c, virPolkitCheckAuth): "no polkit agent available to
 * authenticate action '%s'" (no rule granted it and no agent can ask) and "access denied by
 * policy"; and src/rpc/virnetsocket.c's "Failed to connect socket to '%s'" with connect(2)'s EACCES.
 */
export function isNotPermitted(result: RunResult): boolean {
  return /no polkit agent available to authenticate action|access denied by policy|Failed to connect socket to '[^']*': Permission denied/i.test(
    result.stderr,
  );
}

/** The `cause` of our errors: the failed command with its exit code and stderr tail. */
export function commandError(result: RunResult): Error {
  return new Error(`\`${formatArgv(result.argv)}\` exited ${result.code}: ${tail(result.stderr, 5) || "(no stderr)"}`);
}

/** The error for a tool that is not installed (exit 127 from {@link run}): its Debian package, the command as `cause`. */
export function notInstalled(tool: string, pkg: string, result: RunResult): Error {
  return new Error(`\`${tool}\` not found on PATH; install Debian package \`${pkg}\` (apt-get install -y ${pkg}).`, {
    cause: commandError(result),
  });
}

/**
 * The error for a failed tool run: "<action> failed: <why>. Fix: <fix>", with the command as
 * `cause`. A missing binary and an unreachable libvirt daemon get their own fixes whatever `fix`
 * says, since those are what the user must repair first.
 */
export function toolFailure(action: string, result: RunResult, fix: string, uri?: string): Error {
  const cause = commandError(result);
  const tool = Object.entries(TOOLS).find(
    ([name, spec]) => result.argv[0] === name || result.argv[0] === process.env[spec.env],
  );
  if (result.code === 127) {
    const [name, spec] = tool ?? [result.argv[0] ?? "?", { env: "", pkg: "" }];
    return new Error(
      `${action} failed: \`${name}\` not found (ran \`${result.argv[0] ?? ""}\`). Fix: install the Debian package ${spec.pkg || "providing it"} (apt-get install ${spec.pkg || name})` +
        (spec.env ? ` or set ${spec.env} to its path.` : "."),
      { cause },
    );
  }
  const sshUri = result.argv[0] === toolPath("virsh") ? result.argv.find((a) => isSshUri(a)) : undefined;
  const ssh = sshUri === undefined ? undefined : classifySshFailure(sshUri, result);
  if (ssh !== undefined) {
    return new Error(`${action} failed: ${ssh.what} (virsh exit ${result.code}). Fix: ${ssh.fix}.`, { cause });
  }
  if (result.argv[0] === toolPath("virsh") && isNotPermitted(result)) {
    // qemu+ssh://user@host/system: the remote user on that host; a local URI: this process's user.
    const remote = /^[a-z+]+:\/\/(?:([^@/]+)@)?([^/:?]+)/.exec(uri ?? "");
    const user = remote?.[1] ?? (remote ? "(your ssh login)" : osMod().userInfo().username);
    return new Error(
      `${action} failed: user ${user} may not manage ${uri ?? "the libvirt daemon"}: ${tail(result.stderr, 1)} (virsh exit ${result.code}). ` +
        `Fix: ${remote ? `on ${remote[2]}: ` : ""}sudo usermod -aG libvirt ${user}, then log in again (or \`newgrp libvirt\`).`,
      { cause },
    );
  }
  if (result.argv[0] === toolPath("virsh") && isConnectionFailure(result)) {
    return new Error(
      `${action} failed: cannot reach libvirt at ${uri ?? "?"}: ${tail(result.stderr, 1)} (virsh exit ${result.code}). ` +
        "Fix: start the libvirt daemons (`virtlogd -d && libvirtd -d`, or `systemctl start libvirtd`) and check cilium-lab:libvirtUri.",
      { cause },
    );
  }
  return new Error(
    `${action} failed: ${tail(result.stderr, 3) || `exit ${result.code}`} (\`${formatArgv(result.argv)}\` exit ${result.code}). Fix: ${fix}`,
    {
      cause,
    },
  );
}

/** Runs virsh and throws {@link toolFailure} on a non-zero exit; returns stdout. */
export async function virshOk(uri: string, args: readonly string[], action: string, fix: string): Promise<string> {
  const result = await virsh(uri, args);
  if (result.code !== 0) {
    throw toolFailure(action, result, fix, uri);
  }
  return result.stdout;
}

/** `virsh <list command> --name`-style listing as a set of trimmed non-empty lines; throws when virsh fails. */
export async function virshList(uri: string, args: readonly string[], action: string): Promise<Set<string>> {
  const stdout = await virshOk(uri, args, action, "check that libvirtd is running and the URI is right");
  return new Set(
    stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== ""),
  );
}

/** Creates a private (0700) temporary directory under `parent` (default: the OS temp dir). */
export async function privateTempDir(prefix: string, parent?: string): Promise<string> {
  const fs = fsp();
  const path = pathMod();
  const dir = await fs.mkdtemp(path.join(parent ?? osMod().tmpdir(), prefix));
  await fs.chmod(dir, 0o700);
  return dir;
}

/**
 * `virsh <command> <file>` on `xml` written to `fileName` in a private temp directory (0600), which
 * is removed afterwards whatever virsh said (`define` and `net-define` take a file, not stdin).
 * Returns virsh's result: the caller decides what a failure means.
 */
export async function virshDefineXml(
  uri: string,
  command: "define" | "net-define",
  fileName: string,
  xml: string,
): Promise<RunResult> {
  const tmp = await privateTempDir(`cilium-lab-${command}-`);
  try {
    const file = pathMod().join(tmp, fileName);
    await fsp().writeFile(file, xml, { mode: 0o600 });
    return await virsh(uri, [command, file]);
  } finally {
    await fsp().rm(tmp, { recursive: true, force: true });
  }
}

/** Whether a path exists; throws on errors other than ENOENT/ENOTDIR (e.g. EACCES, EIO). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp().lstat(p);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      return false;
    }
    throw error;
  }
}

/** Removes a file; a missing file is fine. */
export async function removeFile(p: string): Promise<void> {
  try {
    await fsp().unlink(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw error;
    }
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
