// qemu+ssh for real, on loopback: a private sshd (sshd-harness.ts) run by the test user, reached by
// virsh through libvirt's ssh transport and virt-ssh-helper on the far side, which talks to the same
// libvirtd as qemu:///system. Rows: the login works (and the sshd log shows it); an unknown host
// key, a changed host key, a key the server refuses, a port that accepts and never answers, and a
// closed port each end in their named error with the fix, within the time bound, leaving no ssh
// process behind.
import test from "ava";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

import { toolFailure, virsh, virshOk } from "../../infra/libvirt/exec";
import { freePort, silentPort, startSshd, type Sshd } from "./sshd-harness";
import { URI } from "./support";

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});

const hostUuid = (capabilities: string): string => /<host>\s*<uuid>([^<]+)<\/uuid>/.exec(capabilities)?.[1] ?? "";

/** The message of the error a failed `virsh -c <uri> uri` becomes (toolFailure, as every provider call). */
async function refusal(uri: string, timeoutMs?: number): Promise<string> {
  const result = await virsh(uri, ["uri"], timeoutMs === undefined ? {} : { timeoutMs });
  return result.code === 0 ? "(connected)" : toolFailure("connecting", result, "n/a", uri).message;
}

/** Processes of this user whose command line mentions `needle` (a leftover ssh). */
const processesWith = (needle: string): string[] =>
  execFileSync("ps", ["-u", String(process.getuid?.() ?? 0), "-o", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(needle) && !l.includes("ps -u"));

test.serial(
  "qemu+ssh to loopback reaches the system daemon through virt-ssh-helper; the sshd log shows the login",
  async (t) => {
    sshd.trustHostKey();
    // proxy=native: the far side must run virt-ssh-helper (no netcat fallback).
    const remote = await virshOk(sshd.uri({ proxy: "native" }), ["capabilities"], "reading capabilities", "n/a");
    const local = await virshOk(URI, ["capabilities"], "reading capabilities", "n/a");
    t.regex(hostUuid(remote), /^[0-9a-f-]{36}$/);
    t.is(hostUuid(remote), hostUuid(local), "one daemon reached two ways");
    t.regex(sshd.log(), new RegExp(`Accepted publickey for ${sshd.user} from 127\\.0\\.0\\.1`));
  },
);

test.serial("an unknown host key is refused (never accepted blindly) with the ssh-keyscan fix", async (t) => {
  sshd.setKnownHosts("");
  const message = await refusal(sshd.uri());
  t.regex(message, new RegExp(`the SSH host key of ${sshd.user}@127\\.0\\.0\\.1:${sshd.port} is not in known_hosts`));
  t.true(message.includes(`ssh-keyscan -p ${sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts`), message);
  t.is(fs.readFileSync(sshd.knownHosts, "utf8"), "", "nothing was added to known_hosts");
});

test.serial("a changed host key is refused with the ssh-keygen -R fix", async (t) => {
  const other = sshd.strangerKey();
  const [type, key] = fs.readFileSync(`${other}.pub`, "utf8").split(" ");
  sshd.setKnownHosts(`[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
  const message = await refusal(sshd.uri());
  t.regex(message, /has CHANGED since it was recorded in known_hosts/);
  t.true(message.includes(`ssh-keygen -R '[127.0.0.1]:${sshd.port}'`), message);
});

test.serial("a key the server does not accept is refused with the ssh-agent/keyfile fix", async (t) => {
  sshd.trustHostKey();
  const stranger = sshd.strangerKey();
  const message = await refusal(sshd.uri({ keyfile: stranger }));
  t.regex(message, new RegExp(`refused the login of ${sshd.user} \\(Permission denied \\(publickey\\)\\)`));
  t.true(message.includes(`check that ${stranger} is the private key`), message);
  t.true(message.includes(`ssh-copy-id -p ${sshd.port} ${sshd.user}@127.0.0.1`), message);
  t.regex(sshd.log(), new RegExp(`Failed publickey for ${sshd.user} from 127\\.0\\.0\\.1`));
});

test.serial(
  "a port that accepts and never answers ends within the bound with a named error and no ssh left",
  async (t) => {
    const silent = await silentPort();
    try {
      const uri = `qemu+ssh://${sshd.user}@127.0.0.1:${silent.port}/system?keyfile=${sshd.clientKey}&command=${sshd.sshWrapper}`;
      const started = Date.now();
      const message = await refusal(uri, 3000);
      const elapsed = Date.now() - started;
      // The call's bound (3 s) plus the probe that names the cause (at most as long), plus slack.
      t.true(elapsed < 9000, `took ${elapsed} ms`);
      t.true(silent.accepted() >= 1, "ssh reached the silent port");
      t.regex(message, new RegExp(`no answer from libvirt over SSH at ${sshd.user}@127\\.0\\.0\\.1:${silent.port}`));
      t.regex(message, new RegExp(`check that port ${silent.port} on 127\\.0\\.0\\.1 is an SSH server`));
      t.deepEqual(processesWith(`${silent.port}`), [], "virsh and its ssh were killed as a group");
    } finally {
      await silent.close();
    }
  },
);

test.serial("a closed port is refused with the start-sshd fix", async (t) => {
  const port = await freePort();
  const uri = `qemu+ssh://${sshd.user}@127.0.0.1:${port}/system?keyfile=${sshd.clientKey}&command=${sshd.sshWrapper}`;
  const message = await refusal(uri);
  t.regex(
    message,
    new RegExp(`nothing accepts SSH connections at 127\\.0\\.0\\.1 port ${port} \\(connection refused\\)`),
  );
  t.regex(message, /Fix: start sshd on 127\.0\.0\.1/);
});
