#!/usr/bin/env bash
# Waits until the server pods are Ready (the startup probes have connected to iperf3's port 5201
# and netserver's 12865, so both listen) and prints ONE JSON document with their addresses:
#   {"pods":[{"name":…,"podIP":…,"hostIP":…,"node":…},…]}
# A server that never listens fails with the pod's state and the tail of its log, exit 1.
#
# Usage: wait-iperf3-servers.sh <namespace> <timeout-seconds> <pod>...
# Environment: KUBECTL (default `k3s kubectl`). Run on the k3s server as root, on stdin after lib.sh
# (infra/node-scripts.ts puts them together).
set -euo pipefail

die() {
  printf '%s\n' "$*" >&2
  exit 1
}

main() {
  exec </dev/null
  (($# >= 3)) || die "usage: wait-iperf3-servers.sh <namespace> <timeout-seconds> <pod>..."
  local ns=$1 timeout=$2
  shift 2
  [[ $timeout =~ ^[0-9]+$ ]] || die "timeout must be a whole number of seconds (got '${timeout}')"
  local -a kubectl
  read -r -a kubectl <<<"${KUBECTL:-k3s kubectl}"

  local deadline=$((SECONDS + timeout)) pod out json="" fields name ip host node
  for pod in "$@"; do
    local left=$((deadline - SECONDS))
    ((left > 0)) || left=1
    if ! out=$("${kubectl[@]}" -n "$ns" wait --for=condition=Ready "pod/${pod}" --timeout="${left}s" 2>&1); then
      local state logs
      state=$("${kubectl[@]}" -n "$ns" get pod "$pod" -o \
        'jsonpath=phase {.status.phase}; node {.spec.nodeName}; {range .status.containerStatuses[*]}container {.name}: restarts {.restartCount}, waiting {.state.waiting.reason} {.state.waiting.message}, terminated {.state.terminated.reason} exit {.state.terminated.exitCode}, last {.lastState.terminated.reason} exit {.lastState.terminated.exitCode}{end}' 2>&1) || true
      logs=$("${kubectl[@]}" -n "$ns" logs "pod/${pod}" --all-containers --prefix --tail=30 2>&1) || true
      die "iperf3 server pod ${ns}/${pod} did not become Ready within ${timeout}s: iperf3 or netserver never listened on its port (each container's startup probe connects to it).
kubectl wait: ${out}
Pod state: ${state}
Last log lines:
${logs}
Common causes: an image could not be pulled (set cilium-lab:iperf3Image or cilium-lab:netperfImage to a reachable mirror), it has no iperf3 or netserver on its PATH, or a port is taken on the node (host-network server)."
    fi
    fields=$("${kubectl[@]}" -n "$ns" get pod "$pod" -o 'jsonpath={.metadata.name} {.status.podIP} {.status.hostIP} {.spec.nodeName}' 2>&1) ||
      die "cannot read pod ${ns}/${pod}: ${fields}"
    read -r name ip host node <<<"$fields"
    [[ -n ${ip:-} ]] || die "iperf3 server pod ${ns}/${pod} is Ready but has no pod IP (got '${fields}')"
    json+="${json:+,}{\"name\":\"${name}\",\"podIP\":\"${ip}\",\"hostIP\":\"${host:-}\",\"node\":\"${node:-}\"}"
  done
  printf '{"pods":[%s]}\n' "$json"
}

main "$@"
