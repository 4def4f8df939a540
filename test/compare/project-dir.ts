/** A throwaway project directory for the compare preflight tests. */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A project directory with Pulumi.yaml (stackConfigDir: stacks) and, if given, stacks/Pulumi.<stack>.yaml. */
export async function project(t: { teardown(fn: () => Promise<void>): void }, stackFile?: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "clc-hostinputs-"));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, "Pulumi.yaml"), "name: cilium-lab\nruntime: nodejs\nstackConfigDir: stacks\n");
  await fs.mkdir(path.join(dir, "stacks"));
  if (stackFile !== undefined) {
    await fs.writeFile(path.join(dir, "stacks", "Pulumi.lab.yaml"), stackFile);
  }
  return dir;
}
