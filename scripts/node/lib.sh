#!/usr/bin/env bash
# The helpers every node script shares. Never run on its own: the program's one loader
# (infra/node-scripts.ts) puts this file in front of each script of scripts/node/, and the nodes
# run that text (sent on SSH stdin, or copied as one file); its SHA-256 covers both files, so an
# edit of either re-runs the steps that use the script. The shellcheck test checks this file alone
# and in front of every script.
#
# The script after it sets $node (the node's name; `?` until it is known) and, in the k3s install
# and uninstall steps, $role. Messages go to stderr unless a function says otherwise.
set -euo pipefail

# log <words...>: a progress line, `cilium-lab[<node>]: <words>`.
log() { printf 'cilium-lab[%s]: %s\n' "${node:-?}" "$*" >&2; }

# node_timeout_args <script name> [args...]: the `--node NAME --timeout SECONDS` command line of the
# short steps; sets $node and $timeout_s, or exits 2 with the usage.
# shellcheck disable=SC2034 # timeout_s is the script's.
node_timeout_args() {
  local script="$1"
  shift
  while (($# > 0)); do
    case "$1" in
      --node) node="${2:?--node needs a value}"; shift 2 ;;
      --timeout) timeout_s="${2:?--timeout needs a value}"; shift 2 ;;
      *) printf '%s: unknown argument %q (usage: --node NAME --timeout SECONDS)\n' "$script" "$1" >&2; exit 2 ;;
    esac
  done
  [[ -n "${node:-}" ]] || { echo "$script: --node is required" >&2; exit 2; }
  [[ "${timeout_s:-}" =~ ^[1-9][0-9]*$ ]] || { echo "$script: --timeout must be whole seconds > 0 (got '${timeout_s:-}')" >&2; exit 2; }
}

# error_head <exit code> <step>: the first line of the structured failure, on stdout:
#   cilium-lab error: node=<node> step="<step>" exit=<code>
# with ` role=<role>` after the node when the script declares $role.
error_head() {
  printf 'cilium-lab error: node=%s%s step="%s" exit=%s\n' "${node:-?}" "${role+ role=${role:-?}}" "$2" "$1"
}

# error_block <exit code> <step> <fix> [details...]: the structured failure every node script
# prints, on stdout: error_head, one `  | <detail>` line per detail, then `cilium-lab fix: <fix>`
# (left out when <fix> is empty).
error_block() {
  local code="$1" step="$2" fix="$3"
  shift 3
  error_head "$code" "$step"
  (($# == 0)) || printf '  | %s\n' "$@"
  [[ -z "$fix" ]] || printf 'cilium-lab fix: %s\n' "$fix"
}

# fail <exit code> <step> <fix> [details...]: that block on stderr, then exit with the code.
fail() {
  error_block "$@" >&2
  exit "$1"
}

# dedupe: copies stdin to stdout, each run of identical consecutive lines once, with ` (×N)` after
# it when N > 1 (curl --retry prints its error once per attempt).
dedupe() {
  awk 'function out() { print prev (n > 1 ? " (×" n ")" : "") }
    NR > 1 && $0 == prev { n++; next }
    NR > 1 { out() }
    { prev = $0; n = 1 }
    END { if (NR > 0) out() }'
}

# redact: copies stdin to stdout as detail lines (`  | ` in front), without the script's $token
# (when it has one) or anything shaped like a k3s secure token (K10<ca hash>::<user>:<password>).
redact() {
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ -n "${token:-}" ]]; then
      line="${line//"$token"/<redacted>}"
    fi
    printf '  | %s\n' "$line"
  done | sed -E 's/K10[0-9a-fA-F]+::[^[:space:]]+/K10<redacted>/g'
}

# log_tail <file> <title>: on stdout, `cilium-lab: <title>:` and the file's last 20 lines (dedupe,
# redact); nothing when <file> is unset or empty.
log_tail() {
  [[ -n "$1" && -s "$1" ]] || return 0
  printf 'cilium-lab: %s:\n' "$2"
  dedupe <"$1" | tail -n 20 | redact
}

# report_failure <exit code> <fix> <log title> [details...]: the failure of the script's current
# $step, on stderr: error_head, the details (dedupe, redact), the tail of the script's $log_file
# under `cilium-lab: <log title>:`, and `cilium-lab fix: <fix>` (left out when <fix> is empty).
report_failure() {
  local code="$1" fix="$2" title="$3"
  shift 3
  error_head "$code" "${step:-?}" >&2
  if (($# > 0)); then
    printf '%s\n' "$@" | dedupe | redact >&2
  fi
  log_tail "${log_file:-}" "$title" >&2
  [[ -z "$fix" ]] || printf 'cilium-lab fix: %s\n' "$fix" >&2
}

# on_error <exit code> <line> <script name>: the ERR trap of the scripts that set one
# (`trap 'on_error $? $LINENO <name>' ERR`): hands the failed line, counted in the script (this
# file's lines left out), to the script's `report <exit code> [details...]`, then exits.
on_error() {
  local code="$1"
  trap - ERR
  report "$code" "command failed at $3 line $(($2 - NODE_LIB_LINES))"
  exit "$code"
}

# json_str <text>: a JSON string literal of the text; control characters other than TAB, LF and CR
# are dropped.
json_str() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# The number of lines of this file: the last line, so that on_error can count the script's own.
NODE_LIB_LINES=$LINENO
