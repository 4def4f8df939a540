/**
 * A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver and
 * kube-controller-manager built from Go modules by scripts/k8s-toolchain.sh (Kubernetes v1.33.13,
 * etcd 3.5.21). No scheduler, kubelet or node: objects get real validation, admission, RBAC and
 * controller status (Deployments, ReplicaSets, namespaces, ServiceAccounts), but no pod ever runs.
 *
 * Everything lives in one temp directory (certificates made with openssl, etcd's data, logs) on
 * random free loopback ports. `stop()` ends every process by its PID and removes the directory;
 * a process exit does the same, so an aborted test run leaves nothing behind.
 *
 * The flags that worked against this build (see also the upstream reference pages
 * https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/ and
 * .../kube-controller-manager/): `--authorization-mode=RBAC --allow-privileged=true
 * --service-cluster-ip-range=10.43.0.0/16` (k3s's default service range), a client CA, a serving
 * certificate, an admin client certificate in `system:masters` (bound to cluster-admin by the RBAC
 * bootstrap policy) and a service-account key pair.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { kubeClient, type KubeRequest } from "../../infra/cilium/kube-client";
import { adminKubeconfig, makeCertificates, podSecurityAdmissionConfig } from "./control-plane-files";
import { type Components, components, sleep } from "./control-plane-processes";
import { freePort } from "./host";

export { alive } from "./control-plane-processes";
export { freePort };

const HOW_TO_BUILD = 'Build them with: eval "$(bash scripts/toolchain.sh)" && eval "$(bash scripts/k8s-toolchain.sh)"';

/** The binaries scripts/k8s-toolchain.sh exports; throws with the fix when one is not set. */
export function controlPlaneBinaries(): { etcd: string; apiserver: string; controllerManager: string } {
  const get = (name: string): string => {
    const value = process.env[name];
    if (!value) {
      throw new Error(`${name} is not set: the test control plane is built from Go modules. ${HOW_TO_BUILD}`);
    }
    return value;
  };
  return {
    etcd: get("CILIUM_LAB_ETCD"),
    apiserver: get("CILIUM_LAB_KUBE_APISERVER"),
    controllerManager: get("CILIUM_LAB_KUBE_CONTROLLER_MANAGER"),
  };
}

/** The Kubernetes plugin version scripts/k8s-toolchain.sh installed (its own, not the npm SDK's). */
export function k8sPluginVersion(): string {
  const version = process.env.CILIUM_LAB_K8S_PLUGIN_VERSION;
  if (!version) {
    throw new Error(`CILIUM_LAB_K8S_PLUGIN_VERSION is not set. ${HOW_TO_BUILD}`);
  }
  return version;
}

/** The answer of one API request: status code and parsed JSON body (text when it is not JSON). */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A running control plane; see the module comment. */
export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** A kubeconfig (YAML) with the CA and the admin (`system:masters`) client certificate inline. */
  readonly kubeconfig: string;
  readonly dir: string;
  readonly pids: { readonly etcd: number; readonly apiserver: number; readonly controllerManager: number };
  /** One request as the admin; `anonymous` sends no client certificate. */
  readonly request: (
    method: string,
    apiPath: string,
    body?: unknown,
    options?: { anonymous?: boolean },
  ) => Promise<ApiResponse>;
  /** The last lines of a component's log (for failure messages). */
  readonly logTail: Components["logTail"];
  /** Ends every process by PID (TERM, then KILL after 10 s) and removes the temp dir. Idempotent. */
  readonly stop: () => Promise<void>;
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  readonly readyTimeoutMs?: number;
  readonly apiPort?: number;
  readonly podSecurity?: "restricted";
}

/** Starts etcd, kube-apiserver and kube-controller-manager in `dir`; returns the server URL. */
async function launchAll(
  bin: ReturnType<typeof controlPlaneBinaries>,
  dir: string,
  procs: Components,
  options: ControlPlaneOptions,
): Promise<string> {
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), options.apiPort ?? (await freePort())];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const peerUrl = `http://127.0.0.1:${etcdPeer}`;
  // etcd flags: https://etcd.io/docs/v3.5/op-guide/configuration/ (--unsafe-no-fsync: test data only).
  procs.launch(
    "etcd",
    bin.etcd,
    [
      "--name=test",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    HOW_TO_BUILD,
  );
  const server = `https://127.0.0.1:${apiPort}`;
  procs.launch(
    "kube-apiserver",
    bin.apiserver,
    [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, "apiserver-certs")}`,
      "--tls-cert-file=apiserver.crt",
      "--tls-private-key-file=apiserver.key",
      "--client-ca-file=ca.crt",
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-account-key-file=sa.pub",
      "--service-account-signing-key-file=sa.key",
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      "--service-cluster-ip-range=10.43.0.0/16",
      // The `kubernetes` Service's Endpoints may not hold a loopback address (the reconciler logs
      // `may not be in the loopback range` every 10 s), so it writes none.
      "--endpoint-reconciler-type=none",
      `--audit-log-path=${path.join(dir, "audit.log")}`,
      ...(options.podSecurity === undefined
        ? []
        : [`--admission-control-config-file=${podSecurityAdmissionConfig(dir, options.podSecurity)}`]),
    ],
    HOW_TO_BUILD,
  );
  writeFileSync(path.join(dir, "kubeconfig"), adminKubeconfig(server, dir), { mode: 0o600 });
  // --secure-port=0: the controller-manager serves no HTTPS of its own (nothing here scrapes it).
  procs.launch(
    "kube-controller-manager",
    bin.controllerManager,
    [
      "--kubeconfig=kubeconfig",
      "--secure-port=0",
      "--leader-elect=false",
      "--service-account-private-key-file=sa.key",
      "--root-ca-file=ca.crt",
      "--use-service-account-credentials=false",
    ],
    HOW_TO_BUILD,
  );
  return server;
}

/** The admin's and an anonymous client of the control plane in `dir`, 30 s per request, every status resolved. */
function requester(server: string, dir: string): ControlPlane["request"] {
  const read = (file: string): Buffer => readFileSync(path.join(dir, file));
  const ca = read("ca.crt");
  const admin = kubeClient({ server, ca, cert: read("admin.crt"), key: read("admin.key") }, { timeoutMs: 30_000 });
  const anonymous = kubeClient({ server, ca }, { timeoutMs: 30_000 });
  return async (method, apiPath, body, opts = {}) => {
    const send: KubeRequest = opts.anonymous ? anonymous.request : admin.request;
    const { status, body: parsed } = await send(method, apiPath, body);
    return { status, body: parsed };
  };
}

/** Polls /readyz until it answers `ok`; fails when a component exits or the bound passes. */
async function waitReady(
  server: string,
  procs: Components,
  request: ControlPlane["request"],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  for (;;) {
    const exited = procs.exited();
    if (exited !== undefined) {
      throw new Error(exited);
    }
    const answer = await request("GET", "/readyz").catch((error: unknown) => ({ status: 0, body: String(error) }));
    if (answer.status === 200 && answer.body === "ok") {
      return;
    }
    last = `${answer.status} ${String(answer.body)}`;
    if (Date.now() > deadline) {
      throw new Error(
        `kube-apiserver at ${server} was not ready in ${timeoutMs / 1000} s (last /readyz: ${last}); its log:\n${procs.logTail("kube-apiserver")}`,
      );
    }
    await sleep(500);
  }
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager and waits until /readyz answers `ok`.
 * `apiPort`: serve on this port instead of a free one — after `stop()` of another control plane,
 * a new cluster behind the same URL (new CA, empty etcd), as a reinstalled k3s or a replaced
 * server VM gives (test/k8s/recovery*.engine.test.ts).
 *
 * `podSecurity: "restricted"`: a cluster-wide Pod Security default of `enforce: restricted` (and
 * audit, warn), through `--admission-control-config-file` with a `PodSecurity` plugin configuration
 * (https://kubernetes.io/docs/tasks/configure-pod-container/enforce-standards-admission-controller/,
 * `pod-security.admission.config.k8s.io/v1` `PodSecurityConfiguration`), as hardened clusters set it.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = controlPlaneBinaries(); // fails with the fix before anything is created
  const dir = mkdtempSync(path.join(os.tmpdir(), "cilium-lab-control-plane-"));
  const procs = components(dir);
  try {
    makeCertificates(dir);
    const server = await launchAll(bin, dir, procs, options);
    const request = requester(server, dir);
    await waitReady(server, procs, request, options.readyTimeoutMs ?? 180_000);
    return {
      server,
      kubeconfig: readFileSync(path.join(dir, "kubeconfig"), "utf8"),
      dir,
      pids: {
        etcd: procs.pid("etcd"),
        apiserver: procs.pid("kube-apiserver"),
        controllerManager: procs.pid("kube-controller-manager"),
      },
      request,
      logTail: procs.logTail,
      stop: procs.stop,
    };
  } catch (error) {
    await procs.stop();
    throw error;
  }
}

/** Polls `check` every 500 ms until it returns a value other than undefined; throws `describe()` on timeout. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  describe: () => Promise<string> | string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}. ${await describe()}`);
    }
    await sleep(500);
  }
}
