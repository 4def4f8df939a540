/**
 * The kubeconfig read from the k3s server, pointed at the server's lab address: rewritten from
 * loopback, unchanged when it already points there, refused (without quoting it) when it is not
 * k3s's admin kubeconfig.
 */
import test from "ava";

import { KubeconfigError, rewriteKubeconfigServer } from "../../infra/k3s/kubeconfig";

const K3S_YAML = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFqQWpNU0V3SHdZRFZRUUREQmhyTTNNdGMyVnkK
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENDQVRlZ0F3SUJBZ0lJYVp4cmw5K0pXNmd3Q2dZSUtvWkl6ajBFQXdJd0l6RWhNQjhHQTFVRUF3d1kK
    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUZrT3V4dXJpVW9rZ2x6R2ZSTFlrUVZ6Z0JLbk9tSXFmVmZ0Z1RsMjZsRnFvQW9HQ0NxR1NNNDkK
`;

test("the kubeconfig is rewritten from 127.0.0.1 to the server's lab address and otherwise unchanged", (t) => {
  t.is(
    rewriteKubeconfigServer(K3S_YAML, "192.168.150.11"),
    K3S_YAML.replace("https://127.0.0.1:6443", "https://192.168.150.11:6443"),
  );
});

test("rewriting a kubeconfig that already points at the server changes nothing", (t) => {
  const once = rewriteKubeconfigServer(K3S_YAML, "192.168.150.11");
  t.is(rewriteKubeconfigServer(once, "192.168.150.11"), once);
});

const badKubeconfigs: [string, string, string][] = [
  [
    "no clusters",
    "apiVersion: v1\nkind: Config\n",
    "the kubeconfig read from the k3s server has no clusters entry; is /etc/rancher/k3s/k3s.yaml k3s's admin kubeconfig?",
  ],
  [
    "an empty file",
    "",
    "the kubeconfig read from the k3s server has no clusters entry; is /etc/rancher/k3s/k3s.yaml k3s's admin kubeconfig?",
  ],
  [
    "no server",
    "clusters:\n- cluster: {}\n  name: default\n",
    "the kubeconfig read from the k3s server has no clusters[0].cluster.server",
  ],
  [
    "a foreign server",
    K3S_YAML.replace("https://127.0.0.1:6443", "https://10.9.9.9:6443"),
    "the kubeconfig's clusters[0].cluster.server is https://10.9.9.9:6443, expected https://127.0.0.1:6443 (k3s's default) or the server's lab address 192.168.150.11",
  ],
];
for (const [what, text, message] of badKubeconfigs) {
  test(`a kubeconfig with ${what} is refused without quoting its content`, (t) => {
    const err = t.throws(() => rewriteKubeconfigServer(text, "192.168.150.11"), { instanceOf: KubeconfigError });
    t.is(err?.message, message);
    t.false(err?.message.includes("LS0tLS1") ?? true);
  });
}
