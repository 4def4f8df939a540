/**
 * Run by test/libvirt/unprivileged.libvirt.test.ts as another user (runuser), through the same code
 * the providers run: `node --import tsx test/libvirt/unprivileged-child.ts <mode> [<json inputs>]`.
 * Prints one JSON line: `{ ok: true, detail }` or `{ ok: false, message, cause }`.
 * - `connect <uri>`: `virsh version`, a failure turned into an error by `toolFailure` as providers do.
 * - `create-network <json>`: the Network provider's `create` with those inputs.
 * - `ensure-pool <json {uri, pool}>`: the stack pool's `ensureDirPool` (storage.ts), as StoragePool does.
 */
import { toolFailure, virsh } from "../../infra/libvirt/exec";
import { networkProvider, type NetworkInputs } from "../../infra/libvirt/network";
import { ensureDirPool, poolTargetPath } from "../../infra/libvirt/storage";

async function act(mode: string | undefined, arg: string | undefined): Promise<string> {
  if (mode === "connect" && arg !== undefined) {
    const r = await virsh(arg, ["version"]);
    if (r.code !== 0) {
      throw toolFailure("connecting to libvirt", r, "check cilium-lab:libvirtUri.", arg);
    }
    return r.stdout;
  }
  if (mode === "create-network" && arg !== undefined) {
    const created = await networkProvider.create(JSON.parse(arg) as NetworkInputs);
    return created.id;
  }
  if (mode === "ensure-pool" && arg !== undefined) {
    const { uri, pool } = JSON.parse(arg) as { uri: string; pool: string };
    return (await ensureDirPool(uri, pool, poolTargetPath(pool))).target;
  }
  throw new Error(
    `usage: unprivileged-child.ts connect <uri> | create-network <json> | ensure-pool <json>; got ${mode ?? "(nothing)"}`,
  );
}

act(process.argv[2], process.argv[3]).then(
  (detail) => process.stdout.write(`${JSON.stringify({ ok: true, detail })}\n`),
  (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    process.stdout.write(`${JSON.stringify({ ok: false, message: err.message, cause })}\n`);
  },
);
