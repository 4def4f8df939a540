// The NoCloud renderers: exact text for each file, then the real cloud-init (Debian package
// `cloud-init`, 22.4 on Debian 12) validates user-data with `cloud-init schema` and converts the
// network-config into what the Debian test image (ifupdown) and Ubuntu (netplan) apply. PyYAML, the
// parser cloud-init uses, reads the text back.
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import {
  KERNEL_MODULES,
  LAB_USER,
  SYSCTLS,
  instanceIdFor,
  renderMetaData,
  renderNetworkConfig,
  renderUserData,
  type UserDataInput,
} from "../../infra/nodes/cloud-init";
import { generateEd25519KeyPair } from "../../infra/nodes/ssh-keys";

const execFileAsync = promisify(execFile);

const USER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDUW+Wbd5fCA1bFpjAUABqV9FcB6EDy9r6yQSr+rgS1i cilium-lab-t";
const EXTRA_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop";
const HOST_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnbV8Ry1lhYRkEoc7nD7JrTzq1WmQ3u4M5Yk1xRj0Zp cilium-lab-t-node-1";
const HOST_PRIV =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

const BASE: UserDataInput = {
  hostname: "node-1",
  authorizedKeys: [USER_KEY],
  hostKey: { privateKey: HOST_PRIV, publicKey: HOST_PUB },
};

/** The module/sysctl/runcmd tail every node's user-data ends with. */
const TAIL = `write_files:
  - path: /etc/modules-load.d/cilium-lab.conf
    owner: root:root
    permissions: "0644"
    content: |
      # cilium-lab: modules k3s and Cilium use (see infra/nodes/cloud-init.ts).
      br_netfilter
      overlay
      nf_conntrack
      ip_tables
      iptable_nat
      iptable_filter
      iptable_mangle
      iptable_raw
      vxlan
      geneve
  - path: /etc/sysctl.d/99-zzz-cilium-lab.conf
    owner: root:root
    permissions: "0644"
    content: |
      # cilium-lab: forwarding for k3s, reverse-path filter off for Cilium (see infra/nodes/cloud-init.ts).
      net.ipv4.ip_forward = 1
      net.ipv4.conf.all.forwarding = 1
      net.ipv4.conf.default.forwarding = 1
      net.bridge.bridge-nf-call-iptables = 1
      net.bridge.bridge-nf-call-ip6tables = 1
      net.ipv4.conf.all.rp_filter = 0
      net.ipv4.conf.default.rp_filter = 0
runcmd:
  - - modprobe
    - -a
    - br_netfilter
    - overlay
    - nf_conntrack
    - ip_tables
    - iptable_nat
    - iptable_filter
    - iptable_mangle
    - iptable_raw
    - vxlan
    - geneve
  - - sysctl
    - -p
    - /etc/sysctl.d/99-zzz-cilium-lab.conf
`;

function head(hostname: string, keys: readonly string[], hostPriv = HOST_PRIV): string {
  return `#cloud-config
hostname: ${hostname}
manage_etc_hosts: true
users:
  - name: lab
    gecos: cilium-lab
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: true
    ssh_authorized_keys:
${keys.map((k) => `      - ${k}\n`).join("")}ssh_pwauth: false
disable_root: true
ssh_deletekeys: true
ssh_genkeytypes:
  - ed25519
ssh_keys:
  ed25519_private: |
${hostPriv
  .trimEnd()
  .split("\n")
  .map((l) => `    ${l}\n`)
  .join("")}  ed25519_public: ${HOST_PUB}
`;
}

const userDataTable: { title: string; input: UserDataInput; expected: string }[] = [
  {
    title: "user-data for node-1 with only the generated key",
    input: BASE,
    expected: head("node-1", [USER_KEY]) + TAIL,
  },
  {
    title: "user-data adds sshAuthorizedKey after the generated key",
    input: { ...BASE, hostname: "node-3", authorizedKeys: [USER_KEY, EXTRA_KEY] },
    expected: head("node-3", [USER_KEY, EXTRA_KEY]) + TAIL,
  },
  {
    title: "user-data ends a host private key without a final newline with one",
    input: { ...BASE, hostKey: { privateKey: HOST_PRIV.trimEnd(), publicKey: HOST_PUB } },
    expected: head("node-1", [USER_KEY]) + TAIL,
  },
  {
    title: "user-data lists packages only when asked to",
    input: { ...BASE, packages: ["iperf3", "ethtool"] },
    expected: head("node-1", [USER_KEY]) + TAIL + "packages:\n  - iperf3\n  - ethtool\n",
  },
];

for (const row of userDataTable) {
  test(`renders ${row.title}`, (t) => {
    t.is(renderUserData(row.input), row.expected);
  });
}

test("meta-data names the instance and the host", (t) => {
  t.is(
    renderMetaData({ instanceId: "cilium-lab-t-node-2-0123456789ab", hostname: "node-2" }),
    "instance-id: cilium-lab-t-node-2-0123456789ab\nlocal-hostname: node-2\n",
  );
});

/** Bridge mode's static setup of node-2 on the test bridge's documentation subnet. */
const STATIC = { address: "192.0.2.12", prefix: 24, gateway: "192.0.2.1", dns: ["192.0.2.1", "9.9.9.9"] };

const networkTable: { title: string; mac: string; static?: typeof STATIC; expected: string }[] = [
  {
    title: "a MAC of digits only is quoted so YAML 1.1 does not read it as a base-60 number",
    mac: "52:54:00:12:34:01",
    expected:
      'version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: "52:54:00:12:34:01"\n    set-name: eth0\n    dhcp4: true\n',
  },
  {
    title: "a MAC with hex letters is lower-cased",
    mac: "52:54:00:AB:CD:0F",
    expected:
      "version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: 52:54:00:ab:cd:0f\n    set-name: eth0\n    dhcp4: true\n",
  },
  {
    title: "a static address has its prefix, a default route via the gateway and the DNS servers in order",
    mac: "52:54:00:12:34:02",
    static: STATIC,
    expected: `version: 2
ethernets:
  eth0:
    match:
      macaddress: "52:54:00:12:34:02"
    set-name: eth0
    dhcp4: false
    addresses:
      - 192.0.2.12/24
    gateway4: 192.0.2.1
    nameservers:
      addresses:
        - 192.0.2.1
        - 9.9.9.9
`,
  },
];

for (const row of networkTable) {
  test(`network-config: ${row.title}`, (t) => {
    t.is(renderNetworkConfig({ mac: row.mac, static: row.static }), row.expected);
  });
}

test("the instance-id changes with user-data or network-config and is stable otherwise", (t) => {
  const a = instanceIdFor("cilium-lab-t-node-1", "u1", "n1");
  t.regex(a, /^cilium-lab-t-node-1-[0-9a-f]{12}$/);
  t.is(instanceIdFor("cilium-lab-t-node-1", "u1", "n1"), a);
  t.not(instanceIdFor("cilium-lab-t-node-1", "u2", "n1"), a);
  t.not(instanceIdFor("cilium-lab-t-node-1", "u1", "n2"), a);
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  t.not(instanceIdFor("d", "ab", "c"), instanceIdFor("d", "a", "bc"));
});

test("the module and sysctl lists hold what k3s and Cilium need", (t) => {
  for (const m of ["br_netfilter", "overlay", "vxlan", "geneve", "ip_tables"]) {
    t.true(KERNEL_MODULES.includes(m), m);
  }
  t.deepEqual(
    SYSCTLS.filter(([k]) => k === "net.ipv4.ip_forward" || k === "net.ipv4.conf.all.rp_filter"),
    [
      ["net.ipv4.ip_forward", "1"],
      ["net.ipv4.conf.all.rp_filter", "0"],
    ],
  );
  t.is(LAB_USER, "lab");
});

// ---- the real cloud-init -------------------------------------------------------------------------

const CLOUD_INIT_HINT =
  "install Debian package cloud-init (apt-get install -y cloud-init; listed in .ci/apt-packages.txt)";

async function tmpdir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "cl-n-cloudinit-"));
}

/** Runs a tool; a missing tool fails with how to get it. Resolves with exit code and output. */
async function tool(
  file: string,
  args: readonly string[],
  hint: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      env: { ...process.env, LC_ALL: "C" },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(`\`${file}\` not found on PATH: ${hint}.`);
    }
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

test("cloud-init schema accepts the rendered user-data with a real generated host key", async (t) => {
  const dir = await tmpdir();
  try {
    const host = generateEd25519KeyPair("cilium-lab-t-node-1");
    const file = path.join(dir, "user-data");
    await fs.writeFile(
      file,
      renderUserData({ ...BASE, hostKey: host, authorizedKeys: [USER_KEY, EXTRA_KEY], packages: ["iperf3"] }),
    );
    const r = await tool("cloud-init", ["schema", "--config-file", file], CLOUD_INIT_HINT);
    t.is(r.code, 0, `cloud-init schema refused it:\n${r.stdout}\n${r.stderr}`);
    t.regex(r.stdout, /Valid cloud-config/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("cloud-init schema is a real check: it refuses user-data with a wrong type", async (t) => {
  const dir = await tmpdir();
  try {
    const file = path.join(dir, "user-data");
    await fs.writeFile(
      file,
      renderUserData(BASE).replace("ssh_genkeytypes:\n  - ed25519", "ssh_genkeytypes:\n  - ed25519x"),
    );
    const r = await tool("cloud-init", ["schema", "--config-file", file], CLOUD_INIT_HINT);
    t.not(r.code, 0);
    t.regex(r.stdout + r.stderr, /ssh_genkeytypes\.0: 'ed25519x' is not one of/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("PyYAML (cloud-init's parser) reads the MAC, file modes and private key back unchanged", async (t) => {
  const dir = await tmpdir();
  try {
    const host = generateEd25519KeyPair("k");
    await fs.writeFile(path.join(dir, "user-data"), renderUserData({ ...BASE, hostKey: host }));
    await fs.writeFile(path.join(dir, "network-config"), renderNetworkConfig({ mac: "52:54:00:12:34:01" }));
    const script = [
      "import json, sys, yaml",
      `u = yaml.safe_load(open(sys.argv[1]))`,
      `n = yaml.safe_load(open(sys.argv[2]))`,
      "print(json.dumps({'mac': n['ethernets']['eth0']['match']['macaddress'], 'perm': u['write_files'][0]['permissions'],",
      "  'priv': u['ssh_keys']['ed25519_private'], 'pub': u['ssh_keys']['ed25519_public'], 'dhcp4': n['ethernets']['eth0']['dhcp4']}))",
    ].join("\n");
    const r = await tool(
      "python3",
      ["-c", script, path.join(dir, "user-data"), path.join(dir, "network-config")],
      "install Debian packages python3 python3-yaml (cloud-init depends on both)",
    );
    t.is(r.code, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout), {
      mac: "52:54:00:12:34:01",
      perm: "0644",
      priv: host.privateKey,
      pub: host.publicKey,
      dhcp4: true,
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

const netConvertTable: { distro: string; kind: string; file: string; static?: true; expected: RegExp[] }[] = [
  {
    distro: "debian",
    kind: "eni",
    file: "etc/network/interfaces.d/50-cloud-init",
    expected: [/^auto eth0$/m, /^iface eth0 inet dhcp$/m],
  },
  {
    distro: "debian",
    kind: "eni",
    file: "etc/udev/rules.d/70-persistent-net.rules",
    expected: [/ATTR\{address\}=="52:54:00:12:34:01", NAME="eth0"/],
  },
  {
    distro: "ubuntu",
    kind: "netplan",
    file: "etc/netplan/50-cloud-init.yaml",
    expected: [/dhcp4: true/, /macaddress: '52:54:00:12:34:01'/, /set-name: eth0/],
  },
  {
    distro: "debian",
    kind: "eni",
    file: "etc/network/interfaces.d/50-cloud-init",
    static: true,
    expected: [
      /^iface eth0 inet static\n {4}address 192\.0\.2\.12\/24\n {4}dns-nameservers 192\.0\.2\.1 9\.9\.9\.9$/m,
      /^ {4}gateway 192\.0\.2\.1$/m,
    ],
  },
  {
    distro: "ubuntu",
    kind: "netplan",
    file: "etc/netplan/50-cloud-init.yaml",
    static: true,
    expected: [/dhcp4: false/, /addresses:\n {12}- 192\.0\.2\.12\/24\n/, /gateway4: 192\.0\.2\.1\n/],
  },
  {
    distro: "debian",
    kind: "networkd",
    file: "etc/systemd/network/10-cloud-init-eth0.network",
    static: true,
    expected: [/^Address=192\.0\.2\.12\/24$/m, /^DNS=192\.0\.2\.1 9\.9\.9\.9$/m, /^\[Route\]\nGateway=192\.0\.2\.1$/m],
  },
];

for (const row of netConvertTable) {
  const what = row.static ? "the static network-config" : "the network-config";
  test(`cloud-init turns ${what} into ${row.kind} for ${row.distro}: ${row.file}`, async (t) => {
    const dir = await tmpdir();
    try {
      const input = path.join(dir, "network-config");
      const config = row.static ? { mac: "52:54:00:12:34:02", static: STATIC } : { mac: "52:54:00:12:34:01" };
      await fs.writeFile(input, renderNetworkConfig(config));
      const out = path.join(dir, "out");
      const r = await tool(
        "cloud-init",
        ["devel", "net-convert", "-p", input, "-k", "yaml", "-d", out, "-D", row.distro, "-O", row.kind],
        CLOUD_INIT_HINT,
      );
      t.is(r.code, 0, r.stderr);
      const text = await fs.readFile(path.join(out, row.file), "utf8");
      for (const re of row.expected) {
        t.regex(text, re);
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}
