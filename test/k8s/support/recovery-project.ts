/**
 * The project the recovery engine tests (test/k8s/recovery*.engine.test.ts) run `scripts/lab.sh` on:
 * a temp dir whose `scripts` links the repo's scripts/, so lab.sh (and scripts/recover.ts, which it
 * runs) work on it as on the lab. The program has the lab's Kubernetes shapes (infra/index.ts): one
 * explicit Provider from the `kubeconfig` a k3s install gives, a Helm Release `cilium` in kube-system
 * (`deleteBeforeReplace`, `deletedWith` the server VM) of the test chart test/k8s/charts/cilium-shaped,
 * an object beside it, and the `kubeconfig` stack output. The server VM is a stand-in (a dynamic
 * resource that exists while its file does; config `vmGeneration` replaces it, delete before
 * replace, as a config change replaces node-1's domain).
 *
 * Where the kubeconfig comes from: by default the file `kubeconfigFile`, read once per run. With
 * config `installDir`, from a stand-in for the k3s install on the server VM (a dynamic resource,
 * replaced with the VM's generation): its create asks for `install-<generation>.request` in that
 * dir and waits for `kubeconfig-<generation>.yaml`, which the test writes after it has put a cluster
 * behind the URL ({@link answerInstall}); so a test can replace the cluster in the middle of an `up`.
 */
import { type ChildProcess, spawn, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import test, { type ExecutionContext } from "ava";

import { decodeRelease } from "../../../scripts/recover/helm-storage";
import { type ControlPlane, k8sPluginVersion, startControlPlane, waitFor } from "../../support/control-plane";
import { engineEnv, REPO_ROOT, tempDir } from "../../engine/support";

export const STACK = "rec";
export const CHART = path.join(REPO_ROOT, "test", "k8s", "charts", "cilium-shaped");

const PROGRAM = `
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
const cfg = new pulumi.Config();
const version = cfg.require("pluginVersion");
const generation = cfg.get("vmGeneration") || "1";
// Stand-in for node-1's VM: exists while its file does (a VM deleted by hand is gone on refresh);
// a new generation replaces it, delete before replace, as a config change replaces the domain.
const vmProvider = {
  async create(inputs) { require("fs").writeFileSync(inputs.file, "vm"); return { id: "node-1", outs: inputs }; },
  async read(id, props) { return require("fs").existsSync(props.file) ? { id, props } : { id: undefined, props: undefined }; },
  async diff(id, olds, news) { const r = olds.generation !== news.generation; return { changes: r, replaces: r ? ["generation"] : [], deleteBeforeReplace: true }; },
  async delete(id, props) { require("fs").rmSync(props.file, { force: true }); },
};
const serverVm = new pulumi.dynamic.Resource(vmProvider, "node-1", { file: cfg.require("vmFile"), generation });
// Stand-in for the k3s install on node-1: its create waits for the test to put a cluster behind the URL.
const installProvider = {
  async create(inputs) {
    const fs = require("fs"), path = require("path");
    fs.writeFileSync(path.join(inputs.dir, "install-" + inputs.generation + ".request"), "");
    const file = path.join(inputs.dir, "kubeconfig-" + inputs.generation + ".yaml");
    for (let i = 0; i < 1200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 250));
    return { id: "k3s-" + inputs.generation, outs: { ...inputs, kubeconfig: fs.readFileSync(file, "utf8") } };
  },
  async diff(id, olds, news) { const r = olds.generation !== news.generation; return { changes: r, replaces: r ? ["generation"] : [] }; },
  async delete() {},
};
const installDir = cfg.get("installDir");
const install = installDir === undefined ? undefined : new pulumi.dynamic.Resource(installProvider, "k3s-install",
  { dir: installDir, generation, kubeconfig: undefined }, { dependsOn: [serverVm], additionalSecretOutputs: ["kubeconfig"] });
// What k3s's install gives: the kubeconfig of the cluster on node-1.
const kubeconfig = pulumi.secret(install === undefined ? fs.readFileSync(cfg.require("kubeconfigFile"), "utf8") : install.kubeconfig);
// As in infra/index.ts, unless a test asks for objects that destroy must delete through the provider.
const deletedWith = cfg.getBoolean("deletedWithVm") === false ? {} : { deletedWith: serverVm };
const provider = new k8s.Provider("k8s", { kubeconfig }, { version, dependsOn: [install || serverVm] });
const release = new k8s.helm.v3.Release("cilium-release", {
  name: "cilium",
  namespace: "kube-system",
  chart: cfg.require("chart"),
  maxHistory: 5,
  skipAwait: false,
  timeout: 900,
  values: {
    routingMode: cfg.require("routingMode"),
    // maxUnavailable 0: Helm's wait needs every operator replica ready, which never happens here (no node).
    operator: { replicas: cfg.requireNumber("operatorReplicas"), updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } },
  },
}, { provider, version, deleteBeforeReplace: true, ...deletedWith });
new k8s.core.v1.ConfigMap("beside", { metadata: { name: "lab-beside", namespace: "default" }, data: { a: "b" } }, { provider, version, ...deletedWith, dependsOn: [release] });
exports.kubeconfig = kubeconfig;
exports.releaseStatus = release.status.status;
`;

export interface Project {
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly kubeconfigFile: string;
  readonly vmFile: string;
  /** Where the k3s-install stand-in asks for and reads its kubeconfig (config `installDir`). */
  readonly installDir: string;
}

export function makeProject(t: ExecutionContext): Project {
  const dir = tempDir(t, "recovery-project");
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  symlinkSync(path.join(REPO_ROOT, "scripts"), path.join(dir, "scripts"), "dir");
  mkdirSync(path.join(dir, "stacks"));
  mkdirSync(path.join(dir, "install"));
  writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    "name: recovery-test\nruntime: nodejs\nmain: index.js\nstackConfigDir: stacks\n",
  );
  writeFileSync(path.join(dir, "index.js"), PROGRAM);
  const backend = path.join(dir, ".pulumi-state");
  mkdirSync(backend);
  return {
    dir,
    env: engineEnv(backend),
    kubeconfigFile: path.join(dir, "kubeconfig.yaml"),
    vmFile: path.join(dir, "node-1.vm"),
    installDir: path.join(dir, "install"),
  };
}

/** `bash scripts/lab.sh <args>` in the project, as `npm run lab -- <args>` runs it. */
export function lab(p: Project, args: string[]): SpawnSyncReturns<string> {
  return spawnSync("bash", [path.join(p.dir, "scripts", "lab.sh"), ...args], {
    cwd: p.dir,
    env: p.env,
    encoding: "utf8",
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The same, started in the background: the child and a promise of its exit status and output. */
export function labAsync(
  p: Project,
  args: string[],
): { child: ChildProcess; done: Promise<{ status: number | null; output: string }> } {
  const child = spawn("bash", [path.join(p.dir, "scripts", "lab.sh"), ...args], { cwd: p.dir, env: p.env });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const done = new Promise<{ status: number | null; output: string }>((resolve) =>
    child.once("exit", (status) => resolve({ status, output })),
  );
  return { child, done };
}

export function labOk(t: ExecutionContext, p: Project, args: string[]): string {
  const r = lab(p, args);
  t.is(r.status, 0, `lab.sh ${args.join(" ")}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  if (r.status !== 0) {
    throw new Error(`lab.sh ${args.join(" ")} exited ${r.status}`);
  }
  return `${r.stdout}\n${r.stderr}`;
}

export function configure(t: ExecutionContext, p: Project, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    labOk(t, p, ["config", STACK, "set", key, value]);
  }
}

/** The stack's first config: the built plugin's version, the test chart, the VM stand-in's file, vxlan, no operator replica; then `more`. */
export function configureFirst(t: ExecutionContext, p: Project, more: Record<string, string>): void {
  configure(t, p, {
    pluginVersion: k8sPluginVersion(),
    chart: CHART,
    vmFile: p.vmFile,
    routingMode: "vxlan",
    operatorReplicas: "0",
    ...more,
  });
}

export interface Revision {
  version: number;
  status: string;
  description?: string;
  labelStatus?: string;
}

/** Helm's storage for release kube-system/cilium, oldest first. */
export async function revisions(cp: ControlPlane): Promise<Revision[]> {
  const list = await cp.request(
    "GET",
    `/api/v1/namespaces/kube-system/secrets?labelSelector=${encodeURIComponent("owner=helm,name=cilium")}`,
  );
  const items = (list.body as { items: { metadata: { labels: Record<string, string> }; data: { release: string } }[] })
    .items;
  return items
    .map((s) => {
      const r = decodeRelease(s.data.release);
      return {
        version: r.version,
        status: r.info.status,
        description: r.info.description,
        labelStatus: s.metadata.labels.status,
      };
    })
    .sort((a, b) => a.version - b.version);
}

/** `[version, status]` of every stored revision, oldest first. */
export async function revisionStates(cp: ControlPlane): Promise<[number, string][]> {
  return (await revisions(cp)).map((r) => [r.version, r.status]);
}

/** Every listable object's name (group/resource ns/name), Events aside: what a cluster holds. */
export async function listings(cp: ControlPlane): Promise<string[]> {
  const groupVersions = ["/api/v1"];
  const groups = (await cp.request("GET", "/apis")).body as {
    groups: { preferredVersion: { groupVersion: string } }[];
  };
  groupVersions.push(...groups.groups.map((g) => `/apis/${g.preferredVersion.groupVersion}`));
  const names: string[] = [];
  for (const gv of groupVersions) {
    const resources = ((await cp.request("GET", gv)).body as { resources: { name: string; verbs: string[] }[] })
      .resources;
    for (const r of resources) {
      if (r.name.includes("/") || !r.verbs.includes("list") || r.name === "events") {
        continue;
      }
      const items =
        (
          (await cp.request("GET", `${gv}/${r.name}`)).body as {
            items?: { metadata: { namespace?: string; name: string } }[];
          }
        ).items ?? [];
      names.push(...items.map((i) => `${gv}/${r.name} ${i.metadata.namespace ?? ""}/${i.metadata.name}`));
    }
  }
  return names.sort();
}

/** Waits until the listings equal `fresh` (the controller-manager collects Pods and ReplicaSets a moment after a delete); returns the last listings. */
export async function listingsSettledTo(cp: ControlPlane, fresh: string[]): Promise<string[]> {
  return waitFor(
    "the listings to equal the fresh cluster's",
    120_000,
    async () => {
      const now = await listings(cp);
      return JSON.stringify(now) === JSON.stringify(fresh) ? now : undefined;
    },
    async () => `now: ${JSON.stringify(await listings(cp))}\nfresh: ${JSON.stringify(fresh)}`,
  ).catch(async () => listings(cp));
}

const planes: ControlPlane[] = [];
test.after.always(async () => {
  for (const cp of planes) {
    await cp.stop();
  }
});

/**
 * A new cluster behind `port` (new CA, empty etcd), its kubeconfig written where k3s would leave it
 * (`kubeconfigFile`, or another file), and its listings once they settle.
 */
export async function newCluster(
  p: Project,
  port?: number,
  kubeconfigFile = p.kubeconfigFile,
): Promise<{ cp: ControlPlane; fresh: string[] }> {
  const cp = await startControlPlane(port === undefined ? {} : { apiPort: port });
  planes.push(cp);
  // The controller-manager makes each namespace's `default` ServiceAccount and the root CA ConfigMap shortly after start.
  const fresh = await waitFor("the fresh cluster's listings to settle", 60_000, async () => {
    const a = await listings(cp);
    await new Promise((r) => setTimeout(r, 3000));
    const b = await listings(cp);
    return JSON.stringify(a) === JSON.stringify(b) && a.some((n) => n.includes("kube-root-ca.crt")) ? b : undefined;
  });
  writeFileSync(kubeconfigFile, cp.kubeconfig, { mode: 0o600 });
  return { cp, fresh };
}

/** Waits until the k3s-install stand-in asks for install `generation` (see the module comment). */
export async function installRequested(p: Project, generation: number): Promise<void> {
  const request = path.join(p.installDir, `install-${generation}.request`);
  await waitFor(`the k3s install stand-in to ask for install ${generation}`, 10 * 60_000, () =>
    Promise.resolve(existsSync(request) ? true : undefined),
  );
}

/** The kubeconfig file install `generation` of the k3s-install stand-in reads. */
export const installKubeconfig = (p: Project, generation: number): string =>
  path.join(p.installDir, `kubeconfig-${generation}.yaml`);

/** PIDs of every process below `root` (from /proc's PPid), deepest last. */
export function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (/^\d+$/.test(entry)) {
      try {
        const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1];
        if (ppid !== undefined) {
          parents.set(Number(entry), Number(ppid));
        }
      } catch {
        // exited meanwhile
      }
    }
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

/** The command name of a process (its argv[0]'s base name), or "" once it is gone. */
export function commandName(pid: number): string {
  try {
    return path.basename(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "");
  } catch {
    return "";
  }
}

export const port = (cp: ControlPlane): number => Number(new URL(cp.server).port);

/**
 * A new project on a new cluster, configured for its first `up` against that cluster's kubeconfig
 * (plus `more`); `fresh` is the new cluster's listings.
 */
export async function projectOnNewCluster(
  t: ExecutionContext,
  more: Record<string, string> = {},
): Promise<{ p: Project; cp: ControlPlane; fresh: string[] }> {
  const p = makeProject(t);
  const { cp, fresh } = await newCluster(p);
  configureFirst(t, p, { kubeconfigFile: p.kubeconfigFile, ...more });
  return { p, cp, fresh };
}
