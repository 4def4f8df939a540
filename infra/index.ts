/**
 * cilium-lab: the network lab of "Cilium Series 4 — Cilium Native Routing", from one `pulumi up`.
 *
 * The program reads like the article: config → network → nodes → k3s → Cilium → verification →
 * outputs. Each step is one folder of infra/.
 */
import * as pulumi from "@pulumi/pulumi";

import { loadLabConfig } from "./config";
import { planLab } from "./network/plan";
import { CILIUM_VERSION, K3S_VERSION } from "./versions";

// Config: the stack file chooses the routing mode and sizes; parsed once, before any resource.
const config = loadLabConfig();

// Network: one L2 libvirt NAT network per stack, with a fixed address per node.
const plan = planLab(config, pulumi.getStack());

// Nodes, k3s, Cilium and the iperf3 verification are added layer by layer (infra/nodes, infra/k3s,
// infra/cilium, infra/verify).

// Outputs.
export const lab = {
  routingMode: config.routingMode,
  autoDirectNodeRoutes: config.autoDirectNodeRoutes,
  networkName: plan.networkName,
  networkCidr: config.networkCidr,
};
export const nodes = plan.nodes.map(({ name, role, ip }) => ({ name, role, ip }));
export const versions = {
  k3s: config.k3sVersion,
  cilium: config.ciliumVersion,
  pinnedDefaults: { k3s: K3S_VERSION, cilium: CILIUM_VERSION },
};
