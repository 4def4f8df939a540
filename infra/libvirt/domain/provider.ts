/**
 * `Domain`: one lab VM, and the wait until it is usable. Mirrors `libvirt.Domain` of the retired
 * `@pulumi/libvirt`, plus readiness (./readiness.ts): `create` returns only when the node has its DHCP
 * lease (NAT mode; a bridged node has a static address and goes straight to port 22), an SSH login
 * with the lab key succeeds against the pinned host key, and cloud-init has finished, bounded by
 * `bootTimeoutSeconds`. Everything on the host goes through libvirt (disk, seed and console log are
 * volumes of the stack's pool), so it works as a user in group libvirt and over `qemu+ssh://`.
 *
 * On any create failure the domain is destroyed and undefined before the error is thrown (a plain
 * throw from `create` records nothing in the state, so anything left would leak).
 */
import { pathMod, toolFailure, virsh, virshDefineXml, virshList, virshOk } from "../exec";
import { foreignObjectError, ownedBy, ownedLibvirtResource } from "../owned";
import { domainXml, parseDomainXml, parseNetworkXml } from "../xml";
import { poolTarget, volumeFacts } from "../storage";
import { bridgeOf, startFix } from "./boot-errors";
import { checkDomain } from "./check";
import { removeConsole } from "./console";
import { resetOverlay } from "./overlay";
import { normalizePublicKey, startAndWait } from "./readiness";
import type { DomainArgs, DomainInputs, DomainOutputs } from "./types";

/** Flags that make `virsh undefine` succeed whatever extra state a domain has (NVRAM, managed save, snapshot and checkpoint metadata). */
export const UNDEFINE_FLAGS = ["--nvram", "--managed-save", "--snapshots-metadata", "--checkpoints-metadata"] as const;

/** Stops (if running) and undefines a domain; an already missing domain is fine. */
async function removeDomain(uri: string, nameOrUuid: string, action: string): Promise<void> {
  const stop = await virsh(uri, ["destroy", nameOrUuid]);
  if (stop.code !== 0 && !/domain is not running|Domain not found|failed to get domain/i.test(stop.stderr)) {
    throw toolFailure(action, stop, `stop it by hand: virsh destroy ${nameOrUuid}`, uri);
  }
  const r = await virsh(uri, ["undefine", nameOrUuid, ...UNDEFINE_FLAGS]);
  if (r.code !== 0 && !/Domain not found|failed to get domain/i.test(r.stderr)) {
    throw toolFailure(action, r, `undefine it by hand: virsh undefine ${nameOrUuid} --nvram`, uri);
  }
}

/** Refuses a disk or seed path libvirt does not know as a volume (on the libvirt host, local or remote). */
async function requireVolume(uri: string, path: string, what: string, action: string, fix: string): Promise<void> {
  if ((await volumeFacts(uri, undefined, path)) === undefined) {
    throw new Error(`${action} failed: ${what} ${path} does not exist. Nothing was created. Fix: ${fix}`);
  }
}

/** The stack pool must exist, and the console log must lie in its target directory (it is read and removed as a volume of it). */
async function requireConsoleInPool(inputs: DomainInputs, action: string): Promise<void> {
  const pool = inputs.pool ?? "";
  const target = await poolTarget(inputs.uri, pool);
  if (target === undefined) {
    throw new Error(
      `${action} failed: libvirt storage pool "${pool}" does not exist. Nothing was created. Fix: the stack's StoragePool creates it; run \`pulumi up --refresh\`.`,
    );
  }
  if (pathMod().dirname(inputs.consoleLogPath) !== target) {
    throw new Error(
      `${action} failed: consoleLogPath ${inputs.consoleLogPath} is not in the target directory ${target} of pool "${pool}". Nothing was created. ` +
        `Fix: put the console log there (${target}/<node>-console.log).`,
    );
  }
}

/** NAT mode: the network must exist, be active and reserve the node's address for its MAC. */
async function requireNetwork(inputs: DomainInputs, action: string): Promise<void> {
  const { uri } = inputs;
  const networkName = inputs.networkName ?? "";
  const networks = await virshList(uri, ["net-list", "--all", "--name"], action);
  if (!networks.has(networkName)) {
    throw new Error(
      `${action} failed: libvirt network "${networkName}" does not exist. Nothing was created. Fix: create the Network first (pass Network.networkName).`,
    );
  }
  const net = parseNetworkXml(await virshOk(uri, ["net-dumpxml", networkName], action, "check libvirtd"));
  const reservation = net.hosts.find((h) => h.mac === inputs.mac);
  if (!reservation || reservation.ip !== inputs.ip) {
    throw new Error(
      `${action} failed: network "${networkName}" has no DHCP reservation ${inputs.mac} → ${inputs.ip} ` +
        `(it has: ${net.hosts.map((h) => `${h.mac} → ${h.ip}`).join(", ") || "none"}), so the node would never get its address. ` +
        "Nothing was created. Fix: add the node to the Network's hosts.",
    );
  }
  if (!(await virshList(uri, ["net-list", "--name"], action)).has(networkName)) {
    throw new Error(
      `${action} failed: libvirt network "${networkName}" is not active. Nothing was created. Fix: \`virsh net-start ${networkName}\` or \`pulumi up --refresh\`.`,
    );
  }
}

function toOutputs(inputs: DomainInputs, uuid: string, running: boolean): DomainOutputs {
  return {
    uri: inputs.uri,
    uuid,
    domainName: inputs.domainName,
    vcpus: inputs.vcpus,
    memoryMiB: inputs.memoryMiB,
    diskPath: inputs.diskPath,
    seedPath: inputs.seedPath,
    networkName: inputs.networkName ?? "",
    bridgeName: inputs.bridgeName ?? "",
    pool: inputs.pool ?? "",
    mac: inputs.mac,
    ip: inputs.ip,
    accelerator: inputs.accelerator,
    consoleLogPath: inputs.consoleLogPath,
    bootTimeoutSeconds: inputs.bootTimeoutSeconds,
    sshUser: inputs.sshUser,
    hostPublicKey: normalizePublicKey(inputs.hostPublicKey),
    stack: inputs.stack,
    freshDisk: inputs.freshDisk ?? false,
    running,
  };
}

async function createDomain(inputs: DomainInputs): Promise<{ id: string; outs: DomainOutputs }> {
  const { uri, domainName: name } = inputs;
  const action = `creating domain "${name}"`;
  const existing = await virshList(uri, ["list", "--all", "--name"], action);
  if (existing.has(name)) {
    const dom = parseDomainXml(await virshOk(uri, ["dumpxml", name], action, "check libvirtd"));
    if (!ownedBy(dom.owner, inputs.stack)) {
      const remove = `virsh destroy ${name}; virsh undefine ${name} --nvram`;
      throw foreignObjectError(action, "domain", name, inputs.stack, dom.owner, remove);
    }
    // Ours but unknown to the state: an interrupted create. Its boot wait never finished, so
    // rebuild it rather than adopt a VM in an unknown condition.
    await removeDomain(uri, name, `${action} (removing the leftover of an interrupted run)`);
  }
  await requireConsoleInPool(inputs, action);
  const volumeFix = (resource: string): string => `the node's ${resource} creates it; run \`pulumi up --refresh\`.`;
  await requireVolume(uri, inputs.diskPath, "disk", action, volumeFix("Volume"));
  await requireVolume(uri, inputs.seedPath, "cloud-init seed", action, volumeFix("CloudInitDisk"));
  if (bridgeOf(inputs) === undefined) {
    await requireNetwork(inputs, action);
  }
  if (inputs.freshDisk === true) {
    await resetOverlay(uri, inputs.pool ?? "", inputs.diskPath, action);
  }
  await removeConsole(inputs);

  const xml = domainXml({
    name,
    stack: inputs.stack,
    vcpus: inputs.vcpus,
    memoryMiB: inputs.memoryMiB,
    accelerator: inputs.accelerator,
    diskPath: inputs.diskPath,
    seedPath: inputs.seedPath,
    networkName: inputs.networkName ?? "",
    bridgeName: inputs.bridgeName ?? "",
    mac: inputs.mac,
    consoleLogPath: inputs.consoleLogPath,
  });
  const define = await virshDefineXml(uri, "define", "domain.xml", xml);
  if (define.code !== 0) {
    throw toolFailure(
      action,
      define,
      `${startFix(define.stderr, inputs.accelerator, inputs.bridgeName)} Nothing was created.`,
      uri,
    );
  }
  const rollback = async (): Promise<void> => {
    await removeDomain(uri, name, `${action} (rolling back)`);
    await removeConsole(inputs);
  };
  let uuid: string;
  try {
    uuid = (await virshOk(uri, ["domuuid", name], action, "check libvirtd")).trim();
  } catch (error) {
    await rollback();
    throw error;
  }
  await startAndWait(inputs, action, rollback, "The domain was destroyed and undefined (its disk and seed are kept).");
  return { id: uuid, outs: toOutputs(inputs, uuid, true) };
}

async function isRunning(uri: string, id: string, action: string): Promise<boolean> {
  return (await virshList(uri, ["list", "--uuid"], action)).has(id);
}

async function readDomain(id: string, props: DomainOutputs): Promise<{ id: string; props?: DomainOutputs }> {
  const action = `reading domain "${props.domainName}" (${id})`;
  // Definite "gone" only from a successful listing; any failure throws (never drop state on errors).
  if (!(await virshList(props.uri, ["list", "--all", "--uuid"], action)).has(id)) {
    return { id: "" };
  }
  const dom = parseDomainXml(await virshOk(props.uri, ["dumpxml", id], action, "check libvirtd"));
  const disk = dom.disks.find((d) => d.target === "vda");
  const seed = dom.disks.find((d) => d.target === "vdb");
  const nic = dom.interfaces[0];
  return {
    id,
    props: {
      ...props,
      domainName: dom.name,
      vcpus: dom.vcpus,
      memoryMiB: dom.memoryMiB,
      diskPath: disk?.file ?? "",
      seedPath: seed?.file ?? "",
      networkName: nic?.network ?? "",
      bridgeName: nic?.bridge ?? "",
      mac: nic?.mac ?? "",
      accelerator: dom.type,
      consoleLogPath: dom.serialFile ?? "",
      stack: dom.owner?.stack ?? "",
      running: await isRunning(props.uri, id, action),
    },
  };
}

async function deleteDomain(id: string, props: DomainOutputs): Promise<void> {
  const action = `deleting domain "${props.domainName}" (${id})`;
  if ((await virshList(props.uri, ["list", "--all", "--uuid"], action)).has(id)) {
    await removeDomain(props.uri, id, action);
  }
  if (props.consoleLogPath) {
    await removeConsole(props);
  }
}

async function updateDomain(id: string, olds: DomainOutputs, news: DomainInputs): Promise<{ outs: DomainOutputs }> {
  const action = `starting domain "${news.domainName}" again`;
  let running = await isRunning(news.uri, id, action);
  if (!running) {
    // Stopped by hand: start it and wait; on failure leave it defined (it is in the state) and say so.
    await startAndWait(
      news,
      action,
      async () => {
        await virsh(news.uri, ["destroy", id]);
      },
      "The domain was stopped again and is still defined.",
    );
    running = true;
  }
  return { outs: { ...toOutputs(news, id, running), uuid: olds.uuid || id } };
}

/** Keys whose change replaces the VM. */
export const DOMAIN_REPLACE_KEYS = [
  "uri",
  "domainName",
  "vcpus",
  "memoryMiB",
  "diskPath",
  "seedPath",
  "networkName",
  "bridgeName",
  "pool",
  "mac",
  "ip",
  "accelerator",
  "consoleLogPath",
  "stack",
] as const;
/** Keys that change only what the provider checks (or does at a later create), not the running VM. */
export const DOMAIN_UPDATE_KEYS = ["bootTimeoutSeconds", "sshUser", "hostPublicKey", "freshDisk"] as const;

/**
 * One lab VM (`pulumi-nodejs:dynamic/libvirt:Domain`), id = libvirt UUID, and its provider (one
 * instance shared by every Domain). `create` defines, starts and waits for readiness (lease, SSH
 * login with the pinned host key, cloud-init finished) within `bootTimeoutSeconds`, rolling back on
 * any failure. `delete` destroys and undefines it and removes its console log. A VM shut off by hand
 * is started again (and waited for) by the next `up`. `hostPublicKey` is the pinned host key
 * (`type base64`), for `remote.Command` `connection.hostKey`.
 */
export const { provider: domainProvider, Resource: Domain } = ownedLibvirtResource<
  DomainArgs,
  DomainInputs,
  DomainOutputs
>(
  { type: "Domain", startedKey: "running", secretOutputs: ["sshPrivateKey"] },
  {
    check: checkDomain,
    // States written before bridges and pools lack these keys: both sides read them as the empty defaults.
    normalize: (olds, news) => {
      const nic = (o: Record<string, unknown>): Record<string, unknown> => ({
        ...o,
        networkName: o.networkName ?? "",
        bridgeName: o.bridgeName ?? "",
        pool: o.pool ?? "",
      });
      return { olds: nic(olds), news: nic(news) };
    },
    replaceKeys: DOMAIN_REPLACE_KEYS,
    updateKeys: DOMAIN_UPDATE_KEYS,
  },
  { create: createDomain, read: readDomain, update: updateDomain, delete: deleteDomain },
);
export type Domain = InstanceType<typeof Domain>;
