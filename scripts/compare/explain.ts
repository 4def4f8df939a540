/**
 * Why a variant's numbers are what they are: a PURE rule table over the evidence the verification
 * layer exported (pod route MTU, TCP MSS from iperf3's JSON, retransmits, the sender's CPU, the
 * NIC's tunnel offloads, the agents' feature lines, netperf's latency). Each rule has an id, its
 * condition in words, and a function that returns the sentence with the numbers when the condition
 * holds (else null). Every rule is tested row by row (test/compare/explain.test.ts). When no rule
 * fires, the explanation says so, with the evidence it read.
 */
import type { RunRecord } from "../../infra/verify/iperf3";
import { variantName, type ModeView } from "./results";

/** The evidence of one variant, flattened for the rules. */
export interface Evidence {
  /** What the nodes run: `vxlan`, `geneve`, `native`, or e.g. `unknown` without datapath evidence. */
  readonly observed: string;
  /** False when the verification layer flagged the numbers (TCG), with its reason. */
  readonly representative: boolean;
  readonly warning: string | null;
  /** The distinct pod route MTUs seen (`null`: a route without mtu). */
  readonly podRouteMtus: readonly (number | null)[];
  /** Each node's NIC: MTU, driver, the offload flags ethtool printed (`on`, `off [fixed]`…). */
  readonly nics: readonly {
    readonly node: string;
    readonly mtu: number | null;
    readonly driver: string | null;
    readonly offloads: Readonly<Record<string, string>> | null;
  }[];
  /** Distinct TCP MSS values iperf3 reported, per path. */
  readonly mss: { readonly pod: readonly number[]; readonly host: readonly number[] };
  /** Sender retransmits per run, per path; `null` when iperf3 had no counter. */
  readonly retransmits: { readonly pod: readonly number[] | null; readonly host: readonly number[] | null };
  /** Mean sender (client) CPU %, per path. */
  readonly senderCpu: { readonly pod: number | null; readonly host: number | null };
  /** Paired pod/host throughput ratio, median over runs. */
  readonly ratio: number | null;
  /** netperf p50 medians, µs, per test and path. */
  readonly p50: Readonly<Partial<Record<"TCP_RR" | "TCP_CRR", { pod?: number; host?: number }>>>;
  /** Observed feature states that every node agrees on (feature → state). */
  readonly features: Readonly<Record<string, string>>;
}

/** One rule: an id, its condition in words, and the sentence when it holds. */
export interface Rule {
  readonly id: string;
  readonly when: string;
  readonly explain: (e: Evidence) => string | null;
}

/** The NIC offload that decides whether tunnelled packets are segmented by the NIC or in software. */
export const TUNNEL_SEGMENTATION = "tx-udp_tnl-segmentation";

/** A sender busier than this (mean %) is taken as the bottleneck. */
export const CPU_BOUND_PERCENT = 90;

const f1 = (v: number): string => v.toFixed(1);
const isTunnel = (mode: string): boolean => mode === "vxlan" || mode === "geneve";
const sum = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0);

/** The smallest NIC MTU across nodes, if any node reported one. */
function nicMtu(e: Evidence): number | null {
  const mtus = e.nics.map((n) => n.mtu).filter((m): m is number => m !== null);
  return mtus.length === 0 ? null : Math.min(...mtus);
}

/** The rules, in the order the report lists what fired. */
export const RULES: readonly Rule[] = [
  {
    id: "tunnel-route-mtu",
    when: "a pod route's MTU is below the NIC's MTU",
    explain: (e) => {
      const nic = nicMtu(e);
      const low = e.podRouteMtus.filter((m): m is number => m !== null && nic !== null && m < nic);
      if (nic === null || low.length === 0) {
        return null;
      }
      const m = Math.min(...low);
      return (
        `Pod routes carry MTU ${m} against the NIC's ${nic}: every pod packet gives up ${nic - m} bytes ` +
        `to the ${isTunnel(e.observed) ? `${e.observed} ` : ""}encapsulation, so it carries less payload than a host packet.`
      );
    },
  },
  {
    id: "mss-gap",
    when: "the largest pod↔pod TCP MSS is below the largest host↔host MSS",
    explain: (e) => {
      if (e.mss.pod.length === 0 || e.mss.host.length === 0) {
        return null;
      }
      const pod = Math.max(...e.mss.pod);
      const host = Math.max(...e.mss.host);
      if (pod >= host) {
        return null;
      }
      return (
        `pod↔pod TCP segments carry ${pod} bytes of payload against ${host} host↔host ` +
        `(${f1((100 * (host - pod)) / host)} % less per packet, the same work per packet).`
      );
    },
  },
  {
    id: "software-gso",
    when: `a tunnel runs and a node's NIC has ${TUNNEL_SEGMENTATION} off`,
    explain: (e) => {
      if (!isTunnel(e.observed)) {
        return null;
      }
      const off = e.nics.filter((n) => n.offloads?.[TUNNEL_SEGMENTATION]?.startsWith("off") === true);
      if (off.length === 0) {
        return null;
      }
      const where = off
        .map((n) => `${n.node}${n.driver ? ` (${n.driver})` : ""}: ${n.offloads?.[TUNNEL_SEGMENTATION] ?? ""}`)
        .join(", ");
      return (
        `The NIC cannot segment UDP-tunnelled packets (${TUNNEL_SEGMENTATION} ${where}): the kernel segments every ` +
        `${e.observed} super-packet in software (GSO), on the sender's CPU.`
      );
    },
  },
  {
    id: "sender-cpu-bound",
    when: `the pod↔pod sender's mean CPU is at least ${CPU_BOUND_PERCENT} %`,
    explain: (e) => {
      const { pod, host } = e.senderCpu;
      if (pod === null || pod < CPU_BOUND_PERCENT) {
        return null;
      }
      return (
        `The sender's CPU was ${f1(pod)} % busy in the pod↔pod runs` +
        `${host === null ? "" : ` (host↔host ${f1(host)} %)`}: the pod path is bounded by CPU, not by the link.`
      );
    },
  },
  {
    id: "pod-cpu-cost",
    when: `the pod↔pod sender's mean CPU exceeds host↔host's by 10 points or more (and stays below ${CPU_BOUND_PERCENT} %)`,
    explain: (e) => {
      const { pod, host } = e.senderCpu;
      if (pod === null || host === null || pod >= CPU_BOUND_PERCENT || pod - host < 10) {
        return null;
      }
      return `pod↔pod costs the sender more CPU than host↔host: ${f1(pod)} % against ${f1(host)} % (+${f1(pod - host)} points).`;
    },
  },
  {
    id: "pod-retransmits",
    when: "pod↔pod retransmitted at least 10 segments in total and more than host↔host",
    explain: (e) => {
      const { pod, host } = e.retransmits;
      if (pod === null || sum(pod) < 10 || (host !== null && sum(pod) <= sum(host))) {
        return null;
      }
      return (
        `pod↔pod retransmitted ${sum(pod)} segments over ${pod.length} run${pod.length === 1 ? "" : "s"} (${pod.join(", ")})` +
        `${host === null ? "" : ` against ${sum(host)} host↔host`}: losses on the pod path cost throughput.`
      );
    },
  },
  {
    id: "native-at-host-speed",
    when: "native routing runs, no pod route MTU is below the NIC's, and pod/host is at least 0.9",
    explain: (e) => {
      const nic = nicMtu(e);
      if (
        e.observed !== "native" ||
        e.ratio === null ||
        e.ratio < 0.9 ||
        e.podRouteMtus.some((m) => m !== null && nic !== null && m < nic)
      ) {
        return null;
      }
      return (
        `Native routing: pod↔pod reaches ${e.ratio.toFixed(2)} × host↔host (paired median). No encapsulation, ` +
        `full-size pod packets: pods pay nothing measurable over the host path.`
      );
    },
  },
  {
    id: "pod-latency-overhead",
    // netperf's percentiles come from its histogram in whole µs: 2 µs is twice its resolution.
    when: "pod↔pod TCP_RR p50 exceeds host↔host's by at least 2 µs and 10 %",
    explain: (e) => {
      const rr = e.p50.TCP_RR;
      if (rr?.pod === undefined || rr.host === undefined) {
        return null;
      }
      const d = rr.pod - rr.host;
      if (d < 2 || d < 0.1 * rr.host) {
        return null;
      }
      return (
        `A pod↔pod TCP_RR round trip takes ${f1(rr.pod)} µs at p50 against ${f1(rr.host)} µs host↔host ` +
        `(+${f1(d)} µs, +${f1((100 * d) / rr.host)} %): the pod path's per-packet work shows in every round trip.`
      );
    },
  },
  {
    id: "bpf-host-routing",
    when: "every agent says BPF host routing runs",
    explain: (e) =>
      e.features.hostRouting === "bpf"
        ? "Every agent says BPF host routing runs: pod traffic bypasses the host's iptables and routing stack " +
          "(eBPF redirects between the NIC and the pod's veth)."
        : null,
  },
  {
    id: "not-representative",
    when: "the verification layer flagged the numbers as not representative",
    explain: (e) =>
      e.representative
        ? null
        : `Not representative: ${e.warning ?? "measured under TCG"}. Emulated CPUs dominate every number here.`,
  },
];

/** Per-run values of a path, in run order. */
function runsOf(runs: readonly RunRecord[], path: "pod" | "host"): RunRecord[] {
  return runs.filter((r) => r.path === path).sort((a, b) => a.run - b.run);
}

/** Every feature's observed state when all nodes agree on it. */
function agreedFeatures(m: ModeView): Record<string, string> {
  const out: Record<string, string> = {};
  const nodes = m.features?.nodes ?? [];
  const names = [...new Set(nodes.flatMap((n) => n.lines.map((l) => l.feature)))];
  for (const name of names) {
    const states = nodes.map((n) => n.lines.find((l) => l.feature === name)?.observed ?? null);
    const first = states[0];
    if (first !== null && first !== undefined && states.every((s) => s === first)) {
      out[name] = first;
    }
  }
  return out;
}

/** The evidence of one measured variant, from its outputs. */
export function evidenceOf(m: ModeView): Evidence {
  const t = m.throughput;
  const retr = (p: "pod" | "host"): number[] | null => {
    const runs = runsOf(t?.runs ?? [], p);
    return runs.length === 0 || runs.some((r) => r.retransmits === null) ? null : runs.map((r) => r.retransmits ?? 0);
  };
  const p50: Record<string, { pod?: number; host?: number }> = {};
  for (const row of m.latency?.table ?? []) {
    p50[row.test] = { ...p50[row.test], [row.row === "pod-to-pod" ? "pod" : "host"]: row.p50Us.median };
  }
  return {
    observed: m.datapath?.observed ?? "unknown",
    representative: (t?.representative ?? true) && (m.latency?.representative ?? true),
    warning: t?.warning ?? m.latency?.warning ?? null,
    podRouteMtus: m.datapath?.observedBy?.podRouteMtus ?? [],
    nics: (m.datapath?.evidence?.nodes ?? []).map((n) => ({
      node: n.node,
      mtu: n.nic.mtu,
      driver: n.nic.driver,
      offloads: n.nic.offloads,
    })),
    mss: { pod: t?.podToPod.tcpMss ?? [], host: t?.hostToHost.tcpMss ?? [] },
    retransmits: { pod: retr("pod"), host: retr("host") },
    senderCpu: {
      pod: t?.podToPod.clientCpuPercent.mean ?? null,
      host: t?.hostToHost.clientCpuPercent.mean ?? null,
    },
    ratio: t?.ratio.paired.median ?? null,
    p50,
    features: agreedFeatures(m),
  };
}

/** One line of what the rules read, so a reader can check them (and see why none fired). */
export function describeEvidence(e: Evidence): string {
  const mtus = e.podRouteMtus.map((m) => (m === null ? "none" : String(m))).join(", ") || "none seen";
  const mss = (v: readonly number[]) => (v.length === 0 ? "n/a" : v.join(", "));
  const retr = (v: readonly number[] | null) => (v === null ? "n/a" : String(sum(v)));
  const cpu = (v: number | null) => (v === null ? "n/a" : `${f1(v)} %`);
  const offloads = e.nics.map((n) => `${n.node} ${n.offloads?.[TUNNEL_SEGMENTATION] ?? "n/a"}`).join(", ") || "n/a";
  return (
    `datapath ${e.observed}; pod route MTU ${mtus} (NIC ${nicMtu(e) ?? "n/a"}); MSS pod ${mss(e.mss.pod)} / host ${mss(e.mss.host)}; ` +
    `retransmits pod ${retr(e.retransmits.pod)} / host ${retr(e.retransmits.host)}; sender CPU pod ${cpu(e.senderCpu.pod)} / ` +
    `host ${cpu(e.senderCpu.host)}; ${TUNNEL_SEGMENTATION}: ${offloads}`
  );
}

/** The explanation of one variant: the rules that fired (id and sentence), in table order. */
export interface Explanation {
  readonly variant: string;
  readonly evidence: string;
  readonly fired: readonly { readonly id: string; readonly sentence: string }[];
}

/** Runs every rule over the evidence of a measured variant. */
export function explain(m: ModeView, rules: readonly Rule[] = RULES): Explanation {
  const e = evidenceOf(m);
  const fired: { id: string; sentence: string }[] = [];
  for (const rule of rules) {
    const sentence = rule.explain(e);
    if (sentence !== null) {
      fired.push({ id: rule.id, sentence });
    }
  }
  return { variant: variantName(m), evidence: describeEvidence(e), fired };
}

/** The explanation as Markdown lines: each fired rule, or that none did. */
export function explanationSection(x: Explanation): string[] {
  const out = ["Why (rules over the evidence above; scripts/compare/explain.ts):", ""];
  if (x.fired.length === 0) {
    out.push(`- No rule fired: none of the known causes shows in this evidence.`);
  }
  for (const f of x.fired) {
    out.push(`- \`${f.id}\`: ${f.sentence}`);
  }
  out.push("", `Evidence read: ${x.evidence}.`, "");
  return out;
}
