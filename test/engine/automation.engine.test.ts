/**
 * The whole engine end to end through the Automation API (LocalWorkspace, inline program): the
 * CLI and its engine, the Node.js language host and the dynamic-provider host, on a file backend in
 * a temp directory: preview, up, a second up that must change nothing, and destroy. The command
 * plugin cannot be built here, so its test asserts the engine's exact refusal.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import test, { type ExecutionContext } from "ava";

import { engineEnv, inlineStack, pulumiOnPath, tempDir } from "./support";

/** A trivial dynamic resource: its id and output are derived from its input, nothing else. */
const echoProvider: pulumi.dynamic.ResourceProvider = {
  create(inputs: { value: string }) {
    return Promise.resolve({ id: `echo-${inputs.value}`, outs: { value: inputs.value } });
  },
};

class Echo extends pulumi.dynamic.Resource {
  declare readonly value: pulumi.Output<string>;
  constructor(name: string, value: string) {
    super(echoProvider, name, { value }, {});
  }
}

/** Runs preview → up → up (must be a no-op) → destroy, and returns the first up's outputs. */
async function lifecycle(t: ExecutionContext, stackName: string, program: PulumiFn, expectedResources: number) {
  pulumiOnPath(); // fails with the fix when there is no engine, instead of an opaque spawn error
  const stack = await inlineStack(t, {
    stackName,
    projectName: "engine-test",
    program,
    envVars: engineEnv(tempDir(t, "backend")),
  });
  // The stack counts as a resource too; provider resources do not.
  const total = expectedResources + 1;

  const preview = await stack.preview();
  t.deepEqual(preview.changeSummary, { create: total }, "preview");

  const up = await stack.up();
  t.is(up.summary.result, "succeeded");
  t.deepEqual(up.summary.resourceChanges, { create: total }, "first up");

  const again = await stack.up();
  t.deepEqual(again.summary.resourceChanges, { same: total }, "second up must report zero changes");

  const destroy = await stack.destroy();
  t.deepEqual(destroy.summary.resourceChanges, { delete: total }, "destroy");
  return up.outputs;
}

test("Automation API: preview, up, no-op up and destroy of a dynamic resource", async (t) => {
  const outputs = await lifecycle(
    t,
    "dynamic",
    () => {
      const echo = new Echo("echo", "hello");
      return Promise.resolve({ id: echo.id, value: echo.value });
    },
    1,
  );
  t.is(outputs.id?.value, "echo-hello");
  t.is(outputs.value?.value, "hello");
});

test("Automation API: a @pulumi/command local.Command is refused for want of its plugin, which the Go module proxy cannot provide here (pulumi-resource-command 1.2.1: 403)", async (t) => {
  pulumiOnPath();
  const stack = await inlineStack(t, {
    stackName: "command",
    projectName: "engine-test",
    program: () => {
      const echo = new Echo("echo", "hello");
      const cmd = new command.local.Command("say", { create: pulumi.interpolate`printf '%s from sh' ${echo.value}` });
      return Promise.resolve({ stdout: cmd.stdout });
    },
    envVars: engineEnv(tempDir(t, "backend")),
  });
  const error = await t.throwsAsync(stack.preview());
  t.regex(
    error?.message ?? "",
    /error: no resource plugin 'pulumi-resource-command' found in the workspace at version v1\.2\.1 or on your \$PATH/,
  );
});
