/**
 * Host preflight: one cheap pass over the host before any resource is registered, so a broken host
 * fails `pulumi preview` and `pulumi up` at once with every problem and its fix, instead of a VM
 * failing minutes into a boot. Read-only; our own objects of the same stack (a re-run) are fine.
 *
 * Checks: host tools present; the libvirt URI reachable; KVM usable when `accelerator: kvm`; memory
 * and CPUs for the nodes; `networkCidr` not overlapping a host route or another libvirt network; the
 * network, bridge and domain names not taken by objects we do not own (our metadata stamp); free
 * disk for the images; pool and cache directories reachable by the qemu user; and, when the nodes
 * download k3s (`k3sAirgapDir` empty), that the host's firewall forwards the lab bridge's traffic
 * (infra/libvirt/forwarding/: Docker, UFW and firewalld can drop it).
 *
 * `gatherHostFacts` (gather.ts) reads the host synchronously; `evaluatePreflight` (evaluate.ts) is
 * pure and table-tested; rows.ts turns its findings into doctor's rows.
 */
export type {
  HostDomain,
  HostFacts,
  HostNetworkState,
  PreflightCheck,
  PreflightDisk,
  PreflightNode,
  PreflightRequest,
  PreflightResult,
  PreflightRow,
} from "./types";
export { PREFLIGHT_CHECKS } from "./types";
export { evaluatePreflight } from "./evaluate";
export { gatherHostFacts } from "./gather";
export { LibvirtPreflightError, PREFLIGHT_ENV, preflightLibvirt } from "./run";
export { DISK_ESTIMATES, labPreflightRequest } from "./request";
