/**
 * Shared helpers of the verification tests: running commands, the prerequisites of the real tests
 * (root, iproute2, iperf3, ethtool), a real iperf3 run on loopback, and documents shaped like the
 * collectors' output on a Cilium node (for verdict and mock tests; the namespace tests run the real
 * collector instead).
 */
import type { TestFn } from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { freePort } from "../support/host";

export const REPO = path.join(__dirname, "..", "..");

/** A finished command. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with a timeout; never rejects on a non-zero exit (the test looks at `code`). */
export function run(
  file: string,
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        timeout: opts.timeoutMs ?? 30_000,
        encoding: "utf8",
        maxBuffer: 32 * 1024 * 1024,
        env: opts.env ?? process.env,
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== "number") {
          reject(
            new Error(`\`${file} ${args.join(" ")}\` could not run or timed out: ${err.message}\n${stderr}`, {
              cause: err,
            }),
          );
          return;
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) {
      child.stdin?.end(opts.input);
    }
  });
}

/**
 * What a fake command reads its answers from: returns a maker of fresh directories
 * (`<tmp>/<prefix>XXXXXX`) holding `files` (name → text), each removed after `test`'s tests.
 */
export function fakeDirs(test: TestFn, prefix: string): (files: Record<string, string>) => Promise<string> {
  const dirs: string[] = [];
  test.after.always(async () => {
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  });
  return async (files) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) {
      await fs.writeFile(path.join(dir, name), text);
    }
    return dir;
  };
}

/** Runs a command; rejects with its stderr when it exits non-zero. */
export async function sh(file: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const r = await run(file, args, { timeoutMs });
  if (r.code !== 0) {
    throw new Error(
      `\`${file} ${args.join(" ")}\` exited ${r.code}: ${r.stderr.trim().split("\n").slice(-5).join("\n")}`,
    );
  }
  return r.stdout;
}

/** A tool a real test runs: its binary, a flag that makes it exit 0, and its Debian package. */
export type RequiredTool = readonly [bin: string, flag: string, pkg: string];

/** The tools of the verification's real tests (namespaces, iperf3, the collectors). */
export const VERIFY_TOOLS: readonly RequiredTool[] = [
  ["ip", "-V", "iproute2"],
  ["iperf3", "--version", "iperf3"],
  ["ethtool", "--version", "ethtool"],
  ["bash", "--version", "bash"],
];

/** {@link VERIFY_TOOLS} and netperf (Debian's non-free component), for the real netperf runs. */
export const NETPERF_TOOLS: readonly RequiredTool[] = [
  ...VERIFY_TOOLS,
  ["netperf", "-V", "netperf (Debian non-free: bash .ci/host-setup.sh enables it)"],
  ["netserver", "-V", "netperf (Debian non-free: bash .ci/host-setup.sh enables it)"],
];

/**
 * The tools of the tests that run iperf3 on loopback and the scripts, as an ordinary user (no
 * namespaces, no collector): ethtool and ip stay out, being in /usr/sbin, which such a user's PATH
 * may lack.
 */
export const LOOPBACK_TOOLS: readonly RequiredTool[] = VERIFY_TOOLS.filter(
  ([bin]) => bin === "iperf3" || bin === "bash",
);

/**
 * What the real tests need (without root: the loopback tools); each problem says how to fix it, so
 * the test FAILS with it.
 */
export async function prerequisites(
  needRoot: boolean,
  tools: readonly RequiredTool[] = needRoot ? VERIFY_TOOLS : LOOPBACK_TOOLS,
): Promise<string[]> {
  const problems: string[] = [];
  if (needRoot && typeof process.getuid === "function" && process.getuid() !== 0) {
    problems.push("network namespaces need root: run the tests as root (CI does)");
  }
  for (const [bin, flag, pkg] of tools) {
    const ok = await run(bin, [flag], { timeoutMs: 10_000 }).then(
      (r) => r.code === 0,
      () => false,
    );
    if (!ok) {
      problems.push(`${bin} is missing: apt-get install ${pkg} (listed in .ci/apt-packages.txt)`);
    }
  }
  return problems;
}

/**
 * One real `iperf3 -J` client run against a one-shot server on loopback (`-s -1`), no root needed.
 * `port` lets a caller aim at a closed port to get iperf3's own error document.
 */
export async function loopbackIperf3(seconds: number, opts: { noServer?: boolean } = {}): Promise<string> {
  const port = await freePort();
  if (opts.noServer === true) {
    return (
      await run(
        "iperf3",
        ["-c", "127.0.0.1", "-p", String(port), "-J", "-t", String(seconds), "--connect-timeout", "2000"],
        { timeoutMs: 20_000 },
      )
    ).stdout;
  }
  const server = execFile("iperf3", ["-s", "-1", "-p", String(port), "-B", "127.0.0.1"], {
    timeout: (seconds + 20) * 1000,
  });
  try {
    for (let i = 0; i < 50; i++) {
      const r = await run("iperf3", ["-c", "127.0.0.1", "-p", String(port), "-J", "-t", String(seconds)], {
        timeoutMs: (seconds + 15) * 1000,
      });
      if (!r.stdout.includes("Connection refused")) {
        return r.stdout;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error("iperf3 -s on loopback never accepted a connection within 5 s");
  } finally {
    if (server.exitCode === null && server.pid !== undefined) {
      server.kill("SIGTERM");
    }
  }
}

// ─── documents shaped like the collectors' output on a Cilium node ───────────────────────────

/** A link as `ip -j -d link show` prints it (the fields the parser reads, plus a few real ones). */
export function link(ifname: string, mtu: number, kind?: string, port?: number): Record<string, unknown> {
  return {
    ifindex: 1,
    ifname,
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    mtu,
    operstate: "UP",
    ...(kind !== undefined ? { linkinfo: { info_kind: kind, info_data: port !== undefined ? { port } : {} } } : {}),
  };
}

/** A route as `ip -j -d -4 route show` prints it. */
export function route(
  dst: string,
  dev: string,
  opts: { via?: string; mtu?: number; protocol?: string } = {},
): Record<string, unknown> {
  return {
    type: "unicast",
    dst,
    ...(opts.via !== undefined ? { gateway: opts.via } : {}),
    dev,
    protocol: opts.protocol ?? "boot",
    scope: opts.via !== undefined ? "global" : "link",
    flags: [],
    ...(opts.mtu !== undefined ? { metrics: [{ mtu: opts.mtu }] } : {}),
  };
}

/** Addresses as `ip -j -4 addr show` prints them. */
export function addrs(ifname: string, ...cidrs: string[]): Record<string, unknown> {
  return {
    ifname,
    addr_info: cidrs.map((c) => {
      const [local, len] = c.split("/");
      return { family: "inet", local, prefixlen: Number(len) };
    }),
  };
}

/** A Cilium node of a three-node lab. */
export interface LabNode {
  readonly name: string;
  readonly ip: string;
  readonly podCidr: string;
}

/** The article-like lab: node-1..3 on 192.168.150.0/24, pod CIDRs 10.0.0.0/24.. (cluster-pool). */
export const LAB: readonly LabNode[] = [
  { name: "node-1", ip: "192.168.150.11", podCidr: "10.0.0.0/24" },
  { name: "node-2", ip: "192.168.150.12", podCidr: "10.0.1.0/24" },
  { name: "node-3", ip: "192.168.150.13", podCidr: "10.0.2.0/24" },
];

/**
 * What scripts/node/collect-evidence.sh prints on a Cilium node in `mode`: eth0 (virtio_net, 1500),
 * cilium_host/cilium_net, the tunnel device in tunnel modes, routes to the other nodes' pod CIDRs
 * (via cilium_host with mtu 1450 in tunnel mode, direct via the node IP in native mode), and one
 * pod per entry of `pods` with Cilium's pod routes (`default via <router> dev eth0 mtu <route MTU>`).
 */
export function ciliumNodeDoc(
  node: LabNode,
  mode: "vxlan" | "geneve" | "native",
  opts: { pods?: { netns: string; ip: string; routeMtu?: number | null }[]; nodes?: readonly LabNode[] } = {},
): string {
  const nodes = opts.nodes ?? LAB;
  const router = node.podCidr.replace(/\.0\/24$/, ".193");
  const tunnel = mode !== "native";
  const links = [
    link("lo", 65536),
    link("eth0", 1500),
    link("cilium_net", 1500, "veth"),
    link("cilium_host", 1500, "veth"),
    ...(tunnel
      ? [link(mode === "vxlan" ? "cilium_vxlan" : "cilium_geneve", 1500, mode, mode === "vxlan" ? 8472 : 6081)]
      : []),
  ];
  const routes = [
    route("default", "eth0", { via: "192.168.150.1", protocol: "dhcp" }),
    route("192.168.150.0/24", "eth0", { protocol: "kernel" }),
    route(node.podCidr, "cilium_host", { via: router, ...(tunnel ? { mtu: 1450 } : {}) }),
    ...nodes
      .filter((n) => n.name !== node.name)
      .map((n) =>
        tunnel ? route(n.podCidr, "cilium_host", { via: router, mtu: 1450 }) : route(n.podCidr, "eth0", { via: n.ip }),
      ),
  ];
  const defaultMtu = tunnel ? 1450 : null;
  const pods = (opts.pods ?? [{ netns: `cni-${node.name}-0000`, ip: node.podCidr.replace(/\.0\/24$/, ".20") }]).map(
    (p) => {
      const mtu = p.routeMtu === undefined ? defaultMtu : p.routeMtu;
      return {
        netns: p.netns,
        links: [link("lo", 65536), link("eth0", 1500, "veth")],
        routes: [
          route("default", "eth0", { via: router, ...(mtu !== null ? { mtu } : {}) }),
          route(`${router}/32`, "eth0"),
        ],
        addrs: [addrs("lo", "127.0.0.1/8"), addrs("eth0", `${p.ip}/32`)],
      };
    },
  );
  const off = (on: boolean, fixed = false) => ({ on, fixed });
  return JSON.stringify({
    schema: 1,
    collector: "collect-evidence.sh",
    hostname: node.name,
    kernel: "6.2.0-39-generic",
    nic: "eth0",
    nodeIp: node.ip,
    driver: "virtio_net",
    ethtool: {
      "generic-receive-offload": off(true),
      "generic-segmentation-offload": off(true),
      "tcp-segmentation-offload": off(true),
      "tx-udp_tnl-segmentation": off(false, true),
      "rx-udp_tunnel-port-offload": off(false, true),
    },
    ethtoolError: null,
    links,
    routes,
    addrs: [addrs("lo", "127.0.0.1/8"), addrs("eth0", `${node.ip}/24`), addrs("cilium_host", `${router}/32`)],
    podNetnsGlob: "cni-*",
    pods,
    errors: [],
  });
}

/** `cilium status` of a 1.13 agent (no `Routing:` line before 1.16). */
export function agentStatus113(node: LabNode, version = "1.13.4"): string {
  return [
    "KVStore:                 Ok   Disabled",
    "Kubernetes:              Ok   1.26 (v1.26.6+k3s1) [linux/amd64]",
    "KubeProxyReplacement:    Disabled",
    "Host firewall:           Disabled",
    "CNI Chaining:            none",
    `Cilium:                  Ok   ${version} (v${version}-4061cdfc)`,
    "NodeMonitor:             Listening for events on 2 CPUs with 64x4096 of shared memory",
    "Cilium health daemon:    Ok",
    `IPAM:                    IPv4: 4/254 allocated from ${node.podCidr},`,
    "IPv6 BIG TCP:            Disabled",
    "BandwidthManager:        Disabled",
    "Host Routing:            Legacy",
    "Masquerading:            IPTables [IPv4: Enabled, IPv6: Disabled]",
    "Controller Status:       23/23 healthy",
    "Cluster health:          3/3 reachable   (2023-07-20T08:12:45Z)",
  ].join("\n");
}

/** `cilium-dbg status` of a 1.16+ agent, with its `Routing:` line. */
export function agentStatus116(node: LabNode, mode: "vxlan" | "geneve" | "native", version = "1.16.5"): string {
  const routing = mode === "native" ? "Network: Native   Host: Legacy" : `Network: Tunnel [${mode}]   Host: Legacy`;
  return [
    "KVStore:                 Ok   Disabled",
    "Kubernetes:              Ok   1.30 (v1.30.6+k3s1) [linux/amd64]",
    "KubeProxyReplacement:    False",
    `Cilium:                  Ok   ${version} (v${version}-82999990)`,
    `IPAM:                    IPv4: 5/254 allocated from ${node.podCidr},`,
    "IPv4 BIG TCP:            Disabled",
    "IPv6 BIG TCP:            Disabled",
    "BandwidthManager:        Disabled",
    `Routing:                 ${routing}`,
    "Attach Mode:             Legacy TC",
    "Device Mode:             veth",
    "Masquerading:            IPTables [IPv4: Enabled, IPv6: Disabled]",
  ].join("\n");
}

/**
 * What scripts/node/collect-cilium-state.sh prints, for `configMap` entries, nodes and agent outputs;
 * `hubbleRelay` as the collector reports the Deployment (default: rolled out, 1/1 ready, as with the
 * lab's default `hubble: true`; `null` leaves the entry out).
 */
export function clusterStateDoc(
  configMap: Record<string, string>,
  nodes: readonly LabNode[],
  agentOutput: (n: LabNode) => string,
  cli = "cilium",
  hubbleRelay: Record<string, unknown> | null = { exists: true, desired: 1, ready: 1, rolloutError: null },
): string {
  const line = (n: LabNode) => ({ name: n.name, podCidrs: [n.podCidr], internalIps: [n.ip] });
  return JSON.stringify({
    schema: 1,
    collector: "collect-cilium-state.sh",
    configMap: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cilium-config", namespace: "kube-system" },
      data: configMap,
    },
    ciliumNodes: nodes.map(line),
    nodes: nodes.map((n) => ({ name: n.name, podCidrs: [], internalIps: [n.ip] })),
    agents: nodes.map((n, i) => ({
      pod: `cilium-${"abcde"[i] ?? "x"}${i}`,
      node: n.name,
      command: `${cli} status`,
      exitCode: 0,
      output: agentOutput(n),
    })),
    ...(hubbleRelay === null ? {} : { hubbleRelay }),
  });
}
