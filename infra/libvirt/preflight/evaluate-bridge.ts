/**
 * Bridge mode's verdicts (pure): the host bridge exists, is a bridge and is up; nothing answers on
 * the nodes' static addresses (best-effort, from this machine); and, for a local URI, br_netfilter
 * does not hand the bridged frames to a FORWARD chain that drops them (the Docker trap).
 */
import { OWNER_PROJECT } from "../xml";
import { isLocalUri } from "./connection";
import type { Fail, Warn } from "./evaluate";
import type { HostFacts, PreflightRequest } from "./types";

const listBridges = "`ip -br link show type bridge` on that host lists the bridges";

/** The host bridge: found by libvirt (or by `ip` for a local URI), of type bridge, up. */
export function checkBridge(req: PreflightRequest, facts: HostFacts, fail: Fail, warn: Warn): void {
  const b = facts.hostBridge;
  if (!req.bridge || !b) {
    return;
  }
  const name = req.bridge.name;
  const seen = "found" in b.libvirt ? b.libvirt : undefined;
  const exists = b.local?.exists ?? seen?.found;
  if (exists === false) {
    fail(
      "bridge",
      `bridge "${name}" (cilium-lab:bridge) does not exist on ${req.uri}` +
        `${seen && !seen.found ? ` (libvirt: ${seen.error})` : ""}. ` +
        `Fix: create it on that host (\`ip link add ${name} type bridge && ip link set ${name} up\`, then enslave the LAN NIC), or \`pulumi config set cilium-lab:bridge <existing bridge>\` (${listBridges}).`,
    );
    return;
  }
  const kind = b.local?.kind ?? (seen?.found === true ? seen.type : undefined);
  if (kind !== undefined && kind !== "bridge") {
    fail(
      "bridge",
      `interface "${name}" on ${req.uri} is a ${kind}, not a bridge: the nodes cannot attach to it. ` +
        `Fix: \`pulumi config set cilium-lab:bridge <bridge>\` (${listBridges}).`,
    );
    return;
  }
  if (b.local && !b.local.adminUp) {
    fail("bridge", `bridge "${name}" exists but is down. Fix: \`ip link set ${name} up\`.`);
  } else if (!b.local && seen?.found === true && !seen.operUp) {
    warn(
      `libvirt reports bridge "${name}" on ${req.uri} inactive (its operstate is not up: set down, or no port has carrier yet, as on a bridge without an uplink); if it is down, run \`ip link set ${name} up\` on that host.`,
    );
  }
}

/** The best-effort address probe: an answer on a node's address that is not one of our running nodes. */
export function checkAddresses(req: PreflightRequest, facts: HostFacts, fail: Fail): void {
  const probe = facts.addressProbe;
  if (!req.bridge || !probe || "unavailable" in probe) {
    return;
  }
  const domains = facts.libvirt.reachable ? facts.libvirt.domains : [];
  for (const hit of probe.answered) {
    const node = req.bridge.addresses.find((a) => a.address === hit.address);
    const mine = domains.find(
      (d) =>
        d.name === node?.domainName && d.running && d.owner?.project === OWNER_PROJECT && d.owner.stack === req.stack,
    );
    if (mine) {
      continue; // a re-run: our own node answers on its address
    }
    fail(
      "addresses",
      `address ${hit.address} of ${node?.domainName ?? "a node"} is taken: something ${hit.how}${hit.mac !== undefined ? ` from MAC ${hit.mac}` : ""} (best-effort probe from this host). ` +
        `Fix: free that address on the LAN, or move the nodes to a networkCidr whose addresses from base + 11 up are unused (\`pulumi config set cilium-lab:networkCidr <cidr>\`).`,
    );
  }
}

/** Local URI, bridge mode: br_netfilter with bridge-nf-call-iptables=1 and a FORWARD chain that drops bridged frames. */
export function checkBridgeFirewall(req: PreflightRequest, facts: HostFacts, fail: Fail, warn: Warn): void {
  const b = facts.hostBridge;
  if (!req.bridge || !b || b.nfCallIptables !== "1" || !b.bridged) {
    return;
  }
  if (b.bridged.status === "fail") {
    fail(
      "firewall",
      `br_netfilter is loaded with net.bridge.bridge-nf-call-iptables=1, so the host's FORWARD hook sees the nodes' bridged traffic, and ${b.bridged.detail} (the Docker trap). ` +
        `Fix: \`sysctl -w net.bridge.bridge-nf-call-iptables=0\` (libvirt's wiki recommends it for bridged guests; persist it in /etc/sysctl.d), or ${b.bridged.fix}.`,
    );
  } else if (b.bridged.status === "unchecked" && isLocalUri(req.uri)) {
    warn(`bridge firewall (local check): ${b.bridged.detail}. To check or fix: ${b.bridged.fix}`);
  }
}
