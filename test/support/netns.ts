/**
 * Real Linux network namespaces for tests that need real iperf3 numbers without a cluster: veth
 * pairs, VXLAN and Geneve links over them, iperf3 servers and `iperf3 -J` clients. Needs root,
 * iproute2 and iperf3 (Debian: `apt-get install iproute2 iperf3`).
 *
 * Every name starts with the caller's prefix plus a random tag (e.g. `clc-3fa2-h1`), veth ends are
 * created directly inside their namespaces (nothing appears in the host's namespace), addresses are
 * only ever assigned inside those namespaces, every command has a timeout, and {@link NetnsLab.destroy}
 * (call it from `test.after.always`) kills the iperf3 servers it started, by pid, and deletes the
 * namespaces, which removes their links.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A command that failed: what ran, its exit code and stderr tail. */
export class CommandFailed extends Error {
  override name = "CommandFailed";
}

/** Runs a command with a timeout; resolves stdout, rejects with {@link CommandFailed}. */
export function sh(file: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: timeoutMs, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err.killed ? "timeout" : "?");
        reject(new CommandFailed(`\`${file} ${args.join(" ")}\` failed (${String(code)}): ${stderr.trim().split("\n").slice(-5).join("\n")}`, { cause: err }));
        return;
      }
      resolve(stdout);
    });
  });
}

/**
 * What the tests need on the machine; returns the list of problems (empty when all is there), each
 * with the fix, so a test can FAIL with it instead of skipping.
 */
export async function netnsPrerequisites(): Promise<string[]> {
  const problems: string[] = [];
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    problems.push("network namespaces need root: run the tests as root (CI does)");
  }
  for (const [bin, flag, pkg] of [
    ["ip", "-V", "iproute2"],
    ["iperf3", "--version", "iperf3"],
  ] as const) {
    try {
      await sh(bin, [flag], 10_000);
    } catch {
      problems.push(`${bin} is missing: apt-get install ${pkg} (it is listed in .ci/apt-packages.txt)`);
    }
  }
  return problems;
}

/** A set of namespaces with a common random tag, and everything started in them. */
export class NetnsLab {
  /** e.g. `clc-3fa2`. */
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly pidFiles: string[] = [];
  private tmp: string | undefined;

  /** @param prefix 2–4 characters ending in `-`, e.g. `clc-`, so names stay ≤ 15 characters. */
  constructor(prefix: string) {
    this.tag = `${prefix}${randomBytes(2).toString("hex")}`;
  }

  /** The full name of a namespace of this lab: `<tag>-<short>`. */
  ns(short: string): string {
    return `${this.tag}-${short}`;
  }

  /** Creates namespace `<tag>-<short>` with its loopback up. */
  async addNamespace(short: string): Promise<string> {
    const name = this.ns(short);
    await sh("ip", ["netns", "add", name]);
    this.namespaces.push(name);
    await this.exec(short, ["ip", "link", "set", "lo", "up"]);
    return name;
  }

  /** Runs a command inside namespace `<tag>-<short>`. */
  exec(short: string, argv: readonly string[], timeoutMs = 30_000): Promise<string> {
    return sh("ip", ["netns", "exec", this.ns(short), ...argv], timeoutMs);
  }

  /**
   * A veth pair with one end in each namespace (created there directly), addresses `aCidr`/`bCidr`
   * (e.g. `198.18.10.1/24`), both up.
   */
  async veth(a: { ns: string; ifname: string; cidr: string }, b: { ns: string; ifname: string; cidr: string }): Promise<void> {
    await sh("ip", ["link", "add", a.ifname, "netns", this.ns(a.ns), "type", "veth", "peer", "name", b.ifname, "netns", this.ns(b.ns)]);
    for (const end of [a, b]) {
      await this.exec(end.ns, ["ip", "addr", "add", end.cidr, "dev", end.ifname]);
      await this.exec(end.ns, ["ip", "link", "set", end.ifname, "up"]);
    }
  }

  /**
   * A tunnel link in namespace `ns` over `underlay` (a device there): `vxlan` (VNI `id`, UDP 4789,
   * `local`/`remote` underlay addresses) or `geneve` (VNI `id`, UDP 6081), with address `cidr` and
   * the overlay subnet routed over it with `mtu` — the way Cilium routes pod traffic into its
   * tunnel device with a lower route MTU.
   */
  async tunnel(input: {
    ns: string;
    kind: "vxlan" | "geneve";
    ifname: string;
    id: number;
    underlay: string;
    local: string;
    remote: string;
    cidr: string;
    subnet: string;
    mtu: number;
  }): Promise<void> {
    const args =
      input.kind === "vxlan"
        ? ["ip", "link", "add", input.ifname, "type", "vxlan", "id", String(input.id), "local", input.local, "remote", input.remote, "dstport", "4789", "dev", input.underlay]
        : ["ip", "link", "add", input.ifname, "type", "geneve", "id", String(input.id), "remote", input.remote, "dstport", "6081"];
    await this.exec(input.ns, args);
    await this.exec(input.ns, ["ip", "addr", "add", input.cidr, "dev", input.ifname, "noprefixroute"]);
    await this.exec(input.ns, ["ip", "link", "set", input.ifname, "up"]);
    await this.exec(input.ns, ["ip", "route", "add", input.subnet, "dev", input.ifname, "mtu", String(input.mtu)]);
  }

  /** Starts a daemonised `iperf3 -s` in namespace `ns`; its pid is killed by {@link destroy}. */
  async iperf3Server(short: string): Promise<void> {
    this.tmp ??= await fs.mkdtemp(path.join(os.tmpdir(), `${this.tag}-`));
    const pidFile = path.join(this.tmp, `iperf3-${short}.pid`);
    await this.exec(short, ["iperf3", "-s", "-D", "--pidfile", pidFile]);
    this.pidFiles.push(pidFile);
    // The daemon writes its pid file once it listens.
    for (let i = 0; i < 50; i++) {
      const pid = await fs.readFile(pidFile, "utf8").catch(() => "");
      if (pid.trim() !== "") {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`iperf3 -s in ${this.ns(short)} wrote no pid file within 5 s`);
  }

  /** One `iperf3 -c <address> -J -t <seconds>` run from namespace `ns`; returns iperf3's JSON text. */
  iperf3Client(short: string, address: string, seconds: number, extra: readonly string[] = []): Promise<string> {
    return this.exec(short, ["iperf3", "-c", address, "-J", "-t", String(seconds), ...extra], (seconds + 20) * 1000);
  }

  /** Kills the iperf3 servers (by pid) and deletes the namespaces with their links. Never throws. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    for (const pidFile of this.pidFiles) {
      const pid = Number((await fs.readFile(pidFile, "utf8").catch(() => "")).trim());
      if (Number.isInteger(pid) && pid > 1) {
        try {
          process.kill(pid, "SIGTERM");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ESRCH") {
            problems.push(`kill ${pid}: ${String(err)}`);
          }
        }
      }
    }
    for (const name of this.namespaces.reverse()) {
      await sh("ip", ["netns", "del", name]).catch((err: unknown) => problems.push(String(err)));
    }
    if (this.tmp !== undefined) {
      await fs.rm(this.tmp, { recursive: true, force: true });
    }
    return problems;
  }
}
