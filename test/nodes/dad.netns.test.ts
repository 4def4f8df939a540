// The guest's duplicate-address check (infra/nodes/dad.ts) run for real: the same python3 program
// the nodes get in their cloud-init bootcmd, inside a network namespace "guest" whose eth0 (a veth,
// with the node's MAC and its static address, as the guest has it when bootcmd runs) faces another
// namespace "lan" across the veth pair. When the lan end holds the address, the kernel there answers
// the RFC 5227 probe and the check prints the conflict line with the lan end's MAC; when the
// address is free, it stays silent after about 2 s. Needs root (namespaces); run under the heavy
// lock. Both namespaces are deleted, also on failure. The `--poweroff` branch is what the nodes
// run; here the check exits instead, which is the only difference.
import test from "ava";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { findDadConflict } from "../../infra/libvirt/domain";
import { DAD_CONFLICT_MARKER, DAD_CONFLICT_STATUS, DAD_SCRIPT } from "../../infra/nodes/dad";
import { prerequisites, run, type Ran } from "../verify/support";

const GUEST = `cl-dad-guest-${process.pid}`;
const LAN = `cl-dad-lan-${process.pid}`;
const GUEST_MAC = "52:54:00:d4:d0:02";
const LAN_MAC = "52:54:00:d4:d0:99";
const ADDRESS = "192.0.2.12";
let problems: string[] = [];
let dir = "";

async function ip(...args: string[]): Promise<void> {
  const r = await run("ip", args);
  if (r.code !== 0) {
    throw new Error(`ip ${args.join(" ")} failed (exit ${r.code}): ${r.stderr}`);
  }
}

/** The lan end's address: replaced by each test. */
async function lanHolds(cidr: string): Promise<void> {
  await ip("-n", LAN, "addr", "flush", "dev", "eth0");
  await ip("-n", LAN, "addr", "add", cidr, "dev", "eth0");
}

/** Runs the check in the guest namespace for ADDRESS and the guest MAC, printing to `out` too; with its duration. */
async function check(mac = GUEST_MAC): Promise<{ ran: Ran; seconds: number; out: string }> {
  const out = path.join(dir, `console-${Date.now()}`);
  await fs.writeFile(out, "");
  const start = process.hrtime.bigint();
  const ran = await run("ip", ["netns", "exec", GUEST, "python3", "-c", DAD_SCRIPT, ADDRESS, mac, out], {
    timeoutMs: 20_000,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { ran, seconds, out: await fs.readFile(out, "utf8") };
}

test.before(async () => {
  problems = await prerequisites(true, [
    ["ip", "-V", "iproute2"],
    ["python3", "--version", "python3"],
  ]);
  if (problems.length > 0) {
    return;
  }
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "cl-dad-"));
  await ip("netns", "add", GUEST);
  await ip("netns", "add", LAN);
  await ip(
    "-n",
    GUEST,
    "link",
    "add",
    "eth0",
    "address",
    GUEST_MAC,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    LAN,
  );
  await ip("-n", LAN, "link", "set", "eth0", "address", LAN_MAC);
  await ip("-n", GUEST, "addr", "add", `${ADDRESS}/24`, "dev", "eth0");
  await ip("-n", GUEST, "link", "set", "eth0", "up");
  await ip("-n", LAN, "link", "set", "eth0", "up");
});

test.after.always(async () => {
  for (const ns of [GUEST, LAN]) {
    await run("ip", ["netns", "del", ns]);
  }
  if (dir !== "") {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.serial("a taken address: the check prints the conflict line with the holder's MAC and exits 3", async (t) => {
  t.deepEqual(problems, []);
  await lanHolds(`${ADDRESS}/24`);
  const { ran, out } = await check();
  const line = `${DAD_CONFLICT_MARKER} ${ADDRESS} answered by ${LAN_MAC}`;
  t.is(ran.code, DAD_CONFLICT_STATUS, ran.stderr);
  t.is(ran.stdout, `${line}\n`);
  t.is(out, `\r\n${line}\r\n`);
  t.deepEqual(findDadConflict(`[  12.3] cloud-init[512]: ...\n${out}`), { address: ADDRESS, answeredBy: LAN_MAC });
});

test.serial("a free address: the check stays silent and exits 0 after about 2 s", async (t) => {
  t.deepEqual(problems, []);
  await lanHolds("192.0.2.99/24");
  const { ran, seconds, out } = await check();
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stdout, "");
  t.is(out, "");
  t.true(seconds >= 1.9 && seconds < 4, `took ${seconds.toFixed(2)} s`);
});

test.serial("no interface with the node's MAC: the check fails naming the MAC", async (t) => {
  t.deepEqual(problems, []);
  const { ran } = await check("52:54:00:00:00:01");
  t.is(ran.code, 1);
  t.is(ran.stderr, "cilium-lab: duplicate-address check: no interface has MAC 52:54:00:00:00:01\n");
});
