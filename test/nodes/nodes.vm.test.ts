/**
 * The nodes layer with the real engine (Automation API, inline program, file backend), real
 * libvirtd and real TCG guests booted from the Debian test image passed as `image: custom` with a
 * `file://` URL and its SHA-256 — the path users take with their own image.
 *
 * One lifecycle, in order: up (2 nodes: never 3 TCG guests at once on CI) → the guests really are
 * what the seed says (pinned host key accepted, another refused, hostname, modules, sysctls,
 * `cloud-init status`) → a second up changes nothing → `virsh destroy`+`undefine` of node-2, refresh
 * drops it, the next up recreates only it → destroy leaves no domain, network, storage pool or
 * bridge of the stack; the base image stays in the shared base pool (a cache, like ~/.cache).
 *
 * Runs as the unprivileged test user (a member of group libvirt; CI: CILIUM_LAB_TEST_USER) or root.
 * Needs: libvirtd (.ci/host-setup.sh), the `pulumi` CLI (eval "$(bash scripts/toolchain.sh)")
 * and the test image (TEST_IMAGE/TEST_IMAGE_SHA256, else scripts/dev/build-test-image.sh is run).
 * Names: stack `cl-n-e2e` → libvirt objects `cilium-lab-cl-n-e2e*`, network 192.168.183.0/24.
 * Suffix .vm, the heaviest of its needs: it boots VMs; it also needs the real engine and libvirtd.
 */
import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";

import type { OutputMap, Stack } from "@pulumi/pulumi/automation";

import { parseLabConfig } from "../../infra/config";
import { planLab } from "../../infra/plan";
import { baseVolumeName, cachedImagePath } from "../../infra/libvirt/base-image";
import { BASE_POOL } from "../../infra/libvirt/storage";
import { LabNodes } from "../../infra/nodes/nodes";
import { REPO_ROOT, engineEnv, inlineStack, tempDir } from "../engine/support";
import { URI, changes, leftovers, run, ssh, sweep, testImageConfig, vmTestHost, virsh } from "./vm-host";

const STACK = "cl-n-e2e";
const PREFIX = `cilium-lab-${STACK}`;
const NODE_COUNT = 2;
/** Stack + component + image, secrets, network, pool, base volume + (disk, seed, VM) per node. */
const RESOURCES = 1 + 1 + 5 + 3 * NODE_COUNT;

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

/** The test image: from the environment, else from the build script (a cache hit takes milliseconds). */
async function testImage(): Promise<{ image: string; sha256: string }> {
  let image = process.env.TEST_IMAGE ?? "";
  let sha256 = process.env.TEST_IMAGE_SHA256 ?? "";
  if (image === "" || sha256 === "") {
    const r = await run("bash", [path.join(REPO_ROOT, "scripts/dev/build-test-image.sh")], { timeoutMs: 30 * 60_000 });
    if (r.code !== 0) {
      throw new Error(
        `scripts/dev/build-test-image.sh failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-5).join(" | ")}. Fix: run it as root and read its message.`,
      );
    }
    image = /^TEST_IMAGE=(.+)$/m.exec(r.stdout)?.[1] ?? "";
    sha256 = /^TEST_IMAGE_SHA256=([0-9a-f]{64})$/m.exec(r.stdout)?.[1] ?? "";
  }
  if (image === "" || sha256 === "") {
    throw new Error('No test image. Fix: eval "$(bash scripts/dev/build-test-image.sh)" (as root).');
  }
  return { image, sha256 };
}

/** Every libvirt object this test could leave behind, by name: the stack's, and its bridge. */
async function hostLeftovers(): Promise<string[]> {
  const found = await leftovers(PREFIX);
  const links = await run("ip", ["-o", "link", "show"]);
  const bridge = planLab(
    parseLabConfig({ networkCidr: "192.168.183.0/24", nodeCount: String(NODE_COUNT) }).config,
    STACK,
  ).bridgeName;
  if (links.stdout.includes(`: ${bridge}:`)) {
    found.push(`bridge ${bridge}`);
  }
  return found;
}

/** The text of every file under `dir`, concatenated. */
async function filesText(dir: string): Promise<string> {
  let text = "";
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) {
      const file = path.join(entry.parentPath, entry.name);
      const raw = await fs.readFile(file);
      // History and backups may be gzip-compressed.
      text += file.endsWith(".gz") ? (await promisify(gunzip)(raw)).toString("utf8") : raw.toString("utf8");
    }
  }
  return text;
}

function secretValue(outputs: OutputMap, key: string): unknown {
  const o = outputs[key];
  if (!o) {
    throw new Error(`stack output ${key} missing (have ${Object.keys(outputs).join(", ")})`);
  }
  return o.value;
}

/** 1. The first up: everything created, the image copied into the cache once, no secret in plain text. */
async function firstUp(
  t: ExecutionContext,
  stack: Stack,
  img: { image: string; sha256: string },
  dirs: { cacheDir: string; backendDir: string },
): Promise<OutputMap> {
  const { cacheDir, backendDir } = dirs;
  const log: string[] = [];
  const t0 = Date.now();
  const up1 = await stack.up({ onOutput: (s) => log.push(s) });
  const upSeconds = (Date.now() - t0) / 1000;
  t.log(`first up: ${upSeconds.toFixed(0)} s`);
  // Whether the engine relays the provider's stderr progress lines (informational).
  const progressLines = log
    .join("")
    .split("\n")
    .filter((l) => l.includes("[cilium-lab] base image"));
  t.log(
    `progress lines the engine showed: ${progressLines.length}${progressLines[0] ? ` (first: ${progressLines[0].trim()})` : ""}`,
  );
  t.deepEqual(changes(up1.summary.resourceChanges), { create: RESOURCES }, "first up creates everything");
  const size = (await fs.stat(img.image)).size;
  t.is(up1.outputs.downloadedBytes?.value, size, "the image was copied into the cache once");
  t.is(up1.outputs.imagePath?.value, cachedImagePath(cacheDir, img.sha256));
  t.is(await sha256File(cachedImagePath(cacheDir, img.sha256)), img.sha256);
  // Uploaded once per libvirt host: 0 bytes when an earlier run (any stack) left it in the base pool.
  t.true([0, size].includes(Number(up1.outputs.uploadedBytes?.value)), `uploaded ${up1.outputs.uploadedBytes?.value}`);
  t.is(up1.outputs.basePath?.value, await baseVolumePath(img.sha256), "overlays back onto the shared base volume");
  t.is(await basePhysicalSize(img.sha256), size, "the base volume is complete");
  t.true(up1.outputs.sshPrivateKey?.secret, "private key output is secret");
  t.true(up1.outputs.k3sToken?.secret, "token output is secret");
  t.true(up1.outputs.connection1?.secret, "connection output is secret");
  t.deepEqual(up1.outputs.nodes?.value, [
    { name: "node-1", role: "server", ip: "192.168.183.11" },
    { name: "node-2", role: "agent", ip: "192.168.183.12" },
  ]);
  t.false(up1.outputs.nodes?.secret ?? true);

  // Nothing secret in plain text in the state at rest (every file of the file backend, history and
  // backups included; `stack.exportStack()` would decrypt: it runs `pulumi stack export --show-secrets`).
  const state = await filesText(backendDir);
  t.true(state.includes("ciphertext"), "the backend holds encrypted secrets");
  const privateKey = String(secretValue(up1.outputs, "sshPrivateKey"));
  const token = String(secretValue(up1.outputs, "k3sToken"));
  t.false(state.includes(token), "k3s token in plain text in the state");
  t.false(state.includes(privateKey.split("\n")[1] ?? "x"), "private key in plain text in the state");
  t.false(log.join("").includes(token), "k3s token in the engine's output");

  return up1.outputs;
}

/** The base volume's path in the shared base pool, through libvirt (the test user cannot read the directory). */
async function baseVolumePath(sha256: string): Promise<string> {
  return (await virsh("vol-path", baseVolumeName(sha256), "--pool", BASE_POOL)).stdout.trim();
}

/** The base volume's file size (`vol-info --physical`); -1 when there is none. */
async function basePhysicalSize(sha256: string): Promise<number> {
  const r = await virsh("vol-info", baseVolumeName(sha256), "--pool", BASE_POOL, "--bytes", "--physical");
  return Number(/^Physical:\s+(\d+) bytes$/m.exec(r.stdout)?.[1] ?? -1);
}

/** 2. The guests are what the seed says; another host key for the same address is refused. */
async function checkGuests(t: ExecutionContext, work: string, outputs: OutputMap): Promise<Record<string, string>> {
  await fs.writeFile(path.join(work, "id"), String(secretValue(outputs, "sshPrivateKey")), { mode: 0o600 });
  const hostKeys = outputs.hostPublicKeys?.value as Record<string, string>;
  for (const [name, ip] of [
    ["node-1", "192.168.183.11"],
    ["node-2", "192.168.183.12"],
  ] as const) {
    const hostKey = hostKeys[name] ?? "";
    const r = await ssh(
      work,
      ip,
      hostKey,
      "hostname; cloud-init status --wait >/dev/null; echo status=$?; " +
        "for k in net/ipv4/conf/all/rp_filter net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do echo $k=$(cat /proc/sys/$k); done; " +
        "for m in br_netfilter overlay vxlan geneve; do test -d /sys/module/$m && echo mod=$m; done; sudo -n true && echo sudo=ok",
    );
    t.is(r.code, 0, `ssh ${name}: ${r.stderr}`);
    t.is(
      r.stdout,
      `${name}\nstatus=0\nnet/ipv4/conf/all/rp_filter=0\nnet/ipv4/ip_forward=1\nnet/bridge/bridge-nf-call-iptables=1\nmod=br_netfilter\nmod=overlay\nmod=vxlan\nmod=geneve\nsudo=ok\n`,
      `${name} as configured`,
    );
    // Another host key for the same address is refused: the pin is real.
    const other = hostKeys[name === "node-1" ? "node-2" : "node-1"] ?? "";
    const wrong = await ssh(work, ip, other, "true");
    t.not(wrong.code, 0);
    t.regex(wrong.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  }

  return hostKeys;
}

/** 4. A VM lost out of band: refresh drops it, the next up recreates only it. */
async function loseAndRecreate(
  t: ExecutionContext,
  stack: Stack,
  work: string,
  hostKeys: Record<string, string>,
): Promise<void> {
  const lost = `${PREFIX}-node-2`;
  t.is((await virsh("destroy", lost)).code, 0);
  t.is((await virsh("undefine", lost, "--nvram")).code, 0);
  const refresh = await stack.refresh();
  t.deepEqual(
    changes(refresh.summary.resourceChanges),
    { delete: 1, same: RESOURCES - 1 },
    "refresh drops exactly the lost VM",
  );
  const up3 = await stack.up();
  t.deepEqual(
    changes(up3.summary.resourceChanges),
    { create: 1, same: RESOURCES - 1 },
    "the next up recreates only it",
  );
  const again = await ssh(work, "192.168.183.12", hostKeys["node-2"] ?? "", "hostname");
  t.is(again.stdout, "node-2\n", again.stderr);
}

test("nodes layer with the real engine: up, verify guests, no-op up, refresh after a lost VM, recreate only it, destroy clean", async (t: ExecutionContext) => {
  t.timeout(40 * 60_000, "three TCG boots on a shared 2-core host");
  if (!(await vmTestHost(t))) {
    return;
  }
  const img = await testImage();
  await sweep(PREFIX);

  const cacheDir = tempDir(t, "nodes-cache");
  const work = tempDir(t, "nodes-ssh");
  const raw = testImageConfig(img.image, img.sha256, "192.168.183.0/24", NODE_COUNT);
  const program = (): Promise<Record<string, unknown>> => {
    const config = parseLabConfig(raw).config;
    const plan = planLab(config, STACK);
    const nodes = new LabNodes("lab", { config, plan, stack: STACK, cacheDir });
    return Promise.resolve({
      // the program's `nodes` output
      nodes: nodes.nodes.map(({ name, role, ip }) => ({ name, role, ip })),
      hostPublicKeys: nodes.hostPublicKeys,
      sshPrivateKey: nodes.sshPrivateKey,
      k3sToken: nodes.k3sToken,
      connection1: nodes.server.connection,
      imagePath: nodes.baseImage.path,
      downloadedBytes: nodes.baseImage.downloadedBytes,
      basePath: nodes.hosts.get(URI)?.base.path,
      uploadedBytes: nodes.hosts.get(URI)?.base.uploadedBytes,
    });
  };
  const backendDir = tempDir(t, "nodes-backend");
  const envVars = engineEnv(backendDir);
  const stack = await inlineStack(t, { stackName: STACK, projectName: "cl-n-engine", program, envVars });
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) {
      await stack.destroy().catch(() => undefined);
      await sweep(PREFIX);
    }
  });

  // 1. First up; 2. the guests.
  const outputs = await firstUp(t, stack, img, { cacheDir, backendDir });
  const hostKeys = await checkGuests(t, work, outputs);

  // 3. Second up: zero changes.
  const up2 = await stack.up();
  t.deepEqual(changes(up2.summary.resourceChanges), { same: RESOURCES }, "second up changes nothing");

  // 4. A VM lost out of band: refresh drops it, the next up recreates only it.
  await loseAndRecreate(t, stack, work, hostKeys);

  // 5. Destroy: nothing of the stack left on the host; the shared image cache and the base volume
  // in the shared base pool are kept on purpose (other stacks use them).
  const down = await stack.destroy();
  destroyed = true;
  t.deepEqual(changes(down.summary.resourceChanges), { delete: RESOURCES }, "destroy");
  t.deepEqual(await hostLeftovers(), [], "the host is clean");
  t.is(await sha256File(cachedImagePath(cacheDir, img.sha256)), img.sha256, "the image cache survives destroy");
  t.is(await basePhysicalSize(img.sha256), (await fs.stat(img.image)).size, "the base volume survives destroy");
});
