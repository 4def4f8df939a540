/**
 * The config rules the key table cannot state: those between keys, and the two about one key that
 * go beyond a range or a pattern (the Cilium minor versions, the iperf3 digest warning). Each is a
 * named function over the {@link ConfigReader}; they run after every key's own rules, in
 * {@link CROSS_KEY_RULES} order, and read only values that passed those rules.
 */
import { FEATURE_CONFIG_KEYS, featureProblems, featureWarnings, type FeatureConfig } from "../cilium/features";
import { CILIUM_SUPPORTED_MINORS } from "../versions";
import {
  cidrContainsRange,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  formatCidr,
  parseCidr,
  podBlocks,
  type Cidr,
} from "./cidr";
import { acceptedText, KEYS, NODE_HOST_OFFSET, PROJECT, rangeText, type KeyName } from "./keys";
import { checkLibvirtUri, checkNetworkMode, checkNodeHosts } from "./network-rules";
import type { ConfigReader } from "./reader";

/** k3s' service CIDR, fixed by this project (k3s default); pod and node networks must avoid it. */
export const SERVICE_CIDR = "10.43.0.0/16";
const SERVICE = parseCidr(SERVICE_CIDR) as Cidr;

/** What imageUrl accepts; http:// too, because the image must match imageSha256 before it is used. */
const IMAGE_URL_EXPECTED =
  "An https://, http:// or file:// URL or an absolute host path of a qcow2 image (http is safe: the download must match imageSha256)";
const IMAGE_URL_RE = /^(https?:\/\/\S+|file:\/\/\/\S+|\/\S*)$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;

/** `autoDirectNodeRoutes: true` needs native routing; `false` with native routing leaves pods apart. */
export function checkAutoDirectNodeRoutes(r: ConfigReader): void {
  const mode = r.get("routingMode");
  const adnr = r.get("autoDirectNodeRoutes");
  if (adnr === "true" && mode !== undefined && mode !== "native") {
    r.fail(
      "autoDirectNodeRoutes",
      `cannot be true with routingMode ${mode}: Cilium's agent refuses to start ("auto-direct-node-routes cannot be used with tunneling")`,
      "true",
      "Use true only with routingMode native, or auto",
    );
  }
  if (adnr === "false" && mode === "native") {
    r.warn(
      `${PROJECT}:autoDirectNodeRoutes is false with routingMode native: nothing in this lab routes the other nodes' pod blocks ` +
        `(no BGP, no router), so pods on different nodes cannot reach each other.`,
    );
  }
}

/** The pod pool holds a block per node and stays clear of the service CIDR. */
export function checkPodAddressing(r: ConfigReader): void {
  const pod = r.get("podCidr");
  const mask = r.get("podCidrMaskSize");
  const nodeCount = r.get("nodeCount");
  const longest = KEYS.podCidrMaskSize.max;
  if (pod && mask !== undefined && mask <= pod.prefix) {
    r.fail(
      "podCidrMaskSize",
      `must be longer than podCidr's prefix /${pod.prefix}`,
      mask,
      `An integer from ${pod.prefix + 1} to ${longest}`,
    );
  } else if (pod && mask !== undefined && nodeCount !== undefined && 2 ** (mask - pod.prefix) < nodeCount) {
    r.fail(
      "podCidrMaskSize",
      `leaves room for only ${2 ** (mask - pod.prefix)} node blocks in ${formatCidr(pod)}, fewer than nodeCount ${nodeCount}`,
      mask,
      `A longer mask (at most ${longest}) or a larger podCidr`,
    );
  }
  if (pod && cidrsOverlap(pod, SERVICE)) {
    r.fail(
      "podCidr",
      `overlaps the k3s service CIDR ${SERVICE_CIDR}`,
      r.text("podCidr"),
      `A CIDR outside ${SERVICE_CIDR}, such as ${KEYS.podCidr.cidrExample}`,
    );
  }
}

/** A set `nativeRoutingCidr` matters only to native routing, and there must hold every node's pod block. */
export function checkNativeRoutingCidr(r: ConfigReader): void {
  const text = r.text("nativeRoutingCidr");
  const native = r.get("nativeRoutingCidr");
  const pod = r.get("podCidr");
  const mode = r.get("routingMode");
  if (!native || !pod || mode === undefined) {
    return;
  }
  if (mode !== "native") {
    r.warn(`${PROJECT}:nativeRoutingCidr is ${text} but routingMode is ${mode}: it is used only by native routing.`);
    return;
  }
  const mask = r.get("podCidrMaskSize");
  const nodeCount = r.get("nodeCount");
  if (mask === undefined || nodeCount === undefined || mask <= pod.prefix) {
    return;
  }
  const blocks = podBlocks(pod, mask, nodeCount);
  const last = blocks[blocks.length - 1];
  if (last && !cidrContainsRange(native, pod.base, cidrLast(last))) {
    r.fail(
      "nativeRoutingCidr",
      `does not contain the pod blocks of all ${nodeCount} nodes (${blocks.map(formatCidr).join(", ")}); traffic to the others would be masqueraded`,
      text,
      `A CIDR containing ${formatCidr(pod)}'s first ${nodeCount} /${mask} blocks, or empty for podCidr`,
    );
  } else if (!cidrContainsRange(native, pod.base, cidrLast(pod))) {
    r.warn(
      `${PROJECT}:nativeRoutingCidr ${text} covers the first ${nodeCount} node blocks but not the whole podCidr ${formatCidr(pod)}: ` +
        `a node added later, or a re-allocated block, would be masqueraded between nodes.`,
    );
  }
}

/** The libvirt network has a sane size, room for every node, and overlaps no pod or service CIDR. */
export function checkNodeNetwork(r: ConfigReader): void {
  const network = r.get("networkCidr");
  if (!network) {
    return;
  }
  const text = r.text("networkCidr");
  const spec = KEYS.networkCidr;
  const nodeCount = r.get("nodeCount");
  if (network.prefix < spec.min || network.prefix > spec.max) {
    const range = rangeText("networkCidr");
    r.fail("networkCidr", `must be a ${range}`, text, `An IPv4 CIDR from ${range}, such as ${spec.cidrExample}`);
  } else if (nodeCount !== undefined && NODE_HOST_OFFSET + nodeCount > cidrSize(network) - 2) {
    r.fail(
      "networkCidr",
      `has no room for ${nodeCount} nodes at host addresses ${NODE_HOST_OFFSET + 1}–${NODE_HOST_OFFSET + nodeCount}`,
      text,
      "A larger network (a shorter prefix)",
    );
  }
  const pod = r.get("podCidr");
  const native = r.get("nativeRoutingCidr");
  const clashes: [string, Cidr | undefined][] = [
    [`podCidr ${pod ? formatCidr(pod) : ""}`, pod],
    [`nativeRoutingCidr ${native ? formatCidr(native) : ""}`, native],
    [`the k3s service CIDR ${SERVICE_CIDR}`, SERVICE],
  ];
  for (const [what, other] of clashes) {
    if (other && cidrsOverlap(network, other)) {
      r.fail(
        "networkCidr",
        `overlaps ${what}`,
        text,
        `A node network disjoint from pod and service CIDRs, such as ${spec.cidrExample}`,
      );
    }
  }
}

/** `image: custom` needs a URL or path and a SHA-256; an Ubuntu image takes neither. */
export function checkImage(r: ConfigReader): void {
  const image = r.get("image");
  const url = r.text("imageUrl");
  const sha = r.text("imageSha256");
  if (image === "custom") {
    if (url === "") {
      r.fail("imageUrl", "is required with image custom", url, IMAGE_URL_EXPECTED);
    } else if (!IMAGE_URL_RE.test(url)) {
      r.fail("imageUrl", "is not an https://, http:// or file:// URL or an absolute path", url, IMAGE_URL_EXPECTED);
    }
    if (sha === "") {
      r.fail(
        "imageSha256",
        "is required with image custom",
        sha,
        "The image's SHA-256 as 64 hex digits (sha256sum <file>)",
      );
    } else if (!SHA256_RE.test(sha)) {
      r.fail("imageSha256", "is not a SHA-256", sha, "64 hex digits (sha256sum <file>)");
    }
  } else if (image !== undefined) {
    for (const key of ["imageUrl", "imageSha256"] as const) {
      if (r.text(key) !== "") {
        r.fail(key, `is only used with image custom, not ${image}`, r.text(key), `Remove it, or set image custom`);
      }
    }
  }
}

/** A Cilium release outside the minors whose Helm values this lab renders and tests is refused. */
export function checkCiliumVersion(r: ConfigReader): void {
  const version = r.get("ciliumVersion");
  const minor = Number(version?.split(".")[1]);
  if (minor < CILIUM_SUPPORTED_MINORS.first || minor > CILIUM_SUPPORTED_MINORS.last) {
    r.fail(
      "ciliumVersion",
      "is outside the versions whose Helm values this lab renders and tests",
      version,
      acceptedText("ciliumVersion"),
    );
  }
}

/** An iperf3 image by tag alone may change between runs. */
export function checkIperf3Image(r: ConfigReader): void {
  const image = r.get("iperf3Image");
  if (image && !image.includes("@sha256:")) {
    r.warn(`${PROJECT}:iperf3Image ${image} is not pinned by digest: two runs may measure different binaries.`);
  }
}

/** The keys the feature prediction reads, when each passed its own rules; `undefined` while any failed. */
function featureConfigOf(r: ConfigReader): FeatureConfig | undefined {
  const entries = FEATURE_CONFIG_KEYS.map((key) => [key, r.get(key)] as const);
  return entries.some(([, value]) => value === undefined) ? undefined : (Object.fromEntries(entries) as FeatureConfig);
}

/**
 * The series' switches (bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp) against the
 * Cilium version, the image's kernel, kube-proxy replacement and the lab's virtio NICs: every
 * impossible request is a problem with its reason (infra/cilium/feature-problems.ts), and a custom
 * image, whose kernel is unknown, a warning.
 */
export function checkFeatures(r: ConfigReader): void {
  const config = featureConfigOf(r);
  if (config === undefined) {
    return;
  }
  for (const problem of featureProblems(config)) {
    const key = problem.key as KeyName;
    r.fail(key, problem.reason, r.get(key) ?? problem.value, problem.fix);
  }
  for (const warning of featureWarnings(config)) {
    r.warn(warning);
  }
}

/** Every rule beyond the key table, in the order it runs (the order of warnings). */
export const CROSS_KEY_RULES: readonly ((r: ConfigReader) => void)[] = [
  checkAutoDirectNodeRoutes,
  checkPodAddressing,
  checkNativeRoutingCidr,
  checkNodeNetwork,
  checkNetworkMode,
  checkLibvirtUri,
  checkNodeHosts,
  checkImage,
  checkCiliumVersion,
  checkIperf3Image,
  checkFeatures,
];
