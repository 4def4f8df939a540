import test from "ava";

import { parseLabConfig, type LabConfig, type RoutingMode } from "../../infra/config";
import {
  CiliumValuesError,
  ciliumDatapath,
  ciliumValues,
  hasBooleanKubeProxyReplacement,
  hasRoutingModeKeys,
  parseCiliumVersion,
} from "../../infra/cilium/values";
import { modernNativeDatapath } from "./expected-datapath";

const SERVER = "192.168.150.11";

/** A parsed config: the defaults plus `overrides`, as a stack file would give them. */
function config(overrides: Record<string, string> = {}): LabConfig {
  return parseLabConfig(overrides).config;
}

const MODE_CONFIG: Record<RoutingMode, Record<string, string>> = {
  vxlan: { routingMode: "vxlan" },
  geneve: { routingMode: "geneve" },
  native: { routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" },
};

// Expected objects, written out: the base every version gets, then the routing and kube-proxy
// replacement keys of each era (1.13 vs 1.14+). Data, not logic: each row below is one literal.
const BASE = {
  k8sServiceHost: SERVER,
  k8sServicePort: 6443,
  operator: { replicas: 1, rollOutPods: true },
  hubble: { relay: { enabled: true }, ui: { enabled: true } },
  ipam: {
    mode: "cluster-pool",
    operator: { clusterPoolIPv4PodCIDRList: ["10.0.0.0/16"], clusterPoolIPv4MaskSize: 24 },
  },
  rollOutCiliumPods: true,
};
const ROUTING = {
  legacy: {
    vxlan: { tunnel: "vxlan" },
    geneve: { tunnel: "geneve" },
    native: { tunnel: "disabled", autoDirectNodeRoutes: true, ipv4NativeRoutingCIDR: "10.0.0.0/22" },
  },
  modern: {
    vxlan: { routingMode: "tunnel", tunnelProtocol: "vxlan" },
    geneve: { routingMode: "tunnel", tunnelProtocol: "geneve" },
    native: { routingMode: "native", autoDirectNodeRoutes: true, ipv4NativeRoutingCIDR: "10.0.0.0/22" },
  },
} as const;
const KUBE_PROXY_REPLACEMENT = {
  legacy: { off: "disabled", on: "strict" },
  modern: { off: false, on: true },
} as const;

/** The values expected at the defaults: the base, then `routing`'s keys and the kube-proxy replacement value. */
function expectedValues(routing: object, kubeProxyReplacement: string | boolean): object {
  return { ...BASE, ...routing, kubeProxyReplacement };
}

// Every supported minor, at its first release and the latest patch known, plus 1.20.0.
const VERSIONS: [string, "legacy" | "modern"][] = [
  ["1.13.0", "legacy"],
  ["1.13.4", "legacy"],
  ["1.13.18", "legacy"],
  ["1.14.0", "modern"],
  ["1.14.19", "modern"],
  ["1.15.0", "modern"],
  ["1.15.19", "modern"],
  ["1.16.0", "modern"],
  ["1.16.19", "modern"],
  ["1.17.18", "modern"],
  ["1.18.12", "modern"],
  ["1.19.6", "modern"],
  ["1.20.0", "modern"],
];

for (const [version, era] of VERSIONS) {
  for (const mode of ["vxlan", "geneve", "native"] as const) {
    for (const kpr of ["off", "on"] as const) {
      const what =
        era === "legacy" ? `tunnel ${ROUTING.legacy[mode].tunnel}` : `routingMode ${ROUTING.modern[mode].routingMode}`;
      test(`Cilium ${version}, ${mode}, kube-proxy replacement ${kpr}: ${what} and kubeProxyReplacement ${String(KUBE_PROXY_REPLACEMENT[era][kpr])}`, (t) => {
        const c = config({ ...MODE_CONFIG[mode], kubeProxyReplacement: kpr === "on" ? "true" : "false" });
        t.deepEqual(
          ciliumValues(c, version, SERVER),
          expectedValues(ROUTING[era][mode], KUBE_PROXY_REPLACEMENT[era][kpr]),
        );
      });
    }
  }
}

test("the article's VXLAN install on 1.13.4 is exactly its --set flags plus the tunnel default, IPAM pool, kube-proxy mode and roll-out flags", (t) => {
  t.deepEqual(ciliumValues(config(), "1.13.4", SERVER), {
    k8sServiceHost: "192.168.150.11",
    k8sServicePort: 6443,
    operator: { replicas: 1, rollOutPods: true },
    hubble: { relay: { enabled: true }, ui: { enabled: true } },
    tunnel: "vxlan",
    ipam: {
      mode: "cluster-pool",
      operator: { clusterPoolIPv4PodCIDRList: ["10.0.0.0/16"], clusterPoolIPv4MaskSize: 24 },
    },
    kubeProxyReplacement: "disabled",
    rollOutCiliumPods: true,
  });
});

test("the article's native routing on 1.13.4 is tunnel disabled with auto direct node routes and its native-routing CIDR", (t) => {
  t.deepEqual(
    ciliumValues(config(MODE_CONFIG.native), "1.13.4", SERVER),
    expectedValues(
      { tunnel: "disabled", autoDirectNodeRoutes: true, ipv4NativeRoutingCIDR: "10.0.0.0/22" },
      "disabled",
    ),
  );
});

test("native routing on 1.20.0 uses routingMode native, no tunnel and no tunnelProtocol", (t) => {
  t.deepEqual(
    ciliumValues(config(MODE_CONFIG.native), "1.20.0", SERVER),
    expectedValues({ routingMode: "native", autoDirectNodeRoutes: true, ipv4NativeRoutingCIDR: "10.0.0.0/22" }, false),
  );
});

test("hubble false turns off relay and UI only, leaving the chart's hubble.enabled default alone", (t) => {
  const v = ciliumValues(config({ hubble: "false" }), "1.20.0", SERVER);
  t.deepEqual(v.hubble, { relay: { enabled: false }, ui: { enabled: false } });
});

test("native routing with autoDirectNodeRoutes false (routes from elsewhere, e.g. BGP) sends false, not the article's true", (t) => {
  const v = ciliumValues(config({ routingMode: "native", autoDirectNodeRoutes: "false" }), "1.16.19", SERVER);
  t.like(v, { routingMode: "native", autoDirectNodeRoutes: false, ipv4NativeRoutingCIDR: "10.0.0.0/16" });
});

test("the pool and per-node mask come from podCidr and podCidrMaskSize", (t) => {
  const v = ciliumValues(config({ podCidr: "10.42.0.0/16", podCidrMaskSize: "26" }), "1.13.4", SERVER);
  t.deepEqual(v.ipam, {
    mode: "cluster-pool",
    operator: { clusterPoolIPv4PodCIDRList: ["10.42.0.0/16"], clusterPoolIPv4MaskSize: 26 },
  });
});

test("the values are deterministic and frozen", (t) => {
  const c = config({ routingMode: "geneve" });
  t.is(JSON.stringify(ciliumValues(c, "1.18.12", SERVER)), JSON.stringify(ciliumValues(c, "1.18.12", SERVER)));
  const v = ciliumValues(c, "1.18.12", SERVER);
  t.true(
    Object.isFrozen(v) &&
      Object.isFrozen(v.ipam.operator) &&
      Object.isFrozen(v.ipam.operator.clusterPoolIPv4PodCIDRList),
  );
});

// Version helpers and the defensive guards.

test("parseCiliumVersion reads 1.<minor>.<patch>; 1.14 is where routingMode and boolean kube-proxy replacement begin", (t) => {
  t.deepEqual(parseCiliumVersion("1.13.4"), { minor: 13, patch: 4 });
  t.deepEqual(parseCiliumVersion("1.20.0"), { minor: 20, patch: 0 });
  t.deepEqual(
    ["1.13.18", "1.14.0", "1.20.0"].map((v) => [
      hasRoutingModeKeys(parseCiliumVersion(v)),
      hasBooleanKubeProxyReplacement(parseCiliumVersion(v)),
    ]),
    [
      [false, false],
      [true, true],
      [true, true],
    ],
  );
});

const REFUSED_VERSIONS: [string, string][] = [
  [
    "1.12.9",
    "Cilium chart version 1.12.9 is outside 1.13.0 to 1.20.x, the versions whose Helm key names this lab renders and tests (routing, IPAM and kube-proxy replacement keys differ between versions). Set cilium-lab:ciliumVersion to a version in that range.",
  ],
  [
    "1.21.0",
    "Cilium chart version 1.21.0 is outside 1.13.0 to 1.20.x, the versions whose Helm key names this lab renders and tests (routing, IPAM and kube-proxy replacement keys differ between versions). Set cilium-lab:ciliumVersion to a version in that range.",
  ],
  ["v1.13.4", 'Cilium chart version "v1.13.4" is not a release version (1.<minor>.<patch>, such as 1.13.4).'],
  ["1.13", 'Cilium chart version "1.13" is not a release version (1.<minor>.<patch>, such as 1.13.4).'],
  ["1.21.0-pre.0", 'Cilium chart version "1.21.0-pre.0" is not a release version (1.<minor>.<patch>, such as 1.13.4).'],
];
for (const [version, message] of REFUSED_VERSIONS) {
  test(`ciliumValues refuses chart version ${version} with the reason`, (t) => {
    const error = t.throws(() => ciliumValues(config(), version, SERVER), { instanceOf: CiliumValuesError });
    t.is(error?.message, message);
  });
}

test("ciliumValues refuses auto direct node routes with a tunnel, as Cilium's agent would at start", (t) => {
  const c = { ...config({ routingMode: "geneve" }), autoDirectNodeRoutes: true };
  const error = t.throws(() => ciliumValues(c, "1.20.0", SERVER), { instanceOf: CiliumValuesError });
  t.is(
    error?.message,
    'autoDirectNodeRoutes cannot be true with routingMode geneve: Cilium\'s agent refuses to start ("auto-direct-node-routes cannot be used with tunneling"). Use it only with routingMode native.',
  );
});

test("ciliumValues refuses native routing without a native-routing CIDR", (t) => {
  const c = { ...config({ routingMode: "native" }), nativeRoutingCidr: "" };
  const error = t.throws(() => ciliumValues(c, "1.13.4", SERVER), { instanceOf: CiliumValuesError });
  t.is(
    error?.message,
    'routingMode native needs nativeRoutingCidr, an IPv4 CIDR covering every node\'s pod block (got ""): without it the agent refuses native routing with IPv4 masquerading on.',
  );
});

test("ciliumValues refuses a server address that is not IPv4", (t) => {
  const error = t.throws(() => ciliumValues(config(), "1.13.4", "node-1"), { instanceOf: CiliumValuesError });
  t.is(error?.message, 'k8sServiceHost must be the k3s server\'s IPv4 address on the lab network (got "node-1").');
});

test("ciliumValues refuses a per-node mask no longer than the pool's prefix", (t) => {
  const c = { ...config(), podCidrMaskSize: 16 };
  const error = t.throws(() => ciliumValues(c, "1.13.4", SERVER), { instanceOf: CiliumValuesError });
  t.is(error?.message, "podCidrMaskSize 16 must be longer than podCidr's /16 and at most 28.");
});

// The datapath evidence verification checks.

test("the datapath evidence names the ConfigMap entries, tunnel device and route MTU overhead of each mode and era", (t) => {
  t.deepEqual(ciliumDatapath(config(), "1.13.4"), {
    routingMode: "vxlan",
    tunnelDevice: "cilium_vxlan",
    routeMtuOverhead: 50,
    networkMtu: 1500,
    configMap: { tunnel: "vxlan", "kube-proxy-replacement": "disabled" },
  });
  t.deepEqual(ciliumDatapath(config({ routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" }), "1.13.4"), {
    routingMode: "native",
    tunnelDevice: null,
    routeMtuOverhead: 0,
    networkMtu: 1500,
    configMap: {
      tunnel: "disabled",
      "auto-direct-node-routes": "true",
      "ipv4-native-routing-cidr": "10.0.0.0/22",
      "kube-proxy-replacement": "disabled",
    },
  });
  t.deepEqual(ciliumDatapath(config({ routingMode: "geneve", kubeProxyReplacement: "true" }), "1.20.0"), {
    routingMode: "geneve",
    tunnelDevice: "cilium_geneve",
    routeMtuOverhead: 50,
    networkMtu: 1500,
    configMap: { "routing-mode": "tunnel", "tunnel-protocol": "geneve", "kube-proxy-replacement": "true" },
  });
  t.deepEqual(
    ciliumDatapath(config({ routingMode: "native" }), "1.14.0"),
    modernNativeDatapath("10.0.0.0/16", { "kube-proxy-replacement": "false" }),
  );
});
