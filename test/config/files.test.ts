import test from "ava";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import YAML from "yaml";

import { KEYS, KEY_NAMES, parseLabConfig } from "../../infra/config";
import { REPO_ROOT, readProjectFile, readStackConfig } from "../support/stack-files";

test("Pulumi.yaml declares exactly the keys the parser knows, with the same types, defaults and descriptions", (t) => {
  const declared = readProjectFile().config;
  t.deepEqual(Object.keys(declared), KEY_NAMES);
  for (const key of KEY_NAMES) {
    t.deepEqual(
      declared[key],
      { type: KEYS[key].type, description: KEYS[key].description, default: KEYS[key].default },
      key,
    );
  }
});

test("Pulumi.yaml runs infra/index.ts with TypeScript and keeps stack files in stacks/", (t) => {
  const project = readProjectFile();
  t.is(project.name, "cilium-lab");
  t.deepEqual(project.runtime, { name: "nodejs", options: { typescript: true, packagemanager: "npm" } });
  t.is(project.main, "infra/index.ts");
  t.is(project.stackConfigDir, "stacks");
});

test("the vxlan stack is the article's VXLAN tunnel on 192.168.150.0/24", (t) => {
  const { config, warnings } = parseLabConfig(readStackConfig("vxlan"));
  t.like(config, {
    routingMode: "vxlan",
    autoDirectNodeRoutes: false,
    networkCidr: "192.168.150.0/24",
    nativeRoutingCidr: "10.0.0.0/16",
    ciliumVersion: "1.13.4",
    k3sVersion: "v1.26.6+k3s1",
    nodeCount: 3,
  });
  t.deepEqual(warnings, []);
});

test("the native stack is the article's native routing with auto direct node routes and 10.0.0.0/22", (t) => {
  const { config, warnings } = parseLabConfig(readStackConfig("native"));
  t.like(config, {
    routingMode: "native",
    autoDirectNodeRoutes: true,
    nativeRoutingCidr: "10.0.0.0/22",
    networkCidr: "192.168.151.0/24",
    podCidr: "10.0.0.0/16",
    ciliumVersion: "1.13.4",
  });
  t.is(warnings.length, 1);
});

test("the geneve stack is a Geneve tunnel on its own network", (t) => {
  const { config } = parseLabConfig(readStackConfig("geneve"));
  t.like(config, { routingMode: "geneve", autoDirectNodeRoutes: false, networkCidr: "192.168.152.0/24" });
});

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
