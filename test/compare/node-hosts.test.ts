/**
 * The report's node hosts: each node's libvirt host from the stack's `nodeHosts` output, the
 * measured pair on one host or two, a stack without the output ("not recorded", never a guess), and
 * runs that disagree. Table tests of scripts/compare/node-hosts.ts with exact values, then the whole
 * path with MOCKS FOR THE CLUSTER LAYERS: the stack double of fake-lab.ts (its `nodeHosts` output
 * built from the real config parser and plan) → clusterEnvironment → report.md.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { clusterEnvironment, modeViews } from "../../scripts/compare/collect";
import {
  NODE_HOSTS_NO_OUTPUTS,
  NODE_HOSTS_NOT_RECORDED,
  NODE_HOSTS_SOURCE,
  nodeHostRows,
  nodeHostsView,
} from "../../scripts/compare/node-hosts";
import type { ModeRun } from "../../scripts/compare/orchestrate";
import { renderReport } from "../../scripts/compare/report";
import type { NodeHostsView } from "../../scripts/compare/results";
import { FakeLabStack } from "./fake-lab";
import { runModes } from "./recording-progress";

const LOCAL = "qemu:///system";
const REMOTE = "qemu+ssh://me@hostb:2222/system?keyfile=/home/me/.ssh/lab";

/** A run of `mode` whose stack had `outputs` (undefined: its `up` failed before any output was read). */
function run(mode: ModeRun["mode"], outputs: Record<string, unknown> | undefined, variant?: string): ModeRun {
  return {
    mode,
    ...(variant !== undefined ? { variant } : {}),
    status: outputs === undefined ? "failed" : "measured",
    set: {},
    startedAt: "2026-12-03T12:00:00.000Z",
    seconds: 1,
    ...(outputs !== undefined ? { outputs } : {}),
  };
}

/** The `nodeHosts` output for hosts listed per node. */
function hostsOutput(...hosts: string[]): { nodeHosts: { name: string; host: string }[] } {
  return { nodeHosts: hosts.map((host, i) => ({ name: `node-${i + 1}`, host })) };
}

const CASES: { title: string; runs: ModeRun[]; view: NodeHostsView; rows: [string, string][] }[] = [
  {
    title: "one host: every node on qemu:///system, the pair never leaves it",
    runs: [run("vxlan", hostsOutput(LOCAL, LOCAL, LOCAL)), run("native", hostsOutput(LOCAL, LOCAL, LOCAL))],
    view: {
      source: NODE_HOSTS_SOURCE,
      hosts: { "node-1": LOCAL, "node-2": LOCAL, "node-3": LOCAL },
      pair: "node-2 ↔ node-3 is on one host: traffic never leaves it",
    },
    rows: [
      ["node-1 host", LOCAL],
      ["node-2 host", LOCAL],
      ["node-3 host", LOCAL],
      ["measured pair", "node-2 ↔ node-3 is on one host: traffic never leaves it"],
    ],
  },
  {
    title: "two hosts round-robin: node-2 on the second host, node-3 back on the first, the pair crosses a NIC",
    runs: [run("vxlan", hostsOutput(LOCAL, REMOTE, LOCAL))],
    view: {
      source: NODE_HOSTS_SOURCE,
      hosts: { "node-1": LOCAL, "node-2": REMOTE, "node-3": LOCAL },
      pair: "node-2 ↔ node-3 is on two hosts: traffic crosses a NIC",
    },
    rows: [
      ["node-1 host", LOCAL],
      ["node-2 host", REMOTE],
      ["node-3 host", LOCAL],
      ["measured pair", "node-2 ↔ node-3 is on two hosts: traffic crosses a NIC"],
    ],
  },
  {
    title: "two nodes: the pair is node-1 ↔ node-2 (pickPair)",
    runs: [run("vxlan", hostsOutput(LOCAL, REMOTE))],
    view: {
      source: NODE_HOSTS_SOURCE,
      hosts: { "node-1": LOCAL, "node-2": REMOTE },
      pair: "node-1 ↔ node-2 is on two hosts: traffic crosses a NIC",
    },
    rows: [
      ["node-1 host", LOCAL],
      ["node-2 host", REMOTE],
      ["measured pair", "node-1 ↔ node-2 is on two hosts: traffic crosses a NIC"],
    ],
  },
  {
    title: "a stack without the nodeHosts output: not recorded, no host and no pair guessed",
    runs: [run("vxlan", { lab: { routingMode: "vxlan" } }), run("native", { lab: { routingMode: "native" } })],
    view: { source: NODE_HOSTS_NOT_RECORDED, hosts: {} },
    rows: [["node hosts", "not recorded (stack without the nodeHosts output)"]],
  },
  {
    title: "no run read the stack's outputs (every up failed first): not recorded, and why",
    runs: [run("vxlan", undefined)],
    view: { source: NODE_HOSTS_NO_OUTPUTS, hosts: {} },
    rows: [["node hosts", "not recorded (no run read the stack's outputs)"]],
  },
  {
    title: "an output of another shape is not read as hosts: not recorded, with what it was",
    runs: [run("vxlan", { nodeHosts: { "node-1": LOCAL } })],
    view: {
      source: 'not recorded (stack output nodeHosts is not a list of { name, host }: {"node-1":"qemu:///system"})',
      hosts: {},
    },
    rows: [
      [
        "node hosts",
        'not recorded (stack output nodeHosts is not a list of { name, host }: {"node-1":"qemu:///system"})',
      ],
    ],
  },
  {
    title: "runs that disagree: each run's value per node and for the pair; a failed up's run is left out",
    runs: [
      run("vxlan", hostsOutput(LOCAL, LOCAL, LOCAL)),
      run("native", undefined),
      run("native", hostsOutput(LOCAL, REMOTE, LOCAL), "native+hostRouting=bpf"),
    ],
    view: {
      source: NODE_HOSTS_SOURCE,
      hosts: {
        "node-1": LOCAL,
        "node-2": `vxlan: ${LOCAL}; native+hostRouting=bpf: ${REMOTE}`,
        "node-3": LOCAL,
      },
      pair:
        "vxlan: node-2 ↔ node-3 is on one host: traffic never leaves it; " +
        "native+hostRouting=bpf: node-2 ↔ node-3 is on two hosts: traffic crosses a NIC",
    },
    rows: [
      ["node-1 host", LOCAL],
      ["node-2 host", `vxlan: ${LOCAL}; native+hostRouting=bpf: ${REMOTE}`],
      ["node-3 host", LOCAL],
      [
        "measured pair",
        "vxlan: node-2 ↔ node-3 is on one host: traffic never leaves it; native+hostRouting=bpf: node-2 ↔ node-3 is on two hosts: traffic crosses a NIC",
      ],
    ],
  },
  {
    title: "one run with the output, one without: each run says where its hosts come from",
    runs: [run("vxlan", { lab: {} }), run("native", hostsOutput(LOCAL, REMOTE, LOCAL))],
    view: {
      source: `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${NODE_HOSTS_SOURCE}`,
      hosts: {
        "node-1": `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${LOCAL}`,
        "node-2": `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${REMOTE}`,
        "node-3": `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${LOCAL}`,
      },
      pair: `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: node-2 ↔ node-3 is on two hosts: traffic crosses a NIC`,
    },
    rows: [
      ["node-1 host", `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${LOCAL}`],
      ["node-2 host", `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${REMOTE}`],
      ["node-3 host", `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: ${LOCAL}`],
      [
        "measured pair",
        `vxlan: ${NODE_HOSTS_NOT_RECORDED}; native: node-2 ↔ node-3 is on two hosts: traffic crosses a NIC`,
      ],
    ],
  },
];

for (const c of CASES) {
  test(`node hosts: ${c.title}`, (t) => {
    const view = nodeHostsView(c.runs);
    t.deepEqual(view, c.view);
    t.deepEqual(nodeHostRows(view), c.rows);
  });
}

test("node hosts: a namespace run (no nodeHosts in its environment) adds no rows", (t) => {
  t.deepEqual(nodeHostRows(undefined), []);
});

/** A stack double over a temporary stack file with `config`. */
async function fakeStack(
  t: { teardown(fn: () => Promise<void>): void },
  config: Record<string, string>,
): Promise<{ stack: FakeLabStack; file: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "clc-hosts-"));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "Pulumi.lan.yaml");
  await fs.writeFile(file, `config:\n  cilium-lab:routingMode: vxlan\n`);
  return { stack: new FakeLabStack("lan", file, config), file };
}

/** report.md of a mocked run of vxlan and native on `stack`, and its environment section. */
async function reportOf(stack: FakeLabStack, file: string): Promise<{ report: string; section: string }> {
  const record = await runModes(stack, file, ["vxlan", "native"]);
  const report = renderReport({
    source: { kind: "cluster", label: "cluster run (stand-in)" },
    stack: "lan",
    startedAt: record.startedAt,
    environment: clusterEnvironment({ runs: record.modes, accelerator: "kvm", pulumiVersion: "v3.0.0" }),
    modes: modeViews(record),
  });
  const start = report.indexOf("## Environment");
  return { report, section: report.slice(start, report.indexOf("\n## ", start + 1)) };
}

test("report.md from a mocked run: the default stack's nodes all on qemu:///system, one row each after the existing rows, then the pair on one host", async (t) => {
  const { stack, file } = await fakeStack(t, { "cilium-lab:routingMode": "vxlan" });
  const { section } = await reportOf(stack, file);
  t.true(
    section.endsWith(
      `| version: node (compare) | ${process.version} |\n` +
        "| node-1 host | qemu:///system |\n" +
        "| node-2 host | qemu:///system |\n" +
        "| node-3 host | qemu:///system |\n" +
        "| measured pair | node-2 ↔ node-3 is on one host: traffic never leaves it |\n",
    ),
    section,
  );
  const rows = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| ---"));
  t.deepEqual(
    rows.slice(0, 3).map((l) => l.split(" | ")[0]),
    ["| what", "| kernel", "| CPU model"],
    "the existing rows keep their place",
  );
});

test("report.md from a mocked run: a bridge stack with nodeHosts on two hosts names each node's host and says the pair crosses a NIC", async (t) => {
  const { stack, file } = await fakeStack(t, {
    "cilium-lab:routingMode": "vxlan",
    "cilium-lab:networkMode": "bridge",
    "cilium-lab:bridge": "br0",
    "cilium-lab:networkCidr": "192.168.2.0/24",
    "cilium-lab:gateway": "192.168.2.1",
    "cilium-lab:nodeHosts": `${LOCAL},${REMOTE}`,
  });
  const { section } = await reportOf(stack, file);
  t.true(
    section.endsWith(
      "| node-1 host | qemu:///system |\n" +
        `| node-2 host | ${REMOTE} |\n` +
        "| node-3 host | qemu:///system |\n" +
        "| measured pair | node-2 ↔ node-3 is on two hosts: traffic crosses a NIC |\n",
    ),
    section,
  );
});

test("report.md from a mocked run: a stack without the nodeHosts output says not recorded and names no host", async (t) => {
  const { stack, file } = await fakeStack(t, { "cilium-lab:routingMode": "vxlan" });
  stack.recordsNodeHosts = false;
  const { section } = await reportOf(stack, file);
  t.true(section.endsWith("| node hosts | not recorded (stack without the nodeHosts output) |\n"), section);
  t.false(section.includes("qemu"), section);
  t.false(section.includes("measured pair"), section);
});
