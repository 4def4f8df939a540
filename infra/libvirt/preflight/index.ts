/**
 * Host preflight: one cheap pass over the host before any resource is registered, so a broken host
 * fails `pulumi preview` and `pulumi up` at once with every problem and its fix, instead of a VM
 * failing minutes into a boot. Read-only; our own objects of the same stack (a re-run) are fine.
 *
 * Checks, one pass per libvirt host (labPreflightRequests): host tools present; the libvirt URI
 * reachable (else the fix: group libvirt, the SSH side, or the daemons); KVM usable when
 * `accelerator: kvm`; memory and CPUs for the nodes; free space in the stack's pool; the domain
 * names not taken by objects we do not own (our metadata stamp). In NAT mode: `networkCidr` not
 * overlapping a host route or another libvirt network, the network and bridge names free, and,
 * when the nodes download k3s, that the host's firewall forwards the lab bridge's traffic
 * (infra/libvirt/forwarding/). In bridge mode: the host bridge exists and is up, nothing answers
 * on the nodes' static addresses (best-effort, from this machine), and br_netfilter does not hand
 * bridged frames to a FORWARD chain that drops them (the Docker trap).
 *
 * Everything about the libvirt host is read through the URI (`virsh`), so a `qemu+ssh://` host is
 * checked for real; facts only this machine can give (routes, `ip link`, /proc, the firewall) are
 * read for a local URI only, and a row says so where a remote host's could not be checked.
 *
 * `gatherHostFacts` (gather.ts) reads the host synchronously; `evaluatePreflight` (evaluate.ts) is
 * pure and table-tested; rows.ts turns its findings into doctor's rows.
 */
export type {
  HostDomain,
  AddressProbe,
  HostBridgeFacts,
  HostDisk,
  HostFacts,
  HostNetworkState,
  PreflightBridge,
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
export { DISK_ESTIMATES, labPreflightRequest, labPreflightRequests } from "./request";
export type { PreflightConfig, PreflightPlan } from "./request";
export { isLocalUri } from "./connection";
export { BRIDGE_NF_CALL_IPTABLES, probeAddresses } from "./bridge-facts";
