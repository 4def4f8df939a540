/**
 * scripts/node/probe-upstreams.sh for real (lib.sh in front, as the nodes get it): the real script
 * with the real curl, its command line built by infra/k3s/args.ts (probeCommand), run in a network
 * namespace of its own whose loopback holds every upstream (test/k3s/support/probe-servers.mjs):
 * HTTP 200, a 302 to another server, a registry's 401 on /v2/, a closed port, a port whose SYNs an
 * iptables rule drops (the host firewall's FORWARD DROP in miniature), a server that accepts and
 * never answers, a TLS server with a self-signed certificate, a 404, and a resolver (in the
 * namespace, via /etc/netns/<ns>/resolv.conf) that says NXDOMAIN for names under `.invalid` or never
 * answers. No packet leaves the namespace, and no public name is ever resolved.
 *
 * Needs root, iproute2, iptables, curl, openssl and bash (.ci/apt-packages.txt). About 12 s: the
 * failing URLs run in parallel, the slowest being the 10 s --max-time of the silent server.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import {
  PROBE_CONNECT_TIMEOUT_SECONDS,
  PROBE_MAX_TIME_SECONDS,
  probeCommand,
  type UpstreamProbe,
} from "../../infra/k3s/probe";
import { nodeScript } from "../../infra/node-scripts";
import { prerequisites, run, sh } from "../verify/support";
import { assertLines, redirects, report, result, type Expected, type FailureClass } from "./support/probe-lines";

const NS = `clp-${randomBytes(3).toString("hex")}`;
const NETNS_ETC = `/etc/netns/${NS}`;
const SCRIPT = nodeScript("probe-upstreams.sh").text;
let servers: ChildProcess | undefined;
let certDir = "";
let setupError: string | undefined;
const requests: { server: string; url: string; range: string | null }[] = [];

/** Each missing tool with its package: the test FAILS with this list, it is never skipped. */
const PROBE_TOOLS = [
  ["ip", "-V", "iproute2"],
  ["iptables", "--version", "iptables"],
  ["curl", "--version", "curl"],
  ["openssl", "version", "openssl"],
  ["bash", "--version", "bash"],
] as const;

test.before(async () => {
  const problems = await prerequisites(true, PROBE_TOOLS);
  if (problems.length > 0) {
    setupError = problems.join("; ");
    return;
  }
  certDir = mkdtempSync(join(tmpdir(), "cl-probe-cert-"));
  await sh("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    join(certDir, "key.pem"),
    "-out",
    join(certDir, "cert.pem"),
  ]);
  await sh("ip", ["netns", "add", NS]);
  await sh("ip", ["-n", NS, "link", "set", "lo", "up"]);
  // a firewall that drops SYNs to port 84 without an answer.
  await sh("ip", ["netns", "exec", NS, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "84", "-j", "DROP"]);
  // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: the namespace's
  // own resolver, on its loopback.
  mkdirSync(NETNS_ETC, { recursive: true });
  writeFileSync(join(NETNS_ETC, "resolv.conf"), "nameserver 127.0.0.1\n");

  const child = spawn(
    "ip",
    ["netns", "exec", NS, process.execPath, join(__dirname, "support", "probe-servers.mjs"), certDir],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  servers = child;
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe-servers.mjs did not start within 20 s: ${stderr}`)), 20_000);
    child.once("exit", (code) => reject(new Error(`probe-servers.mjs exited ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "ready") {
        clearTimeout(timer);
        resolve();
      } else {
        requests.push(JSON.parse(line) as (typeof requests)[number]);
      }
    });
  });
});

test.after.always(async () => {
  servers?.kill();
  await run("ip", ["netns", "del", NS]).catch(() => undefined);
  rmSync(NETNS_ETC, { recursive: true, force: true });
  if (certDir !== "") {
    rmSync(certDir, { recursive: true, force: true });
  }
});

/** Runs the script in the namespace exactly as the k3s layer ships it: probeCommand's line, the script on stdin, a bare environment (no proxy variables). */
async function probe(probes: readonly UpstreamProbe[]): Promise<{ code: number; lines: string[]; seconds: number }> {
  if (setupError !== undefined) {
    throw new Error(setupError);
  }
  const start = Date.now();
  const r = await run(
    "ip",
    // HOME without a .bashrc: bash reads ~/.bashrc when its stdin is a socket, as node's pipes are.
    [
      "netns",
      "exec",
      NS,
      "env",
      "-i",
      "PATH=/usr/local/bin:/usr/bin:/bin",
      `HOME=${certDir}`,
      "LC_ALL=C",
      "bash",
      "-c",
      probeCommand("node-1", probes),
    ],
    { input: SCRIPT, timeoutMs: 60_000 },
  );
  return { code: r.code, lines: r.stderr.split("\n").filter((l) => l !== ""), seconds: (Date.now() - start) / 1000 };
}

test("the probe passes a node that reaches every upstream: 200, a 302 to another host, a registry's 401 on /v2/ — one ok line each, exit 0, the binary asked for its first byte only", async (t) => {
  const r = await probe([
    { name: "k3s-installer", url: "http://127.0.0.1/install.sh" },
    { name: "k3s-binary", url: "http://127.0.0.1/releases/k3s" },
    { name: "registry-test", url: "http://127.0.0.1/v2/" },
  ]);
  t.is(r.code, 0, r.lines.join("\n"));
  assertLines(t, r.lines, [
    result("k3s-installer", "http://127.0.0.1/install.sh", "ok (HTTP 200, {T})"),
    result("k3s-binary", "http://127.0.0.1/releases/k3s", "ok (HTTP 206 after a redirect to 127.0.0.2, {T})"),
    result("registry-test", "http://127.0.0.1/v2/", "ok (HTTP 401, {T})"),
  ]);
  t.true(r.seconds < 5, `took ${r.seconds} s`);
  const asset = requests.find((q) => q.server === "assets");
  t.deepEqual(asset, {
    server: "assets",
    method: "GET",
    url: "/asset?X-Amz-Signature=0123abcd&response-content-disposition=attachment",
    range: "bytes=0-0",
  });
});

/** One URL that fails: its class and what the script says, curl's message line, and how long it may take. */
interface SingleFailure {
  title: string;
  name: string;
  url: string;
  exit: number;
  cls: FailureClass;
  what: string;
  curl: Expected;
  seconds?: [atLeast: number, below: number];
}

const SINGLE_FAILURES: SingleFailure[] = [
  {
    title:
      "a name the resolver does not know (NXDOMAIN, under .invalid) is a DNS failure: curl exit 6, the DNS fix, exit 6",
    name: "k3s-installer",
    url: "https://k3s.probe.invalid/install.sh",
    exit: 6,
    cls: "DNS",
    what: "could not resolve k3s.probe.invalid",
    curl: "  | curl: (6) Could not resolve host: k3s.probe.invalid",
  },
  {
    title:
      "a resolver that never answers is a DNS failure too, after the 5 s connect timeout (curl exit 28 'Resolving timed out'), not a TCP one",
    name: "registry-test",
    url: "https://silent.probe.invalid/v2/",
    exit: 28,
    cls: "DNS",
    what: "no answer from the resolver for silent.probe.invalid (timed out)",
    curl: /^ {2}\| curl: \(28\) Resolving timed out after 5\d{3} milliseconds$/,
  },
  {
    title:
      "a closed port is a TCP failure: connection refused, curl exit 7, the firewall fix naming `npm run lab -- doctor`",
    name: "k3s-binary",
    url: "http://127.0.0.1:81/k3s",
    exit: 7,
    cls: "TCP",
    what: "could not connect to 127.0.0.1:81",
    curl: /^ {2}\| curl: \(7\) Failed to connect to 127\.0\.0\.1 port 81 after \d+ ms: (Couldn't connect to server|Connection refused)$/,
  },
  {
    title:
      "SYNs a firewall drops are a TCP failure after the 5 s connect timeout (curl exit 28), within seconds rather than minutes",
    name: "k3s-binary",
    url: "http://127.0.0.1:84/k3s",
    exit: 28,
    cls: "TCP",
    what: "no TCP connection to 127.0.0.1:84 (timed out)",
    curl: /^ {2}\| curl: \(28\) (Failed to connect to 127\.0\.0\.1 port 84 after 5\d{3} ms: Timeout was reached|Connection timed out after 5\d{3} milliseconds)$/,
    seconds: [PROBE_CONNECT_TIMEOUT_SECONDS, PROBE_CONNECT_TIMEOUT_SECONDS + 3],
  },
  {
    title:
      "a server that accepts the connection and never answers is an HTTP failure after the 10 s limit (curl exit 28)",
    name: "k3s-installer",
    url: "http://127.0.0.1:82/install.sh",
    exit: 28,
    cls: "HTTP",
    what: "127.0.0.1:82 accepted the connection but sent no HTTP answer (timed out)",
    curl: /^ {2}\| curl: \(28\) Operation timed out after \d+ milliseconds with 0 bytes received$/,
    seconds: [PROBE_MAX_TIME_SECONDS - 0.5, PROBE_MAX_TIME_SECONDS + 3],
  },
];

for (const row of SINGLE_FAILURES) {
  test(row.title, async (t) => {
    const r = await probe([{ name: row.name, url: row.url }]);
    t.is(r.code, row.exit);
    assertLines(t, r.lines, [
      result(row.name, row.url, `failed: ${row.cls}: ${row.what} (curl exit ${row.exit}, {T})`),
      ...report(row.name, row.exit, row.cls, row.what, row.curl),
    ]);
    if (row.seconds !== undefined) {
      t.true(r.seconds >= row.seconds[0] && r.seconds < row.seconds[1], `took ${r.seconds} s`);
    }
  });
}

/** Several URLs at once: each URL with its result line's outcome, in argument order, then each failure's report. */
const MULTI: {
  title: string;
  urls: [name: string, url: string, outcome: string][];
  exit: number;
  reports: Expected[];
}[] = [
  {
    title:
      "TLS failures are their own class: a self-signed certificate (curl exit 60), a plain-HTTP answer (35) and a handshake that never finishes (28)",
    urls: [
      [
        "self-signed",
        "https://127.0.0.1/install.sh",
        "failed: TLS: the TLS handshake with 127.0.0.1:443 failed (curl exit 60, {T})",
      ],
      [
        "plain-http",
        "https://127.0.0.1:80/install.sh",
        "failed: TLS: the TLS handshake with 127.0.0.1:80 failed (curl exit 35, {T})",
      ],
      [
        "stalled",
        "https://127.0.0.1:82/install.sh",
        "failed: TLS: the TLS handshake with 127.0.0.1:82 did not finish (timed out) (curl exit 28, {T})",
      ],
    ],
    exit: 60,
    reports: [
      ...report(
        "self-signed",
        60,
        "TLS",
        "the TLS handshake with 127.0.0.1:443 failed",
        /^ {2}\| curl: \(60\) SSL certificate problem: self.signed certificate$/,
      ),
      ...report(
        "plain-http",
        35,
        "TLS",
        "the TLS handshake with 127.0.0.1:80 failed",
        /^ {2}\| curl: \(35\) .*wrong version number$/,
      ),
      ...report(
        "stalled",
        28,
        "TLS",
        "the TLS handshake with 127.0.0.1:82 did not finish (timed out)",
        "  | curl: (28) SSL connection timeout",
      ),
    ],
  },
  {
    title: "HTTP errors fail the probe with exit 22: a 404, and a 401 anywhere but a registry's /v2/",
    urls: [
      ["k3s-binary", "http://127.0.0.1/missing", "failed: HTTP: 127.0.0.1 answered HTTP 404 ({T})"],
      ["private", "http://127.0.0.1/private", "failed: HTTP: 127.0.0.1 answered HTTP 401 ({T})"],
    ],
    exit: 22,
    reports: [
      ...report("k3s-binary", 22, "HTTP", "127.0.0.1 answered HTTP 404"),
      ...report("private", 22, "HTTP", "127.0.0.1 answered HTTP 401"),
    ],
  },
  {
    title:
      "a redirect to a host the node cannot reach names that host, not the first one (GitHub's release-asset host missing from an allowlist); a redirect loop stops after 5 hops",
    urls: [
      [
        "k3s-binary",
        "http://127.0.0.1/to-nowhere",
        "failed: DNS: could not resolve assets.probe.invalid, redirected from 127.0.0.1 (curl exit 6, {T})",
      ],
      ["loop", "http://127.0.0.1/loop", "failed: HTTP: more than 5 redirects from 127.0.0.1 ({T})"],
    ],
    exit: 6,
    reports: [
      ...report(
        "k3s-binary",
        6,
        "DNS",
        "could not resolve assets.probe.invalid",
        redirects("http://127.0.0.1/to-nowhere", "http://assets.probe.invalid/k3s"),
        "  | curl: (6) Could not resolve host: assets.probe.invalid",
      ),
      ...report(
        "loop",
        47,
        "HTTP",
        "more than 5 redirects from 127.0.0.1",
        redirects(...Array<string>(6).fill("http://127.0.0.1/loop")),
      ),
    ],
  },
];

for (const row of MULTI) {
  test(row.title, async (t) => {
    const r = await probe(row.urls.map(([name, url]) => ({ name, url })));
    t.is(r.code, row.exit, "the first failed URL's exit code");
    assertLines(t, r.lines, [...row.urls.map(([name, url, outcome]) => result(name, url, outcome)), ...row.reports]);
  });
}

/** The seven URLs of the parallel run, in argument order, each with the outcome of its result line. */
const PARALLEL: [name: string, url: string, outcome: string][] = [
  ["ok", "http://127.0.0.1/install.sh", "ok"],
  ["silent", "http://127.0.0.1:82/", "failed: HTTP"],
  ["dropped", "http://127.0.0.1:84/", "failed: TCP"],
  ["no-dns-answer", "http://silent.probe.invalid/", "failed: DNS"],
  ["tls-stall", "https://127.0.0.1:82/", "failed: TLS"],
  ["refused", "http://127.0.0.1:81/", "failed: TCP"],
  ["registry", "http://127.0.0.1/v2/", "ok"],
];

test("every URL is probed in parallel: seven URLs, four of them slow failures, finish within the 10 s limit plus a little, one line each in argument order, exit code of the first failure", async (t) => {
  const r = await probe(PARALLEL.map(([name, url]) => ({ name, url })));
  t.is(r.code, 28);
  t.deepEqual(
    r.lines
      .filter((l) => l.startsWith("cilium-lab[node-1]: probe "))
      .map((l) => /^cilium-lab\[node-1\]: probe (\S+) \S+: (ok|failed: [A-Z]+)/.exec(l)?.slice(1).join(" ")),
    PARALLEL.map(([name, , outcome]) => `${name} ${outcome}`),
  );
  t.true(r.seconds < PROBE_MAX_TIME_SECONDS + 3, `took ${r.seconds} s; sequential would take over 30 s`);
});
