/**
 * kube-proxy's leftovers under kube-proxy replacement: a node that still declares kube-proxy's
 * KUBE-SERVICES chain in any iptables save command is refused, with where the chain is and the fix.
 *
 * Fixtures made with the real iptables 1.8.9 (nf_tables) of Debian 12 in a throwaway network
 * namespace: the chains kube-proxy (iptables mode) and the kubelet declare on a k8s 1.26 node, one
 * Service, and a Cilium chain (test/verify/fixtures/iptables-save-kube-proxy.txt), then the
 * `iptables` field the real scripts/node/collect-evidence.sh printed there, before and after
 * install-k3s.sh's removal (`iptables-save | grep -v KUBE- | iptables-restore`).
 */
import test from "ava";

import { datapathOutput, verdictFailureMessage, type RequestedDatapath } from "../../infra/verify/evidence";
import { cm113, cm117, fixture, lab, req, type Mode } from "./lab-evidence";
import { agentStatus113, agentStatus116, ciliumNodeDoc, type LabNode } from "./support";

/** A node document of `mode` with the collector's `iptables` field replaced. */
function withIptables(n: LabNode, mode: Mode, iptables: unknown): string {
  const doc = JSON.parse(ciliumNodeDoc(n, mode)) as Record<string, unknown>;
  return JSON.stringify({ ...doc, iptables });
}

test("under kube-proxy replacement each node must be free of KUBE-SERVICES in every iptables save command; the refusal names the node, where the chain is and the fix", (t) => {
  const leftovers = JSON.parse(fixture("collector-iptables-kube-proxy.json")) as unknown;
  const clean = JSON.parse(fixture("collector-iptables-cilium-only.json")) as unknown;
  const kpr = { "kube-proxy-replacement": "strict" };
  const cm = { ...cm113("vxlan"), ...kpr };
  const node2 =
    "node-2: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found KUBE-SERVICES in iptables-save filter, iptables-save nat, ip6tables-save nat";
  const cases: [string, RequestedDatapath, (n: LabNode) => unknown, string[]][] = [
    ["no node has kube-proxy's chain", req("vxlan", "1.13.4", kpr), () => clean, []],
    [
      "node-2 kept kube-proxy's rules",
      req("vxlan", "1.13.4", kpr),
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
    [
      "a node without iptables cannot prove it",
      req("vxlan", "1.13.4", kpr),
      (n) => (n.name === "node-3" ? [] : clean),
      [
        "node-3: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found not read: no iptables-save on the node",
      ],
    ],
    [
      "a failing save command is named",
      req("vxlan", "1.13.4", kpr),
      (n) =>
        n.name === "node-1"
          ? [
              {
                command: "/usr/sbin/iptables-save",
                exitCode: 4,
                output:
                  "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
              },
            ]
          : clean,
      [
        "node-1: kube-proxy's iptables rules: expected no KUBE-SERVICES chain (Cilium replaces kube-proxy), found not read: no iptables-save on the node (iptables-save exited 4: iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root))",
      ],
    ],
    // with kube-proxy running, its chains are expected: not checked.
    [
      "kube-proxy replacement off",
      req("vxlan", "1.13.4", { "kube-proxy-replacement": "disabled" }),
      () => leftovers,
      [],
    ],
    [
      "1.14+ says true",
      req("vxlan", "1.14.0", { "kube-proxy-replacement": "true" }),
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
    [
      "an explicit request wins over the ConfigMap",
      { ...req("vxlan", "1.13.4", { "kube-proxy-replacement": "disabled" }), kubeProxyReplacement: true },
      (n) => (n.name === "node-2" ? leftovers : clean),
      [node2],
    ],
  ];
  for (const [name, request, iptables, reasons] of cases) {
    const version = request.ciliumVersion;
    const rendered = request.configMap ?? {};
    const evidence = lab(
      version === "1.13.4" ? { ...cm113("vxlan"), ...rendered } : { ...cm117("vxlan"), ...rendered },
      "vxlan",
      {
        version,
        agent: (n) => (version === "1.13.4" ? agentStatus113(n, version) : agentStatus116(n, "vxlan", version)),
        doc: (n) => withIptables(n, "vxlan", iptables(n)),
      },
    );
    t.deepEqual(datapathOutput(request, evidence).reasons, reasons, name);
  }

  const refused = datapathOutput(
    req("vxlan", "1.13.4", kpr),
    lab(cm, "vxlan", { doc: (n) => withIptables(n, "vxlan", n.name === "node-2" ? leftovers : clean) }),
  );
  t.is(refused.verdict, "refused");
  t.deepEqual(
    refused.evidence.nodes.map((n) => [n.node, n.iptables.kubeProxyChains]),
    [
      ["node-1", []],
      ["node-2", ["iptables-save filter", "iptables-save nat", "ip6tables-save nat"]],
      ["node-3", []],
    ],
  );
  t.deepEqual(refused.evidence.nodes[0]?.iptables.read, [
    "iptables-save",
    "ip6tables-save",
    "iptables-legacy-save",
    "ip6tables-legacy-save",
  ]);
  const message = verdictFailureMessage(refused).split("\n");
  t.true(
    message.some(
      (l) =>
        l.startsWith("- node-2 (192.168.150.12): ") &&
        l.endsWith("; kube-proxy's KUBE-SERVICES in iptables-save filter, iptables-save nat, ip6tables-save nat"),
    ),
    "the evidence line of node-2 shows where the chain is",
  );
  t.false(message.some((l) => l.startsWith("- node-1 (") && l.includes("kube-proxy's")));
  t.true(
    message.includes(
      "What to do: kube-proxy is still in the datapath of node-2 although Cilium replaces it: on each, restart k3s (`sudo systemctl restart k3s-agent`; `k3s` on the server) " +
        "so it takes `--disable-kube-proxy` from the server, remove kube-proxy's rules (`sudo sh -c 'iptables-save | grep -v KUBE- | iptables-restore'`, " +
        "the same with ip6tables-save/ip6tables-restore), then `pulumi up` again.",
    ),
  );
});
