/**
 * The stack configs the parser accepts: the defaults, every accepted value with the config it
 * gives (derived values resolved), and the warnings of configs that work but surprise. The refused
 * ones are in parse-refused.test.ts.
 */
import test from "ava";

import { KEYS, KEY_NAMES, parseLabConfig, type LabConfig } from "../../infra/config";
import { iperf3Settings } from "../../infra/verify/jobs";
import { IPERF3_IMAGE, NETPERF_IMAGE } from "../../infra/versions";

/** The config every stack gets when it sets nothing. */
const DEFAULTS: LabConfig = {
  routingMode: "vxlan",
  autoDirectNodeRoutes: false,
  podCidr: "10.0.0.0/16",
  podCidrMaskSize: 24,
  nativeRoutingCidr: "10.0.0.0/16",
  networkCidr: "192.168.150.0/24",
  nodeCount: 3,
  nodeCpus: 2,
  nodeMemoryMiB: 4096,
  nodeDiskGiB: 20,
  image: "ubuntu-23.04",
  imageUrl: "",
  imageSha256: "",
  accelerator: "kvm",
  libvirtUri: "qemu:///system",
  networkMode: "nat",
  bridge: "",
  gateway: "",
  dns: [],
  nodeHosts: [],
  bootTimeoutSeconds: 300,
  k3sVersion: "v1.26.6+k3s1",
  k3sAirgapDir: "",
  ciliumVersion: "1.13.4",
  ciliumChart: "",
  kubeProxyReplacement: false,
  hubble: true,
  bpfMasquerade: false,
  hostRouting: "legacy",
  bandwidthManager: "off",
  ipv4BigTcp: false,
  networkMtu: 1500,
  iperf3Image: IPERF3_IMAGE,
  iperf3Seconds: 10,
  iperf3Runs: 3,
  iperf3Streams: 1,
  iperf3OmitSeconds: 1,
  netperfImage: NETPERF_IMAGE,
  netperfSeconds: 10,
  sshAuthorizedKey: "",
};

const SHA = "a".repeat(64);
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnbV8Ry1lhYRkEoc7nD7JrTzq1WmQ3u4M5Yk1xRj0Zp user@host";

test("an empty stack config gives every key its default", (t) => {
  const { config, warnings } = parseLabConfig({});
  t.deepEqual(config, DEFAULTS);
  t.deepEqual(warnings, []);
});

test("the parsed config is deeply frozen", (t) => {
  const { config } = parseLabConfig({});
  t.true(Object.isFrozen(config));
  t.throws(() => {
    Object.assign(config, { nodeCount: 5 });
  });
});

test("every key's default in the parser equals the default it declares", (t) => {
  const { config } = parseLabConfig({});
  for (const key of KEY_NAMES) {
    const expected = KEYS[key].default;
    const derived: Partial<Record<string, unknown>> = {
      autoDirectNodeRoutes: false,
      nativeRoutingCidr: "10.0.0.0/16",
      iperf3Image: IPERF3_IMAGE,
      netperfImage: NETPERF_IMAGE,
      dns: [],
      nodeHosts: [],
    };
    t.deepEqual(config[key], key in derived ? derived[key] : expected, key);
  }
});

test("an empty iperf3Image means the pinned image, pinned by digest; any other value is used as given", (t) => {
  const S = iperf3Settings(parseLabConfig({ iperf3Image: "" }).config);
  t.deepEqual(S, { image: IPERF3_IMAGE, seconds: 10, omitSeconds: 1, streams: 1, runs: 3 });
  t.regex(IPERF3_IMAGE, /@sha256:[0-9a-f]{64}$/);
  t.is(
    iperf3Settings(parseLabConfig({ iperf3Image: "registry.lab/iperf3@sha256:" + "a".repeat(64) }).config).image,
    "registry.lab/iperf3@sha256:" + "a".repeat(64),
  );
});

const accepted: [string, Record<string, string>, Partial<LabConfig>][] = [
  ["routingMode geneve", { routingMode: "geneve" }, { routingMode: "geneve" }],
  [
    "routingMode native turns auto direct node routes on",
    { routingMode: "native" },
    { routingMode: "native", autoDirectNodeRoutes: true },
  ],
  ["autoDirectNodeRoutes false with a tunnel", { autoDirectNodeRoutes: "false" }, {}],
  [
    "a /20 pod pool with /26 blocks",
    { podCidr: "10.10.0.0/20", podCidrMaskSize: "26" },
    { podCidr: "10.10.0.0/20", podCidrMaskSize: 26, nativeRoutingCidr: "10.10.0.0/20" },
  ],
  [
    "nativeRoutingCidr covering the whole pool",
    { routingMode: "native", nativeRoutingCidr: "10.0.0.0/8" },
    { routingMode: "native", autoDirectNodeRoutes: true, nativeRoutingCidr: "10.0.0.0/8" },
  ],
  [
    "a /28 network with four nodes",
    { networkCidr: "192.168.7.16/28", nodeCount: "4" },
    { networkCidr: "192.168.7.16/28", nodeCount: 4 },
  ],
  [
    "a /16 network with nine nodes",
    { networkCidr: "172.20.0.0/16", nodeCount: "9" },
    { networkCidr: "172.20.0.0/16", nodeCount: 9 },
  ],
  ["two nodes", { nodeCount: "2" }, { nodeCount: 2 }],
  [
    "minimum VM sizes",
    { nodeCpus: "1", nodeMemoryMiB: "1024", nodeDiskGiB: "8" },
    { nodeCpus: 1, nodeMemoryMiB: 1024, nodeDiskGiB: 8 },
  ],
  ["ubuntu-24.04", { image: "ubuntu-24.04" }, { image: "ubuntu-24.04" }],
  ["ubuntu-26.04", { image: "ubuntu-26.04" }, { image: "ubuntu-26.04" }],
  [
    "a custom image by file:// URL, hash lower-cased",
    { image: "custom", imageUrl: "file:///var/tmp/img.qcow2", imageSha256: "A".repeat(64) },
    { image: "custom", imageUrl: "file:///var/tmp/img.qcow2", imageSha256: SHA },
  ],
  [
    "a custom image by https URL",
    { image: "custom", imageUrl: "https://mirror.example/img.qcow2", imageSha256: SHA },
    { image: "custom", imageUrl: "https://mirror.example/img.qcow2", imageSha256: SHA },
  ],
  [
    "a custom image by host path",
    { image: "custom", imageUrl: "/srv/img.qcow2", imageSha256: SHA },
    { image: "custom", imageUrl: "/srv/img.qcow2", imageSha256: SHA },
  ],
  [
    "a custom image by http URL (its hash proves it)",
    { image: "custom", imageUrl: "http://mirror.example/img.qcow2", imageSha256: SHA },
    { image: "custom", imageUrl: "http://mirror.example/img.qcow2", imageSha256: SHA },
  ],
  ["accelerator qemu", { accelerator: "qemu" }, { accelerator: "qemu" }],
  ["a TCG-sized boot timeout", { bootTimeoutSeconds: "1200" }, { bootTimeoutSeconds: 1200 }],
  ["a newer k3s", { k3sVersion: "v1.36.2+k3s1" }, { k3sVersion: "v1.36.2+k3s1" }],
  ["an air-gap directory", { k3sAirgapDir: "/srv/k3s" }, { k3sAirgapDir: "/srv/k3s" }],
  ["Cilium 1.20.0", { ciliumVersion: "1.20.0" }, { ciliumVersion: "1.20.0" }],
  ["Cilium 1.14.19", { ciliumVersion: "1.14.19" }, { ciliumVersion: "1.14.19" }],
  ["a local chart", { ciliumChart: "./charts/cilium-1.13.4.tgz" }, { ciliumChart: "./charts/cilium-1.13.4.tgz" }],
  [
    "kube-proxy replacement and no Hubble",
    { kubeProxyReplacement: "true", hubble: "false" },
    { kubeProxyReplacement: true, hubble: false },
  ],
  [
    "an iperf3 image by digest",
    { iperf3Image: `registry.local:5000/net/iperf3@sha256:${"b".repeat(64)}` },
    { iperf3Image: `registry.local:5000/net/iperf3@sha256:${"b".repeat(64)}` },
  ],
  [
    "iperf3 limits",
    { iperf3Seconds: "300", iperf3Runs: "20", iperf3Streams: "16", iperf3OmitSeconds: "0" },
    { iperf3Seconds: 300, iperf3Runs: 20, iperf3Streams: 16, iperf3OmitSeconds: 0 },
  ],
  ["an extra SSH key", { sshAuthorizedKey: KEY }, { sshAuthorizedKey: KEY }],
];
for (const [title, raw, changes] of accepted) {
  test(`accepts ${title}`, (t) => {
    t.deepEqual(parseLabConfig(raw).config, { ...DEFAULTS, ...changes });
  });
}

test("warns when the native-routing CIDR covers the nodes but not the whole pod pool", (t) => {
  const { warnings } = parseLabConfig({ routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" });
  t.deepEqual(warnings, [
    "cilium-lab:nativeRoutingCidr 10.0.0.0/22 covers the first 3 node blocks but not the whole podCidr 10.0.0.0/16: a node added later, or a re-allocated block, would be masqueraded between nodes.",
  ]);
});

test("warns that a native-routing CIDR is unused in tunnel mode", (t) => {
  const { warnings } = parseLabConfig({ nativeRoutingCidr: "10.0.0.0/22" });
  t.deepEqual(warnings, [
    "cilium-lab:nativeRoutingCidr is 10.0.0.0/22 but routingMode is vxlan: it is used only by native routing.",
  ]);
});

test("warns that an iperf3 image without a digest is not repeatable", (t) => {
  const { warnings } = parseLabConfig({ iperf3Image: "networkstatic/iperf3:latest" });
  t.deepEqual(warnings, [
    "cilium-lab:iperf3Image networkstatic/iperf3:latest is not pinned by digest: two runs may measure different binaries.",
  ]);
});

test("accepts native routing without auto direct node routes, warning that pods on different nodes cannot reach each other", (t) => {
  const { config, warnings } = parseLabConfig({ routingMode: "native", autoDirectNodeRoutes: "false" });
  t.deepEqual(config, { ...DEFAULTS, routingMode: "native", autoDirectNodeRoutes: false });
  t.deepEqual(warnings, [
    "cilium-lab:autoDirectNodeRoutes is false with routingMode native: nothing in this lab routes the other nodes' pod blocks (no BGP, no router), so pods on different nodes cannot reach each other.",
  ]);
});
