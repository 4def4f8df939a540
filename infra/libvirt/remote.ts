/**
 * Why a `virsh -c qemu+ssh://...` call failed, read from what OpenSSH and libvirt print, and the
 * fix for each cause. libvirt's ssh transport runs the OpenSSH client with the daemon's socket
 * piped through it (`ssh [-p port] [-l user] [-i keyfile] -T -e none -o BatchMode=yes -- host
 * <virt-ssh-helper or nc>`, src/rpc/virnetsocket.c virNetSocketNewConnectSSH) and quotes ssh's
 * stderr in its own error ("Cannot recv data: <ssh stderr>: Connection reset by peer").
 *
 * The messages matched are OpenSSH's (sshconnect.c: "Host key verification failed.", "REMOTE HOST
 * IDENTIFICATION HAS CHANGED", "connect to host %s port %s: %s", "Could not resolve hostname";
 * sshconnect2.c: "Permission denied (%s)."), and libvirt's polkit refusal from the far side
 * (src/util/virpolkit.c: "no polkit agent available to authenticate action"). All run with
 * LC_ALL=C (exec.ts), so the English text is stable.
 *
 * Pure functions (no imports of exec.ts: it imports this module).
 */
import { sshTarget } from "./uri";

/** A classified ssh failure: what went wrong (names the host) and how to fix it. */
export interface SshFailure {
  readonly kind:
    | "host-key-changed"
    | "host-key-unknown"
    | "auth-refused"
    | "connection-refused"
    | "unreachable"
    | "no-answer"
    | "not-permitted"
    | "no-helper"
    | "no-daemon";
  readonly what: string;
  readonly fix: string;
}

/** Marker `virsh()` appends to stderr when an ssh call timed out and a short probe could not connect either. */
export const NO_ANSWER_MARKER = "cilium-lab: no answer over ssh";

/** The failure of a virsh run against an ssh URI, or undefined when the stderr names no ssh/transport cause. */
export function classifySshFailure(uri: string, result: { code: number; stderr: string }): SshFailure | undefined {
  const t = sshTarget(uri);
  const host = t.host ?? "?";
  const hostKeyName = t.port === 22 ? host : `[${host}]:${t.port}`;
  const portFlag = t.port === 22 ? "" : `-p ${t.port} `;
  const login = `${t.user === undefined ? "" : `${t.user}@`}${host}`;
  const s = result.stderr;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(s)) {
    return {
      kind: "host-key-changed",
      what: `the SSH host key of ${t.label} has CHANGED since it was recorded in known_hosts (the host was reinstalled, or someone is intercepting the connection)`,
      fix: `confirm the new key's fingerprint with the host's administrator (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then drop the old entry with \`ssh-keygen -R '${hostKeyName}'\` and record the new one by logging in once by hand (\`ssh ${portFlag}${login} true\`)`,
    };
  }
  if (/Host key verification failed/.test(s)) {
    return {
      kind: "host-key-unknown",
      what: `the SSH host key of ${t.label} is not in known_hosts, and host keys are always verified (ssh runs in batch mode, so it refuses instead of asking)`,
      fix: `check the host's key fingerprint with its administrator, then record it: \`ssh-keyscan ${portFlag}${host} >> ~/.ssh/known_hosts\` (compare \`ssh-keygen -lf ~/.ssh/known_hosts\`), or log in once by hand (\`ssh ${portFlag}${login} true\`) and accept it`,
    };
  }
  if (/Permission denied \(([^)]*)\)/.test(s)) {
    const keyfile = /[?&]keyfile=([^&]+)/.exec(uri)?.[1];
    return {
      kind: "auth-refused",
      what: `the SSH server at ${t.label} refused the login of ${t.user ?? "the default user"} (${/Permission denied \([^)]*\)/.exec(s)?.[0] ?? ""})`,
      fix:
        (keyfile !== undefined
          ? `check that ${decodeURIComponent(keyfile)} is the private key whose public key is in ~${t.user ?? ""}/.ssh/authorized_keys on ${host}`
          : `load the key into ssh-agent (\`ssh-add\`; SSH_AUTH_SOCK must be set where pulumi runs) or name it in the URI (?keyfile=/abs/path/to/key)`) +
        `, and install its public key on the host (\`ssh-copy-id ${portFlag}${login}\`). Passwords cannot be typed: the lab runs ssh without a terminal`,
    };
  }
  if (/connect to host \S+ port \d+: Connection refused/.test(s)) {
    return {
      kind: "connection-refused",
      what: `nothing accepts SSH connections at ${host} port ${t.port} (connection refused)`,
      fix: `start sshd on ${host} (\`systemctl start ssh\`) or correct the port in the URI (qemu+ssh://${login}:<port>/system)`,
    };
  }
  const unreachable =
    /Could not resolve hostname [^:]+: [^\n]*|connect to host \S+ port \d+: (?:Connection timed out|No route to host|Network is unreachable)/.exec(
      s,
    );
  if (unreachable !== null) {
    return {
      kind: "unreachable",
      what: `cannot reach ${t.label}: ${unreachable[0]}`,
      fix: `check the host name in the URI, the network between this machine and ${host}, and firewalls on the way (\`ssh ${portFlag}${login} true\` shows the same)`,
    };
  }
  if (s.includes(NO_ANSWER_MARKER)) {
    return {
      kind: "no-answer",
      what: `no answer from libvirt over SSH at ${t.label}: the TCP connection was accepted but neither an SSH handshake nor libvirt replied in time`,
      fix: `check that port ${t.port} on ${host} is an SSH server (\`ssh ${portFlag}-v ${login} true\` should show an SSH-2.0 banner at once) and that sshd and libvirtd on ${host} are responsive`,
    };
  }
  if (
    /no polkit agent available to authenticate action|access denied by policy|Failed to connect socket to '[^']*': Permission denied/.test(
      s,
    )
  ) {
    return {
      kind: "not-permitted",
      what: `the SSH login to ${t.label} works, but user ${t.user ?? "(your ssh login)"} may not manage libvirt there (${/no polkit agent available[^\n]*|access denied by policy|Permission denied/.exec(s)?.[0] ?? ""})`,
      fix: `on ${host}: \`sudo usermod -aG libvirt ${t.user ?? "<user>"}\`; the next ssh login has the new group`,
    };
  }
  if (/virt-ssh-helper: (?:command )?not found|\bnc: (?:command )?not found|netcat: (?:command )?not found/.test(s)) {
    return {
      kind: "no-helper",
      what: `the SSH login to ${t.label} works, but the host has neither virt-ssh-helper nor nc to reach libvirtd`,
      fix: `install libvirt on ${host} (Debian: apt-get install libvirt-daemon-system, which ships /usr/bin/virt-ssh-helper)`,
    };
  }
  if (/Failed to connect socket to '[^']*': (?:No such file or directory|Connection refused)/.test(s)) {
    return {
      kind: "no-daemon",
      what: `the SSH login to ${t.label} works, but libvirtd is not running on ${host} (${/Failed to connect socket[^\n]*/.exec(s)?.[0] ?? ""})`,
      fix: `on ${host}: \`systemctl start libvirtd\` (or \`virtlogd -d && libvirtd -d\`)`,
    };
  }
  return undefined;
}
