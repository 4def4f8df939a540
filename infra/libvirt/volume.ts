/**
 * `Volume`: a qcow2 volume in the stack's libvirt storage pool, a copy-on-write overlay on a base
 * image (`backingPath`) or a blank disk. Mirrors `libvirt.Volume` of the retired `@pulumi/libvirt`
 * (name, pool, baseVolume, size). libvirtd creates the file (`vol-create` with a `<backingStore>`,
 * storage.ts), so this works as a user in group libvirt and on a remote host.
 *
 * Overlays always carry an explicit backing format (`<backingStore><format type='qcow2'/>`, which
 * libvirt passes to `qemu-img create -F`): QEMU ≥ 6.1 refuses `-b` without it because format probing
 * of backing files is a security risk (qemu commit 497a30db).
 *
 * States written before pools (a file in a root-only pool directory, `poolDir` set) are still
 * deleted as files: that is the migration path of labs made as root (run `pulumi destroy` or `up`
 * as root once; see pool-file.ts).
 */
import * as pulumi from "@pulumi/pulumi";

import { dynamicResource, type CheckResult, type Compared } from "../provider";
import { Checker, STACK_PATTERN, absPath, checkUri, int, str } from "./common";
import { pathExists } from "./exec";
import { libvirtProvider } from "./owned";
import { deletePoolFile } from "./pool-file";
import { assertStackPool, hostOf } from "./pool";
import { POOL_MARKER_VOLUME, createVolume, deleteVolume, volumeFacts } from "./storage";

/** Inputs of {@link Volume}. */
export interface VolumeArgs {
  /** libvirt URI of the host the pool lives on. */
  readonly uri: pulumi.Input<string>;
  /** The stack's libvirt storage pool (pass `StoragePool.poolName`); its marker must name `stack`. */
  readonly pool: pulumi.Input<string>;
  /** Volume name inside the pool, e.g. `node-1.qcow2`. Changing it replaces the volume. */
  readonly name: pulumi.Input<string>;
  /**
   * Path on the libvirt host of a standalone qcow2 volume to overlay (a `BaseVolume`'s `path`).
   * Omitted: a blank disk. Pass the base resource's output so replacing the base replaces the volume.
   */
  readonly backingPath?: pulumi.Input<string>;
  /** Virtual size in GiB (at least the backing image's). Changing it replaces the volume. */
  readonly sizeGiB: pulumi.Input<number>;
  /** Pulumi stack that owns the pool (checked against its marker). */
  readonly stack: pulumi.Input<string>;
}

/** Plain inputs as the provider receives them. */
export type VolumeInputs = pulumi.Unwrap<VolumeArgs>;

/** State of a volume. */
export interface VolumeOutputs extends VolumeInputs {
  readonly pool: string;
  /** Path of the volume on the libvirt host; also the resource id. */
  readonly path: string;
  /** The overlay's backing image; "" for a blank disk (or when the backing image vanished). */
  readonly backingPath: string;
  /** Set only in states written before pools: the pool directory the file was made in. */
  readonly poolDir?: string;
}

const GiB = 1024 ** 3;

/** The backing image must exist on the libvirt host, be a standalone qcow2 and not be larger than the volume. */
async function checkBacking(inputs: VolumeInputs, backing: string, what: string): Promise<void> {
  const facts = await volumeFacts(inputs.uri, undefined, backing);
  if (facts === undefined) {
    throw new Error(
      `${what} failed: the backing image ${backing} is not a volume libvirt knows at ${inputs.uri}. ` +
        "Fix: let the base volume resource upload it again (`pulumi up --refresh`); scripts/lab-clean.sh --purge-base clears a broken base pool.",
    );
  }
  if (facts.format !== "qcow2") {
    throw new Error(
      `${what} failed: the backing image ${backing} is ${facts.format ?? "of unknown format"}, expected qcow2 (virsh vol-dumpxml). ` +
        "Fix: use a qcow2 cloud image (cilium-lab:imageUrl).",
    );
  }
  if (facts.backingPath !== undefined) {
    throw new Error(
      `${what} failed: the backing image ${backing} has its own backing file ${facts.backingPath}; a base must be standalone. ` +
        `Fix: flatten it (qemu-img convert -O qcow2 ${backing} <new file>).`,
    );
  }
  if (facts.capacityBytes > inputs.sizeGiB * GiB) {
    throw new Error(
      `${what} failed: sizeGiB ${inputs.sizeGiB} is smaller than the base image's virtual size ${Math.ceil(facts.capacityBytes / GiB)} GiB (${backing}). ` +
        "Fix: raise cilium-lab:nodeDiskGiB.",
    );
  }
}

function outputs(inputs: VolumeInputs, path: string): VolumeOutputs {
  return {
    uri: inputs.uri,
    pool: inputs.pool,
    name: inputs.name,
    path,
    backingPath: inputs.backingPath ?? "",
    sizeGiB: inputs.sizeGiB,
    stack: inputs.stack,
  };
}

async function createVol(inputs: VolumeInputs): Promise<{ id: string; outs: VolumeOutputs }> {
  const what = `creating volume "${inputs.name}" in libvirt storage pool "${inputs.pool}"`;
  await assertStackPool(inputs, what);
  const backing = inputs.backingPath ?? "";
  if (backing !== "") {
    await checkBacking(inputs, backing, what);
  }
  // At our name in our stack's pool, a volume the state does not know is the leftover of an
  // interrupted run: replaced rather than trusted.
  await deleteVolume(inputs.uri, inputs.pool, inputs.name);
  const path = await createVolume(inputs.uri, inputs.pool, {
    name: inputs.name,
    capacityBytes: inputs.sizeGiB * GiB,
    format: "qcow2",
    ...(backing !== "" ? { backing: { path: backing, format: "qcow2" as const } } : {}),
  });
  return { id: path, outs: outputs(inputs, path) };
}

async function readVol(id: string, props: VolumeOutputs): Promise<{ id: string; props?: VolumeOutputs }> {
  if (props.poolDir !== undefined && props.poolDir !== "") {
    // A state from before pools: the file is all there is to look at.
    return (await pathExists(id)) ? { id, props } : { id: "" };
  }
  const facts = await volumeFacts(props.uri, props.pool, props.name);
  if (facts === undefined) {
    return { id: "" };
  }
  let backingPath = props.backingPath;
  if (backingPath !== "") {
    // A vanished backing image leaves an unusable overlay: report none so the next diff replaces it.
    const alive = facts.backingPath !== undefined && (await volumeFacts(props.uri, undefined, facts.backingPath));
    backingPath = alive ? (facts.backingPath ?? "") : "";
  }
  return {
    id: facts.path,
    props: { ...props, path: facts.path, backingPath, sizeGiB: Math.round(facts.capacityBytes / GiB) },
  };
}

async function deleteVol(id: string, props: VolumeOutputs): Promise<void> {
  if (props.poolDir !== undefined && props.poolDir !== "") {
    // Migration path of labs made as root: the old provider's file and its `.part` leftover.
    await deletePoolFile(id, { uri: props.uri, stack: props.stack, poolDir: props.poolDir, pool: props.pool }, [
      `${id}.part`,
    ]);
    return;
  }
  await deleteVolume(props.uri, props.pool, props.name);
}

function checkVolume(news: Record<string, unknown>): CheckResult {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field("pool", str(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, "a libvirt pool name"));
  c.field("name", (v) =>
    typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(v) || v === POOL_MARKER_VOLUME
      ? `must be a plain volume name ([A-Za-z0-9._-], not ${POOL_MARKER_VOLUME}), got ${JSON.stringify(v)}`
      : undefined,
  );
  if (news.backingPath !== undefined && news.backingPath !== "") {
    c.field("backingPath", absPath);
  }
  c.field("sizeGiB", int(1, 65536));
  c.field("stack", str(STACK_PATTERN, "a Pulumi stack name"));
  return { inputs: news, failures: c.failures };
}

/** Keys whose change replaces a volume; `host` is the daemon the URI reaches (see pool.ts `hostOf`). */
export const VOLUME_REPLACE_KEYS = ["host", "pool", "name", "backingPath", "sizeGiB", "stack", "poolDir"] as const;

function normalizeVolume(olds: Record<string, unknown>, news: Record<string, unknown>): Compared {
  return {
    olds: { ...olds, host: hostOf(olds.uri), poolDir: olds.poolDir ?? "" },
    news: { ...news, host: hostOf(news.uri), backingPath: news.backingPath ?? "", poolDir: "" },
  };
}

/** The volume provider; one instance shared by every {@link Volume} (serialized once). */
export const volumeProvider = libvirtProvider<VolumeInputs, VolumeOutputs>({
  check: checkVolume,
  normalize: normalizeVolume,
  replaceKeys: VOLUME_REPLACE_KEYS,
  updateKeys: ["uri"],
  create: createVol,
  read: readVol,
  delete: deleteVol,
});

/**
 * A qcow2 volume in the stack's pool (`pulumi-nodejs:dynamic/libvirt:Volume`). The id is its path
 * on the libvirt host. Pass its `path` to `Domain.diskPath`, so a replaced volume replaces the domain.
 */
export const Volume = dynamicResource<VolumeArgs, VolumeOutputs>(
  volumeProvider,
  { module: "libvirt", type: "Volume" },
  { outputs: ["path", "backingPath"] },
);
export type Volume = InstanceType<typeof Volume>;
