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

// The digests of the lab's values before the series' switches existed (commit a38df3b), on the
// Helm repository's chart: a default config must still give exactly these, so no existing lab sees
// a Helm upgrade (nor re-run measurements) from the new keys at their defaults.
const BEFORE_SWITCHES: [string, Record<string, string>, string][] = [
  ["1.13.4", {}, "sha256:927ea7a5cda4efce3cd81dfb2e5297246cdfd0d029b0a486246278d044882fe8"],
  ["1.13.4", { routingMode: "native" }, "sha256:a73c80a2fae7870e3d6f9d79e1c7d7c7eaa83965dabfbc61e607c551af8a0fad"],
  ["1.20.0", {}, "sha256:138dc6e1025c13240753d351f123bad4c5b520bc32a66634f306c7865bb39847"],
  [
    "1.20.0",
    { routingMode: "native", kubeProxyReplacement: "true" },
    "sha256:1a181caf8077906a4d48bf61fe28d85fe09aad0164c4ab2ee543a51a9b66f471",
  ],
];
for (const [version, raw, digest] of BEFORE_SWITCHES) {
  test(`with the series' switches at their defaults, ${version} ${JSON.stringify(raw)} keeps the release digest it had before them`, (t) => {
    const values = ciliumValues(parseLabConfig(raw).config, version, "192.168.150.11");
    t.is(releaseDigest(chartSource(version, "", "/srv/lab"), values), digest);
  });
}

test("each switch changes the release digest, so turning it on upgrades the release and re-runs the measurements", (t) => {
  const base = parseLabConfig({ routingMode: "native", kubeProxyReplacement: "true" }).config;
  const digestOf = (c: typeof base): string =>
    releaseDigest(chartSource("1.20.0", "", "/srv/lab"), ciliumValues(c, "1.20.0", "192.168.150.11"));
  const digests = new Set([
    digestOf(base),
    digestOf({ ...base, bpfMasquerade: true }),
    digestOf({ ...base, bpfMasquerade: true, hostRouting: "bpf" }),
    digestOf({ ...base, bandwidthManager: "on" }),
    digestOf({ ...base, bandwidthManager: "bbr" }),
    digestOf({ ...base, ipv4BigTcp: true }),
  ]);
  t.is(digests.size, 6);
  // networkMtu is no Helm value: it replaces the network and the VMs, not the release.
  t.is(digestOf({ ...base, networkMtu: 9000 }), digestOf(base));
});
