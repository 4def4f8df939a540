/**
 * The article's experiment in miniature, on real kernel datapaths between network namespaces, with
 * the verification layer's own test lab (test/verify/netns-lab.ts): a native pair (veth underlay,
 * pod CIDRs routed directly via the peer, as autoDirectNodeRoutes does) and a tunnel pair (a real
 * VXLAN device `cilium_vxlan` over a veth underlay, pod routes with `mtu 1450`, as Cilium's tunnel
 * mode). Real `iperf3 -J` runs and real netperf TCP_RR/TCP_CRR runs (host and pod interleaved, with
 * exactly the lab's client argv) go through infra/verify's parsers and statistics; the real evidence
 * collector (scripts/node/collect-evidence.sh) runs in the namespaces and the real verdict judges it. Only the Cilium side of the evidence (cilium-config, agent status)
 * cannot exist here: it is given as the article's Cilium 1.13.4 would report it (as
 * test/verify/namespaces.netns.test.ts does), and the report's label says so.
 *
 * Geneve is not measured here: this project's CI kernel has no `geneve` link type ("Unknown device
 * type"); cluster runs measure it.
 */
import * as os from "node:os";

import {
  buildEvidence,
  datapathOutput,
  parseClusterFacts,
  parseNodeFacts,
  type DatapathOutput,
  type RequestedDatapath,
} from "../../infra/verify/evidence";
import {
  parseIperf3Json,
  runRecord,
  summarizeThroughput,
  type PathName,
  type RunRecord,
} from "../../infra/verify/iperf3";
import {
  latencyRunRecord,
  netperfClientArgs,
  NETPERF_TESTS,
  parseNetperf,
  type LatencyOutput,
  type LatencyRunRecord,
  type NetperfTest,
} from "../../infra/verify/netperf";
import { environmentFromEvidence, hostFacts } from "../../scripts/compare/collect";
import type { CompareView, EnvironmentView, ModeView } from "../../scripts/compare/results";
import { pairEnds, pairLatency, VerifyLab, type Pair, type Pairs } from "../verify/netns-lab";
import { nodeScript } from "../../infra/node-scripts";
import { agentStatus113, clusterStateDoc, NETPERF_TOOLS, sh, type RequiredTool } from "../verify/support";

/** What the experiment runs: the verification tests' tools, and netperf (Debian's non-free component). */
export const EXPERIMENT_TOOLS: readonly RequiredTool[] = NETPERF_TOOLS;

/** What the namespace runs are labelled with, in the report and the chart. */
export const NAMESPACE_LABEL =
  "namespace data, not a cluster run: iperf3 and netperf between Linux network namespaces on one host (a veth pair with direct routes; " +
  "a real VXLAN device over veth with mtu 1450 routes), no VMs, no Kubernetes, no Cilium — the node-side evidence is collected " +
  "for real, the cilium-config and agent side is a stand-in";

/** The modes namespaces can reproduce. */
export type NamespaceMode = "vxlan" | "native";

/** One raw iperf3 document, kept so tests can recompute every number independently. */
export interface RawRun {
  readonly mode: NamespaceMode;
  readonly path: PathName;
  readonly run: number;
  readonly json: string;
}

/** One raw netperf output, kept so tests can recompute every latency independently. */
export interface RawLatencyRun {
  readonly mode: NamespaceMode;
  readonly path: PathName;
  readonly test: NetperfTest;
  readonly run: number;
  readonly output: string;
}

/** Seconds per netperf run (`-l`). */
export const NETPERF_SECONDS = 1;

/** The collector as the nodes get it (lib.sh in front), as a file. */
const COLLECTOR = nodeScript("collect-evidence.sh").path;

/** Builds both pairs and starts their iperf3 servers and netservers. */
export async function buildPairs(lab: VerifyLab): Promise<Pairs> {
  return lab.pairs(async (side) => {
    await lab.server(side);
    await lab.netserver(side);
  });
}

/** netperf TCP_RR then TCP_CRR from the pair's a side to b's host or pod address, parsed; raw outputs kept. */
async function latencyRuns(
  lab: VerifyLab,
  pair: Pair,
  at: { mode: NamespaceMode; path: PathName; run: number },
  records: LatencyRunRecord[],
  raw: RawLatencyRun[],
): Promise<void> {
  const target = at.path === "host" ? pair.b.nodeIp : pair.b.podIp;
  for (const test of NETPERF_TESTS) {
    const label = `${at.mode} ${at.path} ${test} run ${at.run} (${pair.a.ns} → ${target})`;
    const r = await lab.netperf(pair.a, netperfClientArgs({ test, target, seconds: NETPERF_SECONDS }));
    raw.push({ ...at, test, output: r.output });
    records.push(latencyRunRecord(at.path, at.run, records.length + 1, label, parseNetperf(r.output, test, label)));
  }
}

/** The `latency` output of one pair's netperf runs, as the lab's verification exports it. */
function namespaceLatency(pair: Pair, runs: number, records: LatencyRunRecord[]): LatencyOutput {
  // The pair's kind is its mode; no VMs at all: the report's label says what this is.
  return pairLatency(pair, records, {
    image: "none: the host's netperf (Debian non-free), in network namespaces",
    seconds: NETPERF_SECONDS,
    runs,
    order: "after each iperf3 run on the same path: TCP_RR, then TCP_CRR",
  });
}

/** The request a stack would make for `mode` on these pairs (the article's Cilium 1.13.4). */
function request(mode: NamespaceMode): RequestedDatapath {
  return {
    routingMode: mode,
    autoDirectNodeRoutes: mode === "native",
    nativeRoutingCidr: "10.99.0.0/16",
    ciliumVersion: "1.13.4",
  };
}

/** The datapath output for a pair: the real collector on both sides, the real verdict. */
export async function namespaceDatapath(lab: VerifyLab, pair: Pair, mode: NamespaceMode): Promise<DatapathOutput> {
  const docs = await Promise.all([pair.a, pair.b].map((s) => lab.evidence(s, COLLECTOR)));
  const nodes = [pair.a, pair.b].map((s) => ({ name: s.ns, ip: s.nodeIp, podCidr: s.podCidr }));
  // Stand-in for what collect-cilium-state.sh reads from a cluster: Cilium 1.13.4's cilium-config for the mode.
  const configMap: Record<string, string> =
    mode === "native"
      ? { tunnel: "disabled", "auto-direct-node-routes": "true", "ipv4-native-routing-cidr": "10.99.0.0/16" }
      : { tunnel: "vxlan" };
  const evidence = buildEvidence({
    ciliumVersion: "1.13.4",
    cluster: parseClusterFacts(clusterStateDoc(configMap, nodes, (n) => agentStatus113(n))),
    nodes: [pair.a, pair.b].map((s, i) => ({ node: s.ns, ip: s.nodeIp, facts: parseNodeFacts(docs[i] ?? "", s.ns) })),
    measuredPods: [{ name: "iperf3-server", node: pair.b.ns, ip: pair.b.podIp }],
  });
  return datapathOutput(request(mode), evidence);
}

/**
 * Runs each mode on its pair: host and pod alternate (host 1, pod 1, host 2, …), `seconds` of
 * iperf3 each, each followed by netperf TCP_RR and TCP_CRR on the same path.
 */
export async function runModes(
  lab: VerifyLab,
  pairs: Pairs,
  modes: readonly NamespaceMode[],
  runs: number,
  seconds: number,
): Promise<{ views: ModeView[]; raw: RawRun[]; rawLatency: RawLatencyRun[] }> {
  const views: ModeView[] = [];
  const raw: RawRun[] = [];
  const rawLatency: RawLatencyRun[] = [];
  const args = ["-t", String(seconds)];
  for (const mode of modes) {
    const pair = pairs[mode];
    const records: RunRecord[] = [];
    const latency: LatencyRunRecord[] = [];
    for (let run = 1; run <= runs; run++) {
      for (const p of ["host", "pod"] as const) {
        const [to, bind] = p === "host" ? [pair.b.nodeIp, pair.a.nodeIp] : [pair.b.podIp, pair.a.podIp];
        const json = await lab.client(pair.a, to, bind, args);
        raw.push({ mode, path: p, run, json });
        const label = `${mode} ${p} run ${run} (${pair.a.ns} → ${to})`;
        records.push(runRecord(p, run, records.length + 1, label, parseIperf3Json(json, label)));
        await latencyRuns(lab, pair, { mode, path: p, run }, latency, rawLatency);
      }
    }
    const throughput = summarizeThroughput({
      runs: records,
      routingMode: mode,
      // No VMs at all: "kvm" only means "not TCG" to the statistics; the report's label says what this is.
      accelerator: "kvm",
      settings: {
        image: "none: the host's iperf3, in network namespaces",
        seconds,
        omitSeconds: 0,
        streams: 1,
        runs,
        clientArgs: ["-c", "<target>", "-B", "<source>", "-p", "5201", "-J", ...args],
        ...pairEnds(pair),
        order: "host and pod runs alternate: host 1, pod 1, host 2, …",
      },
    });
    views.push({
      mode,
      status: "measured",
      throughput,
      datapath: await namespaceDatapath(lab, pair, mode),
      latency: namespaceLatency(pair, runs, latency),
    });
  }
  return { views, raw, rawLatency };
}

/** The environment of the namespace runs: the collected node facts, this host's CPU, versions. */
export async function namespaceEnvironment(views: readonly ModeView[]): Promise<EnvironmentView> {
  const host = hostFacts();
  const fromEvidence = environmentFromEvidence(views.flatMap((v) => v.datapath?.evidence?.nodes ?? []));
  const iperf3 = views.map((v) => v.throughput?.runs[0]?.iperf3Version).find((v) => typeof v === "string") ?? "unknown";
  const netperf = (await sh("netperf", ["-V"])).trim();
  return {
    kernel: `namespaces (every one shares the host's kernel): ${fromEvidence.kernel ?? "?"}; host: ${host.kernel}`,
    cpuModel: `host: ${host.cpuModel} (${host.cpus} CPUs, shared with other work: absolute numbers are noisy)`,
    accelerator: "none: network namespaces on one host, no VMs",
    tcg: false,
    versions: {
      iperf3,
      netperf,
      iproute2: (await sh("ip", ["-V"])).trim(),
      node: process.version,
      os: `${os.type()} ${os.release()}`,
    },
    mtu: fromEvidence.mtu,
    offloads: fromEvidence.offloads,
  };
}

/** The whole namespace experiment as a {@link CompareView}. */
export async function namespaceView(
  lab: VerifyLab,
  pairs: Pairs,
  modes: readonly NamespaceMode[],
  runs: number,
  seconds: number,
): Promise<{ view: CompareView; raw: RawRun[]; rawLatency: RawLatencyRun[] }> {
  const startedAt = new Date().toISOString();
  const { views, raw, rawLatency } = await runModes(lab, pairs, modes, runs, seconds);
  return {
    view: {
      source: { kind: "namespaces", label: NAMESPACE_LABEL },
      stack: "(none: network namespaces)",
      startedAt,
      environment: await namespaceEnvironment(views),
      modes: views,
    },
    raw,
    rawLatency,
  };
}
