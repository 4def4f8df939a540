/**
 * The upstream probe (scripts/node/probe-upstreams.sh), the first step on every node in online
 * mode: which URLs the nodes must reach (k3s's install script and binary, every registry the nodes
 * pull from) and the command line that probes them. Pure, table-tested (test/k3s/probe.test.ts).
 */
import { installerUrl, releaseAssetUrl, shellJoin } from "./args";

/** One URL the node must reach, named for the result line (`probe <name> <url>: ok …`). */
export interface UpstreamProbe {
  /** `[A-Za-z0-9][A-Za-z0-9._:-]*`, e.g. `k3s-binary`, `registry-quay.io` or `registry-localhost:5000`. */
  readonly name: string;
  readonly url: string;
}

/** curl `--connect-timeout` of every probe hop (TCP and TLS). */
export const PROBE_CONNECT_TIMEOUT_SECONDS = 5;
/** curl `--max-time` of one probed URL, redirect hops included; the URLs are probed in parallel. */
export const PROBE_MAX_TIME_SECONDS = 10;

/**
 * The registry of k3s's own images (pause, CoreDNS, local-path-provisioner, metrics-server, Traefik,
 * klipper-helm/-lb), pulled at its first start: every entry of k3s's image list is
 * `docker.io/rancher/…`, e.g. `docker.io/rancher/mirrored-pause:3.6` and
 * `docker.io/rancher/mirrored-coredns-coredns:1.10.1` for v1.26 (k3s-io/k3s
 * scripts/airgap/image-list.txt, published per release as `k3s-images.txt`).
 */
export const K3S_IMAGES_REGISTRY = "docker.io";
/**
 * The registry of Cilium's images: the chart's defaults are `quay.io/cilium/cilium`,
 * `quay.io/cilium/operator-generic`, `quay.io/cilium/hubble-relay`, `quay.io/cilium/hubble-ui[-backend]`
 * (cilium/cilium install/kubernetes/cilium/values.yaml, 1.13 to 1.20); the lab does not override them.
 */
export const CILIUM_IMAGES_REGISTRY = "quay.io";

/**
 * The registry host of an image reference, by Docker's normalization: the first path component is
 * a registry only if it contains `.` or `:` or is `localhost`, else the image is on Docker Hub
 * (`docker.io`; `index.docker.io` is its legacy name). See distribution/reference normalize.go
 * (splitDockerDomain).
 */
export function imageRegistry(image: string): string {
  const slash = image.indexOf("/");
  const first = slash === -1 ? "" : image.slice(0, slash);
  if (first === "" || (!/[.:]/.test(first) && first !== "localhost")) {
    return "docker.io";
  }
  return first === "index.docker.io" ? "docker.io" : first;
}

/**
 * The OCI distribution API root of a registry: `GET /v2/` answers 200, or 401 when the registry
 * wants a token — both mean reachable (opencontainers/distribution-spec spec.md, "Determining
 * support", endpoint end-1). Docker Hub's API host is `registry-1.docker.io` (containerd's
 * remotes/docker DefaultHost maps `docker.io` to it).
 */
export function registryApiUrl(registry: string): string {
  return `https://${registry === "docker.io" ? "registry-1.docker.io" : registry}/v2/`;
}

/** What decides the probed URLs. */
export interface UpstreamProbeInput {
  /** `cilium-lab:k3sVersion`: the install script and binary of that release. */
  readonly k3sVersion: string;
  /** The iperf3 image the verification pulls (`cilium-lab:iperf3Image` or the pinned one). */
  readonly iperf3Image: string;
}

/**
 * What the nodes download in online mode, in the order probed: k3s's install script (what
 * install-k3s.sh fetches), the k3s binary (what install.sh fetches: a 302 from github.com to its
 * release-asset host), and the API root of every registry the nodes pull from (k3s's images,
 * Cilium's, the iperf3 image's), each registry once.
 *
 * No stack config key overrides these URLs: the install itself uses exactly them (k3s's install
 * script from GitHub, no registry mirror configured for containerd), so probing a mirror would say
 * nothing about the install. The script takes any `--url NAME=URL` for runs by hand.
 */
export function upstreamProbes(input: UpstreamProbeInput): UpstreamProbe[] {
  const registries = [...new Set([K3S_IMAGES_REGISTRY, CILIUM_IMAGES_REGISTRY, imageRegistry(input.iperf3Image)])];
  return [
    { name: "k3s-installer", url: installerUrl(input.k3sVersion) },
    { name: "k3s-binary", url: releaseAssetUrl(input.k3sVersion, "k3s") },
    // the name keeps the registry host as it is (a port too): `registry-<imageRegistry(image)>`.
    ...registries.map((r) => ({ name: `registry-${r.replace(/[^A-Za-z0-9._:-]/g, "-")}`, url: registryApiUrl(r) })),
  ];
}

/** Runs scripts/node/probe-upstreams.sh (on stdin) as the login user: no root needed to open connections. */
export function probeCommand(node: string, probes: readonly UpstreamProbe[]): string {
  return shellJoin([
    "bash",
    "-s",
    "--",
    "--node",
    node,
    "--connect-timeout",
    String(PROBE_CONNECT_TIMEOUT_SECONDS),
    "--max-time",
    String(PROBE_MAX_TIME_SECONDS),
    ...probes.flatMap((p) => ["--url", `${p.name}=${p.url}`]),
  ]);
}
