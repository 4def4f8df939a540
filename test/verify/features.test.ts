/**
 * What the agents say runs, feature by feature: every status line of the article's list parsed in
 * each version's spelling (1.13 `Host Routing:`, 1.16+ `Routing: … Host:`; fixtures in
 * test/verify/fixtures/agent-status-*.txt, each citing the cilium/cilium client.go format strings or
 * the public capture it is built from), normalised to the prediction's vocabulary.
 */
import test from "ava";

import * as ev from "../../infra/verify/evidence";
import { agentStatusFixture } from "./lab-evidence";

/** The parsed status of a fixture, with its five agent-side features normalised. */
function observed(name: string, version: string) {
  const cli = version.startsWith("1.13") ? "cilium" : "cilium-dbg";
  const a = ev.parseAgentStatus({
    pod: "cilium-b1",
    node: "node-2",
    command: `${cli} status`,
    exitCode: 0,
    output: agentStatusFixture(name),
  });
  const obs = ev.agentObservations(a, version);
  const states = Object.entries(obs)
    .map(([k, o]) => `${k}=${o.observed ?? "-"}`)
    .join(" ");
  return { a, states, obs };
}

test("1.13 status lines: the article's defaults and the switched datapath, each line read exactly", (t) => {
  const def = observed("1.13.4-article", "1.13.4");
  t.like(def.a, {
    ok: true,
    version: "1.13.4",
    routing: null,
    kubeProxyReplacement: "Disabled",
    ipv4BigTcp: null,
    ipv6BigTcp: "Disabled",
    bandwidthManager: "Disabled",
    hostRouting: "Legacy",
    masquerading: "IPTables [IPv4: Enabled, IPv6: Disabled]",
  });
  t.is(
    def.states,
    "kubeProxyReplacement=disabled ipv6BigTcp=disabled ipv4BigTcp=- bandwidthManager=disabled hostRouting=legacy masquerading=iptables",
  );
  t.is(def.obs.hostRouting.source, "cilium status: Host Routing:");

  const bpf = observed("1.13.4-bpf", "1.13.4");
  t.like(bpf.a, {
    kubeProxyReplacement: "Strict [enp1s0 192.168.150.12 (Direct Routing)]",
    bandwidthManager: "EDT with BPF [BBR] [enp1s0]",
    hostRouting: "BPF",
    masquerading: "BPF [enp1s0] 10.0.0.0/22 [IPv4: Enabled, IPv6: Disabled]",
  });
  t.is(
    bpf.states,
    "kubeProxyReplacement=enabled ipv6BigTcp=disabled ipv4BigTcp=- bandwidthManager=edt+bbr hostRouting=bpf masquerading=bpf",
  );
});

test("1.16 and 1.20 status lines: host routing from the Routing: line, IPv4 BIG TCP printed", (t) => {
  for (const version of ["1.16.19", "1.20.0"]) {
    const def = observed(`${version}-article`, version);
    t.like(def.a, {
      ok: true,
      version,
      hostRouting: null,
      routing: { network: "Tunnel", protocol: "vxlan", host: "Legacy", line: "Network: Tunnel [vxlan] Host: Legacy" },
      kubeProxyReplacement: "False",
      ipv4BigTcp: "Disabled",
      ipv6BigTcp: "Disabled",
      bandwidthManager: "Disabled",
      masquerading: "IPTables [IPv4: Enabled, IPv6: Disabled]",
    });
    t.is(
      def.states,
      "kubeProxyReplacement=disabled ipv6BigTcp=disabled ipv4BigTcp=disabled bandwidthManager=disabled hostRouting=legacy masquerading=iptables",
      version,
    );
    t.is(def.obs.hostRouting.source, "cilium-dbg status: Routing: … Host:");
    t.is(def.obs.hostRouting.says, "Legacy");
  }
  const b16 = observed("1.16.19-bpf", "1.16.19");
  t.like(b16.a, {
    routing: { network: "Native", protocol: null, host: "BPF", line: "Network: Native Host: BPF" },
    kubeProxyReplacement: "True [enp1s0 192.168.150.12 fe80::5054:ff:fe12:3402 (Direct Routing)]",
    ipv4BigTcp: "Enabled [196608]",
    bandwidthManager: "EDT with BPF [CUBIC] [enp1s0]",
  });
  t.is(
    b16.states,
    "kubeProxyReplacement=enabled ipv6BigTcp=disabled ipv4BigTcp=enabled bandwidthManager=edt hostRouting=bpf masquerading=bpf",
  );
  const b20 = observed("1.20.0-bpf", "1.20.0");
  t.is(
    b20.states,
    "kubeProxyReplacement=enabled ipv6BigTcp=disabled ipv4BigTcp=disabled bandwidthManager=edt+bbr hostRouting=bpf masquerading=bpf",
  );
});

test("every spelling of each feature line maps to the prediction's vocabulary", (t) => {
  const bandwidth = (says: string) => {
    const b = ev.bandwidthManagerState(says);
    return `${b.state} (congestion control ${b.congestionControl ?? "not printed"})`;
  };
  const table: [string, (says: string) => unknown, [string, string][]][] = [
    [
      "KubeProxyReplacement",
      ev.kubeProxyReplacementState,
      [
        ["Disabled", "disabled"],
        ["False", "disabled"],
        ["Strict [eth0 10.9.0.6]", "enabled"],
        ["True [ens192 192.168.221.125 (Direct Routing)]", "enabled"],
        ["Partial", "partial"],
      ],
    ],
    [
      "BIG TCP",
      ev.bigTcpState,
      [
        ["Disabled", "disabled"],
        ["Enabled [65536]", "enabled"],
        ["Enabled [65536, 196608]", "enabled"],
      ],
    ],
    [
      "BandwidthManager",
      bandwidth,
      [
        ["Disabled", "disabled (congestion control not printed)"],
        // 1.10.0-rc2, https://github.com/cilium/cilium/issues/16280: "BandwidthManager:       EDT with BPF   [ens192]"
        ["EDT with BPF [ens192]", "edt (congestion control not printed)"],
        ["EDT with BPF [CUBIC] [eth0, eth1]", "edt (congestion control CUBIC)"],
        ["EDT with BPF [BBR] [eth0]", "edt+bbr (congestion control BBR)"],
        ["EDT with BPF [CUBIC] []", "edt (congestion control CUBIC)"],
      ],
    ],
    [
      "Host Routing",
      ev.hostRoutingState,
      [
        ["Legacy", "legacy"],
        ["BPF", "bpf"],
      ],
    ],
    [
      "Masquerading",
      ev.masqueradingState,
      [
        ["IPTables [IPv4: Enabled, IPv6: Disabled]", "iptables"],
        ["BPF [ens192] 10.0.1.0/24 [IPv4: Enabled, IPv6: Disabled]", "bpf"],
        ["BPF (ip-masq-agent) [eth0] 10.0.0.0/8 [IPv4: Enabled, IPv6: Disabled]", "bpf"],
        ["Disabled", "disabled"],
      ],
    ],
  ];
  for (const [label, normalise, rows] of table) {
    for (const [says, want] of rows) {
      t.is(normalise(says), want, `${label}: ${says}`);
    }
  }
});

test("an agent printing the bandwidth manager without its congestion control agrees with edt and edt+bbr", (t) => {
  const old = ev.parseAgentStatus({
    pod: "p",
    node: "node-2",
    command: "cilium status",
    exitCode: 0,
    output: agentStatusFixture("1.13.4-bpf").replace("EDT with BPF [BBR] [enp1s0]", "EDT with BPF   [enp1s0]"),
  });
  const bw = ev.agentObservations(old, "1.13.4").bandwidthManager;
  t.deepEqual(bw, {
    observed: "edt",
    says: "EDT with BPF [enp1s0]",
    source: "cilium status: BandwidthManager:",
    agrees: ["edt", "edt+bbr"],
  });
});

test("Hubble Relay comes from its Deployment: absent, ready, or not ready with what the rollout said", (t) => {
  t.like(ev.relayObservation({ exists: false, desired: 0, ready: 0, rolloutError: null }), {
    observed: "disabled",
    says: "no Deployment",
  });
  t.like(ev.relayObservation({ exists: true, desired: 1, ready: 1, rolloutError: null }), {
    observed: "enabled",
    says: "1/1 ready",
    source: "Deployment hubble-relay",
  });
  t.like(
    ev.relayObservation({
      exists: true,
      desired: 1,
      ready: 0,
      rolloutError:
        'Waiting for deployment "hubble-relay" rollout to finish: 0 of 1 updated replicas are available...\nerror: timed out waiting for the condition',
    }),
    {
      observed: "not ready",
      says: '0/1 ready (Waiting for deployment "hubble-relay" rollout to finish: 0 of 1 updated replicas are available... error: timed out waiting for the condition)',
    },
  );
  t.like(ev.relayObservation(null), { observed: null, source: "Deployment hubble-relay (not collected)" });
});
