#!/usr/bin/env bash
# Runs on a lab node as root when `pulumi destroy` removes the k3s layer but keeps the VM (when the
# VM itself goes away, the k3s layer's `deletedWith` skips this): removes Cilium's links and
# iptables rules, runs k3s's own uninstall script, and removes what the install step created.
#
# Only what the install step (install-k3s.sh) created: the token file, the kube-proxy state file
# beside it and, online, the downloaded $staging/install.sh. The staging directory belongs to the
# prepare step (prepare-node.sh) and the scripts and air-gap files in it to the copy steps; those
# resources stay in Pulumi's state when only the install is destroyed, so the next `pulumi up`
# re-runs the install against them. Deleting them here made that install fail with
# "bash: /var/lib/cilium-lab/install-k3s.sh: No such file or directory" (exit 127).
#
# The k3s layer (infra/k3s) copies lib.sh and this file to the node as one file (infra/node-scripts.ts);
# the install command's `delete` runs it:
#   sudo bash /var/lib/cilium-lab/uninstall-k3s.sh --node node-2 --role agent \
#     --staging-dir /var/lib/cilium-lab --token-file /etc/rancher/k3s/cilium-lab-token
#
# k3s's custom-CNI guide: before k3s-killall.sh or k3s-uninstall.sh, "remove cilium_host,
# cilium_net and cilium_vxlan interfaces" and run `iptables-save | grep -iv cilium | iptables-restore`
# (same for ip6tables). We do it before (as documented) and again after k3s is stopped, since a
# running Cilium agent can recreate them in between.
# see https://docs.k3s.io/networking/basic-network-options#custom-cni
#
# Idempotent: on a node without k3s it only removes leftovers and exits 0.
# else: `cilium-lab error: node=… step="…" exit=N`, the last lines of output and the fix.
set -Eeuo pipefail

readonly CILIUM_LINKS=(cilium_host cilium_net cilium_vxlan cilium_geneve)

node="" role="" staging="" token_file=""
while (($# > 0)); do
  case "$1" in
    --node) node="${2:?--node needs a value}"; shift 2 ;;
    --role) role="${2:?--role needs a value}"; shift 2 ;;
    --staging-dir) staging="${2:?--staging-dir needs a value}"; shift 2 ;;
    --token-file) token_file="${2:?--token-file needs a value}"; shift 2 ;;
    *) printf 'uninstall-k3s.sh: unknown argument %q\n' "$1" >&2; exit 2 ;;
  esac
done
[[ -n "$node" && ("$role" == server || "$role" == agent) && "$staging" == /* && "$token_file" == /* ]] ||
  { echo "uninstall-k3s.sh: --node, --role server|agent, absolute --staging-dir and --token-file are required" >&2; exit 2; }

# pulumi-command gives every run of the step the step's stdin, the delete included (the token and
# the install's arguments): nothing here reads it.
exec </dev/null

step="start"
log_file=""
# report <exit code> [details...]: the structured failure of the current $step and the log tail
# (lib.sh's report_failure).
report() {
  report_failure "$1" "fix the cause on the node and run 'pulumi destroy' again; to give up on this node's cleanup, 'pulumi state delete <urn of the k3s install command>'." \
    "last lines of output" "${@:2}"
}
trap 'on_error $? $LINENO uninstall-k3s.sh' ERR
cleanup() { [[ -z "$log_file" ]] || rm -f "$log_file"; }
trap cleanup EXIT

[[ $EUID -eq 0 ]] || { report 1 "running as uid $EUID, not root; run it with sudo"; exit 1; }
log_file="$(mktemp /tmp/cilium-lab-uninstall-k3s.XXXXXX)"

# remove_cilium_leftovers: the links and iptables rules of k3s's custom-CNI guide.
remove_cilium_leftovers() {
  local link tables
  for link in "${CILIUM_LINKS[@]}"; do
    if ip link show "$link" >/dev/null 2>&1; then
      ip link delete "$link"
      log "removed link $link"
    fi
  done
  for tables in iptables ip6tables; do
    if command -v "$tables-save" >/dev/null 2>&1; then
      # grep without -q reads everything: -q would exit early and fail iptables-save with SIGPIPE.
      if "$tables-save" | grep -i cilium >/dev/null; then
        "$tables-save" | grep -iv cilium | "$tables-restore"
        log "removed Cilium's $tables rules"
      fi
    fi
  done
}

step="remove Cilium's links and iptables rules"
remove_cilium_leftovers

step="run k3s's uninstall script"
uninstall=/usr/local/bin/k3s-uninstall.sh
[[ "$role" == server ]] || uninstall=/usr/local/bin/k3s-agent-uninstall.sh
if [[ -x "$uninstall" ]]; then
  log "running $uninstall..."
  # k3s's uninstall and killall scripts trace every command (set -x): keep that in the log file.
  "$uninstall" >>"$log_file" 2>&1
  log "k3s ($role) uninstalled"
else
  log "k3s ($role) is not installed ($uninstall is absent); nothing to uninstall"
fi

step="remove leftovers"
remove_cilium_leftovers
owned=("$token_file" "$(dirname "$token_file")/cilium-lab-kube-proxy-replacement" "$staging/install.sh" "$staging/install.sh.tmp")
rm -f "${owned[@]}"
log "removed the install step's files (${owned[*]}); kept $staging and the copied scripts and air-gap files"
