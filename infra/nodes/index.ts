/**
 * The nodes layer: VMs ready for SSH, with the stack's generated keys and k3s token, on one or
 * several libvirt hosts (a storage pool and the uploaded base image per host).
 */
export {
  LabNodes,
  baseImageArgs,
  defaultPoolDir,
  DIAL_ERROR_LIMIT,
  PER_DIAL_TIMEOUT,
  type BaseImageFacts,
  type LabNode,
  type LabNodesArgs,
  type SshConnection,
} from "./nodes";
export {
  BaseImage,
  cacheRoot,
  checkGpgvAndKeyring,
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  type BaseImageArgs,
} from "../libvirt/base-image";
export { hostPoolName, type HostStorage } from "./hosts";
export { LabSecrets, type LabSecretsArgs } from "./secrets";
export { LAB_USER } from "./cloud-init";
