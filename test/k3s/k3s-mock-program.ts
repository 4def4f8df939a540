/**
 * The K3sCluster under Pulumi mocks, as the k3s mock suites build it: three nodes (a server and two
 * agents) with stand-in VMs and SSH connections, the config the program passes, and the recorded
 * registrations of one build. The server's read-kubeconfig.sh prints k3s's own kubeconfig.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";

import type * as K3sModule from "../../infra/k3s/k3s";
import { IPERF3_IMAGE } from "../../infra/versions";
import {
  RecordingMonitor,
  StandIn,
  echoMocks,
  installMonitor,
  promiseOf,
  type Registration,
} from "../support/pulumi-mocks";

export const TOKEN = "K3sToken-9d8c7b6a5f4e3d2c1b0a";
export const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZSBrZXk=\n-----END OPENSSH PRIVATE KEY-----\n";
export const NODES = [
  { name: "node-1", role: "server", ip: "192.168.150.11" },
  { name: "node-2", role: "agent", ip: "192.168.150.12" },
  { name: "node-3", role: "agent", ip: "192.168.150.13" },
] as const;
export const K3S_YAML =
  "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EtREFUQQ==\n    server: https://127.0.0.1:6443\n  name: default\n" +
  "contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {}\n" +
  "users:\n- name: default\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

export const monitor = new RecordingMonitor(
  echoMocks((a) => {
    const inputs = a.inputs as Record<string, unknown>;
    // the server's k3s.yaml, as read-kubeconfig.sh prints it; other commands print nothing on stdout.
    const stdout = a.name.endsWith("-kubeconfig") ? K3S_YAML : "";
    return a.type === "command:remote:Command" ? { ...inputs, stdout, stderr: "" } : inputs;
  }),
);

let k3s: typeof K3sModule;
/** Installs the mocks, then loads the k3s layer: call it in `test.before`. */
export async function loadK3s(): Promise<typeof K3sModule> {
  await installMonitor(monitor, "vxlan");
  k3s = await import("../../infra/k3s/k3s");
  return k3s;
}

/** An air-gap directory of well-shaped fake files (no real k3s can be obtained here). */
export function fakeAirgapDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cl-k3s-airgap-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const elf = Buffer.alloc(64);
  elf.write("\x7fELF", 0, "latin1");
  elf[4] = 2;
  elf[5] = 1;
  elf.writeUInt16LE(2, 16);
  elf.writeUInt16LE(0x3e, 18);
  writeFileSync(join(dir, "k3s"), elf);
  writeFileSync(join(dir, "install.sh"), "#!/bin/sh\n# INSTALL_K3S_SKIP_DOWNLOAD\n");
  writeFileSync(join(dir, "k3s-airgap-images-amd64.tar.zst"), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  writeFileSync(join(dir, "iperf3.tar.zst"), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  return dir;
}

export interface Built {
  readonly cluster: K3sModule.K3sCluster;
  /** This build's registrations, by name. */
  readonly byName: Map<string, Registration>;
  readonly registrations: Registration[];
  readonly domainUrn: (node: string) => string;
}

/** The stack config the K3sCluster reads, as these tests set it. */
export const CONFIG: K3sModule.K3sConfig = {
  k3sVersion: "v1.26.6+k3s1",
  podCidr: "10.0.0.0/16",
  kubeProxyReplacement: false,
  k3sAirgapDir: "",
  bootTimeoutSeconds: 300,
  iperf3Image: IPERF3_IMAGE,
};

/**
 * Builds one K3sCluster named `name` on its own stand-in VMs (config changed by `overrides`) and
 * waits until it is fully registered.
 */
export async function build(
  name: string,
  overrides: Partial<K3sModule.K3sConfig> = {},
  token: pulumi.Input<string> = pulumi.secret(TOKEN),
): Promise<Built> {
  const nodes = NODES.map((n) => ({
    ...n,
    connection: {
      host: n.ip,
      user: "lab",
      privateKey: pulumi.secret(PRIVATE_KEY),
      hostKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${n.name} root@${n.name}`,
    },
    domain: new StandIn("lab:test:Domain", `${name}-vm-${n.name}`),
  }));
  const cluster = new k3s.K3sCluster(name, {
    config: { ...CONFIG, ...overrides },
    nodes,
    server: nodes[0] as K3sModule.K3sNode,
    token,
  });
  const urn = await promiseOf(cluster.urn);
  await monitor.outputsRegistered(urn);
  const registrations = monitor.registrations.filter(
    (r) => r.type !== "lab:test:Domain" && (r.name === name || r.name.startsWith(`${name}-`)),
  );
  const byName = new Map(registrations.map((r) => [r.name, r]));
  return {
    cluster,
    byName,
    registrations,
    domainUrn: (node) => `urn:pulumi:vxlan::cilium-lab::lab:test:Domain::${name}-vm-${node}`,
  };
}

export function reg(b: Built, name: string): Registration {
  const r = b.byName.get(name);
  if (!r) {
    throw new Error(`no registration ${name}; have ${[...b.byName.keys()].join(", ")}`);
  }
  return r;
}
