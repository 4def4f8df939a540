import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import YAML from "yaml";

import { describeKey, KEYS, KEY_NAMES, parseLabConfig, type KeySpec, type LabConfig } from "../../infra/config";
import { withPulumiConfig } from "../../scripts/dev/config-table";
import { REPO_ROOT, readProjectFile, readStackConfig } from "../support/stack-files";

test("Pulumi.yaml declares exactly the keys the parser knows, with the same types, defaults and descriptions", (t) => {
  const declared = readProjectFile().config;
  t.deepEqual(Object.keys(declared), KEY_NAMES);
  for (const key of KEY_NAMES) {
    t.deepEqual(
      declared[key],
      { type: KEYS[key].type, description: describeKey(key), default: KEYS[key].default },
      key,
    );
  }
});

test("Pulumi.yaml's config section is the one generated from the key table, byte for byte", (t) => {
  const text = readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8");
  t.is(text, withPulumiConfig(text), "regenerate it with: npx tsx scripts/dev/config-table.ts --write");
});

test("every description states the range or the values the parser accepts", (t) => {
  for (const key of KEY_NAMES) {
    const spec: KeySpec = KEYS[key];
    const described = describeKey(key);
    t.notRegex(described, /[{}]/, key);
    for (const value of spec.allowed ?? []) {
      t.true(described.includes(value), `${key}: ${value}`);
    }
    if (spec.max !== undefined) {
      t.true(described.includes(String(spec.max)), `${key}: max ${spec.max}`);
    }
    if (spec.min !== undefined && key !== "podCidrMaskSize") {
      t.true(described.includes(String(spec.min)), `${key}: min ${spec.min}`);
    }
  }
});

test("Pulumi.yaml runs infra/index.ts with TypeScript and keeps stack files in stacks/", (t) => {
  const project = readProjectFile();
  t.is(project.name, "cilium-lab");
  t.deepEqual(project.runtime, { name: "nodejs", options: { typescript: true, packagemanager: "npm" } });
  t.is(project.main, "infra/index.ts");
  t.is(project.stackConfigDir, "stacks");
});

/** The shipped stacks: title, stack, what its parsed config holds besides the article's versions, its warnings. */
const shipped: [string, string, Partial<LabConfig>, number][] = [
  [
    "the vxlan stack is the article's VXLAN tunnel on 192.168.150.0/24",
    "vxlan",
    {
      routingMode: "vxlan",
      autoDirectNodeRoutes: false,
      networkCidr: "192.168.150.0/24",
      nativeRoutingCidr: "10.0.0.0/16",
    },
    0,
  ],
  [
    "the native stack is the article's native routing with auto direct node routes and 10.0.0.0/22",
    "native",
    {
      routingMode: "native",
      autoDirectNodeRoutes: true,
      nativeRoutingCidr: "10.0.0.0/22",
      networkCidr: "192.168.151.0/24",
      podCidr: "10.0.0.0/16",
    },
    1,
  ],
  [
    "the geneve stack is a Geneve tunnel on its own network",
    "geneve",
    { routingMode: "geneve", autoDirectNodeRoutes: false, networkCidr: "192.168.152.0/24" },
    0,
  ],
];
for (const [title, stack, expected, warningCount] of shipped) {
  test(title, (t) => {
    const { config, warnings } = parseLabConfig(readStackConfig(stack));
    t.like(config, { ...expected, ciliumVersion: "1.13.4", k3sVersion: "v1.26.6+k3s1", nodeCount: 3 });
    t.is(warnings.length, warningCount, stack);
  });
}

test("each stack file sets exactly the keys it means to and disables the default Kubernetes provider", (t) => {
  t.deepEqual(readStackConfig("vxlan"), { routingMode: "vxlan", networkCidr: "192.168.150.0/24" });
  t.deepEqual(readStackConfig("native"), {
    routingMode: "native",
    autoDirectNodeRoutes: "true",
    nativeRoutingCidr: "10.0.0.0/22",
    networkCidr: "192.168.151.0/24",
  });
  t.deepEqual(readStackConfig("geneve"), { routingMode: "geneve", networkCidr: "192.168.152.0/24" });
  for (const stack of ["vxlan", "native", "geneve"]) {
    const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as {
      config: Record<string, unknown>;
    };
    t.deepEqual(doc.config["pulumi:disable-default-providers"], ["kubernetes"], stack);
  }
});
