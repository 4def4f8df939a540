/**
 * The hosts each config makes this host and the nodes contact (infra/upstreams.ts): exact lists
 * per config, and the README's allowlist kept equal to the module's output.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";

import test from "ava";

import { parseLabConfig } from "../../infra/config";
import { upstreamEndpoints } from "../../infra/upstreams";
import { upstreamsTable } from "../../scripts/dev/upstreams-table";

const COMMAND = [{ name: "command", version: "1.2.1" }];
const rows = (raw: Record<string, string>, plugins = COMMAND): string[][] =>
  upstreamEndpoints(parseLabConfig(raw).config, plugins).map((e) => [e.from, e.group, e.expect, e.url]);

/** quay.io's image layer hosts, one row each. */
const QUAY_LAYERS = ["cdn", "cdn01", "cdn02", "cdn03"].map((c) => [
  "nodes",
  `registry quay.io: image layers (${c}.quay.io)`,
  "service",
  `https://${c}.quay.io/`,
]);

test("the defaults: plugins, the Ubuntu 23.04 sources and index in order, Helm's index on the host; k3s, its redirect and both registries with their layer hosts on the nodes", (t) => {
  const lunar = "releases/lunar/release-20231005/SHA256SUMS";
  const index = "releases/streams/v1/com.ubuntu.cloud:released:download.json";
  t.deepEqual(rows({}), [
    [
      "host",
      "plugin command 1.2.1",
      "file",
      "https://github.com/pulumi/pulumi-command/releases/download/v1.2.1/pulumi-resource-command-v1.2.1-linux-amd64.tar.gz",
    ],
    ["host", "plugin command 1.2.1", "file", "https://api.github.com/repos/pulumi/pulumi-command/releases/tags/v1.2.1"],
    [
      "host",
      "plugin command 1.2.1",
      "file",
      "https://get.pulumi.com/releases/plugins/pulumi-resource-command-v1.2.1-linux-amd64.tar.gz",
    ],
    ["host", "plugin downloads: GitHub's redirect", "service", "https://release-assets.githubusercontent.com/"],
    ["host", "base image", "file", `https://cloud-images.ubuntu.com/${lunar}`],
    ["host", "base image", "file", `https://cloud-images-archive.ubuntu.com/${lunar}`],
    ["host", "base image", "file", `https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/${lunar}`],
    ["host", "base image", "file", `http://cloud-images-archive.ubuntu.com/${lunar}`],
    ["host", "Ubuntu image index", "file", `https://cloud-images.ubuntu.com/${index}`],
    ["host", "Ubuntu image index", "file", `https://cloud-images-archive.ubuntu.com/${index}`],
    [
      "host",
      "Ubuntu image index",
      "file",
      `https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/${index}`,
    ],
    ["host", "Ubuntu image index", "file", `http://cloud-images-archive.ubuntu.com/${index}`],
    ["host", "Helm repository", "file", "https://helm.cilium.io/index.yaml"],
    ["nodes", "k3s install script", "file", "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh"],
    ["nodes", "k3s binary", "file", "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s"],
    ["nodes", "registry docker.io", "service", "https://registry-1.docker.io/v2/"],
    ["nodes", "registry quay.io", "service", "https://quay.io/v2/"],
    ["nodes", "k3s binary: GitHub's redirect", "service", "https://release-assets.githubusercontent.com/"],
    ["nodes", "registry docker.io: pull tokens", "service", "https://auth.docker.io/token"],
    ["nodes", "registry docker.io: image layers", "service", "https://production.cloudflare.docker.com/"],
    ...QUAY_LAYERS,
  ]);
});

test("air-gapped with a local chart and image: no image, Helm, k3s or docker.io host; quay.io only for the images the tarballs may lack", (t) => {
  const airgapped = {
    k3sAirgapDir: "/srv/k3s",
    ciliumChart: "./c.tgz",
    image: "custom",
    imageUrl: "file:///srv/base.qcow2",
    imageSha256: "0".repeat(64),
  };
  t.deepEqual(rows(airgapped, []), [["nodes", "registry quay.io", "service", "https://quay.io/v2/"], ...QUAY_LAYERS]);
  t.is(
    upstreamEndpoints(parseLabConfig(airgapped).config)[0]?.why,
    "Cilium, operator and Hubble images, the iperf3 image (unless the air-gap tarballs carry them)",
  );
});

test("a custom image over https adds its host; an iperf3 mirror adds its registry; Ubuntu 24.04 needs no index (its serial is final)", (t) => {
  const custom = rows(
    {
      image: "custom",
      imageUrl: "https://images.example.invalid/base.qcow2",
      imageSha256: "0".repeat(64),
      iperf3Image: "mirror.example.invalid:5000/iperf3:1@sha256:" + "a".repeat(64),
    },
    [],
  );
  t.deepEqual(
    custom.filter((r) => r[1] === "base image"),
    [["host", "base image", "file", "https://images.example.invalid/base.qcow2"]],
  );
  t.deepEqual(
    custom.filter((r) => r[1] === "registry mirror.example.invalid:5000"),
    [["nodes", "registry mirror.example.invalid:5000", "service", "https://mirror.example.invalid:5000/v2/"]],
  );
  const noble = rows({ image: "ubuntu-24.04" }, []);
  t.is(noble.filter((r) => r[1] === "Ubuntu image index").length, 0);
  t.is(
    noble.filter((r) => r[1] === "base image")[0]?.[3],
    "https://cloud-images.ubuntu.com/releases/noble/release-20240423/SHA256SUMS",
  );
});

test("README's allowlist is the module's output (regenerate: npx tsx scripts/dev/upstreams-table.ts)", (t) => {
  const readme = readFileSync(path.resolve(__dirname, "..", "..", "README.md"), "utf8");
  const m = /<!-- upstreams:start[^>]*-->\n([\s\S]*?)\n<!-- upstreams:end -->/.exec(readme);
  t.truthy(m, "README.md lacks the upstreams markers");
  t.is(m?.[1], upstreamsTable(), "regenerate it with: npx tsx scripts/dev/upstreams-table.ts");
});
