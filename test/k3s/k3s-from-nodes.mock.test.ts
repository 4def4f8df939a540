/**
 * The k3s layer built from the real nodes layer under mocks, wired exactly as infra/index.ts does
 * (LabNodes → K3sCluster → Kubernetes provider): the nodes' connections (host key pinned, private
 * key secret), Domains and token reach every k3s command as they should. The libvirt resources'
 * computed outputs are mocked the way their providers compute them.
 */
import test from "ava";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { parseLabConfig } from "../../infra/config";
import type * as K3sModule from "../../infra/k3s/k3s";
import { planLab } from "../../infra/plan";
import type * as NodesModule from "../../infra/nodes/nodes";
import {
  RecordingMonitor,
  installMonitor,
  promiseOf,
  withoutSecrets,
  type Registration,
} from "../support/pulumi-mocks";

const TOKEN = "TOKEN-from-LabSecrets-5e1f";
const K3S_YAML =
  "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\nkind: Config\n";

/** Outputs the nodes layer's dynamic providers compute (the rest of the state echoes the inputs). */
function computed(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "pulumi-nodejs:dynamic/libvirt:BaseImage":
      return { path: "/cache/images/base.qcow2", sha256: "ab".repeat(32), sizeBytes: 1, downloadedBytes: 1 };
    case "pulumi-nodejs:dynamic/lab:LabSecrets": {
      const nodes = inputs.nodes as string[];
      return {
        sshPublicKey: "ssh-ed25519 USERKEY lab",
        sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nUSER\n-----END OPENSSH PRIVATE KEY-----\n",
        hostPublicKeys: Object.fromEntries(nodes.map((n) => [n, `ssh-ed25519 HOSTKEY${n} root@${n}`])),
        hostPrivateKeys: Object.fromEntries(nodes.map((n) => [n, `PRIVATE-HOST-${n}\n`])),
        k3sToken: TOKEN,
      };
    }
    case "pulumi-nodejs:dynamic/libvirt:Volume":
      return { path: `/pool/${String(inputs.name)}` };
    case "pulumi-nodejs:dynamic/libvirt:CloudInitDisk":
      return { path: `/pool/${String(inputs.name)}.iso` };
    case "pulumi-nodejs:dynamic/libvirt:Domain":
      return { uuid: `uuid-${String(inputs.domainName)}`, running: true };
    case "pulumi-nodejs:dynamic/libvirt:Network":
      return { uuid: "uuid-net", active: true };
    case "command:remote:Command":
      return { stdout: name.endsWith("-kubeconfig") ? K3S_YAML : "", stderr: "" };
    default:
      return {};
  }
}

const monitor = new RecordingMonitor({
  newResource: (a) => {
    const inputs = a.inputs as Record<string, unknown>;
    return { id: `${a.name}-id`, state: { ...inputs, ...computed(a.type, a.name, inputs) } };
  },
  call: (a) => a.inputs as Record<string, unknown>,
});

let K3sCluster: typeof K3sModule.K3sCluster;
let LabNodes: typeof NodesModule.LabNodes;
test.before(async () => {
  await installMonitor(monitor, "vxlan");
  ({ K3sCluster } = await import("../../infra/k3s/k3s"));
  ({ LabNodes } = await import("../../infra/nodes/nodes"));
});

function one(name: string): Registration {
  const hits = monitor.registrations.filter((r) => r.name === name);
  if (hits.length !== 1 || !hits[0]) {
    throw new Error(`expected one registration ${name}, got ${hits.length}`);
  }
  return hits[0];
}

test("LabNodes' nodes, connections, Domains and token drive every k3s command: pinned host key, secret key and token, deletedWith the node's Domain", async (t) => {
  const config = parseLabConfig({ image: "ubuntu-24.04", accelerator: "qemu" }).config;
  const plan = planLab(config, "vxlan");
  // the lines infra/index.ts gets (see the k3s layer's report).
  const labNodes = new LabNodes("nodes", {
    config,
    plan,
    stack: "vxlan",
    cacheDir: "/cache",
    keyringPath: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
  });
  const k3s = new K3sCluster("k3s", {
    config,
    nodes: labNodes.nodes,
    server: labNodes.server,
    token: labNodes.k3sToken,
  });
  const provider = new k8s.Provider("k8s", { kubeconfig: k3s.kubeconfig, deleteUnreachable: true });
  await promiseOf(provider.urn);
  await monitor.outputsRegistered(await promiseOf(k3s.urn));

  t.true(await pulumi.isSecret(k3s.kubeconfig));
  t.is(await promiseOf(k3s.kubeconfig), K3S_YAML.replace("127.0.0.1", "192.168.150.11"));
  t.true(one("k8s").dependencies.includes(one("k3s-kubeconfig").urn));

  for (const node of plan.nodes) {
    const domainUrn = one(`nodes-vm-${node.name}`).urn;
    for (const step of ["wait", "prepare", "install"]) {
      const r = one(`k3s-${step}-${node.name}`);
      const connection = r.inputs.connection as Record<string, unknown>;
      t.is(connection.host, node.ip, `${r.name} host`);
      t.is(connection.user, "lab", `${r.name} user`);
      t.is(
        connection.hostKey,
        `ssh-ed25519 HOSTKEY${node.name} root@${node.name}`,
        `${r.name} pins the node's host key`,
      );
      t.is(withoutSecrets(r.raw.connection), "[secret]");
      t.is(r.deletedWith, domainUrn, `${r.name} deletedWith`);
    }
    t.true(one(`k3s-wait-${node.name}`).dependencies.includes(domainUrn));
    const install = one(`k3s-install-${node.name}`);
    // the token first, then the install's other arguments (see installStdin in infra/k3s/args.ts).
    const stdin = String(install.inputs.stdin).split("\n");
    t.is(stdin[0], TOKEN);
    t.deepEqual(stdin.slice(stdin.indexOf("--"), stdin.indexOf("--") + 4), [
      "--",
      node.role,
      `--node-name=${node.name}`,
      `--node-ip=${node.ip}`,
    ]);
    t.is(withoutSecrets(install.raw.stdin), "[secret]");
    t.false(JSON.stringify(withoutSecrets(install.raw)).includes(TOKEN));
  }
});
