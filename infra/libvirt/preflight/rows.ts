/** The preflight's rows, one per check, as `npm run lab -- doctor` prints them. Pure. */
import { TOOLS } from "../exec";
import { isLocalUri } from "./connection";
import {
  PREFLIGHT_CHECKS,
  type HostFacts,
  type PreflightCheck,
  type PreflightRequest,
  type PreflightRow,
} from "./types";

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
      if (facts.cpus === 0) {
        return unreachable ?? { status: "unchecked", detail: `${req.uri} did not say how many CPUs it has` };
      }
      return {
        status: "ok",
        detail: `${req.nodes.length} node(s) × ${Math.max(0, ...req.nodes.map((n) => n.vcpus))} vCPUs on ${facts.cpus} host CPUs`,
      };
    case "memory":
      return (
        unreachable ?? {
          status: "ok",
          detail: `${req.nodes.length} node(s) × ${req.nodes[0]?.memoryMiB ?? 0} MiB = ${mib} MiB; ${facts.memAvailableMiB} MiB available${facts.memSource !== undefined ? ` (${facts.memSource})` : ""}`,
        }
      );
    case "disk":
      return diskDetail(req, facts);
    case "subnet":
      if (req.bridge) {
        return {
          status: "unchecked",
          detail: `bridge mode: ${req.networkCidr} is the bridge's LAN; no libvirt network is created`,
        };
      }
      return (
        unreachable ?? {
          status: "ok",
          detail: `${req.networkCidr} overlaps no host route and no other libvirt network`,
        }
      );
    case "bridge":
      return unreachable ?? bridgeDetail(req, facts);
    case "addresses":
      return addressesDetail(req, facts);
    case "firewall":
      if (req.bridge) {
        return bridgeFirewallDetail(req, facts);
      }
      if (!isLocalUri(req.uri)) {
        return {
          status: "unchecked",
          detail: `the firewall is a fact of the libvirt host ${req.uri}: not checked from here`,
        };
      }
      if (!req.onlineInstall) {
        return { status: "unchecked", detail: "k3sAirgapDir is set: the nodes download nothing" };
      }
      return facts.forwarding ?? { status: "unchecked", detail: "not read" };
    case "names":
    default:
      return (
        unreachable ?? {
          status: "ok",
          detail: req.bridge
            ? `${req.nodes.length} domain names are free or this stack's own (bridge mode: no libvirt network)`
            : `network ${req.networkName}, bridge ${req.bridgeName} and ${req.nodes.length} domain names are free or this stack's own`,
        }
      );
  }
}

/** Free space per disk, with where the figure comes from; a disk that could not be measured makes the row unchecked. */
function diskDetail(req: PreflightRequest, facts: HostFacts): Omit<PreflightRow, "check" | "fix"> {
  const parts = req.disks.map((d) => {
    const f = facts.disks.find((x) => x.path === d.path);
    if (f?.unchecked !== undefined) {
      return `${d.path}: ${f.unchecked}`;
    }
    const from = f?.source !== undefined && f.source !== "statfs" ? ` (${f.source})` : "";
    return `${d.path}: ${((f?.freeBytes ?? 0) / 1024 ** 3).toFixed(1)} GiB free${from}, ${(d.bytes / 1024 ** 3).toFixed(1)} GiB needed`;
  });
  const unchecked = req.disks.some((d) => facts.disks.find((x) => x.path === d.path)?.unchecked !== undefined);
  return { status: unchecked ? "unchecked" : "ok", detail: parts.join("; ") };
}

function bridgeDetail(req: PreflightRequest, facts: HostFacts): Omit<PreflightRow, "check" | "fix"> {
  if (!req.bridge) {
    return { status: "unchecked", detail: "networkMode is nat: the lab's own libvirt network brings its bridge" };
  }
  const b = facts.hostBridge;
  if (b && "unsupported" in b.libvirt && !b.local) {
    return {
      status: "unchecked",
      detail: `libvirt's interface driver on ${req.uri} cannot see host interfaces (${b.libvirt.unsupported}): bridge "${req.bridge.name}" not checked`,
    };
  }
  if (b && !b.local && "found" in b.libvirt && b.libvirt.found && !b.libvirt.operUp) {
    return {
      status: "ok",
      detail: `bridge "${req.bridge.name}" exists on ${req.uri}; libvirt reports it inactive (no port with carrier yet, or set down): see the warning`,
    };
  }
  const how = b?.local
    ? "`ip link` (local) and libvirt's interface driver"
    : `libvirt's interface driver on ${req.uri}`;
  return { status: "ok", detail: `bridge "${req.bridge.name}" exists and is up (${how})` };
}

function addressesDetail(req: PreflightRequest, facts: HostFacts): Omit<PreflightRow, "check" | "fix"> {
  if (!req.bridge) {
    return { status: "unchecked", detail: "networkMode is nat: the lab's own network hands out the addresses" };
  }
  const probe = facts.addressProbe;
  if (!probe || "unavailable" in probe) {
    return { status: "unchecked", detail: `not probed: ${probe?.unavailable ?? "not read"}` };
  }
  if (probe.probed.length === 0) {
    return { status: "unchecked", detail: "no node address to probe" };
  }
  return {
    status: "ok",
    detail: `nothing else answers on ${probe.probed.join(", ")} (best-effort probe from this host: TCP port 22 and ARP; the guests' duplicate-address detection is the real check)`,
  };
}

function bridgeFirewallDetail(req: PreflightRequest, facts: HostFacts): Omit<PreflightRow, "check" | "fix"> {
  const b = facts.hostBridge;
  if (!isLocalUri(req.uri)) {
    return {
      status: "unchecked",
      detail: `br_netfilter and the FORWARD policy are facts of the libvirt host ${req.uri}: not checked from here (check them there: \`sysctl net.bridge.bridge-nf-call-iptables\`, \`iptables -S FORWARD\`)`,
    };
  }
  if (b?.nfCallIptables === "not loaded" || b?.nfCallIptables === "0") {
    return {
      status: "ok",
      detail: `local check: ${b.nfCallIptables === "0" ? "net.bridge.bridge-nf-call-iptables=0" : "br_netfilter is not loaded"}, so bridged frames skip iptables`,
    };
  }
  if (b?.bridged?.status === "ok") {
    return { status: "ok", detail: `local check: br_netfilter is on, and ${b.bridged.detail}` };
  }
  return { status: "unchecked", detail: `local check: ${b?.bridged?.detail ?? "not read"}` };
}

/** The rows of every check from the problems found (tagged by check). */
export function preflightRows(
  req: PreflightRequest,
  facts: HostFacts,
  found: readonly { check: PreflightCheck; text: string }[],
  warnings: readonly string[],
): PreflightRow[] {
  return PREFLIGHT_CHECKS.map((check) => {
    const mine = found.filter((f) => f.check === check).map((f) => f.text);
    if (mine.length === 0) {
      const passed = passedDetail(check, req, facts);
      const cpuWarnings = warnings.filter((w) => w.startsWith("the nodes have "));
      const note = check === "CPUs" && cpuWarnings.length > 0 ? ` (${cpuWarnings.join(" ")})` : "";
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
