/**
 * The series' switches through the config parser: every impossible combination of the lab's own
 * configs with the exact problem lines the user reads (all of them, in one error, before any
 * resource), the combinations it accepts, and the custom-image warning. The requirement matrix
 * behind them is infra/cilium/feature-requirements.ts (sources there).
 */
import test from "ava";

import { parseLabConfig } from "../../infra/config";
import { problemsOf } from "./refused";

/** The series' eBPF datapath, which BPF host routing, BBR and BIG TCP build on. */
const EBPF = { routingMode: "native", kubeProxyReplacement: "true", bpfMasquerade: "true", hostRouting: "bpf" };

const P = "cilium-lab:";
const BPF_MASQ_NEEDS_KPR = `${P}bpfMasquerade: needs kubeProxyReplacement true: eBPF masquerading depends on BPF NodePort, which only kube-proxy replacement turns on here; 1.13 and 1.14 agents fall back to iptables ("BPF masquerade requires NodePort"), newer ones refuse to start (got true). Set kubeProxyReplacement true, or bpfMasquerade false.`;
const HOST_ROUTING_NEEDS_KPR = `${P}hostRouting: bpf needs kubeProxyReplacement true: without it Cilium silently stays on legacy host routing ("BPF host routing requires kube-proxy-replacement=strict.") (got "bpf"). Set kubeProxyReplacement true (and bpfMasquerade true), or hostRouting legacy.`;
const HOST_ROUTING_NEEDS_MASQ = `${P}hostRouting: bpf needs bpfMasquerade true: with iptables masquerading Cilium silently stays on legacy host routing ("BPF host routing requires enable-bpf-masquerade.") (got "bpf"). Set bpfMasquerade true (it needs kubeProxyReplacement true), or hostRouting legacy.`;
const BBR_NEEDS_HOST_ROUTING = `${P}bandwidthManager: bbr needs hostRouting bpf: the agent refuses to start without it ("BPF bandwidth manager's BBR setup requires BPF host routing.") (got "bbr"). Set hostRouting bpf (with kubeProxyReplacement and bpfMasquerade true), or bandwidthManager on.`;
const BBR_HOST_ROUTING_FALLS_BACK = `${P}bandwidthManager: bbr needs BPF host routing, which falls back to legacy with this config (see hostRouting): the agent refuses to start without it ("BPF bandwidth manager's BBR setup requires BPF host routing.") (got "bbr"). Fix the hostRouting problems, or set bandwidthManager on.`;
const BIG_TCP_113 = `${P}ipv4BigTcp: Cilium 1.13.4 has no IPv4 BIG TCP: it came with 1.14 (the 1.13 chart has only enableIPv6BIGTCP) (got true). Set ciliumVersion 1.14.0 or later, or ipv4BigTcp false.`;
const BIG_TCP_KERNEL = `${P}ipv4BigTcp: needs kernel 6.3 or newer, and image ubuntu-23.04 boots 6.2: the agent disables it ("Cannot enable --enable-ipv4-big-tcp, needs kernel 6.3 or newer") (got true). Use image ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or ipv4BigTcp false.`;
const BIG_TCP_NIC = `${P}ipv4BigTcp: needs a NIC driver with BIG TCP support (the Cilium tuning guide lists mlx4, mlx5 and ice), and every lab VM's NIC is virtio_net (libvirt model virtio) (got true). Set ipv4BigTcp false: no VM of this lab can have such a NIC, so this lab always refuses it; the key is kept for a lab on hosts whose VMs get one.`;
const bigTcpTunnel = (mode: string) =>
  `${P}ipv4BigTcp: is not supported with routingMode ${mode}: the agent refuses to start ("BIG TCP is not supported in tunneling mode") (got true). Set routingMode native, or ipv4BigTcp false.`;
const BIG_TCP_KPR = `${P}ipv4BigTcp: needs kubeProxyReplacement true (the Cilium tuning guide's IPv4 BIG TCP requirements) (got true). Set kubeProxyReplacement true, or ipv4BigTcp false.`;
const BIG_TCP_MASQ = `${P}ipv4BigTcp: needs bpfMasquerade true (the Cilium tuning guide's IPv4 BIG TCP requirements) (got true). Set bpfMasquerade true, or ipv4BigTcp false.`;
const BIG_TCP_HOST_ROUTING = `${P}ipv4BigTcp: needs hostRouting bpf: the agent refuses to start with legacy host routing ("BIG TCP is not supported with legacy host routing") (got true). Set hostRouting bpf, or ipv4BigTcp false.`;

const refused: [string, Record<string, string>, string[]][] = [
  ["BPF masquerading without kube-proxy replacement", { bpfMasquerade: "true" }, [BPF_MASQ_NEEDS_KPR]],
  [
    "BPF host routing alone (neither kube-proxy replacement nor BPF masquerading)",
    { hostRouting: "bpf" },
    [HOST_ROUTING_NEEDS_KPR, HOST_ROUTING_NEEDS_MASQ],
  ],
  [
    "BPF host routing with kube-proxy replacement but iptables masquerading",
    { hostRouting: "bpf", kubeProxyReplacement: "true" },
    [HOST_ROUTING_NEEDS_MASQ],
  ],
  [
    "BPF host routing with BPF masquerading but kube-proxy",
    { hostRouting: "bpf", bpfMasquerade: "true", ciliumVersion: "1.16.19" },
    [BPF_MASQ_NEEDS_KPR, HOST_ROUTING_NEEDS_KPR],
  ],
  ["BBR with legacy host routing", { bandwidthManager: "bbr" }, [BBR_NEEDS_HOST_ROUTING]],
  [
    "BBR with BPF host routing that falls back (no BPF masquerading)",
    { bandwidthManager: "bbr", hostRouting: "bpf", kubeProxyReplacement: "true", routingMode: "native" },
    [HOST_ROUTING_NEEDS_MASQ, BBR_HOST_ROUTING_FALLS_BACK],
  ],
  [
    "IPv4 BIG TCP on the article's lab: every reason",
    { ipv4BigTcp: "true" },
    [BIG_TCP_113, BIG_TCP_KERNEL, BIG_TCP_NIC, bigTcpTunnel("vxlan"), BIG_TCP_KPR, BIG_TCP_MASQ, BIG_TCP_HOST_ROUTING],
  ],
  [
    "IPv4 BIG TCP on 1.13.4 with the eBPF datapath",
    { ...EBPF, ipv4BigTcp: "true" },
    [BIG_TCP_113, BIG_TCP_KERNEL, BIG_TCP_NIC],
  ],
  [
    "IPv4 BIG TCP on 1.14.19 and the 23.04 kernel (6.2 < 6.3)",
    { ...EBPF, ciliumVersion: "1.14.19", ipv4BigTcp: "true" },
    [BIG_TCP_KERNEL, BIG_TCP_NIC],
  ],
  [
    "IPv4 BIG TCP with every other need met (1.16.19, 24.04): the virtio NIC alone",
    { ...EBPF, ciliumVersion: "1.16.19", image: "ubuntu-24.04", ipv4BigTcp: "true" },
    [BIG_TCP_NIC],
  ],
  [
    "IPv4 BIG TCP in a Geneve tunnel on 1.20.0 and 26.04",
    { ...EBPF, routingMode: "geneve", ciliumVersion: "1.20.0", image: "ubuntu-26.04", ipv4BigTcp: "true" },
    [BIG_TCP_NIC, bigTcpTunnel("geneve")],
  ],
  [
    "IPv4 BIG TCP with native routing but legacy host routing (1.20.0, 26.04)",
    {
      routingMode: "native",
      kubeProxyReplacement: "true",
      bpfMasquerade: "true",
      ciliumVersion: "1.20.0",
      image: "ubuntu-26.04",
      ipv4BigTcp: "true",
    },
    [BIG_TCP_NIC, BIG_TCP_HOST_ROUTING],
  ],
  [
    "every switch at once on the article's lab: one error lists them all, in key order",
    { bpfMasquerade: "true", hostRouting: "bpf", bandwidthManager: "bbr", ipv4BigTcp: "true" },
    [
      BPF_MASQ_NEEDS_KPR,
      HOST_ROUTING_NEEDS_KPR,
      BBR_HOST_ROUTING_FALLS_BACK,
      BIG_TCP_113,
      BIG_TCP_KERNEL,
      BIG_TCP_NIC,
      bigTcpTunnel("vxlan"),
      BIG_TCP_KPR,
    ],
  ],
];

for (const [title, raw, expected] of refused) {
  test(`refused: ${title}`, (t) => {
    t.deepEqual(problemsOf(raw), expected);
  });
}

test("a feature rule stands down when a key it reads failed its own rule", (t) => {
  t.deepEqual(problemsOf({ hostRouting: "bpf", kubeProxyReplacement: "yes" }), [
    'cilium-lab:kubeProxyReplacement: must be a boolean (got "yes"). Accepted: true, false.',
  ]);
});

const accepted: [string, Record<string, string>][] = [
  ["the compare variant native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true (1.13.4, 23.04)", EBPF],
  ["BBR on the eBPF datapath (23.04: 6.2 ≥ 5.18)", { ...EBPF, bandwidthManager: "bbr" }],
  ["the bandwidth manager alone, in a VXLAN tunnel", { bandwidthManager: "on" }],
  ["BPF masquerading with kube-proxy replacement in a tunnel", { bpfMasquerade: "true", kubeProxyReplacement: "true" }],
  ["BPF host routing in a Geneve tunnel on 1.20.0", { ...EBPF, routingMode: "geneve", ciliumVersion: "1.20.0" }],
];

for (const [title, raw] of accepted) {
  test(`accepted: ${title}`, (t) => {
    const { config, warnings } = parseLabConfig(raw);
    t.deepEqual(warnings, []);
    const typed = Object.fromEntries(
      Object.entries(raw).map(([key, value]) => [key, value === "true" ? true : value === "false" ? false : value]),
    );
    t.like(config, typed);
  });
}

test("a custom image with the switches on: accepted with a warning that the verification checks the kernel", (t) => {
  const { warnings } = parseLabConfig({
    ...EBPF,
    bandwidthManager: "bbr",
    image: "custom",
    imageUrl: "/srv/images/noble.qcow2",
    imageSha256: "a".repeat(64),
  });
  t.deepEqual(warnings, [
    "cilium-lab:image is custom, so its kernel is unknown: the config cannot check the kernel that bpfMasquerade true, hostRouting bpf, bandwidthManager bbr need; the verification checks what the agent runs and refuses the numbers if it falls back.",
  ]);
});
