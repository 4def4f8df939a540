/**
 * The readiness wait of a {@link Domain}: `create` returns only when the node has its DHCP lease, an
 * SSH login with the lab key succeeds against the pinned host key, and cloud-init has finished (see
 * {@link READY_COMMAND}), bounded by `bootTimeoutSeconds` (Pulumi's `customTimeouts` never reach
 * dynamic providers, and `cancel` is a no-op in the Node provider host, so the bound must be ours).
 *
 * Readiness check, and why a full login rather than `ssh-keyscan`: keyscan proves only which host
 * key sshd offers; the next layer (`remote.Command`) needs the login itself to work, and its own
 * dialing gives up after ~7.5 s of refusals with a less helpful message. `ssh -o
 * StrictHostKeyChecking=yes` with a known_hosts file holding only `hostPublicKey` makes OpenSSH verify
 * the host's signature over the session (possession of the key, not just its advertisement), and the
 * same command proves user + key + authorized_keys. The private key goes to a 0600 file in a 0700
 * temp dir removed in `finally`, never to argv or messages.
 */
import { fsp, netMod, pathMod, privateTempDir, runTool, sleep, toolFailure, virsh, type RunResult } from "../exec";
import { parseLeases, type Lease } from "../xml";
import {
  LOGGED_IN,
  SSH_REFUSAL_GRACE_MS,
  bootTimeoutMessage,
  bridgeOf,
  classifyReadyAttempt,
  dadConflictMessage,
  findDadConflict,
  startFix,
  type NotReady,
} from "./boot-errors";
import { cleanConsole, readConsole } from "./console";
import type { DomainInputs } from "./types";

/**
 * What the readiness login runs. Not just `true`, for two things seen on real guests:
 * - cloud-init restarts sshd in its config stage when it applies `ssh_pwauth` (cc_set_passwords,
 *   https://cloudinit.readthedocs.io/en/latest/reference/modules.html#set-passwords), so a login
 *   that wins the race with it is followed by refused connections; after `cloud-init status
 *   --wait` sshd stays up. Its result is not judged here: the k3s layer's first step reports it.
 * - cloud-init wrote the host keys and authorized_keys moments ago, and the guest writes such fresh
 *   files out only when their dirty pages expire (vm.dirty_expire_centisecs, 30 s by default:
 *   https://docs.kernel.org/admin-guide/sysctl/vm.html). A hard power-off (`virsh destroy`) in
 *   that window left a 0-byte ssh_host_ed25519_key here, and sshd does not start without it.
 *   `sync` puts what the node needs to be reached again on its disk.
 */
export const READY_COMMAND = `echo '${LOGGED_IN}'; cloud-init status --wait >/dev/null 2>&1; sync`;

/** Opens a TCP connection to host:port; resolves "ok" or the error code. */
function probeTcp(host: string, port: number, timeoutMs: number): Promise<string> {
  const net = netMod();
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done("timeout"));
    socket.once("connect", () => done("ok"));
    socket.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** The `-o HostKeyAlgorithms` value that makes sshd offer the pinned key's type. */
export function hostKeyAlgorithms(keyType: string): string {
  return keyType === "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : keyType;
}

/** `type base64` of an OpenSSH public key line (comment dropped). */
export function normalizePublicKey(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

/**
 * `ssh` options that trust exactly the keys in `knownHosts` (no config file, no prompt, no global
 * known_hosts): a host presenting any other key is refused.
 */
export function pinnedHostKeyOptions(knownHosts: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
  ];
}

/** One readiness attempt (SSH login with strict host key checking, then {@link READY_COMMAND}) until `deadline`; never throws. */
async function sshLogin(inputs: DomainInputs, secretsDir: string, deadline: number): Promise<RunResult> {
  const path = pathMod();
  const remainingMs = Math.max(1000, deadline - Date.now());
  const [keyType = "ssh-ed25519"] = inputs.hostPublicKey.split(/\s+/);
  return runTool(
    "ssh",
    [
      ...pinnedHostKeyOptions(path.join(secretsDir, "known_hosts")),
      "-o",
      `HostKeyAlgorithms=${hostKeyAlgorithms(keyType)}`,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      `ConnectTimeout=${Math.max(1, Math.min(10, Math.floor(remainingMs / 1000)))}`,
      "-o",
      "LogLevel=ERROR",
      "-i",
      path.join(secretsDir, "id"),
      "-p",
      "22",
      "-l",
      inputs.sshUser,
      inputs.ip,
      READY_COMMAND,
    ],
    // cloud-init may take a while after sshd answers: the attempt may use the rest of the bound.
    { timeoutMs: remainingMs },
  );
}

/** The DHCP leases of a NAT node's network; none for a bridged node (no DHCP: its address is static). */
async function leasesOf(inputs: DomainInputs): Promise<Lease[]> {
  if (bridgeOf(inputs) !== undefined) {
    return [];
  }
  const r = await virsh(inputs.uri, ["net-dhcp-leases", inputs.networkName ?? ""]);
  return r.code === 0 ? parseLeases(r.stdout) : [];
}

/** Where the node's address stands: the lease stage (NAT), or straight to "port" (bridge: static address, no lease). */
async function addressStage(inputs: DomainInputs): Promise<NotReady | undefined> {
  if (bridgeOf(inputs) !== undefined) {
    return undefined;
  }
  const lease = (await leasesOf(inputs)).find((l) => l.mac === inputs.mac);
  if (!lease) {
    return { stage: "lease", detail: "no lease yet" };
  }
  return lease.ip !== inputs.ip ? { stage: "wrong-lease", detail: `got ${lease.ip}` } : undefined;
}

/**
 * Polls until lease (NAT only) + TCP 22 + SSH login succeed or `deadline` (ms since epoch) passes.
 * Returns undefined when ready, else how far it got.
 */
async function waitReady(inputs: DomainInputs, deadline: number): Promise<NotReady | undefined> {
  const fs = fsp();
  const path = pathMod();
  const secrets = await privateTempDir("cilium-lab-ssh-");
  try {
    const key = inputs.sshPrivateKey.endsWith("\n") ? inputs.sshPrivateKey : `${inputs.sshPrivateKey}\n`;
    await fs.writeFile(path.join(secrets, "id"), key, { mode: 0o600 });
    await fs.writeFile(
      path.join(secrets, "known_hosts"),
      `${inputs.ip} ${normalizePublicKey(inputs.hostPublicKey)}\n`,
      { mode: 0o600 },
    );
    const started = Date.now();
    const elapsed = (): number => Math.round((Date.now() - started) / 1000);
    let last: NotReady =
      bridgeOf(inputs) === undefined
        ? { stage: "lease", detail: "no lease yet" }
        : { stage: "port", detail: "not tried yet" };
    let refusedSince: number | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        return { ...last, elapsedSeconds: elapsed() };
      }
      const state = await virsh(inputs.uri, ["domstate", inputs.domainName]);
      if (state.code === 0 && !/running|blocked|paused|in shutdown/.test(state.stdout)) {
        return { stage: "stopped", detail: `state: ${state.stdout.trim()}`, elapsedSeconds: elapsed() };
      }
      const address = await addressStage(inputs);
      if (address !== undefined) {
        last = address;
      } else {
        const tcp = await probeTcp(inputs.ip, 22, Math.min(5000, remaining));
        if (tcp !== "ok") {
          last = { stage: "port", detail: tcp };
        } else {
          const ssh = await sshLogin(inputs, secrets, deadline);
          if (ssh.code === 0) {
            return undefined;
          }
          last = classifyReadyAttempt(ssh);
        }
      }
      if (last.stage === "auth" || last.stage === "hostkey") {
        refusedSince ??= Date.now();
        if (Date.now() - refusedSince >= SSH_REFUSAL_GRACE_MS) {
          return { ...last, early: true, elapsedSeconds: elapsed() };
        }
      } else {
        refusedSince = undefined;
      }
      await sleep(Math.max(0, Math.min(3000, deadline - Date.now())));
    }
  } finally {
    await fs.rm(secrets, { recursive: true, force: true });
  }
}

/** Starts a defined domain and waits until it is ready; throws the boot error (after `onFail`). */
export async function startAndWait(
  inputs: DomainInputs,
  action: string,
  onFail: () => Promise<void>,
  rolledBack: string,
): Promise<void> {
  const deadline = Date.now() + inputs.bootTimeoutSeconds * 1000;
  const start = await virsh(inputs.uri, ["start", inputs.domainName]);
  if (start.code !== 0) {
    await onFail();
    throw toolFailure(
      `${action} (starting it)`,
      start,
      `${startFix(start.stderr, inputs.accelerator, inputs.bridgeName)} ${rolledBack}`,
      inputs.uri,
    );
  }
  let notReady: NotReady | undefined;
  try {
    notReady = await waitReady(inputs, deadline);
  } catch (error) {
    await onFail();
    throw new Error(`${action} failed while waiting for the node: ${(error as Error).message}. ${rolledBack}`, {
      cause: error,
    });
  }
  if (notReady !== undefined) {
    const leases = await leasesOf(inputs);
    // Read before onFail, which removes the log. A guest that found its address taken printed so
    // and powered itself off: that is the error, not the generic "stopped".
    const console = await readConsole(inputs);
    const conflict = notReady.stage === "stopped" ? findDadConflict(console) : undefined;
    await onFail();
    throw new Error(
      conflict !== undefined
        ? dadConflictMessage(inputs, conflict, rolledBack)
        : bootTimeoutMessage(inputs, notReady, leases, cleanConsole(console), rolledBack),
    );
  }
}
