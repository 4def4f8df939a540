/**
 * Terminal progress: which step, elapsed time, resource operations from engine events, a heartbeat
 * while a step is quiet; and the end-of-run summary with recovery commands.
 */
import test from "ava";

import type { EngineEvent } from "@pulumi/pulumi/automation";

import { summaryLines, recoveryHelp } from "../../scripts/compare/index";
import { formatDuration, resourceLabel, TerminalProgress } from "../../scripts/compare/progress";
import type { RunRecord } from "../../scripts/compare/orchestrate";
import type { CompareView, ModeView } from "../../scripts/compare/results";
import { cannedDatapath, cannedThroughput } from "./fake-lab";

/** A cluster run's view of stack vxlan (kvm, no host facts) with these modes. */
function clusterView(modes: ModeView[]): CompareView {
  return {
    source: { kind: "cluster", label: "x" },
    stack: "vxlan",
    startedAt: "",
    environment: { kernel: "", cpuModel: "", accelerator: "kvm", tcg: false, versions: {}, mtu: {}, offloads: {} },
    modes,
  };
}

for (const [seconds, text] of [
  [0, "0s"],
  [59.4, "59s"],
  [75, "1m15s"],
  [3725, "1h02m05s"],
] as const) {
  test(`formatDuration(${seconds}) = ${text}`, (t) => {
    t.is(formatDuration(seconds), text);
  });
}

test("resource labels: the URN's name and the type", (t) => {
  t.is(
    resourceLabel(
      "urn:pulumi:vxlan::cilium-lab::lab:nodes:Vm$pulumi-nodejs:dynamic/libvirt:Domain::node-1",
      "pulumi-nodejs:dynamic/libvirt:Domain",
    ),
    "node-1 (pulumi-nodejs:dynamic/libvirt:Domain)",
  );
});

const pre = (op: string, name: string, type = "kubernetes:helm.sh/v3:Release"): EngineEvent =>
  ({
    sequence: 1,
    timestamp: 0,
    resourcePreEvent: { metadata: { op, urn: `urn:pulumi:s::cilium-lab::${type}::${name}`, type, provider: "" } },
  }) as EngineEvent;
const out = (name: string, type = "kubernetes:helm.sh/v3:Release"): EngineEvent => ({
  sequence: 2,
  timestamp: 0,
  resOutputsEvent: {
    metadata: { op: "update", urn: `urn:pulumi:s::cilium-lab::${type}::${name}`, type, provider: "" },
  },
});

test("progress lines: step start and end with elapsed time, changed resources (not `same`), warnings, and a heartbeat naming what is in flight", (t) => {
  let now = 0;
  const lines: string[] = [];
  const logged: string[] = [];
  const p = new TerminalProgress(
    (l) => lines.push(l),
    (x) => logged.push(x),
    0,
    () => now,
  );
  const step = { kind: "up", mode: "native", index: 3, total: 3 } as const;
  p.step(step);
  now = 5_000;
  p.event(pre("same", "node-1", "lab:nodes:Vm"));
  p.event(out("node-1", "lab:nodes:Vm"));
  p.event(pre("update", "cilium"));
  p.event({
    sequence: 3,
    timestamp: 0,
    diagnosticEvent: {
      message: "<{%reset%}>cilium-lab:nativeRoutingCidr is set but unused<{%reset%}>\n",
      color: "raw",
      severity: "warning",
    },
  });
  p.output("Updating (native)\n");
  now = 95_000;
  (p as unknown as { heartbeat(s: number): void }).heartbeat(30);
  now = 200_000;
  p.stepDone(step, { ok: true, seconds: 200, detail: "1 update, 40 same" });
  p.close();
  t.deepEqual(lines, [
    "[compare       0s] native (3/3) up: started",
    "[compare       5s]   update cilium (kubernetes:helm.sh/v3:Release)",
    "[compare       5s]   warning: cilium-lab:nativeRoutingCidr is set but unused",
    "[compare    1m35s] native (3/3) up: still running, 1m35s in this step, 1 resources done; in flight: cilium (kubernetes:helm.sh/v3:Release)",
    "[compare    3m20s] native (3/3) up: done in 3m20s (1 update, 40 same)",
  ]);
  t.deepEqual(logged, ["Updating (native)\n"], "pulumi's own output goes to the log, not the terminal");
});

function record(over: Partial<RunRecord>): RunRecord {
  return {
    stack: "vxlan",
    modes: [],
    notRun: [],
    planned: [],
    destroyed: false,
    interrupted: false,
    configRestored: true,
    settingsFile: "/repo/stacks/Pulumi.vxlan.yaml",
    startedAt: "2026-11-24T10:00:00.000Z",
    seconds: 1234,
    ...over,
  };
}

test("summary: a line per mode with medians and the paired ratio, the files, the restored config, and the lab left running in the last mode", (t) => {
  const r = record({
    modes: [
      {
        mode: "vxlan",
        status: "measured",
        set: { routingMode: "vxlan", autoDirectNodeRoutes: "false" },
        startedAt: "",
        seconds: 1,
        outputs: { throughput: cannedThroughput("vxlan"), datapath: cannedDatapath("vxlan") },
      },
      {
        mode: "native",
        status: "measured",
        set: { routingMode: "native", autoDirectNodeRoutes: "true", nativeRoutingCidr: "10.0.0.0/22" },
        startedAt: "",
        seconds: 1,
        outputs: { throughput: cannedThroughput("native"), datapath: cannedDatapath("native") },
      },
    ],
  });
  const view = clusterView([
    { mode: "vxlan", status: "measured", throughput: cannedThroughput("vxlan"), datapath: cannedDatapath("vxlan") },
    { mode: "native", status: "measured", throughput: cannedThroughput("native"), datapath: cannedDatapath("native") },
  ]);
  const lines = summaryLines(
    { modes: ["vxlan", "native"], stack: "vxlan", destroy: false, help: false, resultsDir: undefined },
    r,
    view,
    "/repo/results/T",
  );
  t.deepEqual(lines, [
    "",
    "compare: done in 20m34s (stack vxlan)",
    "  mode    status    datapath   pod↔pod MiB/s  host↔host MiB/s  pod/host",
    "  vxlan   measured  confirmed  493.0          1138.0           0.43",
    "  native  measured  confirmed  1266.0         1138.0           1.11",
    "  report:  /repo/results/T/report.md",
    "  chart:   /repo/results/T/throughput.svg",
    "  data:    /repo/results/T/results.json (pulumi's log: /repo/results/T/pulumi.log)",
    "  config:  /repo/stacks/Pulumi.vxlan.yaml restored as it was",
    "  lab:     left running with routingMode=native autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22; the stack config names its own mode again, so the next `npm run lab -- up vxlan` switches it back. Remove it with `npm run lab -- destroy vxlan`.",
  ]);
});

test("summary after Ctrl-C: INTERRUPTED, and the commands that recover the stack", (t) => {
  const r = record({
    interrupted: true,
    notRun: ["native"],
    modes: [{ mode: "vxlan", status: "interrupted", set: {}, startedAt: "", seconds: 1, error: "update canceled" }],
  });
  const view = clusterView([
    {
      mode: "vxlan",
      status: "interrupted",
      error: "code: 255\n stderr: Command failed with exit code 255: pulumi up\nerror: update canceled\n",
    },
    { mode: "native", status: "not run" },
  ]);
  const lines = summaryLines(
    { modes: ["vxlan", "native"], stack: "vxlan", destroy: true, help: false, resultsDir: undefined },
    r,
    view,
    undefined,
  );
  t.is(lines[1], "compare: INTERRUPTED in 20m34s (stack vxlan)");
  t.true(lines.includes("  vxlan interrupted: error: update canceled"), lines.join("\n"));
  t.deepEqual(lines.slice(-5), recoveryHelp("vxlan"));
  t.deepEqual(recoveryHelp("vxlan"), [
    "To recover (each command uses the same local backend and passphrase as compare):",
    "  npm run lab -- cancel vxlan                            if pulumi says the stack is locked or an update is in progress",
    "  npm run lab -- refresh vxlan --clear-pending-creates   if pulumi warns about pending operations (an interrupted create)",
    "  npm run lab -- up vxlan                                to bring the lab back to the mode its config names",
    "  npm run lab -- destroy vxlan                           to remove the lab",
  ]);
});
