/**
 * The LabNodes component under Pulumi mocks, per node: the overlay disk, the cloud-init seed (its
 * user-data secret, nothing else) and the VM, with exact inputs chained by outputs (the VM takes the
 * disk's and seed's paths and the network's name, so destroy deletes the VM first).
 */
import test from "ava";

import { THREE, TWO, fakeSecrets, loadLabNodes, one, registrationsOf } from "./nodes-mock-program";

test.before(loadLabNodes);

for (const s of [THREE, TWO]) {
  test.serial(
    `${s.config.nodeCount} nodes: each node's disk, seed and VM inputs are exact and chained by outputs`,
    async (t) => {
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
      for (const n of s.plan.nodes) {
        const disk = one(mine, `${s.name}-disk-${n.name}`).inputs;
        t.is(disk.mode, undefined, "an overlay of the stack's base copy, not a copy");
        t.like(disk, {
          uri: "qemu:///system",
          poolDir: s.poolDir,
          name: `${n.name}.qcow2`,
          baseImagePath: `${s.poolDir}/base.qcow2`,
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
        });
        const networkConfig = renderNetworkConfig({ mac: n.mac });
        t.like(seed.inputs, {
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
        t.like(vm.inputs, {
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
        });
        t.true(vm.secretKeys.includes("sshPrivateKey"));
      }
    },
  );
}
