#!/usr/bin/env bash
# Prints the Hubble flows of the measured iperf3 connection, as the Cilium agent on one node saw
# them: `hubble observe` run inside that node's agent pod, against its own Hubble server (the local
# ring buffer), one JSON document per line on stdout exactly as the CLI printed it. Run on the k3s
# server as root after the iperf3 client finished; infra/verify/hubble/ parses and judges the lines.
#
# Usage: hubble-flows.sh --node NODE --server-ip IP [--port PORT] [--last N] [--timeout SECONDS]
#   --node       the node whose agent is asked: the iperf3 server pod's node.
#   --server-ip  the iperf3 server pod's IP; flows from or to it on PORT are printed.
#   --port       the iperf3 port (default 5201).
#   --last       how many matching flows to ask the ring buffer for (default 1000; `--last N` of
#                `hubble observe`: the newest N that match, from a buffer of
#                hubble-event-buffer-capacity events, 4095 by default).
#   --timeout    seconds for the whole `kubectl exec … hubble observe` (default 60).
# Environment: KUBECTL (default `k3s kubectl`), CILIUM_NAMESPACE (default kube-system).
#
# Why this command (sources, cilium/cilium):
# - the agent image ships the hubble CLI as /usr/bin/hubble and sets
#   HUBBLE_SERVER=unix:///var/run/cilium/hubble.sock, so inside the pod `hubble observe` reads the
#   agent's own Hubble server, no relay needed (images/cilium/Dockerfile). 1.13 downloads the CLI,
#   hubble v0.11.x (images/cilium/download-hubble.sh, cilium/cilium#23043); 1.16 and later build it from
#   cilium/cilium's own hubble/ tree (moved there by cilium/cilium#31893);
# - `-o jsonpb` prints each GetFlowsResponse as one line, `{"flow":{…},"node_name":…,"time":…}`,
#   in every CLI the supported agents carry (hubble v0.11's pkg/printer/printer.go and the in-tree
#   hubble/pkg/printer/printer.go: `case JSONPBOutput: return p.jsonEncoder.Encode(res)`). `-o json`
#   is not used: older CLIs print the bare Flow for it, newer ones make it an alias for jsonpb.
# - `--ip IP --port PORT` asks for (source IP and source port) OR (destination IP and destination
#   port): each flag fills the source side of a left filter and the destination side of a right
#   one, "the resulting filter will be `left OR right`" (cmd/observe/flows_filter.go in cilium/hubble
#   and in-tree), so the client's packets to the server and the server's replies both match.
#
# Exit codes (each failure prints the lab's error block on stderr: what, the details, the fix):
#   0 the lines printed (possibly none: the judge says why that can happen)
#   2 usage
#   3 no Cilium agent pod on NODE (or the pods cannot be listed)
#   4 the agent pod has no hubble CLI
#   5 the agent's Hubble server is not there (Hubble disabled: hubble.enabled=false)
#   6 `hubble observe` did not finish within --timeout
#   7 `hubble observe` failed otherwise
# Needs root on a k3s server (k3s kubectl reads /etc/rancher/k3s/k3s.yaml) and coreutils' timeout.
# No jq. Runs after lib.sh (its fail), on stdin like the other verification scripts.
set -euo pipefail

usage() {
  printf 'hubble-flows.sh: %s\nusage: hubble-flows.sh --node NODE --server-ip IP [--port PORT] [--last N] [--timeout SECONDS]\n' "$1" >&2
  exit 2
}

parse_args() {
  port=5201 last=1000 timeout_s=60
  while (($# > 0)); do
    case "$1" in
      --node | --server-ip | --port | --last | --timeout)
        (($# >= 2)) || usage "$1 needs a value"
        case "$1" in
          --node) node=$2 ;;
          --server-ip) server_ip=$2 ;;
          --port) port=$2 ;;
          --last) last=$2 ;;
          --timeout) timeout_s=$2 ;;
        esac
        shift 2
        ;;
      *) usage "unknown argument '$1'" ;;
    esac
  done
  [[ -n ${node:-} ]] || usage "--node is required"
  [[ ${server_ip:-} =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || usage "--server-ip must be an IPv4 address (got '${server_ip:-}')"
  if ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
    usage "--port must be 1-65535 (got '${port}')"
  fi
  [[ $last =~ ^[1-9][0-9]*$ ]] || usage "--last must be a whole number > 0 (got '${last}')"
  [[ $timeout_s =~ ^[1-9][0-9]*$ ]] || usage "--timeout must be whole seconds > 0 (got '${timeout_s}')"
}

main() {
  exec </dev/null
  local node="" server_ip="" port last timeout_s
  parse_args "$@"
  local ns=${CILIUM_NAMESPACE:-kube-system}
  local -a kubectl
  read -r -a kubectl <<<"${KUBECTL:-k3s kubectl}"

  local pods pod
  pods=$("${kubectl[@]}" -n "$ns" get pods -l k8s-app=cilium --field-selector "spec.nodeName=${node}" \
    -o 'jsonpath={.items[*].metadata.name}' 2>&1) ||
    fail 3 "find the Cilium agent pod" "check the API server: ${kubectl[*]} -n ${ns} get pods -l k8s-app=cilium -o wide" \
      "cannot list the Cilium agent pods on ${node}: ${pods}"
  read -r pod _ <<<"$pods"
  [[ -n ${pod:-} ]] ||
    fail 3 "find the Cilium agent pod" "check the node name and the agents: ${kubectl[*]} -n ${ns} get pods -l k8s-app=cilium -o wide" \
      "no pod labelled k8s-app=cilium runs on node ${node} (namespace ${ns})"

  local tmp rc=0
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand $tmp now: it is local to main.
  trap "rm -rf '${tmp}'" EXIT
  timeout "$timeout_s" "${kubectl[@]}" -n "$ns" exec "$pod" -c cilium-agent -- \
    hubble observe --last "$last" -o jsonpb --ip "$server_ip" --port "$port" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if ((rc == 0)); then
    cat "$tmp/out"
    return 0
  fi
  local err
  err=$(cat "$tmp/err")
  local -a details=()
  mapfile -t details <"$tmp/err"
  local step="hubble observe in ${pod}"
  if ((rc == 124)); then
    fail 6 "$step" "raise --timeout, or look at the agent: ${kubectl[*]} -n ${ns} logs ${pod} -c cilium-agent --tail=50" \
      "no answer within ${timeout_s}s" "${details[@]}"
  elif [[ $err == *"executable file not found"* ]]; then
    fail 4 "$step" "use a Cilium agent image that ships /usr/bin/hubble (every quay.io/cilium/cilium release does)" \
      "the agent container has no hubble CLI" "${details[@]}"
  elif [[ $err == *"hubble.sock"* ]]; then
    fail 5 "$step" "enable Hubble in the agents (Helm hubble.enabled=true, the chart's default), then run up again" \
      "the agent's Hubble server socket is missing: Hubble is disabled in this agent" "${details[@]}"
  fi
  fail 7 "$step" "run it by hand: ${kubectl[*]} -n ${ns} exec ${pod} -c cilium-agent -- hubble observe --last 20" \
    "hubble observe exited with ${rc}" "${details[@]}"
}

main "$@"
