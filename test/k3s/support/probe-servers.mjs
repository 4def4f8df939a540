// The upstreams of test/k3s/probe.netns.test.ts, run INSIDE the test's network namespace (by
// `ip netns exec <ns> node probe-servers.mjs <cert dir>`), on its loopback only:
//   127.0.0.1:80    HTTP  /install.sh 200 · /releases/k3s 302 → http://127.0.0.2:8080/asset?X-Amz-Signature=…
//                         /v2/ 401 (a registry asking for a token) · /private 401 · /missing 404
//                         /to-nowhere 302 → http://assets.probe.invalid/k3s · /loop 302 → /loop
//   127.0.0.2:8080  HTTP  /asset 206 (one byte, as a release-asset host answers a ranged GET)
//   127.0.0.1:82    TCP   accepts and never answers
//   127.0.0.1:443   HTTPS a self-signed certificate (<cert dir>/cert.pem, key.pem)
//   127.0.0.1:53    DNS   (UDP) NXDOMAIN for every name, except names starting with `silent.`: no answer
// Port 81 stays closed. Every HTTP request is printed on stdout as one JSON line
// ({"server","method","url","range"}); "ready" is printed once everything listens.
import { createServer as createHttp } from "node:http";
import { createServer as createHttps } from "node:https";
import { createServer as createTcp } from "node:net";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const certDir = process.argv[2];
const held = [];

function logRequest(server, req) {
  process.stdout.write(
    `${JSON.stringify({ server, method: req.method, url: req.url, range: req.headers.range ?? null })}\n`,
  );
}

const main = createHttp((req, res) => {
  logRequest("main", req);
  const path = req.url ?? "/";
  if (path === "/install.sh") {
    res.writeHead(200, { "content-type": "text/plain" }).end("#!/bin/sh\n# INSTALL_K3S_SKIP_DOWNLOAD\n");
  } else if (path === "/releases/k3s") {
    res
      .writeHead(302, {
        location: "http://127.0.0.2:8080/asset?X-Amz-Signature=0123abcd&response-content-disposition=attachment",
      })
      .end();
  } else if (path === "/v2/") {
    res.writeHead(401, {
      "www-authenticate": 'Bearer realm="http://127.0.0.1/token",service="probe-test"',
      "content-type": "application/json",
    });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n');
  } else if (path === "/private") {
    res.writeHead(401).end();
  } else if (path === "/to-nowhere") {
    res.writeHead(302, { location: "http://assets.probe.invalid/k3s" }).end();
  } else if (path === "/loop") {
    res.writeHead(302, { location: "/loop" }).end();
  } else {
    res.writeHead(404).end("not found\n");
  }
});

const assets = createHttp((req, res) => {
  logRequest("assets", req);
  res.writeHead(206, { "content-range": "bytes 0-0/67108864", "content-length": "1" }).end("\x7f");
});

const silent = createTcp((socket) => {
  // accept, read, never answer; the test's end closes it.
  held.push(socket);
  socket.on("error", () => {});
});

const tls = createHttps(
  { key: readFileSync(join(certDir, "key.pem")), cert: readFileSync(join(certDir, "cert.pem")) },
  (req, res) => {
    logRequest("tls", req);
    res.writeHead(200).end("ok\n");
  },
);

// A DNS answer: the query's header and question back, with QR, RD, RA and RCODE 3 (NXDOMAIN)
// (RFC 1035 4.1.1).
const dns = createSocket("udp4");
dns.on("message", (msg, rinfo) => {
  if (msg.length < 12) {
    return;
  }
  const labels = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString("latin1"));
    i += msg[i] + 1;
  }
  if (labels[0] === "silent") {
    return;
  }
  const answer = Buffer.from(msg.subarray(0, i + 5));
  answer.writeUInt16BE(0x8183, 2);
  answer.writeUInt16BE(1, 4);
  answer.writeUInt32BE(0, 6);
  answer.writeUInt16BE(0, 10);
  dns.send(answer, rinfo.port, rinfo.address);
});

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
}

await Promise.all([
  listen(main, 80, "127.0.0.1"),
  listen(assets, 8080, "127.0.0.2"),
  listen(silent, 82, "127.0.0.1"),
  listen(tls, 443, "127.0.0.1"),
  new Promise((resolve, reject) => {
    dns.once("error", reject);
    dns.bind(53, "127.0.0.1", resolve);
  }),
]);
process.stdout.write("ready\n");
