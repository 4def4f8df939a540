/**
 * A small Pulumi program for the real-engine orchestration tests: it reads the stack config with
 * the lab's own parser (so an invalid variant config fails exactly as in the real program), has a
 * "vms" resource that must survive every switch, a "k3s" resource whose input is
 * kubeProxyReplacement (k3s re-runs with or without --disable-kube-proxy: the k3s layer's role) and
 * a "cilium" resource whose inputs are the routing keys and the feature keys that differ from
 * their defaults (the Helm release's role), and exports outputs in the real program's shape
 * (`lab`, `versions`, `nodeHosts`, `datapath`, `throughput`, `features`, `latency`, a secret). All three are
 * dynamic resources whose create/update/delete append a line to a log file, so a test sees exactly
 * which operations the engine ran, in order, in another process.
 */
import * as fs from "node:fs";

import * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";

import { KEYS, loadLabConfig, type LabConfig } from "../../infra/config";
import { VARIANT_KEYS } from "../../scripts/compare/variants";
import { cannedDatapath, cannedFeatures, cannedLatency, cannedNodeHosts, cannedThroughput } from "./fake-lab";

/** Inputs of a recorded resource; `log` is the file operations are appended to. */
interface RecorderInputs {
  role: string;
  log: string;
  /** How long `update` takes, ms (to have an operation in flight when Ctrl-C comes). */
  delayMs: number;
  [key: string]: unknown;
}

/** `key=value …` of the inputs other than role/log/delayMs, sorted: what an operation line records. */
function describe(i: RecorderInputs): string {
  return Object.keys(i)
    .filter((k) => !["role", "log", "delayMs", "__provider"].includes(k))
    .sort()
    .map((k) => `${k}=${String(i[k])}`)
    .join(" ");
}

/** One line per operation: `<op> <role> key=value …` (keys other than role/log/delayMs, sorted). */
const recorder: pulumi.dynamic.ResourceProvider = {
  create(inputs: RecorderInputs) {
    fs.appendFileSync(inputs.log, `create ${inputs.role} ${describe(inputs)}\n`);
    return Promise.resolve({ id: inputs.role, outs: inputs });
  },
  diff(_id: string, olds: RecorderInputs, news: RecorderInputs) {
    // Both sides' keys: an input that is gone (a feature key back to its default) is a change too.
    const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].filter(
      (k) => !["__provider", "delayMs"].includes(k),
    );
    return Promise.resolve({ changes: keys.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) });
  },
  async update(_id: string, _olds: RecorderInputs, news: RecorderInputs) {
    await new Promise((r) => setTimeout(r, news.delayMs));
    fs.appendFileSync(news.log, `update ${news.role} ${describe(news)}\n`);
    return { outs: news };
  },
  delete(_id: string, props: RecorderInputs) {
    fs.appendFileSync(props.log, `delete ${props.role}\n`);
    return Promise.resolve();
  },
};

class Recorded extends pulumi.dynamic.Resource {
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super(recorder, name, props, opts, "compareTest", "Recorded");
  }
}

/** `bpfMasquerade=true hostRouting=bpf`: the Cilium feature keys that differ from their defaults, sorted. */
function ciliumFeatures(config: LabConfig): string {
  return VARIANT_KEYS.filter((k) => k !== "kubeProxyReplacement" && config[k] !== KEYS[k].default)
    .map((k) => `${k}=${String(config[k])}`)
    .sort()
    .join(" ");
}

/**
 * The program. `slowModes` lists routing modes whose "cilium" update takes `slowMs` (so a test can
 * press Ctrl-C while the engine is busy).
 */
export function engineTestProgram(log: string, slowModes: readonly string[] = [], slowMs = 0): PulumiFn {
  return () => {
    const config = loadLabConfig();
    const vms = new Recorded("vms", {
      role: "vms",
      log,
      delayMs: 0,
      nodeCount: config.nodeCount,
      nodeCpus: config.nodeCpus,
    });
    const k3s = new Recorded(
      "k3s",
      { role: "k3s", log, delayMs: 0, kubeProxyReplacement: config.kubeProxyReplacement },
      { dependsOn: [vms] },
    );
    const features = ciliumFeatures(config);
    const cilium = new Recorded(
      "cilium",
      {
        role: "cilium",
        log,
        delayMs: slowModes.includes(config.routingMode) ? slowMs : 0,
        routingMode: config.routingMode,
        autoDirectNodeRoutes: config.autoDirectNodeRoutes,
        nativeRoutingCidr: config.nativeRoutingCidr,
        // Only when set: a plain mode's Helm values are the article's.
        ...(features !== "" ? { features } : {}),
      },
      { dependsOn: [k3s] },
    );
    return Promise.resolve({
      lab: {
        routingMode: config.routingMode,
        autoDirectNodeRoutes: config.autoDirectNodeRoutes,
        networkCidr: config.networkCidr,
      },
      versions: { k3s: config.k3sVersion, cilium: config.ciliumVersion },
      nodeHosts: cannedNodeHosts(config, pulumi.getStack()),
      // Only after the "Helm release" is in place, as the real verification waits for Cilium.
      datapath: cilium.id.apply(() => cannedDatapath(config.routingMode)),
      throughput: cilium.id.apply(() => cannedThroughput(config.routingMode, config.accelerator)),
      features: cilium.id.apply(() => cannedFeatures(config)),
      latency: cilium.id.apply(() => cannedLatency(config.routingMode, config.accelerator)),
      kubeconfig: pulumi.secret("apiVersion: v1 # secret material"),
    });
  };
}
