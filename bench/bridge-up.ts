/**
 * One timed `pulumi up` of the nodes layer in bridge mode, for bench/bridge-boot.ts, which starts
 * it as root or as the unprivileged user. Prints one JSON line `{mode, up_s, ssh_logins}` on stdout
 * after destroying the stack again (not timed). Mode `ssh` first starts a private sshd on 127.0.0.1
 * as the calling user (test/libvirt/sshd-harness.ts) and points libvirtUri at it, so every libvirt
 * call of the up goes through qemu+ssh to the same libvirtd.
 *
 * usage: node --import tsx bench/bridge-up.ts '<json: BridgeUpArgs>'
 */
import { startSshd, type Sshd } from "../test/libvirt/sshd-harness";
import { logger, nodesConfig, nodesStack, timedUp } from "./lib";

/** What bench/bridge-boot.ts passes. */
export interface BridgeUpArgs {
  readonly mode: "root" | "user" | "ssh";
  readonly stack: string;
  readonly bridge: string;
  readonly cidr: string;
  readonly gateway: string;
  readonly nodes: number;
  readonly accel: "kvm" | "qemu";
  readonly image: string;
  readonly sha256: string;
  readonly cacheDir: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as BridgeUpArgs;
  const log = logger(`bench/bridge-up ${args.mode}`);
  let sshd: Sshd | undefined;
  if (args.mode === "ssh") {
    sshd = await startSshd();
    sshd.trustHostKey();
  }
  try {
    const raw = {
      ...nodesConfig({ image: args.image, sha256: args.sha256 }, args.accel, args.nodes),
      networkMode: "bridge",
      bridge: args.bridge,
      networkCidr: args.cidr,
      gateway: args.gateway,
      ...(sshd === undefined ? {} : { libvirtUri: sshd.uri() }),
    };
    const { stack, dispose } = await nodesStack({ stack: args.stack, raw, cacheDir: args.cacheDir, log });
    let upS: number;
    try {
      upS = await timedUp(stack);
    } finally {
      await dispose();
    }
    const logins = sshd === undefined ? 0 : (sshd.log().match(/Accepted publickey for /g) ?? []).length;
    if (sshd !== undefined && logins === 0) {
      throw new Error(
        `mode ssh: the up succeeded but the sshd log shows no login, so it did not go through ssh:\n${sshd.log()}`,
      );
    }
    process.stdout.write(`${JSON.stringify({ mode: args.mode, up_s: Number(upS.toFixed(1)), ssh_logins: logins })}\n`);
  } finally {
    await sshd?.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`[bench/bridge-up] error: ${(e as Error).message}\n`);
  process.exit(1);
});
