/**
 * Every pinned external version, in one place, each with where newer ones are listed.
 *
 * Defaults chosen by the stack config (`k3sVersion`, `ciliumVersion`, `image`) start here; the
 * article's own versions are the defaults so that `pulumi up` reproduces it.
 */

/**
 * The article's k3s release (Kubernetes 1.26.6).
 * see https://github.com/k3s-io/k3s/releases (newest known: v1.37.1+k3s1, 2026-09-30)
 */
export const K3S_VERSION = "v1.26.6+k3s1";

/**
 * The article's Cilium chart.
 * see https://github.com/cilium/cilium/releases and `helm search repo cilium/cilium --versions`
 * (newest stable chart known: 1.20.0, 2026-07-29)
 */
export const CILIUM_VERSION = "1.13.4";

/** The Helm repository the chart comes from when `ciliumChart` is empty. */
export const CILIUM_HELM_REPO = "https://helm.cilium.io";

/**
 * Cilium minor versions whose Helm values this project renders and tests. 1.13 is the article's;
 * 1.14 introduced `routingMode`/`tunnelProtocol`; 1.20 is the newest stable line known. Outside this
 * range key names (IPAM, kube-proxy replacement, tunnel) have not been checked against the chart.
 */
export const CILIUM_SUPPORTED_MINORS = { first: 13, last: 20 } as const;

/** An Ubuntu cloud image: where it is, and how its checksum is proven. */
export interface UbuntuImage {
  /** Ubuntu release, e.g. `23.04`. */
  readonly release: string;
  /** Kernel the image boots, as the release ships it. */
  readonly kernel: string;
  /** The qcow2 cloud image. */
  readonly url: string;
  /** `SHA256SUMS` beside it; `SHA256SUMS.gpg` is its detached signature by Ubuntu's cloud-image key. */
  readonly sha256SumsUrl: string;
}

/**
 * Ubuntu cloud images by `image` config value. Serials are pinned so two hosts boot the same bits.
 * The image's SHA-256 is not pinned here: it cannot be checked from our CI (no access to Ubuntu's
 * servers), so it comes from the release's signed `SHA256SUMS` at download time instead.
 * see https://cloud-images.ubuntu.com/releases/ (and cloud-images-archive.ubuntu.com for EOL releases)
 */
export const UBUNTU_IMAGES = {
  // 23.04 "lunar" is EOL (2024-01-25): its images moved to the archive host. The serial is the last
  // one we know of; not verified from here.
  "ubuntu-23.04": {
    release: "23.04",
    kernel: "6.2",
    url: "https://cloud-images-archive.ubuntu.com/releases/lunar/release-20231005/ubuntu-23.04-server-cloudimg-amd64.img",
    sha256SumsUrl: "https://cloud-images-archive.ubuntu.com/releases/lunar/release-20231005/SHA256SUMS",
  },
  "ubuntu-24.04": {
    release: "24.04",
    kernel: "6.8",
    url: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img",
    sha256SumsUrl: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/SHA256SUMS",
  },
  // 26.04 "resolute": URL by the archive's pattern; not verified from here.
  "ubuntu-26.04": {
    release: "26.04",
    kernel: "7.0",
    url: "https://cloud-images.ubuntu.com/releases/resolute/release/ubuntu-26.04-server-cloudimg-amd64.img",
    sha256SumsUrl: "https://cloud-images.ubuntu.com/releases/resolute/release/SHA256SUMS",
  },
} as const satisfies Record<string, UbuntuImage>;

/** An `image` config value other than `custom`. */
export type UbuntuImageName = keyof typeof UBUNTU_IMAGES;

// ─── iperf3 image (infra/verify) ────────────────────────────────────────────────────────────────
// Appended by the verification layer. Everything between these rules is its own.

/**
 * The iperf3 image the verification Jobs run (server pods and client Jobs), pinned by digest.
 *
 * Why this image: it is Cilium's own network performance image, the one `cilium connectivity
 * perf` runs, maintained in cilium/image-tools (images/network-perf) and bumped by Renovate in
 * cilium-cli; the tag is `<iperf version>-<build time>-<commit>` (image-tools' version.sh reads
 * the tag from the Dockerfile's `ARG IPERF_VERSION`), and iperf3 is installed on the PATH (older
 * builds compile esnet/iperf 3.12 with `make install` into /usr/local/bin). A Cilium lab's
 * air-gapped mirror is likely to carry it already. The article's `clearlinux/iperf:3` is frozen:
 * Intel ended Clear Linux on 2025-07-18 (no more patches, clearlinux/dockerfiles archived).
 * `networkstatic/iperf3` is maintained but publishes only `:latest` on Debian bullseye (iperf3
 * 3.9); any image with `iperf3` (>= 3.6, for `--connect-timeout`) on its PATH works through the
 * `iperf3Image` config key.
 *
 * UNVERIFIED from this project's CI: no container registry is reachable here, so neither the
 * digest nor the presence of iperf3 in this particular build has been checked by pulling it. The
 * reference and digest are copied from cilium-cli's `ConnectivityCheckImagesPerf` default
 * (cilium/cilium `cilium-cli/defaults/defaults.go`). Verify with
 * `crane digest quay.io/cilium/network-perf:3.21-1782913202-88c270c` or
 * `docker run --rm <image> iperf3 --version`.
 * see https://quay.io/repository/cilium/network-perf?tab=tags and cilium-cli's defaults.go for
 * newer builds.
 */
export const IPERF3_IMAGE =
  "quay.io/cilium/network-perf:3.21-1782913202-88c270c@sha256:c115a00b80bbf4ff49857dd545f0c40025f226d79051b2c8fdab3e8b938c7f92";

// ─── end of the iperf3 image section ───────────────────────────────────────────────────────────
