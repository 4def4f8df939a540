/** The inputs every owner-stamped libvirt object (a {@link Domain}, a {@link Network}) is given. */
import type * as pulumi from "@pulumi/pulumi";

/**
 * The host connection and the owner of a libvirt object whose metadata carries the cilium-lab owner
 * stamp (project `cilium-lab` and the stack): an existing object of the same name is changed only when
 * its stamp names this stack.
 */
export interface OwnedObjectArgs {
  /** libvirt URI; only `qemu:///system`. */
  readonly uri: pulumi.Input<string>;
  /** Pulumi stack written into the ownership stamp. */
  readonly stack: pulumi.Input<string>;
}
