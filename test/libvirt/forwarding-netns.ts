// Network namespaces for the forwarding check's netns suites: a namespace per case, the real
// rulesets loaded with iptables-legacy-restore, iptables-nft-restore or `nft -f` (never switching
// the host's iptables alternative), and the check's own gathering run inside it through
// `ip netns exec`. Every namespace is named `PREFIX-<pid>-<n>…` and deleted, also on failure
// (`deleteOurNamespaces` in `test.after.always`).
import { execFileSync } from "node:child_process";

import { checkForwarding, hostRunner, type ForwardingCheck, type Runner } from "../../infra/libvirt/forwarding";
import { LAB_BRIDGE, LAB_CIDR } from "./forwarding-rulesets";

export const TARGET = { bridgeName: LAB_BRIDGE, networkCidr: LAB_CIDR };
const PREFIX = "cl-t-fw";
let seq = 0;

/** A name for the next namespace of this process. */
export function nextNamespace(): string {
  return `${PREFIX}-${process.pid}-${seq++}`;
}

export const sh = (args: readonly string[], input?: string): void => {
  execFileSync(args[0] ?? "", args.slice(1), { input, stdio: ["pipe", "pipe", "pipe"] });
};

/** Runs a command inside namespace `ns`. */
export const nsExec = (ns: string, ...args: string[]): void => sh(["ip", "netns", "exec", ns, ...args]);

/** The check's runner, inside namespace `ns`. */
export const inNs =
  (ns: string): Runner =>
  (file, args) => {
    const r = hostRunner("ip", ["netns", "exec", ns, file, ...args]);
    return { ...r, missing: r.missing || /exec of "[^"]*" failed: No such file/.test(r.stderr) };
  };

/** A ruleset and the tool that loads it. */
export type Load =
  | { readonly with: "iptables-legacy" | "iptables-nft"; readonly rules: string }
  | { readonly with: "nft"; readonly rules: string };

/** A ruleset loaded with `nft -f`. */
export const nft = (rules: string): Load => ({ with: "nft", rules });
/** A ruleset loaded with iptables-legacy-restore or iptables-nft-restore. */
export const iptables = (flavor: "iptables-legacy" | "iptables-nft", rules: string): Load => ({ with: flavor, rules });

/** Loads the rulesets into namespace `ns`, in order. */
export function loadRules(ns: string, loads: readonly Load[]): void {
  for (const load of loads) {
    // Absolute paths: under `npm test` PATH starts with node_modules/.bin, where @vercel/nft has a CLI named nft.
    sh(
      [
        "ip",
        "netns",
        "exec",
        ns,
        ...(load.with === "nft" ? ["/usr/sbin/nft", "-f", "-"] : [`/usr/sbin/${load.with}-restore`]),
      ],
      load.rules,
    );
  }
}

/** A fresh namespace with the rulesets loaded; runs the check inside it; always deletes the namespace. */
export function checkIn(
  loads: readonly Load[],
  extra: (ns: string) => void = () => undefined,
  run?: (ns: string) => Runner,
): ForwardingCheck {
  const ns = nextNamespace();
  sh(["ip", "netns", "add", ns]);
  try {
    nsExec(ns, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1");
    nsExec(ns, "ip", "addr", "add", "198.51.100.2/24", "dev", "uplink0");
    nsExec(ns, "ip", "link", "set", "uplink0", "up");
    nsExec(ns, "ip", "route", "add", "default", "via", "198.51.100.1", "dev", "uplink0");
    nsExec(ns, "ip", "link", "add", "virbr0", "type", "bridge");
    loadRules(ns, loads);
    extra(ns);
    return checkForwarding(TARGET, (run ?? inNs)(ns));
  } finally {
    sh(["ip", "netns", "del", ns]);
  }
}

/** Deletes every namespace this process made that is still there. */
export function deleteOurNamespaces(): void {
  for (const line of execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (name.startsWith(`${PREFIX}-${process.pid}-`)) {
      sh(["ip", "netns", "del", name]);
    }
  }
}

/** The check's row when every forward hook accepts, `n` base chains checked. */
export const OK = (n: number): ForwardingCheck => ({
  status: "ok",
  detail: `forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is accepted by every forward hook (${n} base chain${n === 1 ? "" : "s"} checked)`,
  fix: "",
});

/** The check's row when `where` drops the nodes' traffic, with `fix`. */
export const DROPPED = (where: string, fix: string): ForwardingCheck => ({
  status: "fail",
  detail: `forwarded traffic of bridge cl-vxlan-1a2b (192.168.150.0/24) to the internet is dropped: ${where}`,
  fix,
});
