/** Emptying a node's qcow2 overlay before its VM boots (a {@link Domain} with `freshDisk`). */
import { fsp, pathMod, removeFile, runTool, toolFailure } from "../exec";

/**
 * Makes the qcow2 overlay at `disk` empty again: a new overlay on the same backing file, backing
 * format and virtual size, written to `<disk>.part` (mode 0600: it will hold the guest's keys) and
 * renamed over the old one, so a failure leaves the old disk as it was.
 */
export async function resetOverlay(disk: string, action: string): Promise<void> {
  const info = await runTool("qemu-img", ["info", "-U", "--output=json", disk]);
  if (info.code !== 0) {
    throw toolFailure(
      `${action} (reading its disk ${disk})`,
      info,
      "check that the disk exists and is a qcow2 image (the node's Volume makes it). Nothing was created.",
    );
  }
  const image = JSON.parse(info.stdout) as {
    readonly format?: string;
    readonly "virtual-size"?: number;
    readonly "backing-filename-format"?: string;
    readonly "full-backing-filename"?: string;
  };
  const backing = image["full-backing-filename"];
  if (image.format !== "qcow2" || backing === undefined || image["virtual-size"] === undefined) {
    throw new Error(
      `${action} failed: freshDisk needs a qcow2 overlay, but ${disk} is ${image.format ?? "of unknown format"} without a backing file. ` +
        "Nothing was created. Fix: make the disk a Volume in mode overlay, or leave freshDisk unset to boot the disk as it is.",
    );
  }
  const part = `${disk}.part`;
  await removeFile(part);
  const create = await runTool("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    image["backing-filename-format"] ?? "qcow2",
    "-b",
    backing,
    part,
    String(image["virtual-size"]),
  ]);
  try {
    if (create.code !== 0) {
      throw toolFailure(
        `${action} (emptying its disk ${disk})`,
        create,
        `check ${backing} and the free space in ${pathMod().dirname(disk)}. Nothing was created; the old disk is untouched.`,
      );
    }
    await fsp().chmod(part, 0o600);
    await fsp().rename(part, disk);
  } finally {
    await removeFile(part);
  }
}
