/**
 * The libvirt layer's resources: our dynamic provider for the retired `@pulumi/libvirt` model
 * (Network, Volume, CloudInitDisk, Domain) and the host preflight the program runs first.
 */
export { Network, networkProvider, type NetworkArgs, type NetworkHostArgs, type NetworkOutputs } from "./network";
export { Volume, volumeProvider, type VolumeArgs, type VolumeMode, type VolumeOutputs } from "./volume";
export { CloudInitDisk, cloudInitDiskProvider, type CloudInitDiskArgs, type CloudInitDiskOutputs } from "./seed";
export { Domain, domainProvider, type DomainArgs, type DomainOutputs } from "./domain";
export { OWNER_NS, OWNER_PROJECT } from "./xml";
export { POOL_MARKER } from "./common";
export {
  DISK_ESTIMATES,
  LibvirtPreflightError,
  PREFLIGHT_ENV,
  evaluatePreflight,
  gatherHostFacts,
  labPreflightRequest,
  preflightLibvirt,
  type HostFacts,
  type PreflightRequest,
} from "./preflight";
