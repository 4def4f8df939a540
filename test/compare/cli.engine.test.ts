/**
 * `npm run compare` itself on the REAL PULUMI ENGINE, with the test program of
 * test/compare/engine-project.ts in place of the cluster layers: main() writes results.json,
 * report.md and throughput.svg, prints the summary and exits 0; a real SIGINT to the command (in a
 * child process, test/compare/cli-child.ts) lets the running `up` finish, starts nothing else,
 * restores the stack file and exits 130. The orchestration's own cases: orchestrate.engine.test.ts.
 *
 * Needs `pulumi` on PATH: eval "$(bash scripts/toolchain.sh)" (what .ci/run does).
 */
import test from "ava";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { main } from "../../scripts/compare/index";
import { REPO_ROOT } from "../support/stack-files";
import { engineProject } from "./engine-project";

test.serial(
  "real Pulumi engine, test program: the command itself (`compare --modes vxlan,native --destroy`) writes results.json, report.md and throughput.svg, prints the summary, restores the stack file and exits 0",
  async (t) => {
    const p = await engineProject(t, "cli");
    const results = path.join(p.dir, "results");
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      ["--modes", "vxlan,native", "--stack", "cli", "--destroy", "--results", results],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      { projectDir: p.dir, env: p.env },
    );
    if (code !== 0) {
      const dirs = await fs.readdir(results);
      t.log(await fs.readFile(path.join(results, dirs[0] ?? "", "results.json"), "utf8"));
    }
    t.is(code, 0, [...err, ...out].join("\n"));
    const [run] = await fs.readdir(results);
    t.regex(run ?? "", /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    const dir = path.join(results, run ?? "");
    t.deepEqual((await fs.readdir(dir)).sort(), [
      "latency.svg",
      "pulumi.log",
      "report.md",
      "results.json",
      "throughput.svg",
    ]);
    const json = JSON.parse(await fs.readFile(path.join(dir, "results.json"), "utf8")) as {
      modes: { mode: string; status: string }[];
      destroyed: boolean;
      configRestored: boolean;
      environment: { nodeHosts?: unknown };
    };
    t.deepEqual(json.environment.nodeHosts, {
      source: "stack output nodeHosts",
      hosts: { "node-1": "qemu:///system", "node-2": "qemu:///system", "node-3": "qemu:///system" },
      pair: "node-2 ↔ node-3 is on one host: traffic never leaves it",
    });
    t.deepEqual(
      json.modes.map((m) => [m.mode, m.status]),
      [
        ["vxlan", "measured"],
        ["native", "measured"],
      ],
    );
    t.true(json.destroyed);
    t.true(json.configRestored);
    const report = await fs.readFile(path.join(dir, "report.md"), "utf8");
    t.true(
      report.includes(
        "| native | confirmed (requested native, observed native) | 1266.0 [1253.3–1278.7] | 1138.0 [1126.6–1149.4] | 1.11 | 1.11 |",
      ),
    );
    t.true(
      report.includes(
        "| node-3 host | qemu:///system |\n| measured pair | node-2 ↔ node-3 is on one host: traffic never leaves it |\n",
      ),
    );
    t.true((await fs.readFile(path.join(dir, "throughput.svg"), "utf8")).startsWith("<svg"));
    t.regex(out[1] ?? "", /^compare: done in \d+s \(stack cli\)$|^compare: done in \d+m\d\ds \(stack cli\)$/);
    t.true(
      out.some((l) => /^ {2}native {2}measured {2}confirmed {2}1266\.0 +1138\.0 +1\.11$/.test(l)),
      out.join("\n"),
    );
    t.true(out.includes("  lab:     destroyed"));
    t.true(
      err.some((l) => / vxlan \(1\/2\) up: done in /.test(l)),
      "progress on stderr",
    );
    t.true(
      err.some((l) =>
        l.endsWith(
          "] plan 2/2: native will change Cilium values only (routingMode vxlan → native, autoDirectNodeRoutes false → true, nativeRoutingCidr 10.0.0.0/16 → 10.0.0.0/22 from the previous variant)",
        ),
      ),
      "what each variant changes, said before anything runs",
    );
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
    t.deepEqual((await p.readLog()).slice(-3), ["delete cilium", "delete k3s", "delete vms"]);
  },
);

test.serial(
  "real Pulumi engine, test program: a real SIGINT to the command during a slow up lets that up finish, runs nothing else, restores the stack file, prints how to recover and exits 130",
  async (t) => {
    const p = await engineProject(t, "cli-sigint", ["native"], 6000);
    const env = {
      PULUMI_BACKEND_URL: p.env.PULUMI_BACKEND_URL ?? "",
      PULUMI_CONFIG_PASSPHRASE_FILE: p.env.PULUMI_CONFIG_PASSPHRASE_FILE ?? "",
    };
    const child = spawn(
      process.execPath,
      [
        "--import=tsx",
        path.join(__dirname, "cli-child.ts"),
        JSON.stringify({
          argv: [
            "--modes",
            "vxlan,native,geneve",
            "--stack",
            "cli-sigint",
            "--destroy",
            "--results",
            path.join(p.dir, "results"),
          ],
          projectDir: p.dir,
          env,
        }),
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    let sent = false;
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      // The slow "Cilium" update of native is under way: Ctrl-C once.
      if (!sent && stderr.includes("  update cilium (pulumi-nodejs:dynamic/compareTest:Recorded)")) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 5 * 60_000);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(timer);
    t.true(sent, stderr);
    t.is(code, 130, `${stderr}\n${stdout}`);
    t.true(
      stderr.includes(
        "Ctrl-C: stopping after the current Pulumi operation (Ctrl-C again interrupts it); the stack config will be restored",
      ),
    );
    t.regex(stderr, /native \(2\/3\) up: done in /, "the running up finished");
    t.false(stderr.includes("geneve (3/3)"), "nothing new started");
    t.false(stderr.includes("destroy: started"), "no destroy after Ctrl-C");
    t.true(stdout.includes("compare: INTERRUPTED in "));
    t.true(stdout.includes("  npm run lab -- cancel cli-sigint "));
    t.true(stdout.includes("  npm run lab -- destroy cli-sigint "));
    t.is(await fs.readFile(p.settingsFile, "utf8"), p.original);
    t.deepEqual(await p.readLog(), [
      "create vms nodeCount=3 nodeCpus=4",
      "create k3s kubeProxyReplacement=false",
      "create cilium autoDirectNodeRoutes=false nativeRoutingCidr=10.0.0.0/16 routingMode=vxlan",
      "update cilium autoDirectNodeRoutes=true nativeRoutingCidr=10.0.0.0/22 routingMode=native",
    ]);
    await p.stack.destroy();
  },
);
