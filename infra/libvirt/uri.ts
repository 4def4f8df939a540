/**
 * The libvirt connection URIs the lab accepts, parsed once for the config rules, the providers'
 * input checks and `virsh()`:
 *
 * - `qemu:///system`, optionally `?socket=/abs/path` (the local system daemon);
 * - `qemu+ssh://[user@]host[:port]/system[?keyfile=/abs/key][&...]`: the system daemon of another
 *   host, reached by the OpenSSH client (libvirt's `ssh` transport), so host keys are checked
 *   against known_hosts and authentication is ssh-agent or the key file, like any `ssh` login.
 *
 * The grammar is libvirt's remote URI, `driver[+transport]://[username@][hostname][:port]/[path][?extraparameters]`,
 * and the ssh transport's parameters (`keyfile`, `no_verify`, `no_tty`, `command`, `socket`,
 * `netcat`, `proxy`, `mode`) are those of libvirt's "Connection URIs" page (docs/uri.rst,
 * https://libvirt.org/uri.html#ssh-transport). `known_hosts` and `known_hosts_verify` exist only
 * for the libssh/libssh2 transports, not for `ssh`: OpenSSH reads its own known_hosts.
 *
 * Functions only, no module state: providers are serialized by value (see exec.ts).
 */

/** A parsed libvirt URI the lab accepts. */
export interface LibvirtUri {
  /** `local`: `qemu:///system`; `ssh`: `qemu+ssh://...`. */
  readonly transport: "local" | "ssh";
  /** The URI as given. */
  readonly uri: string;
  /** The ssh login name (absent: ssh's default, the local user or ~/.ssh/config's `User`). */
  readonly user?: string;
  /** The ssh host (absent for local URIs). */
  readonly host?: string;
  /** The ssh port (absent: 22 or ~/.ssh/config's `Port`). */
  readonly port?: number;
  /** The query parameters, URI-unescaped. */
  readonly params: Readonly<Record<string, string>>;
}

/** The outcome of {@link parseLibvirtUri}: the URI, or why it is refused (with the fix). */
export type ParsedUri =
  { readonly ok: true; readonly value: LibvirtUri } | { readonly ok: false; readonly reason: string };

/**
 * Why `qemu:///session` is refused: the per-user daemon cannot create libvirt networks or attach
 * guests to host bridges (that needs CAP_NET_ADMIN; libvirt's "Connection URIs": the session
 * daemon runs with the user's privileges; Red Hat "User-space connection types for
 * virtualization"), and its guests get user-mode networking without an address the nodes or this
 * machine can route to.
 */
export const SESSION_REFUSED =
  "the per-user session daemon can neither create libvirt networks nor attach guests to a host bridge, so the nodes would get user-mode networking with no address the other nodes or this machine can reach. " +
  "Fix: use qemu:///system as a member of group libvirt (sudo usermod -aG libvirt $USER, then log in again), or qemu+ssh://user@host/system";

/** The parameters accepted per transport, each with a check of its value (a returned string is the problem). */
function paramRules(transport: "local" | "ssh"): Record<string, (v: string) => string | undefined> {
  const absolute = (v: string): string | undefined =>
    // eslint-disable-next-line no-control-regex
    v.startsWith("/") && !v.split("/").includes("..") && !/[\0-\x1f]/.test(v)
      ? undefined
      : "must be an absolute path without `..` or control characters";
  const oneOf =
    (...values: string[]) =>
    (v: string): string | undefined =>
      values.includes(v) ? undefined : `must be one of ${values.join(", ")}`;
  if (transport === "local") {
    return { socket: absolute };
  }
  return {
    keyfile: absolute,
    socket: absolute,
    command: absolute,
    netcat: (v) => (/^[\w./-]+$/.test(v) ? undefined : "must be a command name or path"),
    proxy: oneOf("auto", "native", "netcat"),
    mode: oneOf("auto", "direct", "legacy"),
    no_tty: oneOf("1"),
  };
}

/** Splits `a=1&b=2` into unescaped pairs (libvirt unescapes %XX; `+` stays a plus). */
function parseQuery(query: string): { params: Record<string, string>; problem?: string } {
  const params: Record<string, string> = {};
  for (const part of query.split("&").filter((p) => p !== "")) {
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(rawKey);
      value = decodeURIComponent(rawValue);
    } catch {
      return { params, problem: `parameter ${JSON.stringify(part)} has a malformed %-escape` };
    }
    if (key in params) {
      return { params, problem: `parameter ${key} is given twice` };
    }
    params[key] = value;
  }
  return { params };
}

/** Checks the query parameters against {@link paramRules}; the reason for the first bad one. */
function checkParams(transport: "local" | "ssh", params: Record<string, string>): string | undefined {
  const rules = paramRules(transport);
  for (const [key, value] of Object.entries(params)) {
    if (key === "no_verify" && transport === "ssh") {
      return value === "0"
        ? undefined
        : "no_verify is refused: host keys are always verified (no_verify would make ssh accept any new host key). Fix: drop it and record the host's key in ~/.ssh/known_hosts after checking its fingerprint (ssh-keyscan -p <port> <host>, or ssh once by hand)";
    }
    const rule = rules[key];
    if (rule === undefined) {
      return `parameter ${key} is not supported here (${transport === "local" ? "qemu:///system takes only socket" : `qemu+ssh takes ${Object.keys(rules).join(", ")}`})`;
    }
    const problem = rule(value);
    if (problem !== undefined) {
      return `parameter ${key}=${JSON.stringify(value)} ${problem}`;
    }
  }
  return undefined;
}

/** The authority part `[user@]host[:port]` of a qemu+ssh URI, split; a string is the problem. */
function parseAuthority(authority: string): { user?: string; host: string; port?: number } | string {
  const m = /^(?:([A-Za-z0-9_][A-Za-z0-9_.-]*)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(authority);
  if (m === null) {
    return `the host part ${JSON.stringify(authority)} is not [user@]host[:port]`;
  }
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) {
    return `port ${port} is not in 1-65535`;
  }
  return { user: m[1], host: m[2] ?? "", port };
}

/** Parses a libvirt URI the lab accepts; anything else is refused with the reason and the fix. */
export function parseLibvirtUri(uri: string): ParsedUri {
  const refuse = (why: string): ParsedUri => ({ ok: false, reason: `${JSON.stringify(uri)}: ${why}` });
  const m = /^([a-z0-9]+)(?:\+([a-z0-9]+))?:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(uri);
  if (m === null) {
    return refuse("must be a libvirt URI: qemu:///system or qemu+ssh://[user@]host[:port]/system");
  }
  const [, driver, transportName, authority = "", path = "", query = ""] = m;
  if (driver !== "qemu") {
    return refuse(`driver ${driver} is not supported: the lab runs QEMU/KVM guests (qemu:///system)`);
  }
  if (path === "/session") {
    return refuse(SESSION_REFUSED);
  }
  if (path !== "/system") {
    return refuse(`path ${JSON.stringify(path)} is not /system: the lab needs the system daemon`);
  }
  if (transportName !== undefined && transportName !== "ssh") {
    return refuse(
      `transport ${transportName} is not supported: remote hosts are reached with qemu+ssh://[user@]host[:port]/system (OpenSSH verifies the host key, ssh-agent or ?keyfile= authenticates)`,
    );
  }
  const transport = transportName === "ssh" ? "ssh" : "local";
  if (transport === "local" && authority !== "") {
    return refuse(
      `qemu://${authority}/system would use libvirt's TLS transport; use qemu+ssh://[user@]${authority}/system`,
    );
  }
  const { params, problem } = parseQuery(query);
  const paramProblem = problem ?? checkParams(transport, params);
  if (paramProblem !== undefined) {
    return refuse(paramProblem);
  }
  if (transport === "local") {
    return { ok: true, value: { transport, uri, params } };
  }
  if (authority === "") {
    return refuse("qemu+ssh needs a host: qemu+ssh://[user@]host[:port]/system");
  }
  const auth = parseAuthority(authority);
  if (typeof auth === "string") {
    return refuse(auth);
  }
  return { ok: true, value: { transport, uri, params, ...auth } };
}

/** Config/provider check: undefined when `v` is an accepted libvirt URI, else the reason. */
export function checkLibvirtUri(v: unknown): string | undefined {
  if (typeof v !== "string") {
    return `must be a libvirt URI string (qemu:///system or qemu+ssh://[user@]host[:port]/system), got ${typeof v}`;
  }
  const parsed = parseLibvirtUri(v);
  return parsed.ok ? undefined : `must be qemu:///system or qemu+ssh://[user@]host[:port]/system, got ${parsed.reason}`;
}

/** Whether a URI reaches its daemon over ssh (a remote libvirt host). */
export function isSshUri(uri: string): boolean {
  return /^qemu\+ssh:\/\//.test(uri);
}

/**
 * The URI `virsh()` connects with: for ssh, `no_tty=1` is added (libvirt then runs
 * `ssh -o BatchMode=yes`, src/rpc/virnetsocket.c virNetSocketNewConnectSSH), so ssh never waits for
 * a password or a host-key confirmation on a terminal nobody watches: it fails, and the failure
 * is classified. Host key checking stays as configured (StrictHostKeyChecking defaults to ask,
 * which batch mode turns into a refusal).
 */
export function connectUri(uri: string): string {
  if (!isSshUri(uri) || /[?&]no_tty=/.test(uri)) {
    return uri;
  }
  return `${uri}${uri.includes("?") ? "&" : "?"}no_tty=1`;
}

/** `user@host:port` for messages (the parts the URI names), or the URI itself when it is local or unparsable. */
export function sshTarget(uri: string): { label: string; user?: string; host?: string; port: number } {
  const parsed = parseLibvirtUri(uri);
  if (!parsed.ok || parsed.value.transport !== "ssh") {
    return { label: uri, port: 22 };
  }
  const { user, host, port } = parsed.value;
  return {
    label: `${user === undefined ? "" : `${user}@`}${host ?? ""}${port === undefined ? "" : `:${port}`}`,
    user,
    host,
    port: port ?? 22,
  };
}
