/**
 * The k3s layer's node scripts, run for real over SSH on one booted test VM (the project's test
 * image under TCG, seeded by the nodes layer's own cloud-init renderers, host key pinned), shipped
 * exactly as the k3s component ships them: the command lines come from infra/k3s/args.ts, small
 * scripts on stdin, install/uninstall copied over SFTP into the staging directory, the token on stdin.
 *
 * The VM's network is isolated (no internet), and no k3s binary can be obtained on our machines:
 * these tests cover waiting, preparing, reading the kubeconfig and every failure report of the
 * installer (no internet, wrong air-gap binary, failing install.sh, unreachable server). The
 * install → uninstall → install cycle and the kube-proxy switch, with a stand-in k3s, are in
 * k3s-lifecycle.vm.test.ts. What k3s itself does is covered by the mock tests only.
 */
import test from "ava";

import {
  AIRGAP_STAGING_DIR,
  INSTALL_SCRIPT_PATH,
  STAGING_DIR,
  TOKEN_FILE,
  installCommand,
  installStdin,
  kubeconfigCommand,
  prepareCommand,
  waitCommand,
} from "../../infra/k3s/args";
import { nodeScript } from "../../infra/node-scripts";
import { KERNEL_MODULES, SYSCTLS } from "../../infra/nodes/cloud-init";
import { TOKEN, VERSION, installInput, put, runInstall, stageFakeAirgap, theVm, useTestVm } from "./support/node-vm";

useTestVm();

test.serial(
  "wait-cloud-init.sh, shipped on stdin as the login user, returns once cloud-init has finished",
  async (t) => {
    const r = await theVm().ssh(waitCommand("node-1", 600), nodeScript("wait-cloud-init.sh").text);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /^cilium-lab\[node-1\]: cloud-init finished \(status: done\) after \d+s$/m);
    const status = await theVm().ssh("cloud-init status");
    t.is(status.stdout.trim(), "status: done");
    t.log(`boot to SSH: ${theVm().bootSeconds}s; ${r.stderr.trim()}`);
  },
);

test.serial(
  "prepare-node.sh finds a lab node ready, repairs a lost sysctl and module in the running kernel, and a third run changes nothing",
  async (t) => {
    const vm = theVm();
    const line = prepareCommand({ node: "node-1", nodeIp: vm.ip, modules: KERNEL_MODULES, sysctls: SYSCTLS });
    const script = nodeScript("prepare-node.sh").text;

    const first = await vm.ssh(line, script);
    t.is(first.code, 0, first.stderr);
    t.notRegex(first.stderr, /fixed:/, "cloud-init should already have applied the nodes layer's modules and sysctls");
    for (const [key, value] of SYSCTLS) {
      t.true(first.stderr.includes(`cilium-lab[node-1]: ok: ${key} = ${value}\n`), key);
    }
    t.true(first.stderr.includes(`cilium-lab[node-1]: ok: ${vm.ip} is on eth0\n`));
    t.true(
      first.stderr.includes("cilium-lab[node-1]: warning: no IPv4 default route"),
      "the isolated test network has no default route",
    );

    // lose what a broken cloud-init would not have applied.
    const broken = await vm.ssh(
      "sudo sysctl -q -w net.ipv4.conf.all.rp_filter=2 && sudo modprobe -r geneve && ! test -d /sys/module/geneve",
    );
    t.is(broken.code, 0, broken.stderr);
    const second = await vm.ssh(line, script);
    t.is(second.code, 0, second.stderr);
    t.deepEqual(
      second.stderr.split("\n").filter((l) => l.includes("fixed:")),
      [
        "cilium-lab[node-1]: fixed: loaded kernel module geneve",
        "cilium-lab[node-1]: fixed: net.ipv4.conf.all.rp_filter = 0 (was 2)",
      ],
    );

    const third = await vm.ssh(line, script);
    t.is(third.code, 0, third.stderr);
    t.notRegex(third.stderr, /fixed:/);

    const stat = await vm.ssh(`stat -c '%U %a %n' ${STAGING_DIR} ${AIRGAP_STAGING_DIR} ${AIRGAP_STAGING_DIR}/images`);
    t.is(stat.stdout, `lab 700 ${STAGING_DIR}\nlab 700 ${AIRGAP_STAGING_DIR}\nlab 700 ${AIRGAP_STAGING_DIR}/images\n`);
  },
);

test.serial("prepare-node.sh refuses a --node-ip the node does not have, listing the addresses it has", async (t) => {
  const vm = theVm();
  const r = await vm.ssh(
    prepareCommand({ node: "node-1", nodeIp: "192.0.2.99", modules: [], sysctls: [] }),
    nodeScript("prepare-node.sh").text,
  );
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    new RegExp(
      '^cilium-lab error: node=node-1 step="check the node address" exit=1\n' +
        "  \\| --node-ip 192\\.0\\.2\\.99 is not assigned to any interface; IPv4 addresses found:\n" +
        "  \\| lo 127\\.0\\.0\\.1/8\n" +
        `  \\| eth0 ${vm.ip.replace(/\./g, "\\.")}/24\n` +
        "cilium-lab fix: check the libvirt DHCP reservation for this node's MAC \\(virsh net-dumpxml <network>\\) and the node's network-config\\.\n$",
      "m",
    ),
  );
});

test.serial(
  "install-k3s.sh online on a node without internet fails at the download with node, step, exit code and the air-gap fix, the token only in a 0600 file",
  async (t) => {
    const vm = theVm();
    await vm.copy(nodeScript("install-k3s.sh").path, INSTALL_SCRIPT_PATH);
    const line = installCommand(installInput());
    t.false(line.includes(TOKEN));
    const r = await runInstall();
    t.log(r.stderr);
    t.not(r.code, 0);
    t.regex(
      r.stderr,
      new RegExp(
        `^cilium-lab error: node=node-1 role=server step="download the k3s install script" exit=${r.code}$`,
        "m",
      ),
    );
    t.regex(
      r.stderr,
      /^ {2}\| curl could not download https:\/\/raw\.githubusercontent\.com\/k3s-io\/k3s\/v1\.26\.6%2Bk3s1\/install\.sh \(exit \d+\)$/m,
    );
    t.regex(
      r.stderr,
      /^cilium-lab fix: the node cannot download k3s \(no internet access from the lab network\?\)\. .*'pulumi config set cilium-lab:k3sAirgapDir <dir>'/m,
    );
    t.false(r.stderr.includes(TOKEN) || r.stdout.includes(TOKEN));
    const file = await vm.ssh(`sudo stat -c '%U %a' ${TOKEN_FILE} && sudo cat ${TOKEN_FILE}`);
    t.is(file.stdout, `root 600\n${TOKEN}\n`);
    // curl --retry 3 prints its error once per attempt: the tail shows it once, with the count.
    const tail = r.stderr.slice(r.stderr.indexOf("cilium-lab: last lines of output")).split("\n");
    t.regex(r.stderr, /^ {2}\| curl: \(\d+\) .+ \(×4\)$/m);
    t.true(
      tail.every((l, i) => i === 0 || l !== tail[i - 1] || l === ""),
      "no two consecutive lines of the tail are the same",
    );
  },
);

test.serial(
  "install-k3s.sh refuses arguments on stdin that do not belong to its command line's --args-sha256",
  async (t) => {
    const vm = theVm();
    const r = await vm.ssh(installCommand(installInput()), installStdin(TOKEN, installInput({ nodeIp: "192.0.2.1" })));
    t.is(r.code, 2, r.stderr);
    t.regex(
      r.stderr,
      /^cilium-lab error: node=node-1 role=server step="check arguments" exit=2\n {2}\| the arguments on the command line and on stdin hash to [0-9a-f]{12}, but --args-sha256 is '[0-9a-f]{12}' \(\d+ arguments on stdin after the token\)\n/m,
    );
  },
);

test.serial("install-k3s.sh refuses a copy of itself that is not the one the program hashed", async (t) => {
  const r = await runInstall({ scriptSha256: "0".repeat(64) });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^cilium-lab error: node=node-1 role=server step="verify this script" exit=1\n {2}\| \/var\/lib\/cilium-lab\/install-k3s\.sh has sha256 [0-9a-f]{64}, expected 0{64}\ncilium-lab fix: re-run 'pulumi up': the copy of install-k3s\.sh on the node is stale or damaged\.$/m,
  );
});

test.serial(
  "install-k3s.sh in air-gap mode places the binary and images, then reports a failing install.sh with its exit code and output, the token redacted",
  async (t) => {
    const vm = theVm();
    await stageFakeAirgap(VERSION);
    const r = await runInstall({ source: "airgap" });
    t.log(r.stderr);
    t.is(r.code, 3, r.stderr);
    t.true(
      r.stderr.includes('cilium-lab error: node=node-1 role=server step="run install.sh (server, airgap)" exit=3\n'),
      r.stderr,
    );
    t.true(r.stderr.includes("  | [ERROR]  token was <redacted> and secure token K10<redacted>\n"), r.stderr);
    t.true(r.stderr.includes("cilium-lab fix: read 'sudo journalctl -u k3s' on the node.\n"), r.stderr);
    t.false(r.stderr.includes(TOKEN), "the token must never reach stderr");
    const placed = await vm.ssh(
      "stat -c '%a %U %n' /usr/local/bin/k3s /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst",
    );
    t.is(
      placed.stdout,
      "755 root /usr/local/bin/k3s\n644 root /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst\n",
    );
    // a new binary or image needs a k3s restart, which install.sh alone would skip.
    t.true(r.stderr.includes("(changed: true)\n") && r.stderr.includes("  | force-restart=true\n"), r.stderr);
    const again = await runInstall({ source: "airgap" });
    t.is(again.code, 3, again.stderr);
    t.true(again.stderr.includes("(changed: false)\n") && again.stderr.includes("  | force-restart=\n"), again.stderr);
  },
);

test.serial("install-k3s.sh refuses an air-gap k3s of another release, naming both versions", async (t) => {
  await stageFakeAirgap("v1.27.1+k3s1");
  const r = await runInstall({ source: "airgap" });
  t.is(r.code, 1);
  t.true(
    r.stderr.includes(
      'cilium-lab error: node=node-1 role=server step="check the air-gap k3s version" exit=1\n' +
        "  | the air-gap binary reports 'k3s version v1.27.1+k3s1 (00000000)', but cilium-lab:k3sVersion is v1.26.6+k3s1\n",
    ),
    r.stderr,
  );
  t.true(
    r.stderr.includes(
      "cilium-lab fix: download k3s v1.26.6+k3s1 into cilium-lab:k3sAirgapDir (https://github.com/k3s-io/k3s/releases/tag/v1.26.6%2Bk3s1)",
    ),
    r.stderr,
  );
});

test.serial(
  "install-k3s.sh as an agent whose server does not answer gives up after 60 s with the server URL and what to check",
  async (t) => {
    const vm = theVm();
    await stageFakeAirgap(VERSION);
    const absent = vm.ip.replace(/\.\d+$/, ".99");
    const started = Date.now();
    const r = await runInstall({ role: "agent", nodeName: "node-2", serverIp: absent, source: "airgap" });
    const seconds = (Date.now() - started) / 1000;
    t.is(r.code, 1, r.stderr);
    t.true(
      r.stderr.includes(
        `cilium-lab error: node=node-2 role=agent step="reach the k3s server" exit=1\n  | could not open a TCP connection to ${absent}:6443 for 60s (https://${absent}:6443)\n`,
      ),
      r.stderr,
    );
    t.true(
      r.stderr.includes(
        "cilium-lab fix: check that the server node's k3s runs ('sudo systemctl status k3s' there) and that nothing between the nodes filters TCP 6443.",
      ),
    );
    t.true(seconds >= 60 && seconds < 120, `${seconds}s`);
  },
);

test.serial(
  "read-kubeconfig.sh on a node without k3s fails within its timeout and prints nothing on stdout",
  async (t) => {
    const vm = theVm();
    const line = kubeconfigCommand("node-1").replace("--timeout 180", "--timeout 4");
    const r = await vm.ssh(line, nodeScript("read-kubeconfig.sh").text);
    t.is(r.code, 1);
    t.is(r.stdout, "");
    t.regex(
      r.stderr,
      /^cilium-lab error: node=node-1 step="read \/etc\/rancher\/k3s\/k3s\.yaml" exit=1\n {2}\| no kubeconfig with a server address after 4s; k3s is (inactive|unknown|not installed)\n/,
    );
    t.regex(r.stderr, /^cilium-lab fix: check the k3s server on node-1/m);
  },
);

test.serial("read-kubeconfig.sh prints k3s's kubeconfig, and only it, on stdout", async (t) => {
  const vm = theVm();
  const kubeconfig = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
  await put("k3s.yaml", kubeconfig, "/tmp/k3s.yaml");
  const staged = await vm.ssh("sudo install -D -m 0600 /tmp/k3s.yaml /etc/rancher/k3s/k3s.yaml && rm /tmp/k3s.yaml");
  t.is(staged.code, 0, staged.stderr);
  const r = await vm.ssh(kubeconfigCommand("node-1"), nodeScript("read-kubeconfig.sh").text);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, kubeconfig);
  t.is(r.stderr, "");
});
