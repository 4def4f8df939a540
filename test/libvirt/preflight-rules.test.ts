// Subnet overlap and the preflight's verdicts on injected host facts, with exact expected values.
import test from "ava";

import { parseHostRoutes, subnetConflicts, suggestFreeCidr, type HostNetwork } from "../../infra/libvirt/hostnet";
import {
  LibvirtPreflightError,
  evaluatePreflight,
  labPreflightRequest,
  preflightLibvirt,
  type HostFacts,
  type PreflightRequest,
} from "../../infra/libvirt/preflight";
import { IMAGE_CACHE_DIR, POOL_DIR, labDisks } from "../support/preflight-facts";

// ---------------------------------------------------------------------------------------------
// Subnets

test("routes: unicast only, default and local-table entries skipped, host routes as /32", (t) => {
  const json = JSON.stringify([
    { dst: "default", gateway: "192.0.2.1", dev: "eth0" },
    { dst: "192.0.2.0/24", dev: "eth0", protocol: "kernel" },
    { dst: "10.9.9.9", dev: "wg0" },
    { type: "local", dst: "127.0.0.0/8", dev: "lo", table: "local" },
    { type: "broadcast", dst: "192.0.2.255", dev: "eth0", table: "local" },
    { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
  ]);
  t.deepEqual(parseHostRoutes(json), [
    { dst: "192.0.2.0/24", dev: "eth0", table: "main" },
    { dst: "10.9.9.9/32", dev: "wg0", table: "main" },
    { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
  ]);
});

test("overlaps: partial and exact, with routes on our own bridge and our own network exempt", (t) => {
  const routes = parseHostRoutes(
    JSON.stringify([
      { dst: "10.98.0.0/16", dev: "eth1" },
      { dst: "192.168.150.0/24", dev: "cl-vxlan-1a2b" },
      { dst: "172.16.0.0/12", dev: "tun0", table: "100" },
    ]),
  );
  const nets: HostNetwork[] = [
    {
      name: "cilium-lab-vxlan",
      owner: { project: "cilium-lab", stack: "vxlan" },
      bridge: "cl-vxlan-1a2b",
      cidrs: ["192.168.150.0/24"],
    },
    { name: "default", owner: undefined, bridge: "virbr0", cidrs: ["192.168.122.0/24"] },
  ];
  const own = { networkName: "cilium-lab-vxlan", bridgeName: "cl-vxlan-1a2b", stack: "vxlan" };
  t.deepEqual(
    subnetConflicts("192.168.150.0/24", routes, nets, own),
    [],
    "our own network and its bridge route are not conflicts",
  );
  t.deepEqual(subnetConflicts("10.98.5.0/24", routes, nets, own), ["host route 10.98.0.0/16 dev eth1"]);
  t.deepEqual(subnetConflicts("172.20.0.0/16", routes, nets, own), ["host route 172.16.0.0/12 dev tun0 table 100"]);
  t.deepEqual(subnetConflicts("192.168.122.128/25", routes, nets, own), [
    'libvirt network "default" (192.168.122.0/24)',
  ]);
  t.deepEqual(
    subnetConflicts("192.168.150.0/24", routes, nets, {
      ...own,
      networkName: "cilium-lab-native",
      bridgeName: "cl-native-9f",
    }),
    ["host route 192.168.150.0/24 dev cl-vxlan-1a2b", 'libvirt network "cilium-lab-vxlan" (192.168.150.0/24)'],
  );
  t.is(suggestFreeCidr(routes, nets), "192.168.100.0/24");
  t.is(
    suggestFreeCidr(
      [],
      Array.from({ length: 155 }, (_, i) => ({
        name: `n${i}`,
        owner: undefined,
        bridge: undefined,
        cidrs: [`192.168.${100 + i}.0/24`],
      })),
    ),
    undefined,
  );
});

// ---------------------------------------------------------------------------------------------
// Preflight

const REQUEST: PreflightRequest = labPreflightRequest(
  {
    libvirtUri: "qemu:///system",
    accelerator: "kvm",
    networkCidr: "192.168.150.0/24",
    nodeCpus: 2,
    nodeMemoryMiB: 4096,
  },
  {
    networkName: "cilium-lab-vxlan",
    bridgeName: "cl-vxlan-1a2b",
    nodes: [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}` })),
  },
  "vxlan",
  { poolDir: POOL_DIR, imageCacheDir: IMAGE_CACHE_DIR },
);

function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    missingTools: [],
    libvirt: {
      reachable: true,
      networks: [{ name: "default", owner: undefined, bridge: "virbr0", cidrs: ["192.168.122.0/24"], active: true }],
      domains: [],
    },
    routes: [{ dst: "192.0.2.0/24", dev: "eth0", table: "main" }],
    links: ["lo", "eth0", "virbr0"],
    kvm: { usable: true, detail: "" },
    memAvailableMiB: 20_000,
    cpus: 8,
    disks: labDisks(),
    ...overrides,
  };
}

test("labPreflightRequest derives names, sizes and disk estimates from config and plan", (t) => {
  t.deepEqual(
    REQUEST.nodes,
    [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}`, vcpus: 2, memoryMiB: 4096 })),
  );
  t.deepEqual(
    REQUEST.disks.map((d) => [d.path, d.bytes / 1024 ** 3, d.qemuReadable, d.pool]),
    [
      ["/var/lib/libvirt/images/cilium-lab-vxlan", 7, true, "cilium-lab-vxlan"],
      ["/var/cache/cilium-lab", 1, false, undefined],
    ],
  );
});

test("a healthy host passes the preflight with no problems and no warnings", (t) => {
  const { problems, warnings } = evaluatePreflight(REQUEST, facts());
  t.deepEqual({ problems, warnings }, { problems: [], warnings: [] });
});

test("a re-run with our own network, bridge and running VMs of the same stack passes", (t) => {
  const own = { project: "cilium-lab", stack: "vxlan" };
  const f = facts({
    libvirt: {
      reachable: true,
      networks: [
        { name: "cilium-lab-vxlan", owner: own, bridge: "cl-vxlan-1a2b", cidrs: ["192.168.150.0/24"], active: true },
      ],
      domains: REQUEST.nodes.map((n) => ({ name: n.domainName, owner: own, running: true })),
    },
    routes: [{ dst: "192.168.150.0/24", dev: "cl-vxlan-1a2b", table: "main" }],
    links: ["lo", "cl-vxlan-1a2b"],
    memAvailableMiB: 1000,
  });
  const { problems, warnings } = evaluatePreflight(REQUEST, f);
  t.deepEqual({ problems, warnings }, { problems: [], warnings: [] }, "the running VMs already hold their memory");
});

test("a broken host gets every problem at once, each with its fix", (t) => {
  const foreign = { project: "cilium-lab", stack: "native" };
  const f = facts({
    missingTools: ["cloud-localds"],
    libvirt: {
      reachable: true,
      networks: [
        { name: "cilium-lab-vxlan", owner: undefined, bridge: "virbr9", cidrs: ["10.0.0.0/24"], active: false },
        { name: "other", owner: undefined, bridge: "virbr1", cidrs: ["192.168.150.128/25"], active: true },
      ],
      domains: [{ name: "cilium-lab-vxlan-node-2", owner: foreign, running: true }],
    },
    routes: [{ dst: "192.168.144.0/20", dev: "eth1", table: "main" }],
    links: ["lo", "cl-vxlan-1a2b"],
    kvm: { usable: false, detail: "/dev/kvm is missing or not accessible (ENOENT)" },
    memAvailableMiB: 6000,
    cpus: 1,
    disks: labDisks(2, { unsearchable: "/var/lib/libvirt (mode 0700)" }),
  });
  const { problems, warnings } = evaluatePreflight(REQUEST, f);
  t.deepEqual(problems, [
    "`cloud-localds` not found on PATH. Fix: `apt-get install cloud-image-utils` (or set CLOUD_LOCALDS_BIN to its path).",
    'libvirt network "cilium-lab-vxlan" already exists and does not belong to stack "vxlan" (owner: none: not created by cilium-lab). Fix: remove it (`virsh net-destroy cilium-lab-vxlan; virsh net-undefine cilium-lab-vxlan`) or use another stack name.',
    'libvirt domain "cilium-lab-vxlan-node-2" already exists and does not belong to stack "vxlan" (owner: cilium-lab stack "native"). Fix: remove it (`virsh destroy cilium-lab-vxlan-node-2; virsh undefine cilium-lab-vxlan-node-2 --nvram`) or use another stack name.',
    'bridge "cl-vxlan-1a2b" already exists on the host and belongs to no network of this stack (`ip link show cl-vxlan-1a2b`). Fix: remove it (`ip link del cl-vxlan-1a2b`) if it is a leftover, or use another stack name.',
    'networkCidr 192.168.150.0/24 of libvirt network "cilium-lab-vxlan" overlaps host route 192.168.144.0/20 dev eth1; libvirt network "other" (192.168.150.128/25). Fix: choose a free range, e.g. `pulumi config set cilium-lab:networkCidr 192.168.100.0/24` (each stack needs its own).',
    "3 node(s) need 12288 MiB of memory but the host has 6000 MiB available (MemAvailable). Fix: `pulumi config set cilium-lab:nodeMemoryMiB 1792`, lower cilium-lab:nodeCount, or free memory.",
    "cilium-lab:nodeCpus 2 exceeds the host's 1 CPUs. Fix: `pulumi config set cilium-lab:nodeCpus 1`.",
    "accelerator is kvm but KVM is not usable here: /dev/kvm is missing or not accessible (ENOENT). Fix: `pulumi config set cilium-lab:accelerator qemu` (TCG software emulation: boots take minutes, so also raise cilium-lab:bootTimeoutSeconds, e.g. 900).",
    "the base image and 3 node disks (estimate) need 7.0 GiB in /var/lib/libvirt/images/cilium-lab-vxlan but only 2.0 GiB are free. Fix: free space on that filesystem (or move the directory).",
  ]);
  t.deepEqual(warnings, []);
  const error = t.throws(() => preflightLibvirt(REQUEST, f), { instanceOf: LibvirtPreflightError });
  t.true(
    error?.message.startsWith(
      "the host is not ready for cilium-lab (9 problems; nothing was created):\n- `cloud-localds` not found",
    ),
  );
});

test("libvirtd unreachable and a session URI are reported; vCPU overcommit is only a warning", (t) => {
  const down = evaluatePreflight(
    { ...REQUEST, uri: "qemu:///session" },
    facts({
      libvirt: {
        reachable: false,
        error: "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
      },
      cpus: 4,
    }),
  );
  t.deepEqual(down.problems, [
    'cilium-lab:libvirtUri must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got "qemu:///session": the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach. Fix: use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system.',
    "cannot reach libvirt at qemu:///session: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory. Fix: start the libvirt daemons (`virtlogd -d && libvirtd -d`, or `systemctl start libvirtd`) and check cilium-lab:libvirtUri.",
  ]);
  t.deepEqual(down.warnings, [
    "the nodes have 6 vCPUs in total on a host with 4 CPUs: they share CPUs, so boots and iperf3 results are slower and noisier.",
  ]);
  const noVirsh = evaluatePreflight(
    REQUEST,
    facts({ missingTools: ["virsh"], libvirt: { reachable: false, error: "virsh not installed" } }),
  );
  t.deepEqual(noVirsh.problems, [
    "`virsh` not found on PATH. Fix: `apt-get install libvirt-clients` (or set VIRSH_BIN to its path).",
  ]);
});

// A refused URI's reason that brings its own fix keeps it as the one fix; one without gets the config fix.
const MUST_BE = "cilium-lab:libvirtUri must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got";
const uriRows: [string, string, string, string][] = [
  [
    "qemu:///session",
    "qemu:///session",
    `${MUST_BE} "qemu:///session": the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach.`,
    "use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system.",
  ],
  [
    "a refused ssh URI (no_verify)",
    "qemu+ssh://lab@192.0.2.10/system?no_verify=1",
    `${MUST_BE} "qemu+ssh://lab@192.0.2.10/system?no_verify=1": no_verify is refused: host keys are always verified (no_verify would make ssh accept any new host key).`,
    "drop it and record the host's key in ~/.ssh/known_hosts after checking its fingerprint (ssh-keyscan -p <port> <host>, or ssh once by hand).",
  ],
  [
    "a refused transport (tls), whose reason has no fix of its own",
    "qemu+tls://192.0.2.10/system",
    `${MUST_BE} "qemu+tls://192.0.2.10/system": transport tls is not supported: remote hosts are reached with qemu+ssh://[user@]host[:port]/system (OpenSSH verifies the host key, ssh-agent or ?keyfile= authenticates).`,
    "`pulumi config set cilium-lab:libvirtUri qemu:///system`.",
  ],
];
for (const [title, uri, detail, fix] of uriRows) {
  test(`a refused libvirtUri says "Fix:" once, in the problem, the row and the error: ${title}`, (t) => {
    const req = { ...REQUEST, uri };
    const result = evaluatePreflight(req, facts());
    t.deepEqual(result.problems, [`${detail} Fix: ${fix}`]);
    t.deepEqual(
      result.rows.find((r) => r.check === "libvirt"),
      { check: "libvirt", status: "fail", detail, fix },
    );
    const error = t.throws(() => preflightLibvirt(req, facts()), { instanceOf: LibvirtPreflightError });
    t.is(error?.message.split("Fix:").length, 2, error?.message);
  });
}

test("CILIUM_LAB_PREFLIGHT=off skips the checks and says so", (t) => {
  process.env.CILIUM_LAB_PREFLIGHT = "off";
  try {
    t.deepEqual(preflightLibvirt(REQUEST, facts({ missingTools: ["virsh"] })), [
      "host preflight skipped (CILIUM_LAB_PREFLIGHT=off): host problems will surface later, as resource errors",
    ]);
  } finally {
    delete process.env.CILIUM_LAB_PREFLIGHT;
  }
});
