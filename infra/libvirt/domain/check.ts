/** The input check of a {@link Domain}: every bad input with its property and reason. */
import { parseIpv4 } from "../../config/cidr";
import { isUnknown } from "../../provider";
import { Checker, MAC_PATTERN, STACK_PATTERN, absPath, checkUri, int } from "../common";
import { normalizePublicKey } from "./readiness";

/** Checks a Domain's inputs (values not known yet pass) and normalizes `freshDisk`, `hostPublicKey` and the empty defaults of `networkName`, `bridgeName` and `pool`. */
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
  const given = (v: unknown): boolean => v !== undefined && v !== "";
  if (
    !isUnknown(news.networkName) &&
    !isUnknown(news.bridgeName) &&
    given(news.networkName) === given(news.bridgeName)
  ) {
    c.fail(
      "networkName",
      "set exactly one of networkName (a libvirt network, NAT mode) and bridgeName (an existing host bridge, bridge mode)",
    );
  }
  c.field("networkName", (v) =>
    v === undefined || typeof v === "string" ? undefined : "must be a libvirt network name",
  );
  // Linux interface names: at most 15 bytes (IFNAMSIZ 16 with the NUL), no '/', ':' or whitespace
  // (the kernel's dev_valid_name, net/core/dev.c).
  c.field("bridgeName", (v) =>
    v === undefined ||
    v === "" ||
    (typeof v === "string" && /^[A-Za-z0-9_.-]{1,15}$/.test(v) && v !== "." && v !== "..")
      ? undefined
      : `must be a Linux bridge interface name (at most 15 of [A-Za-z0-9_.-]), got ${JSON.stringify(v)}`,
  );
  // Required: the disk, the seed and the console log are volumes of the stack's pool, reached
  // only through libvirt (states written before pools still read and delete without it).
  c.field("pool", (v) =>
    typeof v === "string" && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(v)
      ? undefined
      : `must be the stack's libvirt storage pool (StoragePool.poolName), got ${JSON.stringify(v)}`,
  );
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
    networkName: news.networkName ?? "",
    bridgeName: news.bridgeName ?? "",
    pool: news.pool ?? "",
    ...(typeof news.hostPublicKey === "string" ? { hostPublicKey: normalizePublicKey(news.hostPublicKey) } : {}),
  };
  return { inputs, failures: c.failures };
}
