/**
 * Benchmark: wall time to N ready nodes (SSH answers, cloud-init finished) through `pulumi up`
 * (the nodes layer, Automation API, real engine) versus the same N boots done by the bare virsh script bench/virsh-boot.sh, on the
 * same machine in one run. Prints one JSON line (stdout) with both times and their ratio; the goal
 * is a ratio ≤ 1.3. Progress goes to stderr; the JSON is also written to bench/out/boot-<time>.json.
 *
 * usage (root, libvirtd running, pulumi on PATH):
 *   eval "$(bash scripts/toolchain.sh)"; npx tsx bench/boot.ts [--nodes 3] [--runs 1] [--accel tcg|kvm]
 *
 * Both sides boot the same test image (scripts/dev/build-test-image.sh, or $TEST_IMAGE/$TEST_IMAGE_SHA256)
 * with 1 vCPU, 1024 MiB and an 8 GiB overlay per node, under TCG unless --accel kvm. What is timed:
 * - virsh: the script's `total_s` (network, base copy, overlays, seeds, define, start, all SSH
 *   with cloud-init finished).
 * - pulumi: `stack.up()` from call to return (engine start, program, image cache hit, network, base
 *   copy, overlays, seeds, domains, each Domain's wait for SSH with the pinned host key and
 *   cloud-init finished).
 *   The image cache is warmed before timing, as on any host after its first stack: the download is
 *   a one-time cost the virsh script does not pay either.
 * Teardown (`pulumi destroy`, the script's cleanup) is not timed. Runs alternate which side goes
 * first, so a slow neighbour on a shared host hits both.
 */
import * as os from "node:os";
import * as path from "node:path";

import { cacheRoot } from "../infra/libvirt/base-image";
import {
  REPO,
  arg,
  jsonChild,
  logger,
  median,
  nodesConfig,
  nodesStack,
  testImage,
  timedUp,
  warmCache,
  writeResult,
} from "./lib";

const STACK = "cl-n-bench";
const PULUMI_CIDR = "192.168.186.0/24";
const VIRSH_CIDR = "192.168.185.0/24";
const log = logger("bench/boot");

/** bench/virsh-boot.sh; resolves with its JSON line. */
function virshBoot(nodes: number, accel: string, image: string): Promise<{ total_s: number; all_ssh_s: number }> {
  return jsonChild(
    "bench/virsh-boot.sh",
    "bash",
    [path.join(REPO, "bench/virsh-boot.sh"), String(nodes), accel, VIRSH_CIDR],
    {
      ...process.env,
      TEST_IMAGE: image,
      MEMORY_MIB: "1024",
      DISK_SIZE: "8G",
      BOOT_TIMEOUT: "1800",
    },
  );
}

/** `pulumi up` of the nodes layer; resolves with the up's wall time, after destroying again. */
async function pulumiBoot(
  nodes: number,
  accel: "kvm" | "qemu",
  img: { image: string; sha256: string },
  cacheDir: string,
): Promise<number> {
  const raw = { ...nodesConfig(img, accel, nodes), networkCidr: PULUMI_CIDR };
  const { stack, dispose } = await nodesStack({ stack: STACK, raw, cacheDir, log });
  try {
    return await timedUp(stack);
  } finally {
    await dispose();
  }
}

async function main(): Promise<void> {
  const nodes = Number(arg("nodes", "3"));
  const runs = Number(arg("runs", "1"));
  const accel = arg("accel", "tcg");
  if (accel !== "tcg" && accel !== "kvm") {
    throw new Error(`--accel must be tcg or kvm (got ${accel})`);
  }
  const img = await testImage();
  const cacheDir = cacheRoot(process.env, os.homedir());
  log(`warming the image cache ${cacheDir} (not timed)`);
  await warmCache(img, cacheDir);

  const virshS: number[] = [];
  const pulumiS: number[] = [];
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? ["virsh", "pulumi"] : ["pulumi", "virsh"];
    for (const side of order) {
      if (side === "virsh") {
        log(`run ${run + 1}/${runs}: bench/virsh-boot.sh ${nodes} ${accel}`);
        const r = await virshBoot(nodes, accel, img.image);
        virshS.push(r.total_s);
        log(`run ${run + 1}: virsh ${r.total_s.toFixed(1)} s to ${nodes} SSH-ready nodes`);
      } else {
        log(`run ${run + 1}/${runs}: pulumi up of ${nodes} nodes`);
        const s = await pulumiBoot(nodes, accel === "kvm" ? "kvm" : "qemu", img, cacheDir);
        pulumiS.push(s);
        log(`run ${run + 1}: pulumi up ${s.toFixed(1)} s to ${nodes} SSH-ready nodes`);
      }
    }
  }
  const result = {
    tool: "bench/boot.ts",
    nodes,
    accel,
    runs,
    cpus: os.cpus().length,
    loadavg_at_end: os.loadavg().map((x) => Number(x.toFixed(2))),
    virsh_s: virshS.map((x) => Number(x.toFixed(1))),
    pulumi_up_s: pulumiS.map((x) => Number(x.toFixed(1))),
    ratio_per_run: pulumiS.map((p, i) => Number((p / (virshS[i] ?? NaN)).toFixed(2))),
    ratio_of_medians: Number((median(pulumiS) / median(virshS)).toFixed(2)),
    goal: 1.3,
  };
  writeResult("boot", result);
  log(`ratio pulumi/virsh = ${result.ratio_of_medians} (goal ≤ ${result.goal})`);
}

main().catch((e: unknown) => {
  log(`error: ${(e as Error).message}`);
  process.exit(1);
});
