/**
 * `CloudInitDisk`: a NoCloud seed ISO (volume id `cidata` with `user-data`, `meta-data` and optionally
 * `network-config`, https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html),
 * built with `cloud-localds` (Debian package cloud-image-utils) in a private temporary directory and
 * uploaded (`vol-upload`) as a volume of the stack's libvirt storage pool, so it works as a user in
 * group libvirt and against a remote host. Mirrors `libvirt.CloudInitDisk` of the retired `@pulumi/libvirt`.
 *
 * The seed carries secrets (host private keys, the k3s token), so: the inputs and the ISO are 0600
 * files in a 0700 directory of our own (also cloud-localds' TMPDIR), removed in `finally` whatever
 * happened (never a shared path: the anti-pattern of dmacvicar/terraform-provider-libvirt issues
 * #1267/#1368); the volume is 0600 on the libvirt host; and the content never goes into outputs or
 * messages — only SHA-256 digests, which also name the volume: a content change gives a new path, so
 * the domain using it is replaced and cloud-init runs again (it runs per-instance modules once per
 * instance-id). States written before pools (a file in a root-only pool directory, `poolDir`) are
 * still read and deleted as files.
 */
import * as pulumi from "@pulumi/pulumi";

import { dynamicResource, isUnknown, UNKNOWN, type CheckResult, type Compared } from "../provider";
import { Checker, STACK_PATTERN, checkUri, str } from "./common";
import { cryptoMod, fsp, pathExists, pathMod, privateTempDir, runTool, toolFailure } from "./exec";
import { libvirtProvider } from "./owned";
import { assertStackPool, hostOf } from "./pool";
import { deletePoolFile } from "./pool-file";
import { deleteVolume, uploadVolume, volumePath } from "./storage";

/** Inputs of {@link CloudInitDisk}. */
export interface CloudInitDiskArgs {
  /** libvirt URI of the node's host. */
  readonly uri: pulumi.Input<string>;
  /** The stack's libvirt storage pool (pass `StoragePool.poolName`); its marker must name `stack`. */
  readonly pool: pulumi.Input<string>;
  /**
   * Volume name stem, e.g. `node-1-seed`: the volume is `<stem>-<first 12 hex of the content hash>.iso`,
   * so changed content means a new path (and a replaced domain).
   */
  readonly name: pulumi.Input<string>;
  /** `#cloud-config` user-data. **Secret-bearing** (host private keys, tokens): pass a secret. Never echoed. */
  readonly userData: pulumi.Input<string>;
  /** NoCloud meta-data YAML; must set `instance-id`. */
  readonly metaData: pulumi.Input<string>;
  /** Optional network-config (v1 or v2 YAML). */
  readonly networkConfig?: pulumi.Input<string>;
  /** Pulumi stack that owns the pool. */
  readonly stack: pulumi.Input<string>;
}

/** Plain inputs as the provider receives them. */
export type CloudInitDiskInputs = pulumi.Unwrap<CloudInitDiskArgs>;

/** State of a seed ISO: digests only, never the content. */
export interface CloudInitDiskOutputs extends Omit<CloudInitDiskInputs, "userData" | "metaData" | "networkConfig"> {
  /** The pool directory of a state written before pools; "" since. */
  readonly poolDir: string;
  readonly pool: string;
  /** Absolute path of the ISO volume on the libvirt host; also the resource id. */
  readonly path: string;
  readonly userDataSha256: string;
  readonly metaDataSha256: string;
  readonly networkConfigSha256: string;
  /** Digest of the three parts together; its first 12 hex digits are in the file name. */
  readonly contentSha256: string;
  /** Digest of the ISO as built and uploaded (ISO images embed timestamps, so it differs per build). */
  readonly isoSha256: string;
}

function sha256(text: string): string {
  return cryptoMod().createHash("sha256").update(text, "utf8").digest("hex");
}

/** Per-part and combined digests of a seed's content. */
export function seedDigests(inputs: Pick<CloudInitDiskInputs, "userData" | "metaData" | "networkConfig">): {
  userDataSha256: string;
  metaDataSha256: string;
  networkConfigSha256: string;
  contentSha256: string;
} {
  const userDataSha256 = sha256(inputs.userData);
  const metaDataSha256 = sha256(inputs.metaData);
  const networkConfigSha256 = sha256(inputs.networkConfig ?? "");
  return {
    userDataSha256,
    metaDataSha256,
    networkConfigSha256,
    contentSha256: sha256(`${userDataSha256}\n${metaDataSha256}\n${networkConfigSha256}\n`),
  };
}

/** The ISO file name for a stem and content digest. */
export function seedFileName(stem: string, contentSha256: string): string {
  return `${stem.replace(/\.iso$/, "")}-${contentSha256.slice(0, 12)}.iso`;
}

async function fileSha256(path: string): Promise<string> {
  return cryptoMod()
    .createHash("sha256")
    .update(await fsp().readFile(path))
    .digest("hex");
}

/** Writes the seed's parts into the private directory `tmp` and runs cloud-localds there; returns the ISO. */
async function buildSeed(inputs: CloudInitDiskInputs, tmp: string, what: string): Promise<string> {
  const path = pathMod();
  const write = (name: string, content: string): Promise<void> =>
    fsp().writeFile(path.join(tmp, name), content, { mode: 0o600 });
  await write("user-data", inputs.userData);
  await write("meta-data", inputs.metaData);
  const args = ["seed.iso", "user-data", "meta-data"];
  if (inputs.networkConfig !== undefined && inputs.networkConfig !== "") {
    await write("network-config", inputs.networkConfig);
    args.unshift("-N", "network-config");
  }
  // TMPDIR: cloud-localds copies its inputs to `mktemp -d ${TMPDIR:-/tmp}/…` before running
  // genisoimage; keep those copies of the secrets inside our private directory too.
  const result = await runTool("cloud-localds", args, { cwd: tmp, env: { TMPDIR: tmp } });
  if (result.code !== 0) {
    throw toolFailure(what, result, "check the cloud-localds message above. Nothing was uploaded.");
  }
  const iso = path.join(tmp, "seed.iso");
  await fsp().chmod(iso, 0o600);
  return iso;
}

async function createSeed(inputs: CloudInitDiskInputs): Promise<{ id: string; outs: CloudInitDiskOutputs }> {
  const digests = seedDigests(inputs);
  const name = seedFileName(inputs.name, digests.contentSha256);
  const what = `creating cloud-init seed ${name} in libvirt storage pool "${inputs.pool}"`;
  // Only into the stack's own pool (its marker names the stack), as a Volume: checked before
  // anything is built, deleted or uploaded.
  await assertStackPool(inputs, what);
  // Our own 0700 directory under the OS temp dir: the inputs hold secrets, and so does the ISO.
  const tmp = await privateTempDir("cilium-lab-seed-");
  let path: string;
  let isoSha256: string;
  try {
    const iso = await buildSeed(inputs, tmp, what);
    isoSha256 = await fileSha256(iso);
    // At our content-hashed name in our stack's pool, a volume the state does not know is the
    // leftover of an interrupted run: replaced rather than trusted.
    await deleteVolume(inputs.uri, inputs.pool, name);
    path = await uploadVolume(inputs.uri, inputs.pool, name, iso);
  } finally {
    await fsp().rm(tmp, { recursive: true, force: true });
  }
  return {
    id: path,
    outs: {
      uri: inputs.uri,
      poolDir: "",
      pool: inputs.pool,
      name: inputs.name,
      path,
      ...digests,
      isoSha256,
      stack: inputs.stack,
    },
  };
}

/** Refresh: a seed whose volume is gone (or whose legacy file is gone) reads as gone. */
async function readSeed(
  id: string,
  props: CloudInitDiskOutputs,
): Promise<{ id: string; props?: CloudInitDiskOutputs }> {
  if (props.pool === "" || props.pool === undefined) {
    if (!(await pathExists(id))) {
      return { id: "" };
    }
    return { id, props: { ...props, path: id, isoSha256: await fileSha256(id) } };
  }
  return (await volumePath(props.uri, props.pool, pathMod().basename(id))) === id
    ? { id, props: { ...props, path: id } }
    : { id: "" };
}

/** Deletes the seed volume (a missing one is fine); a legacy file the way it was made. */
async function deleteSeed(id: string, props: CloudInitDiskOutputs): Promise<void> {
  if (props.pool === "" || props.pool === undefined) {
    await deletePoolFile(id, props);
    return;
  }
  await deleteVolume(props.uri, props.pool, pathMod().basename(id));
}

function checkSeed(news: Record<string, unknown>): CheckResult {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field("name", str(/^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/, "a file name stem ([A-Za-z0-9._-])"));
  c.field("pool", str(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, "the stack's libvirt storage pool (StoragePool.poolName)"));
  // Reasons never quote user-data: it holds private keys.
  c.field("userData", (v) =>
    typeof v !== "string" || !/^(#cloud-config|#!|Content-Type:)/.test(v)
      ? "must be a non-empty cloud-init user-data document starting with #cloud-config, #! or Content-Type: (content not shown: it may hold secrets)"
      : undefined,
  );
  c.field("metaData", (v) =>
    typeof v !== "string" || !/^instance-id:\s*\S+/m.test(v)
      ? "must be NoCloud meta-data YAML with an instance-id: line"
      : undefined,
  );
  c.field("networkConfig", (v) =>
    v === undefined || v === "" || (typeof v === "string" && /^(version|network):/m.test(v))
      ? undefined
      : "must be empty or network-config YAML (a version: or network: key)",
  );
  c.field("stack", str(STACK_PATTERN, "a Pulumi stack name"));
  return { inputs: news, failures: c.failures };
}

/**
 * Keys whose change replaces the seed. The content parts are compared by digest: the state holds
 * `<part>Sha256`, never the content (it holds secrets). `host` is the daemon the URI reaches (the
 * URI without its query, pool.ts `hostOf`, as for volumes): the volume lives there, so another host is another
 * seed, while another socket path or key file to the same host is an update.
 */
export const SEED_REPLACE_KEYS = [
  "host",
  "poolDir",
  "pool",
  "name",
  "userData",
  "metaData",
  "networkConfig",
  "stack",
] as const;

/** The content parts' digests under the parts' own names, for the diff; unknown stays unknown. */
function compareDigests(olds: Record<string, unknown>, news: Record<string, unknown>): Compared {
  const digest = (v: unknown): string => (isUnknown(v) ? UNKNOWN : sha256(typeof v === "string" ? v : ""));
  return {
    olds: {
      ...olds,
      host: hostOf(olds.uri),
      userData: olds.userDataSha256,
      metaData: olds.metaDataSha256,
      networkConfig: olds.networkConfigSha256,
      poolDir: olds.poolDir ?? "",
      pool: olds.pool ?? "",
    },
    news: {
      ...news,
      host: hostOf(news.uri),
      userData: digest(news.userData),
      metaData: digest(news.metaData),
      networkConfig: digest(news.networkConfig),
      // A state from before pools has a poolDir and no pool: it is replaced by a volume.
      poolDir: "",
      pool: news.pool ?? "",
    },
  };
}

/** The seed provider; one instance shared by every {@link CloudInitDisk}. */
export const cloudInitDiskProvider = libvirtProvider<CloudInitDiskInputs, CloudInitDiskOutputs>({
  check: checkSeed,
  normalize: compareDigests,
  replaceKeys: SEED_REPLACE_KEYS,
  updateKeys: ["uri"],
  create: createSeed,
  read: readSeed,
  delete: deleteSeed,
});

/**
 * A NoCloud seed ISO, a volume of the stack's pool (`pulumi-nodejs:dynamic/libvirt:CloudInitDisk`).
 * The id is the volume's path; pass its `path` to `Domain.seedPath`. Outputs hold digests, never the
 * content; `userData` is additionally listed in `additionalSecretOutputs` in case a future output
 * echoes it.
 */
export const CloudInitDisk = dynamicResource<CloudInitDiskArgs, CloudInitDiskOutputs>(
  cloudInitDiskProvider,
  { module: "libvirt", type: "CloudInitDisk" },
  { outputs: ["path", "poolDir", "pool", "contentSha256", "isoSha256"], secretOutputs: ["userData"] },
);
export type CloudInitDisk = InstanceType<typeof CloudInitDisk>;
