/**
 * The LabNodes component under Pulumi mocks: exact resource counts, names, types and inputs for a
 * 3-node stack (custom image) and a 2-node stack (Ubuntu image, extra authorized key), the data
 * edges that order destroy (Domain ← Volume/CloudInitDisk/Network), and which outputs are secret.
 * Mocks prove what the program asks for; the real-engine test (nodes.vm.test.ts) proves the rest.
 */
import test from "ava";
import * as pulumi from "@pulumi/pulumi";

import { parseLabConfig, type LabConfig } from "../../infra/config";
import { planLab, type LabPlan } from "../../infra/plan";
import type { LabNodes as LabNodesClass, SshConnection } from "../../infra/nodes/nodes";
import { UBUNTU_IMAGES } from "../../infra/versions";
import { echoMocks, promiseOf, recordMocks, unwrapSecrets, type Registration } from "../support/pulumi-mocks";

const SHA = "ab".repeat(32);

/** Fake generated secrets, distinct per stack comment. */
function fakeSecrets(comment: string, nodes: string[]): Record<string, unknown> {
  return {
    sshPublicKey: `ssh-ed25519 USERKEY ${comment}`,
    sshPrivateKey: `PRIVATE-USER-${comment}`,
    hostPublicKeys: Object.fromEntries(nodes.map((n) => [n, `ssh-ed25519 HOSTKEY-${n} ${comment}-${n}`])),
    hostPrivateKeys: Object.fromEntries(nodes.map((n) => [n, `PRIVATE-HOST-${n}\n`])),
    k3sToken: `TOKEN-${comment}`,
  };
}

/** What each dynamic resource type computes, as the real providers would (paths, keys). */
function computed(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "pulumi-nodejs:dynamic/libvirt:BaseImage":
      return {
        path: `${String(inputs.cacheDir)}/images/${String(inputs.expectedSha256) || "cd".repeat(32)}.qcow2`,
        sha256: SHA,
        sizeBytes: 1,
        downloadedBytes: 1,
      };
    case "pulumi-nodejs:dynamic/lab:LabSecrets":
      return fakeSecrets(String(inputs.comment), inputs.nodes as string[]);
    case "pulumi-nodejs:dynamic/libvirt:Volume":
      return { path: `${String(inputs.poolDir)}/${String(inputs.name)}` };
    case "pulumi-nodejs:dynamic/libvirt:CloudInitDisk":
      return { path: `${String(inputs.poolDir)}/${String(inputs.name)}-0123456789ab.iso` };
    case "pulumi-nodejs:dynamic/libvirt:Domain":
      return { uuid: `uuid-${String(inputs.domainName)}`, running: true };
    case "pulumi-nodejs:dynamic/libvirt:Network":
      return { uuid: `uuid-${String(inputs.networkName)}`, active: true };
    default:
      return {};
  }
}

let LabNodes: typeof LabNodesClass;
let seen: readonly Registration[] = [];

test.before(async () => {
  const monitor = await recordMocks(
    echoMocks((a) => {
      const inputs = unwrapSecrets(a.inputs) as Record<string, unknown>;
      return { ...(a.inputs as Record<string, unknown>), ...computed(a.type, inputs) };
    }),
    "mock",
  );
  seen = monitor.registrations;
  ({ LabNodes } = await import("../../infra/nodes/nodes"));
});

/** Waits until the mock monitor has seen `count` resources whose name starts with `prefix`. */
async function settle(prefix: string, count: number): Promise<Registration[]> {
  for (let i = 0; i < 200; i++) {
    const mine = seen.filter((s) => s.name.startsWith(`${prefix}-`));
    if (mine.length >= count) {
      await new Promise((r) => setTimeout(r, 50));
      return seen.filter((s) => s.name.startsWith(`${prefix}-`));
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return seen.filter((s) => s.name.startsWith(`${prefix}-`));
}

function one(list: Registration[], name: string): Registration {
  const hits = list.filter((s) => s.name === name);
  if (hits.length !== 1 || !hits[0]) {
    throw new Error(`expected exactly one resource named ${name}, found ${hits.length}`);
  }
  return hits[0];
}

/** Picks `keys` of an object (absent keys stay absent). */
function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

interface Scenario {
  readonly name: string;
  readonly stack: string;
  readonly config: LabConfig;
  readonly plan: LabPlan;
  readonly poolDir: string;
  readonly cacheDir: string;
}

function scenario(name: string, stack: string, raw: Record<string, string>): Scenario {
  const config = parseLabConfig(raw).config;
  return {
    name,
    stack,
    config,
    plan: planLab(config, stack),
    poolDir: `/var/lib/libvirt/cilium-lab/cilium-lab-${stack}`,
    cacheDir: "/cache/cilium-lab",
  };
}

const THREE = scenario("three", "t3", {
  image: "custom",
  imageUrl: "file:///images/test.qcow2",
  imageSha256: SHA,
  accelerator: "qemu",
  networkCidr: "192.168.181.0/24",
  nodeCount: "3",
  nodeCpus: "1",
  nodeMemoryMiB: "1024",
  nodeDiskGiB: "8",
  bootTimeoutSeconds: "600",
});
const EXTRA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnbV8Ry1lhYRkEoc7nD7JrTzq1WmQ3u4M5Yk1xRj0Zp me@laptop";
const TWO = scenario("two", "t2", {
  image: "ubuntu-24.04",
  networkCidr: "192.168.182.0/24",
  nodeCount: "2",
  sshAuthorizedKey: EXTRA_KEY,
});

function build(s: Scenario): LabNodesClass {
  return new LabNodes(s.name, {
    config: s.config,
    plan: s.plan,
    stack: s.stack,
    cacheDir: s.cacheDir,
    keyringPath: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
  });
}

const T = {
  image: "pulumi-nodejs:dynamic/libvirt:BaseImage",
  secrets: "pulumi-nodejs:dynamic/lab:LabSecrets",
  network: "pulumi-nodejs:dynamic/libvirt:Network",
  volume: "pulumi-nodejs:dynamic/libvirt:Volume",
  seed: "pulumi-nodejs:dynamic/libvirt:CloudInitDisk",
  domain: "pulumi-nodejs:dynamic/libvirt:Domain",
};

function expectedNames(s: Scenario): [string, string][] {
  const list: [string, string][] = [
    [`${s.name}-image`, T.image],
    [`${s.name}-secrets`, T.secrets],
    [`${s.name}-network`, T.network],
    [`${s.name}-base`, T.volume],
  ];
  for (const n of s.plan.nodes) {
    list.push(
      [`${s.name}-disk-${n.name}`, T.volume],
      [`${s.name}-seed-${n.name}`, T.seed],
      [`${s.name}-vm-${n.name}`, T.domain],
    );
  }
  return list;
}

for (const s of [THREE, TWO]) {
  const count = 4 + 3 * s.config.nodeCount;

  test.serial(`${s.config.nodeCount} nodes: exactly ${count} resources with the planned names and types`, async (t) => {
    build(s);
    const mine = await settle(s.name, count);
    t.is(mine.length, count);
    t.deepEqual(mine.map((m) => [m.name, m.type] as [string, string]).sort(), expectedNames(s).sort());
    t.is(mine.filter((m) => m.type === T.domain).length, s.config.nodeCount);
    t.is(mine.filter((m) => m.type === T.volume).length, s.config.nodeCount + 1);
    t.is(mine.filter((m) => m.type === T.seed).length, s.config.nodeCount);
  });

  test.serial(`${s.config.nodeCount} nodes: network, secrets and base-image inputs are exact`, async (t) => {
    const mine = await settle(s.name, count);
    t.deepEqual(
      pick(one(mine, `${s.name}-network`).inputs, [
        "uri",
        "networkName",
        "bridgeName",
        "cidr",
        "gateway",
        "hosts",
        "stack",
        "mtu",
      ]),
      {
        uri: "qemu:///system",
        networkName: `cilium-lab-${s.stack}`,
        bridgeName: s.plan.bridgeName,
        cidr: s.config.networkCidr,
        gateway: s.plan.gateway,
        hosts: s.plan.nodes.map((n) => ({ mac: n.mac, ip: n.ip, hostname: n.name })),
        stack: s.stack,
        mtu: 1500,
      },
    );
    t.deepEqual(one(mine, `${s.name}-secrets`).inputs, {
      nodes: s.plan.nodes.map((n) => n.name),
      comment: `cilium-lab-${s.stack}`,
    });
    const image = one(mine, `${s.name}-image`).inputs;
    if (s.config.image === "custom") {
      t.deepEqual(image, {
        image: "custom",
        url: "file:///images/test.qcow2",
        expectedSha256: SHA,
        keyringPath: "",
        cacheDir: s.cacheDir,
        release: "",
        codename: "",
        pinnedSerial: "",
        fileName: "",
        roots: [],
        resolveLatest: false,
        signingKeyFingerprint: "",
      });
    } else {
      t.deepEqual(image, {
        image: "ubuntu-24.04",
        url: "",
        expectedSha256: "",
        keyringPath: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
        cacheDir: s.cacheDir,
        release: "24.04",
        codename: "noble",
        pinnedSerial: UBUNTU_IMAGES["ubuntu-24.04"].serial,
        fileName: "ubuntu-24.04-server-cloudimg-amd64.img",
        roots: [
          "https://cloud-images.ubuntu.com/releases/",
          "https://cloud-images-archive.ubuntu.com/releases/",
          "https://s3.us-east-1.amazonaws.com/cloud-images-archive.ubuntu.com/releases/",
          "http://cloud-images-archive.ubuntu.com/releases/",
        ],
        resolveLatest: false,
        signingKeyFingerprint: "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81",
      });
    }
    t.deepEqual(
      pick(one(mine, `${s.name}-base`).inputs, ["uri", "poolDir", "name", "baseImagePath", "sizeGiB", "mode", "stack"]),
      {
        uri: "qemu:///system",
        poolDir: s.poolDir,
        name: "base.qcow2",
        baseImagePath: `${s.cacheDir}/images/${s.config.image === "custom" ? SHA : "cd".repeat(32)}.qcow2`,
        sizeGiB: s.config.nodeDiskGiB,
        mode: "copy",
        stack: s.stack,
      },
    );
  });

  test.serial(
    `${s.config.nodeCount} nodes: each node's disk, seed and VM inputs are exact and chained by outputs`,
    async (t) => {
      const mine = await settle(s.name, count);
      const { renderMetaData, renderNetworkConfig, renderUserData, instanceIdFor } =
        await import("../../infra/nodes/cloud-init");
      const keys = fakeSecrets(
        `cilium-lab-${s.stack}`,
        s.plan.nodes.map((n) => n.name),
      ) as {
        sshPublicKey: string;
        hostPublicKeys: Record<string, string>;
        hostPrivateKeys: Record<string, string>;
      };
      for (const n of s.plan.nodes) {
        t.deepEqual(
          pick(one(mine, `${s.name}-disk-${n.name}`).inputs, [
            "uri",
            "poolDir",
            "name",
            "baseImagePath",
            "sizeGiB",
            "mode",
            "stack",
          ]),
          {
            uri: "qemu:///system",
            poolDir: s.poolDir,
            name: `${n.name}.qcow2`,
            baseImagePath: `${s.poolDir}/base.qcow2`,
            sizeGiB: s.config.nodeDiskGiB,
            stack: s.stack,
          },
        );

        const seed = one(mine, `${s.name}-seed-${n.name}`);
        const userData = renderUserData({
          hostname: n.name,
          authorizedKeys: s.config.sshAuthorizedKey
            ? [keys.sshPublicKey, s.config.sshAuthorizedKey]
            : [keys.sshPublicKey],
          hostKey: { privateKey: keys.hostPrivateKeys[n.name] ?? "", publicKey: keys.hostPublicKeys[n.name] ?? "" },
        });
        const networkConfig = renderNetworkConfig({ mac: n.mac });
        t.deepEqual(pick(seed.inputs, ["uri", "poolDir", "name", "userData", "metaData", "networkConfig", "stack"]), {
          uri: "qemu:///system",
          poolDir: s.poolDir,
          name: `${n.name}-seed`,
          userData,
          metaData: renderMetaData({
            instanceId: instanceIdFor(n.domainName, userData, networkConfig),
            hostname: n.name,
          }),
          networkConfig,
          stack: s.stack,
        });
        t.deepEqual(seed.secretKeys, ["userData"], "user-data carries the host private key: secret; nothing else is");

        const vm = one(mine, `${s.name}-vm-${n.name}`);
        t.deepEqual(
          pick(vm.inputs, [
            "uri",
            "domainName",
            "vcpus",
            "memoryMiB",
            "diskPath",
            "seedPath",
            "networkName",
            "mac",
            "ip",
            "accelerator",
            "consoleLogPath",
            "bootTimeoutSeconds",
            "sshUser",
            "sshPrivateKey",
            "hostPublicKey",
            "stack",
            "freshDisk",
          ]),
          {
            uri: "qemu:///system",
            domainName: `cilium-lab-${s.stack}-${n.name}`,
            vcpus: s.config.nodeCpus,
            memoryMiB: s.config.nodeMemoryMiB,
            // Outputs of the disk, the seed and the network: destroy deletes the VM first.
            diskPath: `${s.poolDir}/${n.name}.qcow2`,
            seedPath: `${s.poolDir}/${n.name}-seed-0123456789ab.iso`,
            networkName: `cilium-lab-${s.stack}`,
            mac: n.mac,
            ip: n.ip,
            accelerator: s.config.accelerator,
            consoleLogPath: `${s.poolDir}/${n.name}-console.log`,
            bootTimeoutSeconds: s.config.bootTimeoutSeconds,
            sshUser: "lab",
            sshPrivateKey: `PRIVATE-USER-cilium-lab-${s.stack}`,
            hostPublicKey: keys.hostPublicKeys[n.name],
            stack: s.stack,
            // A recreated VM boots an empty overlay: cloud-init runs in full again.
            freshDisk: true,
          },
        );
        t.true(vm.secretKeys.includes("sshPrivateKey"));
      }
    },
  );
}

test.serial(
  "the component gives plain node facts, secret connections with the pinned host key, and a secret token",
  async (t) => {
    const nodes = build({ ...THREE, name: "out" });
    t.deepEqual(
      nodes.nodes.map(({ name, role, ip }) => ({ name, role, ip })),
      [
        { name: "node-1", role: "server", ip: "192.168.181.11" },
        { name: "node-2", role: "agent", ip: "192.168.181.12" },
        { name: "node-3", role: "agent", ip: "192.168.181.13" },
      ],
    );
    t.true(nodes.server === nodes.nodes[0], "the k3s server is node-1, one of the list");
    t.deepEqual(
      await Promise.all(nodes.nodes.map((n) => promiseOf(n.domain.urn))),
      ["node-1", "node-2", "node-3"].map(
        (n) => `urn:pulumi:mock::cilium-lab::lab:nodes:LabNodes$pulumi-nodejs:dynamic/libvirt:Domain::out-vm-${n}`,
      ),
      "each node's Domain is its own VM",
    );

    const conn = nodes.nodes[1]?.connection;
    if (!conn) {
      return t.fail("no connection for node-2");
    }
    t.true(await pulumi.isSecret(conn));
    t.deepEqual(await promiseOf(conn), {
      host: "192.168.181.12",
      port: 22,
      user: "lab",
      privateKey: "PRIVATE-USER-cilium-lab-t3",
      hostKey: "ssh-ed25519 HOSTKEY-node-2 cilium-lab-t3-node-2",
      dialErrorLimit: 20,
      perDialTimeout: 10,
    } satisfies SshConnection);

    t.true(await pulumi.isSecret(nodes.k3sToken));
    t.is(await promiseOf(nodes.k3sToken), "TOKEN-cilium-lab-t3");
    t.true(await pulumi.isSecret(nodes.sshPrivateKey));
    t.false(await pulumi.isSecret(nodes.sshPublicKey));
    t.false(await pulumi.isSecret(nodes.hostPublicKeys));
    t.is(await promiseOf(nodes.baseImage.path), `/cache/cilium-lab/images/${SHA}.qcow2`);
  },
);
