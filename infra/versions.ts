/**
 * Every pinned external version, in one place, each with where newer ones are listed.
 *
 * The stack config's version defaults (`k3sVersion`, `ciliumVersion`) are the constants below
 * (infra/config/keys.ts reads them; Pulumi.yaml is generated from that table), and its `image`
 * values are the keys of {@link UBUNTU_IMAGES}. The article's own versions are the defaults, so
 * that `pulumi up` reproduces it.
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

/** An Ubuntu cloud image: which release and serial, and where its file is named. */
export interface UbuntuImage {
  /** Ubuntu release, e.g. `23.04`. */
  readonly release: string;
  /** The release's codename: the directory under `releases/` on the image hosts. */
  readonly codename: string;
  /**
   * Kernel the image boots, as the release ships it (`major.minor`): the feature prediction reads it
   * (infra/cilium/feature-requirements.ts `kernelOf`) to tell which datapath switches can run, e.g.
   * IPv4 BIG TCP needs 6.3, so not 23.04's 6.2.
   */
  readonly kernel: string;
  /**
   * The pinned serial: `releases/<codename>/release-<serial>/`. With `resolveLatest`, the floor: a
   * later serial found in Ubuntu's own index is taken, an older one never.
   */
  readonly serial: string;
  /** The qcow2 file in that directory (`SHA256SUMS` and its signature `SHA256SUMS.gpg` beside it). */
  readonly fileName: string;
  /**
   * Read the released simplestreams index (see infra/libvirt/base-image/simplestreams.ts) for the final serial:
   * only for EOL releases, whose last serial can no longer change.
   */
  readonly resolveLatest: boolean;
}

/**
 * Where Ubuntu's released cloud images are, in the order the lab tries them. Each is a root
 * holding `<codename>/release-<serial>/` and `streams/v1/com.ubuntu.cloud:released:download.json`.
 * The SHA256SUMS, its signature and the image always come from one root; its signature (gpgv,
 * Ubuntu's key) and the image's hash make the transport irrelevant to integrity, so the last root
 * is plain http.
 *
 * 1. The release host. Dated serials are removed after some months ("release-yyyyMMdd will be
 *    removed after several months", lima-vm/lima templates/_images/ubuntu-*.yaml), and in 2026 the
 *    host answers an old serial with `302` to `http://cloud-images-archive.ubuntu.com/...` (a 2026
 *    public fetch log of `releases/noble/release-20260705/SHA256SUMS`; public READMEs download
 *    `http://cloud-images-archive.ubuntu.com/releases/noble/release-20240423/...`).
 * 2. The archive host over https: disputed (one 2026 log shows a connection reset, older lima
 *    templates used it), so it is only one of several.
 * 3. The archive's S3 bucket over https: a public project pins
 *    `https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/noble/release-20251213/...`
 *    because "Ubuntu's dated-image redirect targets an HTTP-only S3 website endpoint" (2026-10).
 * 4. The archive host over http: where the release host's redirect points.
 * Not verified from this project's CI (no access to Ubuntu's servers); every failed root is named
 * in the error with its reason.
 */
export const UBUNTU_IMAGE_ROOTS: readonly string[] = [
  "https://cloud-images.ubuntu.com/releases/",
  "https://cloud-images-archive.ubuntu.com/releases/",
  "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/",
  "http://cloud-images-archive.ubuntu.com/releases/",
];

/**
 * Ubuntu cloud images by `image` config value. Serials are pinned so two hosts boot the same bits.
 * The image's SHA-256 is not pinned here: it cannot be checked from our CI (no access to Ubuntu's
 * servers), so it comes from the serial's signed `SHA256SUMS` at download time instead, and the
 * stack keeps it (with the serial and the root it came from) from then on.
 * see https://cloud-images.ubuntu.com/releases/ (and cloud-images-archive.ubuntu.com for EOL releases)
 */
export const UBUNTU_IMAGES = {
  // 23.04 "lunar" is EOL (2024-01-25): its images moved to the archive. 20231005 is the last of the
  // 14 serials in an Oct-2023 copy of Ubuntu's released index (product com.ubuntu.cloud:server:23.04:amd64);
  // later ones exist (a public doc downloads releases/23.04/release-20231129/), so the final serial is
  // read from the index at create, never older than this.
  "ubuntu-23.04": {
    release: "23.04",
    codename: "lunar",
    kernel: "6.2",
    serial: "20231005",
    fileName: "ubuntu-23.04-server-cloudimg-amd64.img",
    resolveLatest: true,
  },
  // 24.04 "noble": listed in a 2024-08-22 copy of Ubuntu's released index (releases/streams/v1/
  // com.ubuntu.cloud:released:download.json).
  "ubuntu-24.04": {
    release: "24.04",
    codename: "noble",
    kernel: "6.8",
    serial: "20240423",
    fileName: "ubuntu-24.04-server-cloudimg-amd64.img",
    resolveLatest: false,
  },
  // 26.04 "resolute": path pattern as lima-vm/lima templates/_images/ubuntu-26.04.yaml; known serials
  // release-20260421, -20260520, -20260823, -20260927 (the moving `release/` alias is not used).
  "ubuntu-26.04": {
    release: "26.04",
    codename: "resolute",
    kernel: "7.0",
    serial: "20260927",
    fileName: "ubuntu-26.04-server-cloudimg-amd64.img",
    resolveLatest: false,
  },
} as const satisfies Record<string, UbuntuImage>;

/** An `image` config value other than `custom`. */
export type UbuntuImageName = keyof typeof UBUNTU_IMAGES;

/**
 * The iperf3 image the verification Jobs run (server pods and client Jobs), pinned by digest: the
 * value of `iperf3Image` when the stack leaves it empty (the config parser resolves it).
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

/**
 * The netperf image of the latency runs (netserver beside each iperf3 server, TCP_RR/TCP_CRR
 * clients): the value of `netperfImage` when the stack leaves it empty. It is the same pinned
 * network-perf image as {@link IPERF3_IMAGE}, because Cilium runs its own netperf tests with it:
 * - cilium/cilium `cilium-cli/defaults/defaults.go` pins exactly this reference and digest as
 *   `ConnectivityCheckImagesPerf["ConnectivityPerformanceImage"]`, the image of `cilium
 *   connectivity perf`'s pods;
 * - cilium/cilium `cilium-cli/connectivity/perf/benchmarks/netperf/perfpod.go` (at commit
 *   01b52869bb30) execs `/usr/local/bin/netperf -H <ip> -l <d> -t TCP_RR|TCP_CRR|… -- -R 1 -m 1024
 *   -o MIN_LATENCY,MEAN_LATENCY,MAX_LATENCY,P50_LATENCY,P90_LATENCY,P99_LATENCY,…` in those pods;
 * - cilium/image-tools `images/network-perf/Dockerfile` (read at commits 092702bd3b91 and
 *   f392056c09a2) downloads HewlettPackard/netperf at commit 80bf19d5 and esnet/iperf, and runs
 *   `./configure && make && make install` for both: netperf and netserver in /usr/local/bin.
 * NOT verified at the pinned build's own commit (88c270c): the public-code index this was checked
 * with holds other versions of that Dockerfile, not the one at 88c270c (whose tag
 * `3.21-<time>-<commit>` comes from a later layout with `ARG IPERF_VERSION`, read by image-tools'
 * `images/network-perf/version.sh`), and no container registry is reachable here to pull it. The
 * evidence that it still carries netperf is cilium-cli's own netperf test pinning this digest.
 * The lab runs `netserver`/`netperf` by name (PATH), not by /usr/local/bin. Verify with
 * `docker run --rm <image> netperf -V` (expect `Netperf version 2.7.0` or later), or set
 * `netperfImage` to any image with netperf >= 2.7.0 (`-j` and the `P50_LATENCY`… selectors) and
 * netserver on its PATH.
 */
export const NETPERF_IMAGE = IPERF3_IMAGE;
