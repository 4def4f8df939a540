/**
 * Issue 14 K2 and K3 end to end: the real engine (Go-built pulumi), the Kubernetes plugin built from
 * tools/pulumi-kubernetes (provider commit f47bc2d6f199, used only under its own version) and a real
 * kube-apiserver on loopback (test/support/control-plane.ts). No pods run.
 *
 * The commands are the README's, through scripts/lab.sh itself: the test project is a temp dir whose
 * `scripts` links the repo's scripts/, so lab.sh (and scripts/recover.ts, which it runs) work on
 * it as on the lab. The program has the lab's Kubernetes shapes (infra/index.ts): one explicit
 * Provider from the `kubeconfig` a k3s install gives, a Helm Release `cilium` in kube-system
 * (`deleteBeforeReplace`, `deletedWith` the server VM) of the test chart test/k8s/charts/cilium-shaped,
 * an object beside it, and the `kubeconfig` stack output. The server VM is a stand-in (a dynamic
 * resource that exists while its file does).
 *
 * Run under the heavy lock: `flock /tmp/cilium-lab-heavy.lock npm test -- test/k8s/recovery.engine.test.ts`.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import test, { type ExecutionContext } from "ava";

import { type ControlPlane, k8sPluginVersion, startControlPlane, waitFor } from "../support/control-plane";
import { engineEnv, REPO_ROOT, tempDir } from "../engine/support";
import { decodeRelease } from "../../scripts/recover/helm-storage";

const STACK = "rec";
const CHART = path.join(REPO_ROOT, "test", "k8s", "charts", "cilium-shaped");

const PROGRAM = `
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const k8s = require("@pulumi/kubernetes");
const cfg = new pulumi.Config();
const version = cfg.require("pluginVersion");
const vmFile = cfg.require("vmFile");
// Stand-in for node-1's VM: exists while its file does (a VM deleted by hand is gone on refresh).
const vmProvider = {
  async create(inputs) { require("fs").writeFileSync(inputs.file, "vm"); return { id: "node-1", outs: inputs }; },
  async read(id, props) { return require("fs").existsSync(props.file) ? { id, props } : { id: undefined, props: undefined }; },
  async delete(id, props) { require("fs").rmSync(props.file, { force: true }); },
};
const serverVm = new pulumi.dynamic.Resource(vmProvider, "node-1", { file: vmFile });
// What k3s's install gives: the kubeconfig of the cluster on node-1 (read once per run).
const kubeconfig = pulumi.secret(fs.readFileSync(cfg.require("kubeconfigFile"), "utf8"));
// As in infra/index.ts, unless a test asks for objects that destroy must delete through the provider.
const deletedWith = cfg.getBoolean("deletedWithVm") === false ? {} : { deletedWith: serverVm };
const provider = new k8s.Provider("k8s", { kubeconfig }, { version, dependsOn: [serverVm] });
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

interface Project {
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly kubeconfigFile: string;
  readonly vmFile: string;
}

function makeProject(t: ExecutionContext): Project {
  const dir = tempDir(t, "recovery-project");
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  symlinkSync(path.join(REPO_ROOT, "scripts"), path.join(dir, "scripts"), "dir");
  mkdirSync(path.join(dir, "stacks"));
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
  };
}

/** `bash scripts/lab.sh <args>` in the project, as `npm run lab -- <args>` runs it. */
function lab(p: Project, args: string[]): SpawnSyncReturns<string> {
  return spawnSync("bash", [path.join(p.dir, "scripts", "lab.sh"), ...args], {
    cwd: p.dir,
    env: p.env,
    encoding: "utf8",
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}

function labOk(t: ExecutionContext, p: Project, args: string[]): string {
  const r = lab(p, args);
  t.is(r.status, 0, `lab.sh ${args.join(" ")}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  if (r.status !== 0) {
    throw new Error(`lab.sh ${args.join(" ")} exited ${r.status}`);
  }
  return `${r.stdout}\n${r.stderr}`;
}

function configure(t: ExecutionContext, p: Project, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    labOk(t, p, ["config", STACK, "set", key, value]);
  }
}

interface Revision {
  version: number;
  status: string;
  description?: string;
  labelStatus?: string;
}

/** Helm's storage for release kube-system/cilium, oldest first. */
async function revisions(cp: ControlPlane): Promise<Revision[]> {
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

/** Every listable object's name (group/resource ns/name), Events aside: what a cluster holds. */
async function listings(cp: ControlPlane): Promise<string[]> {
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

const planes: ControlPlane[] = [];
test.after.always(async () => {
  for (const cp of planes) {
    await cp.stop();
  }
});

/** A new cluster behind `port` (new CA, empty etcd), and its kubeconfig where k3s would leave it. */
async function newCluster(p: Project, port?: number): Promise<{ cp: ControlPlane; fresh: string[] }> {
  const cp = await startControlPlane(port === undefined ? {} : { apiPort: port });
  planes.push(cp);
  writeFileSync(p.kubeconfigFile, cp.kubeconfig, { mode: 0o600 });
  // The controller-manager makes each namespace's `default` ServiceAccount and the root CA ConfigMap shortly after start.
  const fresh = await waitFor("the fresh cluster's listings to settle", 60_000, async () => {
    const a = await listings(cp);
    await new Promise((r) => setTimeout(r, 3000));
    const b = await listings(cp);
    return JSON.stringify(a) === JSON.stringify(b) && a.some((n) => n.includes("kube-root-ca.crt")) ? b : undefined;
  });
  return { cp, fresh };
}

/** PIDs of every process below `root` (from /proc's PPid), deepest last. */
function descendants(root: number): number[] {
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

const port = (cp: ControlPlane): number => Number(new URL(cp.server).port);

test.serial(
  "K2: after the cluster behind the server URL is replaced (new CA, empty etcd), `lab.sh up` recovers and the README's `lab.sh up --refresh` recovers; a down cluster whose VM still exists keeps its objects in state, one whose VM is gone is dropped and `up` recreates them",
  async (t) => {
    t.timeout(40 * 60_000);
    const p = makeProject(t);
    let { cp } = await newCluster(p);
    configure(t, p, {
      pluginVersion: k8sPluginVersion(),
      chart: CHART,
      kubeconfigFile: p.kubeconfigFile,
      vmFile: p.vmFile,
      routingMode: "vxlan",
      operatorReplicas: "0",
    });
    labOk(t, p, ["up", STACK, "--yes", "--skip-preview"]);
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status]),
      [[1, "deployed"]],
    );

    // k3s reinstalled: same URL, new CA, empty cluster. The old code failed here on the Release's
    // delete: `can't delete Helm Release with unreachable cluster ... x509`.
    const url = cp.server;
    await cp.stop();
    ({ cp } = await newCluster(p, port(cp)));
    t.is(cp.server, url);
    const upOut = labOk(t, p, ["up", STACK, "--yes", "--skip-preview"]);
    t.regex(upOut, /is a new cluster \(its certificate is not signed by the CA in the stack's kubeconfig/);
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status]),
      [[1, "deployed"]],
    );
    t.is((await cp.request("GET", "/api/v1/namespaces/default/configmaps/lab-beside")).status, 200);

    // The README's refresh path, again on a new cluster behind the same URL.
    await cp.stop();
    ({ cp } = await newCluster(p, port(cp)));
    labOk(t, p, ["up", STACK, "--refresh", "--yes", "--skip-preview"]);
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status]),
      [[1, "deployed"]],
    );
    t.is((await cp.request("GET", "/api/v1/namespaces/default/configmaps/lab-beside")).status, 200);

    // The cluster does not answer but its server VM exists (a stopped VM): nothing is dropped, the
    // refresh fails with the provider's reason and the state keeps every Kubernetes resource.
    await cp.stop();
    const down = lab(p, ["refresh", STACK, "--yes", "--skip-preview"]);
    t.not(down.status, 0);
    t.regex(down.stdout + down.stderr, /unreachable cluster/);
    const state = (): string =>
      spawnSync("bash", [path.join(p.dir, "scripts", "lab.sh"), "output", STACK, "--json"], {
        cwd: p.dir,
        env: p.env,
        encoding: "utf8",
      }).stdout;
    t.regex(state(), /releaseStatus/);

    // node-1's VM deleted by hand: the README's refresh drops what went with it, then `up` rebuilds.
    rmSync(p.vmFile);
    const refreshed = labOk(t, p, ["refresh", STACK, "--yes", "--skip-preview"]);
    t.regex(refreshed, /no longer exists; dropping 2 Kubernetes resource\(s\) from state/);
    ({ cp } = await newCluster(p, Number(new URL(url).port)));
    labOk(t, p, ["up", STACK, "--yes", "--skip-preview"]);
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status]),
      [[1, "deployed"]],
    );
    labOk(t, p, ["destroy", STACK, "--yes", "--skip-preview"]);
  },
);

test.serial(
  "K3: an `up` SIGKILLed during the Release's wait leaves Helm's revision pending-upgrade; `lab.sh recover` refuses while the orphaned Kubernetes plugin still runs, then rolls back to the last deployed revision without helm, refreshes, and the next `up` upgrades cleanly; `destroy` then leaves the apiserver's listings equal to a fresh cluster's, Events aside",
  async (t) => {
    t.timeout(40 * 60_000);
    const p = makeProject(t);
    const { cp, fresh } = await newCluster(p);
    // No deletedWith here: destroy must delete the release and its objects through the provider
    // (the lab's deletedWith server VM skips those deletes because the cluster goes with the VM).
    configure(t, p, {
      pluginVersion: k8sPluginVersion(),
      chart: CHART,
      kubeconfigFile: p.kubeconfigFile,
      vmFile: p.vmFile,
      routingMode: "vxlan",
      operatorReplicas: "0",
      deletedWithVm: "false",
    });
    labOk(t, p, ["up", STACK, "--yes", "--skip-preview"]);

    // An upgrade whose wait never ends (1 operator replica, maxUnavailable 0, no node), killed hard.
    configure(t, p, { operatorReplicas: "1" });
    const child = spawn("bash", [path.join(p.dir, "scripts", "lab.sh"), "up", STACK, "--yes", "--skip-preview"], {
      cwd: p.dir,
      env: p.env,
      stdio: "ignore",
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await waitFor("Helm revision 2 pending-upgrade", 5 * 60_000, async () =>
      (await revisions(cp)).some((r) => r.version === 2 && r.status === "pending-upgrade") ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 3000));
    // SIGKILL to the engine and every process under it, by PID: the CLI starts each plugin in a
    // process group of its own, so a group kill would leave the Kubernetes plugin waiting on (and
    // later finishing) the upgrade.
    // lab.sh execs the CLI, so child.pid is the CLI. Kill it alone first: recover must refuse while
    // the orphaned plugin could still record the upgrade.
    const tree = descendants(child.pid ?? 0);
    const killTree = (): void => {
      for (const pid of tree) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    };
    t.teardown(killTree);
    t.true(tree.length >= 3, `processes under lab.sh: ${tree.join(" ")}`);
    process.kill(child.pid ?? 0, "SIGKILL");
    await exited;
    const refused = lab(p, ["recover", STACK]);
    t.is(refused.status, 1, refused.stdout + refused.stderr);
    t.regex(
      refused.stderr,
      /an engine for stack rec is still running here, and could still change the release:\n(.|\n)*\n {2}\d+ pulumi-resource-kubernetes (.|\n)*Let it finish, or stop each by its PID/,
    );
    killTree();
    await waitFor("the engine's processes to be gone", 15_000, () =>
      Promise.resolve(
        tree.some((pid) => {
          try {
            process.kill(pid, 0);
            return true;
          } catch {
            return false;
          }
        })
          ? undefined
          : true,
      ),
    );
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status]),
      [
        [1, "deployed"],
        [2, "pending-upgrade"],
      ],
    );

    // The stuck release is seen, not hidden: `up` fails until it is recovered.
    const stuck = lab(p, ["up", STACK, "--yes", "--skip-preview"]);
    t.not(stuck.status, 0);
    t.regex(stuck.stdout + stuck.stderr, /the stack is currently locked/);
    t.log(
      `up before recover:\n${(stuck.stdout + stuck.stderr)
        .split("\n")
        .filter((l) => /error/i.test(l))
        .join("\n")}`,
    );

    const recovered = labOk(t, p, ["recover", STACK]);
    t.regex(recovered, /revision 2 was pending-upgrade; rolled back to revision 1 as revision 3 \(deployed\)/);
    t.deepEqual(
      (await revisions(cp)).map((r) => [r.version, r.status, r.labelStatus]),
      [
        [1, "superseded", "superseded"],
        [2, "superseded", "superseded"],
        [3, "deployed", "deployed"],
      ],
    );
    t.is((await revisions(cp))[2]?.description, "Rollback to 1");
    const operator = (await cp.request("GET", "/apis/apps/v1/namespaces/kube-system/deployments/cilium-operator"))
      .body as { spec: { replicas: number } };
    t.is(operator.spec.replicas, 0);

    // A clean `up`: Helm accepts the upgrade again (no "another operation is in progress").
    configure(t, p, { operatorReplicas: "0", routingMode: "native" });
    labOk(t, p, ["up", STACK, "--yes", "--skip-preview"]);
    const revs = await revisions(cp);
    t.deepEqual(revs[revs.length - 1], {
      version: 4,
      status: "deployed",
      description: "Upgrade complete",
      labelStatus: "deployed",
    });
    const config = (await cp.request("GET", "/api/v1/namespaces/kube-system/configmaps/cilium-config")).body as {
      data: Record<string, string>;
    };
    t.is(config.data["routing-mode"], "native");

    labOk(t, p, ["destroy", STACK, "--yes", "--skip-preview"]);
    // Pods and ReplicaSets go by the controller-manager's garbage collection, a moment after.
    const after = await waitFor(
      "the listings to equal the fresh cluster's",
      120_000,
      async () => {
        const now = await listings(cp);
        return JSON.stringify(now) === JSON.stringify(fresh) ? now : undefined;
      },
      async () => `now: ${JSON.stringify(await listings(cp))}\nfresh: ${JSON.stringify(fresh)}`,
    ).catch(async () => listings(cp));
    t.deepEqual(after, fresh);
  },
);
