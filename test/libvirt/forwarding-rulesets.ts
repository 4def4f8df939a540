// Real host rulesets for the forwarding check's tests, each as the tool that owns it installs it.
// The lab network under test is bridge LAB_BRIDGE with LAB_CIDR; the host's own libvirt default
// network (virbr0, 192.168.122.0/24) and Docker's docker0 (172.17.0.0/16) are someone else's.

export const LAB_BRIDGE = "cl-vxlan-1a2b";
export const LAB_CIDR = "192.168.150.0/24";

// libvirt 9.0.0 (Debian 12) with the iptables backend, after `virsh net-start default`: captured
// here with `iptables-nft-save` (filter table; the nat table's LIBVIRT_PRT masquerades). Same rules
// as libvirt src/network/network_iptables.c: iptablesSetupPrivateChains inserts the FORWARD jumps,
// iptablesForwardAllowOut / iptablesForwardAllowRelatedIn / iptablesForwardAllowCross / the
// reject rules fill LIBVIRT_FWO / LIBVIRT_FWI / LIBVIRT_FWX.
const LIBVIRT_CHAINS = `:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWX - [0:0]
:LIBVIRT_INP - [0:0]
:LIBVIRT_OUT - [0:0]`;
const LIBVIRT_RULES = `-A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWO -s 192.168.122.0/24 -i virbr0 -j ACCEPT
-A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 67 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 67 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 68 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 68 -j ACCEPT`;
const LIBVIRT_JUMPS = `-A INPUT -j LIBVIRT_INP
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A OUTPUT -j LIBVIRT_OUT`;

/** A filter table as iptables-save prints it: the built-in chains' policies, then `parts` (declarations, rules). */
const filterTable = (input: "ACCEPT" | "DROP", forward: "ACCEPT" | "DROP", ...parts: string[]): string =>
  `*filter\n:INPUT ${input} [0:0]\n:FORWARD ${forward} [0:0]\n:OUTPUT ACCEPT [0:0]\n${parts.join("\n")}\nCOMMIT\n`;

/** Plain libvirt 9 host: FORWARD policy ACCEPT, libvirt's chains. */
export const LIBVIRT9 = filterTable("ACCEPT", "ACCEPT", LIBVIRT_CHAINS, LIBVIRT_JUMPS, LIBVIRT_RULES);

// Docker Engine 20.10–27 with its iptables backend and the default bridge docker0: the FORWARD
// policy DROP (moby libnetwork/drivers/bridge/setup_ip_forwarding.go, setFilterForwardDrop:
// `SetDefaultPolicy(iptables.Filter, "FORWARD", iptables.Drop)`), DOCKER-USER jumped to first, the
// isolation chains and docker0's rules (libnetwork/drivers/bridge/setup_ip_tables_linux.go,
// DockerChain / IsolationChain1 / IsolationChain2; docs.docker.com "Docker with iptables").
const DOCKER_CHAINS = `:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]`;
const DOCKER_FORWARD = `-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT`;
const DOCKER_RULES = `-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN`;
const DOCKER_NAT = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
`;

/** Docker alone: FORWARD DROP and nothing for the lab's bridge. */
export const DOCKER = DOCKER_NAT + filterTable("ACCEPT", "DROP", DOCKER_CHAINS, DOCKER_FORWARD, DOCKER_RULES);

/** {@link DOCKER} with the check's fix applied: the two `iptables -I DOCKER-USER` rules for the lab's bridge. */
export const DOCKER_USER_ALLOWED = DOCKER.replace(
  "-A DOCKER-USER -j RETURN",
  `-A DOCKER-USER -o ${LAB_BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A DOCKER-USER -i ${LAB_BRIDGE} -j ACCEPT\n-A DOCKER-USER -j RETURN`,
);

/** Docker, then libvirt 9 started a network: libvirt inserted its jumps at the top of FORWARD. */
export const DOCKER_THEN_LIBVIRT9 =
  DOCKER_NAT +
  filterTable(
    "ACCEPT",
    "DROP",
    DOCKER_CHAINS,
    LIBVIRT_CHAINS,
    LIBVIRT_JUMPS,
    DOCKER_FORWARD,
    DOCKER_RULES,
    LIBVIRT_RULES,
  );

// UFW's chains: for each built-in chain the same steps, jumped to in this order (before-logging,
// before, after, after-logging, reject, track), plus a few shared chains; iptables-save declares
// them sorted by name.
const UFW_BUILTINS = ["INPUT", "FORWARD", "OUTPUT"];
const UFW_JUMP_STEPS = ["before-logging", "before", "after", "after-logging", "reject", "track"];
const UFW_STEPS = [...UFW_JUMP_STEPS, "skip-to-policy", "user", "user-logging"];
const UFW_SHARED = ["logging-allow", "logging-deny", "not-local", "user-limit", "user-limit-accept"];
const UFW_CHAINS = [...UFW_BUILTINS.flatMap((b) => UFW_STEPS.map((s) => `${s}-${b.toLowerCase()}`)), ...UFW_SHARED]
  .map((c) => `:ufw-${c} - [0:0]`)
  .sort()
  .join("\n");
const UFW_JUMPS = UFW_BUILTINS.flatMap((b) => UFW_JUMP_STEPS.map((s) => `-A ${b} -j ufw-${s}-${b.toLowerCase()}`)).join(
  "\n",
);

// UFW 0.36 enabled with its defaults (/etc/default/ufw DEFAULT_FORWARD_POLICY="DROP", ufw's
// conf/ufw.defaults) and no user rules: the chain layout ufw's iptables backend installs
// (src/backend_iptables.py) and the forward part of ufw's conf/before.rules
// (`-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`, the icmp codes,
// then ufw-user-forward), as `iptables-save` prints it on Ubuntu.
export const UFW = filterTable(
  "DROP",
  "DROP",
  UFW_CHAINS,
  UFW_JUMPS,
  `-A ufw-after-logging-forward -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 11 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 12 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-forward -j ufw-user-forward
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -j ufw-user-input
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-output -j ufw-user-output
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-forward -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-skip-to-policy-output -j ACCEPT
-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
-A ufw-user-limit-accept -j ACCEPT`,
);

/** `ufw route allow in on <bridge>` added to {@link UFW} (ufw puts route rules in ufw-user-forward). */
export const UFW_ROUTE_ALLOWED = UFW.replace(
  "-A ufw-user-limit -j REJECT",
  `-A ufw-user-forward -i ${LAB_BRIDGE} -j ACCEPT\n-A ufw-user-limit -j REJECT`,
);

// libvirt ≥ 10.4 with the nftables backend, the default network started: table `ip libvirt_network`
// with the chains of libvirt src/network/network_nftables.c (nftablesChains: `forward` "type filter
// hook forward priority 0; policy accept;" → guest_output, guest_input, guest_cross) and the rules
// of nftablesAddForwardAllowOut / nftablesAddForwardAllowRelatedIn / nftablesAddForwardAllowCross
// and the reject rules, for virbr0.
export const LIBVIRT_NFT = `table ip libvirt_network {
  chain forward {
    type filter hook forward priority filter; policy accept;
    counter jump guest_cross
    counter jump guest_input
    counter jump guest_output
  }
  chain guest_output {
    ip saddr 192.168.122.0/24 iif "virbr0" counter accept
    iif "virbr0" counter reject
  }
  chain guest_input {
    oif "virbr0" ip daddr 192.168.122.0/24 ct state related,established counter accept
    oif "virbr0" counter reject
  }
  chain guest_cross {
    iif "virbr0" oif "virbr0" counter accept
  }
  chain guest_nat {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter return
    ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade
  }
}
`;

// A hardened nft-only host: Debian's /etc/nftables.conf layout (table inet filter with input,
// forward and output base chains) with the forward policy turned to drop, the common advice for
// a host that routes nothing.
export const NFT_DROP_FORWARD = `table inet filter {
  chain input {
    type filter hook input priority filter; policy accept;
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
  }
  chain output {
    type filter hook output priority filter; policy accept;
  }
}
`;

// firewalld 1.x (nftables backend), reduced to its forward path: the base chain filter_FORWARD
// ("type filter hook forward priority filter + 10"; established/related and DNAT accepted, invalid
// dropped, then the zone dispatch filter_FORWARD_POLICIES and a final
// `reject with icmpx admin-prohibited`), as firewalld's src/firewall/core/nftables.py builds it and
// `nft list ruleset` prints it. Every interface without a zone falls to the default zone (public);
// with the zone's forward on (firewalld ≥ 1.0's default) forwarding within it is allowed
// (filter_FWD_public_allow: `oifname <interface of the zone> accept`).
const firewalld = (publicForward: boolean): string => `table inet firewalld {
  chain filter_FORWARD {
    type filter hook forward priority filter + 10; policy accept;
    ct state { established, related } accept
    ct status dnat accept
    iifname "lo" accept
    ct state invalid drop
    jump filter_FORWARD_POLICIES
    reject with icmpx admin-prohibited
  }
  chain filter_FORWARD_POLICIES {
    iifname "uplink0" oifname "uplink0" jump filter_FWD_public
    iifname "uplink0" oifname "uplink0" reject with icmpx admin-prohibited
    jump filter_FWD_public
    reject with icmpx admin-prohibited
  }
  chain filter_FWD_public {
    jump filter_FWD_public_allow
  }
  chain filter_FWD_public_allow {
${publicForward ? '    oifname "uplink0" accept\n' : ""}  }
}
`;
/** firewalld with its default zone's forward on: traffic from the (zone-less) lab bridge out of the uplink is allowed. */
export const FIREWALLD = firewalld(true);
/** firewalld with forwarding off in the default zone (`firewall-cmd --remove-forward`, or firewalld < 1.0). */
export const FIREWALLD_NO_FORWARD = firewalld(false);
