#!/usr/bin/env bash
# A stand-in for `k3s kubectl` in the script tests (no cluster can exist here): it answers the
# exact calls scripts/node/collect-cilium-state.sh, wait-iperf3-servers.sh and read-iperf3-job.sh make
# from files in $FAKE_DIR, and appends every call to $FAKE_DIR/calls.
#   rollout.rc, rollout.out           `-n ns rollout status daemonset/cilium …`
#   relay.txt[.<n>]                   `-n ns get deployment hubble-relay --ignore-not-found -o jsonpath=…`
#                                     (`<replicas>|<readyReplicas>`; n-th call, else the plain file; none: absent)
#   relay-rollout.rc, relay-rollout.out  `-n ns rollout status deployment/hubble-relay …`
#   configmap.json                    `-n ns get configmap cilium-config -o json`
#   ciliumnodes.txt, nodes.txt        `get ciliumnodes.cilium.io|nodes -o jsonpath=…`
#   agents.txt                        `-n ns get pods -l k8s-app=cilium -o jsonpath=…`
#   status-<pod>.txt, status-<pod>.rc `-n ns exec <pod> -c cilium-agent -- <cli> status`
#   ready-<pod>.rc                    `-n ns wait --for=condition=Ready pod/<pod> …`
#   pod-<pod>.txt, pod-<pod>.state    `-n ns get pod <pod> -o jsonpath=…` (addresses / state)
#   logs-<pod>.txt                    `-n ns logs pod/<pod> …`
#   job-<job>.status[.<n>]            `-n ns get job <job> -o jsonpath=…` (n-th call, else the plain file)
#   job-<job>.missing                 makes that call fail with NotFound
#   joblogs-<job>.txt                 `-n ns logs job/<job> …`
#   deleted-<job>                     created by `-n ns delete job <job> …`
set -euo pipefail
: "${FAKE_DIR:?}"
printf '%s\n' "$*" >>"$FAKE_DIR/calls"

args=("$@")
if [[ ${args[0]:-} == -n ]]; then
  args=("${args[@]:2}")
fi
verb=${args[0]:-}
cat_or() { if [[ -f $1 ]]; then cat "$1"; else printf '%s' "$2"; fi; }

case $verb in
  rollout)
    if [[ ${args[2]:-} == deployment/hubble-relay ]]; then
      cat_or "$FAKE_DIR/relay-rollout.out" 'deployment "hubble-relay" successfully rolled out'
      exit "$(cat_or "$FAKE_DIR/relay-rollout.rc" 0)"
    fi
    cat_or "$FAKE_DIR/rollout.out" 'daemon set "cilium" successfully rolled out'
    exit "$(cat_or "$FAKE_DIR/rollout.rc" 0)"
    ;;
  get)
    kind=${args[1]}
    case $kind in
      configmap) cat "$FAKE_DIR/configmap.json" ;;
      ciliumnodes.cilium.io) cat "$FAKE_DIR/ciliumnodes.txt" ;;
      nodes) cat "$FAKE_DIR/nodes.txt" ;;
      pods) cat "$FAKE_DIR/agents.txt" ;;
      deployment)
        n=$(($(cat_or "$FAKE_DIR/relay.count" 0) + 1))
        printf '%s' "$n" >"$FAKE_DIR/relay.count"
        if [[ -f $FAKE_DIR/relay.txt.$n ]]; then
          cat "$FAKE_DIR/relay.txt.$n"
        else
          cat_or "$FAKE_DIR/relay.txt" ""
        fi
        ;;
      pod)
        name=${args[2]}
        if [[ ${args[*]} == *"jsonpath=phase"* ]]; then
          cat_or "$FAKE_DIR/pod-$name.state" "phase Pending"
        else
          cat "$FAKE_DIR/pod-$name.txt"
        fi
        ;;
      job)
        name=${args[2]}
        if [[ -f $FAKE_DIR/job-$name.missing ]]; then
          printf 'Error from server (NotFound): jobs.batch "%s" not found\n' "$name" >&2
          exit 1
        fi
        n=$(($(cat_or "$FAKE_DIR/job-$name.count" 0) + 1))
        printf '%s' "$n" >"$FAKE_DIR/job-$name.count"
        if [[ -f $FAKE_DIR/job-$name.status.$n ]]; then
          cat "$FAKE_DIR/job-$name.status.$n"
        else
          cat_or "$FAKE_DIR/job-$name.status" ""
        fi
        ;;
      *)
        printf 'fake kubectl: unexpected get %s\n' "$kind" >&2
        exit 3
        ;;
    esac
    ;;
  exec)
    pod=${args[1]}
    cat_or "$FAKE_DIR/status-$pod.txt" ""
    exit "$(cat_or "$FAKE_DIR/status-$pod.rc" 0)"
    ;;
  wait)
    pod=${args[2]#pod/}
    rc=$(cat_or "$FAKE_DIR/ready-$pod.rc" 0)
    if ((rc == 0)); then
      printf 'pod/%s condition met\n' "$pod"
    else
      printf 'error: timed out waiting for the condition on pods/%s\n' "$pod" >&2
    fi
    exit "$rc"
    ;;
  logs)
    target=${args[1]}
    case $target in
      pod/*) cat_or "$FAKE_DIR/logs-${target#pod/}.txt" "" ;;
      job/*)
        if [[ ${args[*]} == *--tail=* ]]; then
          tail -n 30 "$FAKE_DIR/joblogs-${target#job/}.txt" 2>/dev/null || true
        else
          cat "$FAKE_DIR/joblogs-${target#job/}.txt"
        fi
        ;;
      *) exit 3 ;;
    esac
    ;;
  delete)
    : >"$FAKE_DIR/deleted-${args[2]}"
    printf 'job.batch "%s" deleted\n' "${args[2]}"
    ;;
  *)
    printf 'fake kubectl: unexpected call: %s\n' "$*" >&2
    exit 3
    ;;
esac
