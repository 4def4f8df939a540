/**
 * The k3s layer: k3s over SSH on the lab's nodes (flannel and network policy off, so Cilium is the
 * CNI), the admin kubeconfig as a secret for the explicit Kubernetes provider.
 */
export { K3sCluster, type K3sClusterArgs, type K3sConfig, type K3sNode, type NodeConnection } from "./k3s";
export { AirgapDirError, checkAirgapDir, type AirgapArtifacts } from "./airgap";
export {
  K3S_API_PORT,
  TOKEN_FILE,
  installerUrl,
  k3sCommand,
  serverUrl,
  shellQuote,
  type InstallSource,
  type K3sRole,
} from "./args";
export { KubeconfigError, rewriteKubeconfigServer } from "./kubeconfig";
export { upstreamProbes, type UpstreamProbe } from "./probe";
