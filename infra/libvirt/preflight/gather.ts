/**
 * Gathering the preflight's host facts: synchronous on purpose (the program is CommonJS without
 * top-level await, and the preflight must finish before resources are declared) and read-only, a
 * handful of `virsh` commands through the URI (connection.ts: works for `qemu+ssh://` too), and
 * for a local URI this machine's `ip`, /proc/meminfo, statfs and firewall.
 */
import * as fs from "node:fs";
import * as os from "node:os";

import { TOOLS, toolPath, type Tool } from "../exec";
import { checkForwarding } from "../forwarding";
import { hostNetworkOf, parseHostRoutes, parseLinkNames } from "../hostnet";
import { parseDomainXml, parseNetworkXml } from "../xml";
import { hostBridgeFacts, probeAddresses } from "./bridge-facts";
import { diskFact, isLocalUri, kvmFact, lastLine, nodeCpus, nodeMemAvailableMiB, run, virshSync } from "./connection";
import type { HostDomain, HostFacts, HostNetworkState, PreflightRequest } from "./types";

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function localMemAvailableMiB(): number {
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/meminfo", "utf8"));
  return match ? Math.floor(Number(match[1]) / 1024) : Math.floor(os.freemem() / 1024 ** 2);
}

/** Memory and CPUs: this machine's for a local URI, else through the connection. */
function memoryAndCpus(
  uri: string,
  local: boolean,
  reachable: boolean,
): Pick<HostFacts, "memAvailableMiB" | "memSource" | "cpus"> {
  if (local) {
    return { memAvailableMiB: localMemAvailableMiB(), cpus: os.cpus().length };
  }
  const mem = reachable ? nodeMemAvailableMiB(uri) : undefined;
  return {
    memAvailableMiB: mem ?? 0,
    memSource:
      mem !== undefined
        ? `free + buffers + cached of \`virsh -c ${uri} nodememstats\``
        : `not read: ${uri} did not answer`,
    cpus: (reachable ? nodeCpus(uri) : undefined) ?? 0,
  };
}

/** Reads the host (a few `virsh`/`ip` calls, /proc/meminfo, statfs). */
export function gatherHostFacts(req: PreflightRequest): HostFacts {
  const missingTools = (Object.keys(TOOLS) as Tool[]).filter((tool) => {
    const r = run(toolPath(tool), tool === "ip" ? ["-V"] : tool === "ssh" ? ["-V"] : ["--version"]);
    return r.missing;
  });
  let libvirt: HostFacts["libvirt"];
  const netNames = missingTools.includes("virsh") ? undefined : virshSync(req.uri, ["net-list", "--all", "--name"]);
  if (!netNames?.ok) {
    libvirt = { reachable: false, error: netNames ? lastLine(netNames.stderr) : "virsh not installed" };
  } else {
    const active = new Set(lines(virshSync(req.uri, ["net-list", "--name"]).stdout));
    const networks: HostNetworkState[] = [];
    for (const name of lines(netNames.stdout)) {
      const xml = virshSync(req.uri, ["net-dumpxml", name]);
      if (xml.ok) {
        networks.push({ ...hostNetworkOf(parseNetworkXml(xml.stdout)), active: active.has(name) });
      }
    }
    const allDomains = new Set(lines(virshSync(req.uri, ["list", "--all", "--name"]).stdout));
    const running = new Set(lines(virshSync(req.uri, ["list", "--name"]).stdout));
    const domains: HostDomain[] = [];
    for (const node of req.nodes) {
      if (allDomains.has(node.domainName)) {
        const xml = virshSync(req.uri, ["dumpxml", node.domainName]);
        domains.push({
          name: node.domainName,
          owner: xml.ok ? parseDomainXml(xml.stdout).owner : undefined,
          running: running.has(node.domainName),
        });
      }
    }
    libvirt = { reachable: true, networks, domains };
  }
  // Routes and links are this machine's: facts of the libvirt host only for a local URI.
  const local = isLocalUri(req.uri);
  const ipBin = toolPath("ip");
  const routes = local ? run(ipBin, ["-j", "-4", "route", "show", "table", "all"]) : undefined;
  const links = local ? run(ipBin, ["-j", "link", "show"]) : undefined;
  const bridge = libvirt.reachable ? hostBridgeFacts(req, local) : undefined;
  return {
    missingTools,
    libvirt,
    routes: routes?.ok ? parseHostRoutes(routes.stdout) : [],
    links: links?.ok ? parseLinkNames(links.stdout) : [],
    kvm: req.accelerator === "kvm" && libvirt.reachable ? kvmFact(req.uri) : undefined,
    ...memoryAndCpus(req.uri, local, libvirt.reachable),
    disks: req.disks.map((d) => diskFact(req.uri, d, local, libvirt.reachable)),
    ...(req.onlineInstall && !req.bridge && local
      ? { forwarding: checkForwarding({ bridgeName: req.bridgeName, networkCidr: req.networkCidr }) }
      : {}),
    ...(bridge ? { hostBridge: bridge } : {}),
    ...(req.bridge ? { addressProbe: probeAddresses(req.bridge.addresses.map((a) => a.address)) } : {}),
  };
}
