/**
 * The one shape of the lab's dynamic resources (libvirt Network, Volume, CloudInitDisk, Domain and
 * BaseImage; LabSecrets; CiliumReady). A resource file states its rules in a {@link ProviderSpec}
 * (input check, replace and update keys, delete-before-replace, provider version, and the four
 * operations) and {@link defineProvider} turns them into the provider object Pulumi runs:
 *
 * - `XArgs` is the interface of `pulumi.Input`s the class takes; `type XInputs = pulumi.Unwrap<XArgs>`
 *   is what the provider receives; `interface XOutputs extends XInputs` is the state.
 * - `diff` is {@link diffKeys}: a changed (or not yet known) replace key replaces, a changed update
 *   key or provider version updates, anything else is no change.
 * - `update` defaults to "keep the state, take the update keys from the new inputs"; `read` to "the
 *   state is the only copy"; `delete` to "nothing outside the state". Every state written by
 *   `create`, `read` and `update` carries the provider version.
 *
 * Provider objects are serialized by Pulumi's closure serializer (function text plus the values it
 * captures, property by property) into each resource's `__provider` input and run in the engine's
 * provider host: everything here is plain functions and data. A Node builtin imported at module
 * level comes back as a `require` call; what cannot be serialized is a native function made at load
 * time (a module-level `promisify(execFile)`) or a Buffer (it comes back as a plain object), so the
 * libvirt providers load their builtins when called (infra/libvirt/exec.ts). A class's ES2022 field
 * initializers are dropped too: set fields in the constructor (see `Checker`). Each provider's
 * round-trip test (serialize, then load as the provider host does) catches what does not survive.
 */
import * as pulumi from "@pulumi/pulumi";

/**
 * The libvirt resources' provider version. Bumped when provider code changes in a way existing
 * stacks must pick up: a changed value is an update (no libvirt change) that stores the new provider
 * code, which `read` and `delete` then run (they run the code stored with the resource,
 * pulumi/pulumi sdk/nodejs/cmd/dynamic-provider).
 */
export const PROVIDER_VERSION = 1;

/** The engine's placeholder for a value not known yet (preview), `runtime/rpc.js` `unknownValue`. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Whether an input is (or contains) a value not known yet. */
export function isUnknown(value: unknown): boolean {
  if (value === UNKNOWN) {
    return true;
  }
  if (Array.isArray(value)) {
    return value.some(isUnknown);
  }
  if (value !== null && typeof value === "object") {
    return Object.values(value).some(isUnknown);
  }
  return false;
}

/** Stable JSON for comparisons (object keys sorted). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonical).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** A `check` failure: the input property and why. */
export interface Failure {
  readonly property: string;
  readonly reason: string;
}

/** What a `check` returns: the inputs to store (defaults applied, normalized) and the problems. */
export interface CheckResult {
  readonly inputs: Record<string, unknown>;
  readonly failures: readonly Failure[];
}

/** The result shape of a dynamic provider's `diff`. */
export interface DiffOutcome {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
}

/**
 * The diff rule of every lab resource: a changed (or not yet known) `replaceKeys` value replaces the
 * object, deleting first unless `deleteBeforeReplace` is false; a changed `updateKeys` value or
 * provider version is an in-place update. Other keys never cause a diff. A resource without a
 * version has `providerVersion` on neither side, so it never differs.
 */
export function diffKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  replaceKeys: readonly string[],
  updateKeys: readonly string[],
  deleteBeforeReplace = true,
): DiffOutcome {
  const differs = (k: string): boolean => isUnknown(news[k]) || canonical(olds[k]) !== canonical(news[k]);
  const replaces = replaceKeys.filter(differs);
  const updates = updateKeys.filter(differs);
  const versionChanged = olds.providerVersion !== news.providerVersion;
  return {
    changes: replaces.length > 0 || updates.length > 0 || versionChanged,
    replaces,
    deleteBeforeReplace: deleteBeforeReplace && replaces.length > 0,
  };
}

/** What the engine passes and stores besides a resource's own inputs: the provider version, if it has one. */
export interface Versioned {
  readonly providerVersion?: number;
}

/** The values a diff compares: the stored state and the new inputs, each after `normalize`. */
export interface Compared {
  readonly olds: Record<string, unknown>;
  readonly news: Record<string, unknown>;
}

/** The rules and operations of one dynamic resource; `I` its inputs, `O` its state. */
export interface ProviderSpec<I extends object, O extends object> {
  /**
   * Stored as `providerVersion` in the inputs (by {@link dynamicProps}) and in every state.
   * Omitted by resources whose states never had one (LabSecrets, BaseImage, CiliumReady): adding it
   * would make every existing stack's next `up` an update.
   */
  readonly version?: number;
  /** Checks the new inputs; omitted: every input is accepted as is. */
  check?(news: Record<string, unknown>): CheckResult;
  /** Keys whose change replaces the object; a function of the compared new inputs when it depends on them. */
  readonly replaceKeys: readonly string[] | ((news: Record<string, unknown>) => readonly string[]);
  /** Keys whose change is an in-place update. */
  readonly updateKeys: readonly string[];
  /**
   * Whether a replacement deletes the old object first: true where the object's name is unique on
   * the host (libvirt names, pool file names), false for create-before-delete.
   */
  readonly deleteBeforeReplace: boolean;
  /** The values compared (defaults applied, digests of secret content, an identity); default as stored. */
  normalize?(olds: Record<string, unknown>, news: Record<string, unknown>): Compared;
  /** An update whatever the keys say (e.g. the object was stopped by hand and the update starts it). */
  needsUpdate?(olds: O, news: I): boolean;
  create(inputs: I): Promise<{ id: string; outs: O }>;
  /** Refresh; `{ id: "" }` when the object is gone. Default: the state as is. */
  read?(id: string, props: O): Promise<{ id: string; props?: O }>;
  /** Default: the state, with the update keys taken from the new inputs. */
  update?(id: string, olds: O, news: I): Promise<{ outs: O }>;
  /** Default: nothing to remove. */
  delete?(id: string, props: O): Promise<void>;
}

/** The state with the spec's version stamped in (unchanged without a version). */
function stamped<O>(outs: O, version: number | undefined): O {
  return version === undefined ? outs : { ...outs, providerVersion: version };
}

/** A provider made by {@link defineProvider}; `version` is the spec's, for {@link dynamicProps}. */
export interface LabProvider<I extends object, O extends object> extends pulumi.dynamic.ResourceProvider<I, O> {
  readonly version?: number;
}

/** The provider object for a spec: one module-level instance per resource type (serialized once). */
export function defineProvider<I extends object, O extends object>(spec: ProviderSpec<I, O>): LabProvider<I, O> {
  return {
    version: spec.version,
    check(_olds: I, news: I) {
      const result = spec.check ? spec.check(news as Record<string, unknown>) : { inputs: news, failures: [] };
      return Promise.resolve({ inputs: result.inputs as I, failures: [...result.failures] });
    },
    diff(_id: string, olds: O, news: I) {
      const raw = { olds: olds as Record<string, unknown>, news: news as Record<string, unknown> };
      const compared = spec.normalize ? spec.normalize(raw.olds, raw.news) : raw;
      const keys = typeof spec.replaceKeys === "function" ? spec.replaceKeys(compared.news) : spec.replaceKeys;
      const d = diffKeys(
        { ...compared.olds, providerVersion: raw.olds.providerVersion },
        { ...compared.news, providerVersion: raw.news.providerVersion },
        keys,
        spec.updateKeys,
        spec.deleteBeforeReplace,
      );
      if (!d.changes && spec.needsUpdate?.(olds, news) === true) {
        d.changes = true;
      }
      return Promise.resolve(d);
    },
    async create(inputs: I) {
      const { id, outs } = await spec.create(inputs);
      return { id, outs: stamped(outs, spec.version) };
    },
    async read(id: string, props?: O) {
      if (!spec.read) {
        return { id, props };
      }
      const result = await spec.read(id, props as O);
      return result.props === undefined ? result : { id: result.id, props: stamped(result.props, spec.version) };
    },
    async update(id: string, olds: O, news: I) {
      if (spec.update) {
        return { outs: stamped((await spec.update(id, olds, news)).outs, spec.version) };
      }
      const taken = Object.fromEntries(spec.updateKeys.map((k) => [k, (news as Record<string, unknown>)[k]]));
      return { outs: stamped({ ...olds, ...taken }, spec.version) };
    },
    async delete(id: string, props: O) {
      await spec.delete?.(id, props);
    },
  };
}

/**
 * The props a dynamic resource class registers: each output-only key as `undefined` (so the engine
 * reports it as an output), then the args, then the provider version when the resource has one.
 */
export function dynamicProps<A extends object>(
  provider: { readonly version?: number },
  outputKeys: readonly string[],
  args: A,
): Record<string, unknown> {
  const outputs = Object.fromEntries(outputKeys.map((k) => [k, undefined]));
  const version = provider.version;
  return version === undefined ? { ...outputs, ...args } : { ...outputs, ...args, providerVersion: version };
}

/** The outputs of a resource class: every state key as an Output (`undefined` inside for optional ones). */
export type OutputsOf<O> = {
  readonly [K in keyof O]-?: pulumi.Output<object extends Pick<O, K> ? O[K] | undefined : O[K]>;
};

/** The constructor of a class made by {@link dynamicResource}. */
export type DynamicResourceClass<A, O> = new (
  name: string,
  args: A,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.dynamic.Resource & OutputsOf<O>;

/** What a resource class adds to its args. */
export interface ResourceShape<A, O> {
  /** Keys only the provider sets (undefined until created), so the engine reports them as outputs. */
  readonly outputs: readonly (keyof O & string)[];
  /** Outputs to mark secret: the engine re-marks only outputs that have a same-named secret input. */
  readonly secretOutputs?: readonly string[];
  /** Values of optional args when the program gives none. */
  readonly defaults?: Partial<A>;
}

/**
 * The class of a dynamic resource, token `pulumi-nodejs:dynamic/<module>:<type>`: it registers
 * {@link dynamicProps} (with the defaults under the args) with `provider`. Its instances have every
 * state key as an Output, set by the engine's registration (no class fields, which would shadow them).
 */
export function dynamicResource<A extends object, O extends object>(
  provider: pulumi.dynamic.ResourceProvider & { readonly version?: number },
  token: { readonly module: string; readonly type: string },
  shape: ResourceShape<A, O>,
): DynamicResourceClass<A, O> {
  const secretOutputs = shape.secretOutputs ?? [];
  class DynamicResource extends pulumi.dynamic.Resource {
    constructor(name: string, args: A, opts?: pulumi.CustomResourceOptions) {
      const options =
        secretOutputs.length === 0
          ? opts
          : { ...opts, additionalSecretOutputs: [...secretOutputs, ...(opts?.additionalSecretOutputs ?? [])] };
      const props = dynamicProps(provider, shape.outputs, { ...shape.defaults, ...args });
      super(provider, name, props, options, token.module, token.type);
    }
  }
  Object.defineProperty(DynamicResource, "name", { value: token.type });
  return DynamicResource as unknown as DynamicResourceClass<A, O>;
}
