/**
 * Helpers of the storage tests that work as an unprivileged user in group libvirt: everything goes
 * through virsh (libvirtd owns the pool directories under /var/lib/libvirt/images, 0711 root).
 */
import { virsh, virshTry } from "./support";

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** The storage pools whose names start with `prefix`. */
export function poolsWithPrefix(prefix: string): string[] {
  return lines(virsh("pool-list", "--all", "--name")).filter((n) => n.startsWith(prefix));
}

/** Removes every pool whose name starts with `prefix` and its volumes, through virsh. */
export function sweepPools(prefix: string): void {
  for (const pool of poolsWithPrefix(prefix)) {
    virshTry("pool-start", pool);
    virshTry("pool-refresh", pool);
    for (const row of lines(virshTry("vol-list", pool).stdout).slice(2)) {
      virshTry("vol-delete", "--pool", pool, row.split(/\s+/)[0] ?? "");
    }
    virshTry("pool-destroy", pool);
    virshTry("pool-delete", pool);
    virshTry("pool-undefine", pool);
  }
}

/** `virsh vol-dumpxml --pool <pool> <name>`. */
export function volumeXmlOf(pool: string, name: string): string {
  return virsh("vol-dumpxml", "--pool", pool, name);
}
