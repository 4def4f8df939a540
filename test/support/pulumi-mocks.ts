/**
 * The one Pulumi mock harness of the mock suites: a mock monitor that records every resource
 * registration with what `Mocks.newResource` does not see (URN, parent, provider, `dependsOn`,
 * `deletedWith`, `deleteBeforeReplace`, `additionalSecretOutputs`, which inputs are secret, and when
 * a component's outputs are registered), the helpers that read Pulumi's secret wrappers, and
 * `promiseOf` for an Output's value.
 *
 * Usage: `const monitor = new RecordingMonitor(mocks); await installMonitor(monitor, stack);` and
 * only then import the code under test; `monitor.registrations` lists the registrations in the order
 * the program made them.
 */
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { deserializeProperties, specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";

/** One `RegisterResource` request as the engine would receive it. */
export interface Registration {
  readonly type: string;
  readonly name: string;
  /** Set once the monitor answered; "" until then. */
  readonly urn: string;
  readonly parent: string;
  /** `<provider urn>::<provider id>` for an explicit provider, else "". */
  readonly provider: string;
  readonly deletedWith: string;
  readonly dependencies: readonly string[];
  readonly deleteBeforeReplace: boolean;
  readonly additionalSecretOutputs: readonly string[];
  /** Inputs as sent: secrets still wrapped, a dynamic resource's serialized `__provider` included. */
  readonly raw: Record<string, unknown>;
  /** Inputs with secrets unwrapped and without `__provider` (the provider text nobody sets). */
  readonly inputs: Record<string, unknown>;
  /** Top-level input keys that arrived as secrets. */
  readonly secretKeys: readonly string[];
}

/** The parts of the gRPC request the recorder reads (@pulumi/pulumi proto/resource_pb.js). */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
  getDeletedwith(): string;
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getObject(): Parameters<typeof deserializeProperties>[0];
}

type Callback = (err: unknown, response: unknown) => void;

/** Whether `v` is Pulumi's wrapper of a secret value in serialized inputs (runtime/rpc.js). */
export function isSecret(v: unknown): v is { value: unknown } {
  return v !== null && typeof v === "object" && (v as Record<string, unknown>)[specialSigKey] === specialSecretSig;
}

/** `v` with every secret wrapper replaced by `secret(wrapper)`, recursively. */
function mapSecrets(v: unknown, secret: (s: { value: unknown }) => unknown): unknown {
  if (isSecret(v)) {
    return secret(v);
  }
  if (Array.isArray(v)) {
    return v.map((x) => mapSecrets(x, secret));
  }
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapSecrets(x, secret)]));
  }
  return v;
}

/** Inputs as a mock receives them, with every secret unwrapped: for comparing values. */
export function unwrapSecrets(v: unknown): unknown {
  return mapSecrets(v, (s) => unwrapSecrets(s.value));
}

/** The inputs with every secret replaced by "[secret]": what would be stored or shown in plain text. */
export function withoutSecrets(v: unknown): unknown {
  return mapSecrets(v, () => "[secret]");
}

/** The value of `o` once it is known (never resolves for an Output that stays unknown). */
export function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** A custom resource of another layer (a server VM, a release), standing in for `dependsOn` or `deletedWith`. */
export class StandIn extends pulumi.CustomResource {
  constructor(type: string, name: string) {
    super(type, name, {});
  }
}

/** Mocks whose resources get the id `<name>-id` and the state `state(args)`; calls echo their inputs. */
export function echoMocks(
  state: (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown> = (a) =>
    a.inputs as Record<string, unknown>,
): pulumi.runtime.Mocks {
  return {
    newResource: (a) => ({ id: `${a.name}-id`, state: state(a) }),
    call: (a) => a.inputs as Record<string, unknown>,
  };
}

/**
 * The mock monitor, subclassed to record each registration (in the order the program makes them)
 * and to tell when a component's outputs are registered.
 */
export class RecordingMonitor extends MockMonitor {
  readonly registrations: Registration[] = [];
  private readonly done = new Set<string>();
  private readonly waiters = new Map<string, (() => void)[]>();

  override async registerResource(req: unknown, callback: Callback): Promise<void> {
    const r = req as RegisterRequest;
    const raw = deserializeProperties(r.getObject()) as Record<string, unknown>;
    const inputs = unwrapSecrets(raw) as Record<string, unknown>;
    delete inputs.__provider;
    const registration = {
      type: r.getType(),
      name: r.getName(),
      urn: "",
      parent: r.getParent(),
      provider: r.getProvider(),
      deletedWith: r.getDeletedwith(),
      dependencies: r.getDependenciesList(),
      deleteBeforeReplace: r.getDeletebeforereplace(),
      additionalSecretOutputs: r.getAdditionalsecretoutputsList(),
      raw,
      inputs,
      secretKeys: Object.keys(raw).filter((k) => isSecret(raw[k])),
    };
    this.registrations.push(registration);
    return super.registerResource(req, (err, response) => {
      if (err) {
        this.registrations.splice(this.registrations.indexOf(registration), 1);
      } else {
        registration.urn = (response as { getUrn(): string }).getUrn();
      }
      callback(err, response);
    });
  }

  override registerResourceOutputs(req: unknown, callback: Callback): void {
    super.registerResourceOutputs(req, callback);
    const urn = (req as { getUrn(): string }).getUrn();
    this.done.add(urn);
    for (const resolve of this.waiters.get(urn) ?? []) {
      resolve();
    }
    this.waiters.delete(urn);
  }

  /** Resolves once `registerOutputs` of `urn` reached the monitor. */
  outputsRegistered(urn: string): Promise<void> {
    if (this.done.has(urn)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.set(urn, [...(this.waiters.get(urn) ?? []), resolve]));
  }
}

/**
 * Makes `monitor` the runtime's resource monitor for project cilium-lab and `stack`, replacing any
 * earlier one. Call before importing the code under test.
 */
export async function installMonitor(monitor: RecordingMonitor, stack: string, preview = false): Promise<void> {
  pulumi.runtime.setMockOptions(monitor, "cilium-lab", stack, preview);
  // setMockOptions resets the runtime's feature flags (deletedWith would be refused as unsupported);
  // ask the monitor again, as the SDK does when a real program's stack starts (@pulumi/pulumi
  // runtime/settings.js awaitFeatureSupport, internal in 3.248.0). The mock monitor supports every
  // feature but outputValues, so inputs reach the mocks as plain values.
  await (pulumi.runtime as unknown as { awaitFeatureSupport(): Promise<void> }).awaitFeatureSupport();
}

/**
 * Resolves once every resource registration the program has started has been sent to the monitor and
 * answered: the SDK's own wait before a program ends (@pulumi/pulumi runtime/settings.js waitForRPCs,
 * internal in 3.248.0; each registration holds it from its constructor until the monitor's answer).
 * A registration whose inputs never resolve (a failed program) holds it forever: after `timeoutMs`
 * this rejects, saying how many registrations `monitor` got.
 */
export async function allRegistered(monitor: RecordingMonitor, timeoutMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `the program's registrations did not finish within ${timeoutMs / 1000} s (${monitor.registrations.length} registered): an input that never resolves, or a failed program (see its errors above)`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    await Promise.race([(pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh `RecordingMonitor` answering with `mocks`, installed for `stack`. */
export async function recordMocks(
  mocks: pulumi.runtime.Mocks,
  stack: string,
  preview = false,
): Promise<RecordingMonitor> {
  const monitor = new RecordingMonitor(mocks);
  await installMonitor(monitor, stack, preview);
  return monitor;
}
