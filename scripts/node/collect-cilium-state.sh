#!/usr/bin/env bash
# Prints ONE JSON document with what Cilium was configured with and what each agent says it runs:
# the `cilium-config` ConfigMap, the CiliumNode objects (pod CIDRs, node IPs), the Nodes, the
# output of `<agent-cli> status` in every Cilium agent pod, and the `hubble-relay` Deployment
# (exists? desired and ready replicas, after waiting for its rollout). Run on the k3s server after
# the Cilium release is ready; infra/verify/evidence/ parses and judges it.
#
# Usage: collect-cilium-state.sh <agent-cli> [<rollout-timeout-seconds>]
#   <agent-cli>  the in-pod CLI: `cilium` (1.13, 1.14) or `cilium-dbg` (renamed in 1.15).
#   timeout      how long to wait for the agent DaemonSet, then the hubble-relay Deployment if it
#                exists, to be rolled out (default 300 each).
# Environment: KUBECTL (default `k3s kubectl`), CILIUM_NAMESPACE (default kube-system).
# Needs root on a k3s server (k3s kubectl reads /etc/rancher/k3s/k3s.yaml). No jq. Runs after lib.sh
# (its json_str; infra/node-scripts.ts puts them together), on stdin.
set -euo pipefail

die() {
  printf 'collect-cilium-state.sh: %s\n' "$*" >&2
  exit 1
}

# `name|cidr cidr|ip` lines → [{"name":…,"podCidrs":[…],"internalIps":[…]},…]
node_list() {
  local out="" name cidrs ips c addrs
  while IFS='|' read -r name cidrs ips; do
    [[ -n $name ]] || continue
    local list=""
    for c in $cidrs; do list+="${list:+,}$(json_str "$c")"; done
    addrs=""
    for c in $ips; do addrs+="${addrs:+,}$(json_str "$c")"; done
    out+="${out:+,}{\"name\":$(json_str "$name"),\"podCidrs\":[${list}],\"internalIps\":[${addrs}]}"
  done <<<"$1"
  printf '[%s]' "$out"
}

# The hubble-relay Deployment as {"exists":…,"desired":…,"ready":…,"rolloutError":…}: absent (the
# chart's hubble.relay.enabled=false), or its replicas once it rolled out (or the timeout passed: the
# counts then say how far it got, and rolloutError what kubectl said). Uses the caller's `kubectl`.
hubble_relay() {
  local ns=$1 timeout=$2 counts out rollout_error=null
  local jsonpath='jsonpath={.spec.replicas}{"|"}{.status.readyReplicas}'
  counts=$("${kubectl[@]}" -n "$ns" get deployment hubble-relay --ignore-not-found -o "$jsonpath" 2>&1) ||
    die "cannot read the Deployment ${ns}/hubble-relay: ${counts}"
  if [[ -z $counts ]]; then
    printf '{"exists":false,"desired":0,"ready":0,"rolloutError":null}'
    return
  fi
  if ! out=$("${kubectl[@]}" -n "$ns" rollout status deployment/hubble-relay --timeout="${timeout}s" 2>&1); then
    rollout_error=$(json_str "$out")
  fi
  counts=$("${kubectl[@]}" -n "$ns" get deployment hubble-relay --ignore-not-found -o "$jsonpath" 2>&1) ||
    die "cannot read the Deployment ${ns}/hubble-relay: ${counts}"
  local desired=${counts%%|*} ready=${counts#*|}
  [[ $desired =~ ^[0-9]+$ ]] || desired=1 # .spec.replicas unset: the API server defaults it to 1
  [[ $ready =~ ^[0-9]+$ ]] || ready=0     # .status.readyReplicas is omitted while 0
  printf '{"exists":true,"desired":%s,"ready":%s,"rolloutError":%s}' "$desired" "$ready" "$rollout_error"
}

main() {
  exec </dev/null
  local cli=${1:-} timeout=${2:-300}
  [[ $cli == cilium || $cli == cilium-dbg ]] || die "usage: collect-cilium-state.sh cilium|cilium-dbg [timeout-seconds] (got '${cli}')"
  [[ $timeout =~ ^[0-9]+$ ]] || die "timeout must be a whole number of seconds (got '${timeout}')"
  local ns=${CILIUM_NAMESPACE:-kube-system}
  local -a kubectl
  read -r -a kubectl <<<"${KUBECTL:-k3s kubectl}"

  local out
  if ! out=$("${kubectl[@]}" -n "$ns" rollout status daemonset/cilium --timeout="${timeout}s" 2>&1); then
    die "the Cilium agents (daemonset ${ns}/cilium) are not rolled out after ${timeout}s: ${out}
Look at: ${kubectl[*]} -n ${ns} get pods -l k8s-app=cilium -o wide; ${kubectl[*]} -n ${ns} logs ds/cilium --tail=50"
  fi

  local cm
  cm=$("${kubectl[@]}" -n "$ns" get configmap cilium-config -o json 2>&1) || die "cannot read ${ns}/cilium-config: ${cm}"

  # Per node: name, pod CIDRs and InternalIP, from the CiliumNode (cluster-pool IPAM) and from the
  # Node (kubernetes IPAM). jsonpath, not -o json: a Node's full JSON lists every cached image.
  local cn_lines node_lines
  cn_lines=$("${kubectl[@]}" get ciliumnodes.cilium.io -o \
    'jsonpath={range .items[*]}{.metadata.name}{"|"}{.spec.ipam.podCIDRs[*]}{"|"}{.spec.addresses[?(@.type=="InternalIP")].ip}{"\n"}{end}' 2>&1) ||
    die "cannot list CiliumNodes: ${cn_lines}"
  node_lines=$("${kubectl[@]}" get nodes -o \
    'jsonpath={range .items[*]}{.metadata.name}{"|"}{.spec.podCIDRs[*]}{"|"}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>&1) ||
    die "cannot list Nodes: ${node_lines}"
  local cn nodes
  cn=$(node_list "$cn_lines")
  nodes=$(node_list "$node_lines")

  local pods
  pods=$("${kubectl[@]}" -n "$ns" get pods -l k8s-app=cilium \
    -o 'jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\n"}{end}' 2>&1) || die "cannot list the Cilium agent pods: ${pods}"

  local agents="" pod node status rc
  while read -r pod node; do
    [[ -n $pod ]] || continue
    rc=0
    status=$("${kubectl[@]}" -n "$ns" exec "$pod" -c cilium-agent -- "$cli" status 2>&1) || rc=$?
    agents+="${agents:+,}{\"pod\":$(json_str "$pod"),\"node\":$(json_str "$node"),\"command\":$(json_str "${cli} status"),\"exitCode\":${rc},\"output\":$(json_str "$status")}"
  done <<<"$pods"

  local relay
  relay=$(hubble_relay "$ns" "$timeout")

  printf '{"schema":1,"collector":"collect-cilium-state.sh","configMap":%s,"ciliumNodes":%s,"nodes":%s,"agents":[%s],"hubbleRelay":%s}\n' \
    "$cm" "$cn" "$nodes" "$agents" "$relay"
}

main "$@"
