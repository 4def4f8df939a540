/**
 * Real iptables on the k3s script test VM. The test image (scripts/dev/build-test-image.sh) has no
 * iptables, and the tests cannot download packages; the host runs the same Debian release
 * (bookworm), so its own installed iptables 1.8.9 and libraries are copied onto the VM, with the
 * `iptables` → `iptables-nft` links Debian's alternatives would set. The kube-proxy tests then run
 * the real `iptables-save` / `iptables-restore` that install-k3s.sh calls.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";

import type { TestVm } from "./test-vm";

/** The host packages copied: iptables and its shared libraries (`apt-cache depends iptables`). */
const PACKAGES = [
  "iptables",
  "libip4tc2",
  "libip6tc2",
  "libxtables12",
  "libmnl0",
  "libnetfilter-conntrack3",
  "libnfnetlink0",
  "libnftnl11",
];

/** Copies the host's iptables onto `vm` (a tarball in `localDir`); fails naming what is missing. */
export async function installHostIptables(vm: TestVm, localDir: string): Promise<void> {
  const tarball = join(localDir, "iptables.tar");
  try {
    execFileSync(
      "sh",
      [
        "-c",
        // files and links only (directories exist on the VM), no docs.
        `dpkg -L ${PACKAGES.join(" ")} | while read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then printf '%s\\n' "$f"; fi; done | grep -v '^/usr/share/' | tar -C / --no-recursion -cf "$1" -T -`,
        "sh",
        tarball,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
  } catch (err) {
    throw new Error(
      `cannot pack the host's iptables (${PACKAGES.join(", ")}): apt-get install -y iptables (listed in .ci/apt-packages.txt)`,
      { cause: err },
    );
  }
  await vm.copy(tarball, "/tmp/cl-iptables.tar");
  const links = ["iptables", "ip6tables"]
    .flatMap((t) => [
      `ln -sf ${t}-nft /usr/sbin/${t}`,
      `ln -sf ${t}-nft-save /usr/sbin/${t}-save`,
      `ln -sf ${t}-nft-restore /usr/sbin/${t}-restore`,
    ])
    .join(" && ");
  const r = await vm.ssh(
    `sudo sh -c 'tar -C / -xf /tmp/cl-iptables.tar && rm /tmp/cl-iptables.tar && ldconfig && ${links}' && sudo iptables-save >/dev/null && sudo iptables -V`,
  );
  if (r.code !== 0 || !r.stdout.startsWith("iptables v1.8")) {
    throw new Error(`the host's iptables does not run on the test VM (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}
