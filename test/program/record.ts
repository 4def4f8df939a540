/**
 * Runs infra/index.ts under Pulumi mocks in preview mode for one committed stack file and prints
 * every registration (type, name, inputs) as JSON on stdout. A child process per stack, because
 * the program registers its resources once per process (module cache).
 *
 * usage: node --import=tsx test/program/record.ts <stack> [key=value ...]
 *   (key=value pairs override `cilium-lab:` keys of the stack file, as `pulumi config set` would)
 */
import * as pulumi from "@pulumi/pulumi";

import { allRegistered, recordMocks, type Registration } from "../support/pulumi-mocks";
import { readStackConfig } from "../support/stack-files";

/** One resource registration as printed: type, name and inputs (secrets unwrapped, no `__provider`). */
export type RecordedRegistration = Pick<Registration, "type" | "name" | "inputs">;

async function main(stack: string, overrides: readonly string[]): Promise<void> {
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(readStackConfig(stack))) {
    config[`cilium-lab:${key}`] = value;
  }
  for (const pair of overrides) {
    const [key, ...value] = pair.split("=");
    config[`cilium-lab:${key ?? ""}`] = value.join("=");
  }
  pulumi.runtime.setAllConfig(config);
  // The host preflight inspects this machine; the registrations must not depend on it.
  process.env.CILIUM_LAB_PREFLIGHT = "off";

  const monitor = await recordMocks(
    { newResource: (a) => ({ id: `${a.name}-id`, state: {} }), call: () => ({}) },
    stack,
    true, // preview: outputs a real engine would compute stay unknown
  );
  await import("../../infra");

  // Registrations reach the monitor as their inputs resolve.
  await allRegistered(monitor);
  const seen: RecordedRegistration[] = monitor.registrations.map(({ type, name, inputs }) => ({ type, name, inputs }));
  // exit once the whole document is written: a pipe takes it in chunks, and exit() drops the rest.
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
}

main(process.argv[2] ?? "vxlan", process.argv.slice(3)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
