// test-needs: k8s-toolchain (a real kube-apiserver and the kubernetes plugin)
/**
 * The series' switches through the real pipeline: the project's `Cilium` component (values for chart
 * 1.13.4) → the Kubernetes plugin's Helm → a real kube-apiserver (test/support/control-plane.ts). The
 * chart is the stand-in test/k8s/charts/cilium-shaped (the real chart cannot be fetched here), whose
 * `cilium-config` template copies the real 1.13.4 conditions for the switches (`kindIs "invalid"` for
 * the two bpf keys, `if bandwidthManager.enabled`). The ConfigMap the apiserver stores must hold every
 * entry `ciliumDatapath` expects, and none of the switches' entries once they are back at their
 * defaults. What the real charts render is table-tested in switches.test.ts.
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/cilium/switches.engine.test.ts`.
 */
import * as path from "node:path";

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import test from "ava";

import { Cilium } from "../../infra/cilium/cilium";
import { ciliumDatapath } from "../../infra/cilium/values";
import { parseLabConfig, type LabConfig } from "../../infra/config";
import { engineEnv, inlineStack, REPO_ROOT, tempDir } from "../engine/support";
import { controlPlaneForFile } from "../k8s/support/plane";
import { k8sPluginVersion } from "../support/control-plane";
import { readStackConfig } from "../support/stack-files";

const CHART = path.join(REPO_ROOT, "test", "k8s", "charts", "cilium-shaped");
const plane = controlPlaneForFile();

/** The entries only the switches render (test/k8s/charts/cilium-shaped/templates/cilium-config.yaml). */
const SWITCH_KEYS = ["enable-bpf-masquerade", "enable-host-legacy-routing", "enable-bandwidth-manager", "enable-bbr"];

function labConfig(switches: Partial<LabConfig>): LabConfig {
  const raw = { ...readStackConfig("vxlan"), ciliumChart: CHART, hubble: "false" };
  return { ...parseLabConfig(raw).config, ...switches };
}

test("with BPF masquerading, forced legacy host routing and BBR the stored cilium-config holds every expected entry; back at the defaults, none of the switches' entries", async (t) => {
  t.timeout(10 * 60_000);
  const cp = plane();
  let config = labConfig({ kubeProxyReplacement: true, bpfMasquerade: true, bandwidthManager: "bbr" });
  const program = (): Promise<Record<string, unknown>> => {
    const provider = new k8s.Provider(
      "k8s",
      { kubeconfig: pulumi.secret(cp.kubeconfig) },
      { version: k8sPluginVersion() },
    );
    const cilium = new Cilium("cilium", { config, serverIp: "10.0.0.10" }, { provider });
    return Promise.resolve({ status: cilium.status });
  };
  const stack = await inlineStack(t, {
    stackName: "switches",
    projectName: "cilium-switches",
    program,
    envVars: engineEnv(tempDir(t, "backend")),
  });
  const stored = async (): Promise<Record<string, string>> =>
    (
      (await cp.request("GET", "/api/v1/namespaces/kube-system/configmaps/cilium-config")).body as {
        data: Record<string, string>;
      }
    ).data;
  try {
    const up = await stack.up({ color: "never" });
    t.like(up.outputs.status?.value, { status: "deployed", revision: 1 });
    const expected = ciliumDatapath(config, "1.13.4").configMap;
    t.like(expected, {
      "enable-bpf-masquerade": "true",
      "enable-host-legacy-routing": "true",
      "enable-bandwidth-manager": "true",
      "enable-bbr": "true",
    });
    t.like(await stored(), expected);

    config = labConfig({});
    const back = await stack.up({ color: "never" });
    t.like(back.outputs.status?.value, { status: "deployed", revision: 2 });
    const data = await stored();
    t.like(data, ciliumDatapath(config, "1.13.4").configMap);
    t.deepEqual(
      SWITCH_KEYS.filter((k) => k in data),
      [],
    );
  } finally {
    await stack.destroy({ color: "never" });
  }
});
