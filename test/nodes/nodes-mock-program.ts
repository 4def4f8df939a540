/**
 * The LabNodes component under Pulumi mocks, as the nodes mock suites build it: a 3-node stack
 * (custom image, defaults) and a 2-node stack (Ubuntu image, extra authorized key, networkMtu 9000), with every dynamic
 * resource's computed outputs mocked the way its provider computes them, and every registration
 * recorded.
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

export const THREE = scenario("three", "t3", {
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
export const EXTRA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnbV8Ry1lhYRkEoc7nD7JrTzq1WmQ3u4M5Yk1xRj0Zp me@laptop";
export const TWO = scenario("two", "t2", {
  image: "ubuntu-24.04",
  networkCidr: "192.168.182.0/24",
  nodeCount: "2",
  sshAuthorizedKey: EXTRA_KEY,
  networkMtu: "9000",
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
  volume: "pulumi-nodejs:dynamic/libvirt:Volume",
  seed: "pulumi-nodejs:dynamic/libvirt:CloudInitDisk",
  domain: "pulumi-nodejs:dynamic/libvirt:Domain",
};

const built = new Set<string>();

/** The registrations of scenario `s`'s LabNodes (built on first use), once all `4 + 3 × nodes` arrived. */
export function registrationsOf(s: Scenario): Promise<Registration[]> {
  if (!built.has(s.name)) {
    built.add(s.name);
    build(s);
  }
  return settle(s.name, 4 + 3 * s.config.nodeCount);
}
