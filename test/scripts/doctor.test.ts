/**
 * doctor's rows, each failure with its exact fix: the command line, the stack config, the Pulumi CLI
 * and its plugins (injected command results) and the libvirt preflight (injected host facts). The
 * host-side inputs, the upstream probes and a full run are in doctor-probes.test.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import test from "ava";

import { evaluatePreflight } from "../../infra/libvirt/preflight";
import { parseDoctorArgs, requiredPlugins, REPO_ROOT } from "../../scripts/doctor/index";
import { configRow, pluginRow, preflightDoctorRows, pulumiRow, type CommandResult } from "../../scripts/doctor/rows";
import { loadStackConfig } from "../../scripts/doctor/stack-config";
import { labDisks } from "../support/preflight-facts";
import { COMMAND, facts, NONE_INSTALLED, REQUEST, scratch, VERSION } from "./doctor-support";

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
    disks: labDisks(2),
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
    noStack
      .filter((r) => !["libvirt names", "firewall", "bridge", "addresses"].includes(r.check))
      .every((r) => r.status === "ok"),
    JSON.stringify(noStack),
  );
});
