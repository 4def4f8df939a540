/**
 * cilium-lab: the network lab of "Cilium Series 4 — Cilium Native Routing", from one `pulumi up`.
 *
 * The program reads like the article: config → network → nodes → k3s → Cilium → verification →
 * outputs. Each step is one folder of infra/; the plan of names and addresses they share is
 * infra/plan.ts.
 */
import * as os from "node:os";

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { Cilium, CiliumReady, RELEASE_NAME, RELEASE_NAMESPACE, readyTimeoutSeconds } from "./cilium";
import { loadLabConfig } from "./config";
import { assertHostInputs } from "./config/host-inputs";
import { K3sCluster } from "./k3s";
import { labPreflightRequests, preflightLibvirt } from "./libvirt/preflight";
import { LabNodes, cacheRoot, defaultPoolDir } from "./nodes";
import { planLab } from "./plan";
import { Verification } from "./verify";

const stack = pulumi.getStack();

// Config: the stack file chooses the routing mode and sizes; parsed once, before any resource.
const config = loadLabConfig();
// Host-side inputs the config names (air-gap directory, local chart, image file, gpgv and keyring),
// checked here because the engine keeps what was registered before a throw: a check inside a later
// layer would boot every VM first when `up` skips the preview (the Automation API always does).
// gpgv and the keyring only for `up`: a preview verifies no image.
assertHostInputs(config, { signatureTools: !pulumi.runtime.isDryRun() });

// Network: one L2 libvirt NAT network per stack with a fixed address per node. Its names and
// addresses are planned here, and the host checked (libvirt reachable, KVM, memory, free subnet and
// names) before anything exists; the nodes layer creates it.
const plan = planLab(config, stack);
const poolDir = defaultPoolDir(plan);
const cacheDir = cacheRoot(process.env, os.homedir());
for (const warning of preflightLibvirt(
  labPreflightRequests(config, plan, stack, { poolDir, imageCacheDir: cacheDir }),
)) {
  void pulumi.log.warn(warning);
}

// Nodes: the verified base image, uploaded once per libvirt host; NAT mode: the network; per host
// the stack's storage pool; one SSH-ready VM per node (node-1 the k3s server).
const lab = new LabNodes("lab", { config, plan, stack, cacheDir });

// k3s: the server on node-1, agents on the others, flannel and network policy off for Cilium.
const k3s = new K3sCluster("k3s", { config, nodes: lab.nodes, server: lab.server, token: lab.k3sToken });
// The only Kubernetes provider: the lab's own cluster, never an ambient ~/.kube/config.
// No `deleteUnreachable` input, on purpose: it would let any refresh while node-1 is merely down
// drop the cluster's objects from state. scripts/lab.sh sets PULUMI_K8S_DELETE_UNREACHABLE (which
// the provider reads only when the input is unset) for a refresh of just those objects, when the
// cluster behind the URL is provably new or its server VM gone (scripts/recover.ts; README
// "Recovery and host notes"). The Release ignores it on delete either way (pulumi-kubernetes Delete).
const k8sProvider = new k8s.Provider("k8s", { kubeconfig: k3s.kubeconfig }, { dependsOn: [k3s.ready] });

// Cilium: the article's Helm release, its routing mode from stack config; a mode switch updates
// only this release (and re-runs the verification).
const cilium = new Cilium(
  "cilium",
  { config, serverIp: lab.server.ip },
  { provider: k8sProvider, deletedWith: lab.server.domain, dependsOn: [k3s.ready] },
);

// Cilium ready: Helm's wait lets `deployed` through before the agents, operator and Hubble are
// ready (infra/cilium/ready-check.ts); this waits until they are, within a bound set by the
// accelerator, and refuses a release Helm left not `deployed` (a killed `up`).
const ciliumReady = new CiliumReady(
  "cilium-ready",
  {
    kubeconfig: k3s.kubeconfig,
    namespace: RELEASE_NAMESPACE,
    releaseName: RELEASE_NAME,
    releaseStatus: cilium.status,
    nodeCount: lab.nodes.length,
    hubble: config.hubble,
    timeoutSeconds: readyTimeoutSeconds(config.accelerator),
    stack,
  },
  { dependsOn: [cilium.release], deletedWith: lab.server.domain },
);

// Verification: prove the datapath and every feature the config predicts from config and from
// every node, then iperf3 (throughput) and netperf (latency) host↔host and pod↔pod, interleaved,
// and with Hubble the measured flow itself; a datapath, a feature or a flow other than the one asked
// for fails the update, and no number is exported.
const verification = new Verification(
  "verify",
  { config, nodes: lab.nodes, server: lab.server, cilium },
  { provider: k8sProvider, dependsOn: [cilium, ciliumReady], deletedWith: lab.server.domain },
);

// Outputs.
export const nodes = lab.nodes.map(({ name, role, ip }) => ({ name, role, ip }));
// The libvirt host each node runs on (libvirtUri, or nodeHosts round-robin): the report's environment.
export const nodeHosts = lab.nodes.map(({ name, hostUri }) => ({ name, host: hostUri }));
export const datapath = verification.datapathReport;
export const features = verification.datapath.apply((d) => d.features);
export const throughput = verification.throughput;
export const latency = verification.latency;
export const versions = {
  k3s: config.k3sVersion,
  cilium: config.ciliumVersion,
  iperf3Image: config.iperf3Image,
  netperfImage: config.netperfImage,
  image: config.image === "custom" ? config.imageUrl : config.image,
  // Resolved once by the base image's create and kept by later `up`s (infra/libvirt/base-image/).
  imageSerial: lab.baseImageFacts.serial,
  imageSource: lab.baseImageFacts.source,
  imageSha256: lab.baseImageFacts.sha256,
};
export const kubeconfig = k3s.kubeconfig;
