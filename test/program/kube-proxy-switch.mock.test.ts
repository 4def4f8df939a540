/**
 * `pulumi config set kubeProxyReplacement true` on a running lab, the whole program (infra/index.ts)
 * under mocks: every node's k3s install must change — agents too, although their k3s command has
 * no kube-proxy flag (they take the server's setting when they start) — as an in-place update (its
 * `create` text), never a replacement (`triggers`), and nothing of the VMs or the other k3s steps.
 */
import test from "ava";

import { changedInputs, key, record, type Registration } from "./recorded";

const off = record("vxlan");
const on = record("vxlan", "kubeProxyReplacement=true");

test("switching kubeProxyReplacement on updates the create line of every node's k3s install, server and agents, and no other k3s or node resource", (t) => {
  t.deepEqual(on.map(key).sort(), off.map(key).sort(), "the same resources exist in both");
  const changed = changedInputs(off, on);
  const k3sAndNodes = Object.fromEntries(Object.entries(changed).filter(([k]) => !/ (verify-|cilium-release)/.test(k)));
  t.deepEqual(k3sAndNodes, {
    "command:remote:Command k3s-install-node-1": ["create"],
    "command:remote:Command k3s-install-node-2": ["create"],
    "command:remote:Command k3s-install-node-3": ["create"],
  });
  for (const node of ["node-1", "node-2", "node-3"]) {
    const create = (rs: readonly Registration[]) =>
      String(rs.find((r) => r.name === `k3s-install-${node}`)?.inputs.create);
    t.regex(
      create(off),
      new RegExp(
        `^sudo bash /var/lib/cilium-lab/install-k3s\\.sh --node ${node} --role (server|agent) --source online --version v1\\.26\\.6\\+k3s1 --kube-proxy-replacement false --args-sha256 [0-9a-f]{12}$`,
      ),
    );
    t.is(
      create(on).replace(/--kube-proxy-replacement true --args-sha256 [0-9a-f]{12}$/, ""),
      create(off).replace(/--kube-proxy-replacement false --args-sha256 [0-9a-f]{12}$/, ""),
    );
  }
});
