/**
 * Host preflight: one cheap pass over the host before any resource is registered, so a broken host
 * fails `pulumi preview` and `pulumi up` at once with every problem and its fix, instead of a VM
 * failing minutes into a boot. Read-only; our own objects of the same stack (a re-run) are fine.
 *
 * Checks: host tools present; the libvirt URI reachable; KVM usable when `accelerator: kvm`; memory
 * and CPUs for the nodes; `networkCidr` not overlapping a host route or another libvirt network; the
 * network, bridge and domain names not taken by objects we do not own (our metadata stamp); free
 * disk for the images; pool and cache directories reachable by the qemu user; and, when the nodes
 * download k3s (`k3sAirgapDir` empty), that the host's firewall forwards the lab bridge's traffic
 * (infra/libvirt/forwarding.ts: Docker, UFW and firewalld can drop it).
 *
 * Synchronous on purpose (the program is CommonJS without top-level await, and this must finish
 * before resources are declared): `gatherHostFacts` runs a handful of `virsh`/`ip` commands;
 * `evaluatePreflight` is pure and table-tested.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { parseCidr } from "../config/cidr";
import { checkUri } from "./common";
import { TOOLS, type Tool } from "./exec";
import { checkForwarding, type ForwardingCheck } from "./forwarding";
import {
  networkOf,
  overlapMessage,
  parseLinkNames,
  parseIpRoutes,
  subnetConflicts,
  suggestFreeCidr,
  type HostNetwork,
  type HostRoute,
} from "./hostnet";
import { OWNER_PROJECT, parseDomainXml, parseNetworkXml, type Owner } from "./xml";

/** A node as the preflight needs it. */
export interface PreflightNode {
  readonly domainName: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
}

/** Disk space a directory must offer. */
export interface PreflightDisk {
  /** Directory that will hold the files (need not exist yet). */
  readonly path: string;
  readonly bytes: number;
  /** What the space is for, in messages ("node disks and seeds"). */
  readonly what: string;
  /** Whether qemu (libvirt-qemu) must reach files there (pool directories: yes; download caches: no). */
  readonly qemuReadable: boolean;
}

/** What the preflight checks against the host. */
export interface PreflightRequest {
  readonly uri: string;
  readonly stack: string;
  readonly accelerator: "kvm" | "qemu";
  readonly networkName: string;
  readonly bridgeName: string;
  readonly networkCidr: string;
  readonly nodes: readonly PreflightNode[];
  readonly disks: readonly PreflightDisk[];
  /** The nodes download k3s from the internet (`k3sAirgapDir` empty): the host must forward their traffic. */
  readonly onlineInstall: boolean;
}

/** A libvirt domain as far as the preflight cares. */
export interface HostDomain {
  readonly name: string;
  readonly owner: Owner | undefined;
  readonly running: boolean;
}

/** Network plus whether it is active (its bridge then exists). */
export interface HostNetworkState extends HostNetwork {
  readonly active: boolean;
}

/** Everything the preflight reads from the host (injected in tests). */
export interface HostFacts {
  /** Tools not found on PATH (or at their `*_BIN` override). */
  readonly missingTools: readonly Tool[];
  /** libvirt as seen through the URI; `error` when unreachable. */
  readonly libvirt:
    | {
        readonly reachable: true;
        readonly networks: readonly HostNetworkState[];
        readonly domains: readonly HostDomain[];
      }
    | { readonly reachable: false; readonly error: string };
  readonly routes: readonly HostRoute[];
  readonly links: readonly string[];
  /** Only gathered when accelerator is kvm. */
  readonly kvm: { readonly usable: boolean; readonly detail: string } | undefined;
  readonly memAvailableMiB: number;
  readonly cpus: number;
  /** Per requested disk path: free bytes at its nearest existing ancestor, and an ancestor others cannot search. */
  readonly disks: readonly { readonly path: string; readonly freeBytes: number; readonly unsearchable?: string }[];
  /** Whether the host forwards the lab bridge's traffic; only gathered for an online install. */
  readonly forwarding?: ForwardingCheck;
}

/** The checks, in the order doctor lists them. */
export const PREFLIGHT_CHECKS = [
  "host tools",
  "libvirt",
  "KVM",
  "CPUs",
  "memory",
  "disk",
  "subnet",
  "names",
  "firewall",
] as const;
/** One check of the preflight. */
export type PreflightCheck = (typeof PREFLIGHT_CHECKS)[number];

/**
 * One check's verdict, as `npm run lab -- doctor` prints it: `ok`, `fail` (the program stops) or
 * `unchecked` (not applicable, or not possible: `detail` says why). A failed row's `detail` and
 * `fix` are its problems' sentences split at "Fix:".
 */
export interface PreflightRow {
  readonly check: PreflightCheck;
  readonly status: "ok" | "fail" | "unchecked";
  readonly detail: string;
  readonly fix: string;
}

/** The preflight's verdict. */
export interface PreflightResult {
  /** Each a sentence with the fix; any problem stops the program. */
  readonly problems: readonly string[];
  /** Worth saying, not worth stopping for (CPU overcommit). */
  readonly warnings: readonly string[];
  /** Every check of {@link PREFLIGHT_CHECKS} with its verdict; the failed ones hold exactly `problems`. */
  readonly rows: readonly PreflightRow[];
}

/** What a passed or skipped check found: the detail of its row. */
function passedDetail(
  check: PreflightCheck,
  req: PreflightRequest,
  facts: HostFacts,
): Omit<PreflightRow, "check" | "fix"> & { readonly fix?: string } {
  const unreachable = !facts.libvirt.reachable
    ? { status: "unchecked" as const, detail: `libvirt is not reachable at ${req.uri}` }
    : undefined;
  const mib = req.nodes.reduce((sum, n) => sum + n.memoryMiB, 0);
  switch (check) {
    case "host tools":
      return { status: "ok", detail: `${Object.keys(TOOLS).join(", ")} on PATH` };
    case "libvirt":
      return { status: "ok", detail: `${req.uri} answers` };
    case "KVM":
      if (req.accelerator !== "kvm") {
        return { status: "unchecked", detail: "accelerator is qemu (TCG): KVM is not used" };
      }
      return facts.kvm
        ? { status: "ok", detail: "/dev/kvm is usable and libvirt offers the kvm domain type" }
        : (unreachable ?? { status: "unchecked", detail: "not read" });
    case "CPUs":
      return {
        status: "ok",
        detail: `${req.nodes.length} node(s) × ${Math.max(0, ...req.nodes.map((n) => n.vcpus))} vCPUs on ${facts.cpus} host CPUs`,
      };
    case "memory":
      return (
        unreachable ?? {
          status: "ok",
          detail: `${req.nodes.length} node(s) × ${req.nodes[0]?.memoryMiB ?? 0} MiB = ${mib} MiB; ${facts.memAvailableMiB} MiB available`,
        }
      );
    case "disk":
      return {
        status: "ok",
        detail: req.disks
          .map(
            (d) =>
              `${d.path}: ${((facts.disks.find((f) => f.path === d.path)?.freeBytes ?? 0) / 1024 ** 3).toFixed(1)} GiB free, ${(d.bytes / 1024 ** 3).toFixed(1)} GiB needed`,
          )
          .join("; "),
      };
    case "subnet":
      return (
        unreachable ?? {
          status: "ok",
          detail: `${req.networkCidr} overlaps no host route and no other libvirt network`,
        }
      );
    case "firewall":
      if (!req.onlineInstall) {
        return { status: "unchecked", detail: "k3sAirgapDir is set: the nodes download nothing" };
      }
      return facts.forwarding ?? { status: "unchecked", detail: "not read" };
    case "names":
    default:
      return (
        unreachable ?? {
          status: "ok",
          detail: `network ${req.networkName}, bridge ${req.bridgeName} and ${req.nodes.length} domain names are free or this stack's own`,
        }
      );
  }
}

/** The rows of every check from the problems found (tagged by check). */
function preflightRows(
  req: PreflightRequest,
  facts: HostFacts,
  found: readonly { check: PreflightCheck; text: string }[],
  warnings: readonly string[],
): PreflightRow[] {
  return PREFLIGHT_CHECKS.map((check) => {
    const mine = found.filter((f) => f.check === check).map((f) => f.text);
    if (mine.length === 0) {
      const passed = passedDetail(check, req, facts);
      const note = check === "CPUs" && warnings.length > 0 ? ` (${warnings.join(" ")})` : "";
      return { check, ...passed, detail: `${passed.detail}${note}`, fix: passed.fix ?? "" };
    }
    const parts = mine.map((text) => {
      const at = text.indexOf(" Fix: ");
      return at === -1
        ? { detail: text, fix: "" }
        : { detail: text.slice(0, at), fix: text.slice(at + " Fix: ".length) };
    });
    return {
      check,
      status: "fail",
      detail: parts.map((p) => p.detail).join(" "),
      fix: parts
        .map((p) => p.fix)
        .filter((f) => f !== "")
        .join(" "),
    };
  });
}

const ours = (owner: Owner | undefined, stack: string): boolean =>
  owner?.project === OWNER_PROJECT && owner.stack === stack;
const ownerText = (owner: Owner | undefined): string =>
  owner ? `${owner.project} stack "${owner.stack}"` : "none: not created by cilium-lab";

/** Judges the facts; pure. */
export function evaluatePreflight(req: PreflightRequest, facts: HostFacts): PreflightResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  const found: { check: PreflightCheck; text: string }[] = [];
  const fail = (check: PreflightCheck, text: string): void => {
    problems.push(text);
    found.push({ check, text });
  };

  const uriProblem = checkUri(req.uri);
  if (uriProblem !== undefined) {
    fail(
      "libvirt",
      `cilium-lab:libvirtUri ${uriProblem}. Fix: \`pulumi config set cilium-lab:libvirtUri qemu:///system\`.`,
    );
  }
  for (const tool of facts.missingTools) {
    fail(
      "host tools",
      `\`${tool}\` not found on PATH. Fix: \`apt-get install ${TOOLS[tool].pkg}\` (or set ${TOOLS[tool].env} to its path).`,
    );
  }

  if (!facts.libvirt.reachable) {
    if (!facts.missingTools.includes("virsh")) {
      fail(
        "libvirt",
        `cannot reach libvirt at ${req.uri}: ${facts.libvirt.error}. Fix: start the libvirt daemons (\`virtlogd -d && libvirtd -d\`, or \`systemctl start libvirtd\`) and check cilium-lab:libvirtUri.`,
      );
    }
  } else {
    const { networks, domains } = facts.libvirt;
    const sameName = networks.find((n) => n.name === req.networkName);
    if (sameName && !ours(sameName.owner, req.stack)) {
      fail(
        "names",
        `libvirt network "${req.networkName}" already exists and does not belong to stack "${req.stack}" (owner: ${ownerText(sameName.owner)}). ` +
          `Fix: remove it (\`virsh net-destroy ${req.networkName}; virsh net-undefine ${req.networkName}\`) or use another stack name.`,
      );
    }
    for (const node of req.nodes) {
      const dom = domains.find((d) => d.name === node.domainName);
      if (dom && !ours(dom.owner, req.stack)) {
        fail(
          "names",
          `libvirt domain "${node.domainName}" already exists and does not belong to stack "${req.stack}" (owner: ${ownerText(dom.owner)}). ` +
            `Fix: remove it (\`virsh destroy ${node.domainName}; virsh undefine ${node.domainName} --nvram\`) or use another stack name.`,
        );
      }
    }
    const ourBridgeUp =
      sameName !== undefined &&
      ours(sameName.owner, req.stack) &&
      sameName.active &&
      sameName.bridge === req.bridgeName;
    const otherNetWithBridge = networks.find((n) => n.bridge === req.bridgeName && n.name !== req.networkName);
    if (otherNetWithBridge) {
      fail(
        "names",
        `bridge "${req.bridgeName}" is used by libvirt network "${otherNetWithBridge.name}". Fix: remove that network or use another stack name.`,
      );
    } else if (facts.links.includes(req.bridgeName) && !ourBridgeUp) {
      fail(
        "names",
        `bridge "${req.bridgeName}" already exists on the host and belongs to no network of this stack (\`ip link show ${req.bridgeName}\`). ` +
          `Fix: remove it (\`ip link del ${req.bridgeName}\`) if it is a leftover, or use another stack name.`,
      );
    }
    const own = { networkName: req.networkName, bridgeName: ourBridgeUp ? req.bridgeName : "", stack: req.stack };
    // A foreign network with our name is reported above; don't also call it an overlap with itself.
    const others = networks.filter((n) => n.name !== req.networkName);
    const conflicts = subnetConflicts(req.networkCidr, facts.routes, others, own);
    if (conflicts.length > 0) {
      fail(
        "subnet",
        overlapMessage(req.networkCidr, req.networkName, conflicts, suggestFreeCidr(facts.routes, networks)),
      );
    }

    // Memory for the nodes not already running as ours (a re-run's VMs already hold theirs).
    const toStart = req.nodes.filter(
      (n) => !domains.some((d) => d.name === n.domainName && d.running && ours(d.owner, req.stack)),
    );
    const neededMiB = toStart.reduce((sum, n) => sum + n.memoryMiB, 0);
    if (neededMiB > facts.memAvailableMiB) {
      const each = toStart.length > 0 ? Math.floor(facts.memAvailableMiB / toStart.length / 256) * 256 : 0;
      fail(
        "memory",
        `${toStart.length} node(s) need ${neededMiB} MiB of memory but the host has ${facts.memAvailableMiB} MiB available (MemAvailable). ` +
          `Fix: ${each >= 1024 ? `\`pulumi config set cilium-lab:nodeMemoryMiB ${each}\`, ` : ""}lower cilium-lab:nodeCount, or free memory.`,
      );
    }
  }

  const maxCpus = Math.max(0, ...req.nodes.map((n) => n.vcpus));
  if (maxCpus > facts.cpus) {
    fail(
      "CPUs",
      `cilium-lab:nodeCpus ${maxCpus} exceeds the host's ${facts.cpus} CPUs. Fix: \`pulumi config set cilium-lab:nodeCpus ${facts.cpus}\`.`,
    );
  }
  const totalCpus = req.nodes.reduce((sum, n) => sum + n.vcpus, 0);
  if (totalCpus > facts.cpus && maxCpus <= facts.cpus) {
    warnings.push(
      `the nodes have ${totalCpus} vCPUs in total on a host with ${facts.cpus} CPUs: they share CPUs, so boots and iperf3 results are slower and noisier.`,
    );
  }

  if (req.accelerator === "kvm" && facts.kvm && !facts.kvm.usable) {
    fail(
      "KVM",
      `accelerator is kvm but KVM is not usable here: ${facts.kvm.detail}. ` +
        "Fix: `pulumi config set cilium-lab:accelerator qemu` (TCG software emulation: boots take minutes, so also raise cilium-lab:bootTimeoutSeconds, e.g. 900).",
    );
  }

  if (typeof parseCidr(req.networkCidr) === "string") {
    fail("subnet", `cilium-lab:networkCidr ${JSON.stringify(req.networkCidr)} is not a CIDR.`);
  }

  for (const disk of req.disks) {
    const fact = facts.disks.find((d) => d.path === disk.path);
    if (!fact) {
      continue;
    }
    if (fact.freeBytes < disk.bytes) {
      fail(
        "disk",
        `${disk.what} need ${(disk.bytes / 1024 ** 3).toFixed(1)} GiB in ${disk.path} but only ${(fact.freeBytes / 1024 ** 3).toFixed(1)} GiB are free. ` +
          "Fix: free space on that filesystem (or move the directory).",
      );
    }
    if (disk.qemuReadable && fact.unsearchable !== undefined) {
      fail(
        "disk",
        `${disk.what} go to ${disk.path}, but the qemu user (libvirt-qemu) cannot traverse ${fact.unsearchable}. ` +
          "Fix: use a directory under /var/lib/libvirt, or give the parent directories o+x.",
      );
    }
  }
  if (req.onlineInstall && facts.forwarding?.status === "fail") {
    fail(
      "firewall",
      `the nodes will not reach the internet, so k3s's download on them would fail minutes into \`up\` (\`Could not resolve host\`): ${facts.forwarding.detail}. ` +
        `Fix: ${facts.forwarding.fix}; or install air-gapped (cilium-lab:k3sAirgapDir).`,
    );
  } else if (req.onlineInstall && facts.forwarding?.status === "unchecked") {
    warnings.push(
      `host firewall: ${facts.forwarding.detail}${facts.forwarding.fix !== "" ? `. To check or fix: ${facts.forwarding.fix}` : ""}`,
    );
  }
  return { problems, warnings, rows: preflightRows(req, facts, found, warnings) };
}

// ---------------------------------------------------------------------------------------------
// Gathering (synchronous, read-only).

function toolPathSync(tool: Tool): string {
  const override = process.env[TOOLS[tool].env];
  return override !== undefined && override !== "" ? override : tool;
}

function runSync(
  file: string,
  args: readonly string[],
): { ok: boolean; stdout: string; stderr: string; missing: boolean } {
  try {
    const stdout = execFileSync(file, args, {
      encoding: "utf8",
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
      timeout: 30_000,
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 16 * 1024 * 1024,
    });
    return { ok: true, stdout, stderr: "", missing: false };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    return { ok: false, stdout: e.stdout ?? "", stderr: (e.stderr ?? e.message).trim(), missing: e.code === "ENOENT" };
  }
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
  const caps = runSync(toolPathSync("virsh"), ["-c", uri, "domcapabilities", "--virttype", "kvm"]);
  return caps.ok
    ? { usable: true, detail: "" }
    : { usable: false, detail: `libvirt has no kvm domain type (${lastLine(caps.stderr)})` };
}

/** Reads the host (a few `virsh`/`ip` calls, /proc/meminfo, statfs). */
export function gatherHostFacts(req: PreflightRequest): HostFacts {
  const missingTools = (Object.keys(TOOLS) as Tool[]).filter((tool) => {
    const r = runSync(toolPathSync(tool), tool === "ip" ? ["-V"] : tool === "ssh" ? ["-V"] : ["--version"]);
    return r.missing;
  });
  const virshBin = toolPathSync("virsh");
  let libvirt: HostFacts["libvirt"];
  const netNames = missingTools.includes("virsh")
    ? undefined
    : runSync(virshBin, ["-c", req.uri, "net-list", "--all", "--name"]);
  if (!netNames?.ok) {
    libvirt = { reachable: false, error: netNames ? lastLine(netNames.stderr) : "virsh not installed" };
  } else {
    const active = new Set(lines(runSync(virshBin, ["-c", req.uri, "net-list", "--name"]).stdout));
    const networks: HostNetworkState[] = [];
    for (const name of lines(netNames.stdout)) {
      const xml = runSync(virshBin, ["-c", req.uri, "net-dumpxml", name]);
      if (xml.ok) {
        const net = parseNetworkXml(xml.stdout);
        networks.push({
          name: net.name,
          owner: net.owner,
          bridge: net.bridge,
          cidrs: net.ips.map((i) => networkOf(i.address, i.prefix)),
          active: active.has(name),
        });
      }
    }
    const allDomains = new Set(lines(runSync(virshBin, ["-c", req.uri, "list", "--all", "--name"]).stdout));
    const running = new Set(lines(runSync(virshBin, ["-c", req.uri, "list", "--name"]).stdout));
    const domains: HostDomain[] = [];
    for (const node of req.nodes) {
      if (allDomains.has(node.domainName)) {
        const xml = runSync(virshBin, ["-c", req.uri, "dumpxml", node.domainName]);
        domains.push({
          name: node.domainName,
          owner: xml.ok ? parseDomainXml(xml.stdout).owner : undefined,
          running: running.has(node.domainName),
        });
      }
    }
    libvirt = { reachable: true, networks, domains };
  }
  const ipBin = toolPathSync("ip");
  const routes = runSync(ipBin, ["-j", "-4", "route", "show", "table", "all"]);
  const links = runSync(ipBin, ["-j", "link", "show"]);
  return {
    missingTools,
    libvirt,
    routes: routes.ok ? parseIpRoutes(routes.stdout) : [],
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

/** Every problem at once; `problems` holds one line each. */
export class LibvirtPreflightError extends Error {
  override name = "LibvirtPreflightError";
  constructor(readonly problems: readonly string[]) {
    super(
      `the host is not ready for cilium-lab (${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was created):\n` +
        problems.map((p) => `- ${p}`).join("\n"),
    );
  }
}

/** Environment variable that turns the preflight off (`off`): for mock tests of the program, or a host the checks misjudge. */
export const PREFLIGHT_ENV = "CILIUM_LAB_PREFLIGHT";

/**
 * Runs the preflight; throws {@link LibvirtPreflightError} listing every problem, else returns the
 * warnings for the program to log. `CILIUM_LAB_PREFLIGHT=off` skips it (returning a warning saying so).
 */
export function preflightLibvirt(req: PreflightRequest, facts?: HostFacts): readonly string[] {
  if (process.env[PREFLIGHT_ENV] === "off") {
    return [`host preflight skipped (${PREFLIGHT_ENV}=off): host problems will surface later, as resource errors`];
  }
  const { problems, warnings } = evaluatePreflight(req, facts ?? gatherHostFacts(req));
  if (problems.length > 0) {
    throw new LibvirtPreflightError(problems);
  }
  return warnings;
}

/** Rough disk needs, stated in messages as estimates. */
export const DISK_ESTIMATES = {
  /** An Ubuntu cloud image is 0.6–0.7 GiB; its copy in the pool directory the same. */
  baseImageBytes: 1024 ** 3,
  /** Per node overlay growth: OS updates, k3s with its images, Cilium images, logs. */
  perNodeBytes: 2 * 1024 ** 3,
} as const;

/**
 * The request for the lab's own layout: the plan's names, the config's sizes, the stack's pool
 * directory (base copy + overlays + seeds) and the image cache (the download).
 */
export function labPreflightRequest(
  config: {
    readonly libvirtUri: string;
    readonly accelerator: "kvm" | "qemu";
    readonly networkCidr: string;
    readonly nodeCpus: number;
    readonly nodeMemoryMiB: number;
    /** Empty or absent: the nodes download k3s (online install). */
    readonly k3sAirgapDir?: string;
  },
  plan: {
    readonly networkName: string;
    readonly bridgeName: string;
    readonly nodes: readonly { readonly domainName: string }[];
  },
  stack: string,
  dirs: { readonly poolDir: string; readonly imageCacheDir: string },
): PreflightRequest {
  return {
    uri: config.libvirtUri,
    stack,
    accelerator: config.accelerator,
    networkName: plan.networkName,
    bridgeName: plan.bridgeName,
    networkCidr: config.networkCidr,
    nodes: plan.nodes.map((n) => ({
      domainName: n.domainName,
      vcpus: config.nodeCpus,
      memoryMiB: config.nodeMemoryMiB,
    })),
    disks: [
      {
        path: dirs.poolDir,
        bytes: DISK_ESTIMATES.baseImageBytes + plan.nodes.length * DISK_ESTIMATES.perNodeBytes,
        what: `the base image copy and ${plan.nodes.length} node disks (estimate)`,
        qemuReadable: true,
      },
      {
        path: dirs.imageCacheDir,
        bytes: DISK_ESTIMATES.baseImageBytes,
        what: "the base image download (estimate)",
        qemuReadable: false,
      },
    ],
    onlineInstall: (config.k3sAirgapDir ?? "") === "",
  };
}
