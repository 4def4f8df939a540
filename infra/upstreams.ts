/**
 * Which hosts a stack config makes this host and the lab's nodes contact: the one list behind
 * `npm run lab -- doctor`'s probes and the README's firewall allowlist (a test keeps the README's
 * list equal to {@link upstreamEndpoints} for the configs it shows). Pure.
 *
 * Sources of each entry:
 * - Pulumi's resource plugins, when `pulumi plugin ls` does not list them: pulumi v3.250.0
 *   (sdk/go/common/workspace/plugins.go, fallbackSource and githubSource.Download) tries
 *   `https://github.com/pulumi/pulumi-<name>/releases/download/v<version>/pulumi-resource-<name>-v<version>-<os>-<arch>.tar.gz`,
 *   then the API at api.github.com, then `https://get.pulumi.com/releases/plugins/<the same file>`.
 * - The base image: infra/versions.ts UBUNTU_IMAGE_ROOTS and infra/libvirt/base-image/sources.ts (tried in
 *   order; any one of them is enough), or a custom `imageUrl` over http(s).
 * - The Cilium chart: Helm reads the repository's `index.yaml` (the chart repository layout,
 *   https://helm.sh/docs/topics/chart_repository/), run by the kubernetes provider on this host.
 * - The nodes, online: infra/k3s/args.ts upstreamProbes (k3s's install script and binary, the
 *   registries' API roots). GitHub answers release downloads with a redirect to
 *   release-assets.githubusercontent.com (scripts/node/probe-upstreams.sh). Registries serve image
 *   layers from other hosts: Docker Hub from production.cloudflare.docker.com after a token from
 *   auth.docker.io (docs.docker.com "Allowlist for Docker Desktop", docker/docs allow-list.md);
 *   quay.io from cdn.quay.io and cdn01–03.quay.io (Red Hat, "Firewall changes for container image
 *   pulls", access.redhat.com/node/7001746).
 */
import type { LabConfig } from "./config/parse";
import { CILIUM_IMAGES_REGISTRY, K3S_IMAGES_REGISTRY, imageRegistry, upstreamProbes } from "./k3s/probe";
import { indexUrls, serialSources } from "./libvirt/base-image/sources";
import { CILIUM_HELM_REPO, UBUNTU_IMAGE_ROOTS, UBUNTU_IMAGES } from "./versions";

/** One upstream: what is contacted, by whom, and why. */
export interface UpstreamEndpoint {
  /** The URL a probe requests. */
  readonly url: string;
  /** `host`: this machine (Pulumi, its providers); `nodes`: the VMs, through the host's NAT. */
  readonly from: "host" | "nodes";
  /** What needs it, one short sentence. */
  readonly why: string;
  /**
   * How an answer is judged: `file` must answer 2xx or 3xx (404: the pinned file is gone);
   * `service` is reachable with any HTTP answer (a registry's `/v2/` answers 401, a CDN's root 403).
   */
  readonly expect: "file" | "service";
  /** Entries with the same group are alternatives: one reachable entry is enough. */
  readonly group: string;
}

/** A Pulumi resource plugin the program needs. */
export interface PluginSpec {
  readonly name: string;
  readonly version: string;
}

/** The config keys that decide the list (as parsed: `iperf3Image` is never empty). */
export type UpstreamConfig = Pick<
  LabConfig,
  "image" | "imageUrl" | "k3sAirgapDir" | "k3sVersion" | "ciliumChart" | "ciliumVersion" | "iperf3Image"
>;

/** The plugin file name Pulumi downloads for linux x86-64 (`standardAssetName`). */
export function pluginAsset(p: PluginSpec): string {
  return `pulumi-resource-${p.name}-v${p.version}-linux-amd64.tar.gz`;
}

const GITHUB_ASSETS = "https://release-assets.githubusercontent.com/";

function hostEndpoints(config: UpstreamConfig, plugins: readonly PluginSpec[]): UpstreamEndpoint[] {
  const out: UpstreamEndpoint[] = [];
  for (const p of plugins) {
    const group = `plugin ${p.name} ${p.version}`;
    const why = `the ${p.name} ${p.version} resource plugin, downloaded by the first \`up\` unless \`pulumi plugin ls\` lists it`;
    out.push(
      {
        url: `https://github.com/pulumi/pulumi-${p.name}/releases/download/v${p.version}/${pluginAsset(p)}`,
        from: "host",
        why,
        expect: "file",
        group,
      },
      {
        url: `https://api.github.com/repos/pulumi/pulumi-${p.name}/releases/tags/v${p.version}`,
        from: "host",
        why: `${why} (GitHub's API, tried second)`,
        expect: "file",
        group,
      },
      {
        url: `https://get.pulumi.com/releases/plugins/${pluginAsset(p)}`,
        from: "host",
        why: `${why} (tried last)`,
        expect: "file",
        group,
      },
    );
  }
  if (plugins.length > 0) {
    out.push({
      url: GITHUB_ASSETS,
      from: "host",
      why: "GitHub redirects release downloads (the plugins) here",
      expect: "service",
      group: "plugin downloads: GitHub's redirect",
    });
  }
  if (config.image === "custom") {
    if (/^https?:\/\//.test(config.imageUrl)) {
      out.push({
        url: config.imageUrl,
        from: "host",
        why: "the custom base image (imageUrl), downloaded once into the image cache",
        expect: "file",
        group: "base image",
      });
    }
  } else {
    const pin = UBUNTU_IMAGES[config.image];
    const sources = serialSources(UBUNTU_IMAGE_ROOTS, pin.codename, pin.serial);
    sources.forEach((source, i) => {
      out.push({
        url: `${source}SHA256SUMS`,
        from: "host",
        why: `Ubuntu ${pin.release} serial ${pin.serial}: SHA256SUMS, SHA256SUMS.gpg and the image (source ${i + 1} of ${sources.length}, tried in order), downloaded once into the image cache`,
        expect: "file",
        group: "base image",
      });
    });
    if (pin.resolveLatest) {
      indexUrls(UBUNTU_IMAGE_ROOTS).forEach((url, i, all) => {
        out.push({
          url,
          from: "host",
          why: `Ubuntu's released-images index: the final serial of an EOL release (source ${i + 1} of ${all.length})`,
          expect: "file",
          group: "Ubuntu image index",
        });
      });
    }
  }
  if (config.ciliumChart === "") {
    out.push({
      url: `${CILIUM_HELM_REPO}/index.yaml`,
      from: "host",
      why: `the Cilium chart ${config.ciliumVersion} (the kubernetes provider runs Helm on this host)`,
      expect: "file",
      group: "Helm repository",
    });
  }
  return out;
}

function nodeEndpoints(config: UpstreamConfig): UpstreamEndpoint[] {
  const iperf3Image = config.iperf3Image;
  const out: UpstreamEndpoint[] = [];
  const airgap = config.k3sAirgapDir !== "";
  if (!airgap) {
    for (const probe of upstreamProbes({ k3sVersion: config.k3sVersion, iperf3Image })) {
      const registry = probe.name.startsWith("registry-") ? probe.name.slice("registry-".length) : undefined;
      out.push(
        registry === undefined
          ? {
              url: probe.url,
              from: "nodes",
              why:
                probe.name === "k3s-installer"
                  ? `k3s's install script for ${config.k3sVersion}`
                  : `the k3s ${config.k3sVersion} binary (a redirect to release-assets.githubusercontent.com)`,
              expect: "file",
              group: probe.name === "k3s-installer" ? "k3s install script" : "k3s binary",
            }
          : {
              url: probe.url,
              from: "nodes",
              why: registryWhy(registry, iperf3Image, false),
              expect: "service",
              group: `registry ${registry}`,
            },
      );
    }
    out.push({
      url: GITHUB_ASSETS,
      from: "nodes",
      why: "GitHub redirects the k3s binary download here",
      expect: "service",
      group: "k3s binary: GitHub's redirect",
    });
  } else {
    for (const registry of [...new Set([CILIUM_IMAGES_REGISTRY, imageRegistry(iperf3Image)])]) {
      const api = registry === "docker.io" ? "https://registry-1.docker.io/v2/" : `https://${registry}/v2/`;
      out.push({
        url: api,
        from: "nodes",
        why: registryWhy(registry, iperf3Image, true),
        expect: "service",
        group: `registry ${registry}`,
      });
    }
  }
  const registries = new Set(
    out.filter((e) => e.group.startsWith("registry ")).map((e) => e.group.slice("registry ".length)),
  );
  if (registries.has("docker.io")) {
    out.push(
      {
        url: "https://auth.docker.io/token",
        from: "nodes",
        why: "Docker Hub's pull tokens",
        expect: "service",
        group: "registry docker.io: pull tokens",
      },
      {
        url: "https://production.cloudflare.docker.com/",
        from: "nodes",
        why: "Docker Hub's image layers",
        expect: "service",
        group: "registry docker.io: image layers",
      },
    );
  }
  if (registries.has("quay.io")) {
    for (const cdn of ["cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io"]) {
      out.push({
        url: `https://${cdn}/`,
        from: "nodes",
        why: "quay.io's image layers",
        expect: "service",
        group: `registry quay.io: image layers (${cdn})`,
      });
    }
  }
  return out;
}

/** What pulls from a registry. */
function registryWhy(registry: string, iperf3Image: string, airgap: boolean): string {
  const users: string[] = [];
  if (!airgap && registry === K3S_IMAGES_REGISTRY) {
    users.push("k3s's own images (pause, CoreDNS, local-path, metrics-server, Traefik)");
  }
  if (registry === CILIUM_IMAGES_REGISTRY) {
    users.push("Cilium, operator and Hubble images");
  }
  if (registry === imageRegistry(iperf3Image)) {
    users.push("the iperf3 image");
  }
  return `${users.join(", ")}${airgap ? " (unless the air-gap tarballs carry them)" : ""}`;
}

/**
 * Every upstream the config makes the host and the nodes contact, host first. `plugins`: the
 * resource plugins the program needs (package.json's @pulumi/command and @pulumi/kubernetes).
 */
export function upstreamEndpoints(config: UpstreamConfig, plugins: readonly PluginSpec[] = []): UpstreamEndpoint[] {
  return [...hostEndpoints(config, plugins), ...nodeEndpoints(config)];
}

/** The host name of a URL. */
export function endpointHost(url: string): string {
  return new URL(url).host;
}
