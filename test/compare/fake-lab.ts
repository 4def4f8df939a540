/**
 * Stand-ins for the cluster layers (VMs, k3s, Cilium, the iperf3 and netperf Jobs), which cannot
 * run here: canned but realistic `datapath`, `throughput`, `latency`, `features` and `nodeHosts` outputs for a
 * routing mode or a variant's config, built with the verification layer's own functions and the
 * config's own prediction, and an in-memory stack double for the mock tests.
 */
import { promises as fs } from "node:fs";

import type { ConfigMap, DestroyOptions, OutputMap, UpOptions } from "@pulumi/pulumi/automation";

import { ARTICLE_FEATURES, FEATURE_NAMES, predictFeatures, type FeatureName } from "../../infra/cilium/features";
import { parseLabConfig, type LabConfig } from "../../infra/config";
import type { DatapathOutput, FeatureLine, FeaturesOutput } from "../../infra/verify/evidence";
import { FEATURE_LABELS } from "../../infra/verify/evidence/feature-states";
import {
  runRecord,
  summarizeThroughput,
  type Iperf3Result,
  type RunRecord,
  type ThroughputOutput,
} from "../../infra/verify/iperf3";
import {
  latencyOf,
  latencyRunRecord,
  NETPERF_TESTS,
  type LatencyOutput,
  type LatencyRunRecord,
} from "../../infra/verify/netperf";
import { planLab } from "../../infra/plan";
import { labKeys } from "../../scripts/compare/modes";
import type { LabStack } from "../../scripts/compare/orchestrate";
import { VARIANT_KEYS } from "../../scripts/compare/variants";

/** MiB/s the stand-in "measures": the article's figures (Geneve: a little below VXLAN). */
export const CANNED_MIBPS: Readonly<Record<string, { pod: number; host: number }>> = {
  vxlan: { pod: 493, host: 1138 },
  geneve: { pod: 480, host: 1138 },
  native: { pod: 1266, host: 1138 },
};

/** What the stand-in's iperf3 and netperf settings share: the image, three 10 s runs, where server and client ran. */
const STAND_IN_JOBS = {
  image: "stand-in",
  seconds: 10,
  runs: 3,
  server: { node: "node-2", hostIp: "192.168.150.12", podIp: "10.0.1.10" },
  client: { node: "node-3" },
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
      ...STAND_IN_JOBS,
      omitSeconds: 1,
      streams: 1,
      clientArgs: ["-c", "<target>", "-J", "-t", "10", "-O", "1"],
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

/** p50 µs the stand-in "measures" for TCP_RR per mode and path (TCP_CRR: three times as long). */
export const CANNED_P50_US: Readonly<Record<string, { pod: number; host: number }>> = {
  vxlan: { pod: 72, host: 50 },
  geneve: { pod: 74, host: 50 },
  native: { pod: 56, host: 50 },
};

/** The `latency` output for a mode: three runs per path and test at ±2 % around {@link CANNED_P50_US}. */
export function cannedLatency(mode: "vxlan" | "geneve" | "native", accelerator: "kvm" | "qemu" = "kvm"): LatencyOutput {
  const base = CANNED_P50_US[mode] ?? { pod: 1, host: 1 };
  const runs: LatencyRunRecord[] = [];
  for (const [i, f] of [0.98, 1, 1.02].entries()) {
    for (const test of NETPERF_TESTS) {
      for (const path of ["host", "pod"] as const) {
        const p50 = base[path] * f * (test === "TCP_CRR" ? 3 : 1);
        runs.push(
          latencyRunRecord(path, i + 1, runs.length + 1, `netperf-${path}-${test}-${i + 1}`, {
            test,
            minUs: p50 * 0.6,
            p50Us: p50,
            p90Us: p50 * 1.3,
            p99Us: p50 * 2,
            meanUs: p50 * 1.1,
            stddevUs: p50 * 0.2,
            maxUs: p50 * 10,
            transactionsPerSecond: 1e6 / (p50 * 1.1),
            remoteHost: path === "host" ? "192.168.150.12" : "10.0.1.10",
          }),
        );
      }
    }
  }
  return latencyOf({
    runs,
    routingMode: mode,
    accelerator,
    settings: {
      ...STAND_IN_JOBS,
      tests: NETPERF_TESTS,
      clientArgs: {},
      serverArgs: ["netserver", "-D", "-p", "12865"],
      order: "interleaved with the iperf3 runs",
    },
  });
}

/** What an agent of the article's Cilium 1.13.4 prints for a predicted state (a plausible stand-in). */
const SAYS: Readonly<Record<FeatureName, (state: string) => string>> = {
  tunnel: (s) => (s === "disabled" ? "no cilium_vxlan or cilium_geneve" : `cilium_${s}`),
  kubeProxyReplacement: (s) => (s === "enabled" ? "Strict   [enp1s0 192.168.150.12]" : "Disabled"),
  ipv6BigTcp: () => "Disabled",
  ipv4BigTcp: (s) => (s === "enabled" ? "Enabled [196608]" : "Disabled"),
  bandwidthManager: (s) => (s === "disabled" ? "Disabled" : "EDT with BPF [enp1s0]"),
  hostRouting: (s) => (s === "bpf" ? "BPF" : "Legacy"),
  masquerading: (s) =>
    s === "bpf"
      ? "BPF   [enp1s0]   10.0.0.0/16 [IPv4: Enabled, IPv6: Disabled]"
      : "IPTables [IPv4: Enabled, IPv6: Disabled]",
  hubbleRelay: (s) => (s === "enabled" ? "1/1 ready" : "absent"),
};

/** The `features` output of a config: every node's agent says what the config predicts. */
export function cannedFeatures(
  config: LabConfig,
  nodes: readonly string[] = ["node-1", "node-2", "node-3"],
): FeaturesOutput {
  const predicted = predictFeatures(config);
  const line = (f: FeatureName): FeatureLine => {
    const state = predicted[f];
    return {
      feature: f,
      label: FEATURE_LABELS[f],
      article: f === "ipv4BigTcp" ? null : ARTICLE_FEATURES[f],
      asked: state,
      observed: state,
      agentSays: state === null ? null : SAYS[f](state),
      source:
        f === "tunnel"
          ? "tunnel devices (ip -d link)"
          : f === "hubbleRelay"
            ? "Deployment hubble-relay"
            : "cilium status",
      checked: state !== null && f !== "ipv6BigTcp",
      ok: true,
    };
  };
  return {
    ok: true,
    nodes: nodes.map((node) => ({ node, lines: FEATURE_NAMES.map(line) })),
    relay: { deployment: null, line: line("hubbleRelay") },
  };
}

/** The `nodeHosts` output as infra/index.ts exports it: each planned node's libvirt URI, in node order. */
export function cannedNodeHosts(config: LabConfig, stack: string): { name: string; host: string }[] {
  return planLab(config, stack).nodes.map(({ name, hostUri }) => ({ name, host: hostUri }));
}

/** What the double saw, in order. */
export type FakeCall =
  | { op: "setAllConfig"; config: Record<string, string> }
  | { op: "removeAllConfig"; keys: string[] }
  | {
      op: "up";
      routingMode: string;
      autoDirectNodeRoutes: string | undefined;
      nativeRoutingCidr: string | undefined;
      /** The variant keys the stack had set at this `up` (`key=value`, sorted); absent when none. */
      features?: string;
    }
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
  /** The config of the last `up`, parsed by the program's parser. */
  private deployed: LabConfig | undefined;
  /** Mode → what `up` does instead of succeeding at once. */
  readonly behaviour = new Map<string, (opts: UpOptions | undefined) => Promise<void>>();
  /** False: the stack of a program made before the `nodeHosts` output existed. */
  recordsNodeHosts = true;

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
    const features = Object.entries(labKeys(this.config))
      .filter(([k]) => (VARIANT_KEYS as readonly string[]).includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(" ");
    this.calls.push({
      op: "up",
      routingMode: mode,
      autoDirectNodeRoutes: this.config["cilium-lab:autoDirectNodeRoutes"]?.value,
      nativeRoutingCidr: this.config["cilium-lab:nativeRoutingCidr"]?.value,
      ...(features !== "" ? { features } : {}),
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
    this.deployed = parseLabConfig(labKeys(this.config)).config;
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
      ...(this.deployed !== undefined
        ? {
            features: { value: cannedFeatures(this.deployed), secret: false },
            latency: { value: cannedLatency(mode), secret: false },
            ...(this.recordsNodeHosts
              ? { nodeHosts: { value: cannedNodeHosts(this.deployed, this.name), secret: false } }
              : {}),
          }
        : {}),
      kubeconfig: { value: "apiVersion: v1\nclusters: [secret stuff]", secret: true },
    });
  }

  destroy(opts?: DestroyOptions): Promise<{ summary: { resourceChanges?: Record<string, number>; result: string } }> {
    this.calls.push({ op: "destroy" });
    opts?.onOutput?.("Destroying (stand-in)\n");
    this.current = undefined;
    this.deployed = undefined;
    return Promise.resolve({ summary: { result: "succeeded", resourceChanges: { delete: 40 } } });
  }
}
