/** The input check of a {@link Domain}: every bad input with its property and reason. */
import { parseIpv4 } from "../../config/cidr";
import { Checker, MAC_PATTERN, STACK_PATTERN, absPath, checkUri, int } from "../common";
import { normalizePublicKey } from "./readiness";

/** Checks a Domain's inputs (values not known yet pass) and normalizes `freshDisk` and `hostPublicKey`. */
export function checkDomain(news: Record<string, unknown>): {
  inputs: Record<string, unknown>;
  failures: { property: string; reason: string }[];
} {
  const c = new Checker(news);
  c.field("uri", (v) => checkUri(v));
  c.field("domainName", (v) =>
    typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(v)
      ? `must be a libvirt domain name ([A-Za-z0-9_.-], at most 64), got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("vcpus", int(1, 256));
  c.field("memoryMiB", int(128, 1024 * 1024));
  for (const k of ["diskPath", "seedPath", "consoleLogPath"]) {
    c.field(k, absPath);
  }
  c.field("networkName", (v) => (typeof v !== "string" || v === "" ? "must be a libvirt network name" : undefined));
  c.field("mac", (v) =>
    typeof v !== "string" || !MAC_PATTERN.test(v)
      ? `must be a lower-case unicast MAC like 52:54:00:12:34:56, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("ip", (v) =>
    typeof v !== "string" || parseIpv4(v) === undefined
      ? `must be an IPv4 address, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("accelerator", (v) =>
    v === "kvm" || v === "qemu" ? undefined : `must be kvm or qemu (TCG), got ${JSON.stringify(v)}`,
  );
  c.field("bootTimeoutSeconds", int(5, 7200));
  c.field("sshUser", (v) =>
    typeof v !== "string" || !/^[a-z_][a-z0-9_-]{0,31}$/.test(v)
      ? `must be a Linux user name, got ${JSON.stringify(v)}`
      : undefined,
  );
  // Never quote the private key, not even partly.
  c.field("sshPrivateKey", (v) =>
    typeof v !== "string" || !/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----/.test(v)
      ? "must be an OpenSSH/PEM private key (-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----); value not shown"
      : undefined,
  );
  c.field("hostPublicKey", (v) =>
    typeof v !== "string" ||
    !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*(\s.*)?$/.test(v.trim())
      ? `must be an OpenSSH public key line (ssh-ed25519 AAAA…), got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("stack", (v) =>
    typeof v !== "string" || !STACK_PATTERN.test(v)
      ? `must be a Pulumi stack name, got ${JSON.stringify(v)}`
      : undefined,
  );
  c.field("freshDisk", (v) =>
    v === undefined || typeof v === "boolean" ? undefined : `must be true or false, got ${JSON.stringify(v)}`,
  );
  // Defaulted here so that a state holding `freshDisk: false` diffs equal to an input that omits it.
  const inputs = {
    ...news,
    freshDisk: news.freshDisk ?? false,
    ...(typeof news.hostPublicKey === "string" ? { hostPublicKey: normalizePublicKey(news.hostPublicKey) } : {}),
  };
  return { inputs, failures: c.failures };
}
