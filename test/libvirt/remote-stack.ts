/**
 * The nodes-layer stack of remote.vm.test.ts: its config (the test image, two TCG nodes in bridge
 * mode on the test bridge, on the libvirt hosts the step names), the inline program (`LabNodes`,
 * as test/nodes/nodes.vm.test.ts runs it) with the outputs the test checks, the engine's steps per
 * operation, the logins a private sshd logged, and SSH into every node with its pinned host key.
 */
import type { ExecutionContext } from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import type { EngineEvent, OutputMap } from "@pulumi/pulumi/automation";

import { parseLabConfig } from "../../infra/config";
import { baseVolumeName } from "../../infra/libvirt/base-image";
import { BASE_POOL } from "../../infra/libvirt/storage";
import { LabNodes } from "../../infra/nodes/nodes";
import { planLab } from "../../infra/plan";
import { ssh, testImageConfig, virsh, type TestImage } from "../nodes/vm-host";
import { TEST_LAN, testLanNode } from "./bridge-support";
import type { Sshd } from "./sshd-harness";

/** The stack: libvirt objects `cilium-lab-clt-rv*` (pools `cilium-lab-clt-rv` and, on a second host, `-h2`). */
export const STACK = "clt-rv";
export const PROJECT = "clt-rv";
export const PREFIX = `cilium-lab-${STACK}`;
/** The test bridge (and the prefix of every link this test makes). */
export const BRIDGE = "clt-rv0";
/** The nodes and their static addresses on the test LAN (networkCidr 192.0.2.128/25: base + 10 + n). */
export const NODES = [
  ["node-1", testLanNode(1)],
  ["node-2", testLanNode(2)],
] as const;

/** Where the nodes run: one URI for all, or one per node (round-robin). */
export type Hosts = { readonly libvirtUri: string } | { readonly nodeHosts: string };

/** The raw stack config: the test image as `image: custom`, TCG, bridge mode on {@link BRIDGE}, gateway .129. */
export function remoteConfig(img: TestImage, hosts: Hosts): Record<string, string> {
  return {
    ...testImageConfig(img.image, img.sha256, TEST_LAN.cidr, NODES.length),
    networkMode: "bridge",
    bridge: BRIDGE,
    gateway: TEST_LAN.gateway,
    ...hosts,
  };
}

/**
 * The inline program: `LabNodes` on the config `raw()` gives at each run. Outputs: `nodeHosts` as
 * infra/index.ts exports it, the URI in each Domain's and each stack pool's state (which way the
 * provider really went), the bytes each host's BaseVolume uploaded, and the keys to reach the nodes.
 */
export function labProgram(
  raw: () => Record<string, string>,
  cacheDir: string,
): () => Promise<Record<string, unknown>> {
  return () => {
    const config = parseLabConfig(raw()).config;
    const nodes = new LabNodes("lab", { config, plan: planLab(config, STACK), stack: STACK, cacheDir });
    const hosts = [...nodes.hosts.values()];
    return Promise.resolve({
      nodeHosts: nodes.nodes.map(({ name, hostUri }) => ({ name, host: hostUri })),
      domainUris: nodes.nodes.map((n) => n.domain.uri),
      pools: hosts.map((h) => ({ uri: h.pool.uri, pool: h.pool.poolName })),
      uploadedBytes: hosts.map((h) => h.base.uploadedBytes),
      hostPublicKeys: nodes.hostPublicKeys,
      sshPrivateKey: nodes.sshPrivateKey,
    });
  };
}

/** The resource names (the URN's last part) of the engine's steps per operation, `same` left out. */
export function stepsByOp(events: readonly EngineEvent[]): Record<string, string[]> {
  const steps: Record<string, string[]> = {};
  for (const e of events) {
    const m = e.resourcePreEvent?.metadata;
    if (m !== undefined && m.op !== "same") {
      (steps[m.op] ??= []).push(m.urn.split("::").pop() ?? m.urn);
    }
  }
  return Object.fromEntries(Object.entries(steps).map(([op, names]) => [op, names.sort()]));
}

/** How many logins of its user from loopback the private sshd has logged so far. */
export function sshdLogins(sshd: Sshd): number {
  return (sshd.log().match(new RegExp(`Accepted publickey for ${sshd.user} from 127\\.0\\.0\\.1 `, "g")) ?? []).length;
}

/** Every node in `names` answers SSH on its static address with its pinned host key, with its hostname. */
export async function nodesAnswer(
  t: ExecutionContext,
  work: string,
  outputs: OutputMap,
  names: readonly string[],
): Promise<void> {
  await fs.writeFile(path.join(work, "id"), String(outputs.sshPrivateKey?.value), { mode: 0o600 });
  const hostKeys = outputs.hostPublicKeys?.value as Record<string, string>;
  for (const [name, ip] of NODES.filter(([n]) => names.includes(n))) {
    const r = await ssh(work, ip, hostKeys[name] ?? "", "hostname");
    t.is(r.stdout, `${name}\n`, `ssh ${name} at ${ip} with its pinned host key: ${r.stderr}`);
  }
}

/** Whether the test image's base volume is in the shared base pool (it outlives every stack). */
export async function baseVolumeKept(sha256: string): Promise<boolean> {
  return (await virsh("vol-info", baseVolumeName(sha256), "--pool", BASE_POOL)).code === 0;
}
