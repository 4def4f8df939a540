/**
 * `npm run lab -- doctor [stack] [--json] [--no-probe]`: what the stack's config needs from this
 * host, checked in seconds, creating nothing — no Pulumi state, no passphrase, no stack, no libvirt
 * object. It reads stacks/Pulumi.<stack>.yaml directly (every default without a stack) and runs the
 * program's own checks: the config parser, the host-side inputs, the libvirt preflight (with its
 * forwarding/firewall check); then asks the Pulumi CLI for its version and plugins and probes every upstream
 * the config uses from this host. Exit 0 when nothing failed, 1 otherwise, 2 on bad usage.
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { hostInputChecks, type HostInputOptions } from "../../infra/config/host-inputs";
import {
  evaluatePreflight,
  gatherHostFacts,
  labPreflightRequests,
  type HostFacts,
  type PreflightRequest,
} from "../../infra/libvirt/preflight";
import { planLab } from "../../infra/plan";
import { cacheRoot } from "../../infra/libvirt/base-image";
import { defaultPoolDir } from "../../infra/nodes/nodes";
import { upstreamEndpoints, type PluginSpec } from "../../infra/upstreams";
import { run } from "../compare/preflight";
import { probe, type ProbeAnswer } from "./probe";
import {
  configRow,
  hostInputRows,
  pluginDownload,
  pluginRow,
  preflightDoctorRows,
  pulumiRow,
  upstreamRows,
  type CommandResult,
  type DoctorRow,
} from "./rows";
import { loadStackConfig } from "./stack-config";

/** The repository: its Pulumi.yaml, stacks/ and package.json. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

export const USAGE = `usage: npm run lab -- doctor [stack] [--json] [--no-probe]
  Checks what the stack's config (stacks/Pulumi.<stack>.yaml; the defaults without a stack) needs
  from this host, in seconds, and creates nothing. Rows: ✓ ok, ✗ failed (with its fix), – not checked (with why).
  --json      print [{check, status, detail, fix}] instead of the table
  --no-probe  do not contact the upstream hosts (air-gapped hosts)
  Exit 0 when nothing failed, 1 otherwise.`;

/** Parsed command line. */
export interface DoctorArgs {
  readonly stack?: string;
  readonly json: boolean;
  readonly probe: boolean;
  readonly help: boolean;
}

/** Parses `[stack] [--json] [--no-probe] [--help]`; throws with the usage on anything else. */
export function parseDoctorArgs(argv: readonly string[]): DoctorArgs {
  let stack: string | undefined;
  let json = false;
  let probing = true;
  let help = false;
  for (const arg of argv) {
    if (arg === "--json") {
      json = true;
    } else if (arg === "--no-probe") {
      probing = false;
    } else if (arg === "--help" || arg === "-h") {
      help = true;
    } else if (!arg.startsWith("-") && stack === undefined && /^[A-Za-z0-9_.-]+$/.test(arg)) {
      stack = arg;
    } else {
      throw new Error(`doctor: unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
    }
  }
  return { ...(stack !== undefined ? { stack } : {}), json, probe: probing, help };
}

/** The resource plugins the program needs: package.json's exact @pulumi/command and @pulumi/kubernetes versions. */
export function requiredPlugins(projectDir: string): PluginSpec[] {
  const pkg = JSON.parse(readFileSync(path.join(projectDir, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return ["command", "kubernetes"].flatMap((name) => {
    const version = pkg.dependencies?.[`@pulumi/${name}`];
    return version === undefined ? [] : [{ name, version: version.replace(/^[\^~=]/, "") }];
  });
}

/** Everything doctor reads from the outside world; tests inject their own. */
export interface DoctorDeps {
  readonly projectDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Runs a command (the Pulumi CLI); never throws. */
  readonly run: (file: string, args: readonly string[], env: NodeJS.ProcessEnv) => Promise<CommandResult>;
  readonly hostFacts: (req: PreflightRequest) => HostFacts;
  readonly probe: (url: string) => Promise<ProbeAnswer>;
  readonly hostInputs?: HostInputOptions;
}

/** The real host. */
export function hostDeps(env: NodeJS.ProcessEnv = process.env, projectDir: string = REPO_ROOT): DoctorDeps {
  return {
    projectDir,
    env,
    run: (file, args, e) => run(file, args, e, 15_000),
    hostFacts: gatherHostFacts,
    probe: (url) => probe(url),
  };
}

/** Every row, in the order printed. */
export async function doctorRows(args: DoctorArgs, deps: DoctorDeps): Promise<DoctorRow[]> {
  const loaded = loadStackConfig(deps.projectDir, args.stack);
  const rows: DoctorRow[] = [configRow(args.stack, loaded)];
  const plugins = requiredPlugins(deps.projectDir);
  const endpoints = loaded.ok ? upstreamEndpoints(loaded.config, plugins) : [];
  const answers =
    args.probe && loaded.ok
      ? new Map(
          await Promise.all(
            [...new Set(endpoints.map((e) => e.url))].map(async (url) => [url, await deps.probe(url)] as const),
          ),
        )
      : undefined;

  const pulumiEnv = { ...deps.env, PULUMI_SKIP_UPDATE_CHECK: "true" } as NodeJS.ProcessEnv;
  const version = await deps.run("pulumi", ["version"], pulumiEnv);
  rows.push(pulumiRow(version));
  const ls = version.code === 0 ? await deps.run("pulumi", ["plugin", "ls", "--json"], pulumiEnv) : version;
  for (const plugin of plugins) {
    rows.push(pluginRow(plugin, version, ls, pluginDownload(plugin, endpoints, answers), deps.env));
  }

  if (!loaded.ok) {
    rows.push({
      check: "host and upstreams",
      status: "unchecked",
      detail: "the stack config does not parse (see above)",
      fix: "",
    });
    return rows;
  }
  const config = loaded.config;
  const plan = planLab(config, args.stack ?? "default");
  const reqs = labPreflightRequests(config, plan, args.stack ?? "default", {
    poolDir: defaultPoolDir(plan),
    imageCacheDir: cacheRoot(deps.env, os.homedir()),
  });
  for (const req of reqs) {
    // Several libvirt hosts (nodeHosts): each host's rows carry its URI.
    const host = reqs.length > 1 ? ` (${req.uri})` : "";
    const hostRows = preflightDoctorRows(evaluatePreflight(req, deps.hostFacts(req)).rows, args.stack);
    rows.push(...hostRows.map((r) => ({ ...r, check: `${r.check}${host}` })));
  }
  rows.push(
    ...hostInputRows(
      hostInputChecks(config, { cwd: deps.projectDir, pathEnv: deps.env.PATH ?? "", ...deps.hostInputs }),
    ),
  );
  const pluginGroups = new Set(plugins.map((p) => `plugin ${p.name} ${p.version}`));
  const allInstalled = rows.filter((r) => r.check.startsWith("plugin ")).every((r) => r.detail.startsWith("installed"));
  rows.push(
    ...upstreamRows(
      endpoints.filter(
        (e) => !pluginGroups.has(e.group) && !(allInstalled && e.group === "plugin downloads: GitHub's redirect"),
      ),
      answers,
    ),
  );
  return rows;
}

const MARK = { ok: "✓", fail: "✗", unchecked: "–" } as const;

/** The table: a mark, the check and its detail per row; each failed row's fix below it. */
export function renderRows(rows: readonly DoctorRow[], title: string): string {
  const width = Math.max(...rows.map((r) => r.check.length));
  const lines = [title, ""];
  for (const r of rows) {
    lines.push(`${MARK[r.status]} ${r.check.padEnd(width)}  ${r.detail}`);
    if (r.status === "fail" && r.fix !== "") {
      lines.push(`  ${" ".repeat(width)}  fix: ${r.fix}`);
    }
  }
  const failed = rows.filter((r) => r.status === "fail").length;
  lines.push(
    "",
    failed === 0
      ? "doctor: nothing failed."
      : `doctor: ${failed} check${failed === 1 ? "" : "s"} failed; fix ${failed === 1 ? "it" : "them"} before \`npm run lab -- up\`.`,
  );
  return lines.join("\n");
}

/** The command; returns the exit code. */
export async function main(
  argv: readonly string[],
  out: (text: string) => void,
  deps: DoctorDeps = hostDeps(),
): Promise<number> {
  let args: DoctorArgs;
  try {
    args = parseDoctorArgs(argv);
  } catch (err) {
    out((err as Error).message);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const rows = await doctorRows(args, deps);
  out(
    args.json
      ? JSON.stringify(rows, null, 2)
      : renderRows(
          rows,
          `cilium-lab doctor: stack ${args.stack ?? "(none: defaults)"}; upstreams ${args.probe ? "probed from this host" : "not probed"}`,
        ),
  );
  return rows.some((r) => r.status === "fail") ? 1 : 0;
}
