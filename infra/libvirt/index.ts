/**
 * The libvirt layer's resources: our dynamic provider for the retired `@pulumi/libvirt` model
 * (Network, StoragePool, Volume, CloudInitDisk, Domain) and the host preflight the program runs first.
 */
export { Network, networkProvider, type NetworkArgs, type NetworkHostArgs, type NetworkOutputs } from "./network";
export { Volume, volumeProvider, type VolumeArgs, type VolumeOutputs } from "./volume";
export {
  StoragePool,
  storagePoolProvider,
  type StoragePoolArgs,
  type StoragePoolInputs,
  type StoragePoolOutputs,
} from "./pool";
export { BASE_POOL, POOL_MARKER_VOLUME, POOL_ROOT, poolTargetPath, stackPoolName } from "./storage";
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
