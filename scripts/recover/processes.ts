/** The engine processes of a stack that could still change its Helm release (scripts/recover.ts). */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import * as path from "node:path";

/**
 * Processes that could still write the release: a `pulumi … --stack <stack>` CLI working in this
 * project, or a plugin orphaned by a killed CLI (parent PID 1) working in this project. The CLI starts
 * each plugin in a process group of its own, so killing the CLI's group leaves the Kubernetes plugin
 * waiting on the upgrade; were the rollback to make the release ready, that plugin would then record
 * the stuck revision as `deployed` after all (seen in test/k8s/recovery.engine.test.ts). Linux /proc.
 */
export function liveEngineProcesses(projectDir: string, stack: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return found;
  }
  const project = realpathSync(projectDir);
  for (const entry of entries) {
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) !== project) {
        continue;
      }
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8")
        .split("\0")
        .filter((a) => a !== "");
      const exe = path.basename(argv[0] ?? "");
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1];
      const cli =
        exe === "pulumi" && argv.some((a, i) => (a === "--stack" && argv[i + 1] === stack) || a === `--stack=${stack}`);
      const orphanedPlugin = exe.startsWith("pulumi-") && ppid === "1";
      if (cli || orphanedPlugin) {
        found.push({ pid: Number(entry), command: [exe, ...argv.slice(1)].join(" ").slice(0, 200) });
      }
    } catch {
      // not ours to read, or exited meanwhile
    }
  }
  return found;
}
