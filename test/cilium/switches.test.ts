/**
 * The series' switches (bpfMasquerade, hostRouting, bandwidthManager, ipv4BigTcp) as Helm values and
 * as the `cilium-config` entries the real charts render from them, per chart version.
 *
 * RENDERED below is copied from real renders: helm 3.21.4, kube 1.26.6,
 *   helm template cilium cilium/cilium --version <v> --namespace kube-system \
 *     --set kubeProxyReplacement=<disabled on 1.13, false after> [--set <switch>]
 * from cilium/charts cilium-1.13.4.tgz, cilium-1.16.19.tgz and cilium-1.20.0.tgz: each row holds the
 * `cilium-config` entries that differ between the render with `--set <switch>` and the one without.
 */
import test from "ava";

import { parseLabConfig, type LabConfig } from "../../infra/config";
import {
  ciliumDatapath,
  ciliumValues,
  CiliumValuesError,
  switchConfigMap,
  parseCiliumVersion,
} from "../../infra/cilium/values";
import { modernNativeDatapath } from "./expected-datapath";

const SERVER = "192.168.150.11";

/** One `--set` (pairs joined by commas) and the entries it adds to the render, on the versions listed. */
type Row = { readonly versions: readonly string[]; readonly set: string; readonly entries: Record<string, string> };

const RENDERED_VERSIONS = ["1.13.4", "1.16.19", "1.20.0"];

/**
 * The rows of a bandwidth manager `--set`: 1.13.4 and 1.16.19 render `entries`, 1.20.0 renders them
 * plus enable-bbr-hostns-only "false".
 */
function bandwidthManagerRows(set: string, entries: Record<string, string>): Row[] {
  return [
    { versions: ["1.13.4", "1.16.19"], set, entries },
    { versions: ["1.20.0"], set, entries: { ...entries, "enable-bbr-hostns-only": "false" } },
  ];
}

/** Rows with more `--set` pairs come after the rows they refine (bbr after enabled). */
const RENDERED: readonly Row[] = [
  { versions: RENDERED_VERSIONS, set: "bpf.masquerade=true", entries: { "enable-bpf-masquerade": "true" } },
  { versions: RENDERED_VERSIONS, set: "bpf.hostLegacyRouting=true", entries: { "enable-host-legacy-routing": "true" } },
  ...bandwidthManagerRows("bandwidthManager.enabled=true", {
    "enable-bandwidth-manager": "true",
    "enable-bbr": "false",
  }),
  ...bandwidthManagerRows("bandwidthManager.enabled=true,bandwidthManager.bbr=true", {
    "enable-bandwidth-manager": "true",
    "enable-bbr": "true",
  }),
  // 1.13.4 renders nothing for it (the chart has no such value); 1.16.19 and 1.20.0 change the base
  // render's enable-ipv4-big-tcp: "false".
  { versions: ["1.13.4"], set: "enableIPv4BIGTCP=true", entries: {} },
  { versions: ["1.16.19", "1.20.0"], set: "enableIPv4BIGTCP=true", entries: { "enable-ipv4-big-tcp": "true" } },
];

/** `a=true,b=false` as pairs. */
function setArgs(set: string): [string, boolean][] {
  return set.split(",").map((kv) => {
    const [k = "", v] = kv.split("=");
    return [k, v === "true"];
  });
}

/** The defaults with `switches` set directly, past the config parser's feature rules (which depend on kernel and NIC). */
function config(switches: Partial<LabConfig> = {}, raw: Record<string, string> = {}): LabConfig {
  return { ...parseLabConfig(raw).config, ...switches };
}

/** Leaf `--set` pairs of a values object. */
function setPairs(values: object, prefix = ""): [string, unknown][] {
  return Object.entries(values).flatMap(([k, v]): [string, unknown][] => {
    const p = prefix === "" ? k : `${prefix}.${k}`;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? setPairs(v as object, p) : [[p, v]];
  });
}

/** What the real chart renders for the `--set` pairs `values` holds: the rows they contain, in table order. */
function renderedFor(version: string, values: object): Record<string, string> {
  const pairs = new Map(setPairs(values));
  const rows = RENDERED.filter(
    (r) => r.versions.includes(version) && setArgs(r.set).every(([k, v]) => pairs.get(k) === v),
  );
  return Object.assign({}, ...rows.map((r) => r.entries)) as Record<string, string>;
}

/** Each switch alone, and the combinations the series uses; hostRouting bpf is below (its `false` is not among the renders). */
const SWITCHES: [string, Partial<LabConfig>][] = [
  ["bpfMasquerade", { bpfMasquerade: true }],
  [
    "kube-proxy replacement + BPF masquerading, legacy host routing",
    { kubeProxyReplacement: true, bpfMasquerade: true },
  ],
  ["bandwidthManager on", { bandwidthManager: "on" }],
  ["bandwidthManager bbr", { bandwidthManager: "bbr" }],
  [
    "everything at once, legacy host routing",
    { kubeProxyReplacement: true, bpfMasquerade: true, bandwidthManager: "bbr", ipv4BigTcp: true },
  ],
];

for (const version of RENDERED_VERSIONS) {
  for (const [name, switches] of SWITCHES) {
    if (version === "1.13.4" && switches.ipv4BigTcp === true) {
      continue;
    }
    test(`${version}, ${name}: the expected cilium-config entries are the real chart's render of the values sent`, (t) => {
      const c = config(switches);
      const values = ciliumValues(c, version, SERVER);
      t.deepEqual(switchConfigMap(c, parseCiliumVersion(version)), renderedFor(version, values));
      t.like(ciliumDatapath(c, version).configMap, renderedFor(version, values));
    });
  }
  test(`${version}, ipv4BigTcp: the render of enableIPv4BIGTCP=true is what the lab expects, or refused where it renders nothing`, (t) => {
    const c = config({ ipv4BigTcp: true });
    if (version === "1.13.4") {
      t.deepEqual(renderedFor(version, { enableIPv4BIGTCP: true }), {});
      const error = t.throws(() => ciliumValues(c, version, SERVER), { instanceOf: CiliumValuesError });
      t.is(
        error?.message,
        "ipv4BigTcp needs Cilium 1.14 or later: chart 1.13.4 has no enableIPv4BIGTCP value (1.13 knows only IPv6 BIG TCP). " +
          "Set cilium-lab:ipv4BigTcp false, or cilium-lab:ciliumVersion to 1.14.0 or later.",
      );
      t.throws(() => ciliumDatapath(c, version), { instanceOf: CiliumValuesError });
    } else {
      t.deepEqual(switchConfigMap(c, parseCiliumVersion(version)), { "enable-ipv4-big-tcp": "true" });
    }
  });
}

// The values per version × switch, literal.

const FIVE = ["1.13.4", "1.14.19", "1.16.19", "1.18.12", "1.20.0"];
const SWITCH_VALUES: [string, Partial<LabConfig>, object][] = [
  ["bpfMasquerade", { bpfMasquerade: true }, { bpf: { masquerade: true } }],
  [
    "hostRouting bpf",
    { kubeProxyReplacement: true, bpfMasquerade: true, hostRouting: "bpf" },
    { bpf: { masquerade: true, hostLegacyRouting: false } },
  ],
  [
    "hostRouting legacy with kube-proxy replacement and BPF masquerading",
    { kubeProxyReplacement: true, bpfMasquerade: true, hostRouting: "legacy" },
    { bpf: { masquerade: true, hostLegacyRouting: true } },
  ],
  ["hostRouting legacy with kube-proxy replacement, iptables masquerading", { kubeProxyReplacement: true }, {}],
  ["bandwidthManager on", { bandwidthManager: "on" }, { bandwidthManager: { enabled: true, bbr: false } }],
  ["bandwidthManager bbr", { bandwidthManager: "bbr" }, { bandwidthManager: { enabled: true, bbr: true } }],
  ["ipv4BigTcp", { ipv4BigTcp: true }, { enableIPv4BIGTCP: true }],
];
const SWITCH_KEYS = ["bpf", "bandwidthManager", "enableIPv4BIGTCP"];

for (const version of FIVE) {
  for (const [name, switches, expected] of SWITCH_VALUES) {
    if (version === "1.13.4" && switches.ipv4BigTcp === true) {
      continue;
    }
    test(`${version}, ${name}: the switch sends ${JSON.stringify(expected)} and changes no other value`, (t) => {
      const values = ciliumValues(config(switches), version, SERVER) as Record<string, unknown>;
      const without = ciliumValues(
        config({ kubeProxyReplacement: switches.kubeProxyReplacement ?? false }),
        version,
        SERVER,
      );
      t.deepEqual(Object.fromEntries(SWITCH_KEYS.filter((k) => k in values).map((k) => [k, values[k]])), expected);
      t.deepEqual(Object.fromEntries(Object.entries(values).filter(([k]) => !SWITCH_KEYS.includes(k))), without);
    });
  }
  test(`${version}: at the article's settings no switch sends a value`, (t) => {
    for (const kubeProxyReplacement of [false, true]) {
      const values = ciliumValues(config({ kubeProxyReplacement }), version, SERVER);
      t.deepEqual(
        SWITCH_KEYS.filter((k) => k in values),
        [],
      );
    }
  });
}

test('hostRouting bpf expects enable-host-legacy-routing "false": the chart quotes any non-null bpf.hostLegacyRouting', (t) => {
  // templates/cilium-configmap.yaml, 1.13 era and current alike:
  //   {{- if (not (kindIs "invalid" .Values.bpf.hostLegacyRouting)) }}
  //     enable-host-legacy-routing: {{ .Values.bpf.hostLegacyRouting | quote }}
  const c = config({ kubeProxyReplacement: true, bpfMasquerade: true, hostRouting: "bpf" });
  for (const version of FIVE) {
    t.deepEqual(switchConfigMap(c, parseCiliumVersion(version)), {
      "enable-bpf-masquerade": "true",
      "enable-host-legacy-routing": "false",
    });
  }
});

test("the lab never sends MTU: with networkMtu 9000 the values have no MTU, the ConfigMap no mtu entry, and the datapath expects the network's 9000", (t) => {
  // The render with `--set MTU=9000` would add mtu: "9000" (1.13.4, 1.16.19 and 1.20.0 alike).
  const c = config({ networkMtu: 9000 });
  for (const version of FIVE) {
    const pairs = setPairs(ciliumValues(c, version, SERVER)).map(([k]) => k);
    t.deepEqual(
      pairs.filter((k) => k === "MTU" || k.startsWith("enableIPv6BIGTCP")),
      [],
    );
    const datapath = ciliumDatapath(c, version);
    t.false("mtu" in datapath.configMap);
    t.is(datapath.networkMtu, 9000);
  }
});

test("the datapath of the series' full native setup on 1.20.0 expects every switch's entry beside the routing keys", (t) => {
  const c = config(
    { kubeProxyReplacement: true, bpfMasquerade: true, hostRouting: "bpf", bandwidthManager: "bbr", ipv4BigTcp: true },
    { routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" },
  );
  t.deepEqual(
    ciliumDatapath(c, "1.20.0"),
    modernNativeDatapath("10.0.0.0/22", {
      "kube-proxy-replacement": "true",
      "enable-bpf-masquerade": "true",
      "enable-host-legacy-routing": "false",
      "enable-bandwidth-manager": "true",
      "enable-bbr": "true",
      "enable-bbr-hostns-only": "false",
      "enable-ipv4-big-tcp": "true",
    }),
  );
});

test("the same on 1.13.4 (without IPv4 BIG TCP) speaks 1.13's words and has no enable-bbr-hostns-only", (t) => {
  const c = config(
    { kubeProxyReplacement: true, bpfMasquerade: true, hostRouting: "legacy", bandwidthManager: "on" },
    { routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" },
  );
  t.deepEqual(ciliumDatapath(c, "1.13.4").configMap, {
    tunnel: "disabled",
    "auto-direct-node-routes": "true",
    "ipv4-native-routing-cidr": "10.0.0.0/22",
    "kube-proxy-replacement": "strict",
    "enable-bpf-masquerade": "true",
    "enable-host-legacy-routing": "true",
    "enable-bandwidth-manager": "true",
    "enable-bbr": "false",
  });
});
