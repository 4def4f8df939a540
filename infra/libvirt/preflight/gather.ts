/**
 * Gathering the preflight's host facts: synchronous on purpose (the program is CommonJS without
 * top-level await, and the preflight must finish before resources are declared) and read-only, a
 * handful of `virsh`/`ip` commands, /proc/meminfo and statfs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { TOOLS, toolPath, type Tool } from "../exec";
import { checkForwarding } from "../forwarding";
import { hostNetworkOf, parseHostRoutes, parseLinkNames } from "../hostnet";
import { runSync, type SyncResult } from "../run-sync";
import { parseDomainXml, parseNetworkXml } from "../xml";
import type { HostDomain, HostFacts, HostNetworkState, PreflightRequest } from "./types";

/** One read-only command: 30 s and 16 MiB of output at most. */
function run(file: string, args: readonly string[]): SyncResult {
  return runSync(file, args, { timeoutMs: 30_000, maxBufferBytes: 16 * 1024 * 1024 });
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function lastLine(text: string): string {
  return (
    lines(text)
      .map((l) => l.replace(/^error: /, ""))
      .slice(-1)[0] ?? "unknown error"
  );
}

function memAvailableMiB(): number {
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/meminfo", "utf8"));
  return match ? Math.floor(Number(match[1]) / 1024) : Math.floor(os.freemem() / 1024 ** 2);
}

function diskFact(dir: string): { path: string; freeBytes: number; unsearchable?: string } {
  let p = path.resolve(dir);
  while (!fs.existsSync(p) && p !== path.dirname(p)) {
    p = path.dirname(p);
  }
  const s = fs.statfsSync(p);
  let unsearchable: string | undefined;
  for (let a = p; ; a = path.dirname(a)) {
    if ((fs.statSync(a).mode & 0o001) === 0) {
      unsearchable = `${a} (mode ${(fs.statSync(a).mode & 0o777).toString(8).padStart(4, "0")})`;
      break;
    }
    if (a === path.dirname(a)) {
      break;
    }
  }
  return { path: dir, freeBytes: s.bavail * s.bsize, ...(unsearchable !== undefined ? { unsearchable } : {}) };
}

function kvmFact(uri: string): { usable: boolean; detail: string } {
  try {
    fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
  } catch (error) {
    return {
      usable: false,
      detail: `/dev/kvm is missing or not accessible (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    };
  }
  const caps = run(toolPath("virsh"), ["-c", uri, "domcapabilities", "--virttype", "kvm"]);
  return caps.ok
    ? { usable: true, detail: "" }
    : { usable: false, detail: `libvirt has no kvm domain type (${lastLine(caps.stderr)})` };
}

/** Reads the host (a few `virsh`/`ip` calls, /proc/meminfo, statfs). */
export function gatherHostFacts(req: PreflightRequest): HostFacts {
  const missingTools = (Object.keys(TOOLS) as Tool[]).filter((tool) => {
    const r = run(toolPath(tool), tool === "ip" ? ["-V"] : tool === "ssh" ? ["-V"] : ["--version"]);
    return r.missing;
  });
  const virshBin = toolPath("virsh");
  let libvirt: HostFacts["libvirt"];
  const netNames = missingTools.includes("virsh")
    ? undefined
    : run(virshBin, ["-c", req.uri, "net-list", "--all", "--name"]);
  if (!netNames?.ok) {
    libvirt = { reachable: false, error: netNames ? lastLine(netNames.stderr) : "virsh not installed" };
  } else {
    const active = new Set(lines(run(virshBin, ["-c", req.uri, "net-list", "--name"]).stdout));
    const networks: HostNetworkState[] = [];
    for (const name of lines(netNames.stdout)) {
      const xml = run(virshBin, ["-c", req.uri, "net-dumpxml", name]);
      if (xml.ok) {
        networks.push({ ...hostNetworkOf(parseNetworkXml(xml.stdout)), active: active.has(name) });
      }
    }
    const allDomains = new Set(lines(run(virshBin, ["-c", req.uri, "list", "--all", "--name"]).stdout));
    const running = new Set(lines(run(virshBin, ["-c", req.uri, "list", "--name"]).stdout));
    const domains: HostDomain[] = [];
    for (const node of req.nodes) {
      if (allDomains.has(node.domainName)) {
        const xml = run(virshBin, ["-c", req.uri, "dumpxml", node.domainName]);
        domains.push({
          name: node.domainName,
          owner: xml.ok ? parseDomainXml(xml.stdout).owner : undefined,
          running: running.has(node.domainName),
        });
      }
    }
    libvirt = { reachable: true, networks, domains };
  }
  const ipBin = toolPath("ip");
  const routes = run(ipBin, ["-j", "-4", "route", "show", "table", "all"]);
  const links = run(ipBin, ["-j", "link", "show"]);
  return {
    missingTools,
    libvirt,
    routes: routes.ok ? parseHostRoutes(routes.stdout) : [],
    links: links.ok ? parseLinkNames(links.stdout) : [],
    kvm: req.accelerator === "kvm" && libvirt.reachable ? kvmFact(req.uri) : undefined,
    memAvailableMiB: memAvailableMiB(),
    cpus: os.cpus().length,
    disks: req.disks.map((d) => diskFact(d.path)),
    ...(req.onlineInstall
      ? { forwarding: checkForwarding({ bridgeName: req.bridgeName, networkCidr: req.networkCidr }) }
      : {}),
  };
}
