/**
 * An agent's own view: what `cilium status` / `cilium-dbg status` prints in the agent pod (1.16+
 * prints `Routing: Network: Tunnel [vxlan] Host: Legacy`; older agents say nothing about routing, so
 * their version, health and IPAM lines are what we keep). Pure: no I/O, no Pulumi.
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
  /** Pod CIDR from `IPAM: IPv4: 4/254 allocated from 10.0.1.0/24`. */
  readonly ipamCidr: string | null;
  /** Exit code and output tail when the command failed. */
  readonly error: string | null;
}

function statusField(output: string, key: string): string | null {
  const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:[ \\t]+(.+?)[ \\t]*$`, "m");
  return re.exec(output)?.[1] ?? null;
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
    ipamCidr: /allocated from (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out)?.[1] ?? null,
    error: facts.exitCode === 0 ? null : `\`${facts.command}\` exited ${facts.exitCode}: ${tail}`,
  };
}
