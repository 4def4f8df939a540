/**
 * The measurement's servers: the namespace, the two server pods on the server node (pod network
 * and hostNetwork, each running iperf3 and netserver) and `servers-ready`, the wait until both
 * listen, whose output is their addresses.
 */
import type { remote } from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

import { NAMESPACE, namespaceArgs, serverPodArgs, serverPodName } from "./jobs";
import { scriptCommand, type Measurement } from "./measurement";
import { tryServerAddresses, type ParsedAddresses } from "./outputs";

/** The listening servers. */
export interface Servers {
  /** `servers-ready`: its stdout is the servers' addresses. */
  readonly ready: remote.Command;
  /** The parsed addresses, or why they could not be read. */
  readonly addresses: pulumi.Output<ParsedAddresses>;
  /** The server pod's IP (empty when unreadable). */
  readonly podIp: pulumi.Output<string>;
  /** The server pods' Kubernetes names. */
  readonly names: { readonly host: string; readonly pod: string };
}

/** The namespace, both server pods and the wait until both listen (their addresses); after `after`. */
export function startServers(m: Measurement, after: pulumi.ComponentResourceOptions["dependsOn"]): Servers {
  const namespace = new k8s.core.v1.Namespace(`${m.name}-namespace`, namespaceArgs(), {
    ...m.k8sOpts,
    dependsOn: after,
  });
  const names = { host: serverPodName("host", m.key), pod: serverPodName("pod", m.key) };
  const serverPods = (["host", "pod"] as const).map(
    (p) =>
      new k8s.core.v1.Pod(
        `${m.name}-server-${p}`,
        serverPodArgs({
          path: p,
          node: m.server.name,
          image: m.settings.image,
          netperfImage: m.netperf.image,
          key: m.key,
        }),
        {
          ...m.k8sOpts,
          dependsOn: [namespace],
          // The hostNetwork server binds ports 5201 and 12865 on the node: the old one must go first.
          deleteBeforeReplace: true,
        },
      ),
  );
  const ready = scriptCommand(m, "servers-ready", m.k3sServer, {
    args: [NAMESPACE, String(m.limits.serverReadySeconds), names.host, names.pod],
    script: "wait-iperf3-servers.sh",
    triggers: serverPods.map((p) => p.metadata.uid),
    dependsOn: serverPods,
  });
  // Parsed without throwing: a bad document refuses the datapath (one clean error) instead of
  // rejecting every input that uses the pod IP.
  const addresses = ready.stdout.apply((text) => tryServerAddresses(text, names.host, names.pod));
  return { ready, addresses, names, podIp: addresses.apply((s) => ("value" in s ? s.value.pod.podIP : "")) };
}
