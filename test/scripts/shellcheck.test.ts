/**
 * Every shell script under scripts/ (node scripts and host tools) follows the house rules:
 * `#!/usr/bin/env bash`, `set -euo pipefail` (optionally with -E), never `set -x` (tokens and keys
 * pass through some of them), `bash -n` parses it, and shellcheck finds nothing.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const REPO = resolve(__dirname, "../..");

/** scripts/**\/*.sh, relative to the repository, sorted. */
function shellScripts(dir = join(REPO, "scripts")): string[] {
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

/** Runs a tool; returns its exit code and output instead of throwing. */
function run(file: string, args: string[]): { code: number; output: string } {
  try {
    return {
      code: 0,
      output: execFileSync(file, args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
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

const scripts = shellScripts();

test("scripts/ has the k3s layer's node scripts", (t) => {
  for (const name of [
    "wait-cloud-init.sh",
    "prepare-node.sh",
    "install-k3s.sh",
    "uninstall-k3s.sh",
    "read-kubeconfig.sh",
  ]) {
    t.true(scripts.includes(`scripts/${name}`), name);
  }
});

for (const script of scripts) {
  test(`${script} starts with #!/usr/bin/env bash, sets -euo pipefail, never -x, and passes bash -n and shellcheck`, (t) => {
    const text = readFileSync(join(REPO, script), "utf8");
    t.is(text.split("\n", 1)[0], "#!/usr/bin/env bash");
    t.regex(text, /^set -E?euo pipefail$/m);
    t.notRegex(text, /^\s*set\s+-[A-Za-z]*x/m, "set -x would trace secrets");
    const syntax = run("bash", ["-n", script]);
    t.is(syntax.code, 0, syntax.output);
    const lint = run("shellcheck", ["--external-sources", script]);
    t.is(lint.code, 0, lint.output);
  });
}
