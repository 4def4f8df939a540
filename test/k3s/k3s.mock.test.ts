/**
 * The K3sCluster component under Pulumi mocks, for kubeProxyReplacement on/off × online/air-gap:
 * the exact resources, the exact command line of every node per role, stdin and logging, the order
 * (wait → prepare → copies → install; server before agents; every install before the kubeconfig
 * read, and so before anything Kubernetes), `deletedWith` on the node's VM, and the secrets (token,
 * kubeconfig, private key) never outside a secret.
 *
 * Mocks prove what the program asks the engine for, not what the engine or the nodes do with it.
 * No k3s binary can be obtained on our machines, so these mocks are the only coverage of a
 * successful install; the scripts' failure paths run for real in node-scripts.vm.test.ts.
 */
import test from "ava";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type * as K3sModule from "../../infra/k3s/k3s";
import { KERNEL_MODULES, SYSCTLS } from "../../infra/nodes/cloud-init";
import { expectedK3sResources } from "./support/expected";
import { RecordingMonitor, installMonitor, withoutSecrets, type Registration } from "./support/recording-monitor";

const TOKEN = "K3sToken-9d8c7b6a5f4e3d2c1b0a";
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZSBrZXk=\n-----END OPENSSH PRIVATE KEY-----\n";
const SCRIPTS = resolve(__dirname, "../../scripts");
const NODES = [
  { name: "node-1", role: "server", ip: "192.168.150.11" },
  { name: "node-2", role: "agent", ip: "192.168.150.12" },
  { name: "node-3", role: "agent", ip: "192.168.150.13" },
] as const;
const K3S_YAML =
  "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EtREFUQQ==\n    server: https://127.0.0.1:6443\n  name: default\n" +
  "contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {}\n" +
  "users:\n- name: default\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

const monitor = new RecordingMonitor({
  newResource: (a) => {
    const inputs = a.inputs as Record<string, unknown>;
    // the server's k3s.yaml, as read-kubeconfig.sh prints it; other commands print nothing on stdout.
    const stdout = a.name.endsWith("-kubeconfig") ? K3S_YAML : "";
    return {
      id: `${a.name}-id`,
      state: a.type === "command:remote:Command" ? { ...inputs, stdout, stderr: "" } : inputs,
    };
  },
  call: (a) => a.inputs as Record<string, unknown>,
});

let k3s: typeof K3sModule;
test.before(async () => {
  await installMonitor(monitor, "vxlan");
  k3s = await import("../../infra/k3s/k3s");
});

function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** A stand-in for another layer's resource (a node's VM). */
class StandIn extends pulumi.CustomResource {
  constructor(type: string, name: string) {
    super(type, name, {});
  }
}

/** An air-gap directory of well-shaped fake files (no real k3s can be obtained here). */
function fakeAirgapDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cl-k3s-airgap-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const elf = Buffer.alloc(64);
  elf.write("\x7fELF", 0, "latin1");
  elf[4] = 2;
  elf[5] = 1;
  elf.writeUInt16LE(2, 16);
  elf.writeUInt16LE(0x3e, 18);
  writeFileSync(join(dir, "k3s"), elf);
  writeFileSync(join(dir, "install.sh"), "#!/bin/sh\n# INSTALL_K3S_SKIP_DOWNLOAD\n");
  writeFileSync(join(dir, "k3s-airgap-images-amd64.tar.zst"), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  writeFileSync(join(dir, "iperf3.tar.zst"), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  return dir;
}

interface Built {
  readonly cluster: K3sModule.K3sCluster;
  /** This build's registrations, by name. */
  readonly byName: Map<string, Registration>;
  readonly registrations: Registration[];
  readonly domainUrn: (node: string) => string;
}

/** Builds one K3sCluster named `name` on its own stand-in VMs and waits until it is fully registered. */
async function build(name: string, overrides: Partial<K3sModule.K3sClusterArgs> = {}): Promise<Built> {
  const domains = Object.fromEntries(
    NODES.map((n) => [n.name, new StandIn("lab:test:Domain", `${name}-vm-${n.name}`)]),
  );
  const connections = Object.fromEntries(
    NODES.map((n) => [
      n.name,
      {
        host: n.ip,
        user: "lab",
        privateKey: pulumi.secret(PRIVATE_KEY),
        hostKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${n.name} root@${n.name}`,
      },
    ]),
  );
  const cluster = new k3s.K3sCluster(name, {
    nodes: NODES,
    connections,
    domains,
    token: pulumi.secret(TOKEN),
    k3sVersion: "v1.26.6+k3s1",
    podCidr: "10.0.0.0/16",
    kubeProxyReplacement: false,
    airgapDir: "",
    bootTimeoutSeconds: 300,
    ...overrides,
  });
  const urn = await promiseOf(cluster.urn);
  await monitor.outputsRegistered(urn);
  const registrations = monitor.registrations.filter(
    (r) => r.type !== "lab:test:Domain" && (r.name === name || r.name.startsWith(`${name}-`)),
  );
  const byName = new Map(registrations.map((r) => [r.name, r]));
  return {
    cluster,
    byName,
    registrations,
    domainUrn: (node) => `urn:pulumi:vxlan::cilium-lab::lab:test:Domain::${name}-vm-${node}`,
  };
}

function reg(b: Built, name: string): Registration {
  const r = b.byName.get(name);
  if (!r) {
    throw new Error(`no registration ${name}; have ${[...b.byName.keys()].join(", ")}`);
  }
  return r;
}

/**
 * The install step's `create` and `stdin`, written out independently of infra/k3s/args.ts: a short
 * command line (node, role, source, version, kube-proxy replacement and the hash of every argument)
 * and, on stdin, the token and then the other arguments, one per line.
 */
function expectedInstall(
  scenario: string,
  node: (typeof NODES)[number],
  kpr: boolean,
  source: "online" | "airgap",
): { create: string; stdin: string } {
  const sha = k3s.nodeScript("install-k3s.sh").sha256;
  const visible = [
    "--node",
    node.name,
    "--role",
    node.role,
    "--source",
    source,
    "--version",
    "v1.26.6+k3s1",
    "--kube-proxy-replacement",
    String(kpr),
  ];
  const rest = [
    ...(source === "online"
      ? ["--installer-url", "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh"]
      : []),
    ...["--token-file", "/etc/rancher/k3s/cilium-lab-token", "--staging-dir", "/var/lib/cilium-lab"],
    ...(node.role === "agent" ? ["--server-url", "https://192.168.150.11:6443"] : []),
    ...[
      "--vm-id",
      `${scenario}-vm-${node.name}-id`,
      "--script-sha256",
      sha,
      "--timeout",
      "900",
      "--env",
      "INSTALL_K3S_VERSION=v1.26.6+k3s1",
    ],
    ...(source === "airgap" ? ["--env", "INSTALL_K3S_SKIP_DOWNLOAD=true"] : []),
    ...["--env", "K3S_TOKEN_FILE=/etc/rancher/k3s/cilium-lab-token"],
    ...(node.role === "agent" ? ["--env", "K3S_URL=https://192.168.150.11:6443"] : []),
    ...["--", node.role, `--node-name=${node.name}`, `--node-ip=${node.ip}`],
    ...(node.role === "server"
      ? [
          "--tls-san=192.168.150.11",
          "--flannel-backend=none",
          "--disable-network-policy",
          "--cluster-cidr=10.0.0.0/16",
          "--service-cidr=10.43.0.0/16",
          "--write-kubeconfig-mode=0600",
          ...(kpr ? ["--disable-kube-proxy"] : []),
        ]
      : []),
  ];
  const hash = createHash("sha256")
    .update([...visible, ...rest].map((a) => `${a}\n`).join(""))
    .digest("hex")
    .slice(0, 12);
  return {
    create: `sudo bash /var/lib/cilium-lab/install-k3s.sh ${visible.join(" ")} --args-sha256 ${hash}`,
    stdin: [TOKEN, ...rest].map((l) => `${l}\n`).join(""),
  };
}

const scenarios = [
  { name: "online", kpr: false, source: "online" },
  { name: "online-kpr", kpr: true, source: "online" },
  { name: "airgap", kpr: false, source: "airgap" },
  { name: "airgap-kpr", kpr: true, source: "airgap" },
] as const;

for (const s of scenarios) {
  test.serial(
    `${s.source} install, kubeProxyReplacement ${s.kpr}: exactly these resources and command lines per node and role (a successful k3s install is covered by these mocks only: no k3s binary can be obtained on our machines)`,
    async (t) => {
      const airgapDir = s.source === "airgap" ? fakeAirgapDir(t) : "";
      const b = await build(s.name, { kubeProxyReplacement: s.kpr, airgapDir });
      const images =
        s.source === "airgap"
          ? [join(airgapDir, "k3s-airgap-images-amd64.tar.zst"), join(airgapDir, "iperf3.tar.zst")]
          : undefined;
      t.deepEqual(
        b.registrations.map((r) => `${r.type}::${r.name}`).sort(),
        expectedK3sResources(
          s.name,
          NODES.map((n) => n.name),
          images,
        )
          .map((r) => `${r.type}::${r.name}`)
          .sort(),
      );

      for (const node of NODES) {
        const wait = reg(b, `${s.name}-wait-${node.name}`);
        t.is(wait.inputs.create, `bash -s -- --node ${node.name} --timeout 300`);
        t.is(wait.inputs.stdin, k3s.nodeScript("wait-cloud-init.sh").text);
        t.is((wait.inputs.connection as { dialErrorLimit: number }).dialErrorLimit, 60);

        // online: the upstream probe, its URLs written out independently of infra/k3s/args.ts.
        const probe = b.byName.get(`${s.name}-probe-${node.name}`);
        if (s.source === "online") {
          t.is(
            probe?.inputs.create,
            `bash -s -- --node ${node.name} --connect-timeout 5 --max-time 10 ` +
              "--url k3s-installer=https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh " +
              "--url k3s-binary=https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s " +
              "--url registry-docker.io=https://registry-1.docker.io/v2/ --url registry-quay.io=https://quay.io/v2/",
          );
          t.is(probe?.inputs.stdin, k3s.nodeScript("probe-upstreams.sh").text);
          t.deepEqual(probe?.inputs.triggers, [`${s.name}-vm-${node.name}-id`]);
          t.is(probe?.inputs.logging, "stderr");
          t.is(probe?.inputs.addPreviousOutputInEnv, false);
          t.is(probe?.inputs.delete, undefined);
        } else {
          t.is(probe, undefined, "air-gap mode probes nothing");
        }

        const prepare = reg(b, `${s.name}-prepare-${node.name}`);
        t.is(
          prepare.inputs.create,
          `sudo bash -s -- --node ${node.name} --node-ip ${node.ip} --staging-dir /var/lib/cilium-lab ` +
            KERNEL_MODULES.map((m) => `--module ${m}`).join(" ") +
            " " +
            SYSCTLS.map(([k, v]) => `--sysctl ${k}=${v}`).join(" "),
        );
        t.is(prepare.inputs.stdin, k3s.nodeScript("prepare-node.sh").text);

        const copies: [string, string, string][] = [
          ["install-script", join(SCRIPTS, "install-k3s.sh"), "/var/lib/cilium-lab/install-k3s.sh"],
          ["uninstall-script", join(SCRIPTS, "uninstall-k3s.sh"), "/var/lib/cilium-lab/uninstall-k3s.sh"],
          ...(s.source === "airgap"
            ? ([
                ["airgap-k3s", join(airgapDir, "k3s"), "/var/lib/cilium-lab/airgap/k3s"],
                ["airgap-installer", join(airgapDir, "install.sh"), "/var/lib/cilium-lab/airgap/install.sh"],
                [
                  "airgap-image-k3s-airgap-images-amd64-tar-zst",
                  join(airgapDir, "k3s-airgap-images-amd64.tar.zst"),
                  "/var/lib/cilium-lab/airgap/images/k3s-airgap-images-amd64.tar.zst",
                ],
                [
                  "airgap-image-iperf3-tar-zst",
                  join(airgapDir, "iperf3.tar.zst"),
                  "/var/lib/cilium-lab/airgap/images/iperf3.tar.zst",
                ],
              ] as [string, string, string][])
            : []),
        ];
        for (const [what, source, remotePath] of copies) {
          const copy = reg(b, `${s.name}-${what}-${node.name}`);
          t.is(copy.inputs.remotePath, remotePath);
          t.true(copy.raw.source instanceof pulumi.asset.FileAsset, `${copy.name} copies a file`);
          t.is(await (copy.raw.source as pulumi.asset.FileAsset).path, source);
        }

        const install = reg(b, `${s.name}-install-${node.name}`);
        const expected = expectedInstall(s.name, node, s.kpr, s.source);
        t.is(install.inputs.create, expected.create, `${node.name} create`);
        t.true(
          (install.inputs.create as string).length < 200,
          "pulumi-command prints the create line in every failure: it stays short",
        );
        t.is(
          install.inputs.delete,
          `sudo bash /var/lib/cilium-lab/uninstall-k3s.sh --node ${node.name} --role ${node.role} --staging-dir /var/lib/cilium-lab --token-file /etc/rancher/k3s/cilium-lab-token`,
        );
        t.is(install.inputs.stdin, expected.stdin);
        t.is(
          install.inputs.triggers,
          undefined,
          "a trigger change would replace the install and run the old delete (uninstall) after the new install",
        );
        // a new VM (same address and host key) re-runs every step: its id replaces the steps
        // without a delete, and is part of the install's command line (an update).
        for (const r of [wait, prepare, ...copies.map(([what]) => reg(b, `${s.name}-${what}-${node.name}`))]) {
          t.deepEqual(r.inputs.triggers, [`${s.name}-vm-${node.name}-id`], `${r.name} triggers`);
        }
        for (const r of [wait, prepare, install]) {
          t.is(r.inputs.logging, "stderr");
          t.is(r.inputs.addPreviousOutputInEnv, false);
        }
      }
      const read = reg(b, `${s.name}-kubeconfig`);
      t.is(read.inputs.create, "sudo bash -s -- --node node-1 --timeout 180");
      t.is(read.inputs.stdin, k3s.nodeScript("read-kubeconfig.sh").text);
      t.is(read.inputs.logging, "none");
      t.deepEqual(read.inputs.triggers, [`${s.name}-vm-node-1-id`]);
      t.is(b.cluster.source, s.source);
    },
  );
}

test.serial(
  "each node runs wait → probe → prepare → copies → install; agents install after the server; the kubeconfig read after every install",
  async (t) => {
    const b = await build("order");
    const urn = (name: string): string => reg(b, name).urn;
    for (const node of NODES) {
      const n = node.name;
      // (every step also depends on the VM through its id: triggers or the install's command line.)
      const vm = b.domainUrn(n);
      const deps = (name: string): string[] => [...reg(b, name).dependencies].sort();
      t.deepEqual(deps(`order-wait-${n}`), [vm]);
      t.deepEqual(deps(`order-probe-${n}`), [urn(`order-wait-${n}`), vm].sort());
      t.deepEqual(deps(`order-prepare-${n}`), [urn(`order-wait-${n}`), urn(`order-probe-${n}`), vm].sort());
      for (const copy of ["install-script", "uninstall-script"]) {
        t.deepEqual(deps(`order-${copy}-${n}`), [urn(`order-prepare-${n}`), vm].sort());
      }
      t.deepEqual(
        deps(`order-install-${n}`),
        [
          urn(`order-prepare-${n}`),
          urn(`order-install-script-${n}`),
          urn(`order-uninstall-script-${n}`),
          ...(node.role === "agent" ? [urn("order-install-node-1")] : []),
          vm,
        ].sort(),
      );
    }
    t.deepEqual(
      [...reg(b, "order-kubeconfig").dependencies].sort(),
      [...NODES.map((n) => urn(`order-install-${n.name}`)), b.domainUrn("node-1")].sort(),
    );
    t.is(await promiseOf(b.cluster.ready.urn), urn("order-kubeconfig"));
  },
);

test.serial(
  "every command is deleted with its node's VM, so destroying the VMs skips the uninstall; all are children of the component",
  async (t) => {
    const b = await build("deleted");
    const componentUrn = reg(b, "deleted").urn;
    for (const r of b.registrations.filter((x) => x.type.startsWith("command:"))) {
      const node = r.name === "deleted-kubeconfig" ? "node-1" : (/-(node-\d+)$/.exec(r.name)?.[1] ?? "?");
      t.is(r.deletedWith, b.domainUrn(node), r.name);
      t.is(r.parent, componentUrn, r.name);
    }
  },
);

test.serial(
  "a Kubernetes provider built from the kubeconfig depends on the kubeconfig read, which runs after every install",
  async (t) => {
    const b = await build("k8s");
    const provider = new k8s.Provider("k8s-from-k3s", { kubeconfig: b.cluster.kubeconfig });
    await promiseOf(provider.urn);
    const registered = monitor.registrations.find((r) => r.name === "k8s-from-k3s");
    t.truthy(registered);
    t.true(registered?.dependencies.includes(reg(b, "k8s-kubeconfig").urn));
    t.deepEqual(withoutSecrets(registered?.raw.kubeconfig), "[secret]");
  },
);

test.serial(
  "the kubeconfig is a secret pointing at the server's lab address; the token is secret even when given in plain text, and appears in no input outside a secret",
  async (t) => {
    const b = await build("secrets", { token: TOKEN });
    t.true(await pulumi.isSecret(b.cluster.kubeconfig));
    t.is(
      await promiseOf(b.cluster.kubeconfig),
      K3S_YAML.replace("https://127.0.0.1:6443", "https://192.168.150.11:6443"),
    );
    t.is(b.cluster.serverIp, "192.168.150.11");
    t.is(b.cluster.serverUrl, "https://192.168.150.11:6443");
    for (const install of b.cluster.installs) {
      t.true(await pulumi.isSecret(install.stdin));
    }
    t.deepEqual(reg(b, "secrets-kubeconfig").additionalSecretOutputs.includes("stdout"), true);
    for (const node of NODES) {
      const install = reg(b, `secrets-install-${node.name}`);
      t.deepEqual(withoutSecrets(install.raw.stdin), "[secret]");
      t.true(install.additionalSecretOutputs.includes("stdin"));
    }
    for (const r of b.registrations) {
      const plain = JSON.stringify(withoutSecrets(r.raw));
      t.false(plain.includes(TOKEN), `${r.name} carries the token outside a secret`);
      t.false(plain.includes("OPENSSH PRIVATE KEY"), `${r.name} carries the private key outside a secret`);
      if (r.type === "command:remote:Command" || r.type === "command:remote:CopyToRemote") {
        const connection = r.inputs.connection as { hostKey?: string; user?: string };
        t.regex(connection.hostKey ?? "", /^ssh-ed25519 /, `${r.name} pins the host key`);
        t.is(withoutSecrets(r.raw.connection), "[secret]");
      }
    }
  },
);

test.serial("a wrong air-gap directory fails the program before any SSH step, with the air-gap error", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cl-k3s-airgap-bad-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "k3s"), "not a binary\n");
  const { AirgapDirError } = await import("../../infra/k3s/airgap");
  const err = await t.throwsAsync(() => build("bad-airgap", { airgapDir: dir }), { instanceOf: AirgapDirError });
  t.regex(
    err?.message ?? "",
    /^cilium-lab:k3sAirgapDir .* cannot be used to install k3s v1\.26\.6\+k3s1 \(3 problems\):\n- k3s: not an ELF executable/,
  );
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(
    monitor.registrations
      .filter((r) => r.name.startsWith("bad-airgap-") && r.type.startsWith("command:"))
      .map((r) => r.name),
    [],
  );
});

test.serial("nodes without a server first, a connection or a VM are refused with every problem", (t) => {
  const err = t.throws(
    () =>
      new k3s.K3sCluster("bad-nodes", {
        nodes: [
          { name: "node-2", role: "agent", ip: "192.168.150.12" },
          { name: "node-2", role: "agent", ip: "192.168.150.12" },
        ],
        connections: { "node-2": { host: "192.168.150.12" } },
        domains: {},
        token: TOKEN,
        k3sVersion: "v1.26.6+k3s1",
        podCidr: "10.0.0.0/16",
        kubeProxyReplacement: false,
        airgapDir: "",
        bootTimeoutSeconds: 300,
      }),
    { instanceOf: k3s.K3sArgsError },
  );
  t.is(
    err?.message,
    "the k3s layer got nodes it cannot install:\n" +
      "- exactly one server, first in the list, is required (servers: none; first: node-2)\n" +
      "- duplicate node name node-2\n" +
      "- duplicate node ip 192.168.150.12\n" +
      "- no domain (VM) for node-2",
  );
});

test.serial(
  "online, every node probes the upstreams right after cloud-init and before prepare; an iperf3Image on another registry adds that registry's /v2/ to the probe",
  async (t) => {
    const b = await build("probe-mirror", {
      iperf3Image: "registry.lab.example:5000/perf/iperf3@sha256:" + "a".repeat(64),
    });
    for (const node of NODES) {
      const probe = reg(b, `probe-mirror-probe-${node.name}`);
      t.true(
        String(probe.inputs.create).endsWith(
          "--url registry-docker.io=https://registry-1.docker.io/v2/ --url registry-quay.io=https://quay.io/v2/ " +
            "--url registry-registry.lab.example:5000=https://registry.lab.example:5000/v2/",
        ),
        String(probe.inputs.create),
      );
      t.deepEqual(
        [...probe.dependencies].sort(),
        [reg(b, `probe-mirror-wait-${node.name}`).urn, b.domainUrn(node.name)].sort(),
      );
      t.true(reg(b, `probe-mirror-prepare-${node.name}`).dependencies.includes(probe.urn));
      t.is(probe.deletedWith, b.domainUrn(node.name));
    }
  },
);

test.serial("air-gap, no node probes the internet: prepare follows the wait directly", async (t) => {
  const b = await build("probe-airgap", { airgapDir: fakeAirgapDir(t) });
  t.deepEqual(
    b.registrations.filter((r) => r.name.includes("-probe-")).map((r) => r.name),
    [],
  );
  for (const node of NODES) {
    t.deepEqual(
      [...reg(b, `probe-airgap-prepare-${node.name}`).dependencies].sort(),
      [reg(b, `probe-airgap-wait-${node.name}`).urn, b.domainUrn(node.name)].sort(),
    );
  }
});
