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
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

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

/** A free TCP port on 127.0.0.1 (the kernel picks it; it is released before it is handed out). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error(`no port in ${String(address)}`)),
      );
    });
  });
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
  readonly logTail: (name: "etcd" | "kube-apiserver" | "kube-controller-manager", lines?: number) => string;
  /** Ends every process by PID (TERM, then KILL after 10 s) and removes the temp dir. Idempotent. */
  readonly stop: () => Promise<void>;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stderr?: Buffer };
    throw new Error(`openssl ${args.join(" ")} failed in ${dir}: ${e.stderr?.toString() ?? ""}`, { cause: error });
  }
}

/** CA, apiserver serving cert, admin client cert (O=system:masters) and the service-account key. */
function makeCertificates(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=cilium-lab-test-ca",
  ]);
  const leaf = (name: string, subject: string, extensions: string): void => {
    openssl(dir, ["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      `${name}.crt`,
      "-extfile",
      `${name}.ext`,
    ]);
  };
  // 10.43.0.1 is the `kubernetes` Service's IP: the first address of --service-cluster-ip-range.
  leaf(
    "apiserver",
    "/CN=kube-apiserver",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,IP:10.43.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n",
  );
  leaf(
    "admin",
    "/O=system:masters/CN=cilium-lab-test-admin",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
  );
  openssl(dir, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

function kubeconfigYaml(server: string, dir: string): string {
  const b64 = (file: string): string => readFileSync(path.join(dir, file)).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64("ca.crt")}`,
    "users:",
    "- name: admin",
    "  user:",
    `    client-certificate-data: ${b64("admin.crt")}`,
    `    client-key-data: ${b64("admin.key")}`,
    "contexts:",
    "- name: test",
    "  context:",
    "    cluster: test",
    "    user: admin",
    "current-context: test",
    "",
  ].join("\n");
}

/** Writes the admission configuration for a cluster-wide Pod Security default `level`; returns its path. */
function podSecurityAdmissionConfig(dir: string, level: "restricted"): string {
  const file = path.join(dir, "admission.yaml");
  writeFileSync(
    file,
    [
      "apiVersion: apiserver.config.k8s.io/v1",
      "kind: AdmissionConfiguration",
      "plugins:",
      "- name: PodSecurity",
      "  configuration:",
      "    apiVersion: pod-security.admission.config.k8s.io/v1",
      "    kind: PodSecurityConfiguration",
      "    defaults:",
      `      enforce: ${level}`,
      '      enforce-version: "latest"',
      `      audit: ${level}`,
      '      audit-version: "latest"',
      `      warn: ${level}`,
      '      warn-version: "latest"',
      "    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}",
      "",
    ].join("\n"),
  );
  return file;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager and waits until /readyz answers `ok`.
 * `apiPort`: serve on this port instead of a free one — after `stop()` of another control plane,
 * a new cluster behind the same URL (new CA, empty etcd), as a reinstalled k3s or a replaced
 * server VM gives (test/k8s/recovery.engine.test.ts).
 *
 * `podSecurity: "restricted"`: a cluster-wide Pod Security default of `enforce: restricted` (and
 * audit, warn), through `--admission-control-config-file` with a `PodSecurity` plugin configuration
 * (https://kubernetes.io/docs/tasks/configure-pod-container/enforce-standards-admission-controller/,
 * `pod-security.admission.config.k8s.io/v1` `PodSecurityConfiguration`), as hardened clusters set it.
 */
export async function startControlPlane(
  options: { readyTimeoutMs?: number; apiPort?: number; podSecurity?: "restricted" } = {},
): Promise<ControlPlane> {
  const bin = controlPlaneBinaries();
  const dir = mkdtempSync(path.join(os.tmpdir(), "cilium-lab-control-plane-"));
  const children = new Map<string, ChildProcess>();
  let stopped = false;

  const killAllNow = (): void => {
    for (const child of children.values()) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // On exit only synchronous work runs: KILL by PID and remove the directory. A terminating signal
  // (ava ends a timed-out worker with SIGTERM: ava 7 lib/api.js calls worker.exit(), lib/fork.js
  // then worker.kill(); Ctrl+C sends SIGINT) emits no "exit" event, so those
  // do the same and then re-raise the signal with its default action (no other listener left).
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = (signal: NodeJS.Signals): void => {
    killAllNow();
    unhook();
    process.kill(process.pid, signal);
  };
  const unhook = (): void => {
    process.removeListener("exit", killAllNow);
    for (const signal of signals) {
      process.removeListener(signal, onSignal);
    }
  };
  process.once("exit", killAllNow);
  for (const signal of signals) {
    process.on(signal, onSignal);
  }

  const logTail = (name: string, lines = 30): string => {
    try {
      return readFileSync(path.join(dir, `${name}.log`), "utf8")
        .trimEnd()
        .split("\n")
        .slice(-lines)
        .join("\n");
    } catch {
      return "(no log)";
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) {
      return;
    }
    stopped = true;
    // Reverse start order: the controller-manager and apiserver first, etcd (their store) last.
    for (const name of ["kube-controller-manager", "kube-apiserver", "etcd"]) {
      const child = children.get(name);
      const pid = child?.pid;
      if (child === undefined || pid === undefined || !alive(pid)) {
        continue;
      }
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      process.kill(pid, "SIGTERM");
      if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) {
        continue;
      }
      process.kill(pid, "SIGKILL");
      await exited;
    }
    unhook();
    rmSync(dir, { recursive: true, force: true });
  };

  const launch = (name: string, file: string, args: string[]): ChildProcess => {
    const log = openSync(path.join(dir, `${name}.log`), "a");
    const child = spawn(file, args, { cwd: dir, stdio: ["ignore", log, log] });
    closeSync(log);
    if (child.pid === undefined) {
      throw new Error(`${name} (${file}) did not start; is the path right? ${HOW_TO_BUILD}`);
    }
    children.set(name, child);
    return child;
  };

  try {
    makeCertificates(dir);
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), options.apiPort ?? (await freePort())];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    // etcd flags: https://etcd.io/docs/v3.5/op-guide/configuration/ (--unsafe-no-fsync: test data only).
    launch("etcd", bin.etcd, [
      "--name=test",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    launch("kube-apiserver", bin.apiserver, [
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
    ]);
    writeFileSync(path.join(dir, "kubeconfig"), kubeconfigYaml(server, dir), { mode: 0o600 });
    // --secure-port=0: the controller-manager serves no HTTPS of its own (nothing here scrapes it).
    launch("kube-controller-manager", bin.controllerManager, [
      "--kubeconfig=kubeconfig",
      "--secure-port=0",
      "--leader-elect=false",
      "--service-account-private-key-file=sa.key",
      "--root-ca-file=ca.crt",
      "--use-service-account-credentials=false",
    ]);

    const ca = readFileSync(path.join(dir, "ca.crt"));
    const cert = readFileSync(path.join(dir, "admin.crt"));
    const key = readFileSync(path.join(dir, "admin.key"));
    const request = (
      method: string,
      apiPath: string,
      body?: unknown,
      opts: { anonymous?: boolean } = {},
    ): Promise<ApiResponse> =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = https.request(
          `${server}${apiPath}`,
          {
            method,
            ca,
            ...(opts.anonymous ? {} : { cert, key }),
            headers: {
              Accept: "application/json",
              ...(payload === undefined ? {} : { "Content-Type": "application/json" }),
            },
            timeout: 30_000,
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (text += chunk));
            res.on("end", () => {
              let parsed: unknown = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // not JSON (e.g. /readyz answers "ok")
              }
              resolve({ status: res.statusCode ?? 0, body: parsed });
            });
          },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${server}${apiPath} timed out after 30 s`)));
        req.on("error", reject);
        req.end(payload);
      });

    const deadline = Date.now() + (options.readyTimeoutMs ?? 180_000);
    let last = "no answer yet";
    for (;;) {
      for (const [name, child] of children) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `${name} exited (${child.exitCode ?? child.signalCode}) while the control plane started; its log:\n${logTail(name)}`,
          );
        }
      }
      const answer = await request("GET", "/readyz").catch((error: unknown) => ({ status: 0, body: String(error) }));
      if (answer.status === 200 && answer.body === "ok") {
        break;
      }
      last = `${answer.status} ${String(answer.body)}`;
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver at ${server} was not ready in ${(options.readyTimeoutMs ?? 180_000) / 1000} s (last /readyz: ${last}); its log:\n${logTail("kube-apiserver")}`,
        );
      }
      await sleep(500);
    }

    const pid = (name: string): number => children.get(name)?.pid ?? -1;
    return {
      server,
      kubeconfig: readFileSync(path.join(dir, "kubeconfig"), "utf8"),
      dir,
      pids: { etcd: pid("etcd"), apiserver: pid("kube-apiserver"), controllerManager: pid("kube-controller-manager") },
      request,
      logTail,
      stop,
    };
  } catch (error) {
    await stop();
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
