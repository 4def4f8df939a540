/**
 * Every stack config key of the `cilium-lab` namespace: its type, default and what it accepts.
 *
 * `Pulumi.yaml` declares the same keys with the same types, defaults and descriptions: its config
 * section and the README's configuration table are generated from this table
 * (`npx tsx scripts/dev/config-table.ts --write`), and tests keep all three equal. The Pulumi CLI
 * applies those defaults and rejects wrong types itself, while mocks and the parser apply the
 * defaults below, so both paths see the same values. The parser checks every rule about one key
 * (type, `min`/`max`, `allowed`, `pattern`) from this table, so the accepted ranges that the
 * descriptions state are the ones the parser enforces.
 */
import { CILIUM_HELM_REPO, CILIUM_SUPPORTED_MINORS, CILIUM_VERSION, K3S_VERSION, UBUNTU_IMAGES } from "../versions";

/** The Pulumi project name; config keys are `cilium-lab:<key>`. */
export const PROJECT = "cilium-lab";

/** The first host offset used for nodes: node N (1-based) gets `networkCidr` base + 10 + N. */
export const NODE_HOST_OFFSET = 10;

/** Pulumi's config value types as used in `Pulumi.yaml`. */
export type KeyType = "string" | "integer" | "boolean";

/** One declared key. */
export interface KeySpec {
  readonly type: KeyType;
  /** The default, as `Pulumi.yaml` declares it. An empty default means "not set": a pattern is not checked then. */
  readonly default: string | number | boolean;
  /**
   * One sentence for `Pulumi.yaml` and the README's configuration table. `{range}`, `{allowed}`,
   * `{max}` and `{default}` stand for text made from the fields below (see {@link describeKey}).
   */
  readonly meaning: string;
  /** Integer keys: the smallest accepted value. CIDR keys: the shortest accepted prefix. */
  readonly min?: number;
  /** Integer keys: the largest accepted value (none: no upper bound). CIDR keys: the longest prefix. */
  readonly max?: number;
  /** String keys: the only accepted values. */
  readonly allowed?: readonly string[];
  /** String keys: what a set value must match. */
  readonly pattern?: RegExp;
  /** With `pattern`: what a value that does not match is, e.g. "is not a k3s release". */
  readonly mismatch?: string;
  /** What the key accepts, for error messages (same placeholders); by default made from the fields. */
  readonly accepted?: string;
  /** The value is an IPv4 CIDR, such as this example (for error messages). */
  readonly cidrExample?: string;
  /** Surrounding whitespace is dropped before the check (a pasted key line often ends in a newline). */
  readonly trim?: boolean;
}

/** The Cilium chart versions whose Helm values this project renders and tests, as text. */
const CILIUM_RANGE = `1.${CILIUM_SUPPORTED_MINORS.first}.0 to 1.${CILIUM_SUPPORTED_MINORS.last}.x`;

/** An `image` value other than `custom`. */
const UBUNTU_IMAGE_NAMES = Object.keys(UBUNTU_IMAGES) as (keyof typeof UBUNTU_IMAGES)[];

/** The key table, in the order the README lists it. */
export const KEYS = {
  routingMode: {
    type: "string",
    default: "vxlan",
    allowed: ["vxlan", "geneve", "native"],
    meaning:
      "Cilium datapath: {allowed}; vxlan and geneve are tunnels, native is native routing with auto direct node routes.",
  },
  autoDirectNodeRoutes: {
    type: "string",
    default: "auto",
    allowed: ["auto", "true", "false"],
    meaning:
      "{allowed}: auto is true when routingMode is native, else false; true is for native only (Cilium refuses it with a tunnel).",
  },
  podCidr: {
    type: "string",
    default: "10.0.0.0/16",
    cidrExample: "10.0.0.0/16",
    meaning: "Cilium cluster-pool IPv4 pod CIDR; k3s --cluster-cidr follows it.",
  },
  podCidrMaskSize: {
    type: "integer",
    default: 24,
    min: 1,
    max: 28,
    accepted: "An integer longer than podCidr's prefix, at most {max}",
    meaning: "Prefix length of each node's pod block cut from podCidr (longer than podCidr's, at most {max}).",
  },
  nativeRoutingCidr: {
    type: "string",
    default: "",
    cidrExample: "10.0.0.0/22",
    meaning:
      "CIDR routed without masquerading in native mode; empty means podCidr. Must contain every node's pod block.",
  },
  networkCidr: {
    type: "string",
    default: "192.168.150.0/24",
    cidrExample: "192.168.150.0/24",
    min: 16,
    max: 28,
    meaning: `The nodes' network ({range}): the libvirt NAT network, or in bridge mode the LAN's subnet; node N gets host address ${NODE_HOST_OFFSET}+N. One per stack.`,
  },
  nodeCount: {
    type: "integer",
    default: 3,
    min: 2,
    max: 9,
    meaning: "Number of VMs: node-1 is the k3s server, the others are agents ({range}).",
  },
  nodeCpus: { type: "integer", default: 2, min: 1, meaning: "vCPUs per VM ({range})." },
  nodeMemoryMiB: { type: "integer", default: 4096, min: 1024, meaning: "Memory per VM in MiB ({range})." },
  nodeDiskGiB: { type: "integer", default: 20, min: 8, meaning: "Disk per VM in GiB, a qcow2 overlay ({range})." },
  image: {
    type: "string",
    default: "ubuntu-23.04",
    allowed: [...UBUNTU_IMAGE_NAMES, "custom"],
    meaning: "Base image: {allowed} (custom: imageUrl + imageSha256; the article's is {default}).",
  },
  imageUrl: {
    type: "string",
    default: "",
    meaning:
      "With image custom: https://, http:// or file:// URL or absolute host path of a qcow2 cloud image (checked against imageSha256).",
  },
  imageSha256: {
    type: "string",
    default: "",
    meaning: "With image custom: the image's SHA-256, 64 hex digits; the download is checked against it.",
  },
  accelerator: {
    type: "string",
    default: "kvm",
    allowed: ["kvm", "qemu"],
    meaning:
      "{allowed}: qemu is TCG software emulation (slow, for hosts without KVM; throughput is not representative).",
  },
  libvirtUri: {
    type: "string",
    default: "qemu:///system",
    accepted:
      "qemu:///system, or qemu+ssh://[user@]host[:port]/system[?keyfile=/abs/path] with networkMode bridge (qemu:///session is refused)",
    meaning:
      "libvirt connection URI: {default}, or qemu+ssh://[user@]host[:port]/system (host keys verified; ssh-agent or ?keyfile=) with networkMode bridge. qemu:///session is refused.",
  },
  networkMode: {
    type: "string",
    default: "nat",
    allowed: ["nat", "bridge"],
    meaning:
      "{allowed}: nat puts the nodes on a libvirt NAT network; bridge attaches them to an existing host bridge (bridge) with static addresses from networkCidr, reachable from the LAN.",
  },
  bridge: {
    type: "string",
    default: "",
    // A Linux interface name: at most 15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace
    // (torvalds/linux net/core/dev.c `dev_valid_name`).
    pattern: /^[A-Za-z0-9_.-]{1,15}$/,
    mismatch: "is not a Linux interface name",
    accepted: "An existing host bridge such as br0 (at most 15 characters)",
    meaning: "With networkMode bridge: the existing, up host bridge the nodes attach to, such as br0.",
  },
  gateway: {
    type: "string",
    default: "",
    accepted: "An IPv4 address inside networkCidr that is no node's address, such as 192.168.150.1",
    meaning: "With networkMode bridge: the nodes' default gateway, an IPv4 address inside networkCidr.",
  },
  dns: {
    type: "string",
    default: "",
    accepted: "Empty (the gateway) or comma-separated IPv4 addresses such as 192.168.150.1,9.9.9.9",
    meaning: "With networkMode bridge: comma-separated IPv4 DNS servers of the nodes; empty means the gateway.",
  },
  nodeHosts: {
    type: "string",
    default: "",
    accepted:
      "Empty, or comma-separated libvirt URIs (one per node, or repeated round-robin) that put node-2 and the last node on different hosts",
    meaning:
      "With networkMode bridge: comma-separated libvirt URIs, one per node or repeated round-robin (node-2 and the last node, the measured pair, on different hosts); replaces libvirtUri.",
  },
  bootTimeoutSeconds: {
    type: "integer",
    default: 300,
    min: 30,
    max: 3600,
    meaning:
      "How long each VM may take to get its DHCP lease, answer SSH and finish cloud-init ({range}; TCG needs more).",
  },
  k3sVersion: {
    type: "string",
    default: K3S_VERSION,
    pattern: /^v\d+\.\d+\.\d+\+k3s\d+$/,
    mismatch: "is not a k3s release",
    accepted: "A k3s release such as {default} (vX.Y.Z+k3sN)",
    meaning: "k3s release installed on the nodes, vX.Y.Z+k3sN (the article's is {default}).",
  },
  k3sAirgapDir: {
    type: "string",
    default: "",
    pattern: /^\//,
    mismatch: "must be an absolute host path",
    accepted: "Empty (online install) or an absolute directory such as /srv/k3s-airgap",
    meaning:
      "Empty: the nodes run k3s's install script from the internet. Else an absolute host directory with k3s, install.sh and image tarballs, copied to the nodes.",
  },
  ciliumVersion: {
    type: "string",
    default: CILIUM_VERSION,
    // 1.MINOR.PATCH without leading zeros or a `v`: the chart's own version strings.
    pattern: /^1\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/,
    mismatch: "is not a Cilium release version",
    accepted: `A Cilium chart version from ${CILIUM_RANGE}, such as {default} or 1.${CILIUM_SUPPORTED_MINORS.last}.0`,
    meaning: `Cilium Helm chart version, ${CILIUM_RANGE} (the article's is {default}).`,
  },
  ciliumChart: {
    type: "string",
    default: "",
    pattern: /^\.?\//,
    mismatch: "must be a local path",
    accepted: "Empty (Cilium's Helm repository) or an absolute or ./relative path to a chart .tgz or directory",
    meaning: `Empty: the chart from ${CILIUM_HELM_REPO}. Else a local chart .tgz or directory (air-gapped hosts).`,
  },
  kubeProxyReplacement: {
    type: "boolean",
    default: false,
    meaning: "Let Cilium replace kube-proxy (k3s then runs with --disable-kube-proxy).",
  },
  hubble: { type: "boolean", default: true, meaning: "Enable Hubble relay and UI, as the article does." },
  bpfMasquerade: {
    type: "boolean",
    default: false,
    meaning:
      "Masquerade pod traffic leaving the pod network with eBPF instead of iptables (Helm bpf.masquerade; needs kubeProxyReplacement true); the article starts with iptables.",
  },
  hostRouting: {
    type: "string",
    default: "legacy",
    allowed: ["legacy", "bpf"],
    meaning:
      "{allowed}: bpf is eBPF host routing (needs kubeProxyReplacement and bpfMasquerade true, kernel 5.10+); legacy routes through the host stack, as the article starts.",
  },
  bandwidthManager: {
    type: "string",
    default: "off",
    allowed: ["off", "on", "bbr"],
    meaning:
      "Cilium's bandwidth manager: {allowed} (on: EDT pacing with fq, kernel 5.1+; bbr: also BBR congestion control for pods, kernel 5.18+ and hostRouting bpf).",
  },
  ipv4BigTcp: {
    type: "boolean",
    default: false,
    meaning:
      "IPv4 BIG TCP: Cilium 1.14+, kernel 6.3+, native routing, kubeProxyReplacement, bpfMasquerade, hostRouting bpf and an mlx4, mlx5 or ice NIC (so refused on this lab's virtio NICs).",
  },
  networkMtu: {
    type: "integer",
    default: 1500,
    min: 1500,
    max: 9000,
    meaning:
      "MTU of the libvirt network and the nodes' NICs ({range}; bridge mode: 1500, the bridge's MTU is the host's); Cilium detects it (the lab sets no Helm MTU). Changing it replaces the network and every VM.",
  },
  iperf3Image: {
    type: "string",
    default: "",
    // A container image reference: registry/path[:tag][@sha256:<64 hex>], no spaces.
    pattern:
      /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/,
    mismatch: "is not a container image reference",
    accepted: "Empty (the pinned image) or a reference such as registry.example/iperf3@sha256:<64 hex>",
    meaning:
      "Empty: the pinned iperf3 image. Else an image reference (by digest, for repeatable runs) for mirrors and air-gapped hosts.",
  },
  iperf3Seconds: {
    type: "integer",
    default: 10,
    min: 1,
    max: 300,
    meaning: "iperf3 -t: measured seconds per run ({range}).",
  },
  iperf3Runs: {
    type: "integer",
    default: 3,
    min: 1,
    max: 20,
    meaning: "Repetitions of each path (host and pod, interleaved) for median and spread ({range}).",
  },
  iperf3Streams: { type: "integer", default: 1, min: 1, max: 16, meaning: "iperf3 -P: parallel streams ({range})." },
  iperf3OmitSeconds: {
    type: "integer",
    default: 1,
    min: 0,
    max: 10,
    meaning: "iperf3 -O: seconds of TCP slow start left out before measuring ({range}).",
  },
  netperfImage: {
    type: "string",
    default: "",
    // A container image reference: registry/path[:tag][@sha256:<64 hex>], no spaces.
    pattern:
      /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/,
    mismatch: "is not a container image reference",
    accepted: "Empty (the pinned network-perf image) or a reference such as registry.example/netperf@sha256:<64 hex>",
    meaning:
      "Empty: the pinned network-perf image, which carries netperf. Else an image with netperf and netserver on its PATH, for the latency runs.",
  },
  netperfSeconds: {
    type: "integer",
    default: 10,
    min: 1,
    max: 300,
    meaning:
      "netperf -l: seconds per latency run (TCP_RR and TCP_CRR, interleaved with iperf3, same repetitions; {range}).",
  },
  sshAuthorizedKey: {
    type: "string",
    default: "",
    trim: true,
    pattern:
      /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/,
    mismatch: "is not one OpenSSH public key line",
    accepted: "Empty, or the contents of ~/.ssh/id_ed25519.pub (type, base64 key, optional comment)",
    meaning: "Optional extra OpenSSH public key allowed to log in to the nodes as the lab user.",
  },
} as const satisfies Record<string, KeySpec>;

/** A declared key name. */
export type KeyName = keyof typeof KEYS;

/** All key names, in table order. */
export const KEY_NAMES = Object.keys(KEYS) as KeyName[];

/** A key's spec, typed as the common shape. */
export function specOf(key: KeyName): KeySpec {
  return KEYS[key];
}

/** `min`/`max` as prose: `2 to 9`, `at least 1`, or prefixes `/16 to /28` for a CIDR key. */
export function rangeText(key: KeyName): string {
  const spec = specOf(key);
  const unit = spec.cidrExample === undefined ? "" : "/";
  if (spec.min === undefined) {
    throw new Error(`${key} declares no range`);
  }
  return spec.max === undefined ? `at least ${unit}${spec.min}` : `${unit}${spec.min} to ${unit}${spec.max}`;
}

/** Fills a text's `{range}`, `{allowed}`, `{max}` and `{default}` from the key's spec. */
function fill(key: KeyName, text: string): string {
  const spec = specOf(key);
  return text.replace(/\{(\w+)\}/g, (placeholder, name: string) => {
    if (name === "range") {
      return rangeText(key);
    }
    if (name === "allowed" && spec.allowed !== undefined) {
      const all = spec.allowed;
      return all.length === 1 ? (all[0] ?? "") : `${all.slice(0, -1).join(", ")} or ${all[all.length - 1]}`;
    }
    if (name === "max" && spec.max !== undefined) {
      return String(spec.max);
    }
    if (name === "default") {
      return String(spec.default);
    }
    throw new Error(`${key}: ${placeholder} has nothing to stand for`);
  });
}

/** The key's description, as `Pulumi.yaml` and the README state it. */
export function describeKey(key: KeyName): string {
  return fill(key, specOf(key).meaning);
}

/** What the key accepts, as error messages end: `An integer from 2 to 9`, `Accepted: kvm, qemu`. */
export function acceptedText(key: KeyName): string {
  const spec = specOf(key);
  if (spec.accepted !== undefined) {
    return fill(key, spec.accepted);
  }
  if (spec.type === "boolean") {
    return "Accepted: true, false";
  }
  if (spec.allowed !== undefined) {
    return `Accepted: ${spec.allowed.join(", ")}`;
  }
  if (spec.cidrExample !== undefined) {
    return `An IPv4 CIDR such as ${spec.cidrExample}`;
  }
  return spec.max === undefined ? `An integer of ${rangeText(key)}` : `An integer from ${rangeText(key)}`;
}
