/**
 * The pure stack-config parser: raw `cilium-lab:*` strings in, one frozen {@link LabConfig} out, or
 * one error that lists every problem. No Pulumi, no I/O, so every rule is table-tested.
 */
import { CILIUM_SUPPORTED_MINORS, UBUNTU_IMAGES, type UbuntuImageName } from "../versions";
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
import { KEY_NAMES, KEYS, PROJECT, type KeyName } from "./keys";

/** Cilium's datapath between nodes, as the article compares them. */
export type RoutingMode = "vxlan" | "geneve" | "native";
/** The base image choice. */
export type ImageName = UbuntuImageName | "custom";
/** How the VMs are virtualised. */
export type Accelerator = "kvm" | "qemu";

/** k3s' service CIDR, fixed by this project (k3s default); pod and node networks must avoid it. */
export const SERVICE_CIDR = "10.43.0.0/16";

/** The first host offset used for nodes: node N (1-based) gets `networkCidr` base + 10 + N. */
export const NODE_HOST_OFFSET = 10;

/**
 * The lab, as the stack config describes it. Derived values (`autoDirectNodeRoutes`,
 * `nativeRoutingCidr`) are resolved; everything is validated and deep-frozen.
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
  readonly libvirtUri: string;
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
  /** Empty: the pinned image. */
  readonly iperf3Image: string;
  readonly iperf3Seconds: number;
  readonly iperf3Runs: number;
  readonly iperf3Streams: number;
  readonly iperf3OmitSeconds: number;
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

/** How a value appears in messages: strings quoted, so an empty or padded value is visible. */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** One problem line: `cilium-lab:<key>: <problem> (got <value>). <accepted>.` */
function problem(key: KeyName, what: string, value: unknown, accepted: string): string {
  return `${PROJECT}:${key}: ${what} (got ${show(value)}). ${accepted}.`;
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

const K3S_VERSION_RE = /^v\d+\.\d+\.\d+\+k3s\d+$/;
const CILIUM_VERSION_RE = /^1\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;
/** What imageUrl accepts; http:// too, because the image must match imageSha256 before it is used. */
const IMAGE_URL_EXPECTED =
  "An https://, http:// or file:// URL or an absolute host path of a qcow2 image (http is safe: the download must match imageSha256)";
const SSH_KEY_RE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
// A container image reference: registry/path[:tag][@sha256:<64 hex>], no spaces.
const IMAGE_REF_RE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

/**
 * Parses the raw stack config (keys without the `cilium-lab:` prefix, values as the Pulumi SDK
 * delivers them: strings, or JSON text for numbers and booleans). Missing keys take the defaults
 * of {@link KEYS}. Throws one {@link LabConfigError} listing every problem.
 */
export function parseLabConfig(raw: Readonly<Record<string, string | undefined>>): ParsedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];

  for (const key of Object.keys(raw)) {
    if (!(key in KEYS)) {
      problems.push(
        `${PROJECT}:${key}: unknown key (got ${show(raw[key])}). Did you mean \`${PROJECT}:${nearestKey(key)}\`? ` +
          `Remove it with \`pulumi config rm ${PROJECT}:${key}\`.`,
      );
    }
  }

  const text = (key: KeyName): string => {
    const v = raw[key];
    return v === undefined ? String(KEYS[key].default) : v;
  };
  // Integers outside [min, max] (or not integers) are reported with the range; `NaN` marks a value
  // that failed, so dependent cross-key rules can stand down instead of piling on.
  const integer = (key: KeyName, min: number, max: number, accepted?: string): number => {
    const v = text(key).trim();
    const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
    const range = accepted ?? (max === Infinity ? `An integer of at least ${min}` : `An integer from ${min} to ${max}`);
    if (Number.isNaN(n)) {
      problems.push(problem(key, "must be an integer", raw[key], range));
      return NaN;
    }
    if (n < min || n > max) {
      problems.push(problem(key, "is out of range", n, range));
      return NaN;
    }
    return n;
  };
  const boolean = (key: KeyName): boolean => {
    const v = text(key).trim();
    if (v !== "true" && v !== "false") {
      problems.push(problem(key, "must be a boolean", raw[key], "Accepted: true, false"));
      return false;
    }
    return v === "true";
  };
  const oneOf = <T extends string>(key: KeyName, allowed: readonly T[], why = ""): T | undefined => {
    const v = text(key);
    if ((allowed as readonly string[]).includes(v)) {
      return v as T;
    }
    problems.push(problem(key, "is not supported", v, `Accepted: ${allowed.join(", ")}${why}`));
    return undefined;
  };
  const cidr = (key: KeyName, example: string): Cidr | undefined => {
    const v = text(key);
    const c = parseCidr(v);
    if (typeof c === "string") {
      problems.push(problem(key, c, v, `An IPv4 CIDR such as ${example}`));
      return undefined;
    }
    return c;
  };

  // Cilium datapath.
  const routingMode = oneOf<RoutingMode>("routingMode", ["vxlan", "geneve", "native"]);
  const adnrText = oneOf("autoDirectNodeRoutes", ["auto", "true", "false"]);
  const autoDirectNodeRoutes = adnrText === "auto" ? routingMode === "native" : adnrText === "true";
  if (adnrText === "true" && routingMode !== undefined && routingMode !== "native") {
    problems.push(
      problem(
        "autoDirectNodeRoutes",
        `cannot be true with routingMode ${routingMode}: Cilium's agent refuses to start ("auto-direct-node-routes cannot be used with tunneling")`,
        "true",
        "Use true only with routingMode native, or auto",
      ),
    );
  }

  if (adnrText === "false" && routingMode === "native") {
    warnings.push(
      `${PROJECT}:autoDirectNodeRoutes is false with routingMode native: nothing in this lab routes the other nodes' pod blocks ` +
        `(no BGP, no router), so pods on different nodes cannot reach each other.`,
    );
  }

  // Kubernetes nodes and pod addressing.
  const nodeCount = integer("nodeCount", 2, 9);
  const podCidr = cidr("podCidr", "10.0.0.0/16");
  const maskSize = integer("podCidrMaskSize", 1, 28, "An integer longer than podCidr's prefix, at most 28");
  if (podCidr && !Number.isNaN(maskSize) && maskSize <= podCidr.prefix) {
    problems.push(
      problem(
        "podCidrMaskSize",
        `must be longer than podCidr's prefix /${podCidr.prefix}`,
        maskSize,
        `An integer from ${podCidr.prefix + 1} to 28`,
      ),
    );
  } else if (
    podCidr &&
    !Number.isNaN(maskSize) &&
    !Number.isNaN(nodeCount) &&
    2 ** (maskSize - podCidr.prefix) < nodeCount
  ) {
    problems.push(
      problem(
        "podCidrMaskSize",
        `leaves room for only ${2 ** (maskSize - podCidr.prefix)} node blocks in ${formatCidr(podCidr)}, fewer than nodeCount ${nodeCount}`,
        maskSize,
        `A longer mask (at most 28) or a larger podCidr`,
      ),
    );
  }
  const service = parseCidr(SERVICE_CIDR) as Cidr;
  if (podCidr && cidrsOverlap(podCidr, service)) {
    problems.push(
      problem(
        "podCidr",
        `overlaps the k3s service CIDR ${SERVICE_CIDR}`,
        text("podCidr"),
        "A CIDR outside 10.43.0.0/16, such as 10.0.0.0/16",
      ),
    );
  }

  const nativeText = text("nativeRoutingCidr");
  let native: Cidr | undefined = podCidr;
  if (nativeText !== "") {
    native = cidr("nativeRoutingCidr", "10.0.0.0/22");
  }
  if (native && podCidr && nativeText !== "" && routingMode !== undefined) {
    if (routingMode !== "native") {
      warnings.push(
        `${PROJECT}:nativeRoutingCidr is ${nativeText} but routingMode is ${routingMode}: it is used only by native routing.`,
      );
    } else if (!Number.isNaN(maskSize) && !Number.isNaN(nodeCount) && maskSize > podCidr.prefix) {
      const blocks = podBlocks(podCidr, maskSize, nodeCount);
      const last = blocks[blocks.length - 1];
      if (last && !cidrContainsRange(native, podCidr.base, cidrLast(last))) {
        problems.push(
          problem(
            "nativeRoutingCidr",
            `does not contain the pod blocks of all ${nodeCount} nodes (${blocks.map(formatCidr).join(", ")}); traffic to the others would be masqueraded`,
            nativeText,
            `A CIDR containing ${formatCidr(podCidr)}'s first ${nodeCount} /${maskSize} blocks, or empty for podCidr`,
          ),
        );
      } else if (!cidrContainsRange(native, podCidr.base, cidrLast(podCidr))) {
        warnings.push(
          `${PROJECT}:nativeRoutingCidr ${nativeText} covers the first ${nodeCount} node blocks but not the whole podCidr ${formatCidr(podCidr)}: ` +
            `a node added later, or a re-allocated block, would be masqueraded between nodes.`,
        );
      }
    }
  }

  // The libvirt network.
  const network = cidr("networkCidr", "192.168.150.0/24");
  if (network) {
    if (network.prefix < 16 || network.prefix > 28) {
      problems.push(
        problem(
          "networkCidr",
          "must be a /16 to /28",
          text("networkCidr"),
          "An IPv4 CIDR from /16 to /28, such as 192.168.150.0/24",
        ),
      );
    } else if (!Number.isNaN(nodeCount) && NODE_HOST_OFFSET + nodeCount > cidrSize(network) - 2) {
      problems.push(
        problem(
          "networkCidr",
          `has no room for ${nodeCount} nodes at host addresses ${NODE_HOST_OFFSET + 1}–${NODE_HOST_OFFSET + nodeCount}`,
          text("networkCidr"),
          "A larger network (a shorter prefix)",
        ),
      );
    }
    const clashes: [string, Cidr | undefined][] = [
      ["podCidr", podCidr],
      ["nativeRoutingCidr", nativeText === "" ? undefined : native],
      [`the k3s service CIDR ${SERVICE_CIDR}`, service],
    ];
    for (const [what, other] of clashes) {
      if (other && cidrsOverlap(network, other)) {
        problems.push(
          problem(
            "networkCidr",
            `overlaps ${what === "podCidr" || what === "nativeRoutingCidr" ? `${what} ${formatCidr(other)}` : what}`,
            text("networkCidr"),
            "A node network disjoint from pod and service CIDRs, such as 192.168.150.0/24",
          ),
        );
      }
    }
  }

  // VM sizes.
  const nodeCpus = integer("nodeCpus", 1, Infinity);
  const nodeMemoryMiB = integer("nodeMemoryMiB", 1024, Infinity);
  const nodeDiskGiB = integer("nodeDiskGiB", 8, Infinity);

  // Base image. http:// is fine: the download is checked against imageSha256 before use.
  const images = [...Object.keys(UBUNTU_IMAGES), "custom"] as ImageName[];
  const image = oneOf<ImageName>("image", images);
  const imageUrl = text("imageUrl");
  const imageSha256 = text("imageSha256");
  if (image === "custom") {
    if (imageUrl === "") {
      problems.push(problem("imageUrl", "is required with image custom", imageUrl, IMAGE_URL_EXPECTED));
    } else if (!/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S*)$/.test(imageUrl)) {
      problems.push(
        problem(
          "imageUrl",
          "is not an https://, http:// or file:// URL or an absolute path",
          imageUrl,
          IMAGE_URL_EXPECTED,
        ),
      );
    }
    if (imageSha256 === "") {
      problems.push(
        problem(
          "imageSha256",
          "is required with image custom",
          imageSha256,
          "The image's SHA-256 as 64 hex digits (sha256sum <file>)",
        ),
      );
    } else if (!SHA256_RE.test(imageSha256)) {
      problems.push(problem("imageSha256", "is not a SHA-256", imageSha256, "64 hex digits (sha256sum <file>)"));
    }
  } else if (image !== undefined) {
    for (const key of ["imageUrl", "imageSha256"] as const) {
      if (text(key) !== "") {
        problems.push(
          problem(key, `is only used with image custom, not ${image}`, text(key), `Remove it, or set image custom`),
        );
      }
    }
  }

  // libvirt.
  const accelerator = oneOf<Accelerator>("accelerator", ["kvm", "qemu"]);
  const libvirtUri = text("libvirtUri");
  if (libvirtUri !== "qemu:///system") {
    const why =
      libvirtUri === "qemu:///session"
        ? "the session daemon cannot create NAT networks with DHCP reservations"
        : "remote libvirt URIs are not supported yet (images and seeds are written to local paths)";
    problems.push(problem("libvirtUri", `is not supported: ${why}`, libvirtUri, "Accepted: qemu:///system"));
  }
  const bootTimeoutSeconds = integer("bootTimeoutSeconds", 30, 3600);

  // Software versions.
  const k3sVersion = text("k3sVersion");
  if (!K3S_VERSION_RE.test(k3sVersion)) {
    problems.push(
      problem("k3sVersion", "is not a k3s release", k3sVersion, "A k3s release such as v1.26.6+k3s1 (vX.Y.Z+k3sN)"),
    );
  }
  const k3sAirgapDir = text("k3sAirgapDir");
  if (k3sAirgapDir !== "" && !k3sAirgapDir.startsWith("/")) {
    problems.push(
      problem(
        "k3sAirgapDir",
        "must be an absolute host path",
        k3sAirgapDir,
        "Empty (online install) or an absolute directory such as /srv/k3s-airgap",
      ),
    );
  }
  const ciliumVersion = text("ciliumVersion");
  const cv = CILIUM_VERSION_RE.exec(ciliumVersion);
  const range = `A Cilium chart version from 1.${CILIUM_SUPPORTED_MINORS.first}.0 to 1.${CILIUM_SUPPORTED_MINORS.last}.x, such as 1.13.4 or 1.20.0`;
  if (!cv) {
    problems.push(problem("ciliumVersion", "is not a Cilium release version", ciliumVersion, range));
  } else if (Number(cv[1]) < CILIUM_SUPPORTED_MINORS.first || Number(cv[1]) > CILIUM_SUPPORTED_MINORS.last) {
    problems.push(
      problem(
        "ciliumVersion",
        "is outside the versions whose Helm values this lab renders and tests",
        ciliumVersion,
        range,
      ),
    );
  }
  const ciliumChart = text("ciliumChart");
  if (ciliumChart !== "" && !ciliumChart.startsWith("/") && !ciliumChart.startsWith("./")) {
    problems.push(
      problem(
        "ciliumChart",
        "must be a local path",
        ciliumChart,
        "Empty (Cilium's Helm repository) or an absolute or ./relative path to a chart .tgz or directory",
      ),
    );
  }
  const kubeProxyReplacement = boolean("kubeProxyReplacement");
  const hubble = boolean("hubble");

  // iperf3.
  const iperf3Image = text("iperf3Image");
  if (iperf3Image !== "" && !IMAGE_REF_RE.test(iperf3Image)) {
    problems.push(
      problem(
        "iperf3Image",
        "is not a container image reference",
        iperf3Image,
        "Empty (the pinned image) or a reference such as registry.example/iperf3@sha256:<64 hex>",
      ),
    );
  } else if (iperf3Image !== "" && !iperf3Image.includes("@sha256:")) {
    warnings.push(
      `${PROJECT}:iperf3Image ${iperf3Image} is not pinned by digest: two runs may measure different binaries.`,
    );
  }
  const iperf3Seconds = integer("iperf3Seconds", 1, 300);
  const iperf3Runs = integer("iperf3Runs", 1, 20);
  const iperf3Streams = integer("iperf3Streams", 1, 16);
  const iperf3OmitSeconds = integer("iperf3OmitSeconds", 0, 10);

  const sshAuthorizedKey = text("sshAuthorizedKey").trim();
  if (sshAuthorizedKey !== "" && !SSH_KEY_RE.test(sshAuthorizedKey)) {
    problems.push(
      problem(
        "sshAuthorizedKey",
        "is not one OpenSSH public key line",
        text("sshAuthorizedKey"),
        "Empty, or the contents of ~/.ssh/id_ed25519.pub (type, base64 key, optional comment)",
      ),
    );
  }

  if (
    problems.length > 0 ||
    routingMode === undefined ||
    image === undefined ||
    accelerator === undefined ||
    !podCidr ||
    !native ||
    !network
  ) {
    throw new LabConfigError(problems);
  }

  const config: LabConfig = {
    routingMode,
    autoDirectNodeRoutes,
    podCidr: formatCidr(podCidr),
    podCidrMaskSize: maskSize,
    nativeRoutingCidr: formatCidr(native),
    networkCidr: formatCidr(network),
    nodeCount,
    nodeCpus,
    nodeMemoryMiB,
    nodeDiskGiB,
    image,
    imageUrl,
    imageSha256: imageSha256.toLowerCase(),
    accelerator,
    libvirtUri,
    bootTimeoutSeconds,
    k3sVersion,
    k3sAirgapDir,
    ciliumVersion,
    ciliumChart,
    kubeProxyReplacement,
    hubble,
    iperf3Image,
    iperf3Seconds,
    iperf3Runs,
    iperf3Streams,
    iperf3OmitSeconds,
    sshAuthorizedKey,
  };
  return deepFreeze({ config: deepFreeze(config), warnings: Object.freeze(warnings) });
}
