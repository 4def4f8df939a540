/**
 * Two real "node pairs" in Linux network namespaces, standing in for two lab nodes each:
 *
 * - native pair `<tag>-na` ↔ `<tag>-nb`: a veth underlay (MTU 1500, 172.31.1.1/.2), "pod" addresses
 *   10.99.1.1 and 10.99.2.1, and each side's route to the other's pod CIDR via the other's underlay
 *   address — what Cilium's auto-direct-node-routes installs;
 * - tunnel pair `<tag>-va` ↔ `<tag>-vb`: a veth underlay (MTU 1500, 172.31.2.1/.2) carrying a real
 *   VXLAN link named `cilium_vxlan` (UDP 8472, device MTU 1500 like Cilium's), "pod" addresses
 *   10.99.3.1 and 10.99.4.1 on it, and the route to the other's pod CIDR over it with `mtu 1450`,
 *   as Cilium sets pod routes in tunnel mode.
 *
 * Each namespace is both a "node" (its NIC is the veth end) and its own "pod" (the routes above are
 * the ones whose MTU the evidence reads). Names: prefix `clv-` plus a random tag; links are created
 * directly inside the namespaces; addresses exist only there. Servers: `iperf3 -s` ({@link
 * VerifyLab.server}) and `netserver` ({@link VerifyLab.netserver}), both in the foreground;
 * {@link VerifyLab.destroy} kills them by pid and deletes the namespaces (and with them every link).
 * Needs root.
 */
import type { TestFn } from "ava";
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";

import {
  latencyOf,
  netperfClientArgs,
  NETPERF_TESTS,
  NETSERVER_PORT,
  netserverArgs,
  type LatencyOutput,
  type LatencyRunRecord,
} from "../../infra/verify/netperf";
import { prerequisites, run, sh, type RequiredTool } from "./support";

/** One side of a pair. */
export interface Side {
  /** Namespace name, also the "node" name in the evidence. */
  readonly ns: string;
  /** The underlay veth end: the "node NIC". */
  readonly nic: string;
  /** Underlay address: the "node IP". */
  readonly nodeIp: string;
  /** The "pod" address. */
  readonly podIp: string;
  /** The "pod CIDR" of this side. */
  readonly podCidr: string;
}

/** Two sides joined by one datapath. */
export interface Pair {
  readonly kind: "native" | "vxlan";
  readonly a: Side;
  readonly b: Side;
}

/** Both pairs of a lab. */
export interface Pairs {
  readonly native: Pair;
  readonly vxlan: Pair;
}

export class VerifyLab {
  /** `clv-<4 hex>`: short, so interface names (`<tag>na0`) stay within 15 characters. */
  readonly tag = `clv-${randomBytes(2).toString("hex")}`;
  private readonly namespaces: string[] = [];
  private readonly servers: ChildProcess[] = [];

  private side(short: string, octet: number, n: 1 | 2): Side {
    return {
      ns: `${this.tag}-${short}`,
      nic: `${this.tag}${short}0`,
      nodeIp: `172.31.${octet}.${n}`,
      podIp: `10.99.${(octet - 1) * 2 + n}.1`,
      podCidr: `10.99.${(octet - 1) * 2 + n}.0/24`,
    };
  }

  private async ip(ns: string, ...args: string[]): Promise<void> {
    await sh("ip", ["-n", ns, ...args]);
  }

  private async underlay(a: Side, b: Side): Promise<void> {
    for (const s of [a, b]) {
      await sh("ip", ["netns", "add", s.ns]);
      this.namespaces.push(s.ns);
      await this.ip(s.ns, "link", "set", "lo", "up");
    }
    await sh("ip", [
      "link",
      "add",
      a.nic,
      "netns",
      a.ns,
      "mtu",
      "1500",
      "type",
      "veth",
      "peer",
      "name",
      b.nic,
      "netns",
      b.ns,
      "mtu",
      "1500",
    ]);
    for (const s of [a, b]) {
      await this.ip(s.ns, "addr", "add", `${s.nodeIp}/24`, "dev", s.nic);
      await this.ip(s.ns, "link", "set", s.nic, "up");
    }
  }

  /** Two sides `<short>a` / `<short>b` on one underlay (172.31.<octet>.0/24); `wire` then sets up each side towards its peer. */
  private async pair(
    kind: Pair["kind"],
    short: string,
    octet: number,
    wire: (me: Side, peer: Side) => Promise<void>,
  ): Promise<Pair> {
    const a = this.side(`${short}a`, octet, 1);
    const b = this.side(`${short}b`, octet, 2);
    await this.underlay(a, b);
    await wire(a, b);
    await wire(b, a);
    return { kind, a, b };
  }

  /** The native pair: pod CIDRs routed directly via the peer's underlay address. */
  async nativePair(): Promise<Pair> {
    return this.pair("native", "n", 1, async (me, peer) => {
      await this.ip(me.ns, "addr", "add", `${me.podIp}/32`, "dev", me.nic);
      await this.ip(me.ns, "route", "add", peer.podCidr, "via", peer.nodeIp, "dev", me.nic);
    });
  }

  /** The tunnel pair: a real VXLAN device `cilium_vxlan` on each side, pod routes with mtu 1450. */
  async vxlanPair(): Promise<Pair> {
    return this.pair("vxlan", "v", 2, async (me, peer) => {
      // No `dev`: a VXLAN bound to a 1500-byte lower device refuses MTU 1500; Cilium's (flow-based)
      // device has no lower device and keeps the base MTU, leaving the 50 bytes to the pod routes.
      await this.ip(
        me.ns,
        "link",
        "add",
        "cilium_vxlan",
        "type",
        "vxlan",
        "id",
        "2",
        "local",
        me.nodeIp,
        "remote",
        peer.nodeIp,
        "dstport",
        "8472",
      );
      await this.ip(me.ns, "link", "set", "cilium_vxlan", "mtu", "1500", "up");
      await this.ip(me.ns, "addr", "add", `${me.podIp}/32`, "dev", "cilium_vxlan");
      await this.ip(me.ns, "route", "add", peer.podCidr, "dev", "cilium_vxlan", "mtu", "1450", "src", me.podIp);
    });
  }

  /** Builds the native pair, then the tunnel pair, then runs `start` on each far side (`b`): its servers. */
  async pairs(start: (side: Side) => Promise<void>): Promise<Pairs> {
    const native = await this.nativePair();
    const vxlan = await this.vxlanPair();
    for (const side of [native.b, vxlan.b]) {
      await start(side);
    }
    return { native, vxlan };
  }

  /** Starts `iperf3 -s` in `side`'s namespace (killed by pid in {@link destroy}) and waits until it listens. */
  async server(side: Side): Promise<void> {
    await this.listening(side, 5201, ["ip", ["netns", "exec", side.ns, "iperf3", "-s", "-p", "5201"]]);
  }

  /**
   * Starts `netserver` in `side`'s namespace with {@link netserverArgs} (in the foreground, killed by
   * pid in {@link destroy}) and waits until it listens on {@link NETSERVER_PORT}.
   */
  async netserver(side: Side): Promise<void> {
    await this.listening(side, NETSERVER_PORT, ["ip", ["netns", "exec", side.ns, ...netserverArgs()]]);
  }

  /**
   * One netperf client run in `from`'s namespace: `argv` is the full command line
   * ({@link netperfClientArgs}). Never rejects on netperf's own failure (exit 255 with no
   * netserver): the output, stdout then stderr as `kubectl logs` shows both, goes to the parser.
   */
  async netperf(from: Side, argv: readonly string[]): Promise<{ code: number; output: string }> {
    const r = await run("ip", ["netns", "exec", from.ns, ...argv], { timeoutMs: 60_000 });
    return { code: r.code, output: `${r.stdout}${r.stderr}` };
  }

  /** Starts `command` as a server child (killed in {@link destroy}) and waits until `port` listens in `side`. */
  private async listening(side: Side, port: number, [file, args]: [string, string[]]): Promise<void> {
    const child = execFile(file, args, { timeout: 10 * 60_000 });
    this.servers.push(child);
    for (let i = 0; i < 50; i++) {
      const out = await sh("ip", ["netns", "exec", side.ns, "ss", "-Htln", `sport = :${port}`]).catch(() => "");
      if (out.trim() !== "") {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${args.slice(3).join(" ")} in ${side.ns} was not listening on ${port} after 5 s`);
  }

  /** One `iperf3 -J` run from `from` to `to` address, bounded. */
  async client(from: Side, to: string, bind: string, args: readonly string[]): Promise<string> {
    return sh("ip", ["netns", "exec", from.ns, "iperf3", "-c", to, "-B", bind, "-p", "5201", "-J", ...args], 60_000);
  }

  /** Runs the real evidence collector inside `side`'s namespace, its own namespace being the "pod". */
  async evidence(side: Side, script: string): Promise<string> {
    return sh("ip", ["netns", "exec", side.ns, "bash", script, side.nic, "--pod-netns", side.ns], 30_000);
  }

  /** Kills the servers and deletes the namespaces; returns problems instead of throwing. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    for (const s of this.servers) {
      if (s.exitCode === null && s.pid !== undefined) {
        s.kill("SIGTERM");
      }
    }
    for (const ns of this.namespaces.reverse()) {
      await sh("ip", ["netns", "del", ns]).catch((err: unknown) => problems.push(String(err)));
    }
    return problems;
  }
}

/** A test file's lab: its pairs once the `before` hook has built them, or why it could not. */
export interface LabFixture extends Partial<Pairs> {
  readonly lab: VerifyLab;
  /** The missing prerequisites, joined; `undefined` when the pairs were built. */
  readonly setupError: string | undefined;
}

/**
 * Registers `test`'s hooks for one {@link VerifyLab}: before the tests, with root and `tools`
 * present ({@link prerequisites}), both pairs with `start` run on each far side; after them, the lab
 * destroyed (problems logged). A missing prerequisite leaves the pairs unset and says so in `setupError`.
 */
export function labFixture(
  test: TestFn,
  tools: readonly RequiredTool[],
  start: (lab: VerifyLab, side: Side) => Promise<void>,
): LabFixture & Pairs {
  const lab = new VerifyLab();
  const fixture: { lab: VerifyLab; setupError: string | undefined } & Partial<Pairs> = { lab, setupError: undefined };
  test.before(async () => {
    const problems = await prerequisites(true, tools);
    if (problems.length > 0) {
      fixture.setupError = problems.join("; ");
      return;
    }
    Object.assign(fixture, await lab.pairs((side) => start(lab, side)));
  });
  test.after.always(async () => {
    const problems = await lab.destroy();
    if (problems.length > 0) {
      console.error(`cleanup of ${lab.tag}-*: ${problems.join("; ")}`);
    }
  });
  // The pairs are read only by tests, which run after the hook; a test first checks `setupError`.
  return fixture as LabFixture & Pairs;
}

/** `pair`'s ends as a measurement's settings name them: the server on `b` (both its addresses), the client on `a`. */
export function pairEnds(pair: Pair): {
  readonly server: { readonly node: string; readonly hostIp: string; readonly podIp: string };
  readonly client: { readonly node: string };
} {
  return { server: { node: pair.b.ns, hostIp: pair.b.nodeIp, podIp: pair.b.podIp }, client: { node: pair.a.ns } };
}

/**
 * The `latency` output of netperf runs from `pair`'s `a` side to its `b` side, as the lab's
 * verification exports it: netserver with {@link netserverArgs}, clients with {@link netperfClientArgs}.
 */
export function pairLatency(
  pair: Pair,
  runs: readonly LatencyRunRecord[],
  settings: { readonly image: string; readonly seconds: number; readonly runs: number; readonly order: string },
): LatencyOutput {
  const { server, client } = pairEnds(pair);
  return latencyOf({
    runs,
    routingMode: pair.kind,
    // No VMs at all: "kvm" only means "not TCG" to the statistics.
    accelerator: "kvm",
    settings: {
      image: settings.image,
      seconds: settings.seconds,
      runs: settings.runs,
      tests: NETPERF_TESTS,
      clientArgs: Object.fromEntries(
        NETPERF_TESTS.map((t) => [t, netperfClientArgs({ test: t, target: "<target>", seconds: settings.seconds })]),
      ),
      serverArgs: netserverArgs(),
      server,
      client,
      order: settings.order,
    },
  });
}
