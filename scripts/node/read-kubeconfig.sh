#!/usr/bin/env bash
# Runs on the k3s server node as root: prints k3s's admin kubeconfig on stdout, and nothing else
# there. The k3s layer (infra/k3s) runs it with logging off and keeps stdout as a Pulumi secret;
# it rewrites the server address (https://127.0.0.1:6443) to the node's lab address itself.
#
#   sudo bash -s -- --node node-1 --timeout 120 < <(cat scripts/node/lib.sh scripts/node/read-kubeconfig.sh)
#
# install.sh returns once the k3s unit has started, and k3s writes the kubeconfig while starting; the
# bounded wait covers a slow start. It does not wait for nodes to be Ready (they are NotReady until
# Cilium runs).
# exit 0: the kubeconfig is on stdout. else: `cilium-lab error: node=… step="…" exit=N` on stderr.
set -euo pipefail

readonly KUBECONFIG_FILE=/etc/rancher/k3s/k3s.yaml

node="" timeout_s=""
node_timeout_args read-kubeconfig.sh "$@"

step="read $KUBECONFIG_FILE"
[[ $EUID -eq 0 ]] || fail 1 "$step" "" "running as uid $EUID, not root (the file is 0600 root)"

deadline=$((SECONDS + timeout_s))
until [[ -s "$KUBECONFIG_FILE" ]] && grep -q '^ *server: https://' "$KUBECONFIG_FILE"; do
  if ((SECONDS >= deadline)); then
    error_head 1 "$step" >&2
    printf '  | %s\n' "no kubeconfig with a server address after ${timeout_s}s; k3s is $(systemctl is-active k3s 2>/dev/null || echo 'not installed')" >&2
    if command -v journalctl >/dev/null 2>&1; then
      journalctl -u k3s -n 15 --no-pager -o cat 2>/dev/null | redact >&2 || true
    fi
    printf 'cilium-lab fix: %s\n' "check the k3s server on $node ('sudo systemctl status k3s', 'sudo journalctl -u k3s'), then run 'pulumi up' again." >&2
    exit 1
  fi
  sleep 2
done
cat "$KUBECONFIG_FILE"
