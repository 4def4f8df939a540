/**
 * Runs infra/index.ts under Pulumi mocks in preview mode for one committed stack file and prints
 * every registration (type, name, inputs) as JSON on stdout. A child process per stack, because
 * the program registers its resources once per process (module cache).
 *
 * usage: node --import=tsx test/program/record.ts <stack> [key=value ...]
 *   (key=value pairs override `cilium-lab:` keys of the stack file, as `pulumi config set` would)
 */
import * as pulumi from "@pulumi/pulumi";

import { readStackConfig } from "../support/stack-files";

/** One resource registration as printed (the type is shared with the tests that read the JSON). */
export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

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

  const seen: Registration[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        // The serialized provider text of dynamic resources is not an input anyone sets.
        const inputs = { ...(args.inputs as Record<string, unknown>) };
        delete inputs.__provider;
        seen.push({ type: args.type, name: args.name, inputs });
        return { id: `${args.name}-id`, state: {} };
      },
      call: () => ({}),
    },
    "cilium-lab",
    stack,
    true, // preview: outputs a real engine would compute stay unknown
  );
  await import("../../infra");

  // Registrations arrive as their inputs resolve; in preview nothing waits on a real value, so the
  // set settles quickly. Wait until it has not grown for 1.5 s (at most 60 s).
  let last = -1;
  for (let waited = 0; waited < 60_000 && seen.length !== last; waited += 1_500) {
    last = seen.length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  }
  // exit once the whole document is written: a pipe takes it in chunks, and exit() drops the rest.
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
}

main(process.argv[2] ?? "vxlan", process.argv.slice(3)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
