// The libvirt URI grammar (uri.ts) and the classification of ssh failures (remote.ts) without a
// daemon: the accepted and refused URIs with their reasons, no_tty added for ssh, and the stderr
// texts that cannot be produced safely on this host (a remote user outside group libvirt, a host
// without virt-ssh-helper or libvirtd, a name that does not resolve) taken verbatim from virsh 9.0.0
// and OpenSSH 9.2 runs. The rows that can be real (host keys, refused login, closed and silent
// ports, the login itself) are in remote.libvirt.test.ts.
import test from "ava";

import { checkUri } from "../../infra/libvirt/common";
import { toolFailure } from "../../infra/libvirt/exec";
import { classifySshFailure } from "../../infra/libvirt/remote";
import { checkLibvirtUri, connectUri, parseLibvirtUri, sshTarget } from "../../infra/libvirt/uri";

test("accepted URIs parse into transport, login, host, port and parameters", (t) => {
  t.deepEqual(parseLibvirtUri("qemu:///system"), {
    ok: true,
    value: { transport: "local", uri: "qemu:///system", params: {} },
  });
  t.deepEqual(parseLibvirtUri("qemu:///system?socket=/run/x/libvirt-sock"), {
    ok: true,
    value: {
      transport: "local",
      uri: "qemu:///system?socket=/run/x/libvirt-sock",
      params: { socket: "/run/x/libvirt-sock" },
    },
  });
  const uri = "qemu+ssh://lab@host-1.example:2222/system?keyfile=/home/lab/.ssh/id%20lab&proxy=native";
  t.deepEqual(parseLibvirtUri(uri), {
    ok: true,
    value: {
      transport: "ssh",
      uri,
      user: "lab",
      host: "host-1.example",
      port: 2222,
      params: { keyfile: "/home/lab/.ssh/id lab", proxy: "native" },
    },
  });
  t.deepEqual(parseLibvirtUri("qemu+ssh://h/system"), {
    ok: true,
    value: { transport: "ssh", uri: "qemu+ssh://h/system", user: undefined, host: "h", port: undefined, params: {} },
  });
  t.is(checkLibvirtUri("qemu+ssh://[fd00::1]:22/system?no_verify=0"), undefined);
});

const refusals: [string, string][] = [
  [
    "qemu:///session",
    "the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge",
  ],
  ["qemu+ssh://u@h/session", "the per-user session daemon"],
  [
    "qemu+ssh://u@h/system?no_verify=1",
    "no_verify is refused: host keys are always verified (no_verify would make ssh accept any new host key)",
  ],
  ["qemu+tls://h/system", "transport tls is not supported: remote hosts are reached with qemu+ssh://"],
  ["qemu+libssh2://u@h/system?known_hosts=/k", "transport libssh2 is not supported"],
  ["qemu://h/system", "qemu://h/system would use libvirt's TLS transport; use qemu+ssh://[user@]h/system"],
  ["qemu+ssh:///system", "qemu+ssh needs a host"],
  ["qemu+ssh://u@h:70000/system", "port 70000 is not in 1-65535"],
  ["qemu+ssh://u@h/system?keyfile=id_rsa", 'parameter keyfile="id_rsa" must be an absolute path'],
  [
    "qemu+ssh://u@h/system?known_hosts=/k",
    "parameter known_hosts is not supported here (qemu+ssh takes keyfile, socket",
  ],
  ["qemu+ssh://u@h/system?no_tty=0", 'parameter no_tty="0" must be one of 1'],
  ["qemu:///system?keyfile=/k", "parameter keyfile is not supported here (qemu:///system takes only socket)"],
  ["qemu+ssh://u@h/system?keyfile=/a&keyfile=/b", "parameter keyfile is given twice"],
  ["xen:///system", "driver xen is not supported"],
  ["qemu:///embed?root=/x", 'path "/embed" is not /system'],
  ["/var/run/libvirt/libvirt-sock", "must be a libvirt URI"],
];
for (const [uri, reason] of refusals) {
  test(`refused: ${uri}`, (t) => {
    const problem = checkLibvirtUri(uri);
    t.true(
      problem?.startsWith(
        `must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got ${JSON.stringify(uri)}: `,
      ),
      problem,
    );
    t.true(problem?.includes(reason), problem);
    t.is(checkUri(uri), problem, "the providers' checkUri is the same rule");
  });
}

test("virsh connects ssh URIs with no_tty=1 (ssh batch mode), local URIs unchanged", (t) => {
  t.is(connectUri("qemu+ssh://u@h/system"), "qemu+ssh://u@h/system?no_tty=1");
  t.is(connectUri("qemu+ssh://u@h/system?keyfile=/k"), "qemu+ssh://u@h/system?keyfile=/k&no_tty=1");
  t.is(connectUri("qemu+ssh://u@h/system?no_tty=1"), "qemu+ssh://u@h/system?no_tty=1");
  t.is(connectUri("qemu:///system"), "qemu:///system");
  t.deepEqual(sshTarget("qemu+ssh://u@h:2222/system"), { label: "u@h:2222", user: "u", host: "h", port: 2222 });
  t.deepEqual(sshTarget("qemu:///system"), { label: "qemu:///system", port: 22 });
});

/** A failed `virsh -c <uri> uri` with this stderr, as toolFailure words it. */
const failure = (uri: string, stderr: string): string =>
  toolFailure("connecting", { argv: ["virsh", "-c", connectUri(uri), "uri"], code: 1, stdout: "", stderr }, "n/a", uri)
    .message;

const URI = "qemu+ssh://lab@10.0.0.7/system?keyfile=/home/lab/.ssh/lab";

test("the far side's polkit refusal names the remote user and the usermod fix on that host", (t) => {
  const message = failure(
    URI,
    "error: failed to connect to the hypervisor\nerror: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'",
  );
  t.is(
    message,
    "connecting failed: the SSH login to lab@10.0.0.7 works, but user lab may not manage libvirt there (no polkit agent available to authenticate action 'org.libvirt.unix.manage') (virsh exit 1). " +
      "Fix: on 10.0.0.7: `sudo usermod -aG libvirt lab`; the next ssh login has the new group.",
  );
});

test("a host without virt-ssh-helper or nc, without libvirtd, or whose name does not resolve gets its own fix", (t) => {
  t.regex(
    failure(URI, "error: Cannot recv data: sh: 1: nc: not found: Connection reset by peer"),
    /host has neither virt-ssh-helper nor nc to reach libvirtd.*Fix: install libvirt on 10\.0\.0\.7/,
  );
  t.regex(
    failure(
      URI,
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
    ),
    /libvirtd is not running on 10\.0\.0\.7 .*Fix: on 10\.0\.0\.7: `systemctl start libvirtd`/,
  );
  t.regex(
    failure(
      "qemu+ssh://lab@no-such-host.invalid/system",
      "error: Cannot recv data: ssh: Could not resolve hostname no-such-host.invalid: Name or service not known: Connection reset by peer",
    ),
    /cannot reach lab@no-such-host\.invalid: Could not resolve hostname no-such-host\.invalid: Name or service not known.*Fix: check the host name/,
  );
  t.regex(
    failure(
      URI,
      "error: Cannot recv data: ssh: connect to host 10.0.0.7 port 22: No route to host: Connection reset by peer",
    ),
    /cannot reach lab@10\.0\.0\.7: connect to host 10\.0\.0\.7 port 22: No route to host/,
  );
});

test("a refused login without keyfile points at ssh-agent; unrelated stderr is not classified", (t) => {
  t.regex(
    failure(
      "qemu+ssh://lab@h/system",
      "error: Cannot recv data: lab@h: Permission denied (publickey,password).: Connection reset by peer",
    ),
    /refused the login of lab \(Permission denied \(publickey,password\)\).*Fix: load the key into ssh-agent \(`ssh-add`; SSH_AUTH_SOCK must be set where pulumi runs\) or name it in the URI/,
  );
  t.is(
    classifySshFailure(URI, {
      code: 1,
      stderr: "error: Storage pool not found: no storage pool with matching name 'x'",
    }),
    undefined,
  );
  t.regex(
    failure(URI, "error: Storage pool not found: no storage pool with matching name 'x'"),
    /^connecting failed: Storage pool not found/,
  );
});
