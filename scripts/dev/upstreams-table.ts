/**
 * Prints the README's firewall allowlist from infra/upstreams.ts, the one list doctor probes:
 *   npx tsx scripts/dev/upstreams-table.ts
 * test/scripts/doctor-upstreams.test.ts fails when README.md's table differs from this output.
 */
import { parseLabConfig, type LabConfig } from "../../infra/config";
import { endpointHost, upstreamEndpoints, type PluginSpec } from "../../infra/upstreams";
import { REPO_ROOT, requiredPlugins } from "../doctor/index";

/** The configs the table has a column for. */
export const TABLE_CONFIGS: readonly { readonly title: string; readonly config: LabConfig }[] = [
  { title: "defaults (online)", config: parseLabConfig({}).config },
  {
    title: "air-gapped¹",
    config: parseLabConfig({
      k3sAirgapDir: "/srv/k3s-airgap",
      ciliumChart: "./charts/cilium-1.13.4.tgz",
      image: "custom",
      imageUrl: "file:///srv/images/base.qcow2",
      imageSha256: "0".repeat(64),
    }).config,
  },
];

/** The Markdown table: one row per host and side (host or nodes), a ✓ per config that contacts it. */
export function upstreamsTable(plugins: readonly PluginSpec[] = requiredPlugins(REPO_ROOT)): string {
  const rows = new Map<
    string,
    { host: string; from: string; ports: Set<string>; what: Set<string>; configs: Set<number> }
  >();
  TABLE_CONFIGS.forEach(({ config }, i) => {
    for (const e of upstreamEndpoints(config, plugins)) {
      const host = endpointHost(e.url);
      const key = `${e.from} ${host}`;
      const row = rows.get(key) ?? {
        host,
        from: e.from,
        ports: new Set<string>(),
        what: new Set<string>(),
        configs: new Set<number>(),
      };
      const u = new URL(e.url);
      row.ports.add(u.port !== "" ? u.port : u.protocol === "http:" ? "80" : "443");
      row.what.add(e.group.replace(/ \([^)]*\)$/, ""));
      row.configs.add(i);
      rows.set(key, row);
    }
  });
  const header = `| host | port | contacted by | for | ${TABLE_CONFIGS.map((c) => c.title).join(" | ")} |`;
  const rule = `|---|---|---|---|${TABLE_CONFIGS.map(() => "---").join("|")}|`;
  const lines = [...rows.values()].map(
    (r) =>
      `| \`${r.host}\` | ${[...r.ports].join(", ")} | ${r.from === "host" ? "this host" : "the nodes"} | ${[...r.what].join("; ")} | ${TABLE_CONFIGS.map((_, i) => (r.configs.has(i) ? "✓" : "")).join(" | ")} |`,
  );
  return [header, rule, ...lines].join("\n");
}

if (require.main === module) {
  process.stdout.write(`${upstreamsTable()}\n`);
}
