/**
 * The stack configs the parser refuses: each with the exact problem line the user reads, the
 * one-error summary of several, and the ranges of the key table enforced at both bounds.
 */
import test from "ava";

import { KEYS, KEY_NAMES, LabConfigError, parseLabConfig, type KeySpec } from "../../infra/config";
import { problemsOf } from "./refused";

const SHA = "a".repeat(64);

const refused: [string, Record<string, string>, string][] = [
  [
    "an unknown routing mode",
    { routingMode: "nativ" },
    'cilium-lab:routingMode: is not supported (got "nativ"). Accepted: vxlan, geneve, native.',
  ],
  [
    "autoDirectNodeRoutes yes",
    { autoDirectNodeRoutes: "yes" },
    'cilium-lab:autoDirectNodeRoutes: is not supported (got "yes"). Accepted: auto, true, false.',
  ],
  [
    "auto direct node routes with VXLAN",
    { autoDirectNodeRoutes: "true" },
    'cilium-lab:autoDirectNodeRoutes: cannot be true with routingMode vxlan: Cilium\'s agent refuses to start ("auto-direct-node-routes cannot be used with tunneling") (got "true"). Use true only with routingMode native, or auto.',
  ],
  [
    "a pod CIDR that is not one",
    { podCidr: "10.0.0/16" },
    'cilium-lab:podCidr: is not an IPv4 CIDR (got "10.0.0/16"). An IPv4 CIDR such as 10.0.0.0/16.',
  ],
  [
    "a pod CIDR with host bits",
    { podCidr: "10.0.1.0/16" },
    'cilium-lab:podCidr: has host bits set (did you mean 10.0.0.0/16?) (got "10.0.1.0/16"). An IPv4 CIDR such as 10.0.0.0/16.',
  ],
  [
    "a pod CIDR over the service CIDR",
    { podCidr: "10.0.0.0/8" },
    'cilium-lab:podCidr: overlaps the k3s service CIDR 10.43.0.0/16 (got "10.0.0.0/8"). A CIDR outside 10.43.0.0/16, such as 10.0.0.0/16.',
  ],
  [
    "a mask no longer than the pool",
    { podCidrMaskSize: "16" },
    "cilium-lab:podCidrMaskSize: must be longer than podCidr's prefix /16 (got 16). An integer from 17 to 28.",
  ],
  [
    "a mask over 28",
    { podCidrMaskSize: "29" },
    "cilium-lab:podCidrMaskSize: is out of range (got 29). An integer longer than podCidr's prefix, at most 28.",
  ],
  [
    "a pool too small for the nodes",
    { podCidr: "10.0.0.0/23", podCidrMaskSize: "24" },
    "cilium-lab:podCidrMaskSize: leaves room for only 2 node blocks in 10.0.0.0/23, fewer than nodeCount 3 (got 24). A longer mask (at most 28) or a larger podCidr.",
  ],
  [
    "a native-routing CIDR missing a node block",
    { routingMode: "native", nativeRoutingCidr: "10.0.0.0/23" },
    'cilium-lab:nativeRoutingCidr: does not contain the pod blocks of all 3 nodes (10.0.0.0/24, 10.0.1.0/24, 10.0.2.0/24); traffic to the others would be masqueraded (got "10.0.0.0/23"). A CIDR containing 10.0.0.0/16\'s first 3 /24 blocks, or empty for podCidr.',
  ],
  [
    "a native-routing CIDR that is not one",
    { nativeRoutingCidr: "ten" },
    'cilium-lab:nativeRoutingCidr: is not an IPv4 CIDR (got "ten"). An IPv4 CIDR such as 10.0.0.0/22.',
  ],
  [
    "a /14 network",
    { networkCidr: "172.16.0.0/14" },
    'cilium-lab:networkCidr: must be a /16 to /28 (got "172.16.0.0/14"). An IPv4 CIDR from /16 to /28, such as 192.168.150.0/24.',
  ],
  [
    "a /29 network",
    { networkCidr: "192.168.1.8/29" },
    'cilium-lab:networkCidr: must be a /16 to /28 (got "192.168.1.8/29"). An IPv4 CIDR from /16 to /28, such as 192.168.150.0/24.',
  ],
  [
    "a /28 network with five nodes",
    { networkCidr: "192.168.7.16/28", nodeCount: "5" },
    'cilium-lab:networkCidr: has no room for 5 nodes at host addresses 11–15 (got "192.168.7.16/28"). A larger network (a shorter prefix).',
  ],
  [
    "a node network inside the pod pool",
    { networkCidr: "10.0.200.0/24" },
    'cilium-lab:networkCidr: overlaps podCidr 10.0.0.0/16 (got "10.0.200.0/24"). A node network disjoint from pod and service CIDRs, such as 192.168.150.0/24.',
  ],
  [
    "a node network inside the service CIDR",
    { networkCidr: "10.43.8.0/24" },
    'cilium-lab:networkCidr: overlaps the k3s service CIDR 10.43.0.0/16 (got "10.43.8.0/24"). A node network disjoint from pod and service CIDRs, such as 192.168.150.0/24.',
  ],
  ["one node", { nodeCount: "1" }, "cilium-lab:nodeCount: is out of range (got 1). An integer from 2 to 9."],
  ["ten nodes", { nodeCount: "10" }, "cilium-lab:nodeCount: is out of range (got 10). An integer from 2 to 9."],
  [
    "a fractional node count",
    { nodeCount: "2.5" },
    'cilium-lab:nodeCount: must be an integer (got "2.5"). An integer from 2 to 9.',
  ],
  ["zero CPUs", { nodeCpus: "0" }, "cilium-lab:nodeCpus: is out of range (got 0). An integer of at least 1."],
  [
    "512 MiB of memory",
    { nodeMemoryMiB: "512" },
    "cilium-lab:nodeMemoryMiB: is out of range (got 512). An integer of at least 1024.",
  ],
  ["a 4 GiB disk", { nodeDiskGiB: "4" }, "cilium-lab:nodeDiskGiB: is out of range (got 4). An integer of at least 8."],
  [
    "an unknown image",
    { image: "ubuntu-22.04" },
    'cilium-lab:image: is not supported (got "ubuntu-22.04"). Accepted: ubuntu-23.04, ubuntu-24.04, ubuntu-26.04, custom.',
  ],
  [
    "a custom image without hash",
    { image: "custom", imageUrl: "/srv/x.qcow2" },
    'cilium-lab:imageSha256: is required with image custom (got ""). The image\'s SHA-256 as 64 hex digits (sha256sum <file>).',
  ],
  [
    "a custom image by ftp URL",
    { image: "custom", imageUrl: "ftp://x/y.img", imageSha256: SHA },
    'cilium-lab:imageUrl: is not an https://, http:// or file:// URL or an absolute path (got "ftp://x/y.img"). An https://, http:// or file:// URL or an absolute host path of a qcow2 image (http is safe: the download must match imageSha256).',
  ],
  [
    "a short hash",
    { image: "custom", imageUrl: "/srv/x.qcow2", imageSha256: "abc" },
    'cilium-lab:imageSha256: is not a SHA-256 (got "abc"). 64 hex digits (sha256sum <file>).',
  ],
  [
    "an image URL with an Ubuntu image",
    { imageUrl: "/srv/x.qcow2" },
    'cilium-lab:imageUrl: is only used with image custom, not ubuntu-23.04 (got "/srv/x.qcow2"). Remove it, or set image custom.',
  ],
  [
    "accelerator tcg",
    { accelerator: "tcg" },
    'cilium-lab:accelerator: is not supported (got "tcg"). Accepted: kvm, qemu.',
  ],
  [
    "the session daemon",
    { libvirtUri: "qemu:///session" },
    'cilium-lab:libvirtUri: the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach. Fix: use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system (got "qemu:///session"). qemu:///system, or qemu+ssh://[user@]host[:port]/system[?keyfile=/abs/path] with networkMode bridge (qemu:///session is refused).',
  ],
  [
    "a remote libvirt",
    { libvirtUri: "qemu+ssh://lab/system" },
    "cilium-lab:libvirtUri: is remote, which needs networkMode bridge: with nat the nodes would sit behind the remote host's NAT, unreachable from this machine (got \"qemu+ssh://lab/system\"). Set networkMode bridge (with bridge and gateway of the remote host's LAN), or use qemu:///system.",
  ],
  [
    "a 10 s boot timeout",
    { bootTimeoutSeconds: "10" },
    "cilium-lab:bootTimeoutSeconds: is out of range (got 10). An integer from 30 to 3600.",
  ],
  [
    "a k3s version without suffix",
    { k3sVersion: "v1.26.6" },
    'cilium-lab:k3sVersion: is not a k3s release (got "v1.26.6"). A k3s release such as v1.26.6+k3s1 (vX.Y.Z+k3sN).',
  ],
  [
    "a relative air-gap dir",
    { k3sAirgapDir: "airgap" },
    'cilium-lab:k3sAirgapDir: must be an absolute host path (got "airgap"). Empty (online install) or an absolute directory such as /srv/k3s-airgap.',
  ],
  [
    "Cilium 1.12",
    { ciliumVersion: "1.12.19" },
    'cilium-lab:ciliumVersion: is outside the versions whose Helm values this lab renders and tests (got "1.12.19"). A Cilium chart version from 1.13.0 to 1.20.x, such as 1.13.4 or 1.20.0.',
  ],
  [
    "Cilium 1.21",
    { ciliumVersion: "1.21.0" },
    'cilium-lab:ciliumVersion: is outside the versions whose Helm values this lab renders and tests (got "1.21.0"). A Cilium chart version from 1.13.0 to 1.20.x, such as 1.13.4 or 1.20.0.',
  ],
  [
    "a Cilium version with a leading zero",
    { ciliumVersion: "1.13.04" },
    'cilium-lab:ciliumVersion: is not a Cilium release version (got "1.13.04"). A Cilium chart version from 1.13.0 to 1.20.x, such as 1.13.4 or 1.20.0.',
  ],
  [
    "a v-prefixed Cilium version",
    { ciliumVersion: "v1.13.4" },
    'cilium-lab:ciliumVersion: is not a Cilium release version (got "v1.13.4"). A Cilium chart version from 1.13.0 to 1.20.x, such as 1.13.4 or 1.20.0.',
  ],
  [
    "a chart from a URL",
    { ciliumChart: "https://helm.cilium.io" },
    'cilium-lab:ciliumChart: must be a local path (got "https://helm.cilium.io"). Empty (Cilium\'s Helm repository) or an absolute or ./relative path to a chart .tgz or directory.',
  ],
  [
    "kubeProxyReplacement strict",
    { kubeProxyReplacement: "strict" },
    'cilium-lab:kubeProxyReplacement: must be a boolean (got "strict"). Accepted: true, false.',
  ],
  [
    "an iperf3 image with spaces",
    { iperf3Image: "iperf3 latest" },
    'cilium-lab:iperf3Image: is not a container image reference (got "iperf3 latest"). Empty (the pinned image) or a reference such as registry.example/iperf3@sha256:<64 hex>.',
  ],
  [
    "a 301 s iperf3 run",
    { iperf3Seconds: "301" },
    "cilium-lab:iperf3Seconds: is out of range (got 301). An integer from 1 to 300.",
  ],
  ["zero runs", { iperf3Runs: "0" }, "cilium-lab:iperf3Runs: is out of range (got 0). An integer from 1 to 20."],
  [
    "17 streams",
    { iperf3Streams: "17" },
    "cilium-lab:iperf3Streams: is out of range (got 17). An integer from 1 to 16.",
  ],
  [
    "11 omitted seconds",
    { iperf3OmitSeconds: "11" },
    "cilium-lab:iperf3OmitSeconds: is out of range (got 11). An integer from 0 to 10.",
  ],
  [
    "a private key as the SSH key",
    { sshAuthorizedKey: "-----BEGIN OPENSSH PRIVATE KEY-----" },
    'cilium-lab:sshAuthorizedKey: is not one OpenSSH public key line (got "-----BEGIN OPENSSH PRIVATE KEY-----"). Empty, or the contents of ~/.ssh/id_ed25519.pub (type, base64 key, optional comment).',
  ],
  [
    "an unknown key, naming the nearest",
    { routingmod: "native" },
    'cilium-lab:routingmod: unknown key (got "native"). Did you mean `cilium-lab:routingMode`? Remove it with `pulumi config rm cilium-lab:routingmod`.',
  ],
];
for (const [title, raw, message] of refused) {
  test(`refuses ${title}`, (t) => {
    t.deepEqual(problemsOf(raw), [message]);
  });
}

test("a stack with five problems gets one error naming all five", (t) => {
  const raw = { routingMode: "ipip", nodeCount: "12", accelerator: "hvf", ciliumVersion: "1.9.0", iperf3Runs: "many" };
  const err = t.throws(() => parseLabConfig(raw), { instanceOf: LabConfigError });
  t.is(
    err?.message,
    [
      "5 problems in the cilium-lab stack config (fix with `pulumi config set cilium-lab:<key> <value>` or edit stacks/Pulumi.<stack>.yaml):",
      '- cilium-lab:routingMode: is not supported (got "ipip"). Accepted: vxlan, geneve, native.',
      "- cilium-lab:nodeCount: is out of range (got 12). An integer from 2 to 9.",
      '- cilium-lab:accelerator: is not supported (got "hvf"). Accepted: kvm, qemu.',
      '- cilium-lab:ciliumVersion: is outside the versions whose Helm values this lab renders and tests (got "1.9.0"). A Cilium chart version from 1.13.0 to 1.20.x, such as 1.13.4 or 1.20.0.',
      '- cilium-lab:iperf3Runs: must be an integer (got "many"). An integer from 1 to 20.',
    ].join("\n"),
  );
});

test("problems are listed in the key table's order, a cross-key one under the key it names", (t) => {
  t.deepEqual(problemsOf({ iperf3Runs: "0", networkCidr: "10.0.200.0/24", routingMode: "ipip" }), [
    'cilium-lab:routingMode: is not supported (got "ipip"). Accepted: vxlan, geneve, native.',
    'cilium-lab:networkCidr: overlaps podCidr 10.0.0.0/16 (got "10.0.200.0/24"). A node network disjoint from pod and service CIDRs, such as 192.168.150.0/24.',
    "cilium-lab:iperf3Runs: is out of range (got 0). An integer from 1 to 20.",
  ]);
});

test("every integer key accepts its min and max and refuses one beyond each", (t) => {
  for (const key of KEY_NAMES) {
    const spec: KeySpec = KEYS[key];
    if (spec.type !== "integer" || spec.min === undefined) {
      continue;
    }
    const at = (n: number) => ({ [key]: String(n) });
    // podCidrMaskSize's lower bound is podCidr's prefix + 1 (a cross-key rule), not its min.
    if (key !== "podCidrMaskSize") {
      t.is(parseLabConfig(at(spec.min)).config[key], spec.min, `${key} min`);
    }
    t.regex(problemsOf(at(spec.min - 1)).join("\n"), new RegExp(`^cilium-lab:${key}: is out of range`, "m"), key);
    if (spec.max !== undefined) {
      t.is(parseLabConfig(at(spec.max)).config[key], spec.max, `${key} max`);
      t.regex(problemsOf(at(spec.max + 1)).join("\n"), new RegExp(`^cilium-lab:${key}: is out of range`, "m"), key);
    }
  }
});
