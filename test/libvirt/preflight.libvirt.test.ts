// test-runs-as: root
// (it creates a bridge and an overlapping route with `ip`)
// The preflight's gathering on this real host (virsh, ip, /proc/meminfo, statfs): a foreign network
// and domain with our names, a foreign bridge, an overlapping route, libvirtd unreachable and a
// missing tool are all reported in one pass, each with its fix; our own objects are tolerated.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";

import { networkProvider } from "../../infra/libvirt/network";
import {
  LibvirtPreflightError,
  evaluatePreflight,
  gatherHostFacts,
  preflightLibvirt,
  type PreflightRequest,
} from "../../infra/libvirt/preflight";
import {
  DEAD_SOCKET,
  DEAD_URI,
  POOL_ROOT,
  REPO_ROOT,
  URI,
  assertNothingLeft,
  direct,
  foreignDomainXml,
  poolDir,
  sh,
  sweep,
  tempFile,
  virsh,
} from "./support";

const PREFIX = "cl-t-pf";

const request = (extra: Partial<PreflightRequest> = {}): PreflightRequest => ({
  uri: URI,
  stack: "cl-t-pf",
  accelerator: "qemu",
  networkName: "cl-t-pf-net",
  bridgeName: "cl-t-pf-br",
  networkCidr: "192.168.194.0/24",
  nodes: [{ domainName: "cl-t-pf-vm", vcpus: 1, memoryMiB: 256 }],
  disks: [{ path: poolDir("cl-t-pf-pool"), bytes: 1024 ** 2, what: "node disks", qemuReadable: true }],
  onlineInstall: true,
  ...extra,
});

test.before(() => sweep(PREFIX));
test.after.always(() => sweep(PREFIX));

test.serial("a clean host passes in one quick pass", (t) => {
  const started = Date.now();
  const facts = gatherHostFacts(request());
  t.log(`gathered in ${Date.now() - started} ms`);
  t.deepEqual(evaluatePreflight(request(), facts).problems, []);
  t.true(facts.libvirt.reachable);
  t.true(facts.memAvailableMiB > 0 && facts.cpus > 0);
});

test.serial(
  "foreign network, domain and bridge with our names and an overlapping route are all reported at once",
  (t) => {
    virsh("net-define", tempFile("n.xml", "<network><name>cl-t-pf-net</name><bridge name='cl-t-pf-fb0'/></network>"));
    virsh("define", tempFile("d.xml", foreignDomainXml("cl-t-pf-vm")));
    sh("ip", ["link", "add", "cl-t-pf-br", "type", "bridge"]);
    sh("ip", ["addr", "add", "192.168.194.129/25", "dev", "cl-t-pf-br"]);
    sh("ip", ["link", "set", "cl-t-pf-br", "up"]);
    try {
      // An offline install: the host firewall check has its own tests (forwarding*.test.ts).
      const error = t.throws(() => preflightLibvirt(request({ onlineInstall: false })), {
        instanceOf: LibvirtPreflightError,
      });
      const problems = [...(error?.problems ?? [])];
      t.is(problems.length, 4, problems.join("\n"));
      t.is(
        problems[0],
        'libvirt network "cl-t-pf-net" already exists and does not belong to stack "cl-t-pf" (owner: none: not created by cilium-lab). Fix: remove it (`virsh net-destroy cl-t-pf-net; virsh net-undefine cl-t-pf-net`) or use another stack name.',
      );
      t.is(
        problems[1],
        'libvirt domain "cl-t-pf-vm" already exists and does not belong to stack "cl-t-pf" (owner: none: not created by cilium-lab). Fix: remove it (`virsh destroy cl-t-pf-vm; virsh undefine cl-t-pf-vm --nvram`) or use another stack name.',
      );
      t.is(
        problems[2],
        'bridge "cl-t-pf-br" already exists on the host and belongs to no network of this stack (`ip link show cl-t-pf-br`). Fix: remove it (`ip link del cl-t-pf-br`) if it is a leftover, or use another stack name.',
      );
      t.regex(
        problems[3] ?? "",
        /^networkCidr 192\.168\.194\.0\/24 of libvirt network "cl-t-pf-net" overlaps host route 192\.168\.194\.128\/25 dev cl-t-pf-br\. Fix: choose a free range, e\.g\. `pulumi config set cilium-lab:networkCidr 192\.168\.\d+\.0\/24` \(each stack needs its own\)\.$/,
      );
      t.true(
        error?.message.startsWith(
          "the host is not ready for cilium-lab (4 problems; nothing was created):\n- libvirt network",
        ),
      );
    } finally {
      sh("ip", ["link", "del", "cl-t-pf-br"]);
      virsh("undefine", "cl-t-pf-vm");
      virsh("net-undefine", "cl-t-pf-net");
    }
    assertNothingLeft(t, PREFIX);
  },
);

test.serial("our own running network of the same stack is tolerated (a re-run)", async (t) => {
  const p = direct(networkProvider);
  const net = await p.create({
    uri: URI,
    networkName: "cl-t-pf-net",
    bridgeName: "cl-t-pf-br",
    cidr: "192.168.194.0/24",
    gateway: "192.168.194.1",
    hosts: [],
    stack: "cl-t-pf",
  });
  try {
    t.deepEqual(preflightLibvirt(request({ onlineInstall: false })), []);
    const other = evaluatePreflight(
      request({ stack: "cl-t-pf-other" }),
      gatherHostFacts(request({ stack: "cl-t-pf-other" })),
    );
    t.true(
      other.problems[0]?.startsWith(
        'libvirt network "cl-t-pf-net" already exists and does not belong to stack "cl-t-pf-other" (owner: cilium-lab stack "cl-t-pf")',
      ),
    );
  } finally {
    await p.delete(net.id, net.outs ?? {});
  }
  assertNothingLeft(t, PREFIX);
});

test.serial("libvirtd unreachable and a missing tool are reported with their fixes", (t) => {
  const saved = process.env.QEMU_IMG_BIN;
  process.env.QEMU_IMG_BIN = "/nonexistent/qemu-img";
  try {
    const { problems } = evaluatePreflight(request({ uri: DEAD_URI }), gatherHostFacts(request({ uri: DEAD_URI })));
    t.deepEqual(problems, [
      "`qemu-img` not found on PATH. Fix: `apt-get install qemu-utils` (or set QEMU_IMG_BIN to its path).",
      `cannot reach libvirt at ${DEAD_URI}: Failed to connect socket to '${DEAD_SOCKET}': No such file or directory. Fix: start the libvirt daemons (\`virtlogd -d && libvirtd -d\`, or \`systemctl start libvirtd\`) and check cilium-lab:libvirtUri.`,
    ]);
  } finally {
    if (saved === undefined) {
      delete process.env.QEMU_IMG_BIN;
    } else {
      process.env.QEMU_IMG_BIN = saved;
    }
  }
});

test.serial("a pool directory under /root and a disk request larger than the filesystem are reported", (t) => {
  const { problems } = evaluatePreflight(
    request({ disks: [{ path: "/root/cl-t-pf-pool", bytes: 1024 ** 5, what: "node disks", qemuReadable: true }] }),
    gatherHostFacts(
      request({ disks: [{ path: "/root/cl-t-pf-pool", bytes: 1024 ** 5, what: "node disks", qemuReadable: true }] }),
    ),
  );
  const free = fs.statfsSync("/root");
  t.deepEqual(problems, [
    `node disks need 1048576.0 GiB in /root/cl-t-pf-pool but only ${((free.bavail * free.bsize) / 1024 ** 3).toFixed(1)} GiB are free. Fix: free space on that filesystem (or move the directory).`,
    "node disks go to /root/cl-t-pf-pool, but the qemu user (libvirt-qemu) cannot traverse /root (mode 0700). Fix: use a directory under /var/lib/libvirt, or give the parent directories o+x.",
  ]);
  t.false(fs.existsSync("/root/cl-t-pf-pool"), "the preflight creates nothing");
  t.false(fs.existsSync(`${POOL_ROOT}/cl-t-pf-pool`));
});

test.serial(
  "an online install reads the host firewall within a second and finds this host forwarding; an air-gapped one does not read it",
  (t) => {
    const started = Date.now();
    const online = gatherHostFacts(request());
    const ms = Date.now() - started;
    const offline = gatherHostFacts(request({ onlineInstall: false }));
    t.log(`gathered with the firewall check in ${ms} ms`);
    t.is(online.forwarding?.status, "ok", online.forwarding?.detail);
    t.true(ms < 5000);
    t.is(offline.forwarding, undefined);
    t.deepEqual(
      evaluatePreflight(request({ onlineInstall: false }), offline).rows.find((r) => r.check === "firewall"),
      { check: "firewall", status: "unchecked", detail: "k3sAirgapDir is set: the nodes download nothing", fix: "" },
    );
  },
);

test.serial("a host firewall that drops the lab's traffic is a preflight problem with its fix", (t) => {
  const facts = {
    ...gatherHostFacts(request()),
    forwarding: {
      status: "fail" as const,
      detail: "forwarded traffic of bridge cl-t-pf-br (192.168.194.0/24) to the internet is dropped: X",
      fix: "`iptables -I DOCKER-USER -i cl-t-pf-br -j ACCEPT`",
    },
  };
  const { problems, rows } = evaluatePreflight(request(), facts);
  t.deepEqual(problems, [
    "the nodes will not reach the internet, so k3s's download on them would fail minutes into `up` (`Could not resolve host`): forwarded traffic of bridge cl-t-pf-br (192.168.194.0/24) to the internet is dropped: X. Fix: `iptables -I DOCKER-USER -i cl-t-pf-br -j ACCEPT`; or install air-gapped (cilium-lab:k3sAirgapDir).",
  ]);
  t.is(
    rows.find((r) => r.check === "firewall")?.fix,
    "`iptables -I DOCKER-USER -i cl-t-pf-br -j ACCEPT`; or install air-gapped (cilium-lab:k3sAirgapDir).",
  );
  t.deepEqual(
    evaluatePreflight(request({ onlineInstall: false }), facts).problems,
    [],
    "air-gapped nodes download nothing",
  );
});

test.serial(
  "an ssh URI to a loopback port that accepts and never answers: one named problem with the fix, within the 20 s bound, no ssh left",
  async (t) => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const uri = `qemu+ssh://nobody@127.0.0.1:${port}/system`;
    try {
      const started = Date.now();
      // In a child: the gathering is synchronous and would block this process's silent server.
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "test/libvirt/bridge-preflight-child.ts",
          JSON.stringify(request({ uri, onlineInstall: false })),
        ],
        { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
      );
      const seconds = (Date.now() - started) / 1000;
      t.log(`gave up after ${seconds.toFixed(1)} s`);
      const { problems } = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { problems: string[] };
      t.deepEqual(problems, [
        `cannot reach libvirt at ${uri}: no answer from ${uri} within 20 s (\`virsh net-list\` was killed); cilium-lab: no answer over ssh. ` +
          `Fix: check that port ${port} on 127.0.0.1 is an SSH server (\`ssh -p ${port} -v nobody@127.0.0.1 true\` should show an SSH-2.0 banner at once) and that sshd and libvirtd on 127.0.0.1 are responsive.`,
      ]);
      t.true(seconds < 40);
      t.is(spawnSync("pgrep", ["-f", `127.0.0.1.*${port}|${port}.*127.0.0.1`]).status, 1, "no ssh process is left");
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  },
);
