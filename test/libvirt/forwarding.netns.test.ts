// The forwarding check against real netfilter: each real ruleset (forwarding-rulesets.ts) is loaded
// into a fresh network namespace with iptables-legacy-restore, iptables-nft-restore or `nft -f`
// (never switching the host's iptables alternative), and the check's own gathering runs inside it
// through `ip netns exec` (iptables-legacy-save, iptables-nft-save, nft -j, ip, /proc). Needs root;
// run under the heavy lock. Each namespace has a veth "uplink" with a default route (no packet is
// sent) and, for libvirt's nft table, a bridge virbr0 (`iif "virbr0"` needs the device). Every
// namespace is deleted, also on failure.
import test from "ava";
import { execFileSync, spawn } from "node:child_process";

import { checkForwarding, hostRunner, type ForwardingCheck, type Runner } from "../../infra/libvirt/forwarding";
import {
  DOCKER,
  DOCKER_THEN_LIBVIRT9,
  DOCKER_USER_ALLOWED,
  FIREWALLD,
  FIREWALLD_NO_FORWARD,
  LAB_BRIDGE,
  LAB_CIDR,
  LIBVIRT9,
  LIBVIRT_NFT,
  NFT_DROP_FORWARD,
  UFW,
  UFW_ROUTE_ALLOWED,
} from "./forwarding-rulesets";

const TARGET = { bridgeName: LAB_BRIDGE, networkCidr: LAB_CIDR };
const PREFIX = "cl-t-fw";
let seq = 0;

const sh = (args: readonly string[], input?: string): void => {
  execFileSync(args[0] ?? "", args.slice(1), { input, stdio: ["pipe", "pipe", "pipe"] });
};
const inNs =
  (ns: string): Runner =>
  (file, args) => {
    const r = hostRunner("ip", ["netns", "exec", ns, file, ...args]);
    return { ...r, missing: r.missing || /exec of "[^"]*" failed: No such file/.test(r.stderr) };
  };

type Load =
  | { readonly with: "iptables-legacy" | "iptables-nft"; readonly rules: string }
  | { readonly with: "nft"; readonly rules: string };

/** A fresh namespace with the rulesets loaded; runs the check inside it; always deletes the namespace. */
function checkIn(
  loads: readonly Load[],
  extra: (ns: string) => void = () => undefined,
  run?: (ns: string) => Runner,
): ForwardingCheck {
  const ns = `${PREFIX}-${process.pid}-${seq++}`;
  sh(["ip", "netns", "add", ns]);
  try {
    const x = (...args: string[]): void => sh(["ip", "netns", "exec", ns, ...args]);
    x("ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1");
    x("ip", "addr", "add", "198.51.100.2/24", "dev", "uplink0");
    x("ip", "link", "set", "uplink0", "up");
    x("ip", "route", "add", "default", "via", "198.51.100.1", "dev", "uplink0");
    x("ip", "link", "add", "virbr0", "type", "bridge");
    for (const load of loads) {
      // Absolute paths: under `npm test` PATH starts with node_modules/.bin, where @vercel/nft has a CLI named nft.
      sh(
        [
          "ip",
          "netns",
          "exec",
          ns,
          ...(load.with === "nft" ? ["/usr/sbin/nft", "-f", "-"] : [`/usr/sbin/${load.with}-restore`]),
        ],
        load.rules,
      );
    }
    extra(ns);
    return checkForwarding(TARGET, (run ?? inNs)(ns));
  } finally {
    sh(["ip", "netns", "del", ns]);
  }
}

test.after.always(() => {
  for (const line of execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (name.startsWith(`${PREFIX}-${process.pid}-`)) {
      sh(["ip", "netns", "del", name]);
    }
  }
});

const OK = (n: number): ForwardingCheck => ({
  status: "ok",
  detail: `forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is accepted by every forward hook (${n} base chain${n === 1 ? "" : "s"} checked)`,
  fix: "",
});
const DOCKER_FIX = (bin: string): string =>
  `\`${bin} -I DOCKER-USER -i cl-vxlan-1a2b -j ACCEPT\` and \`${bin} -I DOCKER-USER -o cl-vxlan-1a2b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\` ` +
  "(Docker keeps DOCKER-USER first in FORWARD; re-add them after a reboot, e.g. from a systemd unit after docker.service)";
const DOCKER_DROP = (source: string): string =>
  `forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: ${source} table filter (Docker's) chain FORWARD drops new connections from the nodes and the replies to them (policy DROP of chain FORWARD)`;
// `iptables -V` inside the namespace reports the host's alternative (the check's fix names `iptables` for it).
const hostBackend = /nf_tables/.test(execFileSync("iptables", ["-V"], { encoding: "utf8" })) ? "nft" : "legacy";

for (const flavor of ["iptables-legacy", "iptables-nft"] as const) {
  test.serial(`${flavor}: a plain libvirt 9 host passes`, (t) => {
    t.deepEqual(checkIn([{ with: flavor, rules: LIBVIRT9 }]), OK(1));
  });

  test.serial(`${flavor}: Docker's FORWARD DROP with libvirt's chains first passes`, (t) => {
    t.deepEqual(checkIn([{ with: flavor, rules: DOCKER_THEN_LIBVIRT9 }]), OK(1));
  });

  test.serial(`${flavor}: Docker's FORWARD DROP with libvirt on nftables fails with the DOCKER-USER fix`, (t) => {
    t.deepEqual(
      checkIn([
        { with: flavor, rules: DOCKER },
        { with: "nft", rules: LIBVIRT_NFT },
      ]),
      {
        status: "fail",
        detail: DOCKER_DROP(flavor),
        fix: DOCKER_FIX(flavor === `iptables-${hostBackend}` ? "iptables" : flavor),
      },
    );
  });
}

test.serial(
  "iptables-nft: UFW's default deny routed with libvirt on nftables fails with `ufw route allow in on <bridge>`",
  (t) => {
    t.deepEqual(
      checkIn([
        { with: "iptables-nft", rules: UFW },
        { with: "nft", rules: LIBVIRT_NFT },
      ]),
      {
        status: "fail",
        detail:
          "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: iptables-nft table filter (UFW's) chain FORWARD drops new connections from the nodes (policy DROP of chain FORWARD)",
        fix: "`ufw route allow in on cl-vxlan-1a2b` (UFW's default routed policy is deny)",
      },
    );
  },
);

test.serial(
  "nft only: a forward chain with policy drop fails with the nft rules for the lab's bridge; libvirt's own table accepts",
  (t) => {
    t.deepEqual(
      checkIn([
        { with: "nft", rules: LIBVIRT_NFT },
        { with: "nft", rules: NFT_DROP_FORWARD },
      ]),
      {
        status: "fail",
        detail:
          "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: nftables table inet filter chain forward drops new connections from the nodes (policy DROP of chain forward)",
        fix: '`nft insert rule inet filter forward iifname "cl-vxlan-1a2b" accept` and `nft insert rule inet filter forward oifname "cl-vxlan-1a2b" ct state related,established accept`',
      },
    );
    t.deepEqual(checkIn([{ with: "nft", rules: LIBVIRT_NFT }]), OK(1));
  },
);

test.serial("nft only: the fix, applied, makes the check pass", (t) => {
  const fixed = NFT_DROP_FORWARD.replace(
    "ct state established,related accept",
    `iifname "${LAB_BRIDGE}" accept\n    ct state established,related accept`,
  );
  t.deepEqual(
    checkIn([
      { with: "nft", rules: LIBVIRT_NFT },
      { with: "nft", rules: fixed },
    ]),
    OK(2),
  );
});

test.serial("net.ipv4.ip_forward=0 before up is not a failure; with the lab's bridge up it is", (t) => {
  const off = (ns: string): void => sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"]);
  t.deepEqual(checkIn([{ with: "iptables-nft", rules: LIBVIRT9 }], off), OK(1));
  const offAndUp = (ns: string): void => {
    off(ns);
    sh(["ip", "netns", "exec", ns, "ip", "link", "add", LAB_BRIDGE, "type", "bridge"]);
  };
  t.deepEqual(checkIn([{ with: "iptables-nft", rules: LIBVIRT9 }], offAndUp), {
    status: "fail",
    detail: "bridge cl-vxlan-1a2b is up but net.ipv4.ip_forward is 0: the host forwards nothing",
    fix: "`sysctl -w net.ipv4.ip_forward=1`",
  });
});

test.serial("without root (the commands run as nobody) the row is 'not checked (needs root)'", (t) => {
  const asNobody =
    (ns: string): Runner =>
    (file, args) =>
      inNs(ns)("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        file,
        ...args,
      ]);
  const r = checkIn([{ with: "iptables-nft", rules: DOCKER }], undefined, asNobody);
  t.is(r.status, "unchecked");
  t.regex(
    r.detail,
    /^forwarding for bridge cl-vxlan-1a2b not checked \(needs root\): iptables-legacy-save: .*(Permission denied|must be root)/,
  );
  t.true(r.fix.startsWith("run the preflight as root, or look yourself: `sudo iptables-save"));
});

test.serial("the gathering inside a namespace with Docker's rules takes well under a second", (t) => {
  const started = Date.now();
  const r = checkIn([{ with: "iptables-nft", rules: DOCKER_THEN_LIBVIRT9 }]);
  const ms = Date.now() - started;
  t.log(`namespace setup + check: ${ms} ms`);
  t.is(r.status, "ok");
  const host = Date.now();
  checkForwarding(TARGET);
  t.log(`check on this host: ${Date.now() - host} ms`);
  t.true(Date.now() - host < 1000);
});

// ---------------------------------------------------------------------------------------------
// The kernel agrees: the same rulesets in a "host" namespace that routes between a "node"
// namespace behind the lab's bridge and an "internet" namespace behind the uplink (all three made
// here, private addresses, nothing leaves them). libvirt's rules for the lab's network are added
// as libvirt adds them when it starts the network; then node-1 opens a TCP connection to port 443
// on the other side. The check's verdict (run in the host namespace) must match what happened.

const NODE_JS = process.execPath;
const libvirtStartsLab = (ns: string, backend: "iptables-legacy" | "iptables-nft" | "nft"): void => {
  const x = (...args: string[]): void => sh(["ip", "netns", "exec", ns, ...args]);
  if (backend === "nft") {
    // nftablesAddForwardAllowOut / nftablesAddForwardAllowRelatedIn (libvirt network_nftables.c)
    x(
      "/usr/sbin/nft",
      "insert",
      "rule",
      "ip",
      "libvirt_network",
      "guest_output",
      "ip",
      "saddr",
      LAB_CIDR,
      "iif",
      LAB_BRIDGE,
      "counter",
      "accept",
    );
    x(
      "/usr/sbin/nft",
      "insert",
      "rule",
      "ip",
      "libvirt_network",
      "guest_input",
      "oif",
      LAB_BRIDGE,
      "ip",
      "daddr",
      LAB_CIDR,
      "ct",
      "state",
      "related,established",
      "counter",
      "accept",
    );
  } else {
    // iptablesForwardAllowOut / iptablesForwardAllowRelatedIn (libvirt network_iptables.c)
    x(
      `/usr/sbin/${backend}`,
      "--table",
      "filter",
      "--insert",
      "LIBVIRT_FWO",
      "--source",
      LAB_CIDR,
      "--in-interface",
      LAB_BRIDGE,
      "--jump",
      "ACCEPT",
    );
    x(
      `/usr/sbin/${backend}`,
      "--table",
      "filter",
      "--insert",
      "LIBVIRT_FWI",
      "--destination",
      LAB_CIDR,
      "--out-interface",
      LAB_BRIDGE,
      "--match",
      "conntrack",
      "--ctstate",
      "ESTABLISHED,RELATED",
      "--jump",
      "ACCEPT",
    );
  }
};

async function kernelAndCheck(
  loads: readonly Load[],
  libvirt: "iptables-legacy" | "iptables-nft" | "nft",
): Promise<{ connected: boolean; check: ForwardingCheck }> {
  const id = `${PREFIX}-${process.pid}-${seq++}`;
  const [host, node, inet] = [`${id}h`, `${id}n`, `${id}i`];
  const made: string[] = [];
  try {
    for (const ns of [host, node, inet]) {
      sh(["ip", "netns", "add", ns]);
      made.push(ns);
    }
    const x = (ns: string, ...args: string[]): void => sh(["ip", "netns", "exec", ns, ...args]);
    x(host, "ip", "link", "add", LAB_BRIDGE, "type", "bridge");
    x(host, "ip", "addr", "add", "192.168.150.1/24", "dev", LAB_BRIDGE);
    x(host, "ip", "link", "set", LAB_BRIDGE, "up");
    x(host, "ip", "link", "add", "virbr0", "type", "bridge");
    x(host, "ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "eth0", "netns", node);
    x(host, "ip", "link", "set", "vnet0", "master", LAB_BRIDGE, "up");
    x(host, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", inet);
    x(host, "ip", "addr", "add", "10.254.0.2/24", "dev", "uplink0");
    x(host, "ip", "link", "set", "uplink0", "up");
    x(host, "ip", "route", "add", "default", "via", "10.254.0.1", "dev", "uplink0");
    x(host, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    x(node, "ip", "addr", "add", "192.168.150.11/24", "dev", "eth0");
    x(node, "ip", "link", "set", "eth0", "up");
    x(node, "ip", "route", "add", "default", "via", "192.168.150.1");
    x(inet, "ip", "addr", "add", "10.254.0.1/24", "dev", "eth0");
    x(inet, "ip", "link", "set", "eth0", "up");
    x(inet, "ip", "route", "add", "192.168.150.0/24", "via", "10.254.0.2");
    for (const load of loads) {
      sh(
        [
          "ip",
          "netns",
          "exec",
          host,
          ...(load.with === "nft" ? ["/usr/sbin/nft", "-f", "-"] : [`/usr/sbin/${load.with}-restore`]),
        ],
        load.rules,
      );
    }
    libvirtStartsLab(host, libvirt);
    const server = spawn(
      "ip",
      [
        "netns",
        "exec",
        inet,
        NODE_JS,
        "-e",
        "require('net').createServer((s) => s.end('hi')).listen(443, '10.254.0.1', () => console.log('up'))",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.once("data", () => resolve());
        server.once("exit", (code) => reject(new Error(`server exited ${code}`)));
      });
      const client =
        "const s = require('net').connect(443, '10.254.0.1'); s.setTimeout(1500, () => process.exit(3)); s.on('data', () => process.exit(0)); s.on('error', () => process.exit(4));";
      let connected = true;
      try {
        execFileSync("ip", ["netns", "exec", node, NODE_JS, "-e", client], { stdio: "ignore", timeout: 10_000 });
      } catch {
        connected = false;
      }
      return { connected, check: checkForwarding(TARGET, inNs(host)) };
    } finally {
      server.kill();
    }
  } finally {
    for (const ns of made) {
      sh(["ip", "netns", "del", ns]);
    }
  }
}

const KERNEL_CASES: readonly {
  name: string;
  loads: readonly Load[];
  libvirt: "iptables-legacy" | "iptables-nft" | "nft";
  connects: boolean;
}[] = [
  {
    name: "libvirt 9 on iptables-nft",
    loads: [{ with: "iptables-nft", rules: LIBVIRT9 }],
    libvirt: "iptables-nft",
    connects: true,
  },
  {
    name: "libvirt 9 on iptables-legacy",
    loads: [{ with: "iptables-legacy", rules: LIBVIRT9 }],
    libvirt: "iptables-legacy",
    connects: true,
  },
  {
    name: "Docker, then libvirt 9 (iptables-nft)",
    loads: [{ with: "iptables-nft", rules: DOCKER_THEN_LIBVIRT9 }],
    libvirt: "iptables-nft",
    connects: true,
  },
  {
    name: "Docker (iptables-nft) with libvirt on nftables",
    loads: [
      { with: "iptables-nft", rules: DOCKER },
      { with: "nft", rules: LIBVIRT_NFT },
    ],
    libvirt: "nft",
    connects: false,
  },
  {
    name: "Docker (iptables-legacy) with libvirt 9 on iptables-nft",
    loads: [
      { with: "iptables-legacy", rules: DOCKER },
      { with: "iptables-nft", rules: LIBVIRT9 },
    ],
    libvirt: "iptables-nft",
    connects: false,
  },
  {
    name: "UFW (iptables-nft) with libvirt on nftables",
    loads: [
      { with: "iptables-nft", rules: UFW },
      { with: "nft", rules: LIBVIRT_NFT },
    ],
    libvirt: "nft",
    connects: false,
  },
  {
    name: "an nft forward chain with policy drop, libvirt on nftables",
    loads: [
      { with: "nft", rules: LIBVIRT_NFT },
      { with: "nft", rules: NFT_DROP_FORWARD },
    ],
    libvirt: "nft",
    connects: false,
  },
  {
    name: "firewalld (default zone forwarding) with libvirt on nftables",
    loads: [
      { with: "nft", rules: LIBVIRT_NFT },
      { with: "nft", rules: FIREWALLD },
    ],
    libvirt: "nft",
    connects: true,
  },
  {
    name: "firewalld without zone forwarding, libvirt on nftables,",
    loads: [
      { with: "nft", rules: LIBVIRT_NFT },
      { with: "nft", rules: FIREWALLD_NO_FORWARD },
    ],
    libvirt: "nft",
    connects: false,
  },
  {
    name: "Docker with the DOCKER-USER fix applied, libvirt on nftables,",
    loads: [
      { with: "iptables-nft", rules: DOCKER_USER_ALLOWED },
      { with: "nft", rules: LIBVIRT_NFT },
    ],
    libvirt: "nft",
    connects: true,
  },
  {
    name: "UFW with `ufw route allow in on <bridge>`, libvirt on nftables,",
    loads: [
      { with: "iptables-nft", rules: UFW_ROUTE_ALLOWED },
      { with: "nft", rules: LIBVIRT_NFT },
    ],
    libvirt: "nft",
    connects: true,
  },
];

for (const c of KERNEL_CASES) {
  test.serial(
    `the kernel agrees with the check: ${c.name} ${c.connects ? "forwards" : "drops"} node-1's connection`,
    async (t) => {
      const { connected, check } = await kernelAndCheck(c.loads, c.libvirt);
      t.is(connected, c.connects, "what the kernel did");
      t.is(check.status, c.connects ? "ok" : "fail", check.detail);
    },
  );
}

test.serial(
  "firewalld without zone forwarding: the fix puts the lab's bridge into libvirt's zone; before the bridge exists firewalld is not judged",
  async (t) => {
    const { check } = await kernelAndCheck(
      [
        { with: "nft", rules: LIBVIRT_NFT },
        { with: "nft", rules: FIREWALLD_NO_FORWARD },
      ],
      "nft",
    );
    t.deepEqual(check, {
      status: "fail",
      detail:
        "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: nftables table inet firewalld (firewalld's) chain filter_FORWARD drops new connections from the nodes (rule handle 15 of chain filter_FORWARD_POLICIES: reject)",
      fix: "`firewall-cmd --permanent --zone=libvirt --change-interface=cl-vxlan-1a2b && firewall-cmd --reload`",
    });
    // libvirt adds a new network's bridge to zone "libvirt" when it starts it (libvirt.zone).
    t.deepEqual(
      checkIn([
        { with: "nft", rules: LIBVIRT_NFT },
        { with: "nft", rules: FIREWALLD_NO_FORWARD },
      ]),
      OK(1),
    );
  },
);
