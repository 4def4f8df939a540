/**
 * Host facts read through the libvirt connection, so they hold for a remote `qemu+ssh://` host as
 * much as for the local daemon: KVM from `virsh capabilities` (libvirt lists `<domain type='kvm'/>`
 * for a guest architecture only when the daemon can use KVM, libvirt docs "Driver capabilities",
 * libvirt.org/formatcaps.html), CPUs from `virsh nodeinfo`, memory from `virsh nodememstats`, free
 * pool space from `virsh pool-info --bytes`. Facts of this machine (/proc/meminfo, statfs) are
 * used only when the URI is local. Synchronous and read-only, like gather.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { toolPath } from "../exec";
import { runSync, type SyncResult } from "../run-sync";
import { NO_ANSWER_MARKER } from "../remote";
import { BASE_POOL } from "../storage";
import { connectUri, isSshUri } from "../uri";
import type { HostDisk, PreflightDisk } from "./types";

/** Bound of one `virsh` call over ssh, in seconds (a remote host that accepts and never answers). */
const REMOTE_CALL_SECONDS = 20;

/** One read-only command: 30 s and 16 MiB of output at most. */
export function run(file: string, args: readonly string[]): SyncResult {
  return runSync(file, args, { timeoutMs: 30_000, maxBufferBytes: 16 * 1024 * 1024 });
}

/**
 * `virsh -c uri args…`. A remote URI gets `no_tty=1` (ssh in batch mode: it fails instead of asking
 * on a terminal, infra/libvirt/uri.ts connectUri) and runs under coreutils `timeout`, which signals
 * its whole process group: a killed virsh would otherwise leave its ssh child holding the output
 * pipe open on a host that never answers.
 */
export function virshSync(uri: string, args: readonly string[]): SyncResult {
  const virsh = toolPath("virsh");
  const argv = ["-c", connectUri(uri), ...args];
  if (isLocalUri(uri)) {
    return run(virsh, argv);
  }
  const r = runSync("timeout", ["--kill-after=2", String(REMOTE_CALL_SECONDS), virsh, ...argv], {
    timeoutMs: (REMOTE_CALL_SECONDS + 5) * 1000,
    maxBufferBytes: 16 * 1024 * 1024,
  });
  return !r.ok && /^(Command failed: .*)?$/.test(r.stderr)
    ? {
        ...r,
        stderr: `no answer from ${uri} within ${REMOTE_CALL_SECONDS} s (\`virsh ${args[0] ?? ""}\` was killed); ${NO_ANSWER_MARKER}`,
      }
    : r;
}

/** The last line of an error output, without virsh's `error: ` prefix. */
export function lastLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim().replace(/^error: /, ""))
      .filter((l) => l !== "")
      .slice(-1)[0] ?? "unknown error"
  );
}

/**
 * Whether the URI names this machine's daemon (no host part: `qemu:///system`), so facts of this
 * machine (its /proc, its interfaces, its firewall) are facts of the libvirt host.
 */
export function isLocalUri(uri: string): boolean {
  return !isSshUri(uri);
}

/** KVM as the daemon sees it: the host's own arch offers domain type kvm. */
export function kvmFact(uri: string): { usable: boolean; detail: string } {
  const caps = virshSync(uri, ["capabilities"]);
  if (!caps.ok) {
    return { usable: false, detail: `\`virsh capabilities\` failed (${lastLine(caps.stderr)})` };
  }
  const hostArch = /<host>[\s\S]*?<arch>([^<]+)<\/arch>/.exec(caps.stdout)?.[1];
  const guests = caps.stdout.split("<guest>").slice(1);
  const own = guests.find((g) => hostArch !== undefined && g.includes(`<arch name='${hostArch}'>`));
  return own?.includes("<domain type='kvm'") === true
    ? { usable: true, detail: "" }
    : {
        usable: false,
        detail: `libvirt at ${uri} offers no kvm domain type for ${hostArch ?? "the host's architecture"} (no usable /dev/kvm for the daemon on that host)`,
      };
}

/** Host CPUs from `virsh nodeinfo`, or undefined. */
export function nodeCpus(uri: string): number | undefined {
  const info = virshSync(uri, ["nodeinfo"]);
  const n = /^CPU\(s\):\s+(\d+)$/m.exec(info.stdout)?.[1];
  return info.ok && n !== undefined ? Number(n) : undefined;
}

/** Memory the host can give (free + buffers + cached, KiB → MiB) from `virsh nodememstats`, or undefined. */
export function nodeMemAvailableMiB(uri: string): number | undefined {
  const stats = virshSync(uri, ["nodememstats"]);
  if (!stats.ok) {
    return undefined;
  }
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}\\s*:\\s*(\\d+) KiB$`, "m").exec(stats.stdout)?.[1] ?? 0);
  const sum = kib("free") + kib("buffers") + kib("cached");
  return sum > 0 ? Math.floor(sum / 1024) : undefined;
}

/** Free bytes at the nearest existing ancestor of a local directory, and an ancestor others cannot search. */
export function localDiskFact(dir: string): HostDisk {
  let p = path.resolve(dir);
  while (!fs.existsSync(p) && p !== path.dirname(p)) {
    p = path.dirname(p);
  }
  const s = fs.statfsSync(p);
  let unsearchable: string | undefined;
  for (let a = p; ; a = path.dirname(a)) {
    if ((fs.statSync(a).mode & 0o001) === 0) {
      unsearchable = `${a} (mode ${(fs.statSync(a).mode & 0o777).toString(8).padStart(4, "0")})`;
      break;
    }
    if (a === path.dirname(a)) {
      break;
    }
  }
  return { path: dir, freeBytes: s.bavail * s.bsize, ...(unsearchable !== undefined ? { unsearchable } : {}) };
}

/**
 * Free space for a disk: a pool's `Available` through libvirt (the stack's pool, else the base
 * pool, else `default`: all on the host's libvirt file system in the usual layout); a local
 * directory by statfs; a remote host without any of those pools is not measured, and says why.
 */
export function diskFact(uri: string, disk: PreflightDisk, local: boolean, reachable: boolean): HostDisk {
  if (disk.pool !== undefined && reachable) {
    for (const pool of [...new Set([disk.pool, BASE_POOL, "default"])]) {
      const info = virshSync(uri, ["pool-info", "--bytes", pool]);
      const available = /^Available:\s+(\d+)/m.exec(info.stdout)?.[1];
      if (info.ok && available !== undefined) {
        return { path: disk.path, freeBytes: Number(available), source: `libvirt pool ${pool}` };
      }
    }
  }
  if (disk.pool !== undefined && !local) {
    return {
      path: disk.path,
      freeBytes: 0,
      unchecked: reachable
        ? `not checked: no libvirt pool (${disk.pool}, ${BASE_POOL}, default) exists yet on ${uri}, and libvirt reports free space only per pool`
        : `not checked: ${uri} did not answer`,
    };
  }
  return { ...localDiskFact(disk.path), source: "statfs" };
}
