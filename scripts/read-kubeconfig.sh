#!/usr/bin/env bash
# Runs on the k3s server node as root: prints k3s's admin kubeconfig on stdout, and nothing else
# there. The k3s layer (infra/k3s) runs it with logging off and keeps stdout as a Pulumi secret;
# it rewrites the server address (https://127.0.0.1:6443) to the node's lab address itself.
#
#   sudo bash -s -- --node node-1 --timeout 120 < scripts/read-kubeconfig.sh
#
# install.sh returns once the k3s unit has started, and k3s writes the kubeconfig while starting; the
# bounded wait covers a slow start. It does not wait for nodes to be Ready (they are NotReady until
# Cilium runs).
# exit 0: the kubeconfig is on stdout. else: `cilium-lab error: node=… step="…" exit=N` on stderr.
set -euo pipefail

readonly KUBECONFIG_FILE=/etc/rancher/k3s/k3s.yaml

node=""
timeout_s=""
while (($# > 0)); do
  case "$1" in
    --node) node="${2:?--node needs a value}"; shift 2 ;;
    --timeout) timeout_s="${2:?--timeout needs a value}"; shift 2 ;;
    *) printf 'read-kubeconfig.sh: unknown argument %q (usage: --node NAME --timeout SECONDS)\n' "$1" >&2; exit 2 ;;
  esac
done
[[ -n "$node" && "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
  { echo "read-kubeconfig.sh: --node and --timeout SECONDS are required" >&2; exit 2; }

step="read $KUBECONFIG_FILE"
[[ $EUID -eq 0 ]] || { printf 'cilium-lab error: node=%s step="%s" exit=1\n  | running as uid %s, not root (the file is 0600 root)\n' "$node" "$step" "$EUID" >&2; exit 1; }

deadline=$((SECONDS + timeout_s))
until [[ -s "$KUBECONFIG_FILE" ]] && grep -q '^ *server: https://' "$KUBECONFIG_FILE"; do
  if ((SECONDS >= deadline)); then
    printf 'cilium-lab error: node=%s step="%s" exit=1\n' "$node" "$step" >&2
    printf '  | %s\n' "no kubeconfig with a server address after ${timeout_s}s; k3s is $(systemctl is-active k3s 2>/dev/null || echo 'not installed')" >&2
    if command -v journalctl >/dev/null 2>&1; then
      journalctl -u k3s -n 15 --no-pager -o cat 2>/dev/null |
        sed -E -e 's/K10[0-9a-fA-F]+::[^[:space:]]+/K10<redacted>/g' -e 's/^/  | /' >&2 || true
    fi
    printf 'cilium-lab fix: %s\n' "check the k3s server on $node ('sudo systemctl status k3s', 'sudo journalctl -u k3s'), then run 'pulumi up' again." >&2
    exit 1
  fi
  sleep 2
done
cat "$KUBECONFIG_FILE"
