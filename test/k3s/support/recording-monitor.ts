/**
 * A Pulumi mock monitor that records every resource registration with what `Mocks.newResource`
 * does not see: parent, `dependsOn` (dependencies), `deletedWith`, `additionalSecretOutputs`, the
 * inputs with their secrets still wrapped, and when a component's outputs are registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";

// Pulumi's marker for a secret value in serialized inputs (runtime/rpc.js specialSigKey/specialSecretSig).
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** One `RegisterResource` request as the engine would receive it. */
export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent: string;
  readonly deletedWith: string;
  readonly dependencies: readonly string[];
  readonly additionalSecretOutputs: readonly string[];
  /** Inputs as sent, secrets still wrapped. */
  readonly raw: Record<string, unknown>;
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDeletedwith(): string;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
}

export function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(unwrapSecrets);
  }
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_VALUE) {
      return unwrapSecrets(o.value);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/** The inputs with every secret replaced by a marker: what would be stored or shown in plain text. */
export function withoutSecrets(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(withoutSecrets);
  }
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_VALUE) {
      return "[secret]";
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, withoutSecrets(x)]));
  }
  return v;
}

/**
 * The mock monitor, subclassed to see what `Mocks.newResource` cannot: parent, `dependsOn`,
 * `deletedWith`, `additionalSecretOutputs`, and when a component's outputs are registered.
 */
export class RecordingMonitor extends MockMonitor {
  readonly registrations: Registration[] = [];
  private readonly done = new Set<string>();
  private readonly waiters = new Map<string, () => void>();

  override async registerResource(req: unknown, callback: (err: unknown, response: unknown) => void): Promise<void> {
    const r = req as RegisterRequest;
    const { deserializeProperties } = await import("@pulumi/pulumi/runtime/rpc");
    const raw = deserializeProperties(
      (req as { getObject(): Parameters<typeof deserializeProperties>[0] }).getObject(),
    ) as Record<string, unknown>;
    return super.registerResource(req, (err, response) => {
      if (!err) {
        this.registrations.push({
          type: r.getType(),
          name: r.getName(),
          urn: (response as { getUrn(): string }).getUrn(),
          parent: r.getParent(),
          deletedWith: r.getDeletedwith(),
          dependencies: r.getDependenciesList(),
          additionalSecretOutputs: r.getAdditionalsecretoutputsList(),
          raw,
          inputs: unwrapSecrets(raw) as Record<string, unknown>,
        });
      }
      callback(err, response);
    });
  }

  override registerResourceOutputs(req: unknown, callback: (err: unknown, response: unknown) => void): void {
    super.registerResourceOutputs(req, callback);
    const urn = (req as { getUrn(): string }).getUrn();
    this.done.add(urn);
    this.waiters.get(urn)?.();
  }

  outputsRegistered(urn: string): Promise<void> {
    return this.done.has(urn) ? Promise.resolve() : new Promise((resolve) => this.waiters.set(urn, resolve));
  }
}

/**
 * Makes `monitor` the runtime's resource monitor for project cilium-lab and `stack`. Call before
 * importing the code under test.
 */
export async function installMonitor(monitor: RecordingMonitor, stack: string, preview = false): Promise<void> {
  pulumi.runtime.setMockOptions(monitor, "cilium-lab", stack, preview);
  // setMockOptions resets the runtime's feature flags (deletedWith would be refused as unsupported);
  // ask the monitor again, as the SDK does when a real program's stack starts (settings.js
  // awaitFeatureSupport, internal in 3.248.0).
  await (pulumi.runtime as unknown as { awaitFeatureSupport(): Promise<void> }).awaitFeatureSupport();
}
