/**
 * The inputs and state of a {@link Domain}: what the program passes, what the provider receives, and
 * what the state holds (no private key: it is only an input).
 */
import type { InputsOf, OwnedObject } from "../owned";

/** Inputs of a {@link Domain} as the provider receives them; changing `uri` or `stack` replaces the VM. */
export interface DomainInputs extends OwnedObject {
  /** libvirt domain name, unique per host (`planLab().nodes[i].domainName`). */
  readonly domainName: string;
  /** vCPUs (cilium-lab:nodeCpus). Changing it replaces the VM. */
  readonly vcpus: number;
  /** Memory in MiB (cilium-lab:nodeMemoryMiB). Changing it replaces the VM. */
  readonly memoryMiB: number;
  /** The node's qcow2 disk: pass `Volume.path` (an Output) so a replaced volume replaces the VM. */
  readonly diskPath: string;
  /** The NoCloud seed: pass `CloudInitDisk.path` (content-hashed, so changed cloud-init replaces the VM). */
  readonly seedPath: string;
  /**
   * NAT mode: the libvirt network; pass `Network.networkName` so the VM is deleted before the network.
   * Exactly one of `networkName` and `bridgeName` is non-empty.
   */
  readonly networkName?: string;
  /**
   * Bridge mode: an existing host bridge the NIC is attached to (no libvirt network, no DHCP: the
   * seed's network-config gives the static `ip`). Readiness goes straight to TCP `ip:22`.
   */
  readonly bridgeName?: string;
  /** NIC MAC; in NAT mode the network must have a DHCP reservation for it. */
  readonly mac: string;
  /** The node's address: the reserved one (NAT; readiness waits for exactly this lease) or the static one (bridge). */
  readonly ip: string;
  /** `kvm` (hardware virtualization, host CPU) or `qemu` (TCG emulation: slow). Changing it replaces the VM. */
  readonly accelerator: "kvm" | "qemu";
  /**
   * File the serial console is written to (truncated at each start); its tail is quoted in boot
   * errors. Removed on delete. With `pool` it must lie in that pool's target directory: it is read
   * (`vol-download`) and removed (`vol-delete`) through libvirt as a volume of the pool.
   */
  readonly consoleLogPath: string;
  /**
   * The stack's libvirt storage pool holding the disk, the seed and the console log (pass
   * `StoragePool.poolName`). Empty only in states written before pools (a root-only pool directory,
   * whose console log is removed with `fs`).
   */
  readonly pool?: string;
  /** Bound of the readiness wait (lease + SSH login + cloud-init finished) in seconds; KVM boots in well under a minute, TCG needs minutes. */
  readonly bootTimeoutSeconds: number;
  /** Login user for the readiness check (cloud-init's default user of the image, `ubuntu`). */
  readonly sshUser: string;
  /** **Secret.** OpenSSH private key whose public half the seed authorizes for `sshUser`. Used only for the readiness login. */
  readonly sshPrivateKey: string;
  /** The host key the seed installs (`ssh-ed25519 AAAA…`); SSH must present exactly this key. */
  readonly hostPublicKey: string;
  /**
   * Boot every create from an empty overlay: `diskPath` (a qcow2 volume with a backing store, as a
   * Volume with `backingPath` makes) is made anew on its own backing image just before the VM is defined. Default
   * false: the disk boots as it is. Set it when the disk holds only what the seed puts there: a VM
   * recreated after `refresh` dropped it, or after an interrupted run, then boots as a new machine
   * and cloud-init runs in full. Without it the old disk says cloud-init already ran, and a file it
   * wrote shortly before a hard power-off (`virsh destroy`) can be empty: with an empty host key,
   * sshd never starts.
   */
  readonly freshDisk?: boolean;
}

/** Inputs of {@link Domain}: each of {@link DomainInputs} as a `pulumi.Input`. */
export type DomainArgs = InputsOf<DomainInputs>;

/** State of a domain (no private key: it is only an input). */
export interface DomainOutputs extends Omit<
  DomainInputs,
  "sshPrivateKey" | "accelerator" | "freshDisk" | "networkName" | "bridgeName" | "pool"
> {
  readonly uuid: string;
  /** As libvirt reports it (`kvm` or `qemu`). */
  readonly accelerator: string;
  readonly freshDisk: boolean;
  readonly networkName: string;
  readonly bridgeName: string;
  readonly pool: string;
  /** Whether the domain is running; a VM shut off by hand is started again by the next `up`. */
  readonly running: boolean;
}
