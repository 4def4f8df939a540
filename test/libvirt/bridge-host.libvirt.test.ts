// test-runs-as: root
// (it creates a bridge, a veth pair and a network namespace, and starts the preflight as the test user with runuser)
//
// Bridge mode's preflight on this real host: a missing bridge, a bridge that is down, and an
// address already held on the bridge (a namespace behind a veth: "another machine of the LAN")
// are each reported with their fix, gathered through libvirt's interface driver, `ip`, the local
// br_netfilter sysctl and a TCP/ARP probe. As the unprivileged test user the same gathering works,
// and the FORWARD ruleset it cannot read is reported "not checked (needs root)", never guessed.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  BRIDGE_NF_CALL_IPTABLES,
  evaluatePreflight,
  gatherHostFacts,
  type PreflightRequest,
  type PreflightResult,
} from "../../infra/libvirt/preflight";
import { TEST_LAN, bridgeLeftovers, createTestBridge, holdAddress, sweepBridges, testLanNode } from "./bridge-support";
import { REPO_ROOT, URI } from "./support";

const PREFIX = "clt-bh";
const BRIDGE = `${PREFIX}0`;
const USER = process.env.CILIUM_LAB_TEST_USER ?? "clab";

const request = (bridge = BRIDGE): PreflightRequest => ({
  uri: URI,
  stack: PREFIX,
  accelerator: "qemu",
  networkName: `${PREFIX}-net`,
  bridgeName: `${PREFIX}-lab`,
  networkCidr: TEST_LAN.cidr,
  nodes: [1, 2].map((n) => ({ domainName: `${PREFIX}-node-${n}`, vcpus: 1, memoryMiB: 256 })),
  disks: [],
  onlineInstall: true,
  bridge: {
    name: bridge,
    addresses: [1, 2].map((n) => ({ domainName: `${PREFIX}-node-${n}`, address: testLanNode(n) })),
  },
});

test.before(() => sweepBridges(PREFIX));
test.after.always(() => sweepBridges(PREFIX));

const rowOf = (r: PreflightResult, check: string): unknown => r.rows.find((x) => x.check === check);

test.serial("a missing bridge is a named problem with its fix, read through libvirt and ip", (t) => {
  const result = evaluatePreflight(request(), gatherHostFacts(request()));
  t.deepEqual(result.problems, [
    `bridge "${BRIDGE}" (cilium-lab:bridge) does not exist on ${URI} (libvirt: Interface not found: couldn't find interface named '${BRIDGE}'). ` +
      `Fix: create it on that host (\`ip link add ${BRIDGE} type bridge && ip link set ${BRIDGE} up\`, then enslave the LAN NIC), or \`pulumi config set cilium-lab:bridge <existing bridge>\` (\`ip -br link show type bridge\` on that host lists the bridges).`,
  ]);
  t.deepEqual(bridgeLeftovers(PREFIX), { links: [], namespaces: [] }, "the preflight creates nothing");
});

test.serial("the test bridge passes; set down it fails; the local br_netfilter row reads this host", (t) => {
  createTestBridge(BRIDGE);
  try {
    const up = evaluatePreflight(request(), gatherHostFacts(request()));
    t.deepEqual(up.problems, []);
    t.deepEqual(rowOf(up, "bridge"), {
      check: "bridge",
      status: "ok",
      detail: `bridge "${BRIDGE}" exists and is up (\`ip link\` (local) and libvirt's interface driver)`,
      fix: "",
    });
    const nf = fs.existsSync(BRIDGE_NF_CALL_IPTABLES) ? fs.readFileSync(BRIDGE_NF_CALL_IPTABLES, "utf8").trim() : "";
    const firewall = rowOf(up, "firewall") as { status: string; detail: string };
    t.log(`bridge-nf-call-iptables: ${nf || "(br_netfilter not loaded)"}; firewall row: ${firewall.detail}`);
    t.is(firewall.status, "ok", "this host's FORWARD policy is ACCEPT (or br_netfilter is off)");
    t.regex(
      firewall.detail,
      nf === "1"
        ? new RegExp(`^local check: br_netfilter is on, and frames bridged on ${BRIDGE} .* pass every forward hook$`)
        : /^local check: (net\.bridge\.bridge-nf-call-iptables=0|br_netfilter is not loaded)/,
    );
    spawnSync("ip", ["link", "set", BRIDGE, "down"]);
    const down = evaluatePreflight(request(), gatherHostFacts(request()));
    t.deepEqual(down.problems, [`bridge "${BRIDGE}" exists but is down. Fix: \`ip link set ${BRIDGE} up\`.`]);
  } finally {
    sweepBridges(PREFIX);
  }
  t.deepEqual(bridgeLeftovers(PREFIX), { links: [], namespaces: [] });
});

test.serial("an address held on the bridge by another machine fails, naming the address and its MAC", (t) => {
  createTestBridge(BRIDGE);
  const holder = holdAddress(BRIDGE, PREFIX, testLanNode(2));
  try {
    const started = Date.now();
    const facts = gatherHostFacts(request());
    const ms = Date.now() - started;
    t.log(`gathered with the address probe in ${ms} ms`);
    t.true(ms < 10_000);
    t.deepEqual(evaluatePreflight(request(), facts).problems, [
      `address ${testLanNode(2)} of ${PREFIX}-node-2 is taken: something refused a TCP connection on port 22 (it is up) from MAC ${holder.mac} (best-effort probe from this host). ` +
        "Fix: free that address on the LAN, or move the nodes to a networkCidr whose addresses from base + 11 up are unused (`pulumi config set cilium-lab:networkCidr <cidr>`).",
    ]);
  } finally {
    holder.remove();
    sweepBridges(PREFIX);
  }
  t.deepEqual(bridgeLeftovers(PREFIX), { links: [], namespaces: [] });
});

test.serial(
  "as the unprivileged test user: the same rows, and an unreadable ruleset is 'not checked (needs root)'",
  (t) => {
    createTestBridge(BRIDGE);
    // The user's own HOME and TMPDIR for this run (tsx caches its compiled files under TMPDIR):
    // nothing of the user may stay outside its home once the tests are done.
    const home = fs.mkdtempSync(path.join(os.tmpdir(), `cilium-lab-${USER}-`));
    const ids = (flag: string): number => Number(spawnSync("id", [flag, USER], { encoding: "utf8" }).stdout.trim());
    fs.chownSync(home, ids("-u"), ids("-g"));
    t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
    try {
      const r = spawnSync(
        "runuser",
        [
          "-u",
          USER,
          "--",
          "env",
          "-i",
          `HOME=${home}`,
          `TMPDIR=${home}`,
          "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        ].concat([
          process.execPath,
          "--import",
          "tsx",
          "test/libvirt/bridge-preflight-child.ts",
          JSON.stringify(request()),
        ]),
        { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
      );
      const result = JSON.parse(r.stdout.trim().split("\n").pop() ?? "null") as PreflightResult | null;
      t.truthy(result, `the child printed no verdict (exit ${r.status}): ${r.stdout}${r.stderr}`);
      if (!result) {
        return;
      }
      t.deepEqual(result.problems, []);
      t.is((rowOf(result, "bridge") as { status: string }).status, "ok");
      t.is((rowOf(result, "libvirt") as { status: string }).status, "ok");
      const nf = fs.existsSync(BRIDGE_NF_CALL_IPTABLES) ? fs.readFileSync(BRIDGE_NF_CALL_IPTABLES, "utf8").trim() : "";
      const firewall = rowOf(result, "firewall") as { status: string; detail: string };
      if (nf === "1") {
        t.is(firewall.status, "unchecked");
        t.regex(
          firewall.detail,
          /^local check: the FORWARD rules for frames bridged on clt-bh0 not checked \(needs root\): /,
        );
        t.true(result.warnings.some((w) => w.startsWith("bridge firewall (local check): ")));
      } else {
        t.is(firewall.status, "ok", firewall.detail);
      }
    } finally {
      sweepBridges(PREFIX);
    }
    t.deepEqual(bridgeLeftovers(PREFIX), { links: [], namespaces: [] });
  },
);
