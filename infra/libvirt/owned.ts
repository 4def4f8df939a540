/**
 * What every owner-stamped libvirt object (a {@link Domain}, a {@link Network}) shares: its two
 * inputs, the ownership test and message, and the provider rules of the lab's libvirt resources.
 */
import type * as pulumi from "@pulumi/pulumi";

import {
  defineProvider,
  dynamicResource,
  PROVIDER_VERSION,
  type DynamicResourceClass,
  type LabProvider,
  type ProviderSpec,
  type ResourceShape,
} from "../provider";
import { OWNER_PROJECT, type Owner } from "./xml";

/**
 * The host connection and the owner of a libvirt object whose metadata carries the cilium-lab owner
 * stamp (project `cilium-lab` and the stack): an existing object of the same name is changed only when
 * its stamp names this stack.
 */
export interface OwnedObject {
  /** libvirt URI; only `qemu:///system`. */
  readonly uri: string;
  /** Pulumi stack written into the ownership stamp. */
  readonly stack: string;
}

/**
 * The args of a resource whose plain inputs are `T`: every field a `pulumi.Input` of its plain type
 * (the field's documentation carries over). The plain interface is the one declaration.
 */
export type InputsOf<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/** {@link OwnedObject} as the program passes it. */
export type OwnedObjectArgs = InputsOf<OwnedObject>;

/** Whether an object's owner stamp names `stack` of this project. */
export function ownedBy(owner: Owner | undefined, stack: string): boolean {
  return owner?.project === OWNER_PROJECT && owner.stack === stack;
}

/** An owner stamp as messages name it. */
export function ownerText(owner: Owner | undefined): string {
  return owner ? `${owner.project} stack "${owner.stack}"` : "no cilium-lab owner stamp";
}

/**
 * The refusal of a create that finds a same-named object another stack (or nobody) stamped:
 * nothing was changed, and the fix removes it by hand (`remove`) or takes another stack name.
 */
export function foreignObjectError(
  action: string,
  kind: string,
  name: string,
  stack: string,
  owner: Owner | undefined,
  remove: string,
): Error {
  return new Error(
    `${action} failed: a libvirt ${kind} "${name}" already exists and was not created by cilium-lab stack "${stack}" (${ownerText(owner)}). ` +
      `Nothing was changed. Fix: remove it (\`${remove}\`) if it is not needed, or use another stack name.`,
  );
}

/**
 * The spec of a lab libvirt resource (Network, Volume, CloudInitDisk, Domain) without the two
 * rules they all share, and the optional state key that says the object runs.
 */
export type LibvirtSpec<I extends object, O extends object> = Omit<
  ProviderSpec<I, O>,
  "version" | "deleteBeforeReplace" | "needsUpdate"
> & {
  /**
   * A boolean state key (`running`, `active`): when the stored state says false (the object was
   * stopped by hand), the next `up` is an update, which starts it again.
   */
  readonly startedKey?: keyof O & string;
};

/**
 * The provider of a lab libvirt resource: {@link defineProvider} with the libvirt provider version
 * ({@link PROVIDER_VERSION}), delete-before-replace (libvirt names and pool file names are unique
 * on the host, so the new object cannot exist beside the old one), and the restart of an object
 * stopped by hand when `startedKey` is given.
 */
export function libvirtProvider<I extends object, O extends object>(spec: LibvirtSpec<I, O>): LabProvider<I, O> {
  const { startedKey, ...rest } = spec;
  return defineProvider<I, O>({
    ...rest,
    version: PROVIDER_VERSION,
    deleteBeforeReplace: true,
    ...(startedKey === undefined
      ? {}
      : { needsUpdate: (olds: O) => (olds as Record<string, unknown>)[startedKey] === false }),
  });
}

/** What names an owner-stamped libvirt resource (its id is the object's libvirt UUID). */
export interface OwnedResourceKind<A, O> {
  /** The type of the token `pulumi-nodejs:dynamic/libvirt:<type>`. */
  readonly type: "Domain" | "Network";
  /** The boolean state key that says the object runs (see {@link LibvirtSpec}). */
  readonly startedKey: keyof O & string;
  readonly secretOutputs?: ResourceShape<A, O>["secretOutputs"];
  readonly defaults?: ResourceShape<A, O>["defaults"];
}

/** The diff rules of an owned object: input check, replace and update keys, what the diff compares. */
export type OwnedRules<I extends object, O extends object> = Pick<
  ProviderSpec<I, O>,
  "check" | "normalize" | "replaceKeys" | "updateKeys"
>;

/** The four operations of an owned object (`read`, `update` and `delete` are not optional here). */
export type OwnedOperations<I extends object, O extends object> = Pick<ProviderSpec<I, O>, "create"> &
  Required<Pick<ProviderSpec<I, O>, "read" | "update" | "delete">>;

/**
 * The provider and the resource class of an owner-stamped libvirt object (Network, Domain): a
 * {@link libvirtProvider} that starts the object again when it was stopped by hand, and a class
 * whose provider-set outputs are `uuid` (the id) and the started key.
 */
export function ownedLibvirtResource<A extends object, I extends object, O extends object>(
  kind: OwnedResourceKind<A, O>,
  rules: OwnedRules<I, O>,
  operations: OwnedOperations<I, O>,
): { provider: LabProvider<I, O>; Resource: DynamicResourceClass<A, O> } {
  const provider = libvirtProvider<I, O>({ ...rules, ...operations, startedKey: kind.startedKey });
  const outputs = ["uuid", kind.startedKey] as (keyof O & string)[];
  const Resource = dynamicResource<A, O>(
    provider,
    { module: "libvirt", type: kind.type },
    { outputs, secretOutputs: kind.secretOutputs, defaults: kind.defaults },
  );
  return { provider, Resource };
}
