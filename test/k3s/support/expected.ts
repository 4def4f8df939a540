/**
 * The resources the k3s layer registers, by type and name: what the mock tests check, and what
 * `pulumi preview --json` of a stack must list for the k3s layer (types and names).
 */
import { basename } from "node:path";

/** One resource as `pulumi preview --json` names it. */
export interface ExpectedResource {
  readonly type: string;
  readonly name: string;
}

/**
 * The k3s layer's resources for component `name` on `nodes` (node names, server first), with the
 * air-gap image tarballs' file names when installing from `k3sAirgapDir` (k3s images first).
 */
export function expectedK3sResources(
  name: string,
  nodes: readonly string[],
  airgapImages?: readonly string[],
): ExpectedResource[] {
  const perNode = (node: string): ExpectedResource[] => [
    { type: "command:remote:Command", name: `${name}-wait-${node}` },
    // online only: the upstream probe (scripts/node/probe-upstreams.sh) between the wait and the prepare.
    ...(airgapImages ? [] : [{ type: "command:remote:Command", name: `${name}-probe-${node}` }]),
    { type: "command:remote:Command", name: `${name}-prepare-${node}` },
    { type: "command:remote:CopyToRemote", name: `${name}-install-script-${node}` },
    { type: "command:remote:CopyToRemote", name: `${name}-uninstall-script-${node}` },
    ...(airgapImages
      ? [
          { type: "command:remote:CopyToRemote", name: `${name}-airgap-k3s-${node}` },
          { type: "command:remote:CopyToRemote", name: `${name}-airgap-installer-${node}` },
          ...airgapImages.map((image) => ({
            type: "command:remote:CopyToRemote",
            name: `${name}-airgap-image-${basename(image)
              .replace(/[^A-Za-z0-9]+/g, "-")
              .toLowerCase()}-${node}`,
          })),
        ]
      : []),
    { type: "command:remote:Command", name: `${name}-install-${node}` },
  ];
  return [
    { type: "lab:k3s:K3sCluster", name },
    ...nodes.flatMap(perNode),
    { type: "command:remote:Command", name: `${name}-kubeconfig` },
  ];
}
