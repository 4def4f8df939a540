/**
 * The boot errors of a {@link Domain}, pure: how far a boot got, how an `ssh` failure or a refused
 * define/start reads, and the timeout message. On timeout the error names the node, MAC, expected
 * IP, the stage reached, the network's leases and the serial console tail, plus the fix for that
 * stage; it never holds a secret.
 */
import { DAD_CONFLICT_MARKER } from "../../nodes/dad";
import { tail, type RunResult } from "../exec";
import type { Lease } from "../xml";
import type { DomainInputs } from "./types";

/** How many serial console lines a boot error quotes. */
export const CONSOLE_TAIL_LINES = 20;

/** Leases of a network as message text. */
export function formatLeases(leases: readonly Lease[]): string {
  return leases.length === 0
    ? "none"
    : leases.map((l) => `${l.mac} → ${l.ip} (${l.hostname}, expires ${l.expiry})`).join("; ");
}

/** How far a boot got, for the timeout message and its fix. */
export type BootStage = "lease" | "wrong-lease" | "port" | "hostkey" | "auth" | "ssh" | "cloud-init" | "stopped";

/** The NIC of a boot message: a libvirt network (NAT) or a host bridge. */
type NicInputs = Pick<DomainInputs, "networkName" | "bridgeName">;

/** The host bridge of a bridge-mode node, or undefined in NAT mode. */
export function bridgeOf(inputs: NicInputs): string | undefined {
  return inputs.bridgeName !== undefined && inputs.bridgeName !== "" ? inputs.bridgeName : undefined;
}

/** The stage-specific fix of a boot timeout. */
export function bootFix(
  stage: BootStage,
  inputs: Pick<DomainInputs, "mac" | "ip" | "sshUser" | "accelerator"> & NicInputs,
): string {
  const tcg =
    inputs.accelerator === "qemu"
      ? " Under TCG (accelerator qemu) a boot takes minutes: raise cilium-lab:bootTimeoutSeconds if the console shows a boot still in progress."
      : "";
  switch (stage) {
    case "lease":
    case "wrong-lease":
      return `the guest never asked for (or got) its reserved address: check the console for boot or cloud-init errors, that the seed's network-config enables DHCP on the NIC with MAC ${inputs.mac}, and \`virsh net-dumpxml ${inputs.networkName ?? ""}\` for the reservation.${tcg}`;
    case "port": {
      const bridge = bridgeOf(inputs);
      if (bridge !== undefined) {
        return `nothing answers on ${inputs.ip}:22: check the console for network-config or sshd errors (the seed's network-config must give the NIC with MAC ${inputs.mac} the static address ${inputs.ip}), that bridge ${bridge} is up, and that this machine reaches ${inputs.ip} (an address of the node's CIDR on ${bridge}, or a route to it).${tcg}`;
      }
      return `the guest has its address but sshd does not answer on port 22: check the console for sshd/cloud-init errors and that the image has openssh-server.${tcg}`;
    }
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

function stageText(
  stage: BootStage,
  last: string,
  inputs: Pick<DomainInputs, "mac" | "ip" | "sshUser"> & NicInputs,
): string {
  switch (stage) {
    case "lease":
      return `no DHCP lease for ${inputs.mac}`;
    case "wrong-lease":
      return `the lease for ${inputs.mac} is not ${inputs.ip} (${last})`;
    case "port":
      return bridgeOf(inputs) === undefined
        ? `lease OK, but TCP ${inputs.ip}:22 did not answer (${last})`
        : `TCP ${inputs.ip}:22 did not answer (${last})`;
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
export const LOGGED_IN = "cilium-lab: logged in";

/** Classifies a failed readiness login: logged in but {@link READY_COMMAND} did not finish, else by the `ssh` error. */
export function classifyReadyAttempt(result: Pick<RunResult, "code" | "stdout" | "stderr">): {
  stage: BootStage;
  detail: string;
} {
  return result.stdout.includes(LOGGED_IN)
    ? { stage: "cloud-init", detail: tail(result.stderr, 1) || `exit ${result.code}` }
    : classifySsh(result);
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

/** What the boot error says about how the node gets its address: the network's leases, or the bridge's static address. */
function addressLine(inputs: Pick<DomainInputs, "ip"> & NicInputs, leases: readonly Lease[]): string {
  const bridge = bridgeOf(inputs);
  return bridge === undefined
    ? `DHCP leases on network "${inputs.networkName ?? ""}": ${formatLeases(leases)}.\n`
    : `No DHCP on bridge "${bridge}": the seed's network-config sets ${inputs.ip} statically.\n`;
}

/** The user-facing boot timeout error (no secrets: only names, addresses, leases and console text). */
export function bootTimeoutMessage(
  inputs: Pick<
    DomainInputs,
    "domainName" | "mac" | "ip" | "sshUser" | "accelerator" | "bootTimeoutSeconds" | "consoleLogPath"
  > &
    NicInputs,
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
    addressLine(inputs, leases) +
    `Last ${CONSOLE_TAIL_LINES} lines of the serial console (${inputs.consoleLogPath}):${lines}\n` +
    `${rolledBack} Fix: ${bootFix(notReady.stage, inputs)}`
  );
}

/** Maps a define/start failure to its fix (KVM missing, host bridge missing, file permissions). */
export function startFix(stderr: string, accelerator: string, bridgeName = ""): string {
  // libvirt 9.0 starting a domain whose <interface type='bridge'> names no existing device:
  // "Cannot get interface MTU on 'br9': No such device" (virNetDevGetMTU, before the tap is enslaved).
  if (bridgeName !== "" && /Cannot get interface MTU|No such device|bridge.*(not found|does not exist)/i.test(stderr)) {
    return `host bridge "${bridgeName}" does not exist on the libvirt host: create it there (\`ip link add ${bridgeName} type bridge && ip link set ${bridgeName} up\`, plus your uplink and the host's address) or set \`pulumi config set cilium-lab:bridge <existing bridge>\`.`;
  }
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

/** An address conflict the guest reported on its console. */
export interface DadConflict {
  readonly address: string;
  /** The MAC that answered the probe, lower-case. */
  readonly answeredBy: string;
}

/**
 * The guest's duplicate-address report in console text: the line `<DAD_CONFLICT_MARKER> <address>
 * answered by <mac>` that infra/nodes/dad.ts's RFC 5227 ARP probe prints to the serial console
 * before the node powers itself off. The last complete line wins (the check runs on every boot);
 * undefined when there is none, or only a cut-off one.
 */
export function findDadConflict(console: string): DadConflict | undefined {
  const marker = DAD_CONFLICT_MARKER.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const line = new RegExp(
    `${marker} (\\d{1,3}(?:\\.\\d{1,3}){3}) answered by ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})`,
    "g",
  );
  const last = [...console.matchAll(line)].at(-1);
  return last === undefined ? undefined : { address: last[1] ?? "", answeredBy: (last[2] ?? "").toLowerCase() };
}

/** The named boot error of an address conflict: which address, on which bridge, who answered, the fix. */
export function dadConflictMessage(
  inputs: Pick<DomainInputs, "domainName" | "ip"> & NicInputs,
  conflict: DadConflict,
  rolledBack: string,
): string {
  const where = bridgeOf(inputs) === undefined ? `network "${inputs.networkName ?? ""}"` : `bridge ${bridgeOf(inputs)}`;
  const by = conflict.answeredBy === "" ? "" : ` (answered by MAC ${conflict.answeredBy})`;
  return (
    `node "${inputs.domainName}": address ${conflict.address} is already in use on ${where}${by}. ` +
    "The guest's duplicate-address check (an RFC 5227 ARP probe before it configures the address) found it and powered the node off. " +
    `${rolledBack} Fix: give the lab addresses nobody else uses (cilium-lab:networkCidr, or the host with that MAC gives up ${conflict.address}), then run \`pulumi up\` again.`
  );
}
