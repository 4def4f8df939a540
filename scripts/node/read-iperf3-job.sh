#!/usr/bin/env bash
# Waits for one client Job of the measurement to finish and prints its pod's log on stdout: the
# `iperf3 -J` document, or netperf's `-o` lines (the tool is the 4th argument, iperf3 by default).
# A Job that fails (netperf exits 255 without a netserver), runs past its deadline, or whose iperf3
# output carries an "error" field (iperf3 3.12 exits 0 with -J when it cannot connect) fails with
# the reason and the log tail, exit 1; the failed Job is deleted so that `pulumi up --refresh` runs
# it again.
#
# Usage: read-iperf3-job.sh <namespace> <job> <timeout-seconds> [iperf3|netperf]
# Environment: KUBECTL (default `k3s kubectl`), POLL_SECONDS (default 2). Run on the k3s server, on
# stdin after lib.sh (infra/node-scripts.ts puts them together).
set -euo pipefail

ns="" job="" tool=iperf3 kubectl=()

job_failed() {
  local reason=$1 logs
  logs=$("${kubectl[@]}" -n "$ns" logs "job/${job}" --tail=30 2>&1) || true
  "${kubectl[@]}" -n "$ns" delete job "$job" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  printf '%s client job %s/%s failed: %s\nLast log lines:\n%s\nThe failed Job was deleted: fix the cause, then run "pulumi up --refresh" to measure again.\n' \
    "$tool" "$ns" "$job" "$reason" "$logs" >&2
  exit 1
}

main() {
  exec </dev/null
  (($# == 3 || $# == 4)) || { printf 'usage: read-iperf3-job.sh <namespace> <job> <timeout-seconds> [iperf3|netperf]\n' >&2; exit 2; }
  ns=$1 job=$2 tool=${4:-iperf3}
  [[ $tool == iperf3 || $tool == netperf ]] || { printf 'tool must be iperf3 or netperf (got %s)\n' "$tool" >&2; exit 2; }
  local timeout=$3 poll=${POLL_SECONDS:-2}
  [[ $timeout =~ ^[0-9]+$ ]] || { printf 'timeout must be a whole number of seconds (got %s)\n' "$timeout" >&2; exit 2; }
  read -r -a kubectl <<<"${KUBECTL:-k3s kubectl}"

  local deadline=$((SECONDS + timeout)) status out
  while :; do
    if ! status=$("${kubectl[@]}" -n "$ns" get job "$job" -o \
      'jsonpath={range .status.conditions[?(@.status=="True")]}{.type}:{.reason}:{.message}{"\n"}{end}' 2>&1); then
      if [[ $status == *NotFound* || $status == *"not found"* ]]; then
        printf '%s client job %s/%s does not exist: it was deleted after an earlier failure, or by hand. Run "pulumi up --refresh" so Pulumi creates it again.\n' "$tool" "$ns" "$job" >&2
        exit 1
      fi
      job_failed "cannot read the Job's status: ${status}"
    fi
    if grep -q '^Failed:' <<<"$status"; then
      job_failed "the Job failed ($(grep '^Failed:' <<<"$status" | head -n 1 | cut -d: -f2-))"
    fi
    if grep -q '^Complete:' <<<"$status"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      job_failed "it did not finish within ${timeout}s"
    fi
    sleep "$poll"
  done

  out=$("${kubectl[@]}" -n "$ns" logs "job/${job}" 2>&1) || job_failed "cannot read its log: ${out}"
  if [[ $tool == iperf3 ]] && grep -Eq '"error"[[:space:]]*:[[:space:]]*"' <<<"$out"; then
    job_failed "iperf3 reported an error: $(grep -E '"error"[[:space:]]*:' <<<"$out" | head -n 1 | sed -E 's/^[[:space:]]*"error"[[:space:]]*:[[:space:]]*//')"
  fi
  printf '%s\n' "$out"
}

main "$@"
