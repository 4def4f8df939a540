/**
 * doctor's rows: one per thing the stack's config needs from this host, each `ok`, `fail` (with
 * its fix) or `unchecked` (with why). Every builder is pure over injected facts (command results,
 * host facts, probe answers), so each row's failure and fix are table-tested.
 */
import type { HostInputCheck } from "../../infra/config/host-inputs";
import type { PreflightRow } from "../../infra/libvirt/preflight";
import { endpointHost, pluginAsset, type PluginSpec, type UpstreamEndpoint } from "../../infra/upstreams";
import { judge, type ProbeAnswer } from "./probe";
import type { StackConfigResult } from "./stack-config";

/** One line of the report (`--json` prints these). */
export interface DoctorRow {
  readonly check: string;
  readonly status: "ok" | "fail" | "unchecked";
  readonly detail: string;
  /** What to do; "" unless failed. */
  readonly fix: string;
}

/** A command's outcome: exit code, or the spawn error code (`ENOENT`), and its output. */
export interface CommandResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

const ok = (check: string, detail: string): DoctorRow => ({ check, status: "ok", detail, fix: "" });
const fail = (check: string, detail: string, fix: string): DoctorRow => ({ check, status: "fail", detail, fix });
const unchecked = (check: string, detail: string): DoctorRow => ({ check, status: "unchecked", detail, fix: "" });

/** The stack config row. */
export function configRow(stack: string | undefined, loaded: StackConfigResult): DoctorRow {
  const where =
    stack === undefined
      ? "no stack named: the defaults"
      : loaded.file.exists
        ? loaded.file.file
        : `${loaded.file.file} does not exist yet: the defaults`;
  const secrets =
    loaded.file.secretKeys.length > 0
      ? `; secret keys not read here (no passphrase): ${loaded.file.secretKeys.join(", ")}`
      : "";
  if (!loaded.ok) {
    return fail(
      "stack config",
      `${where}: ${loaded.problems.join(" ")}`,
      `npm run lab -- config ${stack ?? "<stack>"} set cilium-lab:<key> <value> (or edit the stack file)`,
    );
  }
  const c = loaded.config;
  const warnings = loaded.warnings.length > 0 ? `; warnings: ${loaded.warnings.join(" ")}` : "";
  return ok(
    "stack config",
    `${where}: ${c.routingMode}, ${c.nodeCount} nodes × ${c.nodeCpus} vCPUs × ${c.nodeMemoryMiB} MiB, image ${c.image}, accelerator ${c.accelerator}${secrets}${warnings}`,
  );
}

const INSTALL_PULUMI =
  'Install it (https://www.pulumi.com/docs/install/), or on a host without internet access build it from Go modules: eval "$(bash scripts/toolchain.sh)"';

/** The Pulumi CLI row, from `pulumi version`. */
export function pulumiRow(version: CommandResult): DoctorRow {
  if (version.code === "ENOENT") {
    return fail("Pulumi CLI", "pulumi is not on PATH", INSTALL_PULUMI);
  }
  if (version.code !== 0) {
    return fail(
      "Pulumi CLI",
      `\`pulumi version\` failed (exit ${version.code}): ${(version.stderr || version.stdout).trim().split("\n").slice(-1)[0] ?? ""}`,
      INSTALL_PULUMI,
    );
  }
  return ok("Pulumi CLI", `pulumi ${version.stdout.trim()}`);
}

/** Installed plugins from `pulumi plugin ls --json` (`[{name, kind, version, …}]`); undefined when unreadable. */
export function installedPlugins(ls: CommandResult): { name: string; kind: string; version: string }[] | undefined {
  if (ls.code !== 0) {
    return undefined;
  }
  try {
    const parsed = JSON.parse(ls.stdout === "" ? "[]" : ls.stdout) as unknown;
    return Array.isArray(parsed) ? (parsed as { name: string; kind: string; version: string }[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The download hosts' verdict for one plugin: `undefined` when not probed. */
export interface PluginDownload {
  readonly reachable: boolean;
  /** Each source with its result. */
  readonly detail: string;
}

/** One plugin's row: installed, or downloadable on the first `up`, or neither (fail). */
export function pluginRow(
  plugin: PluginSpec,
  version: CommandResult,
  ls: CommandResult,
  download: PluginDownload | undefined,
  env: Readonly<Record<string, string | undefined>>,
): DoctorRow {
  const check = `plugin ${plugin.name} ${plugin.version}`;
  if (version.code !== 0) {
    return unchecked(check, "no working pulumi CLI to ask");
  }
  const installed = installedPlugins(ls);
  if (installed === undefined) {
    return unchecked(
      check,
      `\`pulumi plugin ls --json\` failed (exit ${ls.code}): ${(ls.stderr || ls.stdout).trim().split("\n").slice(-1)[0] ?? ""}`,
    );
  }
  if (
    installed.some(
      (p) => p.kind === "resource" && p.name === plugin.name && p.version.replace(/^v/, "") === plugin.version,
    )
  ) {
    return ok(check, "installed (pulumi plugin ls)");
  }
  const copy =
    `On a host with internet access run \`pulumi plugin install resource ${plugin.name} ${plugin.version}\` ` +
    `and copy its $PULUMI_HOME/plugins/resource-${plugin.name}-v${plugin.version} directory (PULUMI_HOME defaults to ~/.pulumi) into this host's, ` +
    `or put ${pluginAsset(plugin)} on a reachable server and set PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES.`;
  const off = (env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION ?? "").toLowerCase();
  if (off === "true" || off === "1") {
    return fail(
      check,
      "not installed, and PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is set: `up` cannot download it",
      `${copy} Or unset PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION on a host with internet access.`,
    );
  }
  if (download === undefined) {
    return unchecked(
      check,
      "not installed; the first `up` downloads it from github.com or get.pulumi.com (not probed: --no-probe)",
    );
  }
  if (download.reachable) {
    return ok(check, `not installed; the first \`up\` downloads it, probed from this host: ${download.detail}`);
  }
  return fail(
    check,
    `not installed, and no download source answered, probed from this host: ${download.detail}`,
    `Allow this host to reach github.com, release-assets.githubusercontent.com or get.pulumi.com (HTTPS), or: ${copy}`,
  );
}

/** The preflight's rows, named `host <check>`; without a stack the names cannot be checked. */
export function preflightDoctorRows(rows: readonly PreflightRow[], stack: string | undefined): DoctorRow[] {
  return rows.map((r) =>
    r.check === "names" && stack === undefined
      ? unchecked("libvirt names", "no stack named: the network and domain names come from it")
      : { check: r.check === "names" ? "libvirt names" : r.check, status: r.status, detail: r.detail, fix: r.fix },
  );
}

/** One row per host-side input. */
export function hostInputRows(checks: readonly HostInputCheck[]): DoctorRow[] {
  return checks.map((c) => {
    if (c.skipped !== undefined) {
      return unchecked(c.input, `not used: ${c.skipped}`);
    }
    if (c.problems.length === 0) {
      return ok(c.input, c.ok ?? "usable");
    }
    return fail(c.input, c.problems.map((p) => `${p.problem}.`).join(" "), c.problems.map((p) => p.fix).join(" "));
  });
}

/** The fix when a group of endpoints cannot be reached. */
export function upstreamFix(
  group: string,
  endpoints: readonly UpstreamEndpoint[],
  failedHosts: readonly string[],
): string {
  const hosts = failedHosts.join(", ");
  const from = endpoints[0]?.from === "nodes" ? "the lab network (NAT through this host)" : "this host";
  const allow = `Allow ${from} to reach ${hosts} (HTTPS; check the proxy, firewall allowlist and DNS)`;
  if (group === "base image" || group === "Ubuntu image index") {
    return `${allow}, or use a local image: cilium-lab:image custom with cilium-lab:imageUrl file:///path and cilium-lab:imageSha256.`;
  }
  if (group === "Helm repository") {
    return `${allow}, or fetch the chart elsewhere (\`helm pull cilium/cilium --version <ciliumVersion>\`) and set cilium-lab:ciliumChart to the .tgz.`;
  }
  if (group.startsWith("registry ")) {
    return `${allow}, or put the images into the air-gap directory's tarballs (cilium-lab:k3sAirgapDir) or use a mirror (cilium-lab:iperf3Image).`;
  }
  if (endpoints[0]?.from === "nodes") {
    return `${allow}, or install k3s from files: cilium-lab:k3sAirgapDir (README, "Air-gapped install").`;
  }
  return `${allow}.`;
}

/**
 * One row per group of endpoints, every one probed from this host (the nodes' traffic leaves
 * through it too). A group passes when one of its entries answers as needed. `answers` is
 * undefined when probing was turned off.
 */
export function upstreamRows(
  endpoints: readonly UpstreamEndpoint[],
  answers: ReadonlyMap<string, ProbeAnswer> | undefined,
): DoctorRow[] {
  const groups = new Map<string, UpstreamEndpoint[]>();
  for (const e of endpoints) {
    groups.set(e.group, [...(groups.get(e.group) ?? []), e]);
  }
  return [...groups].map(([group, list]) => {
    const check = `${list[0]?.from === "nodes" ? "nodes →" : "host →"} ${group}`;
    const why = list[0]?.why ?? "";
    if (answers === undefined) {
      return unchecked(
        check,
        `not probed (--no-probe): ${[...new Set(list.map((e) => endpointHost(e.url)))].join(", ")}; ${why}`,
      );
    }
    const results = list.map((e) => {
      const a = answers.get(e.url);
      const verdict = a === undefined ? { ok: false, text: "not probed" } : judge(e, a);
      return { e, ...verdict };
    });
    const detail = `probed from this host: ${results.map((r) => `${r.e.url} ${r.text}`).join("; ")} — ${why}`;
    if (results.some((r) => r.ok)) {
      return ok(check, detail);
    }
    const failedHosts = [...new Set(results.map((r) => endpointHost(r.e.url)))];
    return fail(check, detail, upstreamFix(group, list, failedHosts));
  });
}

/** Whether each plugin's download sources answer, from the probes. */
export function pluginDownload(
  plugin: PluginSpec,
  endpoints: readonly UpstreamEndpoint[],
  answers: ReadonlyMap<string, ProbeAnswer> | undefined,
): PluginDownload | undefined {
  if (answers === undefined) {
    return undefined;
  }
  const mine = endpoints.filter((e) => e.group === `plugin ${plugin.name} ${plugin.version}`);
  const results = mine.map((e) => {
    const a = answers.get(e.url);
    return { e, ...(a === undefined ? { ok: false, text: "not probed" } : judge(e, a)) };
  });
  return {
    reachable: results.some((r) => r.ok),
    detail: results.map((r) => `${endpointHost(r.e.url)} ${r.text}`).join("; "),
  };
}
