#!/usr/bin/env bash
# Runs on a lab node, first of every step: waits until cloud-init has finished applying the node's
# user-data (user, keys, hostname, modules, sysctls), so later steps never race it.
#
# shipped over SSH on stdin by the k3s layer (infra/k3s), as the login user, after lib.sh (its log and
# fail; infra/node-scripts.ts puts them together):
#   bash -s -- --node node-1 --timeout 300 < <(cat scripts/node/lib.sh scripts/node/wait-cloud-init.sh)
#
# exit 0: cloud-init is done (a "recoverable error" status, exit 2 of cloud-init >= 23.4, is
#         printed as a warning and accepted: the node is usable).
# else:   a structured message on stderr (`cilium-lab error: node=… step=… exit=…`, the status
#         details and the fix) and cloud-init's exit code, or 124 on timeout.
# see https://cloudinit.readthedocs.io/en/latest/reference/cli.html#status
set -euo pipefail

node="" timeout_s=""
node_timeout_args wait-cloud-init.sh "$@"

step="wait for cloud-init"
command -v cloud-init >/dev/null 2>&1 ||
  fail 127 "$step" "use a cloud image with cloud-init (the lab configures nodes through NoCloud user-data)." \
    "cloud-init is not installed on $(hostname)"

start=$SECONDS
rc=0
out="$(timeout "$timeout_s" cloud-init status --wait --long 2>&1)" || rc=$?
elapsed=$((SECONDS - start))
# `--wait` prints a dot per poll before the status; keep only the status lines.
mapfile -t details < <(printf '%s\n' "$out" | sed -e 's/^\.*//' -e '/^[[:space:]]*$/d' | tail -n 20)
status="$(printf '%s\n' "$out" | sed -n -e 's/^\.*status: *//p' | head -n 1)"

case "$rc" in
  0)
    if [[ "$status" == disabled ]]; then
      fail 1 "$step" "the node's image must run cloud-init (check the NoCloud seed disk is attached and cloud-init is enabled)." \
        "cloud-init is disabled on $(hostname): the lab's user-data was never applied" "${details[@]}"
    fi
    log "cloud-init finished (status: ${status:-done}) after ${elapsed}s"
    ;;
  2)
    # cloud-init >= 23.4: "recoverable error" (e.g. deprecated keys): the node is configured.
    log "warning: cloud-init finished with recoverable errors after ${elapsed}s:"
    printf '  | %s\n' "${details[@]}" >&2
    ;;
  124)
    fail 124 "$step" "raise cilium-lab:bootTimeoutSeconds (TCG guests are slow), or look at 'sudo cloud-init status --long' and /var/log/cloud-init-output.log on the node." \
      "cloud-init was still running after ${timeout_s}s" "${details[@]}"
    ;;
  *)
    fail "$rc" "$step" "read 'sudo cloud-init status --long' and /var/log/cloud-init-output.log on the node; a failed module usually means wrong user-data." \
      "cloud-init failed (status: ${status:-unknown}) after ${elapsed}s" "${details[@]}"
    ;;
esac
