/**
 * Shared by the real-engine tests: finds the `pulumi` CLI the toolchain script put on PATH, and
 * makes throwaway file backends. These tests never skip: without an engine they fail and say how
 * to get one.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, cpSync, mkdirSync, readFileSync, realpathSync, symlinkSync } from "node:fs";
import * as path from "node:path";

import { LocalWorkspace, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import type { ExecutionContext } from "ava";

import { REPO_ROOT, tempDir } from "../support/host";

export { REPO_ROOT, tempDir };

const HOW_TO_GET_AN_ENGINE =
  'Install the pulumi CLI (https://www.pulumi.com/docs/install/), or build one from Go modules: eval "$(bash scripts/toolchain.sh)"';

/** Absolute path of the first executable `pulumi` on PATH; throws with the fix if there is none. */
export function pulumiOnPath(): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") {
      continue;
    }
    const candidate = path.join(dir, "pulumi");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`no executable 'pulumi' on PATH (${process.env.PATH ?? "unset"}). ${HOW_TO_GET_AN_ENGINE}`);
}

/** The directory holding the real (symlink-resolved) `pulumi`: where the CLI looks for bundled plugins. */
export function pulumiBinDir(): string {
  return path.dirname(realpathSync(pulumiOnPath()));
}

/** The version `module` has in `tools/<wrapper>/go.mod` (a direct requirement line). */
export function goModRequirement(wrapper: string, module: string): string {
  const goMod = readFileSync(path.join(REPO_ROOT, "tools", wrapper, "go.mod"), "utf8");
  const escaped = module.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const version = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(goMod)?.[1];
  if (version === undefined) {
    throw new Error(`tools/${wrapper}/go.mod has no requirement on ${module}`);
  }
  return version;
}

/** The `"pulumi": {"version"}` an npm provider SDK asks the engine for (its plugin version). */
export function npmPluginVersion(pkg: string): string {
  const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "node_modules", pkg, "package.json"), "utf8")) as {
    pulumi?: { version?: string };
  };
  const version = manifest.pulumi?.version;
  if (!version) {
    throw new Error(`node_modules/${pkg}/package.json has no pulumi.version; run npm ci`);
  }
  return version;
}

/**
 * Environment for one test's engine runs: a fresh `file://` backend and a fixed passphrase, and
 * no way to download anything (plugins must come from the toolchain's PULUMI_HOME or beside the CLI).
 */
export function engineEnv(backendDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined) {
      env[key] = value;
    }
  }
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  return {
    ...env,
    PULUMI_BACKEND_URL: `file://${backendDir}`,
    PULUMI_CONFIG_PASSPHRASE: "cilium-lab-engine-test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
  };
}

/**
 * A working directory for an inline Automation API program. Plugins start in the program's
 * directory, and the dynamic-provider shim resolves `@pulumi/pulumi` from there
 * (`node -e "require.resolve('@pulumi/pulumi/cmd/dynamic-provider')"`), so it links the project's
 * node_modules.
 */
export function inlineWorkDir(t: ExecutionContext): string {
  const dir = tempDir(t, "inline");
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

/**
 * An Automation API stack running `program` inline, in its own {@link inlineWorkDir}, on the
 * backend `envVars.PULUMI_BACKEND_URL` names (see {@link engineEnv}).
 */
export function inlineStack(
  t: ExecutionContext,
  args: {
    readonly stackName: string;
    readonly projectName: string;
    readonly program: PulumiFn;
    readonly envVars: Record<string, string>;
  },
): Promise<Stack> {
  const { stackName, projectName, program, envVars } = args;
  return LocalWorkspace.createOrSelectStack(
    { stackName, projectName, program },
    {
      workDir: inlineWorkDir(t),
      envVars,
      projectSettings: { name: projectName, runtime: "nodejs", backend: { url: envVars.PULUMI_BACKEND_URL ?? "" } },
    },
  );
}

/**
 * A copy of the project (without node_modules, .git and local state) in a temp directory, with
 * node_modules linked. `pulumi stack init` with the passphrase provider writes an encryption salt
 * into stacks/Pulumi.<stack>.yaml, so the engine must not run on the checkout itself.
 */
export function projectCopy(t: ExecutionContext): string {
  const dir = tempDir(t, "project");
  const skip = new Set(["node_modules", ".git", ".pulumi-state", "results"]);
  cpSync(REPO_ROOT, dir, {
    recursive: true,
    filter: (src) => !skip.has(path.relative(REPO_ROOT, src).split(path.sep)[0] ?? ""),
  });
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  mkdirSync(path.join(dir, ".pulumi-state"));
  return dir;
}

/** Runs the pulumi CLI; on a non-zero exit the error carries its stdout and stderr. */
export function pulumi(args: string[], options: { cwd: string; env: Record<string, string> }): string {
  try {
    return execFileSync(pulumiOnPath(), args, {
      ...options,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string };
    throw new Error(
      `pulumi ${args.join(" ")} exited ${e.status ?? "?"}\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`,
    );
  }
}

/** One row of `pulumi plugin ls --json`. */
export interface InstalledPlugin {
  readonly name: string;
  readonly kind: string;
  readonly version: string;
}

/** The resource plugins `pulumi plugin ls --json` lists under `env`'s PULUMI_HOME. */
export function installedResourcePlugins(env: Record<string, string>): InstalledPlugin[] {
  const all = JSON.parse(pulumi(["plugin", "ls", "--json"], { cwd: REPO_ROOT, env })) as InstalledPlugin[];
  return all.filter((p) => p.kind === "resource");
}
