/**
 * Benchmark (not a timed test): wall time of `pulumi up` to three SSH-ready nodes in bridge mode on
 * one test bridge, run three ways against the same libvirtd:
 * - `root`: as root on qemu:///system;
 * - `user`: as the unprivileged user (group libvirt, no sudo) on qemu:///system;
 * - `ssh`:  as that user through qemu+ssh://<user>@127.0.0.1:<port>/system, a private sshd on
 *   loopback started by that user (every libvirt call, upload and console read crosses ssh).
 * Each way runs cold (the base volume is not in the base pool `cilium-lab-base`, so the up uploads it)
 * and warm (it is there from the cold run: a second stack on that host). The image download cache
 * is warmed before anything is timed (a one-time cost per machine). Repetitions rotate which way goes
 * first, so a slow neighbour on a shared host hits all of them. Reported per way and phase: median
 * and spread (min, max) of the up's seconds, and the ratio of medians to root's; the goal is ≤ 1.10.
 * One JSON line on stdout (also bench/out/bridge-<time>.json), a table on stderr.
 *
 * usage (root, libvirtd running, pulumi and node on the user's PATH too):
 *   CILIUM_LAB_TEST_USER=clab npx tsx bench/bridge-boot.ts [--runs 3] [--nodes 3] [--accel tcg|kvm]
 *     [--modes root,user,ssh] [--user NAME]
 * environment: BENCH_USER_PATH (PATH for the user's runs; default: this PATH), TEST_IMAGE and
 * TEST_IMAGE_SHA256 (default: scripts/dev/build-test-image.sh).
 *
 * The test bridge `clbench0` gets 192.0.2.129/25, the upper half of RFC 5737 TEST-NET-1 (some build
 * hosts sit on 192.0.2.0/24 themselves, gateway 192.0.2.1; the /25 is more specific and leaves .1 and
 * .2 alone), and has no uplink and no forwarding; the nodes get 192.0.2.139-141 (node N: .128+10+N)
 * and gateway 192.0.2.129. It is removed at the end, as is every stack (`pulumi destroy`, not timed)
 * and the bench's cache directory.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import type { BridgeUpArgs } from "./bridge-up";
import { REPO, arg, jsonChild, logger, median, spread, testImage, warmCache, writeResult } from "./lib";

const BRIDGE = "clbench0";
const CIDR = "192.0.2.128/25";
const GATEWAY = "192.0.2.129";
const BASE_POOL = "cilium-lab-base";
const log = logger("bench/bridge-boot");
type Mode = BridgeUpArgs["mode"];
type Phase = "cold" | "warm";

const sh = (file: string, args: string[]): string =>
  execFileSync(file, args, { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });

/** The user's uid, gid and home, from the password database. */
function account(user: string): { uid: number; gid: number; home: string } {
  const [, , uid, gid, , home] = sh("getent", ["passwd", user]).trim().split(":");
  return { uid: Number(uid), gid: Number(gid), home: home ?? "/" };
}

/** Removes the test image's base volume from the base pool (a cold start), when it is there. */
function dropBase(sha256: string): void {
  const name = `base-${sha256.slice(0, 16)}.qcow2`;
  const r = (args: string[]): boolean => {
    try {
      sh("virsh", ["-c", "qemu:///system", ...args]);
      return true;
    } catch {
      return false;
    }
  };
  if (r(["vol-info", "--pool", BASE_POOL, name]) && !r(["vol-delete", "--pool", BASE_POOL, name])) {
    throw new Error(`cannot delete ${BASE_POOL}/${name} for a cold run: does a volume of another stack back onto it?`);
  }
}

/** Runs bench/bridge-up.ts as root or as `user`; resolves with its up seconds. */
function runUp(args: BridgeUpArgs, user: string | undefined, userPath: string): Promise<number> {
  const script = [process.execPath, "--import", "tsx", path.join(REPO, "bench/bridge-up.ts"), JSON.stringify(args)];
  const [file, argv, env] =
    user === undefined
      ? [script[0] as string, script.slice(1), process.env]
      : [
          "runuser",
          [
            "-u",
            user,
            "--",
            "env",
            "-i",
            `HOME=${account(user).home}`,
            `USER=${user}`,
            `LOGNAME=${user}`,
            `PATH=${userPath}`,
            "TMPDIR=/tmp",
            "PULUMI_SKIP_UPDATE_CHECK=true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
            ...script,
          ],
          process.env,
        ];
  return jsonChild<{ up_s: number }>(`bench/bridge-up.ts (${args.mode})`, file, argv, env).then((r) => r.up_s);
}

/** The bridge: created here, with the gateway's address, no uplink; removed by the returned function. */
function makeBridge(): () => void {
  if (readdirSync("/sys/class/net").includes(BRIDGE)) {
    throw new Error(`${BRIDGE} exists already (an earlier run?). Fix: ip link del ${BRIDGE}`);
  }
  sh("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  const remove = (): void => void execFileSync("ip", ["link", "del", BRIDGE], { stdio: "ignore" });
  try {
    sh("ip", ["addr", "add", `${GATEWAY}/25`, "dev", BRIDGE]);
    sh("ip", ["link", "set", BRIDGE, "up"]);
  } catch (error) {
    remove();
    throw error;
  }
  return remove;
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "3"));
  const nodes = Number(arg("nodes", "3"));
  const accel = arg("accel", "tcg");
  const modes = arg("modes", "root,user,ssh").split(",") as Mode[];
  const user = arg("user", process.env.CILIUM_LAB_TEST_USER ?? "");
  const userPath = process.env.BENCH_USER_PATH ?? process.env.PATH ?? "/usr/bin:/bin";
  if (process.getuid?.() !== 0) {
    throw new Error("run as root: it creates the test bridge and runs the root and the user's ups");
  }
  if (accel !== "tcg" && accel !== "kvm") {
    throw new Error(`--accel must be tcg or kvm (got ${accel})`);
  }
  if (modes.some((m) => m !== "root") && user === "") {
    throw new Error("the user and ssh ways need a user in group libvirt: --user NAME or CILIUM_LAB_TEST_USER");
  }
  const img = await testImage();
  const { uid, gid } = user === "" ? { uid: 0, gid: 0 } : account(user);
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), "cl-n-bench-cache-"));
  const removeBridge = makeBridge();
  const times: Record<string, number[]> = {};
  try {
    log(`warming the image cache ${cacheDir} (not timed)`);
    await warmCache(img, cacheDir);
    sh("chown", ["-R", `${uid}:${gid}`, cacheDir]);
    for (let run = 0; run < runs; run++) {
      const order = modes.map((_, i) => modes[(i + run) % modes.length] as Mode);
      for (const mode of order) {
        for (const phase of ["cold", "warm"] as Phase[]) {
          if (phase === "cold") {
            dropBase(img.sha256);
          }
          log(`run ${run + 1}/${runs}: ${mode} ${phase}`);
          const args: BridgeUpArgs = {
            mode,
            stack: `cl-n-bb-${mode}`,
            bridge: BRIDGE,
            cidr: CIDR,
            gateway: GATEWAY,
            nodes,
            accel: accel === "kvm" ? "kvm" : "qemu",
            image: img.image,
            sha256: img.sha256,
            cacheDir,
          };
          const s = await runUp(args, mode === "root" ? undefined : user, userPath);
          (times[`${mode}/${phase}`] ??= []).push(s);
          log(`run ${run + 1}: ${mode} ${phase} ${s.toFixed(1)} s to ${nodes} SSH-ready nodes`);
        }
      }
    }
  } finally {
    removeBridge();
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const rows = Object.entries(times).map(([key, xs]) => {
    const [mode, phase] = key.split("/") as [Mode, Phase];
    const root = times[`root/${phase}`] ?? [];
    return { mode, phase, up_s: xs, ...spread(xs), ratio_to_root: Number((median(xs) / median(root)).toFixed(2)) };
  });
  writeResult("bridge", {
    tool: "bench/bridge-boot.ts",
    nodes,
    accel,
    runs,
    cpus: os.cpus().length,
    loadavg_at_end: os.loadavg().map((x) => Number(x.toFixed(2))),
    rows,
    goal: 1.1,
  });
  for (const r of rows) {
    log(`${r.mode.padEnd(4)} ${r.phase}: median ${r.median} s [${r.min}–${r.max}], ratio to root ${r.ratio_to_root}`);
  }
}

main().catch((e: unknown) => {
  log(`error: ${(e as Error).message}`);
  process.exit(1);
});
