// test-runs-as: root
// (it creates the test bridge with `ip link add`; the private sshd then runs as root and logs in
// root, whose libvirt connection is the same system daemon)
//
// Remote libvirt hosts for real, through the real engine: the nodes layer (`LabNodes` in an inline
// Automation API program, as test/nodes/nodes.vm.test.ts runs it) with the Debian test image as
// `image: custom`, in bridge mode (the config requires it for remote hosts) on a test bridge with a
// host address from 192.0.2.0/24 (TEST-NET-1), no uplink and nothing forwarded. The bridge takes the
// upper half, 192.0.2.128/25 (host .129, nodes .139 and .140): some build hosts sit on 192.0.2.0/24
// themselves (eth0 192.0.2.2, gateway 192.0.2.1), and the /25 is more specific than their /24.
//
// 1. up with `libvirtUri: qemu+ssh://root@127.0.0.1:<port>/system?keyfile=…` (a private sshd on
//    loopback, sshd-harness.ts): both nodes boot through it and answer SSH on their static
//    addresses with their pinned host keys; the stack pool and the domains hold the ssh URI; sshd
//    logged the logins; node-1's console log (what a boot timeout quotes) and, in a refresh, every
//    resource are read back through it.
// 2. up with `nodeHosts: <that URI>,qemu:///system` instead: node-1 stays (its pool
//    cilium-lab-<stack> too, unchanged), node-2 moves to qemu:///system: its disk, seed and domain
//    are replaced, the pool cilium-lab-<stack>-h2 and that host's BaseVolume are created, nothing
//    else changes. The BaseVolume finds the image already there (volumes are keyed by libvirt's
//    host UUID, which both URIs share) and uploads nothing.
// 3. destroy: no domain and no pool of the stack is left (both ways); the base volume stays in the
//    shared base pool, like the download cache.
//
// It is one daemon reached two ways (the host UUIDs are equal, asserted): true multi-host was not
// run here. Suffix .vm, the heaviest of its needs: it boots VMs (three TCG boots).
import test, { type ExecutionContext } from "ava";

import type { EngineEvent, Stack, UpResult } from "@pulumi/pulumi/automation";

import { consoleTail } from "../../infra/libvirt/domain/console";
import { hostUuid, poolTargetPath } from "../../infra/libvirt/storage";
import { engineEnv, tempDir } from "../engine/support";
import { URI, changes, leftovers, virsh, vmTestStack, vmTestStart } from "../nodes/vm-host";
import { bridgeLeftovers, createTestBridge, sweepBridges } from "./bridge-support";
import {
  BRIDGE,
  PREFIX,
  PROJECT,
  STACK,
  baseVolumeKept,
  labProgram,
  nodesAnswer,
  remoteConfig,
  sshdLogins,
  stepsByOp,
} from "./remote-stack";
import { startSshd, type Sshd } from "./sshd-harness";

/** Stack + component + image, secrets + per host (pool, base volume) + per node (disk, seed, VM). */
const resources = (hosts: number): number => 1 + 1 + 2 + 2 * hosts + 3 * 2;
/** What moving node-2 to a second host must replace, and nothing else. */
const NODE_2 = ["lab-disk-node-2", "lab-seed-node-2", "lab-vm-node-2"];

let sshd: Sshd;
let remote = "";

test.before(async () => {
  sweepBridges(BRIDGE.slice(0, -1));
  sshd = await startSshd();
  sshd.trustHostKey();
  remote = sshd.uri();
  createTestBridge(BRIDGE);
});

test.after.always(async () => {
  sweepBridges(BRIDGE.slice(0, -1));
  await sshd?.stop();
});

/** `stack.up()`, timed and logged under `label`; the engine's events go to `events` when given. */
async function timedUp(t: ExecutionContext, stack: Stack, label: string, events?: EngineEvent[]): Promise<UpResult> {
  const t0 = Date.now();
  const up = await stack.up(events ? { onEvent: (e) => events.push(e) } : {});
  t.log(`${label}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return up;
}

test.serial(
  "a nodes stack boots through qemu+ssh on loopback in bridge mode, then nodeHosts moves node-2 to qemu:///system, and destroy leaves nothing",
  async (t) => {
    t.timeout(40 * 60_000, "three TCG boots on a shared 2-core host");
    const started = Date.now();
    const img = await vmTestStart(t, PREFIX);
    if (img === undefined) {
      return;
    }
    t.is(await hostUuid(remote), await hostUuid(URI), "one daemon reached two ways");
    const work = tempDir(t, "rv-ssh");
    let raw = remoteConfig(img, { libvirtUri: remote });
    const program = labProgram(() => raw, tempDir(t, "rv-cache"));
    const envVars = engineEnv(tempDir(t, "rv-backend"));
    const { stack, destroy } = await vmTestStack(
      t,
      { stackName: STACK, projectName: PROJECT, program, envVars },
      PREFIX,
    );

    // 1. Both nodes through qemu+ssh.
    const up1 = await timedUp(t, stack, "up #1 (2 nodes through qemu+ssh)");
    t.deepEqual(changes(up1.summary.resourceChanges), { create: resources(1) }, "up #1");
    t.deepEqual(up1.outputs.nodeHosts?.value, [
      { name: "node-1", host: remote },
      { name: "node-2", host: remote },
    ]);
    t.deepEqual(up1.outputs.domainUris?.value, [remote, remote], "the domains were made through qemu+ssh");
    t.deepEqual(up1.outputs.pools?.value, [{ uri: remote, pool: PREFIX }], "the pool was made through qemu+ssh");
    const logins1 = sshdLogins(sshd);
    t.true(logins1 > 0, "sshd logged the logins of up #1");
    t.regex(
      (await virsh("domiflist", `${PREFIX}-node-1`)).stdout,
      new RegExp(`bridge\\s+${BRIDGE}\\s`),
      "seen locally",
    );
    await nodesAnswer(t, work, up1.outputs, ["node-1", "node-2"]);
    // The console log (what a boot timeout quotes) read back through qemu+ssh with vol-download.
    const where = { uri: remote, pool: PREFIX, consoleLogPath: `${poolTargetPath(PREFIX)}/node-1-console.log` };
    const tail = await consoleTail(where);
    t.regex(tail, /Cloud-init v\. \S+ finished/, "node-1's console log read through qemu+ssh");
    const t0 = Date.now();
    const refresh = await stack.refresh();
    t.log(`refresh through qemu+ssh: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    t.deepEqual(changes(refresh.summary.resourceChanges), { same: resources(1) }, "refresh through qemu+ssh");
    const logins2 = sshdLogins(sshd);
    t.true(logins2 > logins1, "the refresh read through qemu+ssh");

    // 2. nodeHosts: node-1 stays on the ssh URI, node-2 moves to qemu:///system.
    raw = remoteConfig(img, { nodeHosts: `${remote},${URI}` });
    const events: EngineEvent[] = [];
    const up2 = await timedUp(t, stack, "up #2 (node-2 moved to qemu:///system)", events);
    t.deepEqual(
      changes(up2.summary.resourceChanges),
      { create: 2, replace: 3, same: resources(2) - 5 },
      "up #2: node-1 and its host unchanged",
    );
    t.deepEqual(stepsByOp(events), {
      create: ["lab-base-volume-host-2", "lab-pool-host-2"],
      "delete-replaced": NODE_2,
      replace: NODE_2,
      "create-replacement": NODE_2,
    });
    t.deepEqual(up2.outputs.nodeHosts?.value, [
      { name: "node-1", host: remote },
      { name: "node-2", host: URI },
    ]);
    t.deepEqual(up2.outputs.domainUris?.value, [remote, URI]);
    t.deepEqual(up2.outputs.pools?.value, [
      { uri: remote, pool: PREFIX },
      { uri: URI, pool: `${PREFIX}-h2` },
    ]);
    t.is(
      (up2.outputs.uploadedBytes?.value as number[])[1],
      0,
      "one daemon: the base volume is shared, not uploaded again",
    );
    await nodesAnswer(t, work, up2.outputs, ["node-1", "node-2"]);
    const logins3 = sshdLogins(sshd);
    t.true(logins3 > logins2, "node-2's old disk, seed and domain were deleted through qemu+ssh");

    // 3. Destroy: nothing of the stack is left; the bridge stays until after.always, the base volume for good.
    const down = await destroy();
    t.deepEqual(changes(down.summary.resourceChanges), { delete: resources(2) }, "destroy");
    t.true(sshdLogins(sshd) > logins3, "destroy went through qemu+ssh for node-1 and its pool");
    t.deepEqual(await leftovers(PREFIX), [], "no domain and no pool of the stack (both hosts)");
    t.deepEqual(bridgeLeftovers(BRIDGE).links, [BRIDGE], "the test bridge is the test's, not the stack's");
    t.true(await baseVolumeKept(img.sha256), "the base volume stays in the shared base pool");
    t.log(`sshd logins: ${sshdLogins(sshd)}; test: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  },
);
