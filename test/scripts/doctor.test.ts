/**
 * doctor's rows, each failure with its exact fix: the stack config, the Pulumi CLI and its plugins
 * (injected command results), the libvirt preflight (injected host facts), the host-side inputs
 * (real files), and the upstream probes — real HTTP requests to servers on 127.0.0.1, a closed port,
 * a server that never answers and a name under .invalid. Nothing here contacts a public host.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";

import test, { type ExecutionContext } from "ava";

import { parseLabConfig } from "../../infra/config";
import { hostInputChecks } from "../../infra/config/host-inputs";
import { evaluatePreflight, labPreflightRequest, type HostFacts } from "../../infra/libvirt/preflight";
import { upstreamEndpoints, type UpstreamEndpoint } from "../../infra/upstreams";
import {
  doctorRows,
  parseDoctorArgs,
  renderRows,
  requiredPlugins,
  REPO_ROOT,
  type DoctorDeps,
} from "../../scripts/doctor/index";
import { judge, probe } from "../../scripts/doctor/probe";
import {
  configRow,
  hostInputRows,
  pluginRow,
  preflightDoctorRows,
  pulumiRow,
  upstreamFix,
  upstreamRows,
  type CommandResult,
} from "../../scripts/doctor/rows";
import { loadStackConfig } from "../../scripts/doctor/stack-config";

const DEFAULTS = parseLabConfig({}).config;
const VERSION: CommandResult = { code: 0, stdout: "v3.250.0\n", stderr: "" };
const NONE_INSTALLED: CommandResult = { code: 0, stdout: "[]\n", stderr: "" };
const COMMAND = { name: "command", version: "1.2.1" };

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), "cl-doctor-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A local HTTP server answering every request with `status` (and a Location for 3xx). */
async function server(t: ExecutionContext, status: number, location?: string): Promise<string> {
  const s = http.createServer((_req, res) => {
    res.writeHead(status, location !== undefined ? { location } : {});
    res.end("x");
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A port that was just free: nothing listens on it. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test("the command line: [stack] [--json] [--no-probe]; anything else is a usage error", (t) => {
  t.deepEqual(parseDoctorArgs([]), { json: false, probe: true, help: false });
  t.deepEqual(parseDoctorArgs(["native", "--json", "--no-probe"]), {
    stack: "native",
    json: true,
    probe: false,
    help: false,
  });
  t.throws(() => parseDoctorArgs(["vxlan", "geneve"]), {
    message: /^doctor: unexpected argument "geneve"\nusage: npm run lab -- doctor/,
  });
  t.throws(() => parseDoctorArgs(["--yes"]), { message: /^doctor: unexpected argument "--yes"/ });
});

test("the plugins come from package.json: command 1.2.1 and kubernetes 4.34.2", (t) => {
  t.deepEqual(requiredPlugins(REPO_ROOT), [
    { name: "command", version: "1.2.1" },
    { name: "kubernetes", version: "4.34.2" },
  ]);
});

test("stack config row: the committed vxlan stack parses; a config the parser refuses fails with its problems and the config command as fix", (t) => {
  const row = configRow("vxlan", loadStackConfig(REPO_ROOT, "vxlan"));
  t.is(row.status, "ok");
  t.is(
    row.detail,
    `${REPO_ROOT}/stacks/Pulumi.vxlan.yaml: vxlan, 3 nodes × 2 vCPUs × 4096 MiB, image ubuntu-23.04, accelerator kvm`,
  );
  t.is(
    configRow(undefined, loadStackConfig(REPO_ROOT, undefined)).detail,
    "no stack named: the defaults: vxlan, 3 nodes × 2 vCPUs × 4096 MiB, image ubuntu-23.04, accelerator kvm",
  );

  const dir = scratch(t);
  writeFileSync(path.join(dir, "Pulumi.yaml"), "name: cilium-lab\nstackConfigDir: stacks\n");
  mkdirSync(path.join(dir, "stacks"));
  writeFileSync(
    path.join(dir, "stacks", "Pulumi.bad.yaml"),
    "config:\n  cilium-lab:nodeCount: 1\n  cilium-lab:sshAuthorizedKey:\n    secure: AAAA\n",
  );
  const bad = configRow("bad", loadStackConfig(dir, "bad"));
  t.deepEqual(bad, {
    check: "stack config",
    status: "fail",
    detail: `${dir}/stacks/Pulumi.bad.yaml: cilium-lab:nodeCount: is out of range (got 1). An integer from 2 to 9.`,
    fix: "npm run lab -- config bad set cilium-lab:<key> <value> (or edit the stack file)",
  });
  t.deepEqual(
    loadStackConfig(dir, "bad").file.secretKeys,
    ["sshAuthorizedKey"],
    "secret values are not read (no passphrase)",
  );
});

const INSTALL_PULUMI =
  'Install it (https://www.pulumi.com/docs/install/), or on a host without internet access build it from Go modules: eval "$(bash scripts/toolchain.sh)"';

test("Pulumi CLI row: its version; not on PATH or failing, the installer and scripts/toolchain.sh as fix", (t) => {
  t.deepEqual(pulumiRow(VERSION), { check: "Pulumi CLI", status: "ok", detail: "pulumi v3.250.0", fix: "" });
  t.deepEqual(pulumiRow({ code: "ENOENT", stdout: "", stderr: "" }), {
    check: "Pulumi CLI",
    status: "fail",
    detail: "pulumi is not on PATH",
    fix: INSTALL_PULUMI,
  });
  t.deepEqual(pulumiRow({ code: 255, stdout: "", stderr: "boom\nerror: cannot run\n" }), {
    check: "Pulumi CLI",
    status: "fail",
    detail: "`pulumi version` failed (exit 255): error: cannot run",
    fix: INSTALL_PULUMI,
  });
});

const COPY =
  "On a host with internet access run `pulumi plugin install resource command 1.2.1` and copy its $PULUMI_HOME/plugins/resource-command-v1.2.1 directory " +
  "(PULUMI_HOME defaults to ~/.pulumi) into this host's, or put pulumi-resource-command-v1.2.1-linux-amd64.tar.gz on a reachable server and set PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES.";

test("plugin rows: installed, or downloadable by the first up, else a failure that says how to bring the plugin over", (t) => {
  const installed: CommandResult = {
    code: 0,
    stdout: JSON.stringify([{ name: "command", kind: "resource", version: "1.2.1" }]),
    stderr: "",
  };
  t.is(pluginRow(COMMAND, VERSION, installed, undefined, {}).detail, "installed (pulumi plugin ls)");
  t.deepEqual(pluginRow(COMMAND, VERSION, NONE_INSTALLED, { reachable: true, detail: "github.com HTTP 302" }, {}), {
    check: "plugin command 1.2.1",
    status: "ok",
    detail: "not installed; the first `up` downloads it, probed from this host: github.com HTTP 302",
    fix: "",
  });
  t.deepEqual(
    pluginRow(
      COMMAND,
      VERSION,
      NONE_INSTALLED,
      { reachable: false, detail: "github.com DNS: cannot resolve github.com (ENOTFOUND)" },
      {},
    ),
    {
      check: "plugin command 1.2.1",
      status: "fail",
      detail:
        "not installed, and no download source answered, probed from this host: github.com DNS: cannot resolve github.com (ENOTFOUND)",
      fix: `Allow this host to reach github.com, release-assets.githubusercontent.com or get.pulumi.com (HTTPS), or: ${COPY}`,
    },
  );
  t.deepEqual(
    pluginRow(
      COMMAND,
      VERSION,
      NONE_INSTALLED,
      { reachable: true, detail: "" },
      { PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" },
    ),
    {
      check: "plugin command 1.2.1",
      status: "fail",
      detail: "not installed, and PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is set: `up` cannot download it",
      fix: `${COPY} Or unset PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION on a host with internet access.`,
    },
  );
  t.is(pluginRow(COMMAND, VERSION, NONE_INSTALLED, undefined, {}).status, "unchecked");
  t.is(
    pluginRow(COMMAND, { code: "ENOENT", stdout: "", stderr: "" }, NONE_INSTALLED, undefined, {}).detail,
    "no working pulumi CLI to ask",
  );
});

/** Air-gapped, so the preflight's firewall check (for online installs) is not part of these facts. */
const AIRGAPPED = { ...DEFAULTS, k3sAirgapDir: "/srv/k3s" };
const REQUEST = labPreflightRequest(
  AIRGAPPED,
  {
    networkName: "cilium-lab-vxlan",
    bridgeName: "cl-vxlan-1a2b",
    nodes: [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}` })),
  },
  "vxlan",
  { poolDir: "/var/lib/libvirt/cilium-lab/vxlan", imageCacheDir: "/var/cache/cilium-lab" },
);

function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    missingTools: [],
    libvirt: { reachable: true, networks: [], domains: [] },
    routes: [],
    links: ["lo"],
    kvm: { usable: true, detail: "" },
    memAvailableMiB: 20_000,
    cpus: 8,
    disks: REQUEST.disks.map((d) => ({ path: d.path, freeBytes: 100 * 1024 ** 3 })),
    ...overrides,
  };
}

test("host rows from the preflight: each failing check with its own fix, the others ok", (t) => {
  const f = facts({
    missingTools: ["cloud-localds"],
    libvirt: {
      reachable: true,
      networks: [{ name: "other", owner: undefined, bridge: "virbr1", cidrs: ["192.168.150.0/25"], active: true }],
      domains: [{ name: "cilium-lab-vxlan-node-1", owner: undefined, running: false }],
    },
    kvm: { usable: false, detail: "/dev/kvm is missing or not accessible (ENOENT)" },
    memAvailableMiB: 6000,
    cpus: 1,
    disks: [
      { path: "/var/lib/libvirt/cilium-lab/vxlan", freeBytes: 2 * 1024 ** 3 },
      { path: "/var/cache/cilium-lab", freeBytes: 100 * 1024 ** 3 },
    ],
  });
  const rows = preflightDoctorRows(evaluatePreflight(REQUEST, f).rows, "vxlan");
  const byCheck = Object.fromEntries(rows.map((r) => [r.check, r]));
  t.deepEqual(
    rows.filter((r) => r.status === "fail").map((r) => [r.check, r.fix]),
    [
      ["host tools", "`apt-get install cloud-image-utils` (or set CLOUD_LOCALDS_BIN to its path)."],
      [
        "KVM",
        "`pulumi config set cilium-lab:accelerator qemu` (TCG software emulation: boots take minutes, so also raise cilium-lab:bootTimeoutSeconds, e.g. 900).",
      ],
      ["CPUs", "`pulumi config set cilium-lab:nodeCpus 1`."],
      ["memory", "`pulumi config set cilium-lab:nodeMemoryMiB 1792`, lower cilium-lab:nodeCount, or free memory."],
      ["disk", "free space on that filesystem (or move the directory)."],
      [
        "subnet",
        "choose a free range, e.g. `pulumi config set cilium-lab:networkCidr 192.168.100.0/24` (each stack needs its own).",
      ],
      [
        "libvirt names",
        "remove it (`virsh destroy cilium-lab-vxlan-node-1; virsh undefine cilium-lab-vxlan-node-1 --nvram`) or use another stack name.",
      ],
    ],
  );
  t.is(byCheck.libvirt?.status, "ok");
  t.is(
    byCheck.memory?.detail,
    "3 node(s) need 12288 MiB of memory but the host has 6000 MiB available (MemAvailable).",
  );

  const down = preflightDoctorRows(
    evaluatePreflight(
      REQUEST,
      facts({ libvirt: { reachable: false, error: "Failed to connect socket" }, kvm: undefined }),
    ).rows,
    "vxlan",
  );
  t.deepEqual(
    down
      .filter((r) => r.check === "libvirt" || r.check === "memory" || r.check === "libvirt names")
      .map((r) => [r.check, r.status, r.status === "fail" ? r.fix : r.detail]),
    [
      [
        "libvirt",
        "fail",
        "start the libvirt daemons (`virtlogd -d && libvirtd -d`, or `systemctl start libvirtd`) and check cilium-lab:libvirtUri.",
      ],
      ["memory", "unchecked", "libvirt is not reachable at qemu:///system"],
      ["libvirt names", "unchecked", "libvirt is not reachable at qemu:///system"],
    ],
  );
  const noStack = preflightDoctorRows(evaluatePreflight(REQUEST, facts()).rows, undefined);
  t.deepEqual(
    noStack.find((r) => r.check === "libvirt names"),
    {
      check: "libvirt names",
      status: "unchecked",
      detail: "no stack named: the network and domain names come from it",
      fix: "",
    },
  );
  t.true(
    noStack.filter((r) => r.check !== "libvirt names" && r.check !== "firewall").every((r) => r.status === "ok"),
    JSON.stringify(noStack),
  );
});

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
