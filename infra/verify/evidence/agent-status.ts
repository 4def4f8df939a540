/**
 * An agent's own view: what `cilium status` / `cilium-dbg status` prints in the agent pod: health,
 * version, IPAM, routing (1.16+ `Routing: Network: Tunnel [vxlan]   Host: Legacy`; 1.13–1.15 only
 * `Host Routing: Legacy|BPF`) and the feature lines the article lists. Pure: no I/O, no Pulumi.
 *
 * The lines come from cilium/cilium `pkg/client/client.go` `FormatStatusResponse`, written through a
 * tabwriter (a `\t` in a format string becomes a run of spaces), so every field is read up to the end
 * of its line and split on whitespace. The spellings, as its format strings print them:
 * - `KubeProxyReplacement:\t%s\t%s` — the mode (`Disabled`, `Strict` up to 1.13, `True`/`False`
 *   from 1.14) and `[<dev> <ip> (Direct Routing), …]`;
 * - `IPv4 BIG TCP:\t%s` / `IPv6 BIG TCP:\t%s` — `Disabled`, or `Enabled\t[<max GSO>]` or
 *   `Enabled\t[<max GRO>, <max GSO>]` (IPv4 from 1.14, with its Helm key `enableIPv4BIGTCP`);
 * - `BandwidthManager:\t%s` — `Disabled`, or `EDT with BPF [%s] [%s]` (congestion control in upper
 *   case, `BBR` or `CUBIC`, then the devices), as cilium/cilium@00c1fdc6 prints it; older agents
 *   printed only the devices, `EDT with BPF\t[%s]` (cilium/cilium@1a57f867, which has no BIG TCP
 *   lines yet; captured from 1.10.0-rc2 in cilium/cilium#16280: `BandwidthManager:       EDT with BPF   [ens192]`);
 * - `Host Routing:\t%s` (up to 1.15, cilium/cilium@00c1fdc6) — `Legacy` or `BPF`; from 1.16
 *   (cilium/cilium#32036, "cilium-dbg: Expose Cilium network routing status") `Routing:\t%s` with
 *   `"Network: " + Tunnel|Native`, ` [<protocol>]` in tunnel mode, then `"\tHost: " + Legacy|BPF`;
 * - `Masquerading:\t%s` — `Disabled`, `IPTables [IPv4: Enabled, IPv6: Disabled]`, or
 *   `BPF\t[<devices>]\t<SNAT exclusion CIDR> [IPv4: …, IPv6: …]` (`BPF (ip-masq-agent)` with it).
 */
import { parseCiliumVersion } from "../../cilium/values";
import type { AgentFacts } from "./collectors";

/** The in-pod agent CLI of a chart version: `cilium` up to 1.14, `cilium-dbg` from 1.15 (cilium/cilium#32348 and the 1.15 rename). */
export function agentCli(ciliumVersion: string): "cilium" | "cilium-dbg" {
  return parseCiliumVersion(ciliumVersion).minor >= 15 ? "cilium-dbg" : "cilium";
}

/** What an agent's `cilium status` / `cilium-dbg status` says. */
export interface AgentStatus {
  readonly pod: string;
  readonly command: string;
  /** The command exited 0 and the `Cilium:` line says `Ok`. */
  readonly ok: boolean;
  /** `Cilium:` state (`Ok`, `Warning`, `Failure`), `null` when absent. */
  readonly state: string | null;
  /** Agent version from the `Cilium:` line, e.g. `1.13.4`. */
  readonly version: string | null;
  /** `Routing:` line (1.16+): `Network: Tunnel [vxlan] Host: Legacy`; `null` on older agents. */
  readonly routing: {
    readonly network: "Tunnel" | "Native";
    readonly protocol: string | null;
    readonly host: string | null;
    readonly line: string;
  } | null;
  /** `Host Routing:` (1.13–1.15): `Legacy` or `BPF`. */
  readonly hostRouting: string | null;
  readonly kubeProxyReplacement: string | null;
  readonly masquerading: string | null;
  /** `IPv4 BIG TCP:` as printed (`Disabled`, `Enabled [65536]`); `null` when the agent has no such line (1.13). */
  readonly ipv4BigTcp: string | null;
  /** `IPv6 BIG TCP:` as printed. */
  readonly ipv6BigTcp: string | null;
  /** `BandwidthManager:` as printed (`Disabled`, `EDT with BPF [BBR] [eth0]`). */
  readonly bandwidthManager: string | null;
  /** Pod CIDR from `IPAM: IPv4: 4/254 allocated from 10.0.1.0/24`. */
  readonly ipamCidr: string | null;
  /** Exit code and output tail when the command failed. */
  readonly error: string | null;
}

/** The value of the top-level line `<key>:` (tabwriter padding collapsed to one space); `null` when absent. */
export function statusField(output: string, key: string): string | null {
  const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:[ \\t]+(.+?)[ \\t]*$`, "m");
  return re.exec(output)?.[1]?.replace(/\s+/g, " ") ?? null;
}

/** Parses one agent's status output. */
export function parseAgentStatus(facts: AgentFacts): AgentStatus {
  const out = facts.output;
  const cilium = /^Cilium:[ \t]+(\S+)[ \t]+v?(\d+\.\d+\.\d+)/m.exec(out);
  const routing =
    /^Routing:[ \t]+(Network:[ \t]+(Tunnel|Native)(?:[ \t]+\[([^\]]+)\])?(?:[ \t]+Host:[ \t]+(\S+))?)/m.exec(out);
  const state = cilium?.[1] ?? statusField(out, "Cilium")?.split(/\s+/)[0] ?? null;
  const tail = out.trimEnd().split("\n").slice(-5).join("\n");
  return {
    pod: facts.pod,
    command: facts.command,
    ok: facts.exitCode === 0 && state === "Ok",
    state,
    version: cilium?.[2] ?? null,
    routing: routing
      ? {
          network: routing[2] as "Tunnel" | "Native",
          protocol: routing[3] ?? null,
          host: routing[4] ?? null,
          line: routing[1]?.replace(/\s+/g, " ") ?? "",
        }
      : null,
    hostRouting: statusField(out, "Host Routing"),
    kubeProxyReplacement: statusField(out, "KubeProxyReplacement"),
    masquerading: statusField(out, "Masquerading"),
    ipv4BigTcp: statusField(out, "IPv4 BIG TCP"),
    ipv6BigTcp: statusField(out, "IPv6 BIG TCP"),
    bandwidthManager: statusField(out, "BandwidthManager"),
    ipamCidr: /allocated from (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out)?.[1] ?? null,
    error: facts.exitCode === 0 ? null : `\`${facts.command}\` exited ${facts.exitCode}: ${tail}`,
  };
}
