// The forwarding check against real netfilter: each real ruleset (forwarding-rulesets.ts) is loaded
// into a fresh network namespace (forwarding-netns.ts), and the check's own gathering runs inside it
// through `ip netns exec` (iptables-legacy-save, iptables-nft-save, nft -j, ip, /proc). Needs root;
// run under the heavy lock. Each namespace has a veth "uplink" with a default route (no packet is
// sent) and, for libvirt's nft table, a bridge virbr0 (`iif "virbr0"` needs the device). Every
// namespace is deleted, also on failure. That the kernel agrees: forwarding-kernel.netns.test.ts.
import test from "ava";
import { execFileSync } from "node:child_process";

import { checkForwarding, type Runner } from "../../infra/libvirt/forwarding";
import { DROPPED, OK, TARGET, checkIn, deleteOurNamespaces, inNs, iptables, nft, sh } from "./forwarding-netns";
import {
  DOCKER,
  DOCKER_THEN_LIBVIRT9,
  LAB_BRIDGE,
  LIBVIRT9,
  LIBVIRT_NFT,
  NFT_DROP_FORWARD,
  UFW,
} from "./forwarding-rulesets";

test.after.always(deleteOurNamespaces);

const DOCKER_FIX = (bin: string): string =>
  `\`${bin} -I DOCKER-USER -i cl-vxlan-1a2b -j ACCEPT\` and \`${bin} -I DOCKER-USER -o cl-vxlan-1a2b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\` ` +
  "(Docker keeps DOCKER-USER first in FORWARD; re-add them after a reboot, e.g. from a systemd unit after docker.service)";
const DOCKER_DROP = (source: string): string =>
  `${source} table filter (Docker's) chain FORWARD drops new connections from the nodes and the replies to them (policy DROP of chain FORWARD)`;
// `iptables -V` inside the namespace reports the host's alternative (the check's fix names `iptables` for it).
const hostBackend = /nf_tables/.test(execFileSync("iptables", ["-V"], { encoding: "utf8" })) ? "nft" : "legacy";

for (const flavor of ["iptables-legacy", "iptables-nft"] as const) {
  test.serial(`${flavor}: a plain libvirt 9 host passes`, (t) => {
    t.deepEqual(checkIn([iptables(flavor, LIBVIRT9)]), OK(1));
  });

  test.serial(`${flavor}: Docker's FORWARD DROP with libvirt's chains first passes`, (t) => {
    t.deepEqual(checkIn([iptables(flavor, DOCKER_THEN_LIBVIRT9)]), OK(1));
  });

  test.serial(`${flavor}: Docker's FORWARD DROP with libvirt on nftables fails with the DOCKER-USER fix`, (t) => {
    t.deepEqual(
      checkIn([iptables(flavor, DOCKER), nft(LIBVIRT_NFT)]),
      DROPPED(DOCKER_DROP(flavor), DOCKER_FIX(flavor === `iptables-${hostBackend}` ? "iptables" : flavor)),
    );
  });
}

test.serial(
  "iptables-nft: UFW's default deny routed with libvirt on nftables fails with `ufw route allow in on <bridge>`",
  (t) => {
    t.deepEqual(
      checkIn([iptables("iptables-nft", UFW), nft(LIBVIRT_NFT)]),
      DROPPED(
        "iptables-nft table filter (UFW's) chain FORWARD drops new connections from the nodes (policy DROP of chain FORWARD)",
        "`ufw route allow in on cl-vxlan-1a2b` (UFW's default routed policy is deny)",
      ),
    );
  },
);

test.serial(
  "nft only: a forward chain with policy drop fails with the nft rules for the lab's bridge; libvirt's own table accepts",
  (t) => {
    t.deepEqual(
      checkIn([nft(LIBVIRT_NFT), nft(NFT_DROP_FORWARD)]),
      DROPPED(
        "nftables table inet filter chain forward drops new connections from the nodes (policy DROP of chain forward)",
        '`nft insert rule inet filter forward iifname "cl-vxlan-1a2b" accept` and `nft insert rule inet filter forward oifname "cl-vxlan-1a2b" ct state related,established accept`',
      ),
    );
    t.deepEqual(checkIn([nft(LIBVIRT_NFT)]), OK(1));
  },
);

test.serial("nft only: the fix, applied, makes the check pass", (t) => {
  const fixed = NFT_DROP_FORWARD.replace(
    "ct state established,related accept",
    `iifname "${LAB_BRIDGE}" accept\n    ct state established,related accept`,
  );
  t.deepEqual(checkIn([nft(LIBVIRT_NFT), nft(fixed)]), OK(2));
});

test.serial("net.ipv4.ip_forward=0 before up is not a failure; with the lab's bridge up it is", (t) => {
  const off = (ns: string): void => sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"]);
  t.deepEqual(checkIn([iptables("iptables-nft", LIBVIRT9)], off), OK(1));
  const offAndUp = (ns: string): void => {
    off(ns);
    sh(["ip", "netns", "exec", ns, "ip", "link", "add", LAB_BRIDGE, "type", "bridge"]);
  };
  t.deepEqual(checkIn([iptables("iptables-nft", LIBVIRT9)], offAndUp), {
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
  const r = checkIn([iptables("iptables-nft", DOCKER)], undefined, asNobody);
  t.is(r.status, "unchecked");
  t.regex(
    r.detail,
    /^forwarding for bridge cl-vxlan-1a2b not checked \(needs root\): iptables-legacy-save: .*(Permission denied|must be root)/,
  );
  t.true(r.fix.startsWith("run the preflight as root, or look yourself: `sudo iptables-save"));
});

test.serial("the gathering inside a namespace with Docker's rules takes well under a second", (t) => {
  const started = Date.now();
  const r = checkIn([iptables("iptables-nft", DOCKER_THEN_LIBVIRT9)]);
  const ms = Date.now() - started;
  t.log(`namespace setup + check: ${ms} ms`);
  t.is(r.status, "ok");
  const host = Date.now();
  checkForwarding(TARGET);
  t.log(`check on this host: ${Date.now() - host} ms`);
  t.true(Date.now() - host < 1000);
});
