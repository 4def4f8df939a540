/** The preflight's rows, one per check, as `npm run lab -- doctor` prints them. Pure. */
import { TOOLS } from "../exec";
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
