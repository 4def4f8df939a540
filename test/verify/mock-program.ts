/**
 * The Verification component under Pulumi mocks, built the way infra/index.ts builds it: a k8s
 * Provider, the Cilium layer's `datapath` and `digest`, SSH connections per node, `dependsOn` the
 * Cilium release and `deletedWith` the server VM. The mocks answer each remote command with what
 * the real script prints on a lab (collector documents shaped like a Cilium node's, see support.ts;
 * the iperf3 Job logs are real iperf3 documents, the netperf ones and the Hubble flows real captures
 * from test/verify/fixtures) and give k8s objects a uid. Every registration is recorded with its
 * inputs and options (test/support/pulumi-mocks.ts).
 */
import * as k8s from "@pulumi/kubernetes";
import type { ExecutionContext } from "ava";
import * as pulumi from "@pulumi/pulumi";

import { ciliumDatapath } from "../../infra/cilium/values";
import { parseLabConfig, type LabConfig } from "../../infra/config";
import { planLab } from "../../infra/plan";
import type { Verification as VerificationClass } from "../../infra/verify/verify";
import type { HubbleRelayFacts } from "../../infra/verify/evidence";
import { StandIn, echoMocks, promiseOf, recordMocks, type Registration } from "../support/pulumi-mocks";
import { readStackConfig } from "../support/stack-files";
import { fixture } from "./lab-evidence";
import {
  LAB,
  agentStatus113,
  ciliumNodeDoc,
  clusterStateDoc,
  loopbackIperf3,
  prerequisites,
  type LabNode,
} from "./support";

/** The stack config of `stack` with `overrides`, parsed as the program parses it. */
export function stackConfig(stack: string, overrides: Record<string, string> = {}): LabConfig {
  return parseLabConfig({ ...readStackConfig(stack), ...overrides }).config;
}

/** What the lab looks like to the mocked commands. */
export interface Scenario {
  /** Routing mode the nodes actually run (tunnel devices, routes, pod MTUs). */
  readonly nodesRun: "vxlan" | "geneve" | "native";
  /** cilium-config data. */
  readonly configMap: Record<string, string>;
  /** The iperf3 document every Job log returns. */
  readonly iperf3Log: string;
  /** Digest the Cilium stand-in reports. */
  readonly digest?: string;
  /** A node whose collector prints `brokenOutput` instead of its document. */
  readonly brokenNode?: string;
  readonly brokenOutput?: string;
  /** What each agent's status prints; default: a 1.13 agent of the article's starting list. */
  readonly agent?: (n: LabNode) => string;
  /** The `hubble-relay` Deployment; default: rolled out (1/1) when the config turns Hubble on, else absent. */
  readonly relay?: HubbleRelayFacts;
  /** What `hubble-flows` prints; default: the real capture of `nodesRun` (test/verify/fixtures/hubble-*.jsonl). */
  readonly flows?: string;
  /** The collectors' `iptables` field on every node (their iptables-save commands); default: none. */
  readonly iptables?: unknown;
}

/** The server pod's IP in the Hubble captures (test/verify/fixtures/hubble-*.jsonl). */
const CAPTURED_SERVER_IP = "10.0.1.23";

/** The real `hubble observe -o jsonpb` capture of `mode`, with the mocked server pod's IP. */
export function hubbleFlows(mode: "vxlan" | "geneve" | "native"): string {
  const file = {
    vxlan: "hubble-1.13-vxlan.jsonl",
    geneve: "hubble-1.16-geneve.jsonl",
    native: "hubble-1.20-native.jsonl",
  };
  return fixture(file[mode]).replaceAll(CAPTURED_SERVER_IP, SERVER_POD_IP);
}

/** What collect-cilium-state.sh prints for `scenario` (the relay's Deployment as the config deploys it, unless given). */
function clusterState(config: LabConfig, scenario: Scenario): string {
  const relay: HubbleRelayFacts = scenario.relay ?? {
    exists: config.hubble,
    desired: config.hubble ? 1 : 0,
    ready: config.hubble ? 1 : 0,
    rolloutError: null,
  };
  const agent = scenario.agent ?? ((n: LabNode) => agentStatus113(n, config.ciliumVersion));
  return clusterStateDoc(scenario.configMap, LAB, agent, "cilium", { ...relay });
}

/** The iperf3 server pod's IP in the mocked cluster (on node-2, inside its pod CIDR). */
export const SERVER_POD_IP = "10.0.1.77";

export interface Built {
  readonly verification: VerificationClass;
  readonly registrations: Registration[];
  readonly urns: {
    readonly vm: string;
    readonly release: string;
    readonly provider: string;
    readonly verification: string;
  };
}

/**
 * Builds a Verification named `verify` on fresh mocks for `config` and `scenario`. Resolves once
 * every child is registered when `waitForOutputs`; else right after construction (a refused
 * datapath never registers the component's outputs).
 */
export async function build(
  stack: string,
  config: LabConfig,
  scenario: Scenario,
  waitForOutputs = true,
): Promise<Built> {
  const commandOutput = (name: string): string => {
    if (name === "verify-servers-ready") {
      return JSON.stringify({
        pods: [
          { name: serverName("host"), podIP: "192.168.150.12", hostIP: "192.168.150.12", node: "node-2" },
          { name: serverName("pod"), podIP: SERVER_POD_IP, hostIP: "192.168.150.12", node: "node-2" },
        ],
      });
    }
    if (name === "verify-cilium-state") {
      return clusterState(config, scenario);
    }
    if (name === "verify-hubble-flows") {
      return scenario.flows ?? hubbleFlows(scenario.nodesRun);
    }
    const latency = /^verify-logs-(rr|crr)-/.exec(name);
    if (latency) {
      return fixture(latency[1] === "rr" ? "netperf-2.7.0-tcp_rr.txt" : "netperf-2.7.0-tcp_crr.txt");
    }
    const ev = /^verify-evidence-(node-\d)$/.exec(name);
    if (ev) {
      const node = LAB.find((n) => n.name === ev[1]);
      if (node === undefined) {
        throw new Error(`no lab node ${String(ev[1])}`);
      }
      if (node.name === scenario.brokenNode) {
        return scenario.brokenOutput ?? "";
      }
      const pods = node.name === "node-2" ? [{ netns: "cni-1111-server", ip: SERVER_POD_IP }] : undefined;
      const doc = ciliumNodeDoc(node, scenario.nodesRun, pods ? { pods } : {});
      return scenario.iptables === undefined
        ? doc
        : JSON.stringify({ ...(JSON.parse(doc) as object), iptables: scenario.iptables });
    }
    if (name.startsWith("verify-logs-")) {
      return scenario.iperf3Log;
    }
    throw new Error(`unexpected command ${name}`);
  };
  let serverName: (path: "host" | "pod") => string = () => "";
  const monitor = await recordMocks(
    echoMocks((a) => {
      const given = a.inputs as Record<string, unknown>;
      if (a.type === "command:remote:Command") {
        return { ...given, stdout: commandOutput(a.name), stderr: "" };
      }
      if (a.type.startsWith("kubernetes:") && a.type !== "pulumi:providers:kubernetes") {
        const metadata = (given.metadata ?? {}) as Record<string, unknown>;
        return { ...given, metadata: { ...metadata, uid: `${a.name}-uid` } };
      }
      return given;
    }),
    stack,
  );

  const { Verification } = await import("../../infra/verify/verify");
  const { serverPodName } = await import("../../infra/verify/jobs");
  const plan = planLab(config, stack);
  const vm = new StandIn("lab:test:ServerVm", "node-1");
  const release = new StandIn("lab:test:CiliumRelease", "cilium");
  const provider = new k8s.Provider("lab-k8s", { kubeconfig: pulumi.secret("apiVersion: v1\nkind: Config\n") });
  const nodes = plan.nodes.map((n) => ({
    name: n.name,
    ip: n.ip,
    connection: {
      host: n.ip,
      user: "cilium-lab",
      privateKey: pulumi.secret("PRIVATE KEY"),
      hostKey: `ssh-ed25519 AAAA${n.name}`,
    },
  }));
  const verification = new Verification(
    "verify",
    {
      config,
      nodes,
      server: nodes[0] as (typeof nodes)[number],
      cilium: { datapath: ciliumDatapath(config, config.ciliumVersion), digest: scenario.digest ?? "sha256:release-1" },
    },
    { provider, dependsOn: [release], deletedWith: vm },
  );
  serverName = (p) => serverPodName(p, verification.runKey);

  const [vmUrn, releaseUrn, providerUrn, verificationUrn] = await Promise.all([
    promiseOf(vm.urn),
    promiseOf(release.urn),
    promiseOf(provider.urn),
    promiseOf(verification.urn),
  ]);
  if (waitForOutputs) {
    await monitor.outputsRegistered(verificationUrn);
  } else {
    await new Promise((r) => setTimeout(r, 3000));
  }
  return {
    verification,
    registrations: monitor.registrations,
    urns: { vm: vmUrn, release: releaseUrn, provider: providerUrn, verification: verificationUrn },
  };
}

/**
 * The output `output` picks from `built`'s Verification (`throughput` or `latency`) once resolved,
 * after checking that its runs are the Jobs `jobs(runKey)`, every one in the order it ran.
 */
export async function exportedInOrder<T extends { readonly runs: readonly { readonly job: string }[] }>(
  t: ExecutionContext,
  built: Built,
  output: (v: VerificationClass) => pulumi.Output<T>,
  jobs: (key: string) => string[],
): Promise<T> {
  const o = await promiseOf(output(built.verification));
  t.deepEqual(
    o.runs.map((r) => r.job),
    jobs(built.verification.runKey),
  );
  return o;
}

/** cilium-config's routing entries of the article's VXLAN lab. */
export const VXLAN_CM = { tunnel: "vxlan", "kube-proxy-replacement": "disabled" };

/**
 * The vxlan stack file's lab with `overrides` in its config, built on nodes that run the article's
 * VXLAN datapath ({@link VXLAN_CM}), with `iperf3Log` as every iperf3 Job's log.
 */
export function buildVxlan(iperf3Log: string, overrides: Record<string, string> = {}): Promise<Built> {
  return build("vxlan", stackConfig("vxlan", overrides), { nodesRun: "vxlan", configMap: VXLAN_CM, iperf3Log });
}

/**
 * The vxlan stack file's lab, built, with a real one-second iperf3 document (loopback) as every
 * iperf3 Job's log; fails naming the missing tool (iperf3) when it cannot run.
 */
export async function vxlanLab(): Promise<{ readonly log: string; readonly built: Built }> {
  const problems = await prerequisites(false);
  if (problems.length > 0) {
    throw new Error(problems.join("; "));
  }
  const log = await loopbackIperf3(1);
  return { log, built: await buildVxlan(log) };
}
