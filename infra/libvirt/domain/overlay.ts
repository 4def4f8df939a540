/** Emptying a node's qcow2 overlay before its VM boots (a {@link Domain} with `freshDisk`), through libvirt. */
import { createVolume, deleteVolume, volumeFacts } from "../storage";

/**
 * Makes the qcow2 overlay volume at `disk` (in `pool`) empty again: reads its backing image, backing
 * format and virtual size (`vol-dumpxml`), deletes it and creates it anew with the same
 * `<backingStore>` (mode 0600: it will hold the guest's keys). libvirt cannot rename a volume, so
 * there is no build-aside-and-rename: when the re-create fails, the error says the disk is gone and
 * how to get it back.
 */
export async function resetOverlay(uri: string, pool: string, disk: string, action: string): Promise<void> {
  const facts = await volumeFacts(uri, undefined, disk);
  if (facts === undefined) {
    throw new Error(
      `${action} failed: its disk ${disk} is not a volume libvirt knows. Nothing was created. Fix: the node's Volume creates it; run \`pulumi up --refresh\`.`,
    );
  }
  if (
    facts.format !== "qcow2" ||
    facts.backingPath === undefined ||
    (facts.backingFormat !== undefined && facts.backingFormat !== "qcow2")
  ) {
    throw new Error(
      `${action} failed: freshDisk needs a qcow2 overlay, but ${disk} is ${facts.format ?? "of unknown format"} without a backing file. ` +
        "Nothing was created. Fix: make the disk a Volume with a backingPath, or leave freshDisk unset to boot the disk as it is.",
    );
  }
  const backing = { path: facts.backingPath, format: "qcow2" as const };
  await deleteVolume(uri, pool, facts.name);
  try {
    await createVolume(uri, pool, { name: facts.name, capacityBytes: facts.capacityBytes, format: "qcow2", backing });
  } catch (error) {
    throw new Error(
      `${action} failed: emptying its disk ${disk} deleted the old overlay, but creating the new one failed: ${(error as Error).message} ` +
        "Nothing was defined. Fix: repair the cause, then `pulumi up --refresh` recreates the disk.",
      { cause: error },
    );
  }
}
