/**
 * The pure stack-config parser: raw `cilium-lab:*` strings in, one frozen {@link LabConfig} out, or
 * one error that lists every problem. No Pulumi, no I/O, so every rule is table-tested.
 */
import { IPERF3_IMAGE, NETPERF_IMAGE } from "../versions";
import { formatCidr } from "./cidr";
import { KEY_NAMES, PROJECT, type KeyName, type KEYS } from "./keys";
import { ConfigReader, readKeys, type RawConfig } from "./reader";
import { splitList } from "./network-rules";
import { CROSS_KEY_RULES } from "./rules";

/** Cilium's datapath between nodes, as the article compares them. */
export type RoutingMode = (typeof KEYS.routingMode.allowed)[number];
/** The base image choice: an Ubuntu image of infra/versions.ts, or `custom`. */
export type ImageName = (typeof KEYS.image.allowed)[number];
/** How the nodes are networked: a libvirt NAT network, or an existing host bridge with static addresses. */
export type NetworkMode = (typeof KEYS.networkMode.allowed)[number];
/** How the VMs are virtualised. */
export type Accelerator = (typeof KEYS.accelerator.allowed)[number];
/** Cilium's host routing: eBPF or through the host stack. */
export type HostRouting = (typeof KEYS.hostRouting.allowed)[number];
/** Cilium's bandwidth manager: off, on (EDT), or on with BBR for pods. */
export type BandwidthManager = (typeof KEYS.bandwidthManager.allowed)[number];

/**
 * The lab, as the stack config describes it. Derived values (`autoDirectNodeRoutes`,
 * `nativeRoutingCidr`, `iperf3Image`) are resolved; everything is validated and deep-frozen.
 */
export interface LabConfig {
  /** `vxlan`/`geneve` (tunnel) or `native` routing. Changing it updates only the Cilium release. */
  readonly routingMode: RoutingMode;
  /** Resolved from `auto`: true exactly when native. */
  readonly autoDirectNodeRoutes: boolean;
  /** Cilium cluster-pool CIDR (and k3s `--cluster-cidr`). */
  readonly podCidr: string;
  /** Per-node pod block prefix length. */
  readonly podCidrMaskSize: number;
  /** Resolved: `podCidr` when the key is empty. */
  readonly nativeRoutingCidr: string;
  /** The libvirt NAT network. Changing it replaces the network and every VM. */
  readonly networkCidr: string;
  /** VMs: node-1 is the server. */
  readonly nodeCount: number;
  readonly nodeCpus: number;
  readonly nodeMemoryMiB: number;
  readonly nodeDiskGiB: number;
  /** Base image; with `custom`, `imageUrl` and `imageSha256` are set, else both empty. */
  readonly image: ImageName;
  readonly imageUrl: string;
  /** Lower-case hex. */
  readonly imageSha256: string;
  readonly accelerator: Accelerator;
  /** `qemu:///system`, or a `qemu+ssh://` URI (bridge mode only). Ignored per node when `nodeHosts` is set. */
  readonly libvirtUri: string;
  /** `nat`: a libvirt NAT network per stack. `bridge`: the host bridge `bridge`, static addresses from `networkCidr`. */
  readonly networkMode: NetworkMode;
  /** Bridge mode: the existing host bridge; empty with nat. */
  readonly bridge: string;
  /** Bridge mode: the nodes' default gateway inside `networkCidr`; empty with nat. */
  readonly gateway: string;
  /** Bridge mode: the nodes' DNS servers; empty means the gateway (see `LabPlan.dns`). */
  readonly dns: readonly string[];
  /** Bridge mode: each node's libvirt URI, round-robin (`LabPlan.nodes[i].hostUri`); empty means libvirtUri for all. */
  readonly nodeHosts: readonly string[];
  /** Per-VM budget for lease + SSH + cloud-init finished, in seconds. */
  readonly bootTimeoutSeconds: number;
  readonly k3sVersion: string;
  /** Empty: online install. */
  readonly k3sAirgapDir: string;
  readonly ciliumVersion: string;
  /** Empty: the Cilium Helm repository. */
  readonly ciliumChart: string;
  readonly kubeProxyReplacement: boolean;
  readonly hubble: boolean;
  /** Helm `bpf.masquerade`: eBPF masquerading instead of iptables. */
  readonly bpfMasquerade: boolean;
  /** `bpf` asks for eBPF host routing; `legacy` sets Helm `bpf.hostLegacyRouting: true`. */
  readonly hostRouting: HostRouting;
  readonly bandwidthManager: BandwidthManager;
  /** Helm `enableIPv4BIGTCP` (1.14+). */
  readonly ipv4BigTcp: boolean;
  /** The libvirt network's MTU (and so the nodes' NICs'). Changing it replaces the network and every VM. */
  readonly networkMtu: number;
  /** Resolved: the pinned image of infra/versions.ts when the key is empty. */
  readonly iperf3Image: string;
  readonly iperf3Seconds: number;
  readonly iperf3Runs: number;
  readonly iperf3Streams: number;
  readonly iperf3OmitSeconds: number;
  /** Resolved: the pinned network-perf image of infra/versions.ts when the key is empty. */
  readonly netperfImage: string;
  /** netperf `-l`, seconds per latency run. */
  readonly netperfSeconds: number;
  /** Empty, or one OpenSSH public key line. */
  readonly sshAuthorizedKey: string;
}

/** The parser's result: the config and non-fatal warnings to show the user. */
export interface ParsedConfig {
  readonly config: LabConfig;
  readonly warnings: readonly string[];
}

/** Thrown once with every problem of a stack's config; `problems` holds one line each. */
export class LabConfigError extends Error {
  override name = "LabConfigError";
  constructor(readonly problems: readonly string[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? "" : "s"} in the ${PROJECT} stack config ` +
        `(fix with \`pulumi config set ${PROJECT}:<key> <value>\` or edit stacks/Pulumi.<stack>.yaml):\n` +
        problems.map((p) => `- ${p}`).join("\n"),
    );
  }
}

/** Levenshtein distance, for suggesting the nearest key name. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] ?? 0;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min(up + 1, (row[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return row[b.length] ?? 0;
}

/** The declared key closest to an unknown one. */
export function nearestKey(unknown: string): KeyName {
  let best: KeyName = KEY_NAMES[0] ?? "routingMode";
  let bestDistance = Infinity;
  for (const key of KEY_NAMES) {
    const d = distance(unknown, key);
    if (d < bestDistance) {
      best = key;
      bestDistance = d;
    }
  }
  return best;
}

function deepFreeze<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) {
    if (typeof v === "object" && v !== null) {
      deepFreeze(v as object);
    }
  }
  return Object.freeze(o);
}

/**
 * Parses the raw stack config (keys without the `cilium-lab:` prefix, values as the Pulumi SDK
 * delivers them: strings, or JSON text for numbers and booleans). Missing keys take the defaults
 * of {@link KEYS}; `autoDirectNodeRoutes`, `nativeRoutingCidr` and `iperf3Image` are resolved.
 * Runs every key's own rules, then every rule across keys, and throws one {@link LabConfigError}
 * listing every problem, in the key table's order.
 */
export function parseLabConfig(raw: RawConfig): ParsedConfig {
  const r = new ConfigReader(raw);
  r.refuseUnknownKeys(nearestKey);
  readKeys(r);
  for (const rule of CROSS_KEY_RULES) {
    rule(r);
  }
  const v = r.complete();
  if (v === undefined) {
    throw new LabConfigError(r.problems());
  }
  const config: LabConfig = {
    ...v,
    autoDirectNodeRoutes:
      v.autoDirectNodeRoutes === "auto" ? v.routingMode === "native" : v.autoDirectNodeRoutes === "true",
    podCidr: formatCidr(v.podCidr),
    nativeRoutingCidr: formatCidr(v.nativeRoutingCidr ?? v.podCidr),
    networkCidr: formatCidr(v.networkCidr),
    imageSha256: v.imageSha256.toLowerCase(),
    dns: splitList(v.dns),
    nodeHosts: splitList(v.nodeHosts),
    iperf3Image: v.iperf3Image === "" ? IPERF3_IMAGE : v.iperf3Image,
    netperfImage: v.netperfImage === "" ? NETPERF_IMAGE : v.netperfImage,
  };
  return deepFreeze({ config: deepFreeze(config), warnings: Object.freeze([...r.warnings]) });
}
