/**
 * The orchestration with MOCKS FOR THE CLUSTER LAYERS: an in-memory stack double (test/compare/fake-lab.ts)
 * whose `up` returns canned `datapath`/`throughput` outputs built with infra/verify's functions.
 * Covers what the real engine cannot be made to do on demand here: a failing mode, Ctrl-C during an
 * operation, a destroy after a failure. The same paths on the real engine: orchestrate.engine.test.ts.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { modeViews } from "../../scripts/compare/collect";
import { SECRET, StopControl } from "../../scripts/compare/orchestrate";
import { renderReport } from "../../scripts/compare/report";
import { FakeLabStack } from "./fake-lab";
import { collectedViews, RecordingProgress, runModes } from "./recording-progress";

/** The user's stack file, with comments and a config key compare must not touch. */
const USER_FILE = `# my lab: do not lose this comment
config:
  cilium-lab:routingMode: vxlan
  cilium-lab:networkCidr: 192.168.150.0/24
  cilium-lab:nodeCpus: "4"
`;
const USER_CONFIG = {
  "cilium-lab:routingMode": "vxlan",
  "cilium-lab:networkCidr": "192.168.150.0/24",
  "cilium-lab:nodeCpus": "4",
};

/**
 * A temporary directory with the stack file `Pulumi.<name>.yaml` (the user's, or none with
 * `userFile: null`) and a stack double over it with `config`.
 */
async function setup(
  t: { teardown(fn: () => Promise<void>): void },
  name = "vxlan",
  config: Record<string, string> = USER_CONFIG,
  userFile: string | null = USER_FILE,
): Promise<{ stack: FakeLabStack; file: string; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "clc-mock-"));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, `Pulumi.${name}.yaml`);
  if (userFile !== null) {
    await fs.writeFile(file, userFile);
  }
  return { stack: new FakeLabStack(name, file, config), file, dir };
}

test("mocked cluster layers: modes run in the order given, each switching only the routing keys in place before its up, outputs collected after each up", async (t) => {
  const { stack, file } = await setup(t);
  const progress = new RecordingProgress();
  const record = await runModes(stack, file, ["vxlan", "geneve", "native"], { progress });
  t.deepEqual(
    stack.calls.map((c) =>
      c.op === "up" ? `up ${c.routingMode} adnr=${c.autoDirectNodeRoutes} nrc=${c.nativeRoutingCidr ?? "-"}` : c.op,
    ),
    [
      "setAllConfig",
      "up vxlan adnr=false nrc=-",
      "outputs",
      "setAllConfig",
      "up geneve adnr=false nrc=-",
      "outputs",
      "setAllConfig",
      "up native adnr=true nrc=10.0.0.0/22",
      "outputs",
    ],
  );
  t.deepEqual(
    stack.calls.filter((c) => c.op === "setAllConfig").map((c) => (c.op === "setAllConfig" ? c.config : {})),
    [
      { "cilium-lab:routingMode": "vxlan", "cilium-lab:autoDirectNodeRoutes": "false" },
      { "cilium-lab:routingMode": "geneve", "cilium-lab:autoDirectNodeRoutes": "false" },
      {
        "cilium-lab:routingMode": "native",
        "cilium-lab:autoDirectNodeRoutes": "true",
        "cilium-lab:nativeRoutingCidr": "10.0.0.0/22",
      },
    ],
  );
  t.deepEqual(
    record.modes.map((m) => [m.mode, m.status]),
    [
      ["vxlan", "measured"],
      ["geneve", "measured"],
      ["native", "measured"],
    ],
  );
  t.deepEqual(
    record.modes.map((m) => m.resourceChanges),
    [{ create: 40 }, { update: 3, same: 37 }, { update: 3, same: 37 }],
  );
  const views = collectedViews(t, record, ["vxlan", "geneve", "native"]);
  t.deepEqual(
    views.map((v) => v.datapath?.verdict),
    ["confirmed", "confirmed", "confirmed"],
  );
  t.deepEqual(progress.steps.slice(0, 6), [
    "start config vxlan 1/3",
    "done config vxlan",
    "start up vxlan 1/3",
    "done up vxlan",
    "start outputs vxlan 1/3",
    "done outputs vxlan",
  ]);
  t.deepEqual(progress.steps.slice(-2), ["start restore", "done restore"]);
  t.is(progress.events.length, 3, "engine events reach the progress display");
});

test("mocked cluster layers: each mode's keys are relative to the user's config: vxlan after native removes native's nativeRoutingCidr again", async (t) => {
  const { stack, file } = await setup(t);
  await runModes(stack, file, ["native", "vxlan"]);
  t.deepEqual(
    stack.calls.filter((c) => c.op === "setAllConfig" || c.op === "removeAllConfig" || c.op === "up"),
    [
      {
        op: "setAllConfig",
        config: {
          "cilium-lab:routingMode": "native",
          "cilium-lab:autoDirectNodeRoutes": "true",
          "cilium-lab:nativeRoutingCidr": "10.0.0.0/22",
        },
      },
      { op: "up", routingMode: "native", autoDirectNodeRoutes: "true", nativeRoutingCidr: "10.0.0.0/22" },
      { op: "setAllConfig", config: { "cilium-lab:routingMode": "vxlan", "cilium-lab:autoDirectNodeRoutes": "false" } },
      { op: "removeAllConfig", keys: ["cilium-lab:nativeRoutingCidr"] },
      { op: "up", routingMode: "vxlan", autoDirectNodeRoutes: "false", nativeRoutingCidr: undefined },
    ],
  );
});

test("mocked cluster layers: a user's own nativeRoutingCidr is kept for native and put back (not removed) for the tunnel modes", async (t) => {
  const { stack, file } = await setup(t, "x", { ...USER_CONFIG, "cilium-lab:nativeRoutingCidr": "10.0.0.0/16" });
  await runModes(stack, file, ["native", "geneve"]);
  t.deepEqual(
    stack.calls.filter((c) => c.op === "up"),
    [
      { op: "up", routingMode: "native", autoDirectNodeRoutes: "true", nativeRoutingCidr: "10.0.0.0/16" },
      { op: "up", routingMode: "geneve", autoDirectNodeRoutes: "false", nativeRoutingCidr: "10.0.0.0/16" },
    ],
  );
  t.false(stack.calls.some((c) => c.op === "removeAllConfig"));
});

test("mocked cluster layers: secret outputs never reach the record (replaced by [secret]); the report renders from what was collected", async (t) => {
  const { stack, file } = await setup(t);
  const record = await runModes(stack, file, ["native"]);
  t.is(record.modes[0]?.outputs?.kubeconfig, SECRET);
  t.false(JSON.stringify(record).includes("secret stuff"));
  const report = renderReport({
    source: { kind: "cluster", label: "cluster run (stand-in)" },
    stack: "vxlan",
    startedAt: record.startedAt,
    environment: { kernel: "k", cpuModel: "c", accelerator: "kvm", tcg: false, versions: {}, mtu: {}, offloads: {} },
    modes: modeViews(record),
  });
  t.true(
    report.includes(
      "| native | confirmed (requested native, observed native) | 1266.0 [1253.3–1278.7] | 1138.0 [1126.6–1149.4] | 1.11 | 1.11 |",
    ),
    report,
  );
});

test("mocked cluster layers: the user's stack file is restored byte for byte (comments, other keys), and the backup copy removed", async (t) => {
  const { stack, file, dir } = await setup(t);
  const backupFile = path.join(dir, "results", "Pulumi.vxlan.yaml.orig");
  const record = await runModes(stack, file, ["geneve", "native"], { backupFile });
  t.true(record.configRestored);
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
  await t.throwsAsync(fs.stat(backupFile));
});

test("mocked cluster layers: a failed up stops the run, later modes are not run, the config is restored, and --destroy still destroys", async (t) => {
  const { stack, file } = await setup(t);
  stack.behaviour.set("geneve", () =>
    Promise.reject(
      new Error("error: update failed\nDatapath verification failed: requested geneve tunnel, observed vxlan tunnel"),
    ),
  );
  const progress = new RecordingProgress();
  const record = await runModes(stack, file, ["vxlan", "geneve", "native"], { destroy: true, progress });
  t.deepEqual(
    record.modes.map((m) => [m.mode, m.status]),
    [
      ["vxlan", "measured"],
      ["geneve", "failed"],
    ],
  );
  t.deepEqual(record.notRun, ["native"]);
  t.regex(record.modes[1]?.error ?? "", /Datapath verification failed/);
  t.is(record.destroyed, true);
  t.deepEqual(stack.calls.map((c) => c.op).slice(-1), ["destroy"]);
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
  t.false(record.interrupted);
  const views = modeViews(record);
  t.deepEqual(
    views.map((v) => v.status),
    ["measured", "failed", "not run"],
  );
  t.true(progress.steps.includes("failed up geneve"));
});

test("mocked cluster layers: Ctrl-C once lets the running up finish, starts nothing else (no destroy), and restores the config", async (t) => {
  const { stack, file } = await setup(t);
  const stop = new StopControl();
  let aborted: boolean | undefined;
  stack.behaviour.set("vxlan", async (opts) => {
    stop.request(); // the user presses Ctrl-C while this up runs
    await new Promise((r) => setTimeout(r, 50));
    aborted = opts?.signal?.aborted;
  });
  const record = await runModes(stack, file, ["vxlan", "native"], { destroy: true, stop });
  t.false(aborted, "one Ctrl-C does not abort the operation");
  t.deepEqual(
    record.modes.map((m) => [m.mode, m.status]),
    [["vxlan", "measured"]],
  );
  t.deepEqual(record.notRun, ["native"]);
  t.true(record.interrupted);
  t.is(record.destroyed, false, "no new long operation after Ctrl-C");
  t.false(stack.calls.some((c) => c.op === "destroy"));
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
});

test("mocked cluster layers: Ctrl-C twice aborts the running up through its signal (pulumi gets SIGINT); the mode is recorded as interrupted and the config restored", async (t) => {
  const { stack, file } = await setup(t);
  const stop = new StopControl();
  stack.behaviour.set("native", (opts) => {
    stop.request();
    stop.request();
    return opts?.signal?.aborted ? Promise.reject(new Error("update canceled")) : Promise.resolve();
  });
  const record = await runModes(stack, file, ["native", "vxlan"], { stop });
  t.deepEqual(
    record.modes.map((m) => [m.mode, m.status]),
    [["native", "interrupted"]],
  );
  t.is(record.modes[0]?.error, "update canceled");
  t.deepEqual(record.notRun, ["vxlan"]);
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
});

test("mocked cluster layers: a mode the program would reject fails before any change, with the parser's problem line", async (t) => {
  // A native-routing CIDR that cannot hold node 3's pod block: native is invalid, tunnels are fine.
  const { stack, file } = await setup(t, "x", { ...USER_CONFIG, "cilium-lab:nativeRoutingCidr": "10.0.0.0/23" });
  const err = await t.throwsAsync(runModes(stack, file, ["vxlan", "native"]));
  t.regex(
    err?.message ?? "",
    /^compare: the stack config would be invalid for one mode \(fix the stack's config with `pulumi config set cilium-lab:<key> <value>`, or leave the mode out of --modes\):\n- mode native: cilium-lab:nativeRoutingCidr: /,
  );
  t.deepEqual(stack.calls, [], "nothing was changed");
  t.is(await fs.readFile(file, "utf8"), USER_FILE);
});

test("mocked cluster layers: a stack file that did not exist before the run is removed again", async (t) => {
  const { stack, file } = await setup(t, "new", {}, null);
  const record = await runModes(stack, file, ["vxlan"]);
  t.true(record.configRestored);
  await t.throwsAsync(fs.stat(file));
});
