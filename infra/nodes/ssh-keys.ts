/**
 * ed25519 keys in OpenSSH's own formats, from `node:crypto`: no `ssh-keygen` process and no key
 * file on disk. Pure except {@link generateEd25519KeyPair}, which draws randomness.
 *
 * Formats: the public key is an authorized_keys line `ssh-ed25519 <base64 wire blob> <comment>`
 * (RFC 8709 §4 wire blob: string "ssh-ed25519", string key); the private key is OpenSSH's
 * `openssh-key-v1` container, unencrypted (openssh-portable PROTOCOL.key).
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";

/** An OpenSSH ed25519 key pair. */
export interface SshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` block with a final newline. Secret. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA… <comment>`, no newline. */
  readonly publicKey: string;
}

/** The raw parts of an ed25519 key and its OpenSSH envelope. */
export interface Ed25519Parts {
  /** The 32-byte private seed. */
  readonly seed: Buffer;
  /** The 32-byte public key. */
  readonly publicKey: Buffer;
  readonly comment: string;
  /** OpenSSH's random "checkint", repeated twice to detect a wrong passphrase. */
  readonly checkint: number;
}

const KEY_TYPE = "ssh-ed25519";
// Kept as a string: module-level Buffers do not survive Pulumi's closure serialization (a captured
// Buffer comes back as a plain object), and this module runs inside dynamic providers.
const MAGIC_TEXT = "openssh-key-v1\0";
const BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END = "-----END OPENSSH PRIVATE KEY-----";

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function sshString(b: Buffer | string): Buffer {
  const bytes = typeof b === "string" ? Buffer.from(b, "utf8") : b;
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** The public key's wire blob (what the base64 of an authorized_keys line encodes). */
function publicBlob(publicKey: Buffer): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(publicKey)]);
}

/** `ssh-ed25519 <base64> <comment>`. */
export function formatPublicKey(publicKey: Buffer, comment: string): string {
  const line = `${KEY_TYPE} ${publicBlob(publicKey).toString("base64")}`;
  return comment === "" ? line : `${line} ${comment}`;
}

/** The unencrypted `openssh-key-v1` private key file, byte for byte as `ssh-keygen` writes it. */
export function formatPrivateKey(parts: Ed25519Parts): string {
  const { seed, publicKey, comment, checkint } = parts;
  if (seed.length !== 32 || publicKey.length !== 32) {
    throw new Error(`ed25519 seed and public key must be 32 bytes (got ${seed.length} and ${publicKey.length})`);
  }
  let secret = Buffer.concat([
    u32(checkint),
    u32(checkint),
    sshString(KEY_TYPE),
    sshString(publicKey),
    // OpenSSH stores the 64-byte "secret key" of the ed25519 reference code: seed ‖ public key.
    sshString(Buffer.concat([seed, publicKey])),
    sshString(comment),
  ]);
  // Padding 1, 2, 3, … up to the cipher block size (8 for "none").
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from(MAGIC_TEXT, "latin1"),
    sshString("none"),
    sshString("none"),
    sshString(Buffer.alloc(0)),
    u32(1),
    sshString(publicBlob(publicKey)),
    sshString(secret),
  ]);
  const b64 = body.toString("base64");
  const lines = b64.match(/.{1,70}/g) ?? [];
  return `${BEGIN}\n${lines.join("\n")}\n${END}\n`;
}

/** Reads back an unencrypted OpenSSH ed25519 private key; throws naming what is wrong (never the key). */
export function parsePrivateKey(text: string): Ed25519Parts {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----\s+([A-Za-z0-9+/=\s]+?)\s*-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m?.[1]) {
    throw new Error("not an OpenSSH private key (no BEGIN/END OPENSSH PRIVATE KEY block)");
  }
  const buf = Buffer.from(m[1].replace(/\s+/g, ""), "base64");
  let at = 0;
  const need = (n: number): void => {
    if (at + n > buf.length) {
      throw new Error("truncated OpenSSH private key");
    }
  };
  const readU32 = (): number => {
    need(4);
    const v = buf.readUInt32BE(at);
    at += 4;
    return v;
  };
  const readString = (): Buffer => {
    const n = readU32();
    need(n);
    const v = buf.subarray(at, at + n);
    at += n;
    return v;
  };
  const magic = Buffer.from(MAGIC_TEXT, "latin1");
  need(magic.length);
  if (!buf.subarray(0, magic.length).equals(magic)) {
    throw new Error("not an openssh-key-v1 private key");
  }
  at = magic.length;
  const cipher = readString().toString();
  const kdf = readString().toString();
  readString();
  if (cipher !== "none" || kdf !== "none") {
    throw new Error(`encrypted OpenSSH private keys are not supported (cipher ${cipher}, kdf ${kdf})`);
  }
  if (readU32() !== 1) {
    throw new Error("OpenSSH private key file holds more than one key");
  }
  readString();
  const secret = readString();
  // The private section has its own offsets.
  const s = { at: 0 };
  const sU32 = (): number => {
    if (s.at + 4 > secret.length) {
      throw new Error("truncated OpenSSH private section");
    }
    const v = secret.readUInt32BE(s.at);
    s.at += 4;
    return v;
  };
  const sString = (): Buffer => {
    const n = sU32();
    if (s.at + n > secret.length) {
      throw new Error("truncated OpenSSH private section");
    }
    const v = secret.subarray(s.at, s.at + n);
    s.at += n;
    return v;
  };
  const check1 = sU32();
  const check2 = sU32();
  if (check1 !== check2) {
    throw new Error("OpenSSH private key checkints differ (corrupt or encrypted)");
  }
  const type = sString().toString();
  if (type !== KEY_TYPE) {
    throw new Error(`expected an ${KEY_TYPE} key, got ${type}`);
  }
  const publicKey = Buffer.from(sString());
  const sk = sString();
  const comment = sString().toString("utf8");
  if (publicKey.length !== 32 || sk.length !== 64 || !sk.subarray(32).equals(publicKey)) {
    throw new Error("malformed ed25519 key in OpenSSH private key");
  }
  return { seed: Buffer.from(sk.subarray(0, 32)), publicKey, comment, checkint: check1 };
}

/** A fresh ed25519 key pair in OpenSSH formats, with `comment` on both halves. */
export function generateEd25519KeyPair(comment: string): SshKeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  if (typeof jwk.d !== "string" || typeof jwk.x !== "string") {
    throw new Error("node:crypto returned an ed25519 JWK without d/x");
  }
  const seed = Buffer.from(jwk.d, "base64url");
  const publicKey = Buffer.from(jwk.x, "base64url");
  return {
    privateKey: formatPrivateKey({ seed, publicKey, comment, checkint: randomBytes(4).readUInt32BE(0) }),
    publicKey: formatPublicKey(publicKey, comment),
  };
}
