/**
 * Every stack config key of the `cilium-lab` namespace: its type, default and what it accepts.
 *
 * `Pulumi.yaml` declares the same keys with the same types and defaults (a test keeps the two equal):
 * the Pulumi CLI applies those defaults and rejects wrong types itself, while mocks and this parser
 * apply the defaults below, so both paths see the same values.
 */

/** The Pulumi project name; config keys are `cilium-lab:<key>`. */
export const PROJECT = "cilium-lab";

/** Pulumi's config value types as used in `Pulumi.yaml`. */
export type KeyType = "string" | "integer" | "boolean";

/** One declared key. */
export interface KeySpec {
  readonly type: KeyType;
  /** The default, as `Pulumi.yaml` declares it. */
  readonly default: string | number | boolean;
  /** One sentence for `Pulumi.yaml` and the README's configuration table. */
  readonly description: string;
}

/** The key table, in the order the README lists it. */
export const KEYS = {
  routingMode: {
    type: "string",
    default: "vxlan",
    description: "Cilium datapath: vxlan or geneve (tunnel) or native (native routing with auto direct node routes).",
  },
  autoDirectNodeRoutes: {
    type: "string",
    default: "auto",
    description:
      "auto (true when routingMode is native, else false), true (native only: Cilium refuses it with a tunnel) or false.",
  },
  podCidr: {
    type: "string",
    default: "10.0.0.0/16",
    description: "Cilium cluster-pool IPv4 pod CIDR; k3s --cluster-cidr follows it.",
  },
  podCidrMaskSize: {
    type: "integer",
    default: 24,
    description: "Prefix length of each node's pod block cut from podCidr (longer than podCidr's, at most 28).",
  },
  nativeRoutingCidr: {
    type: "string",
    default: "",
    description:
      "CIDR routed without masquerading in native mode; empty means podCidr. Must contain every node's pod block.",
  },
  networkCidr: {
    type: "string",
    default: "192.168.150.0/24",
    description: "The libvirt NAT network (/16 to /28); node N gets host address 10+N. One per stack.",
  },
  nodeCount: {
    type: "integer",
    default: 3,
    description: "Number of VMs: node-1 is the k3s server, the others are agents (2 to 9).",
  },
  nodeCpus: { type: "integer", default: 2, description: "vCPUs per VM (at least 1)." },
  nodeMemoryMiB: { type: "integer", default: 4096, description: "Memory per VM in MiB (at least 1024)." },
  nodeDiskGiB: { type: "integer", default: 20, description: "Disk per VM in GiB, a qcow2 overlay (at least 8)." },
  image: {
    type: "string",
    default: "ubuntu-23.04",
    description:
      "Base image: ubuntu-23.04 (the article's), ubuntu-24.04, ubuntu-26.04 or custom (imageUrl + imageSha256).",
  },
  imageUrl: {
    type: "string",
    default: "",
    description:
      "With image custom: https://, http:// or file:// URL or absolute host path of a qcow2 cloud image (checked against imageSha256).",
  },
  imageSha256: {
    type: "string",
    default: "",
    description: "With image custom: the image's SHA-256, 64 hex digits; the download is checked against it.",
  },
  accelerator: {
    type: "string",
    default: "kvm",
    description:
      "kvm, or qemu (TCG software emulation: slow, for hosts without KVM; throughput is not representative).",
  },
  libvirtUri: {
    type: "string",
    default: "qemu:///system",
    description:
      "libvirt connection URI; only qemu:///system (NAT networks with DHCP reservations need the system daemon).",
  },
  bootTimeoutSeconds: {
    type: "integer",
    default: 300,
    description:
      "How long each VM may take to get its DHCP lease, answer SSH and finish cloud-init (30 to 3600; TCG needs more).",
  },
  k3sVersion: {
    type: "string",
    default: "v1.26.6+k3s1",
    description: "k3s release installed on the nodes, vX.Y.Z+k3sN (the article's is v1.26.6+k3s1).",
  },
  k3sAirgapDir: {
    type: "string",
    default: "",
    description:
      "Empty: the nodes run k3s's install script from the internet. Else an absolute host directory with k3s, install.sh and image tarballs, copied to the nodes.",
  },
  ciliumVersion: {
    type: "string",
    default: "1.13.4",
    description: "Cilium Helm chart version, 1.13.0 to 1.20.x (the article's is 1.13.4).",
  },
  ciliumChart: {
    type: "string",
    default: "",
    description:
      "Empty: the chart from https://helm.cilium.io. Else a local chart .tgz or directory (air-gapped hosts).",
  },
  kubeProxyReplacement: {
    type: "boolean",
    default: false,
    description: "Let Cilium replace kube-proxy (k3s then runs with --disable-kube-proxy).",
  },
  hubble: { type: "boolean", default: true, description: "Enable Hubble relay and UI, as the article does." },
  iperf3Image: {
    type: "string",
    default: "",
    description:
      "Empty: the pinned iperf3 image. Else an image reference (by digest, for repeatable runs) for mirrors and air-gapped hosts.",
  },
  iperf3Seconds: { type: "integer", default: 10, description: "iperf3 -t: measured seconds per run (1 to 300)." },
  iperf3Runs: {
    type: "integer",
    default: 3,
    description: "Repetitions of each path (host and pod, interleaved) for median and spread (1 to 20).",
  },
  iperf3Streams: { type: "integer", default: 1, description: "iperf3 -P: parallel streams (1 to 16)." },
  iperf3OmitSeconds: {
    type: "integer",
    default: 1,
    description: "iperf3 -O: seconds of TCP slow start left out before measuring (0 to 10).",
  },
  sshAuthorizedKey: {
    type: "string",
    default: "",
    description: "Optional extra OpenSSH public key allowed to log in to the nodes as the lab user.",
  },
} as const satisfies Record<string, KeySpec>;

/** A declared key name. */
export type KeyName = keyof typeof KEYS;

/** All key names, in table order. */
export const KEY_NAMES = Object.keys(KEYS) as KeyName[];
