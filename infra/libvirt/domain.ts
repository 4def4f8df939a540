/**
 * `Domain`: one lab VM, and the wait until it is usable. Mirrors `libvirt.Domain` of the retired
 * `@pulumi/libvirt`, plus readiness: `create` returns only when the node has its DHCP lease, an
 * SSH login with the lab key succeeds against the pinned host key, and cloud-init has finished
 * (see {@link READY_COMMAND}), bounded by `bootTimeoutSeconds` (Pulumi's `customTimeouts` never reach dynamic providers, and `cancel` is a
 * no-op in the Node provider host, so the bound must be ours).
 *
 * Readiness check, and why a full login rather than `ssh-keyscan`: keyscan proves only which host
 * key sshd offers; the next layer (`remote.Command`) needs the login itself to work, and its own
 * dialing gives up after ~7.5 s of refusals with a less helpful message. `ssh -o
 * StrictHostKeyChecking=yes` with a known_hosts file holding only `hostPublicKey` makes OpenSSH verify
 * the host's signature over the session (possession of the key, not just its advertisement), and the
 * same command proves user + key + authorized_keys. The private key goes to a 0600 file in a 0700
 * temp dir removed in `finally`, never to argv or messages.
 *
 * On timeout the error names the node, MAC, expected IP, the stage reached, the network's leases and
 * the serial console tail, and the domain is destroyed and undefined before the error is thrown (a
 * plain throw from `create` records nothing in the state, so anything left would leak).
 */
import * as pulumi from "@pulumi/pulumi";

import { parseIpv4 } from "../config/cidr";
import {
  Checker,
  MAC_PATTERN,
  PROVIDER_VERSION,
  STACK_PATTERN,
  absPath,
  checkUri,
  diffKeys,
  int,
  removePoolDirIfEmpty,
} from "./common";
import {
  fsp,
  netMod,
  pathExists,
  pathMod,
  privateTempDir,
  removeFile,
  runTool,
  sleep,
  tail,
  toolFailure,
  virsh,
  virshList,
  virshOk,
  type RunResult,
} from "./exec";
import {
  OWNER_PROJECT,
  domainXml,
  parseDomainXml,
  parseLeases,
  parseNetworkXml,
  type Lease,
  type ParsedDomain,
} from "./xml";

/** Inputs of {@link Domain}. */
export interface DomainArgs {
  /** libvirt URI; only `qemu:///system`. */
  readonly uri: pulumi.Input<string>;
  /** libvirt domain name, unique per host (`planLab().nodes[i].domainName`). */
  readonly domainName: pulumi.Input<string>;
  /** vCPUs (cilium-lab:nodeCpus). Changing it replaces the VM. */
  readonly vcpus: pulumi.Input<number>;
  /** Memory in MiB (cilium-lab:nodeMemoryMiB). Changing it replaces the VM. */
  readonly memoryMiB: pulumi.Input<number>;
  /** The node's qcow2 disk: pass `Volume.path` (an Output) so a replaced volume replaces the VM. */
  readonly diskPath: pulumi.Input<string>;
  /** The NoCloud seed: pass `CloudInitDisk.path` (content-hashed, so changed cloud-init replaces the VM). */
  readonly seedPath: pulumi.Input<string>;
  /** The libvirt network: pass `Network.networkName` so the VM is deleted before the network. */
  readonly networkName: pulumi.Input<string>;
  /** NIC MAC; the network must have a DHCP reservation for it. */
  readonly mac: pulumi.Input<string>;
  /** The reserved address; readiness waits for a lease with exactly this address. */
  readonly ip: pulumi.Input<string>;
  /** `kvm` (hardware virtualization, host CPU) or `qemu` (TCG emulation: slow). Changing it replaces the VM. */
  readonly accelerator: pulumi.Input<"kvm" | "qemu">;
  /** File the serial console is written to (truncated at each start); its tail is quoted in boot errors. Removed on delete. */
  readonly consoleLogPath: pulumi.Input<string>;
  /** Bound of the readiness wait (lease + SSH login + cloud-init finished) in seconds; KVM boots in well under a minute, TCG needs minutes. */
  readonly bootTimeoutSeconds: pulumi.Input<number>;
  /** Login user for the readiness check (cloud-init's default user of the image, `ubuntu`). */
  readonly sshUser: pulumi.Input<string>;
  /** **Secret.** OpenSSH private key whose public half the seed authorizes for `sshUser`. Used only for the readiness login. */
  readonly sshPrivateKey: pulumi.Input<string>;
  /** The host key the seed installs (`ssh-ed25519 AAAA…`); SSH must present exactly this key. */
  readonly hostPublicKey: pulumi.Input<string>;
  /** Pulumi stack written into the ownership stamp. */
  readonly stack: pulumi.Input<string>;
  /**
   * Boot every create from an empty overlay: `diskPath` (a qcow2 overlay, as a Volume in mode
   * `overlay` makes) is made anew on its own backing image just before the VM is defined. Default
   * false: the disk boots as it is. Set it when the disk holds only what the seed puts there: a VM
   * recreated after `refresh` dropped it, or after an interrupted run, then boots as a new machine
   * and cloud-init runs in full. Without it the old disk says cloud-init already ran, and a file it
   * wrote shortly before a hard power-off (`virsh destroy`) can be empty: with an empty host key,
   * sshd never starts.
   */
  readonly freshDisk?: pulumi.Input<boolean>;
}

/** Plain inputs as the provider receives them. */
export interface DomainInputs {
  readonly uri: string;
  readonly domainName: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskPath: string;
  readonly seedPath: string;
  readonly networkName: string;
  readonly mac: string;
  readonly ip: string;
  readonly accelerator: "kvm" | "qemu";
  readonly consoleLogPath: string;
  readonly bootTimeoutSeconds: number;
  readonly sshUser: string;
  readonly sshPrivateKey: string;
  readonly hostPublicKey: string;
  readonly stack: string;
  readonly freshDisk?: boolean;
  readonly providerVersion?: number;
}

/** State of a domain (no private key: it is only an input). */
export interface DomainOutputs {
  readonly uri: string;
  readonly uuid: string;
  readonly domainName: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskPath: string;
  readonly seedPath: string;
  readonly networkName: string;
  readonly mac: string;
  readonly ip: string;
  readonly accelerator: string;
  readonly consoleLogPath: string;
  readonly bootTimeoutSeconds: number;
  readonly sshUser: string;
  readonly hostPublicKey: string;
  readonly stack: string;
  readonly freshDisk: boolean;
  /** Whether the domain is running; a VM shut off by hand is started again by the next `up`. */
  readonly running: boolean;
  readonly providerVersion: number;
}

/** Flags that make `virsh undefine` succeed whatever extra state a domain has (reliability rule 4). */
export const UNDEFINE_FLAGS = ["--nvram", "--managed-save", "--snapshots-metadata", "--checkpoints-metadata"] as const;

/** How many serial console lines a boot error quotes. */
const CONSOLE_TAIL_LINES = 20;

function isOurs(domain: ParsedDomain, stack: string): boolean {
  return domain.owner?.project === OWNER_PROJECT && domain.owner.stack === stack;
}

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

/** The last lines of the serial console log, control characters removed; "" when absent. */
export async function consoleTail(path: string, lines = CONSOLE_TAIL_LINES): Promise<string> {
  let text: string;
  try {
    text = await fsp().readFile(path, "utf8");
  } catch {
    return "";
  }
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-B]|\r/g, "")
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-lines)
      .map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l))
      .join("\n")
  );
}

/** Leases of a network as message text. */
export function formatLeases(leases: readonly Lease[]): string {
  return leases.length === 0
    ? "none"
    : leases.map((l) => `${l.mac} → ${l.ip} (${l.hostname}, expires ${l.expiry})`).join("; ");
}

/** How far a boot got, for the timeout message and its fix. */
export type BootStage = "lease" | "wrong-lease" | "port" | "hostkey" | "auth" | "ssh" | "cloud-init" | "stopped";

/** The stage-specific fix of a boot timeout. */
export function bootFix(
  stage: BootStage,
  inputs: Pick<DomainInputs, "mac" | "ip" | "networkName" | "sshUser" | "accelerator">,
): string {
  const tcg =
    inputs.accelerator === "qemu"
      ? " Under TCG (accelerator qemu) a boot takes minutes: raise cilium-lab:bootTimeoutSeconds if the console shows a boot still in progress."
      : "";
  switch (stage) {
    case "lease":
    case "wrong-lease":
      return `the guest never asked for (or got) its reserved address: check the console for boot or cloud-init errors, that the seed's network-config enables DHCP on the NIC with MAC ${inputs.mac}, and \`virsh net-dumpxml ${inputs.networkName}\` for the reservation.${tcg}`;
    case "port":
      return `the guest has its address but sshd does not answer on port 22: check the console for sshd/cloud-init errors and that the image has openssh-server.${tcg}`;
    case "hostkey":
      return "the node presents a different host key than hostPublicKey: the seed's cloud-init ssh_keys must install the key pair whose public half is hostPublicKey (or something else answers at that address).";
    case "auth":
      return `SSH refused the login: the seed must authorize the public half of sshPrivateKey for user "${inputs.sshUser}" (cloud-init ssh_authorized_keys).${tcg}`;
    case "ssh":
      return `SSH failed: see the last error.${tcg}`;
    case "cloud-init":
      return `cloud-init is still running (or hangs) on the node: \`ssh ${inputs.sshUser}@${inputs.ip} cloud-init status --long\` and the console show where.${tcg}`;
    case "stopped":
      return "the guest stopped during boot: see the console tail (kernel panic, bad disk image?).";
    default:
      return "see the console tail.";
  }
}

function stageText(stage: BootStage, last: string, inputs: Pick<DomainInputs, "mac" | "ip" | "sshUser">): string {
  switch (stage) {
    case "lease":
      return `no DHCP lease for ${inputs.mac}`;
    case "wrong-lease":
      return `the lease for ${inputs.mac} is not ${inputs.ip} (${last})`;
    case "port":
      return `lease OK, but TCP ${inputs.ip}:22 did not answer (${last})`;
    case "hostkey":
      return `SSH host key of ${inputs.ip} does not match hostPublicKey (${last})`;
    case "auth":
      return `SSH login as ${inputs.sshUser} failed (${last})`;
    case "ssh":
      return `SSH to ${inputs.ip} failed (${last})`;
    case "cloud-init":
      return `SSH login as ${inputs.sshUser} works, but cloud-init had not finished (${last})`;
    case "stopped":
      return `the domain stopped (${last})`;
    default:
      return last;
  }
}

/** Classifies an `ssh` failure from its stderr. */
export function classifySsh(result: Pick<RunResult, "code" | "stderr">): { stage: BootStage; detail: string } {
  const detail = tail(result.stderr, 2) || `ssh exit ${result.code}`;
  if (
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|no matching host key type|host key mismatch/i.test(
      result.stderr,
    )
  ) {
    return { stage: "hostkey", detail };
  }
  if (/Permission denied|Too many authentication failures|Authentication failed/i.test(result.stderr)) {
    return { stage: "auth", detail };
  }
  if (
    /Connection refused|Connection timed out|No route to host|Connection reset|closed by remote host|kex_exchange_identification/i.test(
      result.stderr,
    )
  ) {
    return { stage: "port", detail };
  }
  return { stage: "ssh", detail };
}

/** What the readiness command prints first, once logged in: tells a refused login from a slow cloud-init. */
const LOGGED_IN = "cilium-lab: logged in";

/**
 * What the readiness login runs. Not just `true`, for two things seen on real guests:
 * - cloud-init restarts sshd in its config stage when it applies `ssh_pwauth` (cc_set_passwords,
 *   https://cloudinit.readthedocs.io/en/latest/reference/modules.html#set-passwords), so a login
 *   that wins the race with it is followed by refused connections; after `cloud-init status
 *   --wait` sshd stays up. Its result is not judged here: the k3s layer's first step reports it.
 * - cloud-init wrote the host keys and authorized_keys moments ago, and the guest writes such fresh
 *   files out only when their dirty pages expire (vm.dirty_expire_centisecs, 30 s by default:
 *   https://docs.kernel.org/admin-guide/sysctl/vm.html). A hard power-off (`virsh destroy`) in
 *   that window left a 0-byte ssh_host_ed25519_key here, and sshd does not start without it.
 *   `sync` puts what the node needs to be reached again on its disk.
 */
export const READY_COMMAND = `echo '${LOGGED_IN}'; cloud-init status --wait >/dev/null 2>&1; sync`;

/** Classifies a failed readiness login: logged in but {@link READY_COMMAND} did not finish, else by the `ssh` error. */
export function classifyReadyAttempt(result: Pick<RunResult, "code" | "stdout" | "stderr">): {
  stage: BootStage;
  detail: string;
} {
  return result.stdout.includes(LOGGED_IN)
    ? { stage: "cloud-init", detail: tail(result.stderr, 1) || `exit ${result.code}` }
    : classifySsh(result);
}

/** Opens a TCP connection to host:port; resolves "ok" or the error code. */
function probeTcp(host: string, port: number, timeoutMs: number): Promise<string> {
  const net = netMod();
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done("timeout"));
    socket.once("connect", () => done("ok"));
    socket.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** The `-o HostKeyAlgorithms` value that makes sshd offer the pinned key's type. */
export function hostKeyAlgorithms(keyType: string): string {
  return keyType === "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : keyType;
}

/** `type base64` of an OpenSSH public key line (comment dropped). */
export function normalizePublicKey(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

/** One readiness attempt (SSH login with strict host key checking, then {@link READY_COMMAND}) until `deadline`; never throws. */
async function sshLogin(inputs: DomainInputs, secretsDir: string, deadline: number): Promise<RunResult> {
  const path = pathMod();
  const remainingMs = Math.max(1000, deadline - Date.now());
  const [keyType = "ssh-ed25519"] = inputs.hostPublicKey.split(/\s+/);
  return runTool(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${path.join(secretsDir, "known_hosts")}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      `HostKeyAlgorithms=${hostKeyAlgorithms(keyType)}`,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      `ConnectTimeout=${Math.max(1, Math.min(10, Math.floor(remainingMs / 1000)))}`,
      "-o",
      "LogLevel=ERROR",
      "-i",
      path.join(secretsDir, "id"),
      "-p",
      "22",
      "-l",
      inputs.sshUser,
      inputs.ip,
      READY_COMMAND,
    ],
    // cloud-init may take a while after sshd answers: the attempt may use the rest of the bound.
    { timeoutMs: remainingMs },
  );
}

async function leasesOf(uri: string, network: string): Promise<Lease[]> {
  const r = await virsh(uri, ["net-dhcp-leases", network]);
  return r.code === 0 ? parseLeases(r.stdout) : [];
}

/** How far {@link waitReady} got when it gave up (converted to the user-facing error). */
export interface NotReady {
  readonly stage: BootStage;
  readonly detail: string;
  /** Gave up before the deadline because SSH kept refusing (see {@link SSH_REFUSAL_GRACE_MS}). */
  readonly early?: boolean;
  /** Seconds from start to giving up. */
  readonly elapsedSeconds?: number;
}

/**
 * How long a host key mismatch or refused login may persist after sshd answered before the wait
 * gives up early. cloud-init writes host keys and authorized_keys in its init stage, which systemd
 * orders before sshd (cloud-init.service `Before=sshd.service`; Debian's ssh.service is aliased
 * sshd.service), so such refusals are not a boot still in progress; the grace only covers races.
 */
export const SSH_REFUSAL_GRACE_MS = 60_000;

/**
 * Polls until lease + TCP 22 + SSH login succeed or `deadline` (ms since epoch) passes.
 * Returns undefined when ready, else how far it got.
 */
async function waitReady(inputs: DomainInputs, deadline: number): Promise<NotReady | undefined> {
  const fs = fsp();
  const path = pathMod();
  const secrets = await privateTempDir("cilium-lab-ssh-");
  try {
    const key = inputs.sshPrivateKey.endsWith("\n") ? inputs.sshPrivateKey : `${inputs.sshPrivateKey}\n`;
    await fs.writeFile(path.join(secrets, "id"), key, { mode: 0o600 });
    await fs.writeFile(
      path.join(secrets, "known_hosts"),
      `${inputs.ip} ${normalizePublicKey(inputs.hostPublicKey)}\n`,
      { mode: 0o600 },
    );
    const started = Date.now();
    const elapsed = (): number => Math.round((Date.now() - started) / 1000);
    let last: NotReady = { stage: "lease", detail: "no lease yet" };
    let refusedSince: number | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        return { ...last, elapsedSeconds: elapsed() };
      }
      const state = await virsh(inputs.uri, ["domstate", inputs.domainName]);
      if (state.code === 0 && !/running|blocked|paused|in shutdown/.test(state.stdout)) {
        return { stage: "stopped", detail: `state: ${state.stdout.trim()}`, elapsedSeconds: elapsed() };
      }
      const leases = await leasesOf(inputs.uri, inputs.networkName);
      const lease = leases.find((l) => l.mac === inputs.mac);
      if (!lease) {
        last = { stage: "lease", detail: "no lease yet" };
      } else if (lease.ip !== inputs.ip) {
        last = { stage: "wrong-lease", detail: `got ${lease.ip}` };
      } else {
        const tcp = await probeTcp(inputs.ip, 22, Math.min(5000, remaining));
        if (tcp !== "ok") {
          last = { stage: "port", detail: tcp };
        } else {
          const ssh = await sshLogin(inputs, secrets, deadline);
          if (ssh.code === 0) {
            return undefined;
          }
          last = classifyReadyAttempt(ssh);
        }
      }
      if (last.stage === "auth" || last.stage === "hostkey") {
        refusedSince ??= Date.now();
        if (Date.now() - refusedSince >= SSH_REFUSAL_GRACE_MS) {
          return { ...last, early: true, elapsedSeconds: elapsed() };
        }
      } else {
        refusedSince = undefined;
      }
      await sleep(Math.max(0, Math.min(3000, deadline - Date.now())));
    }
  } finally {
    await fs.rm(secrets, { recursive: true, force: true });
  }
}

/** The user-facing boot timeout error (no secrets: only names, addresses, leases and console text). */
export function bootTimeoutMessage(
  inputs: Pick<
    DomainInputs,
    "domainName" | "mac" | "ip" | "networkName" | "sshUser" | "accelerator" | "bootTimeoutSeconds" | "consoleLogPath"
  >,
  notReady: NotReady,
  leases: readonly Lease[],
  console: string,
  rolledBack: string,
): string {
  const lines =
    console === ""
      ? " (empty)"
      : `\n${console
          .split("\n")
          .map((l) => `| ${l}`)
          .join("\n")}`;
  const within =
    notReady.stage === "stopped"
      ? ""
      : notReady.early === true
        ? ` (gave up after ${notReady.elapsedSeconds ?? "?"} s of ${inputs.bootTimeoutSeconds} s: sshd answered but kept refusing for ${SSH_REFUSAL_GRACE_MS / 1000} s)`
        : ` within ${inputs.bootTimeoutSeconds} s`;
  return (
    `node "${inputs.domainName}" (MAC ${inputs.mac}, expected IP ${inputs.ip}) was not ready${within}: ${stageText(notReady.stage, notReady.detail, inputs)}.\n` +
    `DHCP leases on network "${inputs.networkName}": ${formatLeases(leases)}.\n` +
    `Last ${CONSOLE_TAIL_LINES} lines of the serial console (${inputs.consoleLogPath}):${lines}\n` +
    `${rolledBack} Fix: ${bootFix(notReady.stage, inputs)}`
  );
}

/** Maps a define/start failure to its fix (KVM missing, file permissions). */
export function startFix(stderr: string, accelerator: string): string {
  if (
    accelerator === "kvm" &&
    /domaintype=kvm|requires KVM|KVM is not available|kvm.*(not supported|unavailable|No such file)|Could not access KVM/i.test(
      stderr,
    )
  ) {
    return "KVM is not usable on this host: set `pulumi config set cilium-lab:accelerator qemu` (TCG; slow, raise cilium-lab:bootTimeoutSeconds).";
  }
  if (/Permission denied/i.test(stderr)) {
    return "qemu (user libvirt-qemu) cannot open a file: every directory above the disk/seed/console paths needs o+x, and AppArmor may deny paths outside /var/lib/libvirt (`journalctl -k | grep -i apparmor`).";
  }
  return "see the libvirt message";
}

async function requireFile(path: string, what: string, action: string, fix: string): Promise<void> {
  if (!(await pathExists(path))) {
    throw new Error(`${action} failed: ${what} ${path} does not exist. Nothing was created. Fix: ${fix}`);
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
    networkName: inputs.networkName,
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
    providerVersion: PROVIDER_VERSION,
  };
}

/** Starts a defined domain and waits until it is ready; throws the boot error (after `onFail`). */
async function startAndWait(
  inputs: DomainInputs,
  action: string,
  onFail: () => Promise<void>,
  rolledBack: string,
): Promise<void> {
  const deadline = Date.now() + inputs.bootTimeoutSeconds * 1000;
  const start = await virsh(inputs.uri, ["start", inputs.domainName]);
  if (start.code !== 0) {
    await onFail();
    throw toolFailure(
      `${action} (starting it)`,
      start,
      `${startFix(start.stderr, inputs.accelerator)} ${rolledBack}`,
      inputs.uri,
    );
  }
  let notReady: NotReady | undefined;
  try {
    notReady = await waitReady(inputs, deadline);
  } catch (error) {
    await onFail();
    throw new Error(`${action} failed while waiting for the node: ${(error as Error).message}. ${rolledBack}`, {
      cause: error,
    });
  }
  if (notReady !== undefined) {
    const leases = await leasesOf(inputs.uri, inputs.networkName);
    const console = await consoleTail(inputs.consoleLogPath);
    await onFail();
    throw new Error(bootTimeoutMessage(inputs, notReady, leases, console, rolledBack));
  }
}

/**
 * Makes the qcow2 overlay at `disk` empty again: a new overlay on the same backing file, backing
 * format and virtual size, written to `<disk>.part` (mode 0600: it will hold the guest's keys) and
 * renamed over the old one, so a failure leaves the old disk as it was.
 */
export async function resetOverlay(disk: string, action: string): Promise<void> {
  const info = await runTool("qemu-img", ["info", "-U", "--output=json", disk]);
  if (info.code !== 0) {
    throw toolFailure(
      `${action} (reading its disk ${disk})`,
      info,
      "check that the disk exists and is a qcow2 image (the node's Volume makes it). Nothing was created.",
    );
  }
  const image = JSON.parse(info.stdout) as {
    readonly format?: string;
    readonly "virtual-size"?: number;
    readonly "backing-filename-format"?: string;
    readonly "full-backing-filename"?: string;
  };
  const backing = image["full-backing-filename"];
  if (image.format !== "qcow2" || backing === undefined || image["virtual-size"] === undefined) {
    throw new Error(
      `${action} failed: freshDisk needs a qcow2 overlay, but ${disk} is ${image.format ?? "of unknown format"} without a backing file. ` +
        "Nothing was created. Fix: make the disk a Volume in mode overlay, or leave freshDisk unset to boot the disk as it is.",
    );
  }
  const part = `${disk}.part`;
  await removeFile(part);
  const create = await runTool("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    image["backing-filename-format"] ?? "qcow2",
    "-b",
    backing,
    part,
    String(image["virtual-size"]),
  ]);
  try {
    if (create.code !== 0) {
      throw toolFailure(
        `${action} (emptying its disk ${disk})`,
        create,
        `check ${backing} and the free space in ${pathMod().dirname(disk)}. Nothing was created; the old disk is untouched.`,
      );
    }
    await fsp().chmod(part, 0o600);
    await fsp().rename(part, disk);
  } finally {
    await removeFile(part);
  }
}

async function createDomain(inputs: DomainInputs): Promise<{ id: string; outs: DomainOutputs }> {
  const { uri, domainName: name } = inputs;
  const action = `creating domain "${name}"`;
  const existing = await virshList(uri, ["list", "--all", "--name"], action);
  if (existing.has(name)) {
    const dom = parseDomainXml(await virshOk(uri, ["dumpxml", name], action, "check libvirtd"));
    if (!isOurs(dom, inputs.stack)) {
      throw new Error(
        `${action} failed: a libvirt domain "${name}" already exists and was not created by cilium-lab stack "${inputs.stack}" ` +
          `(${dom.owner ? `${dom.owner.project} stack "${dom.owner.stack}"` : "no cilium-lab owner stamp"}). Nothing was changed. ` +
          `Fix: remove it (\`virsh destroy ${name}; virsh undefine ${name} --nvram\`) if it is not needed, or use another stack name.`,
      );
    }
    // Ours but unknown to the state: an interrupted create. Its boot wait never finished, so
    // rebuild it rather than adopt a VM in an unknown condition.
    await removeDomain(uri, name, `${action} (removing the leftover of an interrupted run)`);
  }
  await requireFile(inputs.diskPath, "disk", action, "the node's Volume creates it; run `pulumi up --refresh`.");
  await requireFile(
    inputs.seedPath,
    "cloud-init seed",
    action,
    "the node's CloudInitDisk creates it; run `pulumi up --refresh`.",
  );
  await requireFile(
    pathMod().dirname(inputs.consoleLogPath),
    "console log directory",
    action,
    "use a directory that exists (the stack's pool directory).",
  );

  const networks = await virshList(uri, ["net-list", "--all", "--name"], action);
  if (!networks.has(inputs.networkName)) {
    throw new Error(
      `${action} failed: libvirt network "${inputs.networkName}" does not exist. Nothing was created. Fix: create the Network first (pass Network.networkName).`,
    );
  }
  const net = parseNetworkXml(await virshOk(uri, ["net-dumpxml", inputs.networkName], action, "check libvirtd"));
  const reservation = net.hosts.find((h) => h.mac === inputs.mac);
  if (!reservation || reservation.ip !== inputs.ip) {
    throw new Error(
      `${action} failed: network "${inputs.networkName}" has no DHCP reservation ${inputs.mac} → ${inputs.ip} ` +
        `(it has: ${net.hosts.map((h) => `${h.mac} → ${h.ip}`).join(", ") || "none"}), so the node would never get its address. ` +
        "Nothing was created. Fix: add the node to the Network's hosts.",
    );
  }
  if (!(await virshList(uri, ["net-list", "--name"], action)).has(inputs.networkName)) {
    throw new Error(
      `${action} failed: libvirt network "${inputs.networkName}" is not active. Nothing was created. Fix: \`virsh net-start ${inputs.networkName}\` or \`pulumi up --refresh\`.`,
    );
  }
  if (inputs.freshDisk === true) {
    await resetOverlay(inputs.diskPath, action);
  }
  await removeFile(inputs.consoleLogPath);

  const xml = domainXml({
    name,
    stack: inputs.stack,
    vcpus: inputs.vcpus,
    memoryMiB: inputs.memoryMiB,
    accelerator: inputs.accelerator,
    diskPath: inputs.diskPath,
    seedPath: inputs.seedPath,
    networkName: inputs.networkName,
    mac: inputs.mac,
    consoleLogPath: inputs.consoleLogPath,
  });
  const tmp = await privateTempDir("cilium-lab-dom-");
  try {
    const file = pathMod().join(tmp, "domain.xml");
    await fsp().writeFile(file, xml, { mode: 0o600 });
    const define = await virsh(uri, ["define", file]);
    if (define.code !== 0) {
      throw toolFailure(action, define, `${startFix(define.stderr, inputs.accelerator)} Nothing was created.`, uri);
    }
  } finally {
    await fsp().rm(tmp, { recursive: true, force: true });
  }
  const rollback = async (): Promise<void> => {
    await removeDomain(uri, name, `${action} (rolling back)`);
    await removeFile(inputs.consoleLogPath);
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
    await removeFile(props.consoleLogPath);
    await removePoolDirIfEmpty(pathMod().dirname(props.consoleLogPath), props.stack);
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

function checkDomain(news: Record<string, unknown>): {
  inputs: Record<string, unknown>;
  failures: { property: string; reason: string }[];
} {
  const c = new Checker(news);
  c.field("uri", (v) => checkUri(v));
  c.field("domainName", (v) =>
    typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(v)
      ? `must be a libvirt domain name ([A-Za-z0-9_.-], at most 64), got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("vcpus", int(1, 256));
  c.field("memoryMiB", int(128, 1024 * 1024));
  for (const k of ["diskPath", "seedPath", "consoleLogPath"]) {
    c.field(k, absPath);
  }
  c.field("networkName", (v) => (typeof v !== "string" || v === "" ? "must be a libvirt network name" : undefined));
  c.field("mac", (v) =>
    typeof v !== "string" || !MAC_PATTERN.test(v)
      ? `must be a lower-case unicast MAC like 52:54:00:12:34:56, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("ip", (v) =>
    typeof v !== "string" || parseIpv4(v) === undefined
      ? `must be an IPv4 address, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("accelerator", (v) =>
    v === "kvm" || v === "qemu" ? undefined : `must be kvm or qemu (TCG), got ${JSON.stringify(v)}`,
  );
  c.field("bootTimeoutSeconds", int(5, 7200));
  c.field("sshUser", (v) =>
    typeof v !== "string" || !/^[a-z_][a-z0-9_-]{0,31}$/.test(v)
      ? `must be a Linux user name, got ${JSON.stringify(v)}`
      : undefined,
  );
  // Never quote the private key, not even partly.
  c.field("sshPrivateKey", (v) =>
    typeof v !== "string" || !/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----/.test(v)
      ? "must be an OpenSSH/PEM private key (-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----); value not shown"
      : undefined,
  );
  c.field("hostPublicKey", (v) =>
    typeof v !== "string" ||
    !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*(\s.*)?$/.test(v.trim())
      ? `must be an OpenSSH public key line (ssh-ed25519 AAAA…), got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("stack", (v) =>
    typeof v !== "string" || !STACK_PATTERN.test(v)
      ? `must be a Pulumi stack name, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("freshDisk", (v) =>
    v === undefined || typeof v === "boolean" ? undefined : `must be true or false, got ${JSON.stringify(v)}`,
  );
  // Defaulted here so that a state holding `freshDisk: false` diffs equal to an input that omits it.
  const inputs = {
    ...news,
    freshDisk: news.freshDisk ?? false,
    ...(typeof news.hostPublicKey === "string" ? { hostPublicKey: normalizePublicKey(news.hostPublicKey) } : {}),
  };
  return { inputs, failures: c.failures };
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
  "mac",
  "ip",
  "accelerator",
  "consoleLogPath",
  "stack",
] as const;
/** Keys that change only what the provider checks (or does at a later create), not the running VM. */
export const DOMAIN_UPDATE_KEYS = ["bootTimeoutSeconds", "sshUser", "hostPublicKey", "freshDisk"] as const;

/** The domain provider; one instance shared by every {@link Domain}. */
export const domainProvider: pulumi.dynamic.ResourceProvider = {
  check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return Promise.resolve(checkDomain(news));
  },
  diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const d = diffKeys(olds, news, DOMAIN_REPLACE_KEYS, DOMAIN_UPDATE_KEYS);
    if (olds.running === false && d.replaces.length === 0) {
      d.changes = true; // shut off by hand: the update starts it and waits
    }
    return Promise.resolve(d);
  },
  create(inputs: DomainInputs) {
    return createDomain(inputs);
  },
  read(id: string, props: DomainOutputs) {
    return readDomain(id, props);
  },
  update(id: string, olds: DomainOutputs, news: DomainInputs) {
    return updateDomain(id, olds, news);
  },
  delete(id: string, props: DomainOutputs) {
    return deleteDomain(id, props);
  },
};

/**
 * One lab VM (`pulumi-nodejs:dynamic/libvirt:Domain`), id = libvirt UUID. `create` defines, starts
 * and waits for readiness (lease, SSH login with the pinned host key, cloud-init finished) within `bootTimeoutSeconds`,
 * rolling back on any failure. `delete` destroys and undefines it and removes its console log.
 */
export class Domain extends pulumi.dynamic.Resource {
  declare readonly uuid: pulumi.Output<string>;
  declare readonly domainName: pulumi.Output<string>;
  /** The node's address (reserved; reachable once created). */
  declare readonly ip: pulumi.Output<string>;
  declare readonly mac: pulumi.Output<string>;
  declare readonly networkName: pulumi.Output<string>;
  declare readonly consoleLogPath: pulumi.Output<string>;
  /** The pinned host key (`type base64`), for `remote.Command` `connection.hostKey`. */
  declare readonly hostPublicKey: pulumi.Output<string>;
  declare readonly sshUser: pulumi.Output<string>;
  declare readonly accelerator: pulumi.Output<string>;
  declare readonly running: pulumi.Output<boolean>;
  declare readonly stack: pulumi.Output<string>;

  constructor(name: string, args: DomainArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      domainProvider,
      name,
      { uuid: undefined, running: undefined, ...args, providerVersion: PROVIDER_VERSION },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "sshPrivateKey"] },
      "libvirt",
      "Domain",
    );
  }
}
