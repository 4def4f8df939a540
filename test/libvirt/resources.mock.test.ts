// The five resource classes under Pulumi mocks: type tokens `pulumi-nodejs:dynamic/libvirt:<Type>`,
// a serialized `__provider` (closure problems would fail here), the provider version input,
// declared outputs that resolve (the ES2022 class-field pitfall), and additionalSecretOutputs for the
// secret-bearing inputs (seen by the recording monitor of test/support/pulumi-mocks.ts: Mocks.newResource
// cannot see options).
import test from "ava";
import * as pulumi from "@pulumi/pulumi";

import { echoMocks, promiseOf, recordMocks, type Registration } from "../support/pulumi-mocks";

let seen: readonly Registration[] = [];

test.before(async () => {
  const mocks = echoMocks((a) => {
    const inputs = a.inputs as Record<string, unknown>;
    // What the providers compute, so the declared outputs have values to resolve.
    return {
      ...inputs,
      path: `/pool/${String(inputs.name)}`,
      targetPath: `/var/lib/libvirt/images/${String(inputs.poolName)}`,
      uuid: "uuid-1",
      running: true,
      active: true,
    };
  });
  seen = (await recordMocks(mocks, "mock")).registrations;
});

test.serial("each class registers its dynamic type with a serialized provider, and its outputs resolve", async (t) => {
  const { Network, StoragePool, Volume, CloudInitDisk, Domain } = await import("../../infra/libvirt");
  const network = new Network("n", {
    uri: "qemu:///system",
    networkName: "cilium-lab-mock",
    bridgeName: "cl-mock-0000",
    cidr: "192.168.150.0/24",
    gateway: "192.168.150.1",
    hosts: [{ mac: "52:54:00:00:00:01", ip: "192.168.150.11", hostname: "node-1" }],
    stack: "mock",
  });
  const pool = new StoragePool("p", { uri: "qemu:///system", poolName: "cilium-lab-mock", stack: "mock" });
  const volume = new Volume("v", {
    uri: "qemu:///system",
    pool: pool.poolName,
    name: "node-1.qcow2",
    backingPath: "/var/lib/libvirt/images/cilium-lab-base/base-0123456789abcdef.qcow2",
    sizeGiB: 20,
    stack: "mock",
  });
  const seed = new CloudInitDisk("s", {
    uri: "qemu:///system",
    pool: "pool",
    name: "node-1-seed",
    userData: pulumi.secret("#cloud-config\n"),
    metaData: "instance-id: i\n",
    stack: "mock",
  });
  const domain = new Domain("d", {
    uri: "qemu:///system",
    domainName: "cilium-lab-mock-node-1",
    vcpus: 2,
    memoryMiB: 4096,
    diskPath: volume.path,
    seedPath: seed.path,
    networkName: network.networkName,
    mac: "52:54:00:00:00:01",
    ip: "192.168.150.11",
    accelerator: "kvm",
    consoleLogPath: "/pool/node-1-console.log",
    bootTimeoutSeconds: 300,
    sshUser: "lab",
    sshPrivateKey: pulumi.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"),
    hostPublicKey: "ssh-ed25519 AAAA",
    stack: "mock",
  });

  t.is(await promiseOf(network.networkName), "cilium-lab-mock");
  t.is(await promiseOf(network.uuid), "uuid-1");
  t.is(await promiseOf(pool.poolName), "cilium-lab-mock");
  t.is(await promiseOf(pool.targetPath), "/var/lib/libvirt/images/cilium-lab-mock");
  t.is(await promiseOf(volume.path), "/pool/node-1.qcow2");
  t.is(await promiseOf(volume.pool), "cilium-lab-mock", "the volume consumes the pool's output");
  t.is(await promiseOf(seed.path), "/pool/node-1-seed");
  t.is(await promiseOf(domain.ip), "192.168.150.11");
  t.is(await promiseOf(domain.running), true);

  t.deepEqual(seen.map((s) => [s.name, s.type]).sort(), [
    ["d", "pulumi-nodejs:dynamic/libvirt:Domain"],
    ["n", "pulumi-nodejs:dynamic/libvirt:Network"],
    ["p", "pulumi-nodejs:dynamic/libvirt:StoragePool"],
    ["s", "pulumi-nodejs:dynamic/libvirt:CloudInitDisk"],
    ["v", "pulumi-nodejs:dynamic/libvirt:Volume"],
  ]);
  for (const s of seen) {
    t.is(typeof s.raw.__provider, "string", `${s.type} has a serialized provider`);
    t.true((s.raw.__provider as string).includes("exports.handler"), `${s.type}'s provider text is a module`);
    t.is(s.inputs.providerVersion, 1);
  }
  t.deepEqual(seen.find((s) => s.name === "s")?.additionalSecretOutputs, ["userData"]);
  t.deepEqual(seen.find((s) => s.name === "d")?.additionalSecretOutputs, ["sshPrivateKey"]);
  t.deepEqual(
    seen.find((s) => s.name === "d")?.inputs.diskPath,
    "/pool/node-1.qcow2",
    "the domain consumes the volume's output (a data edge: destroy deletes the domain first)",
  );
});
