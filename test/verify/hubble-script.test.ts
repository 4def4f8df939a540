/**
 * scripts/node/hubble-flows.sh run for real with bash, as the nodes get it (scripts/node/lib.sh in
 * front: infra/node-scripts.ts), against a stand-in for `k3s kubectl`
 * (test/verify/fixtures/hubble-fake-kubectl.sh: no cluster can exist here). Exact stdout, stderr and
 * exit codes for every outcome its header documents; its stdout is what the TypeScript judge reads.
 */
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { nodeScript } from "../../infra/node-scripts";
import { HUBBLE_FLOWS_SCRIPT, hubbleFlowProof, hubbleFlowsArgs } from "../../infra/verify/hubble";
import { fakeDirs, run, type Ran } from "./support";

const FAKE = path.join(__dirname, "fixtures", "hubble-fake-kubectl.sh");
const FIXTURES = path.join(__dirname, "fixtures");
const KUBECTL = `bash ${FAKE}`;

/** A fresh $FAKE_DIR with `files` (removed after the tests). */
const fakeDir = fakeDirs(test, "clv-hubble-");

/** Runs the script as the verification does: lib.sh + script on stdin, `bash -s -- <args>`. */
function script(args: readonly string[], dir: string): Promise<Ran> {
  return run("bash", ["-s", "--", ...args], {
    timeoutMs: 30_000,
    input: nodeScript(HUBBLE_FLOWS_SCRIPT).text,
    env: { ...process.env, KUBECTL, FAKE_DIR: dir },
  });
}

const ARGS = hubbleFlowsArgs({ node: "node-2", serverPodIp: "10.0.1.23", port: 5201, timeoutSeconds: 5 });
const POD = "cilium-7x2kd\n";

test("hubbleFlowsArgs is the script's documented command line", (t) => {
  t.deepEqual(ARGS, ["--node", "node-2", "--server-ip", "10.0.1.23", "--port", "5201", "--timeout", "5"]);
  t.deepEqual(hubbleFlowsArgs({ node: "n", serverPodIp: "10.0.0.1", port: 5201, last: 50 }), [
    "--node",
    "n",
    "--server-ip",
    "10.0.0.1",
    "--port",
    "5201",
    "--last",
    "50",
  ]);
});

test("the stand-in kubectl is shellcheck-clean", async (t) => {
  const r = await run("shellcheck", [FAKE]).catch((err: unknown) => ({
    code: -1,
    stdout: "",
    stderr: `shellcheck is missing (apt-get install shellcheck): ${String(err)}`,
  }));
  t.is(r.code, 0, r.stdout + r.stderr);
});

test("hubble-flows.sh finds node-2's agent, runs hubble observe -o jsonpb for the server IP and port, and prints its lines unchanged", async (t) => {
  const lines = await fs.readFile(path.join(FIXTURES, "hubble-1.13-vxlan.jsonl"), "utf8");
  const dir = await fakeDir({ "pods-node-2.txt": POD, "observe.out": lines, "observe.err": "" });
  const r = await script(ARGS, dir);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, lines);
  t.is(r.stderr, "");
  t.is(
    await fs.readFile(path.join(dir, "calls"), "utf8"),
    "-n kube-system get pods -l k8s-app=cilium --field-selector spec.nodeName=node-2 -o jsonpath={.items[*].metadata.name}\n" +
      "-n kube-system exec cilium-7x2kd -c cilium-agent -- hubble observe --last 1000 -o jsonpb --ip 10.0.1.23 --port 5201\n",
  );
  const proof = hubbleFlowProof({
    routingMode: "vxlan",
    ciliumVersion: "1.13.4",
    serverPodIp: "10.0.1.23",
    port: 5201,
    output: r.stdout,
  });
  t.true(proof.ok, proof.summary);
});

test("hubble-flows.sh with no flows prints nothing and exits 0 (the judge says why)", async (t) => {
  const dir = await fakeDir({ "pods-node-2.txt": POD });
  const r = await script([...ARGS, "--last", "7"], dir);
  t.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
  t.true((await fs.readFile(path.join(dir, "calls"), "utf8")).includes("hubble observe --last 7 -o jsonpb"));
});

test("hubble-flows.sh exits 3 when no Cilium agent runs on the node, or the pods cannot be listed", async (t) => {
  const none = await script(ARGS, await fakeDir({ "pods-node-3.txt": POD }));
  t.is(none.code, 3);
  t.is(none.stdout, "");
  t.is(
    none.stderr,
    'cilium-lab error: node=node-2 step="find the Cilium agent pod" exit=3\n' +
      "  | no pod labelled k8s-app=cilium runs on node node-2 (namespace kube-system)\n" +
      `cilium-lab fix: check the node name and the agents: ${KUBECTL} -n kube-system get pods -l k8s-app=cilium -o wide\n`,
  );
  const denied = await script(
    ARGS,
    await fakeDir({ "pods.rc": "1", "pods.err": "The connection to the server 127.0.0.1:6443 was refused" }),
  );
  t.is(denied.code, 3);
  t.is(
    denied.stderr,
    'cilium-lab error: node=node-2 step="find the Cilium agent pod" exit=3\n' +
      "  | cannot list the Cilium agent pods on node-2: The connection to the server 127.0.0.1:6443 was refused\n" +
      `cilium-lab fix: check the API server: ${KUBECTL} -n kube-system get pods -l k8s-app=cilium -o wide\n`,
  );
});

/** The lab's error block for a failed `hubble observe` step, as lib.sh's `fail` prints it. */
function observeBlock(code: number, what: string, err: string, fix: string): string {
  const details = err === "" ? [] : err.trimEnd().split("\n");
  return (
    `cilium-lab error: node=node-2 step="hubble observe in cilium-7x2kd" exit=${code}\n` +
    [what, ...details].map((l) => `  | ${l}\n`).join("") +
    `cilium-lab fix: ${fix}\n`
  );
}

/** `hubble observe` failures: the title, kubectl's stderr and exit code, then the block's code, what and fix. */
const OBSERVE_FAILURES: readonly [title: string, err: string, rc: number, code: number, what: string, fix: string][] = [
  [
    "exits 4 when the agent image has no hubble CLI",
    // containerd's answer to an exec of a missing binary, as kubectl prints it.
    'error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "4e1c": OCI runtime exec failed: exec failed: unable to start container process: exec: "hubble": executable file not found in $PATH: unknown\n',
    1,
    4,
    "the agent container has no hubble CLI",
    "use a Cilium agent image that ships /usr/bin/hubble (every quay.io/cilium/cilium release does)",
  ],
  [
    "exits 5 when the agent's Hubble server socket is missing (Hubble disabled)",
    "failed to connect to 'unix:///var/run/cilium/hubble.sock': context deadline exceeded: connection error: desc = \"transport: error while dialing: dial unix /var/run/cilium/hubble.sock: connect: no such file or directory\"\ncommand terminated with exit code 1\n",
    1,
    5,
    "the agent's Hubble server socket is missing: Hubble is disabled in this agent",
    "enable Hubble in the agents (Helm hubble.enabled=true, the chart's default), then run up again",
  ],
  [
    "exits 7 with hubble's own words on any other failure",
    'invalid argument "x" for "--last" flag\n',
    2,
    7,
    "hubble observe exited with 2",
    `run it by hand: ${KUBECTL} -n kube-system exec cilium-7x2kd -c cilium-agent -- hubble observe --last 20`,
  ],
];

for (const [title, err, rc, code, what, fix] of OBSERVE_FAILURES) {
  test(`hubble-flows.sh ${title}`, async (t) => {
    const r = await script(
      ARGS,
      await fakeDir({ "pods-node-2.txt": POD, "observe.err": err, "observe.rc": String(rc) }),
    );
    t.deepEqual([r.code, r.stdout, r.stderr], [code, "", observeBlock(code, what, err, fix)]);
  });
}

test("hubble-flows.sh exits 6 when hubble observe does not answer within --timeout", async (t) => {
  const r = await script(
    hubbleFlowsArgs({ node: "node-2", serverPodIp: "10.0.1.23", port: 5201, timeoutSeconds: 1 }),
    await fakeDir({ "pods-node-2.txt": POD, "observe.sleep": "20" }),
  );
  t.deepEqual(
    [r.code, r.stdout, r.stderr],
    [
      6,
      "",
      observeBlock(
        6,
        "no answer within 1s",
        "",
        `raise --timeout, or look at the agent: ${KUBECTL} -n kube-system logs cilium-7x2kd -c cilium-agent --tail=50`,
      ),
    ],
  );
});

test("hubble-flows.sh refuses a bad command line with exit 2 and its usage", async (t) => {
  const dir = await fakeDir({});
  const usage = "usage: hubble-flows.sh --node NODE --server-ip IP [--port PORT] [--last N] [--timeout SECONDS]\n";
  const cases: [string[], string][] = [
    [["--server-ip", "10.0.1.23"], "--node is required"],
    [["--node", "node-2", "--server-ip", "pod-a"], "--server-ip must be an IPv4 address (got 'pod-a')"],
    [["--node", "node-2", "--server-ip", "10.0.1.23", "--port", "70000"], "--port must be 1-65535 (got '70000')"],
    [["--node", "node-2", "--server-ip", "10.0.1.23", "--last", "0"], "--last must be a whole number > 0 (got '0')"],
    [
      ["--node", "node-2", "--server-ip", "10.0.1.23", "--timeout", "5s"],
      "--timeout must be whole seconds > 0 (got '5s')",
    ],
    [["--node"], "--node needs a value"],
    [["--follow"], "unknown argument '--follow'"],
  ];
  for (const [args, message] of cases) {
    const r = await script(args, dir);
    t.deepEqual([r.code, r.stdout, r.stderr], [2, "", `hubble-flows.sh: ${message}\n${usage}`], args.join(" "));
  }
  t.false(
    await fs.access(path.join(dir, "calls")).then(
      () => true,
      () => false,
    ),
    "no kubectl call on a bad command line",
  );
});
