// The Network resource through the real Pulumi engine (Automation API, inline program, file
// backend): up, a no-op second up, `refresh` after the network was deleted by hand (the blank id
// from `read` drops it from the state), `up` recreating it, `refresh` with libvirtd unreachable
// (fails and keeps the state), and destroy leaving nothing. This settles, for our provider, what
// the dynamic-provider docs leave open about `read` (pulumi/pulumi#20186: a blank id means deleted).
//
// Needs a `pulumi` CLI on PATH: eval "$(bash scripts/toolchain.sh)" (what .ci/run does).
// Suffix .engine, the heaviest of its needs: the real engine; it also needs libvirtd and root.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";

import { Network } from "../../infra/libvirt/network";
import { engineEnv, inlineStack, pulumiOnPath, tempDir } from "../engine/support";
import { URI, assertNothingLeft, sweep, tempFile, virsh } from "./support";

const PREFIX = "cl-t-eng";
const NAME = "cl-t-eng-net";

test.before(() => sweep(PREFIX));
test.after.always(() => sweep(PREFIX));

test.serial(
  "through the engine: up, no-op up, refresh drops a network deleted by hand, up recreates it, refresh with libvirtd down keeps it, destroy",
  async (t) => {
    pulumiOnPath();
    // virsh for the provider host: the real one, or a dead socket while the flag file exists.
    const flag = path.join(tempDir(t, "flag"), "down");
    const shim = tempFile(
      "virsh",
      `#!/usr/bin/env bash\nif [[ -e ${flag} ]]; then shift 2; exec virsh -c 'qemu:///system?socket=/nonexistent/cl-t-sock' "$@"; fi\nexec virsh "$@"\n`,
    );
    fs.chmodSync(shim, 0o755);
    const envVars: Record<string, string> = { ...engineEnv(tempDir(t, "backend")), VIRSH_BIN: shim };
    // Changed between runs: reservations (an in-place update) and the gateway (a replacement).
    let hosts = 1;
    let gateway = "192.168.197.1";
    const program = (): Promise<Record<string, unknown>> => {
      const net = new Network("net", {
        uri: URI,
        networkName: NAME,
        bridgeName: "cl-t-eng-br",
        cidr: "192.168.197.0/24",
        gateway,
        hosts: Array.from({ length: hosts }, (_, i) => ({
          mac: `52:54:00:c1:c5:0${i + 1}`,
          ip: `192.168.197.${11 + i}`,
          hostname: `node-${i + 1}`,
        })),
        stack: "cl-t-eng",
      });
      return Promise.resolve({ uuid: net.uuid, bridge: net.bridgeName });
    };
    const stack = await inlineStack(t, {
      stackName: "cl-t-eng",
      projectName: "cilium-lab-libvirt-engine-test",
      program,
      envVars,
    });
    const inState = async (): Promise<number> =>
      ((await stack.exportStack()).deployment as { resources?: { type: string }[] }).resources?.filter(
        (r) => r.type === "pulumi-nodejs:dynamic/libvirt:Network",
      ).length ?? 0;

    const up = await stack.up();
    t.deepEqual(up.summary.resourceChanges, { create: 2 });
    const uuid = up.outputs.uuid?.value as string;
    t.is(virsh("net-uuid", NAME).trim(), uuid);
    t.deepEqual((await stack.up()).summary.resourceChanges, { same: 2 }, "a second up changes nothing");

    virsh("net-destroy", NAME);
    virsh("net-undefine", NAME);
    const refresh = await stack.refresh();
    t.deepEqual(refresh.summary.resourceChanges, { delete: 1, same: 1 }, "refresh drops the network deleted by hand");
    t.is(await inState(), 0);

    const again = await stack.up();
    t.deepEqual(again.summary.resourceChanges, { create: 1, same: 1 }, "the next up recreates it");
    t.true(virsh("net-list", "--name").includes(NAME));

    fs.writeFileSync(flag, "");
    const failed = await t.throwsAsync(stack.refresh());
    t.regex(
      failed?.message ?? "",
      /reading libvirt network "cl-t-eng-net" \([0-9a-f-]{36}\) failed: cannot reach libvirt at qemu:\/\/\/system: Failed to connect socket to '\/nonexistent\/cl-t-sock'/,
    );
    t.is(await inState(), 1, "libvirtd down never drops the network from the state");
    fs.rmSync(flag);

    hosts = 2;
    t.deepEqual(
      (await stack.up()).summary.resourceChanges,
      { update: 1, same: 1 },
      "a new reservation is an in-place update",
    );
    t.is(virsh("net-uuid", NAME).trim(), (await stack.outputs()).uuid?.value, "same network");
    t.is(fs.readFileSync(`/var/lib/libvirt/dnsmasq/${NAME}.hostsfile`, "utf8").trim().split("\n").length, 2);

    gateway = "192.168.197.254";
    const replaced = await stack.up();
    t.deepEqual(
      replaced.summary.resourceChanges,
      { replace: 1, same: 1 },
      "a new gateway replaces, deleting first (same name)",
    );
    t.not(replaced.outputs.uuid?.value, uuid);
    t.regex(virsh("net-dumpxml", NAME), /<ip address='192\.168\.197\.254' prefix='24'>/);

    t.deepEqual((await stack.destroy()).summary.resourceChanges, { delete: 2 });
    assertNothingLeft(t, PREFIX);
  },
);
