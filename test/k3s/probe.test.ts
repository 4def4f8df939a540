/**
 * The upstream probe without a network: the URLs and command line infra/k3s/args.ts builds, the
 * classification of curl's outcomes in scripts/node/probe-upstreams.sh (its functions, lib.sh in
 * front as the nodes get them, sourced into bash and called with curl's exit code, status, times and
 * message), and the script's argument checks.
 * The real runs against real servers are in probe.netns.test.ts.
 */
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";

import {
  CILIUM_IMAGES_REGISTRY,
  K3S_IMAGES_REGISTRY,
  imageRegistry,
  probeCommand,
  registryApiUrl,
  upstreamProbes,
} from "../../infra/k3s/probe";
import { nodeScript } from "../../infra/node-scripts";
import { IPERF3_IMAGE } from "../../infra/versions";

/** The probe as the nodes get it (lib.sh in front), as a file to source. */
const SCRIPT = nodeScript("probe-upstreams.sh").path;

const registries: [image: string, registry: string][] = [
  [IPERF3_IMAGE, "quay.io"],
  ["quay.io/cilium/cilium:v1.13.4@sha256:bde8800d61aaad8b8451b10e247ac7bdeb7af187bb698f83d40ad75a38c1ee6b", "quay.io"],
  ["rancher/mirrored-pause:3.6", "docker.io"],
  ["docker.io/rancher/mirrored-coredns-coredns:1.10.1", "docker.io"],
  ["index.docker.io/library/busybox:1.36", "docker.io"],
  ["networkstatic/iperf3", "docker.io"],
  ["iperf3", "docker.io"],
  ["localhost/iperf3:3.16", "localhost"],
  ["localhost:5000/iperf3:3.16", "localhost:5000"],
  ["registry.lab.example:5000/perf/iperf3@sha256:" + "a".repeat(64), "registry.lab.example:5000"],
  ["ghcr.io/org/iperf3:1", "ghcr.io"],
];
for (const [image, registry] of registries) {
  test(`the image ${image.slice(0, 60)} is pulled from the registry ${registry}`, (t) => {
    t.is(imageRegistry(image), registry);
  });
}

const apiRoots: [registry: string, url: string][] = [
  ["docker.io", "https://registry-1.docker.io/v2/"],
  ["quay.io", "https://quay.io/v2/"],
  ["registry.lab.example:5000", "https://registry.lab.example:5000/v2/"],
  ["localhost:5000", "https://localhost:5000/v2/"],
];
test("a registry's probe URL is its /v2/ API root; Docker Hub's is registry-1.docker.io", (t) => {
  t.deepEqual(
    apiRoots.map(([registry]) => registryApiUrl(registry)),
    apiRoots.map(([, url]) => url),
  );
  t.is(K3S_IMAGES_REGISTRY, "docker.io");
  t.is(CILIUM_IMAGES_REGISTRY, "quay.io");
});

const probeTable: [what: string, k3sVersion: string, iperf3Image: string, expected: [string, string][]][] = [
  [
    "the defaults: install script, binary, Docker Hub (k3s's images) and Quay (Cilium's and the pinned iperf3 image), each registry once",
    "v1.26.6+k3s1",
    IPERF3_IMAGE,
    [
      ["k3s-installer", "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh"],
      ["k3s-binary", "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s"],
      ["registry-docker.io", "https://registry-1.docker.io/v2/"],
      ["registry-quay.io", "https://quay.io/v2/"],
    ],
  ],
  [
    "another k3s release and an iperf3 image on Docker Hub: the release's URLs, still one probe per registry",
    "v1.30.2+k3s2",
    "networkstatic/iperf3@sha256:" + "b".repeat(64),
    [
      ["k3s-installer", "https://raw.githubusercontent.com/k3s-io/k3s/v1.30.2%2Bk3s2/install.sh"],
      ["k3s-binary", "https://github.com/k3s-io/k3s/releases/download/v1.30.2%2Bk3s2/k3s"],
      ["registry-docker.io", "https://registry-1.docker.io/v2/"],
      ["registry-quay.io", "https://quay.io/v2/"],
    ],
  ],
  [
    "an iperf3 image on a mirror with a port: that registry's /v2/ as a fifth probe",
    "v1.26.6+k3s1",
    "registry.lab.example:5000/perf/iperf3:3.16",
    [
      ["k3s-installer", "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh"],
      ["k3s-binary", "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s"],
      ["registry-docker.io", "https://registry-1.docker.io/v2/"],
      ["registry-quay.io", "https://quay.io/v2/"],
      ["registry-registry.lab.example:5000", "https://registry.lab.example:5000/v2/"],
    ],
  ],
];
for (const [what, k3sVersion, iperf3Image, expected] of probeTable) {
  test(`the probed upstreams for ${what}`, (t) => {
    t.deepEqual(
      upstreamProbes({ k3sVersion, iperf3Image }).map((p) => [p.name, p.url]),
      expected,
    );
  });
}

test("the probe command runs the script from stdin as the login user with the 5 s connect and 10 s total limits and one --url NAME=URL per upstream", (t) => {
  t.is(
    probeCommand("node-2", upstreamProbes({ k3sVersion: "v1.26.6+k3s1", iperf3Image: IPERF3_IMAGE })),
    "bash -s -- --node node-2 --connect-timeout 5 --max-time 10 " +
      "--url k3s-installer=https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh " +
      "--url k3s-binary=https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s " +
      "--url registry-docker.io=https://registry-1.docker.io/v2/ --url registry-quay.io=https://quay.io/v2/",
  );
  t.is(
    probeCommand("node-1", [{ name: "odd", url: "https://h.example/a b?c='d'" }]),
    `bash -s -- --node node-1 --connect-timeout 5 --max-time 10 --url 'odd=https://h.example/a b?c='\\''d'\\'''`,
  );
});

// [curl exit, HTTP status, URL, time_connect, time_appconnect, curl's message] → [class, exit code, what]
const GH = "https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh";
type CurlOutcome = [exit: number, status: string, url: string, connect: string, appconnect: string, message: string];
/** curl exit 0 with an HTTP status, after connecting (0.02 s) and the TLS handshake (0.05 s). */
const answered = (status: string, url = GH): CurlOutcome => [0, status, url, "0.02", "0.05", ""];
/** A failed transfer without an HTTP status ("000"): curl's exit code and message, and how far it got ("0": not reached). */
function failed(exit: number, message: string, connect = "0", appconnect = "0", url = GH): CurlOutcome {
  return [exit, "000", url, connect, appconnect, message];
}
/** What classify says of a reachable upstream: class ok, exit 0, the HTTP status. */
const ok = (status: string): [string, number, string] => ["ok", 0, `HTTP ${status}`];
const TIMED_OUT_NO_BYTES = "curl: (28) Operation timed out after 10000 milliseconds with 0 bytes received";
const classification: [string, CurlOutcome, [string, number, string]][] = [
  ["a 200 is ok", answered("200"), ok("200")],
  ["the 206 of a ranged GET is ok", answered("206", "https://release-assets.githubusercontent.com/x?sig=1"), ok("206")],
  [
    "a registry's 401 on /v2/ is ok (it wants a token: reachable)",
    answered("401", "https://registry-1.docker.io/v2/"),
    ok("401"),
  ],
  [
    "a 401 elsewhere is an HTTP failure",
    answered("401", "https://quay.io/v2/cilium/cilium/manifests/v1"),
    ["HTTP", 22, "quay.io answered HTTP 401"],
  ],
  [
    "a 302 is a redirect to follow",
    answered("302", "https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s"),
    ["redirect", 0, "HTTP 302"],
  ],
  [
    "a 404 is an HTTP failure (exit 22, as curl --fail)",
    answered("404"),
    ["HTTP", 22, "raw.githubusercontent.com answered HTTP 404"],
  ],
  ["a 503 is an HTTP failure", answered("503"), ["HTTP", 22, "raw.githubusercontent.com answered HTTP 503"]],
  [
    "exit 5 is DNS (the proxy's name)",
    failed(5, "curl: (5) Could not resolve proxy: proxy.lab.invalid"),
    ["DNS", 5, "could not resolve the proxy for raw.githubusercontent.com"],
  ],
  [
    "exit 6 is DNS",
    failed(6, "curl: (6) Could not resolve host: raw.githubusercontent.com"),
    ["DNS", 6, "could not resolve raw.githubusercontent.com"],
  ],
  [
    "exit 28 while resolving is DNS, not TCP",
    failed(28, "curl: (28) Resolving timed out after 5000 milliseconds"),
    ["DNS", 28, "no answer from the resolver for raw.githubusercontent.com (timed out)"],
  ],
  [
    "exit 7 is TCP (refused or unreachable)",
    failed(
      7,
      "curl: (7) Failed to connect to raw.githubusercontent.com port 443 after 3 ms: Couldn't connect to server",
    ),
    ["TCP", 7, "could not connect to raw.githubusercontent.com:443"],
  ],
  [
    "exit 28 before the TCP connection is TCP",
    failed(
      28,
      "curl: (28) Failed to connect to raw.githubusercontent.com port 443 after 5002 ms: Timeout was reached",
      "0.000000",
      "0.000000",
    ),
    ["TCP", 28, "no TCP connection to raw.githubusercontent.com:443 (timed out)"],
  ],
  [
    "exit 28 in the TLS handshake (curl's message) is TLS",
    failed(28, "curl: (28) SSL connection timeout"),
    ["TLS", 28, "the TLS handshake with raw.githubusercontent.com:443 did not finish (timed out)"],
  ],
  [
    "exit 28 after TCP but before the TLS handshake finished is TLS",
    failed(28, TIMED_OUT_NO_BYTES, "0.011"),
    ["TLS", 28, "the TLS handshake with raw.githubusercontent.com:443 did not finish (timed out)"],
  ],
  [
    "exit 28 after the handshake without an answer is HTTP",
    failed(28, TIMED_OUT_NO_BYTES, "0.011", "0.04"),
    ["HTTP", 28, "raw.githubusercontent.com:443 accepted the connection but sent no HTTP answer (timed out)"],
  ],
  [
    "exit 28 on plain HTTP after connecting is HTTP",
    failed(28, TIMED_OUT_NO_BYTES, "0.0001", "0", "http://127.0.0.1:82/"),
    ["HTTP", 28, "127.0.0.1:82 accepted the connection but sent no HTTP answer (timed out)"],
  ],
  [
    "exit 28 after a 200 status (a slow body) is ok",
    [
      28,
      "200",
      "http://mirror.lab.example:8080/k3s",
      "0.01",
      "0",
      "curl: (28) Operation timed out after 10000 milliseconds with 1048576 bytes received",
    ],
    ok("200"),
  ],
  [
    "exit 35 is TLS",
    failed(35, "curl: (35) OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number", "0.01"),
    ["TLS", 35, "the TLS handshake with raw.githubusercontent.com:443 failed"],
  ],
  [
    "exit 60 is TLS (certificate not trusted: an intercepting proxy, a wrong clock)",
    failed(60, "curl: (60) SSL certificate problem: self-signed certificate in certificate chain", "0.01"),
    ["TLS", 60, "the TLS handshake with raw.githubusercontent.com:443 failed"],
  ],
  [
    "exit 56 is TCP (connection reset)",
    failed(56, "curl: (56) Recv failure: Connection reset by peer", "0.01", "0.02"),
    ["TCP", 56, "the connection to raw.githubusercontent.com:443 broke (reset or closed)"],
  ],
  [
    "exit 52 is HTTP (empty reply)",
    failed(52, "curl: (52) Empty reply from server", "0.01", "0", "http://127.0.0.1:8080/"),
    ["HTTP", 52, "127.0.0.1:8080 closed the connection without an HTTP answer"],
  ],
  [
    "exit 7 names the port and drops userinfo",
    failed(7, "", "0", "0", "http://user@mirror.lab.example:8080/k3s"),
    ["TCP", 7, "could not connect to mirror.lab.example:8080"],
  ],
  [
    "any other exit code is OTHER with curl's code",
    failed(3, "curl: (3) URL using bad/illegal format or missing URL", "0", "0", "https://bad url/"),
    ["OTHER", 3, "curl failed for bad url"],
  ],
];

test("curl's outcomes are classified as ok, redirect, DNS, TCP, TLS, HTTP or OTHER, each with its message and exit code", (t) => {
  const calls = classification
    .map(
      ([, args]) =>
        `classify ${args.map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(" ")}; printf '%s|%s|%s\\n' "$class" "$code" "$what"`,
    )
    .join("\n");
  const out = execFileSync("bash", ["-c", `set -euo pipefail; source '${SCRIPT}'\n${calls}`], { encoding: "utf8" });
  const got = out.trimEnd().split("\n");
  t.is(got.length, classification.length);
  classification.forEach(([what, , [cls, code, message]], i) => {
    t.is(got[i], `${cls}|${code}|${message}`, what);
  });
});

test("each failure class has its own fix: DNS the libvirt/host resolver, TCP the host firewall's FORWARD DROP and `npm run lab -- doctor`, TLS an intercepting proxy or the clock, HTTP the k3s version or a proxy", (t) => {
  const out = execFileSync(
    "bash",
    ["-c", `source '${SCRIPT}'; for c in DNS TCP TLS HTTP OTHER; do printf '%s\\n' "$(fix_for "$c")"; done`],
    { encoding: "utf8" },
  );
  const [dns = "", tcp = "", tls = "", http = "", other = ""] = out.trimEnd().split("\n");
  t.regex(dns, /libvirt network's dnsmasq.*resolv\.conf.*npm run lab -- doctor <stack>.*k3sAirgapDir/);
  t.regex(tcp, /FORWARD policy to DROP.*npm run lab -- doctor <stack>/);
  t.regex(tls, /intercepts HTTPS.*wrong clock/);
  t.regex(http, /HTTP 404 from a k3s URL means cilium-lab:k3sVersion is not a published release/);
  t.regex(other, /https:\/\/curl\.se\/docs\/manpage\.html#EXIT/);
  t.is(new Set([dns, tcp, tls, http, other]).size, 5);
});

const usage: [string, string[], string][] = [
  ["no --url", ["--node", "node-1"], "probe-upstreams.sh: at least one --url NAME=URL is required"],
  ["no --node", ["--url", "a=https://h.example/"], "probe-upstreams.sh: --node is required"],
  [
    "a --url without a name",
    ["--node", "node-1", "--url", "https://h.example/"],
    "probe-upstreams.sh: --url takes NAME=http(s)://HOST/… (got https://h.example/)",
  ],
  [
    "a --url that is not http(s)",
    ["--node", "node-1", "--url", "a=ftp://h.example/"],
    "probe-upstreams.sh: --url takes NAME=http(s)://HOST/… (got a=ftp://h.example/)",
  ],
  [
    "a zero --max-time",
    ["--node", "node-1", "--max-time", "0", "--url", "a=https://h.example/"],
    "probe-upstreams.sh: --connect-timeout and --max-time take whole seconds > 0 (got '5', '0')",
  ],
  [
    "an unknown argument",
    ["--node", "node-1", "--retries", "3"],
    "probe-upstreams.sh: unknown argument --retries (usage: --node NAME [--connect-timeout S] [--max-time S] --url NAME=URL…)",
  ],
];
for (const [what, args, message] of usage) {
  test(`the script refuses ${what} with exit 2 before probing anything`, (t) => {
    const r = spawnSync("bash", ["-s", "--", ...args], {
      input: nodeScript("probe-upstreams.sh").text,
      encoding: "utf8",
    });
    t.is(r.status, 2);
    t.is(r.stderr, `${message}\n`);
  });
}
