/**
 * The engine on PATH is the one the repository pins: the CLI version from tools/pulumi-cli/go.mod,
 * the Node.js language host and the dynamic-provider shim beside it, and the resource plugins the
 * npm SDKs ask for, at exactly their versions (the engine only accepts an exact match from its
 * plugin cache, and PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION forbids downloading one).
 */
import { accessSync, constants } from "node:fs";
import * as path from "node:path";

import test from "ava";

import { engineEnv, goModRequirement, npmPluginVersion, pulumi, pulumiBinDir, REPO_ROOT, tempDir } from "./support";

test("pulumi version reports the CLI version pinned in tools/pulumi-cli/go.mod", (t) => {
  const expected = goModRequirement("pulumi-cli", "github.com/pulumi/pulumi/pkg/v3");
  const env = engineEnv(tempDir(t, "version"));
  t.is(pulumi(["version"], { cwd: REPO_ROOT, env }).trim(), expected);
});

test("pulumi-language-nodejs and pulumi-resource-pulumi-nodejs sit beside the real path of pulumi", (t) => {
  // Bundled plugins are looked up next to os.Executable() with symlinks resolved
  // (pulumi/pulumi sdk/go/common/workspace/plugins.go); `pulumi plugin install language nodejs`
  // refuses them (pulumi/pulumi#11703).
  const dir = pulumiBinDir();
  for (const name of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
    t.notThrows(() => accessSync(path.join(dir, name), constants.X_OK), `${name} is missing or not executable in ${dir}`);
  }
});

test("pulumi plugin ls lists the command and kubernetes plugins at the versions the npm SDKs request", (t) => {
  const env = engineEnv(tempDir(t, "plugins"));
  const installed = (JSON.parse(pulumi(["plugin", "ls", "--json"], { cwd: REPO_ROOT, env })) as { name: string; kind: string; version: string }[])
    .filter((p) => p.kind === "resource")
    .map((p) => `${p.name} ${p.version}`)
    .sort();
  const wanted = [`command ${npmPluginVersion("@pulumi/command")}`, `kubernetes ${npmPluginVersion("@pulumi/kubernetes")}`];
  for (const plugin of wanted) {
    t.true(installed.includes(plugin), `resource plugin '${plugin}' is not installed in PULUMI_HOME=${env.PULUMI_HOME ?? "(unset: ~/.pulumi)"}; installed: [${installed.join(", ")}]`);
  }
});
