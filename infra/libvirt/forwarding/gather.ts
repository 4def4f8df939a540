/** What the forwarding check reads from the host, and how (read-only commands, injectable for tests). */
import { existsSync } from "node:fs";

import { runSync, type SyncResult } from "../run-sync";

/** One row of the check: `ok`, `fail` (the nodes will not reach the internet) or `unchecked` (we could not tell). */
export interface ForwardingCheck {
  readonly status: "ok" | "fail" | "unchecked";
  /** One sentence: what was found. */
  readonly detail: string;
  /** The command(s) that fix it; "" when ok. */
  readonly fix: string;
}

/** The lab network the check is about. */
export interface ForwardingTarget {
  readonly bridgeName: string;
  readonly networkCidr: string;
}

/** What the check reads from the host (each text `undefined` when its tool is missing or failed). */
export interface ForwardingFacts {
  /** `iptables-legacy-save` output. */
  readonly iptablesLegacy?: string;
  /** `iptables-nft-save` output. */
  readonly iptablesNft?: string;
  /** `nft -j list ruleset` output. */
  readonly nftJson?: string;
  /** Which backend the plain `iptables` command uses (`iptables -V`): libvirt 9 and Docker run that one. */
  readonly iptablesBackend?: "legacy" | "nft";
  /** The default route's interface, if any. */
  readonly uplink?: string;
  /** Whether the lab's bridge exists now (its network is up). */
  readonly bridgeUp: boolean;
  /** `/proc/sys/net/ipv4/ip_forward`, when readable. */
  readonly ipForward?: string;
  /** Set when the rules could not be read for lack of privileges: the error text. */
  readonly permissionDenied?: string;
}

/** Runs a read-only command; injectable so tests can run it inside a network namespace. */
export type Runner = (file: string, args: readonly string[]) => SyncResult;

/** The default runner: C locale, 5 s and 32 MiB of output at most each, nothing written. */
export const hostRunner: Runner = (file, args) =>
  runSync(file, args, { timeoutMs: 5_000, maxBufferBytes: 32 * 1024 * 1024 });

const DENIED = /permission denied|operation not permitted|must be root/i;

/**
 * A system tool by absolute path when it is in an sbin/bin directory: under `npm run`/`npm test`
 * PATH starts with node_modules/.bin, where @vercel/nft (a dependency of the toolchain) installs a
 * CLI also called `nft`.
 */
function systemTool(name: string): string {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"]) {
    if (existsSync(`${dir}/${name}`)) {
      return `${dir}/${name}`;
    }
  }
  return name;
}

/** Reads the rulesets and the few host facts the check needs; read-only, a handful of commands. */
export function gatherForwardingFacts(target: ForwardingTarget, run: Runner = hostRunner): ForwardingFacts {
  let permissionDenied: string | undefined;
  const read = (file: string, args: readonly string[]): string | undefined => {
    const r = run(file, args);
    if (!r.ok && DENIED.test(r.stderr)) {
      permissionDenied ??= `${file.replace(/^.*\//, "")}: ${r.stderr.split("\n").slice(-1)[0] ?? r.stderr}`;
    }
    return r.ok ? r.stdout : undefined;
  };
  const version = run(systemTool("iptables"), ["-V"]);
  const uplink = /\bdev (\S+)/.exec(run(systemTool("ip"), ["-4", "route", "show", "default"]).stdout)?.[1];
  return {
    iptablesLegacy: read(systemTool("iptables-legacy-save"), []),
    iptablesNft: read(systemTool("iptables-nft-save"), []),
    nftJson: read(systemTool("nft"), ["-j", "list", "ruleset"]),
    ...(version.ok
      ? { iptablesBackend: /nf_tables/.test(version.stdout) ? ("nft" as const) : ("legacy" as const) }
      : {}),
    ...(uplink !== undefined ? { uplink } : {}),
    bridgeUp: run(systemTool("ip"), ["link", "show", "dev", target.bridgeName]).ok,
    ...((): { ipForward?: string } => {
      const r = run(systemTool("cat"), ["/proc/sys/net/ipv4/ip_forward"]);
      return r.ok ? { ipForward: r.stdout.trim() } : {};
    })(),
    ...(permissionDenied !== undefined ? { permissionDenied } : {}),
  };
}
