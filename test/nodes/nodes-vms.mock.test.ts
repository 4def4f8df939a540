/**
 * The LabNodes component under Pulumi mocks, per node: the overlay disk (backed by its host's base
 * volume), the cloud-init seed (its user-data secret, nothing else; in bridge mode the static
 * address and the duplicate-address check) and the VM, with exact inputs chained by outputs (the
 * VM takes the disk's and seed's paths, the pool's name and the network's name, so destroy deletes
 * the VM first, the pool and network after it).
 */
import test from "ava";

import {
  BRIDGED,
  MULTI,
  SHA,
  THREE,
  TWO,
  fakeSecrets,
  label,
  loadLabNodes,
  one,
  poolOf,
  poolPath,
  registrationsOf,
} from "./nodes-mock-program";

test.before(loadLabNodes);

const BASE_PATH = `/var/lib/libvirt/images/cilium-lab-base/base-${SHA.slice(0, 16)}.qcow2`;

for (const s of [THREE, TWO, BRIDGED, MULTI]) {
  test.serial(`${label(s)}: each node's disk, seed and VM inputs are exact and chained by outputs`, async (t) => {
    const mine = await registrationsOf(s);
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
    const bridged = s.config.networkMode === "bridge";
    for (const n of s.plan.nodes) {
      const pool = poolOf(s, n.hostUri);
      const disk = one(mine, `${s.name}-disk-${n.name}`).inputs;
      t.is(disk.mode, undefined, "an overlay, not a copy");
      t.is(disk.poolDir, undefined, "in a libvirt pool, not a directory");
      t.like(disk, {
        uri: n.hostUri,
        pool,
        name: `${n.name}.qcow2`,
        // The BaseVolume's output: the image uploaded once into the host's shared base pool.
        backingPath: BASE_PATH,
        sizeGiB: s.config.nodeDiskGiB,
        stack: s.stack,
      });

      const seed = one(mine, `${s.name}-seed-${n.name}`);
      const userData = renderUserData({
        hostname: n.name,
        authorizedKeys: s.config.sshAuthorizedKey
          ? [keys.sshPublicKey, s.config.sshAuthorizedKey]
          : [keys.sshPublicKey],
        hostKey: { privateKey: keys.hostPrivateKeys[n.name] ?? "", publicKey: keys.hostPublicKeys[n.name] ?? "" },
        ...(bridged ? { duplicateAddressCheck: { address: n.ip, mac: n.mac } } : {}),
      });
      const networkConfig = renderNetworkConfig(
        bridged
          ? {
              mac: n.mac,
              static: {
                address: n.ip,
                prefix: 24,
                gateway: String(s.config.gateway),
                dns: s === BRIDGED ? ["192.0.2.53", "192.0.2.54"] : [String(s.config.gateway)],
              },
            }
          : { mac: n.mac },
      );
      t.like(seed.inputs, {
        uri: n.hostUri,
        pool,
        name: `${n.name}-seed`,
        userData,
        metaData: renderMetaData({
          instanceId: instanceIdFor(n.domainName, userData, networkConfig),
          hostname: n.name,
        }),
        networkConfig,
        stack: s.stack,
      });
      t.is(seed.inputs.poolDir, undefined);
      t.deepEqual(seed.secretKeys, ["userData"], "user-data carries the host private key: secret; nothing else is");

      const vm = one(mine, `${s.name}-vm-${n.name}`);
      t.like(vm.inputs, {
        uri: n.hostUri,
        domainName: `cilium-lab-${s.stack}-${n.name}`,
        vcpus: s.config.nodeCpus,
        memoryMiB: s.config.nodeMemoryMiB,
        // Outputs of the disk, the seed, the pool and the network: destroy deletes the VM first.
        diskPath: `${poolPath(pool)}/${n.name}.qcow2`,
        seedPath: `${poolPath(pool)}/${n.name}-seed-0123456789ab.iso`,
        pool,
        mac: n.mac,
        ip: n.ip,
        accelerator: s.config.accelerator,
        // In the pool's target directory (the StoragePool's output), read through libvirt.
        consoleLogPath: `${poolPath(pool)}/${n.name}-console.log`,
        bootTimeoutSeconds: s.config.bootTimeoutSeconds,
        sshUser: "lab",
        sshPrivateKey: `PRIVATE-USER-cilium-lab-${s.stack}`,
        hostPublicKey: keys.hostPublicKeys[n.name],
        stack: s.stack,
        // A recreated VM boots an empty overlay: cloud-init runs in full again.
        freshDisk: true,
      });
      if (bridged) {
        t.is(vm.inputs.bridgeName, s.config.bridge, "bridge mode: the NIC on the host bridge");
        t.is(vm.inputs.networkName, undefined);
      } else {
        t.is(vm.inputs.networkName, `cilium-lab-${s.stack}`, "NAT: the Network's output");
        t.is(vm.inputs.bridgeName, undefined);
      }
      t.true(vm.secretKeys.includes("sshPrivateKey"));
    }
  });
}
