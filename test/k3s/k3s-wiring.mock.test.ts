/**
 * The K3sCluster component under Pulumi mocks, its wiring: the order (wait → probe → prepare →
 * copies → install; server before agents; every install before the kubeconfig read, and so before
 * anything Kubernetes), `deletedWith` on the node's VM, the secrets (token, kubeconfig, private key)
 * never outside a secret, the air-gap refusal before any SSH step, and the upstream probe's place.
 * The exact command lines are in k3s.mock.test.ts.
 */
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { promiseOf, withoutSecrets } from "../support/pulumi-mocks";
import { K3S_YAML, NODES, TOKEN, build, fakeAirgapDir, loadK3s, monitor, reg } from "./k3s-mock-program";

test.before(async () => {
  await loadK3s();
});

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
    const b = await build("secrets", {}, TOKEN);
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
  const err = await t.throwsAsync(() => build("bad-airgap", { k3sAirgapDir: dir }), { instanceOf: AirgapDirError });
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
  const b = await build("probe-airgap", { k3sAirgapDir: fakeAirgapDir(t) });
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
