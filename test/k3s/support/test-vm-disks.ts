/**
 * The test VM's storage, all through libvirt (so it works as an unprivileged member of group
 * libvirt): the test image uploaded once per host into the lab's shared base pool (the same base
 * volume the lab itself uses for that image), a pool of the VM's own holding a qcow2 overlay on it,
 * the NoCloud seed (built by `cloud-localds` in the VM's private key directory, then uploaded) and
 * the serial console log, which is read back with `vol-download`.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { baseVolumeName, ensureBasePool, ensureUploaded } from "../../../infra/libvirt/base-image/volume";
import {
  BASE_POOL,
  createVolume,
  downloadVolume,
  ensureDirPool,
  poolTargetPath,
  refreshPool,
  uploadVolume,
  volumePath,
} from "../../../infra/libvirt/storage";
import { parseVolumeList } from "../../../infra/libvirt/storage-xml";
import { renderMetaData, renderNetworkConfig, renderUserData } from "../../../infra/nodes/cloud-init";

/** What the disks need to know about the VM. */
export interface DiskPlan {
  readonly uri: string;
  /** The VM's name: also its pool's. */
  readonly name: string;
  readonly hostname: string;
  readonly mac: string;
  /** The private (0700) local directory for keys and the seed's sources. */
  readonly keyDir: string;
}

/** The paths on the libvirt host the domain XML names. */
export interface VmDisks {
  readonly disk: string;
  readonly seed: string;
  readonly console: string;
}

/** The VM's pool (libvirtd creates its directory), the overlay on the shared base volume, the seed. */
export async function makeDisks(
  plan: DiskPlan,
  image: string,
  keys: { userPub: string; hostPriv: string; hostPub: string },
): Promise<VmDisks> {
  const { uri, name, hostname, mac, keyDir } = plan;
  await ensureBasePool(uri, BASE_POOL);
  const sha256 = execFileSync("sha256sum", [image], { encoding: "utf8" }).split(" ")[0] ?? "";
  const baseName = baseVolumeName(sha256);
  await ensureUploaded(uri, BASE_POOL, baseName, image, statSync(image).size);
  const base = await volumePath(uri, BASE_POOL, baseName);
  if (base === undefined) {
    throw new Error(`base volume ${baseName} missing from pool ${BASE_POOL} right after its upload`);
  }
  await ensureDirPool(uri, name, poolTargetPath(name));
  const disk = await createVolume(uri, name, {
    name: "disk.qcow2",
    capacityBytes: 8 * 1024 ** 3,
    format: "qcow2",
    backing: { path: base, format: "qcow2" },
  });
  const file = (f: string): string => join(keyDir, f);
  writeFileSync(
    file("user-data"),
    renderUserData({
      hostname,
      authorizedKeys: [keys.userPub],
      hostKey: { privateKey: keys.hostPriv, publicKey: keys.hostPub },
    }),
    { mode: 0o600 },
  );
  writeFileSync(file("meta-data"), renderMetaData({ instanceId: name, hostname }));
  writeFileSync(file("network-config"), renderNetworkConfig({ mac }));
  execFileSync("cloud-localds", ["-N", file("network-config"), file("seed.iso"), file("user-data"), file("meta-data")]);
  chmodSync(file("seed.iso"), 0o600);
  const seed = await uploadVolume(uri, name, "seed.iso", file("seed.iso"));
  rmSync(file("seed.iso"));
  return { disk, seed, console: `${poolTargetPath(name)}/console.log` };
}

/** The last lines of the console log (a file libvirt writes in the VM's pool), through libvirt. */
export async function consoleTail(plan: DiskPlan, lines = 25): Promise<string> {
  try {
    await refreshPool(plan.uri, plan.name);
    const local = join(plan.keyDir, "console.log");
    await downloadVolume(plan.uri, plan.name, "console.log", local);
    return readFileSync(local, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no console log)";
  }
}

/** Removes the VM's pool with every volume in it (synchronously: also from exit handlers). */
export function removePoolSync(uri: string, pool: string): void {
  const virsh = (...args: string[]): string => {
    try {
      return execFileSync("virsh", ["-c", uri, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch {
      return "";
    }
  };
  virsh("pool-refresh", pool);
  for (const v of parseVolumeList(virsh("vol-list", pool))) {
    virsh("vol-delete", v.name, "--pool", pool);
  }
  virsh("pool-destroy", pool);
  virsh("pool-delete", pool);
  virsh("pool-undefine", pool);
}
