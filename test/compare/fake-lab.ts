/**
 * Stand-ins for the cluster layers (VMs, k3s, Cilium, the iperf3 Jobs), which cannot run here:
 * canned but realistic `datapath` and `throughput` outputs for a routing mode, built with the
 * verification layer's own functions, and an in-memory stack double for the mock tests.
 */
import { promises as fs } from "node:fs";

import type { ConfigMap, DestroyOptions, OutputMap, UpOptions } from "@pulumi/pulumi/automation";

import type { DatapathOutput } from "../../infra/verify/evidence";
import {
  runRecord,
  summarizeThroughput,
  type Iperf3Result,
  type RunRecord,
  type ThroughputOutput,
} from "../../infra/verify/iperf3";
import type { LabStack } from "../../scripts/compare/orchestrate";

/** MiB/s the stand-in "measures": the article's figures (Geneve: a little below VXLAN). */
export const CANNED_MIBPS: Readonly<Record<string, { pod: number; host: number }>> = {
  vxlan: { pod: 493, host: 1138 },
  geneve: { pod: 480, host: 1138 },
  native: { pod: 1266, host: 1138 },
};

function result(mibps: number, retransmits: number): Iperf3Result {
  return {
    bitsPerSecond: mibps * 8 * 1048576,
    bytes: mibps * 1048576 * 10,
    seconds: 10,
    retransmits,
    clientCpuPercent: 40,
    serverCpuPercent: 30,
    tcpMss: 1398,
    streams: 1,
    omitSeconds: 1,
    startedAt: null,
    iperf3Version: "iperf 3.12",
    connection: null,
  };
}

/** The `throughput` output for a mode: three interleaved runs at ±1 % around {@link CANNED_MIBPS}. */
export function cannedThroughput(
  mode: "vxlan" | "geneve" | "native",
  accelerator: "kvm" | "qemu" = "kvm",
): ThroughputOutput {
  const base = CANNED_MIBPS[mode] ?? { pod: 1, host: 1 };
  const runs: RunRecord[] = [];
  let order = 0;
  for (const [i, f] of [0.99, 1, 1.01].entries()) {
    runs.push(runRecord("host", i + 1, ++order, `iperf3-host-${i + 1}`, result(base.host * f, i)));
    runs.push(runRecord("pod", i + 1, ++order, `iperf3-pod-${i + 1}`, result(base.pod * f, 10 * i)));
  }
  return summarizeThroughput({
    runs,
    routingMode: mode,
    accelerator,
    settings: {
      image: "stand-in",
      seconds: 10,
      omitSeconds: 1,
      streams: 1,
      runs: 3,
      clientArgs: ["-c", "<target>", "-J", "-t", "10", "-O", "1"],
      server: { node: "node-2", hostIp: "192.168.150.12", podIp: "10.0.1.10" },
      client: { node: "node-3" },
      order: "host and pod runs alternate: host 1, pod 1, host 2, …",
    },
  });
}

/** A confirmed `datapath` output for a mode (one check), in the verification layer's shape. */
export function cannedDatapath(
  mode: "vxlan" | "geneve" | "native",
): Pick<DatapathOutput, "requested" | "observed" | "verdict" | "checks" | "reasons"> {
  return {
    requested: mode,
    observed: mode,
    verdict: "confirmed",
    checks: [{ scope: "node-2", check: "tunnel devices", expected: mode, actual: mode, ok: true }],
    reasons: [],
  };
}

/** What the double saw, in order. */
export type FakeCall =
  | { op: "setAllConfig"; config: Record<string, string> }
  | { op: "removeAllConfig"; keys: string[] }
  | { op: "up"; routingMode: string; autoDirectNodeRoutes: string | undefined; nativeRoutingCidr: string | undefined }
  | { op: "outputs" }
  | { op: "destroy" };

/**
 * An in-memory stack: config lives in a map and is written to `settingsFile` on every change (as the
 * Pulumi CLI would rewrite the stack file); `up` "measures" the configured mode with the canned
 * outputs. Behaviour per mode can be overridden (fail, wait for a release, observe the signal).
 */
export class FakeLabStack implements LabStack {
  readonly calls: FakeCall[] = [];
  private config: ConfigMap;
  private current: string | undefined;
  /** Mode → what `up` does instead of succeeding at once. */
  readonly behaviour = new Map<string, (opts: UpOptions | undefined) => Promise<void>>();

  constructor(
    readonly name: string,
    readonly settingsFile: string,
    initial: Readonly<Record<string, string>>,
  ) {
    this.config = Object.fromEntries(Object.entries(initial).map(([k, v]) => [k, { value: v }]));
  }

  getAllConfig(): Promise<ConfigMap> {
    return Promise.resolve({ ...this.config });
  }

  async setAllConfig(config: ConfigMap): Promise<void> {
    this.calls.push({
      op: "setAllConfig",
      config: Object.fromEntries(Object.entries(config).map(([k, v]) => [k, v.value])),
    });
    this.config = { ...this.config, ...config };
    await this.write();
  }

  async removeAllConfig(keys: string[]): Promise<void> {
    this.calls.push({ op: "removeAllConfig", keys });
    for (const key of keys) {
      delete this.config[key];
    }
    await this.write();
  }

  private async write(): Promise<void> {
    const lines = Object.entries(this.config).map(([k, v]) => `  ${k}: ${JSON.stringify(v.value)}`);
    await fs.writeFile(this.settingsFile, `config:\n${lines.join("\n")}\n`);
  }

  async up(opts?: UpOptions): Promise<{ summary: { resourceChanges?: Record<string, number>; result: string } }> {
    const mode = this.config["cilium-lab:routingMode"]?.value ?? "vxlan";
    this.calls.push({
      op: "up",
      routingMode: mode,
      autoDirectNodeRoutes: this.config["cilium-lab:autoDirectNodeRoutes"]?.value,
      nativeRoutingCidr: this.config["cilium-lab:nativeRoutingCidr"]?.value,
    });
    opts?.onEvent?.({
      sequence: 1,
      timestamp: 0,
      resourcePreEvent: {
        metadata: {
          op: "update",
          urn: "urn:pulumi:s::cilium-lab::lab:cilium:Cilium::cilium",
          type: "lab:cilium:Cilium",
          provider: "",
        },
      },
    });
    const special = this.behaviour.get(mode);
    if (special !== undefined) {
      await special(opts);
    }
    const first = this.current === undefined;
    this.current = mode;
    return { summary: { result: "succeeded", resourceChanges: first ? { create: 40 } : { update: 3, same: 37 } } };
  }

  outputs(): Promise<OutputMap> {
    this.calls.push({ op: "outputs" });
    const mode = (this.current ?? "vxlan") as "vxlan" | "geneve" | "native";
    return Promise.resolve({
      lab: { value: { routingMode: mode }, secret: false },
      versions: { value: { cilium: "1.13.4", k3s: "v1.26.6+k3s1" }, secret: false },
      datapath: { value: cannedDatapath(mode), secret: false },
      throughput: { value: cannedThroughput(mode), secret: false },
      kubeconfig: { value: "apiVersion: v1\nclusters: [secret stuff]", secret: true },
    });
  }

  destroy(opts?: DestroyOptions): Promise<{ summary: { resourceChanges?: Record<string, number>; result: string } }> {
    this.calls.push({ op: "destroy" });
    opts?.onOutput?.("Destroying (stand-in)\n");
    this.current = undefined;
    return Promise.resolve({ summary: { result: "succeeded", resourceChanges: { delete: 40 } } });
  }
}
