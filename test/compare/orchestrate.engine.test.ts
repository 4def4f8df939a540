/**
 * The orchestration on the REAL PULUMI ENGINE (the `pulumi` CLI and Node.js language host from
 * scripts/toolchain.sh) with a small test program (test/compare/engine-program.ts) in place of the
 * cluster layers, driven exactly as the CLI drives the lab: LocalWorkspace on a project directory
 * (a temporary one with the repository's layout, `stackConfigDir: stacks`; the program runs in the
 * language host's own process), a file backend in a temporary directory, a passphrase file. Mode order, in-place switches, output collection,
 * `--destroy`, the restored stack file and recovery after Ctrl-C are checked against what the
 * engine really did (the program's resources log every create/update/delete).
 *
 * Needs `pulumi` on PATH: eval "$(bash scripts/toolchain.sh)" (what .ci/run does).
 */
import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { LocalWorkspace, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";

import type { Mode } from "../../scripts/compare/args";
import { modeViews } from "../../scripts/compare/collect";
import { main } from "../../scripts/compare/index";
import {
  runCompare,
  SECRET,
  stackSettingsFile,
  StopControl,
  type Progress,
  type StepInfo,
} from "../../scripts/compare/orchestrate";
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
const USER_FILE = `# The article's starting point, as the user wrote it.
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

interface Project {
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

class RecordingProgress implements Progress {
  readonly steps: string[] = [];
  readonly ops: string[] = [];
  constructor(private readonly onEvent: (e: EngineEvent) => void = () => undefined) {}
  step(s: StepInfo): void {
    this.steps.push(`start ${s.kind}${s.mode ? ` ${s.mode}` : ""}`);
  }
  stepDone(s: StepInfo, r: { ok: boolean }): void {
    this.steps.push(`${r.ok ? "done" : "failed"} ${s.kind}${s.mode ? ` ${s.mode}` : ""}`);
  }
  event(e: EngineEvent): void {
    const pre = e.resourcePreEvent;
    if (pre && pre.planning !== true && pre.metadata.type.startsWith("pulumi-nodejs:dynamic")) {
      this.ops.push(`${pre.metadata.op} ${pre.metadata.urn.split("::").pop() ?? ""}`);
    }
    this.onEvent(e);
  }
  output(): void {}
}

function compare(
  p: Project,
  modes: Mode[],
  options: { destroy?: boolean; progress?: RecordingProgress; stop?: StopControl } = {},
) {
  return runCompare({
    stack: p.stack,
    settingsFile: p.settingsFile,
    modes,
    destroy: options.destroy ?? false,
    progress: options.progress ?? new RecordingProgress(),
    stop: options.stop ?? new StopControl(),
  });
}

test.serial(
  "real Pulumi engine, test program: vxlan → geneve → native in that order, the Cilium stand-in updated in place (VMs created once, never replaced), outputs collected after each up, the stack file restored byte for byte",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "vxlan");
    const progress = new RecordingProgress();
    const record = await compare(p, ["vxlan", "geneve", "native"], { progress });
    t.deepEqual(
      record.modes.map((m) => [m.mode, m.status, m.error ?? ""]),
      [
        ["vxlan", "measured", ""],
        ["geneve", "measured", ""],
        ["native", "measured", ""],
      ],
    );
    t.deepEqual(await p.readLog(), [
      "create vms nodeCount=3 nodeCpus=4",
      "create cilium autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=vxlan",
      "update cilium autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=geneve",
      "update cilium autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22 routingMode=native",
    ]);
    t.deepEqual(
      progress.ops,
      ["create vms", "create cilium", "same vms", "update cilium", "same vms", "update cilium"],
      "the engine's own view of each step",
    );
    t.deepEqual(
      record.modes.map((m) => m.resourceChanges?.update ?? 0),
      [0, 1, 1],
    );
    const views = modeViews(record);
    t.deepEqual(
      views.map((v) => v.throughput?.routingMode),
      ["vxlan", "geneve", "native"],
    );
    t.deepEqual(
      views.map((v) => v.datapath?.requested),
      ["vxlan", "geneve", "native"],
    );
    t.deepEqual(
      record.modes.map((m) => (m.outputs?.lab as { routingMode: string }).routingMode),
      ["vxlan", "geneve", "native"],
    );
    t.is(record.modes[0]?.outputs?.kubeconfig, SECRET, "secret outputs are redacted");
    t.true(record.configRestored);
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original, "stacks/Pulumi.vxlan.yaml byte for byte");
    t.true(p.original.startsWith(USER_FILE.trimEnd()), "the user's comments and keys were there to restore");
    const config = await p.stack.getAllConfig();
    t.is(config["cilium-lab:routingMode"]?.value, "vxlan");
    t.is(config["cilium-lab:autoDirectNodeRoutes"], undefined);
    t.is(config["cilium-lab:nativeRoutingCidr"], undefined);
  },
);

test.serial(
  "real Pulumi engine, test program: --destroy after the last mode deletes every resource (the engine ran the deletes) and the config is still restored",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "lab-destroy");
    const progress = new RecordingProgress();
    const record = await compare(p, ["native", "vxlan"], { destroy: true, progress });
    t.deepEqual(
      record.modes.map((m) => m.status),
      ["measured", "measured"],
    );
    t.is(record.destroyed, true);
    t.deepEqual(await p.readLog(), [
      "create vms nodeCount=3 nodeCpus=4",
      "create cilium autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22 routingMode=native",
      "update cilium autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=vxlan",
      "delete cilium",
      "delete vms",
    ]);
    const state = (await p.stack.exportStack()).deployment as { resources?: unknown[] };
    t.is(state.resources?.length ?? 0, 0, "nothing left in the stack");
    t.deepEqual(progress.steps.slice(-4), ["start destroy", "done destroy", "start restore", "done restore"]);
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
  },
);

test.serial(
  "real Pulumi engine, test program: Ctrl-C twice during a slow Cilium update interrupts pulumi; the config is restored and a plain `up` recovers the stack",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "lab-cancel", ["native"], 8000);
    const stop = new StopControl();
    const progress = new RecordingProgress((e) => {
      const pre = e.resourcePreEvent;
      if (
        pre &&
        pre.planning !== true &&
        pre.metadata.op === "update" &&
        pre.metadata.urn.endsWith("::cilium") &&
        !stop.stopping
      ) {
        stop.request();
        stop.request();
      }
    });
    const record = await compare(p, ["vxlan", "native", "geneve"], { destroy: true, progress, stop });
    t.true(record.interrupted);
    t.deepEqual(record.modes.map((m) => [m.mode, m.status]).slice(0, 1), [["vxlan", "measured"]]);
    t.log(
      `native after two Ctrl-C: ${record.modes[1]?.status ?? "?"}; ${(record.modes[1]?.error ?? "").split("\n").slice(-3).join(" | ")}`,
    );
    t.log(`operations: ${(await p.readLog()).join(" | ")}`);
    t.true(
      ["interrupted", "measured"].includes(record.modes[1]?.status ?? ""),
      `native: ${record.modes[1]?.status ?? "?"} ${record.modes[1]?.error ?? ""}`,
    );
    t.deepEqual(record.notRun, ["geneve"]);
    t.is(record.destroyed, false, "no destroy after Ctrl-C");
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
    // What the summary tells the user to do: `up` (after `cancel` if locked) brings the stack back.
    const again = await p.stack.up();
    t.is(again.summary.result, "succeeded");
    const outputs = await p.stack.outputs();
    t.is((outputs.lab?.value as { routingMode: string }).routingMode, "vxlan", "back to the mode the stack file names");
    const destroyed = await p.stack.destroy();
    t.is(destroyed.summary.result, "succeeded");
  },
);

test.serial(
  "real Pulumi engine, test program: a mode the program rejects stops the run before any change; nothing is created",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "lab-invalid");
    await p.stack.setConfig("cilium-lab:nativeRoutingCidr", { value: "10.0.0.0/23" });
    const before = await fs.readFile(p.settingsFile, "utf8");
    const err = await t.throwsAsync(compare(p, ["vxlan", "native"]));
    t.regex(err?.message ?? "", /- mode native: cilium-lab:nativeRoutingCidr: /);
    t.deepEqual(await p.readLog(), []);
    t.is(await fs.readFile(p.settingsFile, "utf8"), before);
  },
);

test.serial(
  "real Pulumi engine, test program: the command itself (`compare --modes vxlan,native --destroy`) writes results.json, report.md and throughput.svg, prints the summary, restores the stack file and exits 0",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "cli");
    const results = path.join(p.dir, "results");
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      ["--modes", "vxlan,native", "--stack", "cli", "--destroy", "--results", results],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      { projectDir: p.dir, env: p.env },
    );
    if (code !== 0) {
      const dirs = await fs.readdir(results);
      t.log(await fs.readFile(path.join(results, dirs[0] ?? "", "results.json"), "utf8"));
    }
    t.is(code, 0, [...err, ...out].join("\n"));
    const [run] = await fs.readdir(results);
    t.regex(run ?? "", /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    const dir = path.join(results, run ?? "");
    t.deepEqual((await fs.readdir(dir)).sort(), ["pulumi.log", "report.md", "results.json", "throughput.svg"]);
    const json = JSON.parse(await fs.readFile(path.join(dir, "results.json"), "utf8")) as {
      modes: { mode: string; status: string }[];
      destroyed: boolean;
      configRestored: boolean;
    };
    t.deepEqual(
      json.modes.map((m) => [m.mode, m.status]),
      [
        ["vxlan", "measured"],
        ["native", "measured"],
      ],
    );
    t.true(json.destroyed);
    t.true(json.configRestored);
    const report = await fs.readFile(path.join(dir, "report.md"), "utf8");
    t.true(
      report.includes(
        "| native | confirmed (requested native, observed native) | 1266.0 [1253.3–1278.7] | 1138.0 [1126.6–1149.4] | 1.11 | 1.11 |",
      ),
    );
    t.true((await fs.readFile(path.join(dir, "throughput.svg"), "utf8")).startsWith("<svg"));
    t.regex(out[1] ?? "", /^compare: done in \d+s \(stack cli\)$|^compare: done in \d+m\d\ds \(stack cli\)$/);
    t.true(
      out.some((l) => /^ {2}native {2}measured {2}confirmed {2}1266\.0 +1138\.0 +1\.11$/.test(l)),
      out.join("\n"),
    );
    t.true(out.includes("  lab:     destroyed"));
    t.true(
      err.some((l) => / vxlan \(1\/2\) up: done in /.test(l)),
      "progress on stderr",
    );
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
    t.deepEqual((await p.readLog()).slice(-2), ["delete cilium", "delete vms"]);
  },
);

test.serial(
  "real Pulumi engine, test program: a real SIGINT to the command during a slow up lets that up finish, runs nothing else, restores the stack file, prints how to recover and exits 130",
  async (t) => {
    if (!pulumiOnPath()) {
      t.fail(PULUMI_MISSING);
      return;
    }
    const p = await project(t, "cli-sigint", ["native"], 6000);
    const env = {
      PULUMI_BACKEND_URL: p.env.PULUMI_BACKEND_URL ?? "",
      PULUMI_CONFIG_PASSPHRASE_FILE: p.env.PULUMI_CONFIG_PASSPHRASE_FILE ?? "",
    };
    const child = spawn(
      process.execPath,
      [
        "--import=tsx",
        path.join(__dirname, "cli-child.ts"),
        JSON.stringify({
          argv: [
            "--modes",
            "vxlan,native,geneve",
            "--stack",
            "cli-sigint",
            "--destroy",
            "--results",
            path.join(p.dir, "results"),
          ],
          projectDir: p.dir,
          env,
        }),
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    let sent = false;
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      // The slow "Cilium" update of native is under way: Ctrl-C once.
      if (!sent && stderr.includes("  update cilium (pulumi-nodejs:dynamic/compareTest:Recorded)")) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 5 * 60_000);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(timer);
    t.true(sent, stderr);
    t.is(code, 130, `${stderr}\n${stdout}`);
    t.true(
      stderr.includes(
        "Ctrl-C: stopping after the current Pulumi operation (Ctrl-C again interrupts it); the stack config will be restored",
      ),
    );
    t.regex(stderr, /native \(2\/3\) up: done in /, "the running up finished");
    t.false(stderr.includes("geneve (3/3)"), "nothing new started");
    t.false(stderr.includes("destroy: started"), "no destroy after Ctrl-C");
    t.true(stdout.includes("compare: INTERRUPTED in "));
    t.true(stdout.includes("  npm run lab -- cancel cli-sigint "));
    t.true(stdout.includes("  npm run lab -- destroy cli-sigint "));
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
    t.deepEqual(await p.readLog(), [
      "create vms nodeCount=3 nodeCpus=4",
      "create cilium autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=vxlan",
      "update cilium autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22 routingMode=native",
    ]);
    await p.stack.destroy();
  },
);
