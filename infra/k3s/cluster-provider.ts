/**
 * The lab cluster's Kubernetes provider, required explicitly by every component that creates
 * Kubernetes objects: without it Pulumi would use the ambient default provider, whatever cluster
 * ~/.kube/config points at.
 */
import * as pulumi from "@pulumi/pulumi";

/**
 * The provider `component` got for `typeToken` through its options (`provider` or `providers`).
 * Throws a ResourceError naming `label` (`Cilium "cilium"`) and `what` would otherwise go astray.
 */
export function requireClusterProvider(
  component: pulumi.ComponentResource,
  label: string,
  typeToken: string,
  what: string,
): pulumi.ProviderResource {
  const provider = component.getProvider(typeToken);
  if (provider === undefined) {
    throw new pulumi.ResourceError(
      `${label} needs the lab cluster's Kubernetes provider: pass { provider: k8sProvider } in its options. ` +
        `Without it ${what} would go to whatever cluster ~/.kube/config points at.`,
      component,
    );
  }
  return provider;
}
