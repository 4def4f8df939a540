/**
 * The LabNodes component under Pulumi mocks, as the nodes mock suites build it: a 3-node NAT stack
 * (custom image, defaults), a 2-node NAT stack (Ubuntu image, extra authorized key, networkMtu
 * 9000), a 3-node bridge-mode stack and a 3-node bridge-mode stack on two hosts (`nodeHosts`),
 * with every dynamic resource's computed outputs mocked the way its provider computes them, and
 * every registration recorded.
 */
import { parseLabConfig, type LabConfig } from "../../infra/config";
import type { LabNodes as LabNodesClass } from "../../infra/nodes/nodes";
import { planLab, type LabPlan } from "../../infra/plan";
import { echoMocks, recordMocks, unwrapSecrets, type Registration } from "../support/pulumi-mocks";

export const SHA = "ab".repeat(32);

/** Fake generated secrets, distinct per stack comment. */
export function fakeSecrets(comment: string, nodes: string[]): Record<string, unknown> {
  return {
    sshPublicKey: `ssh-ed25519 USERKEY ${comment}`,
    sshPrivateKey: `PRIVATE-USER-${comment}`,
    hostPublicKeys: Object.fromEntries(nodes.map((n) => [n, `ssh-ed25519 HOSTKEY-${n} ${comment}-${n}`])),
    hostPrivateKeys: Object.fromEntries(nodes.map((n) => [n, `PRIVATE-HOST-${n}\n`])),
    k3sToken: `TOKEN-${comment}`,
  };
}

/** The target directory libvirt gives a pool of ours. */
export const poolPath = (pool: string): string => `/var/lib/libvirt/images/${pool}`;
/** The host UUID the mocked BaseVolume reports for a URI. */
export const fakeHostUuid = (uri: string): string => `uuid-of-${uri}`;

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
    case "pulumi-nodejs:dynamic/libvirt:StoragePool":
      return { targetPath: poolPath(String(inputs.poolName)) };
    case "pulumi-nodejs:dynamic/libvirt:BaseVolume": {
      const name = `base-${String(inputs.sha256).slice(0, 16)}.qcow2`;
      const pool = "cilium-lab-base";
      return {
        hostUuid: fakeHostUuid(String(inputs.uri)),
        pool,
        name,
        path: `${poolPath(pool)}/${name}`,
        uploadedBytes: 1,
      };
    }
    case "pulumi-nodejs:dynamic/libvirt:Volume":
      return { path: `${poolPath(String(inputs.pool))}/${String(inputs.name)}` };
    case "pulumi-nodejs:dynamic/libvirt:CloudInitDisk":
      return { path: `${poolPath(String(inputs.pool))}/${String(inputs.name)}-0123456789ab.iso` };
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

/** Installs the recording mocks, then loads the nodes layer: call it in `test.before`. */
export async function loadLabNodes(): Promise<void> {
  const monitor = await recordMocks(
    echoMocks((a) => {
      const inputs = unwrapSecrets(a.inputs) as Record<string, unknown>;
      return { ...(a.inputs as Record<string, unknown>), ...computed(a.type, inputs) };
    }),
    "mock",
  );
  seen = monitor.registrations;
  ({ LabNodes } = await import("../../infra/nodes/nodes"));
}

/** Waits until the mock monitor has seen `count` resources whose name starts with `prefix`. */
export async function settle(prefix: string, count: number): Promise<Registration[]> {
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

export function one(list: Registration[], name: string): Registration {
  const hits = list.filter((s) => s.name === name);
  if (hits.length !== 1 || !hits[0]) {
    throw new Error(`expected exactly one resource named ${name}, found ${hits.length}`);
  }
  return hits[0];
}

export interface Scenario {
  readonly name: string;
  readonly stack: string;
  readonly config: LabConfig;
  readonly plan: LabPlan;
  /** The stack's pool on its first host, and its target. */
  readonly pool: string;
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
    pool: `cilium-lab-${stack}`,
    poolDir: poolPath(`cilium-lab-${stack}`),
    cacheDir: "/cache/cilium-lab",
  };
}

/** The custom image every scenario but {@link TWO} uses. */
const CUSTOM_IMAGE = { image: "custom", imageUrl: "file:///images/test.qcow2", imageSha256: SHA };
/** Three bridge-mode nodes on 192.0.2.0/24 with the custom image. */
const BRIDGE_MODE = { ...CUSTOM_IMAGE, networkMode: "bridge", networkCidr: "192.0.2.0/24", nodeCount: "3" };

export const THREE = scenario("three", "t3", {
  ...CUSTOM_IMAGE,
  accelerator: "qemu",
  networkCidr: "192.168.181.0/24",
  nodeCount: "3",
  nodeCpus: "1",
  nodeMemoryMiB: "1024",
  nodeDiskGiB: "8",
  bootTimeoutSeconds: "600",
});
export const EXTRA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnbV8Ry1lhYRkEoc7nD7JrTzq1WmQ3u4M5Yk1xRj0Zp me@laptop";
export const TWO = scenario("two", "t2", {
  image: "ubuntu-24.04",
  networkCidr: "192.168.182.0/24",
  nodeCount: "2",
  sshAuthorizedKey: EXTRA_KEY,
  networkMtu: "9000",
});

/** Bridge mode on one host: static addresses from 192.0.2.0/24, two DNS servers. */
export const BRIDGED = scenario("bridged", "tb", {
  ...BRIDGE_MODE,
  accelerator: "qemu",
  bridge: "cl-test-br",
  gateway: "192.0.2.1",
  dns: "192.0.2.53,192.0.2.54",
});
/** The second host of {@link MULTI}. */
export const REMOTE = "qemu+ssh://lab@127.0.0.1:2222/system";
/** Bridge mode on two hosts, round-robin: node-1 and node-3 local, node-2 remote. */
export const MULTI = scenario("multi", "tm", {
  ...BRIDGE_MODE,
  bridge: "br0",
  gateway: "192.0.2.254",
  nodeHosts: `qemu:///system,${REMOTE}`,
});

export function build(s: Scenario): LabNodesClass {
  return new LabNodes(s.name, {
    config: s.config,
    plan: s.plan,
    stack: s.stack,
    cacheDir: s.cacheDir,
    keyringPath: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
  });
}

/** The types of the nodes layer's resources. */
export const T = {
  image: "pulumi-nodejs:dynamic/libvirt:BaseImage",
  secrets: "pulumi-nodejs:dynamic/lab:LabSecrets",
  network: "pulumi-nodejs:dynamic/libvirt:Network",
  pool: "pulumi-nodejs:dynamic/libvirt:StoragePool",
  base: "pulumi-nodejs:dynamic/libvirt:BaseVolume",
  volume: "pulumi-nodejs:dynamic/libvirt:Volume",
  seed: "pulumi-nodejs:dynamic/libvirt:CloudInitDisk",
  domain: "pulumi-nodejs:dynamic/libvirt:Domain",
};

const built = new Set<string>();

/** The scenario in test titles: the node count, and the mode or hosts when not the NAT default. */
export function label(s: Scenario): string {
  const hosts = s.plan.hosts.length > 1 ? ` on ${s.plan.hosts.length} hosts` : "";
  return `${s.config.nodeCount} nodes${s.config.networkMode === "bridge" ? `, bridge mode${hosts}` : ""}`;
}

/** The stack pool a node's overlay, seed and console log live in: `-hN` on host N ≥ 2. */
export function poolOf(s: Scenario, hostUri: string): string {
  const i = s.plan.hosts.indexOf(hostUri);
  return i === 0 ? s.pool : `${s.pool}-h${i + 1}`;
}

/** How many resources scenario `s` has: image, secrets, the NAT network, a pool and base volume per host, 3 per node. */
export function resourceCount(s: Scenario): number {
  return 2 + (s.config.networkMode === "nat" ? 1 : 0) + 2 * s.plan.hosts.length + 3 * s.config.nodeCount;
}

/** The registrations of scenario `s`'s LabNodes (built on first use), once all of them arrived. */
export function registrationsOf(s: Scenario): Promise<Registration[]> {
  if (!built.has(s.name)) {
    built.add(s.name);
    build(s);
  }
  return settle(s.name, resourceCount(s));
}
