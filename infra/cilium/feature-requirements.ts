/**
 * The requirement matrix of the series' datapath switches: what each needs from the Cilium version,
 * the kernel, kube-proxy replacement, BPF masquerading and the NIC driver, each with its public
 * source. Pure: no Pulumi, no I/O. features.ts predicts from it what the agent runs, and
 * feature-problems.ts refuses from it the requests that cannot work.
 */
import { UBUNTU_IMAGES, type UbuntuImageName } from "../versions";
import type { FeatureConfig } from "./features";

/**
 * The NIC driver of every lab VM: the domain XML gives each VM one `<interface type="network">`
 * with `<model type="virtio"/>` (infra/libvirt/xml/render.ts), which the guest kernel drives with
 * virtio_net.
 */
export const LAB_NIC_DRIVER = "virtio_net";

/**
 * The NICs BIG TCP is documented for: "Supported NICs: mlx4, mlx5, ice" (Cilium tuning guide,
 * sections "IPv6 BIG TCP" and "IPv4 BIG TCP", https://docs.cilium.io/en/v1.14/operations/performance/tuning/
 * and later; cilium/cilium Documentation/operations/performance/tuning.rst). Matched as a driver
 * name or its prefix (`mlx5_core`, `mlx4_en`).
 */
export const BIG_TCP_NICS: readonly string[] = ["mlx4", "mlx5", "ice"];

/**
 * The oldest kernel each feature works on, as `major.minor`:
 * - bpfMasquerade 4.19: "The eBPF-based implementation ... requires Linux kernel 4.19"
 *   (https://docs.cilium.io/en/v1.13/network/concepts/masquerading/).
 * - bandwidthManager 5.1: the agent disables it below ("BPF bandwidth manager needs kernel 5.1 or
 *   newer. Disabling the feature.", cilium/cilium v1.13 pkg/bandwidth/bandwidth.go, ProbeBandwidthManager).
 * - hostRouting 5.10: "Kernel >= 5.10" (tuning guide, "eBPF Host-Routing"); below it the agent
 *   falls back ("BPF host routing requires kernel 5.10 or newer.", cilium/cilium v1.13
 *   daemon/cmd/kube_proxy_replacement.go, finishKubeProxyReplacementInit).
 * - bbr 5.18: "In order for BBR to work reliably for Pods, it requires a 5.18 or higher kernel"
 *   (tuning guide, "BBR congestion control for Pods"); the agent refuses to start below it
 *   ("Cannot enable --enable-bbr, needs kernel 5.18 or newer.", log.Fatalf in v1.13
 *   pkg/bandwidth/bandwidth.go; an error from pkg/datapath/linux/bandwidth/bandwidth.go later).
 * - ipv6BigTcp 5.19, ipv4BigTcp 6.3: "Kernel >= 5.19" / "Kernel >= 6.3" (tuning guide, "IPv6 BIG
 *   TCP" / "IPv4 BIG TCP"); below them the agent disables the feature ("Cannot enable
 *   --enable-ipv4-big-tcp, needs kernel 6.3 or newer", pkg/datapath/linux/bigtcp/bigtcp.go).
 */
export const MIN_KERNEL = {
  bpfMasquerade: "4.19",
  bandwidthManager: "5.1",
  hostRouting: "5.10",
  bbr: "5.18",
  ipv6BigTcp: "5.19",
  ipv4BigTcp: "6.3",
} as const;

/**
 * The first Cilium minor with IPv4 BIG TCP: the 1.14 chart adds `enableIPv4BIGTCP` (cilium/cilium
 * PR 26172 "cilium: IPv4 BIG TCP support"); the 1.13.4 chart has only `enableIPv6BIGTCP`, and its
 * agent prints no `IPv4 BIG TCP:` status line.
 */
export const IPV4_BIG_TCP_FIRST_MINOR = 14;

/** The last minor whose agent falls back to iptables masquerading instead of refusing to start (see bpfMasqueradeRuns). */
export const LAST_MINOR_WITH_MASQUERADE_FALLBACK = 14;

/** What the config cannot say about the nodes: the kernel (`null`: unknown) and the NIC driver. */
export interface Platform {
  readonly kernel: string | null;
  readonly nicDriver: string;
}

/** The kernel the config's image boots (infra/versions.ts), `null` for `image: custom`. */
export function kernelOf(config: Pick<FeatureConfig, "image">): string | null {
  return config.image === "custom" ? null : UBUNTU_IMAGES[config.image].kernel;
}

/** The platform the lab gives a config: the image's kernel and virtio_net. */
export function platformOf(config: Pick<FeatureConfig, "image">): Platform {
  return { kernel: kernelOf(config), nicDriver: LAB_NIC_DRIVER };
}

/** `major.minor[.patch…]` as numbers; throws on anything else (every kernel here is written by us). */
function kernelParts(kernel: string): [number, number] {
  const m = /^(\d+)\.(\d+)(\.\d+)*$/.exec(kernel);
  if (!m) {
    throw new Error(`not a kernel version: ${JSON.stringify(kernel)} (expected major.minor, e.g. 6.8)`);
  }
  return [Number(m[1]), Number(m[2])];
}

/** `kernel` is `min` or newer, compared as major.minor (6.2 < 6.3 < 6.10). */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const [a, b] = kernelParts(kernel);
  const [c, d] = kernelParts(min);
  return a > c || (a === c && b >= d);
}

/** Whether the NIC driver is one BIG TCP is documented for ({@link BIG_TCP_NICS}). */
export function nicSupportsBigTcp(driver: string): boolean {
  return BIG_TCP_NICS.some((nic) => driver === nic || driver.startsWith(`${nic}_`));
}

/** The Cilium minor version: 13 for `1.13.4`. */
export function ciliumMinor(version: string): number {
  return Number(version.split(".")[1]);
}

/** The Ubuntu images whose kernel is `min` or newer, as prose: "ubuntu-24.04 (6.8) or ubuntu-26.04 (7.0)". */
export function imagesWithKernel(min: string): string {
  const names = (Object.keys(UBUNTU_IMAGES) as UbuntuImageName[])
    .filter((name) => kernelAtLeast(UBUNTU_IMAGES[name].kernel, min))
    .map((name) => `${name} (${UBUNTU_IMAGES[name].kernel})`);
  return names.length <= 1 ? (names[0] ?? "none") : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

/**
 * Whether eBPF masquerading runs. It "depends on the BPF NodePort feature"
 * (https://docs.cilium.io/en/v1.13/network/concepts/masquerading/, still so in stable), which the
 * lab's values enable only with kube-proxy replacement. Without it 1.13 and 1.14 agents fall back
 * to iptables ("BPF masquerade requires NodePort (--enable-node-port=\"true\")" ... "Falling back
 * to iptables-based masquerading.", cilium/cilium v1.13 daemon/cmd/daemon.go, newDaemon); since
 * cilium/cilium PR 29778 ("daemon: Fail init if requirements for BPF masquerade are not met",
 * merged 2023-12, after 1.14) the agent refuses to start ("unable to initialize BPF masquerade
 * support"): `null` there, since the lab never deploys that config.
 */
export function bpfMasqueradeRuns(config: FeatureConfig): boolean | null {
  if (!config.bpfMasquerade) {
    return false;
  }
  if (config.kubeProxyReplacement) {
    return true;
  }
  return ciliumMinor(config.ciliumVersion) <= LAST_MINOR_WITH_MASQUERADE_FALLBACK ? false : null;
}

/**
 * Whether BPF host routing runs. Requested with `hostRouting: bpf` (Helm
 * `bpf.hostLegacyRouting: false`); it needs kube-proxy replacement, eBPF masquerading and kernel
 * 5.10 ("Requirements: Kernel >= 5.10, Direct-routing configuration or tunneling, eBPF-based
 * kube-proxy replacement, eBPF-based masquerading", tuning guide "eBPF Host-Routing",
 * https://docs.cilium.io/en/v1.13/operations/performance/tuning/). Without one the agent falls
 * back silently ("BPF host routing requires enable-bpf-masquerade." / "requires
 * kube-proxy-replacement=strict." / "requires kernel 5.10 or newer." + "Falling back to legacy host
 * routing", cilium/cilium v1.13 daemon/cmd/kube_proxy_replacement.go). `null`: unknowable (kernel).
 */
export function bpfHostRoutingRuns(config: FeatureConfig, platform: Platform): boolean | null {
  if (config.hostRouting !== "bpf") {
    return false;
  }
  if (!config.kubeProxyReplacement || !config.bpfMasquerade) {
    return false;
  }
  return platform.kernel === null ? null : kernelAtLeast(platform.kernel, MIN_KERNEL.hostRouting);
}
