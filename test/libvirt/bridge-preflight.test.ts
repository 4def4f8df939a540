// Bridge mode's preflight verdicts on injected host facts, with exact expected values: the host
// bridge (missing, not a bridge, down, inactive on a remote host), the best-effort address probe,
// br_netfilter's Docker trap (judged on Docker's real ruleset), one request per libvirt host, and
// what a remote host's rows say they could not check.
import test from "ava";

import { evaluateBridgedForwarding } from "../../infra/libvirt/forwarding";
import {
  LibvirtPreflightError,
  evaluatePreflight,
  labPreflightRequests,
  preflightLibvirt,
  type HostFacts,
  type PreflightRequest,
} from "../../infra/libvirt/preflight";
import { DOCKER, LIBVIRT9 } from "./forwarding-rulesets";
import { IMAGE_CACHE_DIR, POOL_DIR } from "../support/preflight-facts";

const REMOTE = "qemu+ssh://lab@192.0.2.50/system";
const CONFIG = {
  libvirtUri: "qemu:///system",
  accelerator: "qemu" as const,
  networkCidr: "192.0.2.0/24",
  nodeCpus: 1,
  nodeMemoryMiB: 1024,
  networkMode: "bridge" as const,
  bridge: "br0",
};
const PLAN = {
  networkName: "cilium-lab-br",
  bridgeName: "cl-br-1a2b",
  nodes: [1, 2, 3].map((n) => ({ domainName: `cilium-lab-br-node-${n}`, ip: `192.0.2.${10 + n}` })),
};
const DIRS = { poolDir: POOL_DIR, imageCacheDir: IMAGE_CACHE_DIR };
const [LOCAL] = labPreflightRequests(CONFIG, PLAN, "br", DIRS) as [PreflightRequest];
const TARGET = { bridgeName: "br0", networkCidr: "192.0.2.0/24" };
/** {@link DOCKER} with the check's own fix applied. */
const FIXED = DOCKER.replace(
  "-A DOCKER-USER -j RETURN",
  "-A DOCKER-USER -i br0 -o br0 -j ACCEPT\n-A DOCKER-USER -j RETURN",
);

function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    missingTools: [],
    libvirt: { reachable: true, networks: [], domains: [] },
    routes: [{ dst: "192.0.2.0/24", dev: "br0", table: "main" }],
    // The plan's own bridge name exists as a link: in bridge mode no network or bridge of ours is made.
    links: ["lo", "br0", "cl-br-1a2b"],
    kvm: undefined,
    memAvailableMiB: 20_000,
    cpus: 8,
    disks: [{ path: POOL_DIR, freeBytes: 100 * 1024 ** 3, source: "libvirt pool cilium-lab-br" }],
    hostBridge: {
      libvirt: { found: true, type: "bridge", operUp: true },
      local: { exists: true, kind: "bridge", adminUp: true },
      nfCallIptables: "not loaded",
    },
    addressProbe: { probed: ["192.0.2.11", "192.0.2.12", "192.0.2.13"], answered: [] },
    ...overrides,
  };
}

const row = (req: PreflightRequest, f: HostFacts, check: string): unknown =>
  evaluatePreflight(req, f).rows.find((r) => r.check === check);

test("bridge mode: one request per host with its nodes' static addresses; nodeHosts split the nodes", (t) => {
  t.deepEqual(LOCAL.bridge, {
    name: "br0",
    addresses: PLAN.nodes.map((n) => ({ domainName: n.domainName, address: n.ip })),
  });
  const hosts = ["qemu:///system", REMOTE, "qemu:///system"];
  const split = labPreflightRequests(
    CONFIG,
    { ...PLAN, nodes: PLAN.nodes.map((n, i) => ({ ...n, hostUri: hosts[i] ?? "" })) },
    "br",
    DIRS,
  );
  t.deepEqual(
    split.map((r) => [
      r.uri,
      r.nodes.map((n) => n.domainName),
      r.bridge?.addresses.map((a) => a.address),
      r.disks.length,
    ]),
    [
      ["qemu:///system", ["cilium-lab-br-node-1", "cilium-lab-br-node-3"], ["192.0.2.11", "192.0.2.13"], 2],
      [REMOTE, ["cilium-lab-br-node-2"], ["192.0.2.12"], 1],
    ],
  );
  t.is(labPreflightRequests({ ...CONFIG, networkMode: "nat" }, PLAN, "br", DIRS)[0]?.bridge, undefined);
  // With several hosts each problem names its host.
  const error = t.throws(() => preflightLibvirt(split, facts({ cpus: 0, memAvailableMiB: 100 })), {
    instanceOf: LibvirtPreflightError,
  });
  t.deepEqual(
    error?.problems.map((p) => p.slice(0, p.indexOf(" need"))),
    ["on qemu:///system: 2 node(s)", `on ${REMOTE}: 1 node(s)`],
  );
});

test("a healthy bridge host passes; subnet and the NAT names are not judged in bridge mode", (t) => {
  const { problems, warnings, rows } = evaluatePreflight(LOCAL, facts());
  t.deepEqual({ problems, warnings }, { problems: [], warnings: [] });
  t.deepEqual(
    rows.filter((r) => ["subnet", "bridge", "addresses", "firewall"].includes(r.check)),
    [
      {
        check: "subnet",
        status: "unchecked",
        detail: "bridge mode: 192.0.2.0/24 is the bridge's LAN; no libvirt network is created",
        fix: "",
      },
      {
        check: "bridge",
        status: "ok",
        detail: 'bridge "br0" exists and is up (`ip link` (local) and libvirt\'s interface driver)',
        fix: "",
      },
      {
        check: "addresses",
        status: "ok",
        detail:
          "nothing else answers on 192.0.2.11, 192.0.2.12, 192.0.2.13 (best-effort probe from this host: TCP port 22 and ARP; the guests' duplicate-address detection is the real check)",
        fix: "",
      },
      {
        check: "firewall",
        status: "ok",
        detail: "local check: br_netfilter is not loaded, so bridged frames skip iptables",
        fix: "",
      },
    ],
  );
});

test("a missing bridge, a non-bridge interface and a bridge that is down each fail with their fix", (t) => {
  const missing = evaluatePreflight(
    LOCAL,
    facts({
      hostBridge: {
        libvirt: { found: false, error: "Interface not found: couldn't find interface named 'br0'" },
        local: { exists: false, adminUp: false },
        nfCallIptables: "not loaded",
      },
    }),
  );
  t.deepEqual(missing.problems, [
    "bridge \"br0\" (cilium-lab:bridge) does not exist on qemu:///system (libvirt: Interface not found: couldn't find interface named 'br0'). Fix: create it on that host (`ip link add br0 type bridge && ip link set br0 up`, then enslave the LAN NIC), or `pulumi config set cilium-lab:bridge <existing bridge>` (`ip -br link show type bridge` on that host lists the bridges).",
  ]);
  const ethernet = evaluatePreflight(
    LOCAL,
    facts({
      hostBridge: {
        libvirt: { found: true, type: "ethernet", operUp: true },
        local: { exists: true, kind: "veth", adminUp: true },
      },
    }),
  );
  t.deepEqual(ethernet.problems, [
    'interface "br0" on qemu:///system is a veth, not a bridge: the nodes cannot attach to it. Fix: `pulumi config set cilium-lab:bridge <bridge>` (`ip -br link show type bridge` on that host lists the bridges).',
  ]);
  const down = evaluatePreflight(
    LOCAL,
    facts({
      hostBridge: {
        libvirt: { found: true, type: "bridge", operUp: false },
        local: { exists: true, kind: "bridge", adminUp: false },
      },
    }),
  );
  t.deepEqual(down.problems, ['bridge "br0" exists but is down. Fix: `ip link set br0 up`.']);
});

test("a taken address fails naming the address and what answered; our own running node does not", (t) => {
  const probe = {
    probed: ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
    answered: [
      { address: "192.0.2.11", how: "refused a TCP connection on port 22 (it is up)", mac: "02:00:00:00:00:11" },
      { address: "192.0.2.13", how: "answered ARP", mac: "52:54:00:aa:bb:03" },
    ],
  };
  const own = { project: "cilium-lab", stack: "br" };
  const { problems, rows } = evaluatePreflight(
    LOCAL,
    facts({
      addressProbe: probe,
      libvirt: {
        reachable: true,
        networks: [],
        domains: [{ name: "cilium-lab-br-node-3", owner: own, running: true }],
      },
    }),
  );
  t.deepEqual(problems, [
    "address 192.0.2.11 of cilium-lab-br-node-1 is taken: something refused a TCP connection on port 22 (it is up) from MAC 02:00:00:00:00:11 (best-effort probe from this host). Fix: free that address on the LAN, or move the nodes to a networkCidr whose addresses from base + 11 up are unused (`pulumi config set cilium-lab:networkCidr <cidr>`).",
  ]);
  t.is(rows.find((r) => r.check === "addresses")?.status, "fail");
  t.deepEqual(row(LOCAL, facts({ addressProbe: { unavailable: "the probe did not run (x)" } }), "addresses"), {
    check: "addresses",
    status: "unchecked",
    detail: "not probed: the probe did not run (x)",
    fix: "",
  });
});

test("br_netfilter with Docker's FORWARD DROP is the Docker trap: it fails with the sysctl and DOCKER-USER fixes", (t) => {
  const docker = evaluateBridgedForwarding(TARGET, { iptablesNft: DOCKER, iptablesBackend: "nft", bridgeUp: true });
  t.deepEqual(docker, {
    status: "fail",
    detail:
      "frames bridged on br0 (node to node, node to gateway) are dropped in iptables-nft table filter (policy DROP of chain FORWARD)",
    fix: "`iptables -I DOCKER-USER -i br0 -o br0 -j ACCEPT` (Docker keeps DOCKER-USER first in FORWARD; re-add it after a reboot)",
  });
  const { problems } = evaluatePreflight(
    LOCAL,
    facts({ hostBridge: { ...facts().hostBridge!, nfCallIptables: "1", bridged: docker } }),
  );
  t.deepEqual(problems, [
    "br_netfilter is loaded with net.bridge.bridge-nf-call-iptables=1, so the host's FORWARD hook sees the nodes' bridged traffic, and frames bridged on br0 (node to node, node to gateway) are dropped in iptables-nft table filter (policy DROP of chain FORWARD) (the Docker trap). Fix: `sysctl -w net.bridge.bridge-nf-call-iptables=0` (libvirt's wiki recommends it for bridged guests; persist it in /etc/sysctl.d), or `iptables -I DOCKER-USER -i br0 -o br0 -j ACCEPT` (Docker keeps DOCKER-USER first in FORWARD; re-add it after a reboot).",
  ]);
  t.is(evaluateBridgedForwarding(TARGET, { iptablesNft: FIXED, iptablesBackend: "nft", bridgeUp: true }).status, "ok");
  t.is(
    evaluateBridgedForwarding(TARGET, { iptablesNft: LIBVIRT9, iptablesBackend: "nft", bridgeUp: true }).status,
    "ok",
  );
  t.deepEqual(
    evaluateBridgedForwarding(TARGET, {
      bridgeUp: true,
      permissionDenied: "iptables-nft-save: Permission denied (you must be root)",
    }),
    {
      status: "unchecked",
      detail:
        "the FORWARD rules for frames bridged on br0 not checked (needs root): iptables-nft-save: Permission denied (you must be root)",
      fix: "run the preflight as root, or look yourself: `sudo iptables-save | grep -E '^:FORWARD|DOCKER-USER'`; or turn the trap off: `sysctl -w net.bridge.bridge-nf-call-iptables=0`",
    },
  );
});

test("a remote host: bridge seen through libvirt only, inactive is a warning, local-only facts say they were not checked", (t) => {
  const [remote] = labPreflightRequests({ ...CONFIG, libvirtUri: REMOTE }, PLAN, "br", DIRS) as [PreflightRequest];
  const f = facts({
    routes: [],
    links: [],
    memSource: `free + buffers + cached of \`virsh -c ${REMOTE} nodememstats\``,
    disks: [
      {
        path: POOL_DIR,
        freeBytes: 0,
        unchecked: `not checked: no libvirt pool (cilium-lab-br, cilium-lab-base, default) exists yet on ${REMOTE}, and libvirt reports free space only per pool`,
      },
      { path: IMAGE_CACHE_DIR, freeBytes: 100 * 1024 ** 3, source: "statfs" },
    ],
    hostBridge: { libvirt: { found: true, type: "bridge", operUp: false } },
  });
  const { problems, warnings, rows } = evaluatePreflight(remote, f);
  t.deepEqual(problems, []);
  t.deepEqual(warnings, [
    `libvirt reports bridge "br0" on ${REMOTE} inactive (its operstate is not up: set down, or no port has carrier yet, as on a bridge without an uplink); if it is down, run \`ip link set br0 up\` on that host.`,
  ]);
  const by = Object.fromEntries(rows.map((r) => [r.check, [r.status, r.detail]]));
  t.deepEqual(by.firewall, [
    "unchecked",
    `br_netfilter and the FORWARD policy are facts of the libvirt host ${REMOTE}: not checked from here (check them there: \`sysctl net.bridge.bridge-nf-call-iptables\`, \`iptables -S FORWARD\`)`,
  ]);
  t.is(by.disk?.[0], "unchecked");
  t.regex(
    by.memory?.[1] ?? "",
    /available \(free \+ buffers \+ cached of `virsh -c qemu\+ssh:\/\/lab@192\.0\.2\.50\/system nodememstats`\)$/,
  );
  t.deepEqual(
    row(
      remote,
      facts({
        hostBridge: {
          libvirt: {
            unsupported: "this function is not supported by the connection driver: virConnectListAllInterfaces",
          },
        },
      }),
      "bridge",
    ),
    {
      check: "bridge",
      status: "unchecked",
      detail: `libvirt's interface driver on ${REMOTE} cannot see host interfaces (this function is not supported by the connection driver: virConnectListAllInterfaces): bridge "br0" not checked`,
      fix: "",
    },
  );
});
