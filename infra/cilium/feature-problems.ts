/**
 * The series' switches a config asks for that cannot work: one problem per reason, every reason
 * that applies, so that the config parser (infra/config/rules.ts, checkFeatures) lists them all in
 * one error before any resource exists. Pure; the requirements and their sources are in
 * feature-requirements.ts.
 */
import {
  BIG_TCP_NICS,
  bpfHostRoutingRuns,
  ciliumMinor,
  imagesWithKernel,
  IPV4_BIG_TCP_FIRST_MINOR,
  kernelAtLeast,
  kernelOf,
  LAB_NIC_DRIVER,
  MIN_KERNEL,
  nicSupportsBigTcp,
  platformOf,
  type Platform,
} from "./feature-requirements";
import type { FeatureConfig } from "./features";

/** One impossible request: the config key, its value, why it cannot work, and what to set instead. */
export interface FeatureProblem {
  readonly key: string;
  readonly value: string;
  readonly reason: string;
  readonly fix: string;
}

/** A switch's kernel requirement: "<what> needs kernel <min> or newer, and <boots><effect>". */
interface KernelNeed {
  readonly min: string;
  /** What needs the kernel, before "needs" (the value, when the key alone does not say it). */
  readonly what?: string;
  /** What the agent does on an older kernel, after the kernel named. */
  readonly effect?: string;
  /** The setting that needs no such kernel, after "Use image …, or". */
  readonly instead: string;
}

/** One key's request: every problem it adds names that key and value. */
interface Request {
  /** A problem: why the request cannot work, and what to set instead. */
  add(reason: string, fix: string): void;
  /** A kernel requirement: a problem when the kernel is known and older. */
  needsKernel(need: KernelNeed): void;
}

/** "image ubuntu-23.04 boots 6.2", or for another platform's kernel "the kernel is 5.4". */
function bootsText(config: FeatureConfig, kernel: string): string {
  return kernelOf(config) === kernel ? `image ${config.image} boots ${kernel}` : `the kernel is ${kernel}`;
}

/** A kernel requirement, when the kernel is known and older. */
function kernelTooOld(platform: Platform, min: string): string | null {
  return platform.kernel !== null && !kernelAtLeast(platform.kernel, min) ? platform.kernel : null;
}

/** Collects the problems of the config's requests on a platform. */
class Problems {
  readonly found: FeatureProblem[] = [];
  private readonly config: FeatureConfig;
  private readonly platform: Platform;

  constructor(config: FeatureConfig, platform: Platform) {
    this.config = config;
    this.platform = platform;
  }

  /** The request of `key` for `value`. */
  request(key: keyof FeatureConfig, value: string): Request {
    const add = (reason: string, fix: string): void => {
      this.found.push({ key, value, reason, fix });
    };
    const needsKernel = (need: KernelNeed): void => {
      const old = kernelTooOld(this.platform, need.min);
      if (old !== null) {
        add(
          `${need.what === undefined ? "" : `${need.what} `}needs kernel ${need.min} or newer, and ${bootsText(this.config, old)}${need.effect ?? ""}`,
          `Use image ${imagesWithKernel(need.min)}, or ${need.instead}`,
        );
      }
    };
    return { add, needsKernel };
  }
}

/** `bpfMasquerade: true` needs BPF NodePort, which the lab enables only with kube-proxy replacement. */
function bpfMasqueradeProblems(config: FeatureConfig, p: Problems): void {
  if (!config.bpfMasquerade) {
    return;
  }
  const r = p.request("bpfMasquerade", "true");
  if (!config.kubeProxyReplacement) {
    r.add(
      'needs kubeProxyReplacement true: eBPF masquerading depends on BPF NodePort, which only kube-proxy replacement turns on here; 1.13 and 1.14 agents fall back to iptables ("BPF masquerade requires NodePort"), newer ones refuse to start',
      "Set kubeProxyReplacement true, or bpfMasquerade false",
    );
  }
  r.needsKernel({ min: MIN_KERNEL.bpfMasquerade, instead: "bpfMasquerade false" });
}

/** `hostRouting: bpf` needs kube-proxy replacement, eBPF masquerading and kernel 5.10, or Cilium stays Legacy. */
function hostRoutingProblems(config: FeatureConfig, p: Problems): void {
  if (config.hostRouting !== "bpf") {
    return;
  }
  const r = p.request("hostRouting", "bpf");
  if (!config.kubeProxyReplacement) {
    r.add(
      'bpf needs kubeProxyReplacement true: without it Cilium silently stays on legacy host routing ("BPF host routing requires kube-proxy-replacement=strict.")',
      "Set kubeProxyReplacement true (and bpfMasquerade true), or hostRouting legacy",
    );
  }
  if (!config.bpfMasquerade) {
    r.add(
      'bpf needs bpfMasquerade true: with iptables masquerading Cilium silently stays on legacy host routing ("BPF host routing requires enable-bpf-masquerade.")',
      "Set bpfMasquerade true (it needs kubeProxyReplacement true), or hostRouting legacy",
    );
  }
  r.needsKernel({
    min: MIN_KERNEL.hostRouting,
    what: "bpf",
    effect: ': Cilium silently stays on legacy host routing ("BPF host routing requires kernel 5.10 or newer.")',
    instead: "hostRouting legacy",
  });
}

/** `bandwidthManager: on|bbr`: kernel 5.1; `bbr` also kernel 5.18 and BPF host routing, or the agent refuses to start. */
function bandwidthManagerProblems(config: FeatureConfig, platform: Platform, p: Problems): void {
  const mode = config.bandwidthManager;
  if (mode === "off") {
    return;
  }
  const r = p.request("bandwidthManager", mode);
  r.needsKernel({
    min: MIN_KERNEL.bandwidthManager,
    effect: ': the agent disables it ("BPF bandwidth manager needs kernel 5.1 or newer. Disabling the feature.")',
    instead: "bandwidthManager off",
  });
  if (mode !== "bbr") {
    return;
  }
  r.needsKernel({
    min: MIN_KERNEL.bbr,
    what: "bbr",
    effect: ': the agent refuses to start ("Cannot enable --enable-bbr, needs kernel 5.18 or newer.")',
    instead: "bandwidthManager on",
  });
  const refusal = `the agent refuses to start without it ("BPF bandwidth manager's BBR setup requires BPF host routing.")`;
  if (config.hostRouting !== "bpf") {
    r.add(
      `bbr needs hostRouting bpf: ${refusal}`,
      "Set hostRouting bpf (with kubeProxyReplacement and bpfMasquerade true), or bandwidthManager on",
    );
  } else if (bpfHostRoutingRuns(config, platform) === false) {
    r.add(
      `bbr needs BPF host routing, which falls back to legacy with this config (see hostRouting): ${refusal}`,
      "Fix the hostRouting problems, or set bandwidthManager on",
    );
  }
}

/** The needs of IPv4 BIG TCP that are about the Cilium version and the nodes. */
function ipv4BigTcpPlatformProblems(config: FeatureConfig, platform: Platform, p: Problems): void {
  const r = p.request("ipv4BigTcp", "true");
  if (ciliumMinor(config.ciliumVersion) < IPV4_BIG_TCP_FIRST_MINOR) {
    r.add(
      `Cilium ${config.ciliumVersion} has no IPv4 BIG TCP: it came with 1.14 (the 1.13 chart has only enableIPv6BIGTCP)`,
      "Set ciliumVersion 1.14.0 or later, or ipv4BigTcp false",
    );
  }
  r.needsKernel({
    min: MIN_KERNEL.ipv4BigTcp,
    effect: ': the agent disables it ("Cannot enable --enable-ipv4-big-tcp, needs kernel 6.3 or newer")',
    instead: "ipv4BigTcp false",
  });
  if (!nicSupportsBigTcp(platform.nicDriver)) {
    const lab = platform.nicDriver === LAB_NIC_DRIVER;
    r.add(
      `needs a NIC driver with BIG TCP support (the Cilium tuning guide lists ${BIG_TCP_NICS.slice(0, -1).join(", ")} and ${BIG_TCP_NICS[BIG_TCP_NICS.length - 1] ?? ""}), and ` +
        (lab ? `every lab VM's NIC is ${LAB_NIC_DRIVER} (libvirt model virtio)` : `the NIC is ${platform.nicDriver}`),
      lab
        ? "Set ipv4BigTcp false: no VM of this lab can have such a NIC, so this lab always refuses it; the key is kept for a lab on hosts whose VMs get one"
        : "Set ipv4BigTcp false",
    );
  }
}

/** The needs of IPv4 BIG TCP that are about the other switches (tuning guide, "IPv4 BIG TCP" requirements). */
function ipv4BigTcpDatapathProblems(config: FeatureConfig, p: Problems): void {
  const r = p.request("ipv4BigTcp", "true");
  if (config.routingMode !== "native") {
    r.add(
      `is not supported with routingMode ${config.routingMode}: the agent refuses to start ("BIG TCP is not supported in tunneling mode")`,
      "Set routingMode native, or ipv4BigTcp false",
    );
  }
  if (!config.kubeProxyReplacement) {
    r.add(
      "needs kubeProxyReplacement true (the Cilium tuning guide's IPv4 BIG TCP requirements)",
      "Set kubeProxyReplacement true, or ipv4BigTcp false",
    );
  }
  if (!config.bpfMasquerade) {
    r.add(
      "needs bpfMasquerade true (the Cilium tuning guide's IPv4 BIG TCP requirements)",
      "Set bpfMasquerade true, or ipv4BigTcp false",
    );
  }
  if (config.hostRouting !== "bpf") {
    r.add(
      'needs hostRouting bpf: the agent refuses to start with legacy host routing ("BIG TCP is not supported with legacy host routing")',
      "Set hostRouting bpf, or ipv4BigTcp false",
    );
  }
}

/**
 * Every impossible request of the config on a given platform, one problem per reason, in key order
 * (bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp). An unknown kernel (`null`) refuses
 * nothing: {@link featureWarnings} says the prediction cannot check it.
 */
export function featureProblemsOn(config: FeatureConfig, platform: Platform): readonly FeatureProblem[] {
  const p = new Problems(config, platform);
  bpfMasqueradeProblems(config, p);
  hostRoutingProblems(config, p);
  bandwidthManagerProblems(config, platform, p);
  if (config.ipv4BigTcp) {
    ipv4BigTcpPlatformProblems(config, platform, p);
    ipv4BigTcpDatapathProblems(config, p);
  }
  return p.found;
}

/** Every impossible request of the config on the lab's nodes (the image's kernel, virtio_net). */
export function featureProblems(config: FeatureConfig): readonly FeatureProblem[] {
  return featureProblemsOn(config, platformOf(config));
}

/** The switches whose prediction needs the kernel, when they are on. */
function kernelDependent(config: FeatureConfig): string[] {
  return [
    config.bpfMasquerade ? "bpfMasquerade true" : "",
    config.hostRouting === "bpf" ? "hostRouting bpf" : "",
    config.bandwidthManager === "off" ? "" : `bandwidthManager ${config.bandwidthManager}`,
    config.ipv4BigTcp ? "ipv4BigTcp true" : "",
  ].filter((s) => s !== "");
}

/**
 * Soft problems: with `image: custom` the kernel is unknown, so the kernel requirements of the
 * switches that are on cannot be checked before `up`; the verification reads the agent's status.
 */
export function featureWarnings(config: FeatureConfig): readonly string[] {
  const on = kernelDependent(config);
  if (platformOf(config).kernel !== null || on.length === 0) {
    return [];
  }
  return [
    `cilium-lab:image is custom, so its kernel is unknown: the config cannot check the kernel that ${on.join(", ")} ` +
      `need${on.length === 1 ? "s" : ""}; the verification checks what the agent runs and refuses the numbers if it falls back.`,
  ];
}
