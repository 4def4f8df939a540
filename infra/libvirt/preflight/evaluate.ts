/**
 * The preflight's verdict on the host facts: pure and table-tested. Each group of checks is its own
 * function reporting through `fail` (stops the program) and `warn` (worth saying only), called in
 * the order the problems are listed.
 */
import { parseCidr } from "../../config/cidr";
import { checkUri } from "../common";
import { userInfo } from "node:os";

import { TOOLS, isNotPermitted } from "../exec";
import { classifySshFailure } from "../remote";
import { overlapMessage, subnetConflicts, suggestFreeCidr } from "../hostnet";
import { OWNER_PROJECT, type Owner } from "../xml";
import { checkAddresses, checkBridge, checkBridgeFirewall } from "./evaluate-bridge";
import { isLocalUri } from "./connection";
import { preflightRows } from "./rows";
import type {
  HostDomain,
  HostFacts,
  HostNetworkState,
  PreflightCheck,
  PreflightRequest,
  PreflightResult,
} from "./types";

/** Records a problem of one check. */
export type Fail = (check: PreflightCheck, text: string) => void;
/** Records a warning. */
export type Warn = (text: string) => void;

/** Whether a libvirt object's ownership stamp is this stack's. */
export const ours = (owner: Owner | undefined, stack: string): boolean =>
  owner?.project === OWNER_PROJECT && owner.stack === stack;
const ownerText = (owner: Owner | undefined): string =>
  owner ? `${owner.project} stack "${owner.stack}"` : "none: not created by cilium-lab";

/** The URI, the host tools, and whether libvirt answers. */
function checkTools(req: PreflightRequest, facts: HostFacts, fail: Fail): void {
  const uriProblem = checkUri(req.uri);
  if (uriProblem !== undefined) {
    // Some reasons carry their own fix (qemu:///session, no_verify): that one is the fix, once.
    const fix = uriProblem.includes(" Fix: ") ? "" : " Fix: `pulumi config set cilium-lab:libvirtUri qemu:///system`.";
    fail("libvirt", `cilium-lab:libvirtUri ${uriProblem}.${fix}`);
  }
  for (const tool of facts.missingTools) {
    fail(
      "host tools",
      `\`${tool}\` not found on PATH. Fix: \`apt-get install ${TOOLS[tool].pkg}\` (or set ${TOOLS[tool].env} to its path).`,
    );
  }
  if (!facts.libvirt.reachable && !facts.missingTools.includes("virsh")) {
    fail(
      "libvirt",
      `cannot reach libvirt at ${req.uri}: ${facts.libvirt.error}. Fix: ${connectionFix(req.uri, facts.libvirt.error)}`,
    );
  }
}

/** The fix for a connection that failed: the group (polkit), the SSH side of a remote URI, or the daemons. */
function connectionFix(uri: string, error: string): string {
  if (isNotPermitted({ argv: [], code: 1, stdout: "", stderr: error })) {
    // Debian's libvirt-daemon-system grants org.libvirt.unix.manage to group libvirt through polkit
    // (/usr/share/polkit-1/rules.d/60-libvirt.rules): membership is all an ordinary user needs.
    const who = isLocalUri(uri) ? userInfo().username : "<the ssh login>";
    return `${isLocalUri(uri) ? "" : "on that host: "}\`sudo usermod -aG libvirt ${who}\`, then log in again (or \`newgrp libvirt\`); the lab needs no root.`;
  }
  const ssh = isLocalUri(uri) ? undefined : classifySshFailure(uri, { code: 1, stderr: error });
  if (ssh) {
    return `${ssh.fix}.`;
  }
  if (!isLocalUri(uri)) {
    return `check that \`virsh -c ${uri} version\` works from this shell: the host key in ~/.ssh/known_hosts (\`ssh <host>\` once), the key in ssh-agent or ?keyfile=, and the remote user in group libvirt.`;
  }
  return "start the libvirt daemons (`virtlogd -d && libvirtd -d`, or `systemctl start libvirtd`) and check cilium-lab:libvirtUri.";
}

/** The network, domain and bridge names are free or this stack's own; then the subnet overlap. */
function checkNamesAndSubnet(
  req: PreflightRequest,
  facts: HostFacts,
  networks: readonly HostNetworkState[],
  domains: readonly HostDomain[],
  fail: Fail,
): void {
  const sameName = req.bridge ? undefined : networks.find((n) => n.name === req.networkName);
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
  if (req.bridge) {
    return; // no libvirt network and no bridge of ours: the host bridge is checked by checkBridge
  }
  const ourBridgeUp =
    sameName !== undefined && ours(sameName.owner, req.stack) && sameName.active && sameName.bridge === req.bridgeName;
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
}

/** Memory for the nodes not already running as ours (a re-run's VMs already hold theirs). */
function checkMemory(req: PreflightRequest, facts: HostFacts, domains: readonly HostDomain[], fail: Fail): void {
  const toStart = req.nodes.filter(
    (n) => !domains.some((d) => d.name === n.domainName && d.running && ours(d.owner, req.stack)),
  );
  const neededMiB = toStart.reduce((sum, n) => sum + n.memoryMiB, 0);
  if (neededMiB > facts.memAvailableMiB && facts.memSource?.startsWith("not read") !== true) {
    const each = toStart.length > 0 ? Math.floor(facts.memAvailableMiB / toStart.length / 256) * 256 : 0;
    fail(
      "memory",
      `${toStart.length} node(s) need ${neededMiB} MiB of memory but the host has ${facts.memAvailableMiB} MiB available (${facts.memSource ?? "MemAvailable"}). ` +
        `Fix: ${each >= 1024 ? `\`pulumi config set cilium-lab:nodeMemoryMiB ${each}\`, ` : ""}lower cilium-lab:nodeCount, or free memory.`,
    );
  }
}

/** CPUs per node against the host's; overcommit in total is only a warning. Then KVM and the CIDR. */
function checkCpuKvmCidr(req: PreflightRequest, facts: HostFacts, fail: Fail, warn: Warn): void {
  const maxCpus = Math.max(0, ...req.nodes.map((n) => n.vcpus));
  // cpus 0: a remote host that did not answer `virsh nodeinfo` (reported as unreachable instead).
  if (maxCpus > facts.cpus && facts.cpus > 0) {
    fail(
      "CPUs",
      `cilium-lab:nodeCpus ${maxCpus} exceeds the host's ${facts.cpus} CPUs. Fix: \`pulumi config set cilium-lab:nodeCpus ${facts.cpus}\`.`,
    );
  }
  const totalCpus = req.nodes.reduce((sum, n) => sum + n.vcpus, 0);
  if (totalCpus > facts.cpus && maxCpus <= facts.cpus && facts.cpus > 0) {
    warn(
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
}

/** Free space, and that qemu can reach the pool directories. */
function checkDisks(req: PreflightRequest, facts: HostFacts, fail: Fail): void {
  for (const disk of req.disks) {
    const fact = facts.disks.find((d) => d.path === disk.path);
    if (!fact || fact.unchecked !== undefined) {
      continue;
    }
    if (fact.freeBytes < disk.bytes) {
      fail(
        "disk",
        `${disk.what} need ${(disk.bytes / 1024 ** 3).toFixed(1)} GiB in ${disk.path} but only ${(fact.freeBytes / 1024 ** 3).toFixed(1)} GiB are free. ` +
          "Fix: free space on that filesystem (or move the directory).",
      );
    }
    if (disk.qemuReadable && fact.unsearchable !== undefined && disk.pool === undefined) {
      fail(
        "disk",
        `${disk.what} go to ${disk.path}, but the qemu user (libvirt-qemu) cannot traverse ${fact.unsearchable}. ` +
          "Fix: use a directory under /var/lib/libvirt, or give the parent directories o+x.",
      );
    }
  }
}

/** For an online install: the host forwards the lab bridge's traffic. */
function checkFirewall(req: PreflightRequest, facts: HostFacts, fail: Fail, warn: Warn): void {
  if (req.bridge) {
    return; // bridge mode: the host routes nothing for the nodes; checkBridgeFirewall judges the bridge
  }
  if (req.onlineInstall && facts.forwarding?.status === "fail") {
    fail(
      "firewall",
      `the nodes will not reach the internet, so k3s's download on them would fail minutes into \`up\` (\`Could not resolve host\`): ${facts.forwarding.detail}. ` +
        `Fix: ${facts.forwarding.fix}; or install air-gapped (cilium-lab:k3sAirgapDir).`,
    );
  } else if (req.onlineInstall && facts.forwarding?.status === "unchecked") {
    warn(
      `host firewall: ${facts.forwarding.detail}${facts.forwarding.fix !== "" ? `. To check or fix: ${facts.forwarding.fix}` : ""}`,
    );
  }
}

/** Judges the facts; pure. */
export function evaluatePreflight(req: PreflightRequest, facts: HostFacts): PreflightResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  const found: { check: PreflightCheck; text: string }[] = [];
  const fail: Fail = (check, text) => {
    problems.push(text);
    found.push({ check, text });
  };
  const warn: Warn = (text) => {
    warnings.push(text);
  };
  checkTools(req, facts, fail);
  if (facts.libvirt.reachable) {
    checkNamesAndSubnet(req, facts, facts.libvirt.networks, facts.libvirt.domains, fail);
    checkMemory(req, facts, facts.libvirt.domains, fail);
  }
  checkCpuKvmCidr(req, facts, fail, warn);
  checkDisks(req, facts, fail);
  checkBridge(req, facts, fail, warn);
  checkAddresses(req, facts, fail);
  checkFirewall(req, facts, fail, warn);
  checkBridgeFirewall(req, facts, fail, warn);
  return { problems, warnings, rows: preflightRows(req, facts, found, warnings) };
}
