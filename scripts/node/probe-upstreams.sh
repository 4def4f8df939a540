#!/usr/bin/env bash
# Runs on a lab node in online mode, right after cloud-init: checks within seconds that the node
# reaches every upstream the k3s install and the first pod starts need — k3s's install script, the
# k3s binary (through GitHub's redirect to its release-asset host) and the image registries — so a
# host whose forwarding or DNS is broken fails here, with the cause, instead of minutes into the
# install with `curl: (6) Could not resolve host`.
#
# shipped over SSH on stdin by the k3s layer (infra/k3s) after lib.sh (its error_block and fail), as
# the login user; the URLs are computed in infra/k3s/args.ts (upstreamProbes) and passed as
# arguments, so they are overridable:
#   bash -s -- --node node-1 --connect-timeout 5 --max-time 10 \
#     --url k3s-installer=https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh \
#     --url k3s-binary=https://github.com/k3s-io/k3s/releases/download/v1.26.6%2Bk3s1/k3s \
#     --url registry-docker.io=https://registry-1.docker.io/v2/ --url registry-quay.io=https://quay.io/v2/ \
#     < <(cat scripts/node/lib.sh scripts/node/probe-upstreams.sh)
#
# Every URL is probed in parallel with one ranged GET (`Range: bytes=0-0`: the binary is not
# downloaded), each bounded by --max-time in all (redirect hops included) and each connection by
# --connect-timeout. Redirects are followed here, hop by hop (at most 5), so a failure names the
# host that failed: GitHub answers a release download with a 302 to its release-asset host
# (objects.githubusercontent.com until 2025, release-assets.githubusercontent.com since; seen in
# e.g. packit/ai-workflows#634 and different-ai/openwork#3131), which a firewall allowlist often
# misses.
#
# Results, on stderr, one line per URL in argument order:
#   cilium-lab[node-1]: probe k3s-installer https://…/install.sh: ok (HTTP 200, 0.3 s)
#   cilium-lab[node-1]: probe registry-quay.io https://quay.io/v2/: failed: DNS: could not resolve quay.io (curl exit 6, 0.0 s)
# then for each failed URL the structured block of every node script (lib.sh's error_block):
#   cilium-lab error: node=node-1 step="probe registry-quay.io" exit=6
#     | DNS: could not resolve quay.io
#     | curl: (6) Could not resolve host: quay.io
#   cilium-lab fix: …
# exit 0: every URL answered. else: the exit code of the first failed URL (curl's exit code; 22, as
# curl's --fail uses, for an HTTP error status); 2 for bad arguments; 127 without curl.
#
# Classes (curl's exit codes: https://curl.se/docs/manpage.html#EXIT, "EXIT CODES" in curl(1)):
#   DNS   5 couldn't resolve proxy, 6 couldn't resolve host, 28 with "Resolving timed out"
#   TCP   7 failed to connect (refused, unreachable), 28 before the TCP connection was made,
#         55/56 send/receive failure (connection reset)
#   TLS   35 SSL connect error, 60 peer certificate not verified (and the other TLS codes: 51 53 54
#         58 59 64 66 77 80 82 83 90 91), 28 after TCP but before the TLS handshake finished
#   HTTP  an HTTP status >= 400 — except 401 from a registry's /v2/ (the OCI distribution spec's
#         "determining support" endpoint, end-1, answers 200, or 401 when the registry wants a
#         token: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support),
#         a 3xx without Location or beyond 5 hops, 28 after connecting without an answer, 52 empty reply
set -euo pipefail

node=""
connect_timeout=5
max_time=10
names=()
urls=()
readonly MAX_HOPS=5

# host_port <url>: "host:port" of a URL (port from the scheme when absent).
host_port() {
  local rest="${1#*://}"
  rest="${rest%%[/?#]*}"
  rest="${rest##*@}"
  if [[ "$rest" =~ :[0-9]+$ ]]; then
    printf '%s' "$rest"
  elif [[ "$1" == https://* ]]; then
    printf '%s:443' "$rest"
  else
    printf '%s:80' "$rest"
  fi
}
# host_of <url>: the host of a URL, without port.
host_of() {
  local hp
  hp="$(host_port "$1")"
  printf '%s' "${hp%:*}"
}

# classify <curl exit> <http code> <url> <time_connect> <time_appconnect> <curl message>
# sets: class (ok | redirect | DNS | TCP | TLS | HTTP | OTHER), what (one line), code (exit code).
classify() {
  local rc="$1" status="$2" url="$3" t_connect="$4" t_app="$5" message="$6"
  local host hp connected=false handshaken=true
  host="$(host_of "$url")"
  hp="$(host_port "$url")"
  # curl's times are 0.000000 for a phase that never completed.
  [[ "$t_connect" =~ ^[0.,]*$ ]] || connected=true
  [[ "$url" != https://* || ! "$t_app" =~ ^[0.,]*$ ]] || handshaken=false
  # a timeout after the status line arrived (a slow body: a server that ignores Range) is judged by
  # the status, like a finished transfer.
  if [[ "$rc" == 28 && "$status" != 000 ]]; then
    rc=0
  fi
  code="$rc"
  case "$rc" in
    0)
      if [[ "$status" =~ ^2[0-9][0-9]$ ]]; then
        class=ok what="HTTP $status"
      elif [[ "$status" == 401 && "${url%%[?#]*}" == */v2/ ]]; then
        class=ok what="HTTP 401"
      elif [[ "$status" =~ ^3[0-9][0-9]$ ]]; then
        class=redirect what="HTTP $status"
      else
        class=HTTP what="$host answered HTTP $status" code=22
      fi
      ;;
    5) class=DNS what="could not resolve the proxy for $host" ;;
    6) class=DNS what="could not resolve $host" ;;
    7) class=TCP what="could not connect to $hp" ;;
    55 | 56) class=TCP what="the connection to $hp broke (reset or closed)" ;;
    35 | 51 | 53 | 54 | 58 | 59 | 60 | 64 | 66 | 77 | 80 | 82 | 83 | 90 | 91)
      class=TLS what="the TLS handshake with $hp failed"
      ;;
    28)
      if [[ "$message" == *"Resolving timed out"* ]]; then
        class=DNS what="no answer from the resolver for $host (timed out)"
      elif [[ "$message" == *"SSL connection timeout"* ]]; then
        # curl 7.88 reports no time_connect when --connect-timeout ends in the TLS handshake.
        class=TLS what="the TLS handshake with $hp did not finish (timed out)"
      elif [[ "$connected" == false ]]; then
        class=TCP what="no TCP connection to $hp (timed out)"
      elif [[ "$handshaken" == false ]]; then
        class=TLS what="the TLS handshake with $hp did not finish (timed out)"
      else
        class=HTTP what="$hp accepted the connection but sent no HTTP answer (timed out)"
      fi
      ;;
    47) class=HTTP what="more than $MAX_HOPS redirects from $host" ;;
    52) class=HTTP what="$hp closed the connection without an HTTP answer" ;;
    8 | 16 | 92) class=HTTP what="$hp sent an answer curl cannot read" ;;
    *) class=OTHER what="curl failed for $host" ;;
  esac
}

# fix_for <class>: what to do about a failure of that class.
fix_for() {
  case "$1" in
    DNS) printf '%s' "the node cannot resolve names. Its resolver is the libvirt network's dnsmasq (the network's gateway), which forwards to the host's resolver: check the host's /etc/resolv.conf or 'resolvectl status', and that the lab network is active ('virsh net-info cilium-lab-<stack>'); 'npm run lab -- doctor <stack>' checks the host. Without internet access, install air-gapped (cilium-lab:k3sAirgapDir, see the README)." ;;
    TCP) printf '%s' "the node's connections do not get through. Most often the host's firewall drops the lab network's forwarded traffic (Docker and UFW set the FORWARD policy to DROP): run 'npm run lab -- doctor <stack>'. Else a firewall between the host and the internet blocks these connections: allow the hosts listed in the README, set a proxy, or install air-gapped (cilium-lab:k3sAirgapDir)." ;;
    TLS) printf '%s' "the TLS handshake failed: a proxy or firewall that intercepts HTTPS (its CA is not trusted by the node: add it to the image, or let these hosts through uninspected), or a wrong clock (compare 'date -u' on the node and the host)." ;;
    HTTP) printf '%s' "the server, or a proxy on the way, answered with an error or not at all: HTTP 404 from a k3s URL means cilium-lab:k3sVersion is not a published release (https://github.com/k3s-io/k3s/releases); 403, 407, 429 and 5xx usually come from a proxy or a rate limit: check the proxy, or retry later." ;;
    *) printf '%s' "look up curl's exit code in https://curl.se/docs/manpage.html#EXIT; the line above shows curl's own message." ;;
  esac
}

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME; its separator follows the locale).
now_us() {
  local t="$EPOCHREALTIME"
  printf '%s' "${t/[.,]/}"
}
# seconds <microseconds>: "0.3" (one decimal, truncated).
seconds() {
  printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000))
}
# without_query <url>: a URL without ?query and #fragment (release-asset redirects carry signatures).
without_query() {
  printf '%s' "${1%%[?#]*}"
}

# probe <name> <url> <out prefix>: writes <prefix>.line (the result line), <prefix>.block (the
# failure block, if any) and <prefix>.rc (0 or the failure's exit code).
probe() {
  local name="$1" url="$2" out="$3"
  local hop="$url" hops=0 start remaining limit connect rc fields message
  local status location t_connect t_app chain
  chain="$(without_query "$url")"
  start="$(now_us)"
  while :; do
    # every hop gets what is left of --max-time (at least 0.1 s), and at most --connect-timeout to connect.
    remaining=$((max_time * 1000000 - ($(now_us) - start)))
    ((remaining > 100000)) || remaining=100000
    limit="$(printf '%d.%06d' $((remaining / 1000000)) $((remaining % 1000000)))"
    connect="$connect_timeout"
    ((remaining >= connect_timeout * 1000000)) || connect="$limit"
    rc=0
    fields="$(curl -sS -o /dev/null -r 0-0 --connect-timeout "$connect" --max-time "$limit" \
      -w '%{http_code}\n%{redirect_url}\n%{time_connect}\n%{time_appconnect}\n' "$hop" 2>"$out.err")" || rc=$?
    status="" location="" t_connect="" t_app=""
    { read -r status; read -r location; read -r t_connect; read -r t_app; } <<<"$fields" || true
    message="$(grep -m1 '^curl: (' "$out.err" || true)"
    classify "$rc" "${status:-000}" "$hop" "${t_connect:-0}" "${t_app:-0}" "$message"
    [[ "$class" == redirect ]] || break
    if [[ -z "$location" ]]; then
      class=HTTP what="$(host_of "$hop") answered HTTP $status without a Location header" code=22
      break
    fi
    if ((hops == MAX_HOPS)); then
      class=HTTP what="more than $MAX_HOPS redirects from $(host_of "$url")" code=47
      break
    fi
    hops=$((hops + 1))
    hop="$location"
    chain+=" -> $(without_query "$hop")"
  done
  local elapsed via=""
  elapsed="$(seconds $(($(now_us) - start)))"
  if [[ "$class" == ok ]]; then
    if ((hops == 1)); then
      via=" after a redirect to $(host_of "$hop")"
    elif ((hops > 1)); then
      via=" after $hops redirects to $(host_of "$hop")"
    fi
    printf 'cilium-lab[%s]: probe %s %s: ok (%s%s, %s s)\n' "$node" "$name" "$url" "$what" "$via" "$elapsed" >"$out.line"
    printf '0' >"$out.rc"
    return 0
  fi
  # a failure after redirects names the host that failed in `what`; say where the chain began.
  ((hops == 0)) || [[ "$code" == 47 ]] || via=", redirected from $(host_of "$url")"
  local how="$elapsed s"
  [[ "$rc" == 0 ]] || how="curl exit $rc, $elapsed s"
  printf 'cilium-lab[%s]: probe %s %s: failed: %s: %s%s (%s)\n' "$node" "$name" "$url" "$class" "$what" "$via" "$how" >"$out.line"
  local details=("$class: $what")
  ((hops == 0)) || details+=("redirects: $chain")
  [[ -z "$message" ]] || details+=("$message")
  error_block "$code" "probe $name" "$(fix_for "$class")" "${details[@]}" >"$out.block"
  printf '%s' "$code" >"$out.rc"
}

main() {
  while (($# > 0)); do
    case "$1" in
      --node) node="${2:?--node needs a value}"; shift 2 ;;
      --connect-timeout) connect_timeout="${2:?--connect-timeout needs a value}"; shift 2 ;;
      --max-time) max_time="${2:?--max-time needs a value}"; shift 2 ;;
      --url)
        local spec="${2:?--url needs NAME=URL}"
        [[ "$spec" =~ ^([A-Za-z0-9][A-Za-z0-9._:-]*)=(https?://[^/?#[:space:]]+[^[:space:]]*)$ ]] ||
          { printf 'probe-upstreams.sh: --url takes NAME=http(s)://HOST/… (got %q)\n' "$spec" >&2; exit 2; }
        names+=("${BASH_REMATCH[1]}")
        urls+=("${BASH_REMATCH[2]}")
        shift 2
        ;;
      *) printf 'probe-upstreams.sh: unknown argument %q (usage: --node NAME [--connect-timeout S] [--max-time S] --url NAME=URL…)\n' "$1" >&2; exit 2 ;;
    esac
  done
  [[ -n "$node" ]] || { echo "probe-upstreams.sh: --node is required" >&2; exit 2; }
  ((${#urls[@]} > 0)) || { echo "probe-upstreams.sh: at least one --url NAME=URL is required" >&2; exit 2; }
  [[ "$connect_timeout" =~ ^[1-9][0-9]*$ && "$max_time" =~ ^[1-9][0-9]*$ ]] ||
    { echo "probe-upstreams.sh: --connect-timeout and --max-time take whole seconds > 0 (got '$connect_timeout', '$max_time')" >&2; exit 2; }

  command -v curl >/dev/null 2>&1 ||
    fail 127 "probe the upstreams" "install curl on the node image (Ubuntu cloud images ship it)." "curl is not installed on $(hostname)"

  local tmp i
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $tmp now: it is local to main.
  trap "rm -rf '$tmp'" EXIT
  for i in "${!urls[@]}"; do
    probe "${names[$i]}" "${urls[$i]}" "$tmp/$i" &
  done
  wait

  local first=0 rc
  for i in "${!urls[@]}"; do
    if [[ ! -s "$tmp/$i.rc" ]]; then
      # the probe itself broke (no result written): a failure too, never a silent pass.
      printf 'cilium-lab[%s]: probe %s %s: failed: OTHER: the probe wrote no result\n' "$node" "${names[$i]}" "${urls[$i]}" >"$tmp/$i.line"
      error_block 1 "probe ${names[$i]}" "$(fix_for OTHER)" "the probe wrote no result" "$(cat "$tmp/$i.err" 2>/dev/null || true)" >"$tmp/$i.block"
      printf '1' >"$tmp/$i.rc"
    fi
    cat "$tmp/$i.line" >&2
  done
  for i in "${!urls[@]}"; do
    rc="$(cat "$tmp/$i.rc")"
    if [[ "$rc" != 0 ]]; then
      cat "$tmp/$i.block" >&2
      ((first != 0)) || first="$rc"
    fi
  done
  exit "$first"
}

# sourced (the classification's table test): define the functions only.
if ! (return 0 2>/dev/null); then
  main "$@"
fi
