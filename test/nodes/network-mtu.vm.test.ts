// test-runs-as: root (reads the dnsmasq config libvirt generates for the network, /var/lib/libvirt/dnsmasq/<net>.conf, which only root can read)
/**
 * `networkMtu` under the real engine (Automation API, inline program, file backend), real libvirtd and
 * 2 real TCG guests from the Debian test image as `image: custom`:
 *
 * 1. `up` with the default networkMtu (1500): the guests' NICs are at 1500.
 * 2. networkMtu 9000: the preview plans, and the `up` does, exactly one replacement of the Network and
 *    of each Domain (delete-before-replace: the engine deletes the VMs, which take their `networkName`
 *    from the Network, before the network) — nothing else changes: the base image, the pool, the base
 *    volume, the disks, the seeds and the secrets stay.
 * 3. The new network says `<mtu size='9000'/>`, its bridge and dnsmasq's DHCP option carry 9000, and
 *    in each guest the NIC comes up at MTU 9000. This is what the Cilium layer relies on: the agent
 *    takes its MTU from the node's NIC. The guest gets it from its DHCP lease (option 26), not from
 *    virtio-net's host_mtu: libvirt 9.0 does not pass a network's MTU to an interface that has no
 *    `<mtu>` of its own, so the NIC's max_mtu stays virtio's 65535 (logged, not asserted).
 * 4. destroy: nothing of the stack is left on the host.
 *
 * Needs what test/nodes/nodes.vm.test.ts needs (libvirtd, reachable as root or as a member of group
 * libvirt, the pulumi CLI, the test image in TEST_IMAGE/TEST_IMAGE_SHA256). Names: stack `cl-n-mtu`
 * → libvirt objects `cilium-lab-cl-n-mtu*`, network 192.168.188.0/24. Suffix .vm, the heaviest of its needs: it boots VMs (four boots).
 */
import test, { type ExecutionContext } from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import type { EngineEvent, OutputMap, Stack, UpResult } from "@pulumi/pulumi/automation";

import { parseLabConfig } from "../../infra/config";
import { LabNodes } from "../../infra/nodes/nodes";
import { planLab } from "../../infra/plan";
import { engineEnv, tempDir } from "../engine/support";
import { changes, leftovers, run, ssh, testImageConfig, virsh, vmTestStack, vmTestStart } from "./vm-host";

const STACK = "cl-n-mtu";
const PROJECT = "cl-n-mtu";
const PREFIX = `cilium-lab-${STACK}`;
const CIDR = "192.168.188.0/24";
const NODES = [
  ["node-1", "192.168.188.11"],
  ["node-2", "192.168.188.12"],
] as const;
/** Stack + component + image, secrets, network, pool, base volume + (disk, seed, VM) per node. */
const RESOURCES = 1 + 1 + 5 + 3 * NODES.length;

/** The URN of a LabNodes child named `lab-<name>` of dynamic type `libvirt:<type>`. */
function urnOf(type: "Network" | "Domain", name: string): string {
  return `urn:pulumi:${STACK}::${PROJECT}::lab:nodes:LabNodes$pulumi-nodejs:dynamic/libvirt:${type}::lab-${name}`;
}

/** What a networkMtu change must replace, and nothing else. */
const MUST_REPLACE = [urnOf("Domain", "vm-node-1"), urnOf("Domain", "vm-node-2"), urnOf("Network", "network")].sort();

/** The URNs of the steps with operation `op` among the engine's pre-events. */
function stepsOf(events: readonly EngineEvent[], op: string): string[] {
  return events
    .map((e) => e.resourcePreEvent?.metadata)
    .filter((m) => m !== undefined && m.op === op)
    .map((m) => m?.urn ?? "")
    .sort();
}

/** `stack.up()`, its duration logged under `label`; the engine's events go to `events` when given. */
async function timedUp(t: ExecutionContext, stack: Stack, label: string, events?: EngineEvent[]): Promise<UpResult> {
  const t0 = Date.now();
  const up = await stack.up(events ? { onEvent: (e) => events.push(e) } : {});
  t.log(`${label}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return up;
}

/** Every guest's lab NIC is at `mtu` (each NIC's facts logged). */
async function guestMtusAre(t: ExecutionContext, work: string, outputs: OutputMap, mtu: number): Promise<void> {
  const nics = await guestNics(t, work, outputs);
  t.log(`guest NICs at ${mtu}: ${JSON.stringify(nics)}`);
  t.deepEqual(
    nics.map((n) => n.mtu),
    NODES.map(() => mtu),
  );
}

/** Each guest's lab NIC (the one with the node's address) as `ip -d -j link` reports it: `{name, mtu, max_mtu}`. */
async function guestNics(t: ExecutionContext, work: string, outputs: OutputMap): Promise<Record<string, unknown>[]> {
  await fs.writeFile(path.join(work, "id"), String(outputs.sshPrivateKey?.value), { mode: 0o600 });
  const hostKeys = outputs.hostPublicKeys?.value as Record<string, string>;
  const nics: Record<string, unknown>[] = [];
  for (const [name, ip] of NODES) {
    const nic = `$(ip -o -4 addr show to ${ip} | awk '{print $2}')`;
    const r = await ssh(
      work,
      ip,
      hostKeys[name] ?? "",
      `PATH=$PATH:/usr/sbin:/sbin; ip -d -j link show dev ${nic}; sudo -n cat /var/lib/dhcp/dhclient*.leases 2>/dev/null | grep -m1 interface-mtu || true`,
    );
    t.is(r.code, 0, `ssh ${name}: ${r.stderr}`);
    const [json = "[{}]", lease = ""] = r.stdout.split("\n");
    const link = (JSON.parse(json) as Record<string, unknown>[])[0] ?? {};
    // The lease line (Debian's dhclient) shows where the MTU came from; logged, not asserted.
    nics.push({ node: name, name: link.ifname, mtu: link.mtu, max_mtu: link.max_mtu, lease: lease.trim() });
  }
  return nics;
}

/** The host side of the network at `mtu`: its XML's `<mtu>`, its bridge's MTU, the MTU dnsmasq hands out by DHCP. */
async function hostSideIs(t: ExecutionContext, bridge: string, mtu: number): Promise<void> {
  const xml = (await virsh("net-dumpxml", PREFIX)).stdout;
  const link = JSON.parse((await run("ip", ["-j", "link", "show", "dev", bridge])).stdout || "[{}]") as {
    mtu?: number;
  }[];
  const conf = await fs.readFile(`/var/lib/libvirt/dnsmasq/${PREFIX}.conf`, "utf8").catch(() => "");
  t.deepEqual(
    {
      xml: /<mtu size='(\d+)'\/>/.exec(xml)?.[0] ?? "no <mtu>",
      bridge: link[0]?.mtu ?? 0,
      dhcp: /^dhcp-option=option:mtu,.*$/m.exec(conf)?.[0] ?? "no dhcp mtu option",
    },
    { xml: `<mtu size='${mtu}'/>`, bridge: mtu, dhcp: `dhcp-option=option:mtu,${mtu}` },
    `the network at MTU ${mtu} on the host`,
  );
}

test("networkMtu 1500 → 9000 under the real engine replaces the Network and every Domain and nothing else; the guests' NICs come up at 9000", async (t) => {
  t.timeout(45 * 60_000, "four TCG boots on a shared 2-core host");
  const img = await vmTestStart(t, PREFIX);
  if (img === undefined) {
    return;
  }
  const { image, sha256: imageSha } = img;

  const cacheDir = tempDir(t, "mtu-cache");
  const work = tempDir(t, "mtu-ssh");
  let raw: Record<string, string> = testImageConfig(image, imageSha, CIDR, NODES.length);
  const bridge = planLab(parseLabConfig(raw).config, STACK).bridgeName;
  const program = (): Promise<Record<string, unknown>> => {
    const config = parseLabConfig(raw).config;
    const nodes = new LabNodes("lab", { config, plan: planLab(config, STACK), stack: STACK, cacheDir });
    return Promise.resolve({
      hostPublicKeys: nodes.hostPublicKeys,
      sshPrivateKey: nodes.sshPrivateKey,
      network: nodes.network?.id,
      vms: nodes.nodes.map((n) => n.domain.id),
    });
  };
  const { stack, destroy } = await vmTestStack(
    t,
    { stackName: STACK, projectName: PROJECT, program, envVars: engineEnv(tempDir(t, "mtu-backend")) },
    PREFIX,
  );

  // 1. The default: MTU 1500 on the network and in the guests.
  const up1 = await timedUp(t, stack, "up at 1500");
  t.deepEqual(changes(up1.summary.resourceChanges), { create: RESOURCES });
  await hostSideIs(t, bridge, 1500);
  await guestMtusAre(t, work, up1.outputs, 1500);

  // 2. networkMtu 9000: the preview plans, and the up does, the replacements and nothing else.
  raw = { ...raw, networkMtu: "9000" };
  const planned: EngineEvent[] = [];
  const preview = await stack.preview({ onEvent: (e) => planned.push(e) });
  t.deepEqual(changes(preview.changeSummary), { replace: 3, same: RESOURCES - 3 }, "preview");
  t.deepEqual(stepsOf(planned, "replace"), MUST_REPLACE, "the preview replaces the network and both VMs");
  const done: EngineEvent[] = [];
  const up2 = await timedUp(t, stack, "up to 9000", done);
  t.deepEqual(changes(up2.summary.resourceChanges), { replace: 3, same: RESOURCES - 3 }, "up");
  t.deepEqual(stepsOf(done, "replace"), MUST_REPLACE);
  t.deepEqual(stepsOf(done, "delete-replaced"), MUST_REPLACE, "each old object deleted (before its replacement)");
  t.deepEqual(stepsOf(done, "create-replacement"), MUST_REPLACE);
  t.deepEqual(stepsOf(done, "update"), [], "no in-place update");
  t.log(`replaced: ${MUST_REPLACE.join(" | ")}`);
  t.not(up2.outputs.network?.value, up1.outputs.network?.value, "a new network (new UUID)");
  t.notDeepEqual(up2.outputs.vms?.value, up1.outputs.vms?.value, "new VMs");

  // 3. The host and the guests at 9000 (from the DHCP lease; max_mtu, logged, says whether host_mtu was passed).
  await hostSideIs(t, bridge, 9000);
  await guestMtusAre(t, work, up2.outputs, 9000);

  // 4. Destroy: nothing of the stack left.
  const down = await destroy();
  t.deepEqual(changes(down.summary.resourceChanges), { delete: RESOURCES });
  t.deepEqual(await leftovers(PREFIX), [], "the host is clean");
});
