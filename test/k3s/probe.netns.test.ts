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
import test, { type ExecutionContext } from "ava";
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

const NS = `clp-${randomBytes(3).toString("hex")}`;
const NETNS_ETC = `/etc/netns/${NS}`;
const SCRIPT = nodeScript("probe-upstreams.sh").text;
/** What a result line's time looks like (`0.0 s`, `10.0 s`). */
const T = "\\d+\\.\\d s";
const FIX = {
  DNS: "the node cannot resolve names. Its resolver is the libvirt network's dnsmasq (the network's gateway), which forwards to the host's resolver: check the host's /etc/resolv.conf or 'resolvectl status', and that the lab network is active ('virsh net-info cilium-lab-<stack>'); 'npm run lab -- doctor <stack>' checks the host. Without internet access, install air-gapped (cilium-lab:k3sAirgapDir, see the README).",
  TCP: "the node's connections do not get through. Most often the host's firewall drops the lab network's forwarded traffic (Docker and UFW set the FORWARD policy to DROP): run 'npm run lab -- doctor <stack>'. Else a firewall between the host and the internet blocks these connections: allow the hosts listed in the README, set a proxy, or install air-gapped (cilium-lab:k3sAirgapDir).",
  TLS: "the TLS handshake failed: a proxy or firewall that intercepts HTTPS (its CA is not trusted by the node: add it to the image, or let these hosts through uninspected), or a wrong clock (compare 'date -u' on the node and the host).",
  HTTP: "the server, or a proxy on the way, answered with an error or not at all: HTTP 404 from a k3s URL means cilium-lab:k3sVersion is not a published release (https://github.com/k3s-io/k3s/releases); 403, 407, 429 and 5xx usually come from a proxy or a rate limit: check the proxy, or retry later.",
} as const;

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

/** A regular expression for one exact line, with `{T}` for the elapsed time. */
function line(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{T\}/g, T)}$`);
}

/** Asserts the lines one by one: strings exactly, regular expressions as a whole line. */
function assertLines(t: ExecutionContext, actual: string[], expected: (string | RegExp)[]): void {
  t.is(actual.length, expected.length, `line count:\n${actual.join("\n")}`);
  expected.forEach((e, i) => {
    if (typeof e === "string") {
      t.is(actual[i], e, `line ${i + 1}`);
    } else {
      t.regex(actual[i] ?? "", e, `line ${i + 1}`);
    }
  });
}

test("the probe passes a node that reaches every upstream: 200, a 302 to another host, a registry's 401 on /v2/ — one ok line each, exit 0, the binary asked for its first byte only", async (t) => {
  const r = await probe([
    { name: "k3s-installer", url: "http://127.0.0.1/install.sh" },
    { name: "k3s-binary", url: "http://127.0.0.1/releases/k3s" },
    { name: "registry-test", url: "http://127.0.0.1/v2/" },
  ]);
  t.is(r.code, 0, r.lines.join("\n"));
  assertLines(t, r.lines, [
    line("cilium-lab[node-1]: probe k3s-installer http://127.0.0.1/install.sh: ok (HTTP 200, {T})"),
    line(
      "cilium-lab[node-1]: probe k3s-binary http://127.0.0.1/releases/k3s: ok (HTTP 206 after a redirect to 127.0.0.2, {T})",
    ),
    line("cilium-lab[node-1]: probe registry-test http://127.0.0.1/v2/: ok (HTTP 401, {T})"),
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

test("a name the resolver does not know (NXDOMAIN, under .invalid) is a DNS failure: curl exit 6, the DNS fix, exit 6", async (t) => {
  const r = await probe([{ name: "k3s-installer", url: "https://k3s.probe.invalid/install.sh" }]);
  t.is(r.code, 6);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-installer https://k3s.probe.invalid/install.sh: failed: DNS: could not resolve k3s.probe.invalid (curl exit 6, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe k3s-installer" exit=6',
    "  | DNS: could not resolve k3s.probe.invalid",
    "  | curl: (6) Could not resolve host: k3s.probe.invalid",
    `cilium-lab fix: ${FIX.DNS}`,
  ]);
});

test("a resolver that never answers is a DNS failure too, after the 5 s connect timeout (curl exit 28 'Resolving timed out'), not a TCP one", async (t) => {
  const r = await probe([{ name: "registry-test", url: "https://silent.probe.invalid/v2/" }]);
  t.is(r.code, 28);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe registry-test https://silent.probe.invalid/v2/: failed: DNS: no answer from the resolver for silent.probe.invalid (timed out) (curl exit 28, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe registry-test" exit=28',
    "  | DNS: no answer from the resolver for silent.probe.invalid (timed out)",
    /^ {2}\| curl: \(28\) Resolving timed out after 5\d{3} milliseconds$/,
    `cilium-lab fix: ${FIX.DNS}`,
  ]);
});

test("a closed port is a TCP failure: connection refused, curl exit 7, the firewall fix naming `npm run lab -- doctor`", async (t) => {
  const r = await probe([{ name: "k3s-binary", url: "http://127.0.0.1:81/k3s" }]);
  t.is(r.code, 7);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-binary http://127.0.0.1:81/k3s: failed: TCP: could not connect to 127.0.0.1:81 (curl exit 7, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe k3s-binary" exit=7',
    "  | TCP: could not connect to 127.0.0.1:81",
    /^ {2}\| curl: \(7\) Failed to connect to 127\.0\.0\.1 port 81 after \d+ ms: (Couldn't connect to server|Connection refused)$/,
    `cilium-lab fix: ${FIX.TCP}`,
  ]);
});

test("SYNs a firewall drops are a TCP failure after the 5 s connect timeout (curl exit 28), within seconds rather than minutes", async (t) => {
  const r = await probe([{ name: "k3s-binary", url: "http://127.0.0.1:84/k3s" }]);
  t.is(r.code, 28);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-binary http://127.0.0.1:84/k3s: failed: TCP: no TCP connection to 127.0.0.1:84 (timed out) (curl exit 28, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe k3s-binary" exit=28',
    "  | TCP: no TCP connection to 127.0.0.1:84 (timed out)",
    /^ {2}\| curl: \(28\) (Failed to connect to 127\.0\.0\.1 port 84 after 5\d{3} ms: Timeout was reached|Connection timed out after 5\d{3} milliseconds)$/,
    `cilium-lab fix: ${FIX.TCP}`,
  ]);
  t.true(
    r.seconds >= PROBE_CONNECT_TIMEOUT_SECONDS && r.seconds < PROBE_CONNECT_TIMEOUT_SECONDS + 3,
    `took ${r.seconds} s`,
  );
});

test("a server that accepts the connection and never answers is an HTTP failure after the 10 s limit (curl exit 28)", async (t) => {
  const r = await probe([{ name: "k3s-installer", url: "http://127.0.0.1:82/install.sh" }]);
  t.is(r.code, 28);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-installer http://127.0.0.1:82/install.sh: failed: HTTP: 127.0.0.1:82 accepted the connection but sent no HTTP answer (timed out) (curl exit 28, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe k3s-installer" exit=28',
    "  | HTTP: 127.0.0.1:82 accepted the connection but sent no HTTP answer (timed out)",
    /^ {2}\| curl: \(28\) Operation timed out after \d+ milliseconds with 0 bytes received$/,
    `cilium-lab fix: ${FIX.HTTP}`,
  ]);
  t.true(r.seconds >= PROBE_MAX_TIME_SECONDS - 0.5 && r.seconds < PROBE_MAX_TIME_SECONDS + 3, `took ${r.seconds} s`);
});

test("TLS failures are their own class: a self-signed certificate (curl exit 60), a plain-HTTP answer (35) and a handshake that never finishes (28)", async (t) => {
  const r = await probe([
    { name: "self-signed", url: "https://127.0.0.1/install.sh" },
    { name: "plain-http", url: "https://127.0.0.1:80/install.sh" },
    { name: "stalled", url: "https://127.0.0.1:82/install.sh" },
  ]);
  t.is(r.code, 60, "the first failed URL's exit code");
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe self-signed https://127.0.0.1/install.sh: failed: TLS: the TLS handshake with 127.0.0.1:443 failed (curl exit 60, {T})",
    ),
    line(
      "cilium-lab[node-1]: probe plain-http https://127.0.0.1:80/install.sh: failed: TLS: the TLS handshake with 127.0.0.1:80 failed (curl exit 35, {T})",
    ),
    line(
      "cilium-lab[node-1]: probe stalled https://127.0.0.1:82/install.sh: failed: TLS: the TLS handshake with 127.0.0.1:82 did not finish (timed out) (curl exit 28, {T})",
    ),
    'cilium-lab error: node=node-1 step="probe self-signed" exit=60',
    "  | TLS: the TLS handshake with 127.0.0.1:443 failed",
    /^ {2}\| curl: \(60\) SSL certificate problem: self.signed certificate$/,
    `cilium-lab fix: ${FIX.TLS}`,
    'cilium-lab error: node=node-1 step="probe plain-http" exit=35',
    "  | TLS: the TLS handshake with 127.0.0.1:80 failed",
    /^ {2}\| curl: \(35\) .*wrong version number$/,
    `cilium-lab fix: ${FIX.TLS}`,
    'cilium-lab error: node=node-1 step="probe stalled" exit=28',
    "  | TLS: the TLS handshake with 127.0.0.1:82 did not finish (timed out)",
    "  | curl: (28) SSL connection timeout",
    `cilium-lab fix: ${FIX.TLS}`,
  ]);
});

test("HTTP errors fail the probe with exit 22: a 404, and a 401 anywhere but a registry's /v2/", async (t) => {
  const r = await probe([
    { name: "k3s-binary", url: "http://127.0.0.1/missing" },
    { name: "private", url: "http://127.0.0.1/private" },
  ]);
  t.is(r.code, 22);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-binary http://127.0.0.1/missing: failed: HTTP: 127.0.0.1 answered HTTP 404 ({T})",
    ),
    line("cilium-lab[node-1]: probe private http://127.0.0.1/private: failed: HTTP: 127.0.0.1 answered HTTP 401 ({T})"),
    'cilium-lab error: node=node-1 step="probe k3s-binary" exit=22',
    "  | HTTP: 127.0.0.1 answered HTTP 404",
    `cilium-lab fix: ${FIX.HTTP}`,
    'cilium-lab error: node=node-1 step="probe private" exit=22',
    "  | HTTP: 127.0.0.1 answered HTTP 401",
    `cilium-lab fix: ${FIX.HTTP}`,
  ]);
});

test("a redirect to a host the node cannot reach names that host, not the first one (GitHub's release-asset host missing from an allowlist); a redirect loop stops after 5 hops", async (t) => {
  const r = await probe([
    { name: "k3s-binary", url: "http://127.0.0.1/to-nowhere" },
    { name: "loop", url: "http://127.0.0.1/loop" },
  ]);
  t.is(r.code, 6);
  assertLines(t, r.lines, [
    line(
      "cilium-lab[node-1]: probe k3s-binary http://127.0.0.1/to-nowhere: failed: DNS: could not resolve assets.probe.invalid, redirected from 127.0.0.1 (curl exit 6, {T})",
    ),
    line(
      "cilium-lab[node-1]: probe loop http://127.0.0.1/loop: failed: HTTP: more than 5 redirects from 127.0.0.1 ({T})",
    ),
    'cilium-lab error: node=node-1 step="probe k3s-binary" exit=6',
    "  | DNS: could not resolve assets.probe.invalid",
    "  | redirects: http://127.0.0.1/to-nowhere -> http://assets.probe.invalid/k3s",
    "  | curl: (6) Could not resolve host: assets.probe.invalid",
    `cilium-lab fix: ${FIX.DNS}`,
    'cilium-lab error: node=node-1 step="probe loop" exit=47',
    "  | HTTP: more than 5 redirects from 127.0.0.1",
    `  | redirects: ${Array(6).fill("http://127.0.0.1/loop").join(" -> ")}`,
    `cilium-lab fix: ${FIX.HTTP}`,
  ]);
});

test("every URL is probed in parallel: seven URLs, four of them slow failures, finish within the 10 s limit plus a little, one line each in argument order, exit code of the first failure", async (t) => {
  const r = await probe([
    { name: "ok", url: "http://127.0.0.1/install.sh" },
    { name: "silent", url: "http://127.0.0.1:82/" },
    { name: "dropped", url: "http://127.0.0.1:84/" },
    { name: "no-dns-answer", url: "http://silent.probe.invalid/" },
    { name: "tls-stall", url: "https://127.0.0.1:82/" },
    { name: "refused", url: "http://127.0.0.1:81/" },
    { name: "registry", url: "http://127.0.0.1/v2/" },
  ]);
  t.is(r.code, 28);
  t.deepEqual(
    r.lines
      .filter((l) => l.startsWith("cilium-lab[node-1]: probe "))
      .map((l) => /^cilium-lab\[node-1\]: probe (\S+) \S+: (ok|failed: [A-Z]+)/.exec(l)?.slice(1).join(" ")),
    [
      "ok ok",
      "silent failed: HTTP",
      "dropped failed: TCP",
      "no-dns-answer failed: DNS",
      "tls-stall failed: TLS",
      "refused failed: TCP",
      "registry ok",
    ],
  );
  t.true(r.seconds < PROBE_MAX_TIME_SECONDS + 3, `took ${r.seconds} s; sequential would take over 30 s`);
});
