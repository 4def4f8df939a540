/**
 * doctor's host-side input rows (real files), the upstream probes — real HTTP requests to servers on
 * 127.0.0.1, a closed port, a server that never answers and a name under .invalid — and a full run.
 * Nothing here contacts a public host.
 */
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

import test from "ava";

import { hostInputChecks } from "../../infra/config/host-inputs";
import { upstreamEndpoints, type UpstreamEndpoint } from "../../infra/upstreams";
import { doctorRows, renderRows, requiredPlugins, REPO_ROOT, type DoctorDeps } from "../../scripts/doctor/index";
import { judge, probe } from "../../scripts/doctor/probe";
import { hostInputRows, upstreamFix, upstreamRows } from "../../scripts/doctor/rows";
import { closedPort, DEFAULTS, facts, NONE_INSTALLED, scratch, server, VERSION } from "./doctor-support";

test("host-side input rows: unused inputs are not checked, with why; a wrong air-gap directory fails with every download as fix", (t) => {
  const dir = scratch(t);
  const rows = hostInputRows(
    hostInputChecks({ ...DEFAULTS, k3sAirgapDir: dir }, { pathEnv: "/nonexistent", keyringPath: `${dir}/k.gpg` }),
  );
  const V = "v1.26.6%2Bk3s1";
  t.deepEqual(rows, [
    {
      check: "k3sAirgapDir",
      status: "fail",
      detail:
        "k3s: missing. install.sh: missing. k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too).",
      fix:
        `Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s (linux amd64) as ${dir}/k3s. (Or set cilium-lab:k3sAirgapDir to "" to install from the internet.) ` +
        `Download https://raw.githubusercontent.com/k3s-io/k3s/${V}/install.sh (or https://get.k3s.io) as ${dir}/install.sh. ` +
        `Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s-airgap-images-amd64.tar.zst into ${dir}.`,
    },
    {
      check: "ciliumChart",
      status: "unchecked",
      detail: "not used: empty: Helm downloads chart 1.13.4 from https://helm.cilium.io",
      fix: "",
    },
    {
      check: "imageUrl",
      status: "unchecked",
      detail: "not used: image ubuntu-23.04: downloaded, no host file",
      fix: "",
    },
    {
      check: "gpgv and Ubuntu's keyring",
      status: "fail",
      detail: `\`gpgv\` is not on PATH: it checks the signature of Ubuntu's SHA256SUMS. The signing keyring ${dir}/k.gpg is missing or unreadable.`,
      fix: "apt-get install -y gpgv. point keyringPath at an existing OpenPGP keyring.",
    },
  ]);
});

test("probes: a file answering 200 or 302 passes, 404 fails; a registry's 401 passes; refused, silent and unresolvable hosts fail naming DNS, TCP or the timeout (real requests on 127.0.0.1)", async (t) => {
  const file = (url: string): UpstreamEndpoint => ({ url, from: "host", why: "w", expect: "file", group: "g" });
  const s200 = await server(t, 200);
  const s302 = await server(t, 302, "http://archive.example.invalid/x");
  const s404 = await server(t, 404);
  const s401 = await server(t, 401);
  const refused = `http://127.0.0.1:${await closedPort()}/`;
  const silent = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;

  const verdict = async (e: UpstreamEndpoint, timeout = 2000): Promise<[boolean, string]> => {
    const r = judge(e, await probe(e.url, timeout));
    return [r.ok, r.text.replace(/\(\d+(\.\d+)? s\)/, "(T s)")];
  };
  t.deepEqual(await verdict(file(`${s200}/SHA256SUMS`)), [true, "HTTP 200 (T s)"]);
  t.deepEqual(await verdict(file(`${s302}/k3s`)), [true, "HTTP 302 → archive.example.invalid (T s)"]);
  t.deepEqual(await verdict(file(`${s404}/gone`)), [false, "HTTP 404 (T s)"]);
  t.deepEqual(await verdict({ ...file(`${s401}/v2/`), expect: "service" }), [true, "HTTP 401 (T s)"]);
  t.deepEqual(await verdict(file(refused)), [false, `TCP: connection to ${new URL(refused).host} refused`]);
  t.deepEqual(await verdict(file(silentUrl), 500), [false, `no answer from ${new URL(silentUrl).host} within 0.5 s`]);
  const dns = await verdict(file("http://upstream.cilium-lab.invalid/"));
  t.false(dns[0]);
  t.regex(dns[1], /^DNS: cannot resolve upstream\.cilium-lab\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/);
});

test("upstream rows: a group passes when one source answers; a failed group names its hosts and the way around them", async (t) => {
  const ok = await server(t, 200);
  const refused = `http://127.0.0.1:${await closedPort()}`;
  const endpoints: UpstreamEndpoint[] = [
    { url: `${refused}/a`, from: "host", why: "the image", expect: "file", group: "base image" },
    { url: `${ok}/b`, from: "host", why: "the image", expect: "file", group: "base image" },
    { url: `${refused}/index.yaml`, from: "host", why: "the chart", expect: "file", group: "Helm repository" },
    { url: `${refused}/v2/`, from: "nodes", why: "Cilium images", expect: "service", group: "registry quay.io" },
    { url: `${refused}/install.sh`, from: "nodes", why: "k3s", expect: "file", group: "k3s-installer" },
  ];
  const answers = new Map(await Promise.all(endpoints.map(async (e) => [e.url, await probe(e.url, 2000)] as const)));
  const rows = upstreamRows(endpoints, answers);
  t.deepEqual(
    rows.map((r) => [r.check, r.status]),
    [
      ["host → base image", "ok"],
      ["host → Helm repository", "fail"],
      ["nodes → registry quay.io", "fail"],
      ["nodes → k3s-installer", "fail"],
    ],
  );
  const host = new URL(refused).host;
  t.true(
    rows[0]?.detail.startsWith(
      `probed from this host: ${refused}/a TCP: connection to ${host} refused; ${ok}/b HTTP 200 (`,
    ),
    rows[0]?.detail,
  );
  t.deepEqual(
    rows.slice(1).map((r) => r.fix),
    [
      `Allow this host to reach ${host} (HTTPS; check the proxy, firewall allowlist and DNS), or fetch the chart elsewhere (\`helm pull cilium/cilium --version <ciliumVersion>\`) and set cilium-lab:ciliumChart to the .tgz.`,
      `Allow the lab network (NAT through this host) to reach ${host} (HTTPS; check the proxy, firewall allowlist and DNS), or put the images into the air-gap directory's tarballs (cilium-lab:k3sAirgapDir) or use a mirror (cilium-lab:iperf3Image).`,
      `Allow the lab network (NAT through this host) to reach ${host} (HTTPS; check the proxy, firewall allowlist and DNS), or install k3s from files: cilium-lab:k3sAirgapDir (README, "Air-gapped install").`,
    ],
  );
  t.is(
    upstreamFix("base image", endpoints.slice(0, 1), ["cloud-images.ubuntu.com"]),
    "Allow this host to reach cloud-images.ubuntu.com (HTTPS; check the proxy, firewall allowlist and DNS), or use a local image: cilium-lab:image custom with cilium-lab:imageUrl file:///path and cilium-lab:imageSha256.",
  );
  t.is(upstreamRows(endpoints.slice(2, 3), undefined)[0]?.status, "unchecked");
});

test("every row of a full run, the upstreams answered by a local server in place of the internet: exit-worthy failures only where the host lacks something", async (t) => {
  const dir = scratch(t);
  writeFileSync(path.join(dir, "k.gpg"), "k");
  const local = await server(t, 200);
  const deps: DoctorDeps = {
    projectDir: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: dir },
    run: (_file, args) => Promise.resolve(args[0] === "version" ? VERSION : NONE_INSTALLED),
    hostFacts: () => facts(),
    probe: () => probe(`${local}/`, 2000),
    hostInputs: { keyringPath: path.join(dir, "k.gpg") },
  };
  const rows = await doctorRows({ stack: "vxlan", json: true, probe: true, help: false }, deps);
  const endpoints = upstreamEndpoints(DEFAULTS, requiredPlugins(REPO_ROOT));
  t.deepEqual(
    rows.filter((r) => r.status === "fail"),
    [],
  );
  t.deepEqual(rows.map((r) => r.check).slice(0, 5), [
    "stack config",
    "Pulumi CLI",
    "plugin command 1.2.1",
    "plugin kubernetes 4.34.2",
    "host tools",
  ]);
  t.true(rows.every((r) => Object.keys(r).join() === "check,status,detail,fix"));
  const upstreamChecks = rows.filter((r) => r.check.startsWith("host →") || r.check.startsWith("nodes →"));
  t.is(
    upstreamChecks.length,
    new Set(endpoints.filter((e) => !/^plugin [a-z]+ \d/.test(e.group)).map((e) => e.group)).size,
  );
  const text = renderRows(rows, "title");
  t.true(text.endsWith("doctor: nothing failed."), text);
});
