/**
 * `pulumi preview` of the real program (Pulumi.yaml → infra/index.ts, TypeScript through the
 * Node.js language host) for the committed stacks, with the real engine and a fresh file backend.
 * It runs on a copy of the project: `pulumi stack init` with the passphrase provider writes an
 * encryption salt into stacks/Pulumi.<stack>.yaml, which must not touch the checkout.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";

import test from "ava";
import YAML from "yaml";

import { engineEnv, projectCopy, pulumi, REPO_ROOT, tempDir } from "./support";

for (const stack of ["vxlan", "native"]) {
  test(`pulumi preview of infra/index.ts succeeds for the ${stack} stack`, (t) => {
    const stackFile = YAML.parse(readFileSync(path.join(REPO_ROOT, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as {
      config: Record<string, unknown>;
    };
    const routingMode = stackFile.config["cilium-lab:routingMode"];
    t.is(typeof routingMode, "string", `stacks/Pulumi.${stack}.yaml sets cilium-lab:routingMode`);

    const cwd = projectCopy(t);
    const env = engineEnv(tempDir(t, "backend"));
    pulumi(["stack", "init", stack, "--secrets-provider", "passphrase"], { cwd, env });
    const out = pulumi(["preview", "--stack", stack, "--non-interactive", "--color", "never"], { cwd, env });

    // The outputs block shows the program ran with this stack's config.
    t.regex(out, new RegExp(`routingMode\\s*:\\s*"${String(routingMode)}"`), out);
    t.notRegex(out, /^\s*error:/m, out);
  });
}
