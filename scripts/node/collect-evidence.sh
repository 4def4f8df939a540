#!/usr/bin/env bash
# Prints ONE JSON document with the raw datapath facts of this machine (a lab node), or of the
# network namespace it runs in: links, IPv4 routes and addresses (`ip -j`), the NIC's offload
# flags (`ethtool -k`, parsed), its driver (`ethtool -i`), the kernel release, and the same link,
# route and address lists from inside pod network namespaces (where Cilium puts the pod route MTU),
# and the iptables table and chain declarations (`iptables-save` lines starting with `*` or `:`;
# kube-proxy's KUBE-SERVICES chain must be gone when Cilium replaces kube-proxy).
# Nothing is interpreted here: infra/verify/evidence/ parses and judges the document.
#
# Usage: collect-evidence.sh <nic | node IPv4> [--pod-netns <name or glob>] [--max-pods <n>]
#   <nic>           the node's lab NIC (eth0, enp1s0, …), or the node's IPv4 address: the NIC is
#                   then the interface holding it.
#   --pod-netns     which `ip netns` names are pods (default `cni-*`: containerd's CNI namespaces,
#                   as `link-netns cni-…` shows in the article's `ip a`). In tests: the client
#                   namespace's own name.
#   --max-pods      at most this many pod namespaces (default 64).
#
# Runs as root (pod namespaces and `ethtool` need it), after lib.sh (its json_str; infra/node-scripts.ts
# puts them together). On a node: `sudo bash -s -- <args> < <(cat scripts/node/lib.sh this)`;
# inside a namespace: `ip netns exec <ns> bash -s -- <nic> --pod-netns <ns>` with the same stdin.
# Needs iproute2 with JSON output (`ip -j`, iproute2 >= 4.14); ethtool and iptables are optional
# (recorded as missing). No jq: the node images don't ship it.
set -euo pipefail

die() {
  printf 'collect-evidence.sh: %s\n' "$*" >&2
  exit 2
}

# Sets REPLY to `ip <args>` JSON output: `[]` when it prints nothing, `null` when it fails (the
# failure is appended to $errors). No subshell, so $errors survives.
errors=()
ip_json() {
  local out
  if ! out=$(ip "$@" 2>&1); then
    errors+=("ip $*: ${out}")
    REPLY=null
  elif [[ -z ${out//[[:space:]]/} ]]; then
    REPLY='[]'
  else
    REPLY=$out
  fi
}

# `ethtool -k <nic>` as {"feature": {"on": bool, "fixed": bool}, …}.
ethtool_features() {
  ethtool -k "$1" | awk '
    BEGIN { printf "{"; n = 0 }
    /^Features for / { next }
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      i = index(line, ": ")
      if (i == 0) next
      name = substr(line, 1, i - 1)
      rest = substr(line, i + 2)
      split(rest, words, " ")
      on = (words[1] == "on") ? "true" : "false"
      fixed = (rest ~ /\[fixed\]/) ? "true" : "false"
      gsub(/["\\]/, "", name)
      printf "%s\"%s\":{\"on\":%s,\"fixed\":%s}", (n++ ? "," : ""), name, on, fixed
    }
    END { printf "}" }'
}

# k3s's own iptables, which it uses when the node has none (k3s unpacks its binaries there).
readonly K3S_AUX=/var/lib/rancher/k3s/data/current/bin/aux

# `iptables-save`-style dumps as a JSON array of {"command", "exitCode", "output"}: the output keeps
# the lines that declare tables (`*nat`) and chains (`:KUBE-SERVICES - [0:0]`), `COMMIT` and the
# comments (iptables-nft warns there about legacy tables), not the rules. Every save command found:
# the nft and legacy variants each see only their own tables.
iptables_dumps() {
  local out="" cmd path text code
  for cmd in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do
    path=$(command -v "$cmd" || true)
    if [[ -z $path && -x $K3S_AUX/$cmd ]]; then
      path=$K3S_AUX/$cmd
    fi
    [[ -n $path ]] || continue
    code=0
    text=$("$path" 2>&1) || code=$?
    if ((code == 0)); then
      text=$(printf '%s\n' "$text" | grep -E '^([*:#]|COMMIT)' || true)
    else
      text=$(printf '%s\n' "$text" | tail -n 5)
    fi
    out+="${out:+,}{\"command\":$(json_str "$path"),\"exitCode\":${code},\"output\":$(json_str "$text")}"
  done
  printf '[%s]' "$out"
}

main() {
  # Read nothing from stdin: on a node the script itself arrives on stdin (`bash -s`).
  exec </dev/null

  local target="" pod_glob="cni-*" max_pods=64
  while (($# > 0)); do
    case $1 in
      --pod-netns)
        (($# >= 2)) || die "--pod-netns needs a value"
        pod_glob=$2
        shift 2
        ;;
      --max-pods)
        if (($# < 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
          die "--max-pods needs a number"
        fi
        max_pods=$2
        shift 2
        ;;
      -*) die "unknown option $1" ;;
      *)
        [[ -z $target ]] || die "one NIC or node IP only (got $target and $1)"
        target=$1
        shift
        ;;
    esac
  done
  [[ -n $target ]] || die "usage: collect-evidence.sh <nic | node IPv4> [--pod-netns <glob>] [--max-pods <n>]"
  command -v ip >/dev/null || die "ip (iproute2) is not installed"

  local nic=$target node_ip=""
  if [[ $target =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    node_ip=$target
    nic=$(ip -o -4 addr show | awk -v ip="$node_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
    [[ -n $nic ]] || die "no interface holds ${node_ip} (ip -o -4 addr show lists: $(ip -o -4 addr show | awk '{print $2 "=" $4}' | tr '\n' ' '))"
  fi
  ip link show dev "$nic" >/dev/null 2>&1 || die "no interface named ${nic} here (ip -o link: $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' '))"

  local ethtool_json="null" driver="null" ethtool_error="null"
  if command -v ethtool >/dev/null; then
    local features
    if features=$(ethtool_features "$nic" 2>&1); then
      ethtool_json=$features
    else
      ethtool_error=$(json_str "ethtool -k ${nic}: ${features}")
    fi
    local drv
    drv=$(ethtool -i "$nic" 2>/dev/null | awk -F': ' '$1 == "driver" { print $2; exit }') || true
    [[ -z $drv ]] || driver=$(json_str "$drv")
  else
    ethtool_error=$(json_str "ethtool is not installed")
  fi

  # Pod namespaces: `ip netns list` prints "<name>" or "<name> (id: N)".
  local pods="" count=0 ns
  while read -r ns _; do
    [[ -n $ns ]] || continue
    # shellcheck disable=SC2254 # the glob is the point
    case $ns in
      $pod_glob) ;;
      *) continue ;;
    esac
    ((count < max_pods)) || break
    count=$((count + 1))
    local pod
    pod="{\"netns\":$(json_str "$ns")"
    ip_json -n "$ns" -j -d link show
    pod+=",\"links\":${REPLY}"
    ip_json -n "$ns" -j -d -4 route show table main
    pod+=",\"routes\":${REPLY}"
    ip_json -n "$ns" -j -4 addr show
    pods+="${pods:+,}${pod},\"addrs\":${REPLY}}"
  done < <(ip netns list 2>/dev/null || true)

  local links routes addrs
  ip_json -j -d link show
  links=$REPLY
  ip_json -j -d -4 route show table main
  routes=$REPLY
  ip_json -j -4 addr show
  addrs=$REPLY

  local iptables
  iptables=$(iptables_dumps)

  local errs="" e
  for e in "${errors[@]+"${errors[@]}"}"; do
    errs+="${errs:+,}$(json_str "$e")"
  done

  printf '{"schema":1,"collector":"collect-evidence.sh","hostname":%s,"kernel":%s,"nic":%s,"nodeIp":%s,"driver":%s,"ethtool":%s,"ethtoolError":%s,"links":%s,"routes":%s,"addrs":%s,"iptables":%s,"podNetnsGlob":%s,"pods":[%s],"errors":[%s]}\n' \
    "$(json_str "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)")" \
    "$(json_str "$(uname -r)")" \
    "$(json_str "$nic")" \
    "$(if [[ -n $node_ip ]]; then json_str "$node_ip"; else printf 'null'; fi)" \
    "$driver" "$ethtool_json" "$ethtool_error" \
    "$links" "$routes" "$addrs" "$iptables" \
    "$(json_str "$pod_glob")" "$pods" "$errs"
}

main "$@"
