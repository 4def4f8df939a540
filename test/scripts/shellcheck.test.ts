/**
 * Every shell script under scripts/ (node scripts and host tools) and .ci/ follows the house rules:
 * `#!/usr/bin/env bash`, `set -euo pipefail` (optionally with -E), never `set -x` (tokens and keys
 * pass through some of them), `bash -n` parses it, and shellcheck finds nothing. A node script
 * (scripts/node/) is parsed and shellchecked as the nodes get it: scripts/node/lib.sh in front, the
 * text of infra/node-scripts.ts; lib.sh is also checked on its own.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";

import { NODE_LIB, nodeScript } from "../../infra/node-scripts";

const REPO = resolve(__dirname, "../..");

/** The node scripts' folder, relative to the repository. */
const NODE_DIR = "scripts/node";

/** <dir>/**\/*.sh, relative to the repository, sorted. */
function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? shellScripts(join(dir, e.name))
        : e.name.endsWith(".sh")
          ? [relative(REPO, join(dir, e.name))]
          : [],
    )
    .sort();
}

/** Runs a tool (with `input` on stdin); returns its exit code and output instead of throwing. */
function run(file: string, args: string[], input?: string): { code: number; output: string } {
  try {
    return {
      code: 0,
      output: execFileSync(file, args, { cwd: REPO, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] }),
    };
  } catch (err) {
    const e = err as { status?: number; code?: string; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(
        `${file} is not installed: apt-get install -y ${file === "shellcheck" ? "shellcheck" : "bash"} (listed in .ci/apt-packages.txt)`,
      );
    }
    return { code: e.status ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

const scripts = [...shellScripts(join(REPO, "scripts")), ...shellScripts(join(REPO, ".ci"))];

test("scripts/ has the k3s layer's node scripts", (t) => {
  for (const name of [
    NODE_LIB,
    "wait-cloud-init.sh",
    "probe-upstreams.sh",
    "prepare-node.sh",
    "install-k3s.sh",
    "uninstall-k3s.sh",
    "read-kubeconfig.sh",
    "collect-evidence.sh",
    "collect-cilium-state.sh",
    "wait-iperf3-servers.sh",
    "read-iperf3-job.sh",
  ]) {
    t.true(scripts.includes(`${NODE_DIR}/${name}`), name);
  }
});

for (const script of scripts) {
  test(`${script} starts with #!/usr/bin/env bash, sets -euo pipefail, never -x, and passes bash -n and shellcheck`, (t) => {
    const text = readFileSync(join(REPO, script), "utf8");
    t.is(text.split("\n", 1)[0], "#!/usr/bin/env bash");
    t.regex(text, /^set -E?euo pipefail$/m);
    t.notRegex(text, /^\s*set\s+-[A-Za-z]*x/m, "set -x would trace secrets");
    // a node script as the nodes run it: lib.sh in front (read from stdin: `-`).
    const shipped = script.startsWith(`${NODE_DIR}/`) && basename(script) !== NODE_LIB;
    const [target, input] = shipped ? ["-", nodeScript(basename(script)).text] : [script, undefined];
    const syntax = run("bash", ["-n", ...(shipped ? [] : [script])], input);
    t.is(syntax.code, 0, syntax.output);
    const lint = run("shellcheck", ["--external-sources", target], input);
    t.is(lint.code, 0, `${shipped ? `${NODE_LIB} + ` : ""}${lint.output}`);
  });
}
