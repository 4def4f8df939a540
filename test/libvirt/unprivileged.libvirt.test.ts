// test-runs-as: root
// The lab's processes as ordinary users against qemu:///system, for real: the test user
// (CILIUM_LAB_TEST_USER, default clab; in group libvirt) is granted by Debian's polkit rule
// (/usr/share/polkit-1/rules.d/60-libvirt.rules), its outsider `<user>-out` (not in the group) is
// refused with the named error, and a provider create as the outsider leaves nothing behind. Runs
// as root: it starts the users' processes with runuser. The users come from .ci/host-setup.sh.
import test from "ava";
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import type { NetworkInputs } from "../../infra/libvirt/network";
import { poolTargetPath } from "../../infra/libvirt/storage";
import { REPO_ROOT } from "../support/host";
import { URI, sweep, virshTry } from "./support";

const USER = process.env.CILIUM_LAB_TEST_USER || "clab";
const OUTSIDER = `${USER}-out`;
const PREFIX = "cl-t-unpriv";
const SETUP_FIX = "Fix: run `sudo bash .ci/host-setup.sh` (it creates both users and starts D-Bus and polkitd).";

/** `id <flag> <user>`, trimmed; throws with the setup fix when the user does not exist. */
function id(flag: "-u" | "-g" | "-Gn", user: string): string {
  const r = spawnSync("id", [flag, user], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`user ${user} does not exist (id ${flag} ${user}: ${r.stderr.trim()}). ${SETUP_FIX}`);
  }
  return r.stdout.trim();
}

/** A fresh 0700 directory owned by `user` (its HOME and TMPDIR for one run), removed when the test ends. */
function userDir(t: import("ava").ExecutionContext, user: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `cilium-lab-${user}-`));
  chownSync(dir, Number(id("-u", user)), Number(id("-g", user)));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface ChildResult {
  readonly ok: boolean;
  readonly detail?: string;
  readonly message?: string;
  readonly cause?: string;
}

/** Runs test/libvirt/unprivileged-child.ts as `user` (runuser, a clean environment) and parses its JSON line. */
function asUser(t: import("ava").ExecutionContext, user: string, args: string[]): ChildResult {
  const dir = userDir(t, user);
  const r = spawnSync(
    "runuser",
    ["-u", user, "--", "env", "-i", `HOME=${dir}`, `TMPDIR=${dir}`, "PATH=/usr/local/bin:/usr/bin:/bin"].concat([
      process.execPath,
      "--import",
      "tsx",
      "test/libvirt/unprivileged-child.ts",
      ...args,
    ]),
    { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
  );
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ChildResult;
  } catch (e) {
    throw new Error(`the child as ${user} printed no JSON line (exit ${r.status}): ${r.stdout}${r.stderr}`, {
      cause: e,
    });
  }
}

/** Files owned by `user` in the places a process can write without libvirt (new ones show leftovers). */
function ownedFiles(user: string): string[] {
  const dirs = ["/tmp", "/var/tmp", "/dev/shm", "/var/lib/libvirt", "/run"];
  const r = spawnSync("find", [...dirs, "-xdev", "-user", user], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l !== "");
}

test.before(() => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `runs as root (it starts processes as ${USER} and ${OUTSIDER} with runuser); uid is ${process.getuid?.()}.`,
    );
  }
  sweep(PREFIX);
});
test.after.always(() => sweep(PREFIX));

test.serial(
  "the test user is an ordinary user in group libvirt (uid ≠ 0, no sudo), its outsider is not in the group",
  (t) => {
    t.not(id("-u", USER), "0");
    const groups = id("-Gn", USER).split(" ");
    t.true(groups.includes("libvirt"), `${USER} is in ${groups.join(", ")}. ${SETUP_FIX}`);
    t.deepEqual(
      groups.filter((g) => ["root", "sudo", "wheel", "adm", "disk", "kvm"].includes(g)),
      [],
      `${USER} must not hold root-equivalent groups`,
    );
    t.false(id("-Gn", OUTSIDER).split(" ").includes("libvirt"), `${OUTSIDER} must not be in group libvirt`);
    const sudoers = spawnSync("grep", ["-rlw", "-e", USER, "-e", OUTSIDER, "/etc/sudoers", "/etc/sudoers.d"], {
      encoding: "utf8",
    });
    t.is(sudoers.stdout, "", "no sudoers entry names the test users");
  },
);

test.serial(
  `the test user in group libvirt manages ${URI} through the providers' virsh() (polkit grants the group)`,
  (t) => {
    const r = asUser(t, USER, ["connect", URI]);
    t.true(r.ok, r.message);
    t.regex(r.detail ?? "", /Running hypervisor: QEMU/);
  },
);

test.serial(
  `a user outside group libvirt is refused by ${URI} with the named error: who, which URI, and usermod as the fix`,
  (t) => {
    const r = asUser(t, OUTSIDER, ["connect", URI]);
    t.false(r.ok);
    t.is(
      r.message,
      `connecting to libvirt failed: user ${OUTSIDER} may not manage ${URI}: ` +
        "authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage' (virsh exit 1). " +
        `Fix: sudo usermod -aG libvirt ${OUTSIDER}, then log in again (or \`newgrp libvirt\`).`,
    );
    t.regex(r.cause ?? "", /^`virsh -c qemu:\/\/\/system version` exited 1: /);
  },
);

test.serial(
  "a Network create as a user outside group libvirt fails with the named error and leaves nothing behind",
  (t) => {
    const before = new Set(ownedFiles(OUTSIDER));
    const name = `${PREFIX}-net`;
    const inputs: NetworkInputs & { providerVersion: number } = {
      uri: URI,
      networkName: name,
      bridgeName: `${name}0`,
      cidr: "192.168.251.0/24",
      gateway: "192.168.251.1",
      hosts: [{ mac: "52:54:00:c1:fb:01", ip: "192.168.251.11", hostname: "node-1" }],
      stack: PREFIX,
      providerVersion: 1,
    };
    const r = asUser(t, OUTSIDER, ["create-network", JSON.stringify(inputs)]);
    t.false(r.ok);
    t.regex(
      r.message ?? "",
      new RegExp(
        `user ${OUTSIDER} may not manage qemu:///system: .*Fix: sudo usermod -aG libvirt ${OUTSIDER}, then log in again`,
      ),
    );
    t.not(virshTry("net-info", name).status, 0, `network ${name} exists after a refused create`);
    t.deepEqual(
      virshTry("net-list", "--all", "--name")
        .stdout.split("\n")
        .filter((n) => n.startsWith(PREFIX)),
      [],
    );
    t.deepEqual(
      ownedFiles(OUTSIDER).filter(
        (f) => !before.has(f) && !f.startsWith(os.tmpdir() + path.sep + `cilium-lab-${OUTSIDER}-`),
      ),
      [],
    );
  },
);

test.serial(
  "a stack pool created as a user outside group libvirt fails with the named error: no pool, no directory",
  (t) => {
    const pool = `${PREFIX}-pool`;
    const r = asUser(t, OUTSIDER, ["ensure-pool", JSON.stringify({ uri: URI, pool })]);
    t.false(r.ok);
    t.regex(
      r.message ?? "",
      new RegExp(`user ${OUTSIDER} may not manage qemu:///system: .*Fix: sudo usermod -aG libvirt ${OUTSIDER}`),
    );
    t.not(virshTry("pool-info", pool).status, 0, `pool ${pool} exists after a refused create`);
    t.false(existsSync(poolTargetPath(pool)), `${poolTargetPath(pool)} exists after a refused create`);
  },
);
