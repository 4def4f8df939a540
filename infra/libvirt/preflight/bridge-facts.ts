/**
 * Bridge mode's host facts: the bridge through libvirt's interface driver (`virsh iface-dumpxml`,
 * any URI); for a local URI also `ip -d link` (admin state), br_netfilter's sysctl and the FORWARD
 * rules; and a best-effort probe of the nodes' static addresses from this machine. Synchronous and
 * read-only; creates nothing.
 */
import * as fs from "node:fs";

import { toolPath } from "../exec";
import { evaluateBridgedForwarding, gatherForwardingFacts } from "../forwarding";
import { lastLine, run, virshSync } from "./connection";
import type { AddressProbe, HostBridgeFacts, PreflightRequest } from "./types";

/** br_netfilter's switch: present only while the module is loaded (kernel Documentation/networking/ip-sysctl.rst, "bridge-nf-call-iptables"). */
export const BRIDGE_NF_CALL_IPTABLES = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/** The bridge as libvirt's interface driver sees it. */
function libvirtIface(uri: string, name: string): HostBridgeFacts["libvirt"] {
  const xml = virshSync(uri, ["iface-dumpxml", name]);
  if (xml.ok) {
    const type = /<interface type='([^']+)'/.exec(xml.stdout)?.[1] ?? "unknown";
    const list = virshSync(uri, ["iface-list", "--all"]);
    const row = list.stdout.split("\n").find((l) => l.trim().split(/\s+/)[0] === name);
    return { found: true, type, operUp: row?.trim().split(/\s+/)[1] === "active" };
  }
  const error = lastLine(xml.stderr);
  // "Interface not found" is an answer; anything else (no interface driver, not supported) is not.
  return /not found/i.test(error) ? { found: false, error } : { unsupported: error };
}

/** `ip -j -d link show dev <name>` on this machine. */
function localLink(name: string): NonNullable<HostBridgeFacts["local"]> {
  const r = run(toolPath("ip"), ["-j", "-d", "link", "show", "dev", name]);
  if (!r.ok) {
    return { exists: false, adminUp: false };
  }
  const link = (JSON.parse(r.stdout || "[]") as { flags?: string[]; linkinfo?: { info_kind?: string } }[])[0];
  const kind = link?.linkinfo?.info_kind;
  return { exists: true, ...(kind !== undefined ? { kind } : {}), adminUp: link?.flags?.includes("UP") === true };
}

function nfCallIptables(): HostBridgeFacts["nfCallIptables"] {
  try {
    return fs.readFileSync(BRIDGE_NF_CALL_IPTABLES, "utf8").trim() === "0" ? "0" : "1";
  } catch {
    return "not loaded";
  }
}

/** The bridge facts for a bridge-mode request; local-only facts only when `local`. */
export function hostBridgeFacts(req: PreflightRequest, local: boolean): HostBridgeFacts | undefined {
  if (!req.bridge) {
    return undefined;
  }
  const name = req.bridge.name;
  const libvirt = libvirtIface(req.uri, name);
  if (!local) {
    return { libvirt };
  }
  const nf = nfCallIptables();
  return {
    libvirt,
    local: localLink(name),
    nfCallIptables: nf,
    ...(nf === "1"
      ? {
          bridged: evaluateBridgedForwarding(
            { bridgeName: name, networkCidr: req.networkCidr },
            gatherForwardingFacts({ bridgeName: name, networkCidr: req.networkCidr }),
          ),
        }
      : {}),
  };
}

/**
 * Connects to port 22 of every address at once, 1 s each: a connection or a refusal (RST) means
 * something holds the address. Printed as JSON `[[address, how]]`, `how` "" for no answer.
 */
const PROBE_SCRIPT = `
const net = require("node:net");
const addrs = JSON.parse(process.argv[1]);
Promise.all(addrs.map((a) => new Promise((resolve) => {
  const s = net.connect({ host: a, port: 22 });
  const done = (how) => { s.destroy(); resolve([a, how]); };
  s.setTimeout(1000, () => done(""));
  s.on("connect", () => done("accepted a TCP connection on port 22"));
  s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused a TCP connection on port 22 (it is up)" : ""));
}))).then((r) => process.stdout.write(JSON.stringify(r)));
`;

/**
 * Best-effort probe from this machine of the nodes' static addresses: TCP to port 22 (no raw
 * sockets, so no root), then this machine's neighbour table for the MAC of whatever answered, also
 * for an address that answered ARP only. A silent holder (firewalled, or on another segment) is
 * missed: the guests' own duplicate-address detection is the real check.
 */
export function probeAddresses(addresses: readonly string[]): AddressProbe {
  if (addresses.length === 0) {
    return { probed: [], answered: [] };
  }
  const r = run(process.execPath, ["-e", PROBE_SCRIPT, JSON.stringify(addresses)]);
  if (!r.ok) {
    return { unavailable: `the probe did not run (${lastLine(r.stderr)})` };
  }
  const results = JSON.parse(r.stdout) as [string, string][];
  const neigh = run(toolPath("ip"), ["-j", "-4", "neigh", "show"]);
  const entries = neigh.ok
    ? (JSON.parse(neigh.stdout || "[]") as { dst?: string; lladdr?: string; state?: string[] }[])
    : [];
  // Without a TCP answer only a REACHABLE entry counts (confirmed just now, by our connect's ARP);
  // a STALE one may be a machine that left long ago.
  const macOf = (a: string, fresh: boolean): string | undefined =>
    entries.find(
      (e) =>
        e.dst === a &&
        e.lladdr !== undefined &&
        (fresh ? (e.state ?? []).includes("REACHABLE") : !(e.state ?? []).includes("FAILED")),
    )?.lladdr;
  const answered = results.flatMap(([address, how]) => {
    const mac = macOf(address, how === "");
    if (how === "" && mac === undefined) {
      return [];
    }
    return [{ address, how: how === "" ? "answered ARP" : how, ...(mac !== undefined ? { mac } : {}) }];
  });
  return { probed: [...addresses], answered };
}
