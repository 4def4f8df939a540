/**
 * The LabNodes component under Pulumi mocks: exact resource counts, names and types for a 3-node
 * stack (custom image), a 2-node stack (Ubuntu image, extra authorized key), a bridge-mode stack and
 * a bridge-mode stack on two hosts; the network, secrets, base-image, pool and base-volume inputs,
 * and what the component hands to later layers (which outputs are secret).
 * Each node's disk, seed and VM: nodes-vms.mock.test.ts. Mocks prove what the program asks for; the
 * real-engine test (nodes.vm.test.ts) proves the rest.
 */
import test from "ava";
import * as pulumi from "@pulumi/pulumi";

import type { SshConnection } from "../../infra/nodes/nodes";
import { UBUNTU_IMAGES } from "../../infra/versions";
import { promiseOf } from "../support/pulumi-mocks";
import { NOT_UBUNTU } from "./image-test-support";
import {
  BRIDGED,
  MULTI,
  REMOTE,
  SHA,
  T,
  THREE,
  TWO,
  build,
  label,
  loadLabNodes,
  one,
  registrationsOf,
  resourceCount,
  type Scenario,
} from "./nodes-mock-program";

test.before(loadLabNodes);

function expectedNames(s: Scenario): [string, string][] {
  const list: [string, string][] = [
    [`${s.name}-image`, T.image],
    [`${s.name}-secrets`, T.secrets],
  ];
  if (s.config.networkMode === "nat") {
    list.push([`${s.name}-network`, T.network]);
  }
  s.plan.hosts.forEach((_, i) => {
    const suffix = i === 0 ? "" : `-host-${i + 1}`;
    list.push([`${s.name}-pool${suffix}`, T.pool], [`${s.name}-base-volume${suffix}`, T.base]);
  });
  for (const n of s.plan.nodes) {
    list.push(
      [`${s.name}-disk-${n.name}`, T.volume],
      [`${s.name}-seed-${n.name}`, T.seed],
      [`${s.name}-vm-${n.name}`, T.domain],
    );
  }
  return list;
}

for (const s of [THREE, TWO, BRIDGED, MULTI]) {
  const count = resourceCount(s);

  test.serial(`${label(s)}: exactly ${count} resources with the planned names and types`, async (t) => {
    const mine = await registrationsOf(s);
    t.is(mine.length, count);
    t.deepEqual(mine.map((m) => [m.name, m.type] as [string, string]).sort(), expectedNames(s).sort());
    t.is(mine.filter((m) => m.type === T.domain).length, s.config.nodeCount);
    t.is(mine.filter((m) => m.type === T.volume).length, s.config.nodeCount, "one overlay per node, no base copy");
    t.is(mine.filter((m) => m.type === T.seed).length, s.config.nodeCount);
    t.is(mine.filter((m) => m.type === T.pool).length, s.plan.hosts.length, "one stack pool per host");
    t.is(mine.filter((m) => m.type === T.base).length, s.plan.hosts.length, "one base volume per host");
  });

  test.serial(`${label(s)}: pool and base-volume inputs per host are exact`, async (t) => {
    const mine = await registrationsOf(s);
    const image = one(mine, `${s.name}-image`).inputs;
    s.plan.hosts.forEach((uri, i) => {
      const suffix = i === 0 ? "" : `-host-${i + 1}`;
      t.like(one(mine, `${s.name}-pool${suffix}`).inputs, {
        uri,
        poolName: i === 0 ? s.pool : `${s.pool}-h${i + 1}`,
        stack: s.stack,
      });
      t.like(one(mine, `${s.name}-base-volume${suffix}`).inputs, {
        uri,
        // Outputs of the BaseImage: the verified file in this machine's cache.
        imagePath: `${String(image.cacheDir)}/images/${s.config.image === "custom" ? SHA : "cd".repeat(32)}.qcow2`,
        sha256: SHA,
        sizeBytes: 1,
      });
    });
    t.deepEqual(s.plan.hosts, s === MULTI ? ["qemu:///system", REMOTE] : ["qemu:///system"]);
  });

  test.serial(`${label(s)}: network, secrets and base-image inputs are exact`, async (t) => {
    const mine = await registrationsOf(s);
    if (s.config.networkMode === "bridge") {
      t.is(mine.filter((m) => m.type === T.network).length, 0, "bridge mode: no libvirt network");
    } else {
      t.like(one(mine, `${s.name}-network`).inputs, {
        uri: "qemu:///system",
        networkName: `cilium-lab-${s.stack}`,
        bridgeName: s.plan.bridgeName,
        cidr: s.config.networkCidr,
        gateway: s.plan.gateway,
        hosts: s.plan.nodes.map((n) => ({ mac: n.mac, ip: n.ip, hostname: n.name })),
        stack: s.stack,
        // networkMtu: the default 1500 (three), 9000 (two).
        mtu: s === TWO ? 9000 : 1500,
      });
    }
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
        ...NOT_UBUNTU,
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
  });
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
    t.deepEqual(
      nodes.nodes.map((n) => n.hostUri),
      ["qemu:///system", "qemu:///system", "qemu:///system"],
    );
    t.deepEqual(
      build({ ...MULTI, name: "out-multi" }).nodes.map((n) => n.hostUri),
      ["qemu:///system", REMOTE, "qemu:///system"],
      "nodeHosts round-robin: the measured pair node-2/node-3 on different hosts",
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
