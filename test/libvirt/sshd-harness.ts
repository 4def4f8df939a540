/**
 * A private OpenSSH server on 127.0.0.1 for the qemu+ssh tests: its own host key, config, log and
 * authorized key, in a 0700 temp dir, run by the test's own user (`sshd -D -e -f cfg`). A non-root
 * sshd can log in only the user it runs as (it cannot switch users), which is exactly what the
 * tests need: `qemu+ssh://<me>@127.0.0.1:<port>/system` reaches the same libvirtd as
 * qemu:///system, through virt-ssh-helper on the "far" side, with this user's polkit grant. As
 * root (a developer's run) it works too: /run/sshd, the privilege separation directory root's
 * sshd requires, is created when missing.
 *
 * The client side must use the test's known_hosts and key, never the user's ~/.ssh: libvirt's
 * ssh transport has no known_hosts parameter (only libssh/libssh2 have one, docs/uri.rst), and
 * OpenSSH takes ~ from the password database, not $HOME. So the URI's `command=` (libvirt: the
 * path of the ssh binary to run) names a wrapper script that runs `ssh -F /dev/null -o
 * UserKnownHostsFile=<test file> -o GlobalKnownHostsFile=/dev/null "$@"`; libvirt adds `-p`, `-l`,
 * `-i keyfile`, `-T -e none` and, with no_tty, `-o BatchMode=yes` itself.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** A running private sshd and the client files that reach it. */
export interface Sshd {
  readonly port: number;
  readonly user: string;
  readonly dir: string;
  /** The client key authorized on this server. */
  readonly clientKey: string;
  /** The wrapper the URIs name as `command=`. */
  readonly sshWrapper: string;
  /** The known_hosts the wrapper uses (holds this server's key after {@link Sshd.trustHostKey}). */
  readonly knownHosts: string;
  /** `qemu+ssh://<user>@127.0.0.1:<port>/system?keyfile=<clientKey>&command=<wrapper>` plus `extra` params. */
  uri(extra?: Readonly<Record<string, string>>): string;
  /** Writes this server's real host key to known_hosts (replacing what was there). */
  trustHostKey(): void;
  /** Writes `lines` to known_hosts (e.g. nothing, or another key under this host's name). */
  setKnownHosts(lines: string): void;
  /** A fresh key pair that the server does not accept; returns the private key path. */
  strangerKey(): string;
  /** The sshd log so far. */
  log(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const keygen = (file: string, comment: string): void => {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], { stdio: "ignore" });
};

/** Waits until `port` accepts TCP connections or the process exits. */
async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`sshd exited ${child.exitCode} before listening: ${log()}`);
    }
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect({ port, host: "127.0.0.1" }, () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (up) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 15 s: ${log()}`);
}

/**
 * Starts a private sshd on a free loopback port that accepts the client key for the current user,
 * or (root only: a non-root sshd cannot switch users) for `loginUser`. sshd reads the authorized
 * keys with the login user's rights, so for another user they sit in a world-readable subdirectory.
 */
export async function startSshd(options: { loginUser?: string } = {}): Promise<Sshd> {
  const user = options.loginUser ?? os.userInfo().username;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cl-t-sshd-"));
  fs.chmodSync(dir, options.loginUser === undefined ? 0o700 : 0o711);
  const f = (name: string): string => path.join(dir, name);
  keygen(f("host_key"), "cl-t-sshd host");
  keygen(f("client_key"), "cl-t-sshd client");
  const keysDir = options.loginUser === undefined ? dir : f("keys");
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o755 });
  const authorizedKeys = path.join(keysDir, "authorized_keys");
  fs.copyFileSync(f("client_key.pub"), authorizedKeys);
  fs.chmodSync(authorizedKeys, options.loginUser === undefined ? 0o600 : 0o644);
  const port = await freePort();
  fs.writeFileSync(
    f("sshd_config"),
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${f("host_key")}`,
      `PidFile ${f("sshd.pid")}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      // Without PAM, sshd refuses accounts whose password is locked ("!" in /etc/shadow, as useradd
      // leaves them) even for key logins; root's sshd logging in another user goes through PAM instead.
      `UsePAM ${options.loginUser === undefined ? "no" : "yes"}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      // The temp dir's parents are not root-owned on every system; the test dir itself is 0700.
      "StrictModes no",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  fs.writeFileSync(f("known_hosts"), "");
  fs.writeFileSync(
    f("ssh"),
    `#!/bin/sh\nexec ssh -F /dev/null -o UserKnownHostsFile=${f("known_hosts")} -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes "$@"\n`,
    { mode: 0o700 },
  );
  if (process.getuid?.() === 0) {
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  }
  const logFd = fs.openSync(f("sshd.log"), "a");
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", f("sshd_config")], { stdio: ["ignore", logFd, logFd] });
  fs.closeSync(logFd);
  const log = (): string => fs.readFileSync(f("sshd.log"), "utf8");
  const hostKeyLine = (pub: string): string =>
    `[127.0.0.1]:${port} ${fs.readFileSync(pub, "utf8").split(" ").slice(0, 2).join(" ")}\n`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await listening(port, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    user,
    dir,
    clientKey: f("client_key"),
    sshWrapper: f("ssh"),
    knownHosts: f("known_hosts"),
    uri: (extra = {}) => {
      const params = { keyfile: f("client_key"), command: f("ssh"), ...extra };
      const query = Object.entries(params)
        .map(([k, v]) => `${k}=${v}`)
        .join("&");
      return `qemu+ssh://${user}@127.0.0.1:${port}/system?${query}`;
    },
    trustHostKey: () => fs.writeFileSync(f("known_hosts"), hostKeyLine(f("host_key.pub"))),
    setKnownHosts: (lines) => fs.writeFileSync(f("known_hosts"), lines),
    strangerKey: () => {
      const key = f(`stranger_${Date.now()}`);
      keygen(key, "cl-t-sshd stranger");
      return key;
    },
    log,
    stop,
  };
}

/** A loopback port that accepts TCP connections and never sends a byte (an SSH server that hangs). */
export async function silentPort(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise((resolve) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}
