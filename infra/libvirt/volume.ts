/**
 * `Volume`: a qcow2 disk file in the stack's pool directory — an overlay on a base image (default),
 * a full copy of a base image, or a blank disk. Mirrors `libvirt.Volume` of the retired
 * `@pulumi/libvirt` (name, pool, baseVolume, size).
 *
 * Overlays always carry an explicit backing format (`qemu-img create -F qcow2`): QEMU ≥ 6.1 refuses
 * `-b` without it because format probing of backing files is a security risk (qemu commit 497a30db).
 */
import * as pulumi from "@pulumi/pulumi";

import { dynamicResource, type CheckResult } from "../provider";
import {
  Checker,
  STACK_PATTERN,
  absPath,
  checkUri,
  int,
  resolvePoolDir,
  str,
  unsearchableAncestor,
  POOL_MARKER,
} from "./common";
import { fsp, pathExists, pathMod, runTool, toolFailure } from "./exec";
import { libvirtProvider } from "./owned";
import { buildInPool, checkPoolLocation, deletePoolFile, poolToolFailure } from "./pool-file";

/** How a {@link Volume} is made from `baseImagePath`. */
export type VolumeMode = "overlay" | "copy";

/** Inputs of {@link Volume}. */
export interface VolumeArgs {
  /** libvirt URI; only `qemu:///system` (used with `pool`). */
  readonly uri: pulumi.Input<string>;
  /**
   * The stack's pool directory (absolute). Created 0711 with a `.cilium-lab-pool.json` marker if
   * missing; an existing directory must be empty or already this stack's. Every ancestor must be
   * searchable by the qemu user (not under /root). One of `poolDir` and `pool`.
   */
  readonly poolDir?: pulumi.Input<string>;
  /** A libvirt `dir` storage pool whose target directory is used like `poolDir` (refreshed after changes). */
  readonly pool?: pulumi.Input<string>;
  /** File name inside the directory, e.g. `node-1.qcow2`. Changing it replaces the volume. */
  readonly name: pulumi.Input<string>;
  /**
   * Absolute path of a qcow2 base image without a backing file of its own. Omitted: a blank disk.
   * Pass the base resource's output (not a plain string) so replacing the base replaces the volume.
   */
  readonly baseImagePath?: pulumi.Input<string>;
  /** Virtual size in GiB (at least the base image's). Changing it replaces the volume. */
  readonly sizeGiB: pulumi.Input<number>;
  /** `overlay` (default): a thin qcow2 on top of the base; `copy`: an independent full copy (import). */
  readonly mode?: pulumi.Input<VolumeMode>;
  /** Pulumi stack that owns the pool directory (ownership stamp). */
  readonly stack: pulumi.Input<string>;
}

/** Plain inputs as the provider receives them. */
export type VolumeInputs = pulumi.Unwrap<VolumeArgs>;

/** State of a volume. */
export interface VolumeOutputs extends VolumeInputs {
  readonly poolDir: string;
  readonly pool: string;
  /** Absolute path of the qcow2 file; also the resource id. */
  readonly path: string;
  /** Base image the volume was made from; "" for a blank disk (or when an overlay's backing file vanished). */
  readonly baseImagePath: string;
  readonly mode: VolumeMode;
}

const GiB = 1024 ** 3;

interface ImageInfo {
  readonly format?: string;
  readonly "virtual-size"?: number;
  readonly "actual-size"?: number;
  readonly "backing-filename"?: string;
  readonly "full-backing-filename"?: string;
}

/** `qemu-img info -U --output=json` (force-share: the image may be in use by a running guest). */
async function imageInfo(path: string, action: string): Promise<ImageInfo> {
  const result = await runTool("qemu-img", ["info", "-U", "--output=json", path]);
  if (result.code !== 0) {
    throw toolFailure(action, result, `check that ${path} is a readable disk image`);
  }
  return JSON.parse(result.stdout) as ImageInfo;
}

async function checkBase(base: string, sizeGiB: number, volume: string, mode: VolumeMode): Promise<ImageInfo> {
  if (!(await pathExists(base))) {
    throw new Error(
      `creating volume "${volume}" failed: base image ${base} does not exist. ` +
        "Fix: let the base-image resource download it again (`pulumi up --refresh`), or check cilium-lab:imageUrl; scripts/lab-clean.sh --purge-image-cache clears a broken cache.",
    );
  }
  const info = await imageInfo(base, `inspecting base image ${base} for volume "${volume}"`);
  if (info.format !== "qcow2") {
    throw new Error(
      `creating volume "${volume}" failed: base image ${base} is ${info.format ?? "of unknown format"}, expected qcow2 (qemu-img info). ` +
        "Fix: use a qcow2 cloud image (cilium-lab:imageUrl).",
    );
  }
  if (info["backing-filename"] !== undefined) {
    throw new Error(
      `creating volume "${volume}" failed: base image ${base} has its own backing file ${info["backing-filename"]}; a base must be standalone. ` +
        `Fix: flatten it (qemu-img convert -O qcow2 ${base} <new file>).`,
    );
  }
  const blocked = await unsearchableAncestor(base);
  if (blocked !== undefined && mode === "overlay") {
    throw new Error(
      `creating volume "${volume}" failed: the qemu user (libvirt-qemu) cannot reach the backing file ${base}: ${blocked.path} has mode ${blocked.mode}. ` +
        "Fix: import the base into the pool directory first (a Volume with mode copy) and overlay that, or keep the image cache in a directory others can traverse.",
    );
  }
  const virtual = info["virtual-size"] ?? 0;
  if (virtual > sizeGiB * GiB) {
    throw new Error(
      `creating volume "${volume}" failed: sizeGiB ${sizeGiB} is smaller than the base image's virtual size ${Math.ceil(virtual / GiB)} GiB (${base}). ` +
        "Fix: raise cilium-lab:nodeDiskGiB.",
    );
  }
  return info;
}

function outputs(inputs: VolumeInputs, poolDir: string, path: string): VolumeOutputs {
  return {
    uri: inputs.uri,
    poolDir,
    pool: inputs.pool ?? "",
    name: inputs.name,
    path,
    baseImagePath: inputs.baseImagePath ?? "",
    sizeGiB: inputs.sizeGiB,
    mode: inputs.mode ?? "overlay",
    stack: inputs.stack,
  };
}

/** The `qemu-img` runs that make `part` from `base` (empty: a blank disk). */
function qemuImgSteps(base: string, mode: VolumeMode, part: string, sizeGiB: number): string[][] {
  const size = `${sizeGiB}G`;
  if (base === "") {
    return [["create", "-q", "-f", "qcow2", part, size]];
  }
  return mode === "overlay"
    ? [["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, part, size]]
    : [
        ["convert", "-q", "-O", "qcow2", base, part],
        ["resize", "-q", part, size],
      ];
}

async function createVolume(inputs: VolumeInputs): Promise<{ id: string; outs: VolumeOutputs }> {
  const path = pathMod();
  const dir = await resolvePoolDir(inputs.uri, inputs.poolDir, inputs.pool);
  const file = path.join(dir, inputs.name);
  const part = `${file}.part`;
  const mode = inputs.mode ?? "overlay";
  const base = inputs.baseImagePath ?? "";
  const what = `creating volume "${inputs.name}" in ${dir}`;
  const info = base !== "" ? await checkBase(base, inputs.sizeGiB, inputs.name, mode) : undefined;
  const needed = (mode === "copy" && info ? (info["actual-size"] ?? info["virtual-size"] ?? 0) : 0) + 1024 ** 2;
  await buildInPool({ ...inputs, dir }, what, needed, [part, file], async () => {
    for (const args of qemuImgSteps(base, mode, part, inputs.sizeGiB)) {
      const result = await runTool("qemu-img", args);
      if (result.code !== 0) {
        throw poolToolFailure(what, result, `check ${base || dir} and the qemu-img message above`);
      }
    }
    // The overlay will hold the guest's host keys and k3s token once booted: owner-only.
    // libvirt (dynamic_ownership) hands it to the qemu user while the guest runs.
    await fsp().chmod(part, 0o600);
    await fsp().rename(part, file);
  });
  return { id: file, outs: outputs(inputs, dir, file) };
}

async function readVolume(id: string, props: VolumeOutputs): Promise<{ id: string; props?: VolumeOutputs }> {
  if (!(await pathExists(id))) {
    return { id: "" };
  }
  const info = await imageInfo(id, `reading volume ${id}`);
  let baseImagePath = props.baseImagePath;
  if (props.mode === "overlay" && props.baseImagePath !== "") {
    const backing = info["full-backing-filename"] ?? info["backing-filename"] ?? "";
    // A vanished backing file leaves an unusable overlay: report no base so the next diff replaces it.
    baseImagePath = backing !== "" && (await pathExists(backing)) ? backing : "";
  }
  return {
    id,
    props: { ...props, path: id, baseImagePath, sizeGiB: Math.round((info["virtual-size"] ?? 0) / GiB) },
  };
}

function checkVolume(news: Record<string, unknown>): CheckResult {
  const c = new Checker(news);
  c.field("uri", checkUri);
  c.field("name", (v) =>
    typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(v) || v === POOL_MARKER || v.endsWith(".part")
      ? `must be a plain file name ([A-Za-z0-9._-], not ending in .part), got ${JSON.stringify(v)}`
      : undefined,
  );
  const inputs = checkPoolLocation(c, news);
  if (news.pool !== undefined && news.pool !== "") {
    c.field("pool", str(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a libvirt pool name"));
  }
  if (news.baseImagePath !== undefined && news.baseImagePath !== "") {
    c.field("baseImagePath", absPath);
  }
  c.field("sizeGiB", int(1, 65536));
  c.field("mode", (v) =>
    v === undefined || v === "overlay" || v === "copy"
      ? undefined
      : `must be overlay or copy, got ${JSON.stringify(v)}`,
  );
  if (news.mode === "copy" && (news.baseImagePath === undefined || news.baseImagePath === "")) {
    c.fail("baseImagePath", "mode copy needs a baseImagePath to copy");
  }
  c.field("stack", str(STACK_PATTERN, "a Pulumi stack name"));
  return { inputs, failures: c.failures };
}

/** Keys whose change replaces a volume (a new file); `uri` alone changes nothing on disk. */
export const VOLUME_REPLACE_KEYS = ["poolDir", "pool", "name", "baseImagePath", "sizeGiB", "mode", "stack"] as const;

/** The volume provider; one instance shared by every {@link Volume} (serialized once). */
export const volumeProvider = libvirtProvider<VolumeInputs, VolumeOutputs>({
  check: checkVolume,
  normalize: (olds, news) => ({
    olds,
    news: { ...news, mode: news.mode ?? "overlay", baseImagePath: news.baseImagePath ?? "", pool: news.pool ?? "" },
  }),
  // With `pool`, the stored poolDir is the pool's resolved target, not an input.
  replaceKeys: (news) => (news.pool !== "" ? VOLUME_REPLACE_KEYS.filter((k) => k !== "poolDir") : VOLUME_REPLACE_KEYS),
  updateKeys: ["uri"],
  create: createVolume,
  read: readVolume,
  delete: (id, props) => deletePoolFile(id, props, [`${id}.part`]),
});

/**
 * A qcow2 disk in the stack's pool directory (`pulumi-nodejs:dynamic/libvirt:Volume`). The id is the
 * file path. Deleting removes the file, and the pool directory once nothing else of the lab is in it.
 * Pass its `path` to `Domain.diskPath`, so a replaced volume replaces the domain.
 */
export const Volume = dynamicResource<VolumeArgs, VolumeOutputs>(
  volumeProvider,
  { module: "libvirt", type: "Volume" },
  {
    outputs: ["path", "poolDir", "pool", "baseImagePath", "mode"],
  },
);
export type Volume = InstanceType<typeof Volume>;
