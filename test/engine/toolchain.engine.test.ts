// test-needs: k8s-toolchain (the kubernetes plugin installed into PULUMI_HOME)
/**
 * The engine on PATH is the one the repository pins: the CLI version from tools/pulumi-cli/go.mod,
 * the Node.js language host and the dynamic-provider shim beside it, and the resource plugins the
 * npm SDKs ask for, at exactly their versions (the engine only accepts an exact match from its
 * plugin cache, and PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION forbids downloading one).
 */
import { accessSync, constants } from "node:fs";
import * as path from "node:path";

import test from "ava";

import {
  engineEnv,
  goModRequirement,
  installedResourcePlugins,
  npmPluginVersion,
  pulumi,
  pulumiBinDir,
  REPO_ROOT,
  tempDir,
} from "./support";

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
    t.notThrows(
      () => accessSync(path.join(dir, name), constants.X_OK),
      `${name} is missing or not executable in ${dir}`,
    );
  }
});

test("pulumi plugin ls lists only the kubernetes plugin of provider commit f47bc2d6f199 under its own version: the Go module proxy serves no build of command 1.2.1 or kubernetes 4.34.2 (403), so nothing is installed under those", (t) => {
  const env = engineEnv(tempDir(t, "plugins"));
  const installed = installedResourcePlugins(env).map((p) => `${p.name} ${p.version}`);
  // The SDKs still ask for exactly these versions: the day the proxy serves them, scripts/toolchain.sh
  // must build them and this test must list them.
  t.is(npmPluginVersion("@pulumi/command"), "1.2.1");
  t.is(npmPluginVersion("@pulumi/kubernetes"), "4.34.2");
  // scripts/k8s-toolchain.sh installs the one kubernetes build the proxy serves, under its own version.
  t.deepEqual(
    installed,
    ["kubernetes 4.24.2-0.20260115033456-f47bc2d6f199"],
    `PULUMI_HOME=${env.PULUMI_HOME ?? "(unset: ~/.pulumi)"}`,
  );
});
