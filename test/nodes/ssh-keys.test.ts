// OpenSSH ed25519 formatting from node:crypto, checked against the real `ssh-keygen`
// (Debian package openssh-client): byte-identical to what it writes, and accepted by it.
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { formatPrivateKey, formatPublicKey, generateEd25519KeyPair, parsePrivateKey } from "../../infra/nodes/ssh-keys";

const execFileAsync = promisify(execFile);
const HINT = "`ssh-keygen` not found: install Debian package openssh-client (listed in .ci/apt-packages.txt)";

async function sshKeygen(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync("ssh-keygen", args, { env: { ...process.env, LC_ALL: "C" } });
    return stdout;
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") {
      throw new Error(HINT);
    }
    throw err;
  }
}

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "cl-n-ssh-"));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test("a key ssh-keygen wrote parses and formats back byte for byte", async (t) => {
  await withTmp(async (dir) => {
    const file = path.join(dir, "k");
    await sshKeygen(["-q", "-t", "ed25519", "-N", "", "-C", "someone@host", "-f", file]);
    const text = await fs.readFile(file, "utf8");
    const parts = parsePrivateKey(text);
    t.is(parts.comment, "someone@host");
    t.is(formatPrivateKey(parts), text);
    t.is(formatPublicKey(parts.publicKey, parts.comment), (await fs.readFile(`${file}.pub`, "utf8")).trim());
  });
});

test("ssh-keygen -y derives the generated public key from the generated private key", async (t) => {
  await withTmp(async (dir) => {
    const pair = generateEd25519KeyPair("cilium-lab-t");
    t.regex(pair.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} cilium-lab-t$/);
    t.regex(
      pair.privateKey,
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/,
    );
    const file = path.join(dir, "k");
    await fs.writeFile(file, pair.privateKey, { mode: 0o600 });
    t.is((await sshKeygen(["-y", "-f", file])).trim(), pair.publicKey);
  });
});

test("two generated keys differ", (t) => {
  const a = generateEd25519KeyPair("x");
  const b = generateEd25519KeyPair("x");
  t.not(a.publicKey, b.publicKey);
  t.not(a.privateKey, b.privateKey);
});

test("a public key without comment is just type and blob", (t) => {
  t.is(
    formatPublicKey(Buffer.alloc(32, 1), ""),
    `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 1)]).toString("base64")}`,
  );
});

test("a passphrase-protected key is refused by name, not by contents", async (t) => {
  await withTmp(async (dir) => {
    const file = path.join(dir, "k");
    await sshKeygen(["-q", "-t", "ed25519", "-N", "secret-pass", "-C", "x", "-f", file]);
    const text = await fs.readFile(file, "utf8");
    const err = t.throws(() => parsePrivateKey(text));
    t.is(err?.message, "encrypted OpenSSH private keys are not supported (cipher aes256-ctr, kdf bcrypt)");
  });
});

const badKeys: { title: string; text: string; message: string }[] = [
  {
    title: "text without a key block",
    text: "hello",
    message: "not an OpenSSH private key (no BEGIN/END OPENSSH PRIVATE KEY block)",
  },
  {
    title: "a block with another magic",
    text: `-----BEGIN OPENSSH PRIVATE KEY-----\n${Buffer.from("something-else-entirely").toString("base64")}\n-----END OPENSSH PRIVATE KEY-----\n`,
    message: "not an openssh-key-v1 private key",
  },
  {
    title: "a truncated block",
    text: `-----BEGIN OPENSSH PRIVATE KEY-----\n${Buffer.from("openssh-key-v1\0\0\0").toString("base64")}\n-----END OPENSSH PRIVATE KEY-----\n`,
    message: "truncated OpenSSH private key",
  },
];

for (const row of badKeys) {
  test(`parsing refuses ${row.title}`, (t) => {
    t.is(t.throws(() => parsePrivateKey(row.text))?.message, row.message);
  });
}

test("formatting refuses seeds and keys of the wrong length", (t) => {
  t.is(
    t.throws(() => formatPrivateKey({ seed: Buffer.alloc(31), publicKey: Buffer.alloc(32), comment: "", checkint: 1 }))
      ?.message,
    "ed25519 seed and public key must be 32 bytes (got 31 and 32)",
  );
});
