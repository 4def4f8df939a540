/**
 * The Cilium component under Pulumi mocks: the Helm release's exact inputs and options for the
 * committed stack files, and what changes (only the release's values) when the stack's routing
 * mode or chart version changes. Mocks prove what the program asks for, not what Helm or the engine
 * does with it: `pulumi preview` against the real engine is the toolchain tests' job.
 */
import test from "ava";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type { Cilium as CiliumClass } from "../../infra/cilium/cilium";
import { ciliumDatapath } from "../../infra/cilium/values";
import { parseLabConfig, type LabConfig } from "../../infra/config";
import { planLab } from "../../infra/plan";
import { StandIn, echoMocks, promiseOf, recordMocks, type Registration } from "../support/pulumi-mocks";
import { readStackConfig } from "../support/stack-files";

/** The k3s layer's stand-in: the cluster whose kubeconfig (unknown in a first preview) feeds the k8s Provider. */
class K3sStandIn extends pulumi.CustomResource {
  declare readonly kubeconfig: pulumi.Output<string>;
  constructor(name: string) {
    super("lab:test:K3sCluster", name, { kubeconfig: undefined });
  }
}

interface Built {
  readonly registrations: Registration[];
  readonly cilium: CiliumClass;
  readonly urns: { readonly vm: string; readonly k3s: string; readonly provider: string; readonly cilium: string };
}

/**
 * Builds the Cilium component of stack `stack` with `config` on fresh mocks, the way infra/index.ts
 * does: a k8s Provider from the k3s layer's kubeconfig, the server VM for `deletedWith`, the k3s
 * layer for `dependsOn`. Returns every registration with its inputs and options.
 */
async function build(stack: string, config: LabConfig, preview = false): Promise<Built> {
  // In preview the engine knows neither the kubeconfig nor the release's status yet.
  function mockState(type: string, given: Record<string, unknown>): Record<string, unknown> {
    if (preview) {
      return {};
    }
    if (type === "lab:test:K3sCluster") {
      return { kubeconfig: "apiVersion: v1\nkind: Config\n" };
    }
    if (type === "kubernetes:helm.sh/v3:Release") {
      const status = {
        name: "cilium",
        namespace: "kube-system",
        chart: "cilium",
        revision: 1,
        status: "deployed",
        version: config.ciliumVersion,
        appVersion: config.ciliumVersion,
      };
      return { ...given, status };
    }
    return given;
  }
  const monitor = await recordMocks(
    echoMocks((a) => mockState(a.type, a.inputs as Record<string, unknown>)),
    stack,
    preview,
  );

  const { Cilium } = await import("../../infra/cilium/cilium");
  const server = planLab(config, stack).nodes[0];
  if (server === undefined) {
    throw new Error("no server node planned");
  }
  const vm = new StandIn("lab:test:ServerVm", "node-1");
  const k3s = new K3sStandIn("k3s");
  const provider = new k8s.Provider("lab-k8s", { kubeconfig: pulumi.secret(k3s.kubeconfig) });
  const cilium = new Cilium("cilium", { config, serverIp: server.ip }, { provider, deletedWith: vm, dependsOn: [k3s] });

  const [vmUrn, k3sUrn, providerUrn, ciliumUrn] = await Promise.all([
    promiseOf(vm.urn),
    promiseOf(k3s.urn),
    promiseOf(provider.urn),
    promiseOf(cilium.urn),
    promiseOf(cilium.release.urn),
  ]);
  await monitor.outputsRegistered(ciliumUrn);
  return {
    registrations: monitor.registrations,
    cilium,
    urns: { vm: vmUrn, k3s: k3sUrn, provider: providerUrn, cilium: ciliumUrn },
  };
}

function stackConfig(stack: string, overrides: Record<string, string> = {}): LabConfig {
  return parseLabConfig({ ...readStackConfig(stack), ...overrides }).config;
}

function release(b: Built): Registration {
  const r = b.registrations.filter((x) => x.type === "kubernetes:helm.sh/v3:Release");
  if (r.length !== 1 || r[0] === undefined) {
    throw new Error(`expected exactly one Release, got ${r.length}`);
  }
  return r[0];
}

const IPAM = {
  mode: "cluster-pool",
  operator: { clusterPoolIPv4PodCIDRList: ["10.0.0.0/16"], clusterPoolIPv4MaskSize: 24 },
};

/**
 * The release's inputs with the values every 1.13.4 stack shares, then `values`: only the values
 * differ between the stacks.
 */
function expectedRelease(values: Record<string, unknown>): Record<string, unknown> {
  return {
    name: "cilium",
    namespace: "kube-system",
    chart: "cilium",
    version: "1.13.4",
    repositoryOpts: { repo: "https://helm.cilium.io" },
    values: {
      k8sServicePort: 6443,
      operator: { replicas: 1, rollOutPods: true },
      hubble: { relay: { enabled: true }, ui: { enabled: true } },
      ipam: IPAM,
      kubeProxyReplacement: "disabled",
      rollOutCiliumPods: true,
      ...values,
    },
    resetValues: true,
    skipAwait: false,
    timeout: 600,
    atomic: false,
    cleanupOnFail: false,
    maxHistory: 5,
    compat: "true", // added by @pulumi/kubernetes' Release itself (helm/v3/release.js)
  };
}

test.serial(
  "the vxlan stack registers one Cilium component and one Helm release cilium in kube-system with exact inputs",
  async (t) => {
    const b = await build("vxlan", stackConfig("vxlan"));
    t.deepEqual(
      b.registrations.map((r) => [r.type, r.name]),
      [
        ["lab:test:ServerVm", "node-1"],
        ["lab:test:K3sCluster", "k3s"],
        ["pulumi:providers:kubernetes", "lab-k8s"],
        ["lab:cilium:Cilium", "cilium"],
        ["kubernetes:helm.sh/v3:Release", "cilium-release"],
      ],
    );
    t.deepEqual(release(b).inputs, expectedRelease({ k8sServiceHost: "192.168.150.11", tunnel: "vxlan" }));
  },
);

test.serial(
  "the native stack's release differs from vxlan only in values: the article's tunnel disabled, auto direct routes and 10.0.0.0/22",
  async (t) => {
    const b = await build("native", stackConfig("native"));
    t.deepEqual(
      release(b).inputs,
      expectedRelease({
        k8sServiceHost: "192.168.151.11",
        tunnel: "disabled",
        autoDirectNodeRoutes: true,
        ipv4NativeRoutingCIDR: "10.0.0.0/22",
      }),
    );
  },
);

test.serial(
  "the release uses the explicit provider, is a child of the component, is deleted with the server VM, waits for k3s and is deleted before it is replaced",
  async (t) => {
    const b = await build("vxlan", stackConfig("vxlan"));
    const r = release(b);
    t.is(r.parent, b.urns.cilium);
    t.is(r.provider, `${b.urns.provider}::lab-k8s-id`);
    t.is(r.deletedWith, b.urns.vm);
    t.deepEqual(r.dependencies, [b.urns.k3s]);
    t.true(r.deleteBeforeReplace);
    t.is(b.urns.cilium, "urn:pulumi:vxlan::cilium-lab::lab:cilium:Cilium::cilium");
  },
);

test.serial(
  "the component exposes the values, datapath evidence, digest and Helm status verification needs",
  async (t) => {
    const b = await build("native", stackConfig("native"));
    t.is(b.cilium.routingMode, "native");
    t.is(b.cilium.ciliumVersion, "1.13.4");
    t.deepEqual(b.cilium.values, release(b).inputs.values);
    // what ciliumDatapath computes for the stack (its content: values.test.ts).
    t.deepEqual(b.cilium.datapath, ciliumDatapath(stackConfig("native"), "1.13.4"));
    t.is(b.cilium.datapath.routingMode, "native");
    t.regex(b.cilium.digest, /^sha256:[0-9a-f]{64}$/);
    t.like(await promiseOf(b.cilium.status), { revision: 1, status: "deployed", version: "1.13.4" });
  },
);

/** Names, types, parents, providers and options of every registration, and the release's inputs without values. */
function shape(b: Built): unknown {
  return b.registrations.map((r) => {
    // `raw` is `inputs` as sent (secrets wrapped): left out with them.
    const options = Object.fromEntries(Object.entries(r).filter(([k]) => k !== "inputs" && k !== "raw"));
    const rest = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => k !== "values"));
    return { ...options, inputs: r.type === "kubernetes:helm.sh/v3:Release" ? rest : r.inputs };
  });
}

test.serial(
  "switching a stack from vxlan to native changes only the release's values: same names, types, options and other inputs",
  async (t) => {
    const before = await build("vxlan", stackConfig("vxlan"));
    const after = await build("vxlan", stackConfig("vxlan", { routingMode: "native" }));
    t.deepEqual(shape(after), shape(before));
    const valuesBefore = release(before).inputs.values as Record<string, unknown>;
    const valuesAfter = release(after).inputs.values as Record<string, unknown>;
    t.deepEqual(valuesAfter, {
      ...valuesBefore,
      tunnel: "disabled",
      autoDirectNodeRoutes: true,
      ipv4NativeRoutingCIDR: "10.0.0.0/16",
    });
    t.not(after.cilium.digest, before.cilium.digest);
  },
);

test.serial(
  "upgrading a stack from chart 1.13.4 to 1.20.0 changes only version and values, and carries no 1.13 key",
  async (t) => {
    const before = await build("native", stackConfig("native"));
    const after = await build("native", stackConfig("native", { ciliumVersion: "1.20.0" }));
    const strip = (b: Built): unknown =>
      (shape(b) as { inputs: Record<string, unknown> }[]).map((r) => ({
        ...r,
        inputs: { ...r.inputs, version: undefined },
      }));
    t.deepEqual(strip(after), strip(before));
    t.is(release(after).inputs.version, "1.20.0");
    t.is(release(after).inputs.resetValues, true);
    t.false("reuseValues" in release(after).inputs);
    const values = release(after).inputs.values as Record<string, unknown>;
    t.false("tunnel" in values);
    t.deepEqual(values.ipam, IPAM);
    t.like(values, {
      routingMode: "native",
      autoDirectNodeRoutes: true,
      ipv4NativeRoutingCIDR: "10.0.0.0/22",
      kubeProxyReplacement: false,
    });
  },
);

test.serial("a local chart goes to Helm as an absolute path without version or repository", async (t) => {
  const b = await build("vxlan", stackConfig("vxlan", { ciliumChart: "./charts/cilium-1.13.4.tgz" }));
  const inputs = release(b).inputs;
  t.is(inputs.chart, path.resolve("charts/cilium-1.13.4.tgz"));
  t.false("version" in inputs);
  t.false("repositoryOpts" in inputs);
});

test.serial("under TCG (accelerator qemu) Helm waits 1800 s", async (t) => {
  const b = await build("geneve", stackConfig("geneve", { accelerator: "qemu" }));
  t.like(release(b).inputs, { timeout: 1800, values: { routingMode: undefined, tunnel: "geneve" } });
});

test.serial(
  "in a first preview, with the kubeconfig and Helm status unknown, the release is registered with its full known values",
  async (t) => {
    const b = await build("native", stackConfig("native"), true);
    t.like(release(b).inputs, {
      name: "cilium",
      namespace: "kube-system",
      chart: "cilium",
      version: "1.13.4",
      values: { tunnel: "disabled", ipv4NativeRoutingCIDR: "10.0.0.0/22" },
    });
    t.is(b.cilium.routingMode, "native");
    t.regex(b.cilium.digest, /^sha256:/);
  },
);

test.serial("without a Kubernetes provider the component refuses to build, naming the option to pass", async (t) => {
  await recordMocks(echoMocks(), "vxlan");
  const { Cilium } = await import("../../infra/cilium/cilium");
  const error = t.throws(() => new Cilium("cilium", { config: stackConfig("vxlan"), serverIp: "192.168.150.11" }));
  t.true(error instanceof pulumi.ResourceError);
  t.is(
    error?.message,
    'Cilium "cilium" needs the lab cluster\'s Kubernetes provider: pass { provider: k8sProvider } in its options. Without it the release would go to whatever cluster ~/.kube/config points at.',
  );
});
