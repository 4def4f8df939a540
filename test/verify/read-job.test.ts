/**
 * scripts/node/read-iperf3-job.sh reading netperf Jobs (its 4th argument), run for real with bash
 * against the `k3s kubectl` stand-in (test/verify/fake-kubectl.sh), with a real netperf 2.7.0
 * capture as the Job log: the log comes back as printed and parses, and a failed netperf Job (exit
 * 255 without a netserver) is reported as a netperf Job with its log tail. The iperf3 cases are in
 * scripts.test.ts.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { nodeScript } from "../../infra/node-scripts";
import { parseNetperf } from "../../infra/verify/netperf";
import { fixture } from "./lab-evidence";
import { fakeDirs, run, type Ran } from "./support";

const NS = "cilium-lab-iperf3";
const fakeDir = fakeDirs(test, "clv-read-job-");

async function reader(files: Record<string, string>, args: readonly string[]): Promise<{ r: Ran; dir: string }> {
  const dir = await fakeDir(files);
  const r = await run("bash", [nodeScript("read-iperf3-job.sh").path, ...args], {
    timeoutMs: 60_000,
    env: {
      ...process.env,
      KUBECTL: `bash ${path.join(__dirname, "fake-kubectl.sh")}`,
      FAKE_DIR: dir,
      POLL_SECONDS: "0.1",
    },
  });
  return { r, dir };
}

test("read-iperf3-job.sh … netperf prints a completed netperf Job's log as netperf printed it", async (t) => {
  const log = fixture("netperf-2.7.0-tcp_crr.txt");
  const { r } = await reader(
    {
      "job-netperf-crr-pod-1-k.status.1": "",
      "job-netperf-crr-pod-1-k.status": "Complete:CompletionsReached:Reached expected number of succeeded pods\n",
      "joblogs-netperf-crr-pod-1-k.txt": log,
    },
    [NS, "netperf-crr-pod-1-k", "60", "netperf"],
  );
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${log.trimEnd()}\n`);
  t.true(parseNetperf(r.stdout, "TCP_CRR").transactionsPerSecond > 0);
});

test("read-iperf3-job.sh … netperf reports a failed netperf Job (exit 255, no netserver) with its log tail and deletes it", async (t) => {
  const { r, dir } = await reader(
    {
      "job-netperf-rr-host-2-k.status":
        "FailureTarget:BackoffLimitExceeded:Job has reached the specified backoff limit\nFailed:BackoffLimitExceeded:Job has reached the specified backoff limit\n",
      "joblogs-netperf-rr-host-2-k.txt": fixture("netperf-2.7.0-no-netserver.txt"),
    },
    [NS, "netperf-rr-host-2-k", "60", "netperf"],
  );
  t.is(r.code, 1);
  t.true(
    r.stderr.startsWith(
      `netperf client job ${NS}/netperf-rr-host-2-k failed: the Job failed (BackoffLimitExceeded:Job has reached the specified backoff limit)\nLast log lines:\n`,
    ),
    r.stderr,
  );
  t.true(r.stderr.includes("establish control: are you sure there is a netserver listening on"), r.stderr);
  await t.notThrowsAsync(fs.access(path.join(dir, "deleted-netperf-rr-host-2-k")));

  const bad = await reader({}, [NS, "netperf-rr-host-2-k", "60", "sockperf"]);
  t.is(bad.r.code, 2);
  t.is(bad.r.stderr, "tool must be iperf3 or netperf (got sockperf)\n");
});
