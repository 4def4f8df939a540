/**
 * The shell scripts the verification runs on the k3s server, run for real with bash against a
 * stand-in for `k3s kubectl` (test/verify/fake-kubectl.sh: no cluster can exist here), with real
 * iperf3 documents as Job logs. Each runs as the nodes get it, scripts/node/lib.sh in front
 * (infra/node-scripts.ts). Also: the four scripts are shellcheck-clean, and their output is what
 * the TypeScript parsers accept.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { parseClusterFacts } from "../../infra/verify/evidence";
import { parseIperf3Json } from "../../infra/verify/iperf3";
import { parseServerAddresses } from "../../infra/verify/verify";
import { nodeScript } from "../../infra/node-scripts";
import { agentStatus113, fakeDirs, loopbackIperf3, prerequisites, run, type Ran } from "./support";

const FAKE = path.join(__dirname, "fake-kubectl.sh");
const NS = "cilium-lab-iperf3";

/** A fresh $FAKE_DIR with `files` (removed after the tests). */
const fakeDir = fakeDirs(test, "clv-kubectl-");

function script(
  name: string,
  args: readonly string[],
  dir: string,
  extraEnv: Record<string, string> = {},
): Promise<Ran> {
  return run("bash", [nodeScript(name).path, ...args], {
    timeoutMs: 60_000,
    env: { ...process.env, KUBECTL: `bash ${FAKE}`, FAKE_DIR: dir, POLL_SECONDS: "0.1", ...extraEnv },
  });
}

const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => false,
  );

test("the verification scripts and the kubectl stand-in are shellcheck-clean", async (t) => {
  const names = ["collect-evidence.sh", "collect-cilium-state.sh", "wait-iperf3-servers.sh", "read-iperf3-job.sh"].map(
    (n) => nodeScript(n).path,
  );
  const r = await run("shellcheck", [...names, FAKE]).catch((err: unknown) => ({
    code: -1,
    stdout: "",
    stderr: `shellcheck is missing (apt-get install shellcheck): ${String(err)}`,
  }));
  t.is(r.code, 0, r.stdout + r.stderr);
});

test("collect-cilium-state.sh prints cilium-config, CiliumNodes, Nodes and every agent's status as one document", async (t) => {
  const node = { name: "node-2", ip: "192.168.150.12", podCidr: "10.0.1.0/24" };
  const dir = await fakeDir({
    "configmap.json": JSON.stringify(
      { apiVersion: "v1", kind: "ConfigMap", data: { tunnel: "vxlan", "auto-direct-node-routes": "false" } },
      null,
      2,
    ),
    "ciliumnodes.txt": "node-1|10.0.0.0/24|192.168.150.11\nnode-2|10.0.1.0/24|192.168.150.12\n",
    "nodes.txt": "node-1||192.168.150.11\nnode-2||192.168.150.12\n",
    "agents.txt": "cilium-aaaaa node-1\ncilium-bbbbb node-2\n",
    "status-cilium-aaaaa.txt": 'Error: "Unable to contact agent"\ttab',
    "status-cilium-aaaaa.rc": "1",
    "status-cilium-bbbbb.txt": agentStatus113(node),
  });
  const r = await script("collect-cilium-state.sh", ["cilium", "5"], dir);
  t.is(r.code, 0, r.stderr);
  const facts = parseClusterFacts(r.stdout);
  t.deepEqual(facts.configMap, { tunnel: "vxlan", "auto-direct-node-routes": "false" });
  t.deepEqual(facts.nodes, [
    { name: "node-1", internalIp: "192.168.150.11", podCidrs: ["10.0.0.0/24"], podCidrSource: "CiliumNode" },
    { name: "node-2", internalIp: "192.168.150.12", podCidrs: ["10.0.1.0/24"], podCidrSource: "CiliumNode" },
  ]);
  t.deepEqual(
    facts.agents.map((a) => [a.pod, a.node, a.command, a.exitCode]),
    [
      ["cilium-aaaaa", "node-1", "cilium status", 1],
      ["cilium-bbbbb", "node-2", "cilium status", 0],
    ],
  );
  t.is(facts.agents[0]?.output, 'Error: "Unable to contact agent"\ttab');
  t.is(facts.agents[1]?.output, agentStatus113(node));
  const calls = await fs.readFile(path.join(dir, "calls"), "utf8");
  t.true(calls.startsWith("-n kube-system rollout status daemonset/cilium --timeout=5s\n"));
  t.true(calls.includes("-n kube-system exec cilium-bbbbb -c cilium-agent -- cilium status\n"));
});

test("collect-cilium-state.sh reports the hubble-relay Deployment: absent, rolled out, or not ready with the rollout's words", async (t) => {
  const node = { name: "node-2", ip: "192.168.150.12", podCidr: "10.0.1.0/24" };
  const base = {
    "configmap.json": JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", data: { tunnel: "vxlan" } }),
    "ciliumnodes.txt": "node-2|10.0.1.0/24|192.168.150.12\n",
    "nodes.txt": "node-2||192.168.150.12\n",
    "agents.txt": "cilium-bbbbb node-2\n",
    "status-cilium-bbbbb.txt": agentStatus113(node),
  };
  const relayCalls = async (dir: string) =>
    (await fs.readFile(path.join(dir, "calls"), "utf8")).split("\n").filter((c) => c.includes("hubble-relay"));
  const jsonpath = '-o jsonpath={.spec.replicas}{"|"}{.status.readyReplicas}';

  const absent = await fakeDir(base);
  const a = await script("collect-cilium-state.sh", ["cilium", "5"], absent);
  t.is(a.code, 0, a.stderr);
  t.deepEqual(parseClusterFacts(a.stdout).hubbleRelay, { exists: false, desired: 0, ready: 0, rolloutError: null });
  t.deepEqual(await relayCalls(absent), [`-n kube-system get deployment hubble-relay --ignore-not-found ${jsonpath}`]);

  // Read once, rolled out, read again: readyReplicas is omitted while 0 (the first read).
  const ready = await fakeDir({ ...base, "relay.txt.1": "1|", "relay.txt": "1|1" });
  const r = await script("collect-cilium-state.sh", ["cilium", "5"], ready);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(parseClusterFacts(r.stdout).hubbleRelay, { exists: true, desired: 1, ready: 1, rolloutError: null });
  t.deepEqual(await relayCalls(ready), [
    `-n kube-system get deployment hubble-relay --ignore-not-found ${jsonpath}`,
    "-n kube-system rollout status deployment/hubble-relay --timeout=5s",
    `-n kube-system get deployment hubble-relay --ignore-not-found ${jsonpath}`,
  ]);

  const stuck = await fakeDir({
    ...base,
    "relay.txt": "1|",
    "relay-rollout.rc": "1",
    "relay-rollout.out":
      'Waiting for deployment "hubble-relay" rollout to finish: 0 of 1 updated replicas are available...\nerror: timed out waiting for the condition',
  });
  const s = await script("collect-cilium-state.sh", ["cilium", "5"], stuck);
  t.is(s.code, 0, s.stderr);
  t.deepEqual(parseClusterFacts(s.stdout).hubbleRelay, {
    exists: true,
    desired: 1,
    ready: 0,
    rolloutError:
      'Waiting for deployment "hubble-relay" rollout to finish: 0 of 1 updated replicas are available...\nerror: timed out waiting for the condition',
  });
});

test("collect-cilium-state.sh fails with the rollout's message when the agents are not ready", async (t) => {
  const dir = await fakeDir({ "rollout.rc": "1", "rollout.out": "error: timed out waiting for the condition" });
  const r = await script("collect-cilium-state.sh", ["cilium-dbg", "7"], dir);
  t.is(r.code, 1);
  t.is(
    r.stderr,
    "collect-cilium-state.sh: the Cilium agents (daemonset kube-system/cilium) are not rolled out after 7s: error: timed out waiting for the condition\n" +
      `Look at: bash ${FAKE} -n kube-system get pods -l k8s-app=cilium -o wide; bash ${FAKE} -n kube-system logs ds/cilium --tail=50\n`,
  );
  t.is(
    (await script("collect-cilium-state.sh", ["cilium-debug"], dir)).stderr,
    "collect-cilium-state.sh: usage: collect-cilium-state.sh cilium|cilium-dbg [timeout-seconds] (got 'cilium-debug')\n",
  );
});

test("wait-iperf3-servers.sh prints both servers' addresses once they are Ready", async (t) => {
  const dir = await fakeDir({
    "pod-iperf3-server-host-k.txt": "iperf3-server-host-k 192.168.150.12 192.168.150.12 node-2",
    "pod-iperf3-server-pod-k.txt": "iperf3-server-pod-k 10.0.1.77 192.168.150.12 node-2",
  });
  const r = await script("wait-iperf3-servers.sh", [NS, "30", "iperf3-server-host-k", "iperf3-server-pod-k"], dir);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(parseServerAddresses(r.stdout, "iperf3-server-host-k", "iperf3-server-pod-k"), {
    host: { name: "iperf3-server-host-k", podIP: "192.168.150.12", hostIP: "192.168.150.12", node: "node-2" },
    pod: { name: "iperf3-server-pod-k", podIP: "10.0.1.77", hostIP: "192.168.150.12", node: "node-2" },
  });
});

test("wait-iperf3-servers.sh fails for a server that never listens, with the pod's state and log tail", async (t) => {
  const dir = await fakeDir({
    "pod-iperf3-server-host-k.txt": "iperf3-server-host-k 192.168.150.12 192.168.150.12 node-2",
    "ready-iperf3-server-pod-k.rc": "1",
    "pod-iperf3-server-pod-k.state":
      "phase Running; node node-2; container iperf3: restarts 4, waiting CrashLoopBackOff back-off 1m20s, terminated  exit , last Error exit 1",
    "logs-iperf3-server-pod-k.txt":
      "iperf3: error - unable to start listener for connections: Address already in use\niperf3: exiting",
  });
  const r = await script("wait-iperf3-servers.sh", [NS, "30", "iperf3-server-host-k", "iperf3-server-pod-k"], dir);
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.is(
    r.stderr,
    `iperf3 server pod ${NS}/iperf3-server-pod-k did not become Ready within 30s: iperf3 or netserver never listened on its port (each container's startup probe connects to it).\n` +
      "kubectl wait: error: timed out waiting for the condition on pods/iperf3-server-pod-k\n" +
      "Pod state: phase Running; node node-2; container iperf3: restarts 4, waiting CrashLoopBackOff back-off 1m20s, terminated  exit , last Error exit 1\n" +
      "Last log lines:\n" +
      "iperf3: error - unable to start listener for connections: Address already in use\niperf3: exiting\n" +
      "Common causes: an image could not be pulled (set cilium-lab:iperf3Image or cilium-lab:netperfImage to a reachable mirror), it has no iperf3 or netserver on its PATH, or a port is taken on the node (host-network server).\n",
  );
});

test("read-iperf3-job.sh waits for the Job to complete and prints its iperf3 -J log", async (t) => {
  t.deepEqual(await prerequisites(false), []);
  const doc = await loopbackIperf3(1);
  const dir = await fakeDir({
    "job-iperf3-pod-1-k.status.1": "",
    "job-iperf3-pod-1-k.status.2": "",
    "job-iperf3-pod-1-k.status":
      "SuccessCriteriaMet:CompletionsReached:Reached expected number of succeeded pods\nComplete:CompletionsReached:Reached expected number of succeeded pods\n",
    "joblogs-iperf3-pod-1-k.txt": doc,
  });
  const r = await script("read-iperf3-job.sh", [NS, "iperf3-pod-1-k", "60"], dir);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${doc.trimEnd()}\n`);
  t.true(parseIperf3Json(r.stdout, "pod 1").bitsPerSecond > 0);
  t.is(await fs.readFile(path.join(dir, "job-iperf3-pod-1-k.count"), "utf8"), "3");
  t.false(await exists(path.join(dir, "deleted-iperf3-pod-1-k")));
});

test("read-iperf3-job.sh fails on a failed Job with its reason and log tail, and deletes the Job", async (t) => {
  const dir = await fakeDir({
    "job-iperf3-host-2-k.status":
      "FailureTarget:DeadlineExceeded:Job was active longer than specified deadline\nFailed:DeadlineExceeded:Job was active longer than specified deadline\n",
    "joblogs-iperf3-host-2-k.txt": "line 1\nline 2\n",
  });
  const r = await script("read-iperf3-job.sh", [NS, "iperf3-host-2-k", "60"], dir);
  t.is(r.code, 1);
  t.is(
    r.stderr,
    `iperf3 client job ${NS}/iperf3-host-2-k failed: the Job failed (DeadlineExceeded:Job was active longer than specified deadline)\n` +
      "Last log lines:\nline 1\nline 2\n" +
      'The failed Job was deleted: fix the cause, then run "pulumi up --refresh" to measure again.\n',
  );
  t.true(await exists(path.join(dir, "deleted-iperf3-host-2-k")));
});

test("read-iperf3-job.sh refuses a completed Job whose iperf3 JSON carries an error (iperf3 3.12 exits 0 then)", async (t) => {
  t.deepEqual(await prerequisites(false), []);
  const doc = await loopbackIperf3(1, { noServer: true });
  const dir = await fakeDir({
    "job-iperf3-pod-1-k.status": "Complete:CompletionsReached:done\n",
    "joblogs-iperf3-pod-1-k.txt": doc,
  });
  const r = await script("read-iperf3-job.sh", [NS, "iperf3-pod-1-k", "60"], dir);
  t.is(r.code, 1);
  t.true(
    r.stderr.startsWith(
      `iperf3 client job ${NS}/iperf3-pod-1-k failed: iperf3 reported an error: "unable to connect to server: Connection refused"\nLast log lines:\n`,
    ),
    r.stderr,
  );
  t.true(r.stderr.includes('"error":'));
  t.true(await exists(path.join(dir, "deleted-iperf3-pod-1-k")));
});

test("read-iperf3-job.sh gives up after its timeout, and explains a Job that no longer exists", async (t) => {
  const dir = await fakeDir({ "job-iperf3-pod-3-k.status": "", "joblogs-iperf3-pod-3-k.txt": "" });
  const r = await script("read-iperf3-job.sh", [NS, "iperf3-pod-3-k", "1"], dir);
  t.is(r.code, 1);
  t.true(r.stderr.startsWith(`iperf3 client job ${NS}/iperf3-pod-3-k failed: it did not finish within 1s\n`), r.stderr);

  const gone = await fakeDir({ "job-iperf3-pod-1-k.missing": "" });
  const g = await script("read-iperf3-job.sh", [NS, "iperf3-pod-1-k", "60"], gone);
  t.is(g.code, 1);
  t.is(
    g.stderr,
    `iperf3 client job ${NS}/iperf3-pod-1-k does not exist: it was deleted after an earlier failure, or by hand. Run "pulumi up --refresh" so Pulumi creates it again.\n`,
  );
});
