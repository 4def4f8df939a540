/**
 * The orchestration on the REAL PULUMI ENGINE (the `pulumi` CLI and Node.js language host from
 * scripts/toolchain.sh) with a small test program (test/compare/engine-program.ts) in place of the
 * cluster layers, driven exactly as the CLI drives the lab: LocalWorkspace on a project directory
 * (a temporary one with the repository's layout, `stackConfigDir: stacks`; the program runs in the
 * language host's own process; test/compare/engine-project.ts), a file backend in a temporary
 * directory, a passphrase file. Mode order, in-place switches, output collection, `--destroy`, the
 * restored stack file and recovery after Ctrl-C are checked against what the engine really did (the
 * program's resources log every create/update/delete).
 *
 * The command itself (main(), its files and signals) on the same engine: cli.engine.test.ts.
 * Needs `pulumi` on PATH: eval "$(bash scripts/toolchain.sh)" (what .ci/run does).
 */
import test from "ava";
import { promises as fs } from "node:fs";

import { modeViews } from "../../scripts/compare/collect";
import { SECRET, StopControl } from "../../scripts/compare/orchestrate";
import { engineProject, USER_FILE, type Project } from "./engine-project";
import { collectedViews, RecordingProgress, runModes } from "./recording-progress";

/** The Cilium stand-in's logged keys in each plain mode (the mode's own routing keys). */
const CILIUM = {
  vxlan: "autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=vxlan",
  geneve: "autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=geneve",
  native: "autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22 routingMode=native",
};

/** What the first `up` of a new stack in `mode` logs: the VMs, k3s with kube-proxy, then Cilium. */
function created(mode: keyof typeof CILIUM): string[] {
  return [
    "create vms nodeCount=3 nodeCpus=4",
    "create k3s kubeProxyReplacement=false",
    `create cilium ${CILIUM[mode]}`,
  ];
}

function compare(
  p: Project,
  modes: string[],
  options: { destroy?: boolean; progress?: RecordingProgress; stop?: StopControl } = {},
) {
  return runModes(p.stack, p.settingsFile, modes, options);
}

test.serial(
  "real Pulumi engine, test program: vxlan → geneve → native in that order, the Cilium stand-in updated in place (VMs created once, never replaced), outputs collected after each up, the stack file restored byte for byte",
  async (t) => {
    const p = await engineProject(t, "vxlan");
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
      ...created("vxlan"),
      `update cilium ${CILIUM.geneve}`,
      `update cilium ${CILIUM.native}`,
    ]);
    t.deepEqual(
      progress.ops,
      [
        "create vms",
        "create k3s",
        "create cilium",
        "same vms",
        "same k3s",
        "update cilium",
        "same vms",
        "same k3s",
        "update cilium",
      ],
      "the engine's own view of each step",
    );
    t.deepEqual(
      record.modes.map((m) => m.resourceChanges?.update ?? 0),
      [0, 1, 1],
    );
    const views = collectedViews(t, record, ["vxlan", "geneve", "native"]);
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
    const p = await engineProject(t, "lab-destroy");
    const progress = new RecordingProgress();
    const record = await compare(p, ["native", "vxlan"], { destroy: true, progress });
    t.deepEqual(
      record.modes.map((m) => m.status),
      ["measured", "measured"],
    );
    t.is(record.destroyed, true);
    t.deepEqual(await p.readLog(), [
      ...created("native"),
      `update cilium ${CILIUM.vxlan}`,
      "delete cilium",
      "delete k3s",
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
    const p = await engineProject(t, "lab-cancel", ["native"], 8000);
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
    const p = await engineProject(t, "lab-invalid");
    await p.stack.setConfig("cilium-lab:nativeRoutingCidr", { value: "10.0.0.0/23" });
    const before = await fs.readFile(p.settingsFile, "utf8");
    const err = await t.throwsAsync(compare(p, ["vxlan", "native"]));
    t.regex(err?.message ?? "", /- mode native: cilium-lab:nativeRoutingCidr: /);
    t.deepEqual(await p.readLog(), []);
    t.is(await fs.readFile(p.settingsFile, "utf8"), before);
  },
);

test.serial(
  "real Pulumi engine, test program: variants — a feature switch updates only the Cilium stand-in, a kubeProxyReplacement change also updates the k3s stand-in (on and off again), the VMs are never touched; features and latency are collected after each up; the stack file is restored",
  async (t) => {
    const p = await engineProject(t, "lab-variants");
    const bpf = "native+kubeProxyReplacement=true+bpfMasquerade=true+hostRouting=bpf";
    const progress = new RecordingProgress();
    const record = await runModes(p.stack, p.settingsFile, ["vxlan", bpf, "native+bandwidthManager=on", "native"], {
      progress,
    });
    t.deepEqual(
      record.modes.map((m) => [m.variant, m.status, m.error ?? ""]),
      [
        ["vxlan", "measured", ""],
        [bpf, "measured", ""],
        ["native+bandwidthManager=on", "measured", ""],
        ["native", "measured", ""],
      ],
    );
    t.deepEqual(await p.readLog(), [
      ...created("vxlan"),
      "update k3s kubeProxyReplacement=true",
      "update cilium autoDirectNodeRoutes=true features=bpfMasquerade=true hostRouting=bpf nativeRoutingCidr=10.0.0.0/22 routingMode=native",
      "update k3s kubeProxyReplacement=false",
      "update cilium autoDirectNodeRoutes=true features=bandwidthManager=on nativeRoutingCidr=10.0.0.0/22 routingMode=native",
      `update cilium ${CILIUM.native}`,
    ]);
    t.deepEqual(
      record.planned.map((x) => x.changes.k3s),
      [false, true, true, false],
      "what each variant said it would change is what the engine did",
    );
    const views = modeViews(record);
    t.deepEqual(
      views.map((v) => v.features?.nodes[0]?.lines.find((l) => l.feature === "kubeProxyReplacement")?.asked),
      ["disabled", "enabled", "disabled", "disabled"],
    );
    t.deepEqual(
      views.map((v) => v.latency?.table.length),
      [4, 4, 4, 4],
      "TCP_RR and TCP_CRR, host and pod",
    );
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original, "stacks/Pulumi.lab-variants.yaml byte for byte");
    const config = await p.stack.getAllConfig();
    for (const key of ["kubeProxyReplacement", "bpfMasquerade", "hostRouting", "bandwidthManager"]) {
      t.is(config[`cilium-lab:${key}`], undefined, `${key} is not left in the stack`);
    }
  },
);
