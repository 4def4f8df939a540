/**
 * The k3s admin kubeconfig as the host uses it: k3s writes it for `https://127.0.0.1:6443`, the
 * program reads it from the server and points it at the server's lab address. Pure, no I/O.
 */
import YAML from "yaml";

import { K3S_API_PORT } from "./args";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "0.0.0.0"]);

/** Thrown when a kubeconfig read from the server is not the k3s admin kubeconfig we expect. */
export class KubeconfigError extends Error {
  override name = "KubeconfigError";
}

/**
 * k3s's admin kubeconfig points at `https://127.0.0.1:6443`; this returns it pointing at
 * `https://<serverIp>:6443` (the address in the certificate through `--tls-san`), everything else
 * unchanged. Throws without quoting the kubeconfig (it is a secret) when it has no cluster entry or
 * a server address that is neither loopback nor the server's.
 */
export function rewriteKubeconfigServer(kubeconfig: string, serverIp: string): string {
  let doc: YAML.Document.Parsed;
  try {
    doc = YAML.parseDocument(kubeconfig);
  } catch (err) {
    throw new KubeconfigError("the kubeconfig read from the k3s server is not YAML", { cause: err });
  }
  if (doc.errors.length > 0) {
    throw new KubeconfigError(
      `the kubeconfig read from the k3s server is not valid YAML (${doc.errors[0]?.code ?? "parse error"})`,
    );
  }
  const clusters = doc.get("clusters");
  if (!YAML.isSeq(clusters) || clusters.items.length === 0) {
    throw new KubeconfigError(
      "the kubeconfig read from the k3s server has no clusters entry; is /etc/rancher/k3s/k3s.yaml k3s's admin kubeconfig?",
    );
  }
  clusters.items.forEach((item, i) => {
    const server = YAML.isMap(item) ? item.getIn(["cluster", "server"]) : undefined;
    if (typeof server !== "string") {
      throw new KubeconfigError(`the kubeconfig read from the k3s server has no clusters[${i}].cluster.server`);
    }
    let url: URL;
    try {
      url = new URL(server);
    } catch (err) {
      throw new KubeconfigError(
        `the kubeconfig's clusters[${i}].cluster.server ${JSON.stringify(server)} is not a URL`,
        { cause: err },
      );
    }
    if (LOOPBACK_HOSTS.has(url.hostname)) {
      url.hostname = serverIp;
    } else if (url.hostname !== serverIp) {
      throw new KubeconfigError(
        `the kubeconfig's clusters[${i}].cluster.server is ${server}, expected https://127.0.0.1:${K3S_API_PORT} (k3s's default) or the server's lab address ${serverIp}`,
      );
    }
    (item as YAML.YAMLMap).setIn(["cluster", "server"], url.origin);
  });
  return doc.toString({ lineWidth: 0, indentSeq: false });
}
