import test from "ava";

import { chartSource, releaseDigest, releaseTimeoutSeconds } from "../../infra/cilium/release";
import { ciliumValues } from "../../infra/cilium/values";
import { parseLabConfig } from "../../infra/config";

test("without ciliumChart the chart is cilium from https://helm.cilium.io at ciliumVersion", (t) => {
  t.deepEqual(chartSource("1.13.4", "", "/srv/lab"), {
    chart: "cilium",
    version: "1.13.4",
    repositoryOpts: { repo: "https://helm.cilium.io" },
  });
});

test("a local chart is made absolute against the project directory and sent without version or repository", (t) => {
  t.deepEqual(chartSource("1.13.4", "./charts/cilium-1.13.4.tgz", "/srv/lab"), {
    chart: "/srv/lab/charts/cilium-1.13.4.tgz",
  });
  t.deepEqual(chartSource("1.20.0", "/opt/charts/cilium", "/srv/lab"), { chart: "/opt/charts/cilium" });
});

test("a local cilium-X.Y.Z.tgz of another version than ciliumVersion is refused with both versions and the fix", (t) => {
  const error = t.throws(() => chartSource("1.20.0", "./charts/cilium-1.13.4.tgz", "/srv/lab"));
  t.is(
    error?.message,
    "cilium-lab:ciliumChart ./charts/cilium-1.13.4.tgz is chart 1.13.4 but cilium-lab:ciliumVersion is 1.20.0: the Helm values are rendered for 1.20.0's key names. " +
      "Set ciliumVersion to 1.13.4, or fetch the matching chart with `helm pull cilium/cilium --version 1.20.0`.",
  );
});

test("Helm waits 600 s on KVM hosts and 1800 s under TCG", (t) => {
  t.deepEqual([releaseTimeoutSeconds("kvm"), releaseTimeoutSeconds("qemu")], [600, 1800]);
});

const source = chartSource("1.13.4", "", "/srv/lab");
const vxlan = ciliumValues(parseLabConfig({}).config, "1.13.4", "192.168.150.11");
const native = ciliumValues(parseLabConfig({ routingMode: "native" }).config, "1.13.4", "192.168.150.11");

test("the release digest is a sha256 that ignores key order", (t) => {
  const reordered = Object.fromEntries(Object.entries(vxlan).reverse());
  t.regex(releaseDigest(source, vxlan), /^sha256:[0-9a-f]{64}$/);
  t.is(releaseDigest(source, reordered), releaseDigest(source, vxlan));
});

test("the release digest changes with the routing mode and with the chart version, and only then", (t) => {
  const digests = new Set([
    releaseDigest(source, vxlan),
    releaseDigest(source, native),
    releaseDigest(chartSource("1.13.18", "", "/srv/lab"), vxlan),
  ]);
  t.is(digests.size, 3);
  t.is(releaseDigest(chartSource("1.13.4", "", "/elsewhere"), vxlan), releaseDigest(source, vxlan));
});
