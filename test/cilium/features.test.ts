/**
 * The feature prediction: what the agent runs for a table of configs (Cilium 1.13.4, 1.14.19,
 * 1.16.19, 1.20.0 × the images × the switches), the kernels of the images, and the problems and
 * warnings on platforms the lab's images do not have (an old kernel, a BIG TCP NIC), which only
 * featureProblemsOn can reach. The problems of the lab's own configs, as the parser words them, are
 * in test/config/features.test.ts.
 */
import test from "ava";

import {
  FEATURE_NAMES,
  featureProblemsOn,
  featureWarnings,
  kernelAtLeast,
  kernelOf,
  LAB_NIC_DRIVER,
  predictFeatures,
  predictFeaturesOn,
  type FeatureConfig,
  type PredictedFeatures,
} from "../../infra/cilium/features";

/** The parser's defaults: the article's lab. */
const DEFAULTS: FeatureConfig = {
  routingMode: "vxlan",
  ciliumVersion: "1.13.4",
  image: "ubuntu-23.04",
  kubeProxyReplacement: false,
  bpfMasquerade: false,
  hostRouting: "legacy",
  bandwidthManager: "off",
  ipv4BigTcp: false,
  hubble: true,
};

/** The series' full eBPF datapath: native routing, kube-proxy replacement, BPF masquerading and host routing. */
const EBPF: Partial<FeatureConfig> = {
  routingMode: "native",
  kubeProxyReplacement: true,
  bpfMasquerade: true,
  hostRouting: "bpf",
};

/** What 1.13.4 predicts for the defaults; every row below differs from it only where it says. */
const ARTICLE: PredictedFeatures = {
  tunnel: "vxlan",
  kubeProxyReplacement: "disabled",
  ipv6BigTcp: "disabled",
  ipv4BigTcp: null,
  bandwidthManager: "disabled",
  hostRouting: "legacy",
  masquerading: "iptables",
  hubbleRelay: "enabled",
};

const predictions: [string, Partial<FeatureConfig>, Partial<PredictedFeatures>][] = [
  ["1.13.4 defaults: the article's list (no IPv4 BIG TCP line)", {}, {}],
  ["1.14.19 defaults: IPv4 BIG TCP exists and is off", { ciliumVersion: "1.14.19" }, { ipv4BigTcp: "disabled" }],
  [
    "1.16.19 native with kube-proxy replacement on 24.04",
    { ciliumVersion: "1.16.19", image: "ubuntu-24.04", routingMode: "native", kubeProxyReplacement: true },
    { tunnel: "disabled", kubeProxyReplacement: "enabled", ipv4BigTcp: "disabled" },
  ],
  [
    "1.20.0 geneve without Hubble on 26.04",
    { ciliumVersion: "1.20.0", image: "ubuntu-26.04", routingMode: "geneve", hubble: false },
    { tunnel: "geneve", ipv4BigTcp: "disabled", hubbleRelay: "disabled" },
  ],
  [
    "1.13.4 full eBPF datapath on 23.04 (6.2 ≥ 5.10)",
    EBPF,
    { tunnel: "disabled", kubeProxyReplacement: "enabled", hostRouting: "bpf", masquerading: "bpf" },
  ],
  [
    "1.14.19 eBPF host routing in a VXLAN tunnel (the tuning guide: direct routing or tunneling)",
    { ...EBPF, ciliumVersion: "1.14.19", routingMode: "vxlan" },
    { kubeProxyReplacement: "enabled", ipv4BigTcp: "disabled", hostRouting: "bpf", masquerading: "bpf" },
  ],
  [
    "1.16.19 full eBPF datapath with BBR on 24.04",
    { ...EBPF, ciliumVersion: "1.16.19", image: "ubuntu-24.04", bandwidthManager: "bbr" },
    {
      tunnel: "disabled",
      kubeProxyReplacement: "enabled",
      ipv4BigTcp: "disabled",
      bandwidthManager: "edt+bbr",
      hostRouting: "bpf",
      masquerading: "bpf",
    },
  ],
  [
    "1.13.4 BBR on 23.04 (6.2 ≥ 5.18) with the eBPF datapath",
    { ...EBPF, bandwidthManager: "bbr" },
    {
      tunnel: "disabled",
      kubeProxyReplacement: "enabled",
      bandwidthManager: "edt+bbr",
      hostRouting: "bpf",
      masquerading: "bpf",
    },
  ],
  [
    "1.20.0 bandwidth manager on in VXLAN on 26.04: EDT, no kube-proxy replacement needed",
    { ciliumVersion: "1.20.0", image: "ubuntu-26.04", bandwidthManager: "on" },
    { ipv4BigTcp: "disabled", bandwidthManager: "edt" },
  ],
  [
    "1.16.19 IPv4 BIG TCP with every other need met on 24.04: disabled, virtio_net is no BIG TCP NIC",
    { ...EBPF, ciliumVersion: "1.16.19", image: "ubuntu-24.04", ipv4BigTcp: true },
    {
      tunnel: "disabled",
      kubeProxyReplacement: "enabled",
      ipv4BigTcp: "disabled",
      hostRouting: "bpf",
      masquerading: "bpf",
    },
  ],
  [
    "1.14.19 IPv4 BIG TCP on 23.04: disabled (6.2 < 6.3)",
    { ...EBPF, ciliumVersion: "1.14.19", ipv4BigTcp: true },
    {
      tunnel: "disabled",
      kubeProxyReplacement: "enabled",
      ipv4BigTcp: "disabled",
      hostRouting: "bpf",
      masquerading: "bpf",
    },
  ],
  [
    "a custom image with the eBPF datapath and BBR: the kernel decides host routing and BBR (null)",
    { ...EBPF, ciliumVersion: "1.16.19", image: "custom", bandwidthManager: "bbr" },
    {
      tunnel: "disabled",
      kubeProxyReplacement: "enabled",
      ipv4BigTcp: "disabled",
      bandwidthManager: null,
      hostRouting: null,
      masquerading: "bpf",
    },
  ],
  ["a custom image with the defaults: nothing depends on the kernel", { image: "custom" }, {}],
  // Configs the parser refuses: the state Cilium falls back to, or null where the agent would not start.
  [
    "refused: BPF host routing without kube-proxy replacement falls back to legacy silently",
    { hostRouting: "bpf", bpfMasquerade: true },
    { hostRouting: "legacy", masquerading: "iptables" },
  ],
  [
    "refused: BPF host routing without BPF masquerading falls back to legacy silently",
    { hostRouting: "bpf", kubeProxyReplacement: true, ciliumVersion: "1.20.0" },
    { kubeProxyReplacement: "enabled", ipv4BigTcp: "disabled", hostRouting: "legacy" },
  ],
  [
    "refused: BPF masquerading without kube-proxy replacement on 1.14 falls back to iptables",
    { bpfMasquerade: true, ciliumVersion: "1.14.19" },
    { ipv4BigTcp: "disabled", masquerading: "iptables" },
  ],
  [
    "refused: BPF masquerading without kube-proxy replacement on 1.16 (the agent would not start)",
    { bpfMasquerade: true, ciliumVersion: "1.16.19" },
    { ipv4BigTcp: "disabled", masquerading: null },
  ],
  [
    "refused: BBR with legacy host routing (the agent would not start)",
    { bandwidthManager: "bbr" },
    { bandwidthManager: null },
  ],
  [
    "refused: IPv4 BIG TCP in a tunnel (the agent would not start)",
    { ...EBPF, routingMode: "geneve", ciliumVersion: "1.20.0", image: "ubuntu-26.04", ipv4BigTcp: true },
    { tunnel: "geneve", kubeProxyReplacement: "enabled", ipv4BigTcp: null, hostRouting: "bpf", masquerading: "bpf" },
  ],
];

for (const [title, overrides, expected] of predictions) {
  test(`prediction: ${title}`, (t) => {
    t.deepEqual(predictFeatures({ ...DEFAULTS, ...overrides }), { ...ARTICLE, ...expected });
  });
}

test("a prediction names every feature, in the article's order", (t) => {
  t.deepEqual(Object.keys(predictFeatures(DEFAULTS)), [...FEATURE_NAMES]);
});

test("IPv4 BIG TCP is predicted enabled on a NIC of the tuning guide's list with every other need met", (t) => {
  const config = { ...DEFAULTS, ...EBPF, ciliumVersion: "1.16.19", image: "ubuntu-24.04", ipv4BigTcp: true } as const;
  t.is(predictFeaturesOn(config, { kernel: "6.8", nicDriver: "mlx5_core" }).ipv4BigTcp, "enabled");
  t.is(predictFeaturesOn(config, { kernel: "6.8", nicDriver: "ice" }).ipv4BigTcp, "enabled");
  t.is(predictFeaturesOn(config, { kernel: "6.2", nicDriver: "mlx5_core" }).ipv4BigTcp, "disabled");
  t.is(predictFeaturesOn(config, { kernel: "6.8", nicDriver: LAB_NIC_DRIVER }).ipv4BigTcp, "disabled");
  t.deepEqual(featureProblemsOn(config, { kernel: "6.8", nicDriver: "mlx5_core" }), []);
});

test("an old kernel: host routing stays legacy, the bandwidth manager is off, BBR is not predicted", (t) => {
  const config = { ...DEFAULTS, ...EBPF, bandwidthManager: "bbr" } as const;
  const on = (kernel: string) => predictFeaturesOn(config, { kernel, nicDriver: LAB_NIC_DRIVER });
  t.like(on("5.4"), { hostRouting: "legacy", bandwidthManager: null, masquerading: "bpf" });
  t.like(on("4.19"), { hostRouting: "legacy", bandwidthManager: "disabled" });
  t.like(on("5.15"), { hostRouting: "bpf", bandwidthManager: null });
  t.like(on("5.18"), { hostRouting: "bpf", bandwidthManager: "edt+bbr" });
});

test("each image's kernel, and none for a custom image", (t) => {
  t.is(kernelOf({ image: "ubuntu-23.04" }), "6.2");
  t.is(kernelOf({ image: "ubuntu-24.04" }), "6.8");
  t.is(kernelOf({ image: "ubuntu-26.04" }), "7.0");
  t.is(kernelOf({ image: "custom" }), null);
});

test("kernels compare as major.minor numbers", (t) => {
  const rows: [string, string, boolean][] = [
    ["6.2", "6.3", false],
    ["6.3", "6.3", true],
    ["6.10", "6.3", true],
    ["7.0", "6.3", true],
    ["5.9", "5.10", false],
    ["6.8.0", "5.18", true],
  ];
  for (const [kernel, min, expected] of rows) {
    t.is(kernelAtLeast(kernel, min), expected, `${kernel} ≥ ${min}`);
  }
  t.throws(() => kernelAtLeast("6", "5.10"), {
    message: 'not a kernel version: "6" (expected major.minor, e.g. 6.8)',
  });
});

test("problems on kernels older than any lab image: every kernel requirement, each with the agent's words", (t) => {
  const config = { ...DEFAULTS, ...EBPF, bandwidthManager: "bbr" } as const;
  const lines = (kernel: string) =>
    featureProblemsOn(config, { kernel, nicDriver: LAB_NIC_DRIVER }).map(
      (p) => `${p.key}=${p.value}: ${p.reason} | ${p.fix}`,
    );
  t.deepEqual(lines("4.14"), [
    "bpfMasquerade=true: needs kernel 4.19 or newer, and the kernel is 4.14 | Use image ubuntu-23.04 (6.2), ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or bpfMasquerade false",
    'hostRouting=bpf: bpf needs kernel 5.10 or newer, and the kernel is 4.14: Cilium silently stays on legacy host routing ("BPF host routing requires kernel 5.10 or newer.") | Use image ubuntu-23.04 (6.2), ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or hostRouting legacy',
    'bandwidthManager=bbr: needs kernel 5.1 or newer, and the kernel is 4.14: the agent disables it ("BPF bandwidth manager needs kernel 5.1 or newer. Disabling the feature.") | Use image ubuntu-23.04 (6.2), ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or bandwidthManager off',
    'bandwidthManager=bbr: bbr needs kernel 5.18 or newer, and the kernel is 4.14: the agent refuses to start ("Cannot enable --enable-bbr, needs kernel 5.18 or newer.") | Use image ubuntu-23.04 (6.2), ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or bandwidthManager on',
    'bandwidthManager=bbr: bbr needs BPF host routing, which falls back to legacy with this config (see hostRouting): the agent refuses to start without it ("BPF bandwidth manager\'s BBR setup requires BPF host routing.") | Fix the hostRouting problems, or set bandwidthManager on',
  ]);
  t.deepEqual(lines("5.15"), [
    'bandwidthManager=bbr: bbr needs kernel 5.18 or newer, and the kernel is 5.15: the agent refuses to start ("Cannot enable --enable-bbr, needs kernel 5.18 or newer.") | Use image ubuntu-23.04 (6.2), ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0), or bandwidthManager on',
  ]);
  t.deepEqual(lines("5.18"), []);
});

test("an unknown kernel refuses nothing and warns that the verification checks it", (t) => {
  const config = { ...DEFAULTS, ...EBPF, image: "custom", bandwidthManager: "bbr" } as const;
  t.deepEqual(featureProblemsOn(config, { kernel: null, nicDriver: LAB_NIC_DRIVER }), []);
  t.deepEqual(featureWarnings(config), [
    "cilium-lab:image is custom, so its kernel is unknown: the config cannot check the kernel that bpfMasquerade true, hostRouting bpf, bandwidthManager bbr need; the verification checks what the agent runs and refuses the numbers if it falls back.",
  ]);
  t.deepEqual(featureWarnings({ ...DEFAULTS, image: "custom", bandwidthManager: "on" }), [
    "cilium-lab:image is custom, so its kernel is unknown: the config cannot check the kernel that bandwidthManager on needs; the verification checks what the agent runs and refuses the numbers if it falls back.",
  ]);
  t.deepEqual(featureWarnings({ ...DEFAULTS, image: "custom" }), []);
  t.deepEqual(featureWarnings({ ...DEFAULTS, ...EBPF }), []);
});
