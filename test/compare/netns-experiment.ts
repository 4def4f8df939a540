/**
 * The article's experiment in miniature, on real kernel datapaths between network namespaces:
 * real `iperf3 -J` runs, fed through the verification layer's own parser and statistics
 * (infra/verify/iperf3.ts) into the view that report.md and throughput.svg are rendered from.
 *
 * Two "node" pairs, like two nodes of the lab:
 *  - pair `h` (h1 ↔ h2): one veth, 198.18.10.0/24 — host↔host; "pods" are /32 addresses on each
 *    namespace's loopback, reached by a direct route via the peer's veth address: native routing as
 *    Cilium's autoDirectNodeRoutes installs it, no encapsulation.
 *  - pair `t` (t1 ↔ t2): one veth underlay, 198.18.20.0/24 — host↔host; a real `vxlan` link (VNI 42,
 *    UDP 4789) with overlay 198.19.10.0/24 routed with `mtu 1450`, as Cilium routes pod traffic into
 *    its tunnel device.
 * Geneve is not measured here: not every kernel has the `geneve` link type (this project's CI kernel
 * has `vxlan` but answers "Unknown device type" for `geneve`); cluster runs measure it.
 * Addresses are from 198.18.0.0/15 (RFC 2544, benchmarking) and exist only inside these namespaces.
 */
import * as os from "node:os";

import { OFFLOAD_FLAGS } from "../../infra/verify/evidence";
import {
  parseIperf3Json,
  runRecord,
  summarizeThroughput,
  type PathName,
  type RunRecord,
  type ThroughputOutput,
} from "../../infra/verify/iperf3";
import type { Mode } from "../../scripts/compare/args";
import { hostFacts } from "../../scripts/compare/collect";
import type { CompareView, DatapathView, EnvironmentView, ModeView } from "../../scripts/compare/results";
import { sh, type NetnsLab } from "../support/netns";

/** What the namespace runs are labelled with, in the report and the chart. */
export const NAMESPACE_LABEL = "namespace data, not a cluster run: iperf3 between Linux network namespaces on one host (veth and vxlan links), no VMs, no Kubernetes, no Cilium";

/** One raw iperf3 document, kept so tests can recompute every number independently. */
export interface RawRun {
  readonly mode: Mode;
  readonly path: PathName;
  readonly run: number;
  readonly json: string;
}

/** The modes the namespaces can reproduce. */
export type NamespaceMode = Extract<Mode, "vxlan" | "native">;

/** Where each mode's paths run: client namespace, server address, and the client's extra flags. */
interface ModePlan {
  readonly mode: NamespaceMode;
  readonly client: string;
  readonly host: string;
  readonly pod: string;
  readonly podBind?: string;
  /** The device the pod path must leave through, and the route that sends it there. */
  readonly podRouteTo: string;
}

const PLANS: Readonly<Record<NamespaceMode, ModePlan>> = {
  vxlan: { mode: "vxlan", client: "t1", host: "198.18.20.2", pod: "198.19.10.2", podRouteTo: "198.19.10.2" },
  native: { mode: "native", client: "h1", host: "198.18.10.2", pod: "198.19.30.2", podBind: "198.19.30.1", podRouteTo: "198.19.30.2" },
};

/** Builds the two pairs and starts an iperf3 server on each far end. */
export async function buildTopology(lab: NetnsLab): Promise<void> {
  for (const ns of ["h1", "h2", "t1", "t2"]) {
    await lab.addNamespace(ns);
  }
  // Pair h: native routing of "pod" /32s over the veth, like autoDirectNodeRoutes.
  await lab.veth({ ns: "h1", ifname: "clc-u1", cidr: "198.18.10.1/24" }, { ns: "h2", ifname: "clc-u2", cidr: "198.18.10.2/24" });
  for (const [ns, me, peerPod, peerNode] of [
    ["h1", "198.19.30.1/32", "198.19.30.2", "198.18.10.2"],
    ["h2", "198.19.30.2/32", "198.19.30.1", "198.18.10.1"],
  ] as const) {
    // On the namespace's loopback, like a pod address behind cilium_host: reachable only by routing.
    await lab.exec(ns, ["ip", "addr", "add", me, "dev", "lo"]);
    await lab.exec(ns, ["ip", "route", "add", `${peerPod}/32`, "via", peerNode, "dev", ns === "h1" ? "clc-u1" : "clc-u2"]);
  }
  // Pair t: VXLAN over a veth underlay, overlay route with mtu 1450.
  await lab.veth({ ns: "t1", ifname: "clc-u1", cidr: "198.18.20.1/24" }, { ns: "t2", ifname: "clc-u2", cidr: "198.18.20.2/24" });
  for (const [ns, local, remote, n, dev] of [
    ["t1", "198.18.20.1", "198.18.20.2", "1", "clc-u1"],
    ["t2", "198.18.20.2", "198.18.20.1", "2", "clc-u2"],
  ] as const) {
    await lab.tunnel({ ns, kind: "vxlan", ifname: "clc-vx", id: 42, underlay: dev, local, remote, cidr: `198.19.10.${n}/24`, subnet: "198.19.10.0/24", mtu: 1450 });
  }
  await lab.iperf3Server("h2");
  await lab.iperf3Server("t2");
}

interface IpLink {
  ifname: string;
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number } };
}
interface IpRoute {
  dev?: string;
  gateway?: string;
  metrics?: Array<{ mtu?: number }>;
}

/**
 * The datapath of a mode's pod path, read from the kernel, as checks in the verification layer's
 * shape: the device `ip route get` picks, its kind (`ip -d -j link`), the route MTU. observed =
 * vxlan for a vxlan link, native for a plain veth next hop.
 */
export async function namespaceDatapath(lab: NetnsLab, mode: NamespaceMode): Promise<DatapathView> {
  const plan = PLANS[mode];
  const scope = lab.ns(plan.client);
  const get = JSON.parse(
    await lab.exec(plan.client, ["ip", "-j", "route", "get", plan.podRouteTo, ...(plan.podBind ? ["from", plan.podBind] : [])]),
  ) as IpRoute[];
  const dev = get[0]?.dev ?? "?";
  const link = (JSON.parse(await lab.exec(plan.client, ["ip", "-d", "-j", "link", "show", dev])) as IpLink[])[0];
  const kind = link?.linkinfo?.info_kind ?? "?";
  const observed = kind === "vxlan" ? "vxlan" : kind === "veth" ? "native" : "unknown";
  const routes = JSON.parse(await lab.exec(plan.client, ["ip", "-j", "route", "show", "dev", dev])) as IpRoute[];
  const routeMtu = routes.map((r) => r.metrics?.find((m) => m.mtu !== undefined)?.mtu).find((m) => m !== undefined);
  const data = link?.linkinfo?.info_data;
  const checks: DatapathView["checks"] =
    mode === "vxlan"
      ? [
          { scope, check: `device of the route to ${plan.podRouteTo}`, expected: "a vxlan link", actual: `${dev} (${kind})`, ok: kind === "vxlan" },
          { scope, check: `${dev} link`, expected: "vxlan, UDP port 4789", actual: `${kind} VNI ${data?.id ?? "?"}, UDP port ${data?.port ?? "?"}, link MTU ${link?.mtu ?? "?"}`, ok: kind === "vxlan" && data?.port === 4789 },
          { scope, check: "overlay route MTU", expected: "1450", actual: String(routeMtu ?? "none"), ok: routeMtu === 1450 },
        ]
      : [
          {
            scope,
            check: `device of the route to ${plan.podRouteTo}`,
            expected: "the veth to the peer, no tunnel",
            actual: `${dev}${get[0]?.gateway ? ` via ${get[0].gateway}` : ""} (${kind})`,
            ok: kind === "veth",
          },
          { scope, check: `${dev} MTU`, expected: "1500", actual: String(link?.mtu ?? "?"), ok: link?.mtu === 1500 },
        ];
  const failed = checks.filter((c) => !c.ok);
  return {
    requested: mode,
    observed,
    verdict: failed.length === 0 && observed === mode ? "confirmed" : "refused",
    checks,
    reasons: failed.map((c) => `${c.scope}: ${c.check}: expected ${c.expected}, found ${c.actual}`),
  };
}

/** Runs every mode: host and pod runs alternate (host 1, pod 1, host 2, …), `seconds` each. */
export async function runModes(
  lab: NetnsLab,
  modes: readonly NamespaceMode[],
  runs: number,
  seconds: number,
): Promise<{ views: ModeView[]; raw: RawRun[] }> {
  const views: ModeView[] = [];
  const raw: RawRun[] = [];
  for (const mode of modes) {
    const plan = PLANS[mode];
    const records: RunRecord[] = [];
    let order = 0;
    for (let run = 1; run <= runs; run++) {
      for (const path of ["host", "pod"] as const) {
        const target = path === "host" ? plan.host : plan.pod;
        const extra = path === "pod" && plan.podBind ? ["-B", plan.podBind] : [];
        const json = await lab.iperf3Client(plan.client, target, seconds, extra);
        raw.push({ mode, path, run, json });
        order += 1;
        const label = `${mode} ${path} run ${run} (${lab.ns(plan.client)} → ${target})`;
        records.push(runRecord(path, run, order, label, parseIperf3Json(json, label)));
      }
    }
    const throughput: ThroughputOutput = summarizeThroughput({
      runs: records,
      routingMode: mode,
      // No VMs at all: "kvm" only means "not TCG" to the statistics; the report's label says what this is.
      accelerator: "kvm",
      settings: {
        image: "none: the host's iperf3 binary",
        seconds,
        omitSeconds: 0,
        streams: 1,
        runs,
        clientArgs: ["-c", "<target>", "-J", "-t", String(seconds)],
        server: { node: lab.ns(plan.client === "t1" ? "t2" : "h2"), hostIp: plan.host, podIp: plan.pod },
        client: { node: lab.ns(plan.client) },
        order: "host and pod runs alternate: host 1, pod 1, host 2, …",
      },
    });
    views.push({ mode, status: "measured", throughput, datapath: await namespaceDatapath(lab, mode) });
  }
  return { views, raw };
}

/** The underlay veth's offload flags the verification layer records on nodes (GRO, GSO, TSO, UDP tunnel offloads…). */
async function offloads(lab: NetnsLab): Promise<Record<string, string>> {
  const wanted: readonly string[] = OFFLOAD_FLAGS;
  const out: Record<string, string> = {};
  let text: string;
  try {
    text = await lab.exec("t1", ["ethtool", "-k", "clc-u1"]);
  } catch (err) {
    return { "ethtool -k": `not available (${String(err).split("\n")[0] ?? ""}); apt-get install ethtool` };
  }
  for (const line of text.split("\n")) {
    const m = /^\s*([a-z0-9_-]+):\s+(\S+(?: \[fixed\])?)/.exec(line);
    if (m?.[1] !== undefined && wanted.includes(m[1])) {
      out[`veth clc-u1 ${m[1]}`] = m[2] ?? "";
    }
  }
  return out;
}

/** The environment of the namespace runs: this host's kernel and CPU, iperf3's and iproute2's versions, MTUs, offloads. */
export async function namespaceEnvironment(lab: NetnsLab, views: readonly ModeView[]): Promise<EnvironmentView> {
  const host = hostFacts();
  const iperf3 = views.map((v) => v.throughput?.runs[0]?.iperf3Version).find((v) => typeof v === "string") ?? "unknown";
  const ip = (await sh("ip", ["-V"])).trim();
  const mtu: Record<string, number> = {};
  for (const dev of ["clc-u1", "clc-vx"]) {
    const link = (JSON.parse(await lab.exec("t1", ["ip", "-j", "link", "show", dev])) as IpLink[])[0];
    if (link !== undefined) {
      mtu[`${dev} (${dev === "clc-u1" ? "veth underlay" : "vxlan link; its overlay route: mtu 1450"})`] = link.mtu;
    }
  }
  return {
    kernel: `host: ${host.kernel} (every namespace shares it)`,
    cpuModel: `host: ${host.cpuModel} (${host.cpus} CPUs, shared with other work: absolute numbers are noisy)`,
    accelerator: "none: network namespaces on one host, no VMs",
    tcg: false,
    versions: { iperf3, iproute2: ip, node: process.version, os: `${os.type()} ${os.release()}` },
    mtu,
    offloads: await offloads(lab),
  };
}

/** The whole namespace experiment as a {@link CompareView}. */
export async function namespaceView(lab: NetnsLab, modes: readonly NamespaceMode[], runs: number, seconds: number): Promise<{ view: CompareView; raw: RawRun[] }> {
  const startedAt = new Date().toISOString();
  const { views, raw } = await runModes(lab, modes, runs, seconds);
  return {
    view: {
      source: { kind: "namespaces", label: NAMESPACE_LABEL },
      stack: "(none: network namespaces)",
      startedAt,
      environment: await namespaceEnvironment(lab, views),
      modes: views,
    },
    raw,
  };
}
