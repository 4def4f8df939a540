import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import { extractHelmKeys, formatKeyFile, parseKeyFile } from "../../scripts/dev/extract-helm-keys";

const VALUES = `# -- Roll out agents
rollOutCiliumPods: false
hubble:
  relay:
    enabled: false
  nodeSelector:
    kubernetes.io/os: linux
ipam:
  operator:
    clusterPoolIPv4PodCIDRList: []
tolerations:
- operator: Exists
# -- Configure the kube-proxy replacement
#kubeProxyReplacement: "disabled"
  # not a top-level key: indented
  #nested: true
# rollOutCiliumPods: true
`;

test("every map key is listed with its children; lists and scalars are leaves; dots in keys are escaped as in --set", (t) => {
  t.deepEqual(extractHelmKeys(VALUES), [
    { path: "hubble" },
    { path: "hubble.nodeSelector" },
    { path: "hubble.nodeSelector.kubernetes\\.io/os" },
    { path: "hubble.relay" },
    { path: "hubble.relay.enabled" },
    { path: "ipam" },
    { path: "ipam.operator" },
    { path: "ipam.operator.clusterPoolIPv4PodCIDRList" },
    {
      path: "kubeProxyReplacement",
      note: 'commented out: only in a comment at values.yaml l.14 (#kubeProxyReplacement: "disabled"); no chart default',
    },
    { path: "rollOutCiliumPods" },
    { path: "tolerations" },
  ]);
});

test("the key file names its source and checksum and reads back to the same keys and notes", (t) => {
  const text = formatKeyFile(VALUES, "example-chart-1.0.0.tgz → values.yaml");
  t.true(text.includes("# Source: example-chart-1.0.0.tgz → values.yaml\n"));
  t.regex(text, /\n# Size: \d+ bytes; sha256: [0-9a-f]{64}\n/);
  const keys = parseKeyFile(text);
  t.deepEqual(
    [...keys.keys()],
    extractHelmKeys(VALUES).map((k) => k.path),
  );
  t.is(keys.get("hubble.relay.enabled"), "");
  t.is(
    keys.get("kubeProxyReplacement"),
    'commented out: only in a comment at values.yaml l.14 (#kubeProxyReplacement: "disabled"); no chart default',
  );
});

test("a values file that is not a mapping is refused", (t) => {
  t.throws(() => extractHelmKeys("- a\n- b\n"), { message: "values.yaml is not a YAML mapping at the top level" });
});

const COMMITTED: [string, string, string, number][] = [
  ["1.13.4", "cilium/charts@89324fa", "5b8594b7bd61fe5b83e92f95230a0b1c9409be50235c62b2d76bec4f0f140ad6", 811],
  ["1.14.19", "cilium/charts@009b5e9", "a780314a222c1b238547573d0f832c50d20b6d79b92f3551b5242ffb6a8a33b3", 1084],
  ["1.16.19", "cilium/charts@009b5e9", "d7133baed88c2660581a3ddee4e8d292e5b10e5620440fd089580c52dfae8224", 1218],
  ["1.18.12", "cilium/charts@009b5e9", "8be6251e71714fdbb19e38e8c55284098d624da97dc375ec8cb820e0e3b5e020", 1339],
  ["1.20.0", "cilium/charts@d5f3d1c", "6d5723809e788b33ab4adc9f53e4522df1a6f6f5254b4444b585ea8cb2d71c38", 1521],
];
for (const [version, commit, sha256, count] of COMMITTED) {
  test(`the committed ${version} key list names cilium-${version}.tgz's values.yaml, its sha256, and holds ${count} paths`, (t) => {
    const text = readFileSync(path.join(__dirname, "data", `cilium-${version}-keys.txt`), "utf8");
    t.true(text.includes(`# Source: ${commit} `) && text.includes(`:cilium-${version}.tgz → cilium/values.yaml`));
    t.true(text.includes(`sha256: ${sha256}\n`));
    t.is(parseKeyFile(text).size, count);
  });
}
