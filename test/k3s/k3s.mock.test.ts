/**
 * The K3sCluster component under Pulumi mocks, for kubeProxyReplacement on/off × online/air-gap:
 * the exact resources, the exact command line of every node per role, stdin and logging, and the
 * triggers that tie every step to its VM. The order, `deletedWith`, the secrets and the upstream
 * probe's place are in k3s-wiring.mock.test.ts.
 *
 * Mocks prove what the program asks the engine for, not what the engine or the nodes do with it.
 * No k3s binary can be obtained on our machines, so these mocks are the only coverage of a
 * successful install; the scripts' failure paths run for real in node-scripts.vm.test.ts.
 */
import test from "ava";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";

import { nodeScript } from "../../infra/node-scripts";
import { KERNEL_MODULES, SYSCTLS } from "../../infra/nodes/cloud-init";
import { expectedInstall } from "./expected-install";
import { NODES, TOKEN, build, fakeAirgapDir, loadK3s, reg } from "./k3s-mock-program";
import { expectedK3sResources } from "./support/expected";

test.before(async () => {
  await loadK3s();
});

/** The files copied to every node: [resource name part, host path, node path]. */
function expectedCopies(source: "online" | "airgap", airgapDir: string): [string, string, string][] {
  return [
    ["install-script", nodeScript("install-k3s.sh").path, "/var/lib/cilium-lab/install-k3s.sh"],
    ["uninstall-script", nodeScript("uninstall-k3s.sh").path, "/var/lib/cilium-lab/uninstall-k3s.sh"],
    ...(source === "airgap"
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
      const b = await build(s.name, { kubeProxyReplacement: s.kpr, k3sAirgapDir: airgapDir });
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
        t.is(wait.inputs.stdin, nodeScript("wait-cloud-init.sh").text);
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
          t.is(probe?.inputs.stdin, nodeScript("probe-upstreams.sh").text);
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
        t.is(prepare.inputs.stdin, nodeScript("prepare-node.sh").text);

        const copies = expectedCopies(s.source, airgapDir);
        for (const [what, source, remotePath] of copies) {
          const copy = reg(b, `${s.name}-${what}-${node.name}`);
          t.is(copy.inputs.remotePath, remotePath);
          t.true(copy.raw.source instanceof pulumi.asset.FileAsset, `${copy.name} copies a file`);
          t.is(await (copy.raw.source as pulumi.asset.FileAsset).path, source);
        }

        const install = reg(b, `${s.name}-install-${node.name}`);
        const expected = expectedInstall(
          {
            node,
            kpr: s.kpr,
            source: s.source,
            vmId: `${s.name}-vm-${node.name}-id`,
            scriptSha256: nodeScript("install-k3s.sh").sha256,
          },
          TOKEN,
        );
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
      t.is(read.inputs.stdin, nodeScript("read-kubeconfig.sh").text);
      t.is(read.inputs.logging, "none");
      t.deepEqual(read.inputs.triggers, [`${s.name}-vm-node-1-id`]);
      t.is(b.cluster.source, s.source);
    },
  );
}
