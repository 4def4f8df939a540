// The forwarding check's verdicts on real rulesets (test/libvirt/forwarding-rulesets.ts: libvirt 9,
// Docker, UFW, each as the tool installs it), fed as `iptables-save` text: which host drops the
// lab bridge's forwarded traffic, which accepts it once libvirt has added its rules, and the fix
// named in the owning tool's words. The same rulesets loaded into real netfilter:
// forwarding.netns.test.ts.
import test from "ava";

import { evaluateForwarding, type ForwardingFacts } from "../../infra/libvirt/forwarding";
import {
  DOCKER,
  DOCKER_THEN_LIBVIRT9,
  LAB_BRIDGE,
  LAB_CIDR,
  LIBVIRT9,
  UFW,
  UFW_ROUTE_ALLOWED,
} from "./forwarding-rulesets";

const TARGET = { bridgeName: LAB_BRIDGE, networkCidr: LAB_CIDR };
const EMPTY_NFT =
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}';
// What `nft -j list ruleset` prints for libvirt ≥ 10.4's table (nftables backend) before any rule:
// its presence tells which backend libvirt uses (libvirt src/network/network_nftables.c).
const LIBVIRT_NFT_JSON = JSON.stringify({
  nftables: [
    { table: { family: "ip", name: "libvirt_network", handle: 1 } },
    {
      chain: {
        family: "ip",
        table: "libvirt_network",
        name: "forward",
        handle: 1,
        type: "filter",
        hook: "forward",
        prio: 0,
        policy: "accept",
      },
    },
  ],
});
const facts = (extra: Partial<ForwardingFacts>): ForwardingFacts => ({
  bridgeUp: false,
  iptablesBackend: "nft",
  uplink: "eth0",
  nftJson: EMPTY_NFT,
  ...extra,
});
const OK = {
  status: "ok",
  detail:
    "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is accepted by every forward hook (1 base chain checked)",
  fix: "",
};
const DOCKER_FIX = (bin: string): string =>
  `\`${bin} -I DOCKER-USER -i cl-vxlan-1a2b -j ACCEPT\` and \`${bin} -I DOCKER-USER -o cl-vxlan-1a2b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\` ` +
  "(Docker keeps DOCKER-USER first in FORWARD; re-add them after a reboot, e.g. from a systemd unit after docker.service)";

test("a plain libvirt 9 host accepts the lab's traffic before libvirt has added the lab's own rules", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: LIBVIRT9 })), OK);
});

test("Docker's FORWARD DROP is fine when libvirt's chains come first in the same table", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: DOCKER_THEN_LIBVIRT9 })), OK);
});

test("Docker's FORWARD DROP with libvirt on nftables fails with the DOCKER-USER rules for the lab's bridge", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: DOCKER, nftJson: LIBVIRT_NFT_JSON })), {
    status: "fail",
    detail:
      "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: iptables-nft table filter (Docker's) chain FORWARD drops new connections from the nodes and the replies to them (policy DROP of chain FORWARD)",
    fix: DOCKER_FIX("iptables"),
  });
});

test("Docker on iptables-legacy drops whatever libvirt adds through iptables-nft, and the fix names iptables-legacy", (t) => {
  const r = evaluateForwarding(TARGET, facts({ iptablesLegacy: DOCKER, iptablesNft: LIBVIRT9 }));
  t.is(r.status, "fail");
  t.is(r.fix, DOCKER_FIX("iptables-legacy"));
});

test("Docker alone, before libvirt has shown its firewall backend, is unchecked: it depends on that backend", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: DOCKER })), {
    status: "unchecked",
    detail:
      "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped if libvirt uses its nftables firewall backend, which no running network shows yet: iptables-nft table filter (Docker's) chain FORWARD drops new connections from the nodes and the replies to them (policy DROP of chain FORWARD)",
    fix: `after the first \`up\` the check can tell; or now: ${DOCKER_FIX("iptables")}`,
  });
});

test("UFW's default deny routed fails with `ufw route allow in on <bridge>`, and passes once that rule exists", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: UFW, nftJson: LIBVIRT_NFT_JSON })), {
    status: "fail",
    detail:
      "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: iptables-nft table filter (UFW's) chain FORWARD drops new connections from the nodes (policy DROP of chain FORWARD)",
    fix: "`ufw route allow in on cl-vxlan-1a2b` (UFW's default routed policy is deny)",
  });
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: UFW_ROUTE_ALLOWED, nftJson: LIBVIRT_NFT_JSON })), {
    ...OK,
    detail: OK.detail.replace("(1 base chain checked)", "(2 base chains checked)"),
  });
});

test("an accept that hangs on a match the check cannot judge (an ipset) makes the row unchecked, naming the rule", (t) => {
  const withSet = DOCKER.replace(
    "-A DOCKER-USER -j RETURN",
    "-A DOCKER-USER -m set --match-set trusted src -j ACCEPT\n-A DOCKER-USER -j RETURN",
  );
  const r = evaluateForwarding(TARGET, facts({ iptablesNft: withSet, nftJson: LIBVIRT_NFT_JSON }));
  t.is(r.status, "unchecked");
  t.is(
    r.detail,
    "forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet may be dropped: iptables-nft table filter chain FORWARD has a rule this check cannot judge (-A DOCKER-USER -m set --match-set trusted src -j ACCEPT)",
  );
});

test("net.ipv4.ip_forward=0 before up is not a failure (libvirt sets it); with the lab's bridge up it is", (t) => {
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: LIBVIRT9, ipForward: "0" })), OK);
  t.deepEqual(evaluateForwarding(TARGET, facts({ iptablesNft: LIBVIRT9, ipForward: "0", bridgeUp: true })), {
    status: "fail",
    detail: "bridge cl-vxlan-1a2b is up but net.ipv4.ip_forward is 0: the host forwards nothing",
    fix: "`sysctl -w net.ipv4.ip_forward=1`",
  });
});

test("without root the row reads 'not checked (needs root)' with the commands to look by hand", (t) => {
  t.deepEqual(
    evaluateForwarding(TARGET, {
      bridgeUp: false,
      permissionDenied: "iptables-nft-save: Permission denied (you must be root)",
    }),
    {
      status: "unchecked",
      detail:
        "forwarding for bridge cl-vxlan-1a2b not checked (needs root): iptables-nft-save: Permission denied (you must be root)",
      fix: "run the preflight as root, or look yourself: `sudo iptables-save | grep -E '^:FORWARD|DOCKER-USER|LIBVIRT_FW'` and `sudo nft list ruleset | grep -B3 'hook forward'`",
    },
  );
});
