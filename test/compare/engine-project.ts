/**
 * The real-engine compare tests' project: a temporary directory laid out like the repository
 * (`stackConfigDir: stacks`) whose program is test/compare/engine-program.ts, with its own file
 * backend and passphrase file; the `pulumi` CLI must be on PATH (scripts/toolchain.sh builds it).
 */
import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";

import { stackSettingsFile } from "../../scripts/compare/orchestrate";
import { REPO_ROOT } from "../support/stack-files";

const PULUMI_MISSING =
  'the real Pulumi engine is needed and `pulumi` is not on PATH: run eval "$(bash scripts/toolchain.sh)" first (it builds the CLI from Go modules; .ci/run does this)';

function pulumiOnPath(): boolean {
  try {
    execFileSync("pulumi", ["version"], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** The user's stack file: comments and a key compare must not touch. */
export const USER_FILE = `# The article's starting point, as the user wrote it.
config:
  cilium-lab:routingMode: vxlan
  cilium-lab:networkCidr: 192.168.150.0/24
  cilium-lab:nodeCpus: "4"
  cilium-lab:image: custom
  cilium-lab:imageUrl: /etc/os-release
  cilium-lab:imageSha256: "${"0".repeat(64)}"
`;
// The image keys: compare's preflight checks the host-side inputs of the stack's config, and an
// Ubuntu image needs Ubuntu's keyring, which CI hosts lack; the test program boots nothing, so any
// readable file stands in for the custom image.

export interface Project {
  dir: string;
  /** The environment that selects this project's backend and passphrase. */
  env: NodeJS.ProcessEnv;
  log: string;
  settingsFile: string;
  stack: Stack;
  /** The stack file right after the stack was created (with the passphrase salt Pulumi adds). */
  original: string;
  readLog(): Promise<string[]>;
}

/** A temporary project laid out like the repository, with its own file backend. */
async function project(
  t: { teardown(fn: () => Promise<void>): void },
  stackName: string,
  slowModes: readonly string[] = [],
  slowMs = 0,
): Promise<Project> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "clc-engine-"));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "stacks"));
  await fs.mkdir(path.join(dir, "state"));
  await fs.writeFile(
    path.join(dir, "Pulumi.yaml"),
    // TypeScript through tsx's loader, like the tests; the program file only calls engine-program.ts.
    'name: cilium-lab\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n    nodeargs: "--import tsx"\nmain: program.ts\nstackConfigDir: stacks\n',
  );
  await fs.writeFile(path.join(dir, "package.json"), '{ "name": "clc-engine-test", "private": true }\n');
  // The language host and the dynamic-provider host resolve @pulumi/pulumi and tsx from the program's directory.
  await fs.symlink(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
  const settingsFile = stackSettingsFile(dir, stackName, "stacks");
  await fs.writeFile(settingsFile, USER_FILE);
  const passphraseFile = path.join(dir, "passphrase");
  await fs.writeFile(passphraseFile, "compare-engine-test\n", { mode: 0o600 });
  const log = path.join(dir, "operations.log");
  await fs.writeFile(log, "");
  const programModule = path.join(__dirname, "engine-program");
  await fs.writeFile(
    path.join(dir, "program.ts"),
    `import { engineTestProgram } from ${JSON.stringify(programModule)};\n` +
      `export = engineTestProgram(${JSON.stringify(log)}, ${JSON.stringify(slowModes)}, ${slowMs});\n`,
  );
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName, workDir: dir },
    {
      secretsProvider: "passphrase",
      envVars: {
        PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
        PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
      },
    },
  );
  const original = await fs.readFile(settingsFile, "utf8");
  return {
    dir,
    env: {
      ...process.env,
      PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
    },
    log,
    settingsFile,
    stack,
    original,
    readLog: async () => (await fs.readFile(log, "utf8")).split("\n").filter((l) => l !== ""),
  };
}

/**
 * {@link project}, once the real engine is known to be there: without `pulumi` on PATH this throws
 * (the test fails) with how to get it.
 */
export async function engineProject(
  t: { teardown(fn: () => Promise<void>): void },
  stackName: string,
  slowModes: readonly string[] = [],
  slowMs = 0,
): Promise<Project> {
  if (!pulumiOnPath()) {
    throw new Error(PULUMI_MISSING);
  }
  return project(t, stackName, slowModes, slowMs);
}
