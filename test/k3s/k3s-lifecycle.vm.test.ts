/**
 * The k3s install step's whole life on one booted test VM, with the program's own command lines
 * and stdin (see node-scripts.vm.test.ts for the VM and how the scripts are shipped): install →
 * uninstall → install, an online install after an uninstall, and switching kubeProxyReplacement on
 * an agent. No k3s binary can be obtained on our machines, so a stand-in k3s plays it: an air-gap
 * `k3s` that only sleeps and an `install.sh` that writes the systemd unit, env file and uninstall
 * script and (re)starts the unit the way k3s's install.sh does (support/node-vm.ts). What k3s itself
 * does is covered by the mock tests only.
 */
import test from "ava";

import { STAGING_DIR, TOKEN_FILE, type InstallInput } from "../../infra/k3s/args";
import { installHostIptables } from "./support/node-iptables";
import {
  VERSION,
  invocation,
  localDir,
  prepareAndCopy,
  prepareWithStandIn,
  runInstall,
  runUninstall,
  stagedFiles,
  useTestVm,
} from "./support/node-vm";

useTestVm();

test.serial(
  "install → uninstall → install with the program's own command lines and stdin: the uninstall removes only what the install created, so the next install finds the copied scripts and air-gap files and succeeds",
  async (t) => {
    const vm = await prepareWithStandIn();
    const airgap = { source: "airgap" } as const;

    const first = await runInstall(airgap);
    t.is(first.code, 0, first.stderr);
    t.true(
      first.stderr.endsWith(
        `cilium-lab[node-1]: k3s ${VERSION} server installed (airgap) on VM cl-k3stest; k3s is active\n`,
      ),
      first.stderr,
    );
    const staged = await stagedFiles();
    t.regex(staged, /\.\/airgap\/k3s\n/);
    t.regex(staged, /\.\/install-k3s\.sh\n[\s\S]*\.\/uninstall-k3s\.sh\n/);

    // a stopped k3s whose configuration did not change stays stopped: install.sh skips the start.
    t.is((await vm.ssh("sudo systemctl stop k3s")).code, 0);
    const stopped = await runInstall(airgap);
    t.is(stopped.code, 0, stopped.stderr);
    t.true(stopped.stderr.endsWith("; k3s is inactive\n"), stopped.stderr);
    t.false(
      stopped.stderr.includes("unknown"),
      "systemctl is-active prints the state once, even when it exits non-zero",
    );

    const uninstall = await runUninstall(airgap);
    t.is(uninstall.code, 0, uninstall.stderr);
    t.true(uninstall.stderr.includes("cilium-lab[node-1]: k3s (server) uninstalled\n"), uninstall.stderr);
    t.true(
      uninstall.stderr.includes(
        `cilium-lab[node-1]: removed the install step's files (${TOKEN_FILE} /etc/rancher/k3s/cilium-lab-kube-proxy-replacement ${STAGING_DIR}/install.sh ${STAGING_DIR}/install.sh.tmp); kept ${STAGING_DIR} and the copied scripts and air-gap files\n`,
      ),
      uninstall.stderr,
    );
    t.is(
      (
        await vm.ssh(
          `sudo test ! -e ${TOKEN_FILE} && test ! -e /etc/systemd/system/k3s.service && test ! -e /usr/local/bin/k3s`,
        )
      ).code,
      0,
    );
    t.is(await stagedFiles(), staged, "the copy steps' files are unchanged");

    const again = await runInstall(airgap);
    t.is(again.code, 0, again.stderr);
    t.true(again.stderr.endsWith("; k3s is active\n"), again.stderr);

    const done = await runUninstall(airgap);
    t.is(done.code, 0, done.stderr);
    const twice = await runUninstall(airgap);
    t.is(twice.code, 0, twice.stderr);
    t.true(
      twice.stderr.includes(
        "cilium-lab[node-1]: k3s (server) is not installed (/usr/local/bin/k3s-uninstall.sh is absent); nothing to uninstall\n",
      ),
      twice.stderr,
    );
  },
);

test.serial(
  "online: after an uninstall the next install runs the copied script again and stops where it stopped before (no internet), not at a missing file",
  async (t) => {
    await prepareAndCopy();
    const before = await runInstall();
    t.regex(before.stderr, /step="download the k3s install script"/);
    const uninstall = await runUninstall();
    t.is(uninstall.code, 0, uninstall.stderr);
    const after = await runInstall();
    t.not(after.code, 127, after.stderr);
    t.is(after.code, before.code, after.stderr);
    t.regex(
      after.stderr,
      new RegExp(
        `^cilium-lab error: node=node-1 role=server step="download the k3s install script" exit=${before.code}$`,
        "m",
      ),
    );
  },
);

test.serial(
  "switching kubeProxyReplacement on restarts an agent whose unit did not change and removes kube-proxy's KUBE-* iptables rules, keeping Cilium's; a re-run changes nothing",
  async (t) => {
    const vm = await prepareWithStandIn();
    await installHostIptables(vm, localDir());
    // the agent checks that the server's API port answers before installing: a stand-in listener.
    const api = await vm.ssh(
      `sudo systemd-run --unit=cl-fake-k3s-api --collect python3 -m http.server 6443 --bind ${vm.ip} >/dev/null 2>&1`,
    );
    t.is(api.code, 0, api.stderr);
    t.teardown(() => void vm.ssh("sudo systemctl stop cl-fake-k3s-api"));
    const agent = (kpr: boolean): Partial<InstallInput> => ({
      role: "agent",
      nodeName: "node-2",
      source: "airgap",
      kubeProxyReplacement: kpr,
    });

    const off = await runInstall(agent(false));
    t.is(off.code, 0, off.stderr);
    t.true(off.stderr.endsWith("; k3s-agent is active\n"), off.stderr);
    const started = await invocation("k3s-agent");

    // what kube-proxy (iptables mode) leaves behind, beside a Cilium chain.
    const rules = [
      "iptables -t nat -N KUBE-SERVICES",
      "iptables -t nat -N KUBE-NODEPORTS",
      "iptables -t nat -N KUBE-SVC-NPX46M4PTMTKRN6Y",
      "iptables -t nat -A PREROUTING -m comment --comment 'kubernetes service portals' -j KUBE-SERVICES",
      "iptables -t nat -A OUTPUT -m comment --comment 'kubernetes service portals' -j KUBE-SERVICES",
      "iptables -t nat -A KUBE-SERVICES -d 10.43.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y",
      "iptables -t filter -N KUBE-SERVICES",
      "iptables -t filter -A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES",
      "iptables -t nat -N CILIUM_POST_nat",
      "iptables -t nat -A POSTROUTING -m comment --comment 'cilium-feeder: CILIUM_POST_nat' -j CILIUM_POST_nat",
      "ip6tables -t nat -N KUBE-SERVICES",
    ];
    const added = await vm.ssh(rules.map((r) => `sudo ${r}`).join(" && "));
    t.is(added.code, 0, added.stderr);

    const on = await runInstall(agent(true));
    t.is(on.code, 0, on.stderr);
    t.true(
      on.stderr.includes("cilium-lab[node-2]: kube-proxy replacement changes from false to true: k3s-agent restarts\n"),
      on.stderr,
    );
    t.true(
      on.stderr.includes("cilium-lab[node-2]: removed kube-proxy's iptables rules (4 KUBE-* chains)\n"),
      on.stderr,
    );
    t.true(
      on.stderr.includes("cilium-lab[node-2]: removed kube-proxy's ip6tables rules (1 KUBE-* chains)\n"),
      on.stderr,
    );
    t.not(await invocation("k3s-agent"), started, "the agent restarted, so it takes the server's kube-proxy setting");
    const saved = await vm.ssh("sudo iptables-save && sudo ip6tables-save");
    t.notRegex(saved.stdout, /KUBE-/);
    t.regex(saved.stdout, /^:CILIUM_POST_nat - \[0:0\]$/m);
    t.regex(saved.stdout, /^-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat$/m);
    t.is((await vm.ssh("cat /etc/rancher/k3s/cilium-lab-kube-proxy-replacement")).stdout, "true\n");

    const restarted = await invocation("k3s-agent");
    const rerun = await runInstall(agent(true));
    t.is(rerun.code, 0, rerun.stderr);
    t.false(rerun.stderr.includes("restarts"), rerun.stderr);
    t.false(rerun.stderr.includes("removed kube-proxy's"), rerun.stderr);
    t.is(await invocation("k3s-agent"), restarted);

    const uninstall = await runUninstall(agent(true));
    t.is(uninstall.code, 0, uninstall.stderr);
  },
);
