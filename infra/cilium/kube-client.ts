/**
 * The one Kubernetes API client of the project: plain `https` with a kubeconfig's (or a test control
 * plane's) inline CA and client certificate or token. Used by the Cilium readiness gate (ready.ts),
 * by `npm run lab -- recover` and lab.sh's cluster checks (scripts/recover/), and by the test control
 * plane (test/support/control-plane.ts).
 *
 * Why not @kubernetes/client-node: its 1.x releases are ES modules only (`"type": "module"`, npm
 * registry), which the readiness gate's serialized provider cannot `require` on Node 20.
 *
 * Why the shape: the gate's provider is serialized by Pulumi's closure serializer (function text plus
 * captured values) and runs in the engine's provider host, so every module is `require`d inside the
 * function that uses it (as in infra/libvirt/exec.ts) and nothing here holds state at module level.
 *
 * What callers choose: the bound per request (`timeoutMs`) and which statuses reject instead of
 * resolving (`rejectStatus`). A transport failure (connection refused, TLS verification, the bound)
 * always rejects with an Error that names the request and keeps the transport error's `code` (e.g.
 * `SELF_SIGNED_CERT_IN_CHAIN`, `ECONNREFUSED`, `ETIMEDOUT`) and the error itself as `cause`: lab.sh's
 * recovery tells a new cluster from a down one by that code. Credentials never appear in a message.
 */
/* eslint-disable @typescript-eslint/no-require-imports */

/** Where and as whom to talk to the apiserver. */
export interface KubeCredentials {
  /** `https://host:port`, without a trailing slash. */
  readonly server: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly token?: string;
}

/** One answer: the status, the body parsed as JSON (the text itself when it is not JSON) and the text. */
export interface KubeResponse {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

/** Per-request headers beyond the defaults (`Accept: application/json`, JSON `Content-Type` with a body). */
export interface KubeRequestHeaders {
  readonly accept?: string;
  readonly contentType?: string;
}

export type KubeRequest = (
  method: string,
  apiPath: string,
  body?: unknown,
  headers?: KubeRequestHeaders,
) => Promise<KubeResponse>;

export interface KubeClient {
  readonly server: string;
  readonly request: KubeRequest;
}

export interface KubeClientOptions {
  /** The bound per request; past it the request fails with code `ETIMEDOUT`. */
  readonly timeoutMs: number;
  /** Statuses that reject with `<method> <url> answered <status>: <message>`; by default every status resolves. */
  readonly rejectStatus?: (status: number) => boolean;
}

/**
 * The credentials of a kubeconfig's current context (else its first context, cluster and user).
 * `fix` ends the error when the kubeconfig names no server (the kubeconfig itself is never quoted:
 * it holds the client key).
 */
export function kubeCredentials(kubeconfigYaml: string, fix: string): KubeCredentials {
  const YAML = require("yaml") as typeof import("yaml");
  type Named<T> = { name?: string } & T;
  const doc = YAML.parse(kubeconfigYaml) as {
    "current-context"?: string;
    contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
    clusters?: Named<{ cluster?: { server?: string; "certificate-authority-data"?: string } }>[];
    users?: Named<{ user?: { "client-certificate-data"?: string; "client-key-data"?: string; token?: string } }>[];
  } | null;
  const context = doc?.contexts?.find((c) => c.name === doc["current-context"])?.context ?? doc?.contexts?.[0]?.context;
  const cluster = doc?.clusters?.find((c) => c.name === context?.cluster)?.cluster ?? doc?.clusters?.[0]?.cluster;
  const user = doc?.users?.find((u) => u.name === context?.user)?.user ?? doc?.users?.[0]?.user ?? {};
  if (cluster?.server === undefined) {
    throw new Error(`the kubeconfig has no server for its current context; ${fix}`);
  }
  const b64 = (s: string | undefined): Buffer | undefined => (s === undefined ? undefined : Buffer.from(s, "base64"));
  return {
    server: cluster.server.replace(/\/+$/, ""),
    ca: b64(cluster["certificate-authority-data"]),
    cert: b64(user["client-certificate-data"]),
    key: b64(user["client-key-data"]),
    ...(user.token ? { token: user.token } : {}),
  };
}

/** A client for `credentials`; see the module comment for what `options` decide. */
export function kubeClient(credentials: KubeCredentials, options: KubeClientOptions): KubeClient {
  const https = require("node:https") as typeof import("node:https");
  const { server, ca, cert, key, token } = credentials;
  const request: KubeRequest = (method, apiPath, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const url = `${server}${apiPath}`;
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        url,
        {
          method,
          ca,
          cert,
          key,
          headers: {
            Accept: headers.accept ?? "application/json",
            ...(token ? { Authorization: `Bearer ${token}` } : {}),
            ...(payload === undefined ? {} : { "Content-Type": headers.contentType ?? "application/json" }),
          },
          timeout: options.timeoutMs,
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
              // not JSON (logs, /readyz's "ok")
            }
            const status = res.statusCode ?? 0;
            if (options.rejectStatus?.(status) === true) {
              const message = (parsed as { message?: unknown } | null)?.message;
              reject(new Error(`${method} ${url} answered ${status}: ${typeof message === "string" ? message : text}`));
              return;
            }
            resolve({ status, body: parsed, text });
          });
        },
      );
      req.on("timeout", () =>
        req.destroy(Object.assign(new Error(`no answer in ${options.timeoutMs / 1000} s`), { code: "ETIMEDOUT" })),
      );
      req.on("error", (error: Error & { code?: string }) =>
        reject(
          Object.assign(new Error(`${method} ${url} failed: ${error.message}`, { cause: error }), {
            code: error.code,
          }),
        ),
      );
      req.end(payload);
    });
  return { server, request };
}
