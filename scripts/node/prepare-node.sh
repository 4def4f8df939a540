#!/usr/bin/env bash
# Runs on a lab node as root, after cloud-init and before k3s: checks the kernel modules and sysctls
# a k3s node without flannel needs, and the node's lab address; repairs what is missing in the
# running kernel (idempotently: a second run changes nothing); creates the staging directory the k3s
# layer copies its files into.
#
# shipped over SSH on stdin by the k3s layer (infra/k3s), after lib.sh (its log and fail), with the
# module and sysctl lists of the nodes layer (infra/nodes/cloud-init.ts, which persists them through
# cloud-init at every boot):
#   sudo bash -s -- --node node-1 --node-ip 192.168.150.11 --staging-dir /var/lib/cilium-lab \
#     --module br_netfilter --module overlay … --sysctl net.ipv4.ip_forward=1 … \
#     < <(cat scripts/node/lib.sh scripts/node/prepare-node.sh)
#
# It prints one line per check on stderr: `ok` (already right) or `fixed` (changed now, in the
# running kernel only: cloud-init's files make it permanent, so a `fixed` line means cloud-init did
# not apply them; see /var/log/cloud-init-output.log).
# exit 0: the node is ready for k3s. else: `cilium-lab error: node=… step=… exit=…` and the fix.
set -euo pipefail

node=""
node_ip=""
staging=""
modules=()
sysctls=()
while (($# > 0)); do
  case "$1" in
    --node) node="${2:?--node needs a value}"; shift 2 ;;
    --node-ip) node_ip="${2:?--node-ip needs a value}"; shift 2 ;;
    --staging-dir) staging="${2:?--staging-dir needs a value}"; shift 2 ;;
    --module) modules+=("${2:?--module needs a value}"); shift 2 ;;
    --sysctl) sysctls+=("${2:?--sysctl needs KEY=VALUE}"); shift 2 ;;
    *) printf 'prepare-node.sh: unknown argument %q (usage: --node NAME --node-ip IP --staging-dir DIR [--module M]… [--sysctl K=V]…)\n' "$1" >&2; exit 2 ;;
  esac
done
[[ -n "$node" && -n "$node_ip" && "$staging" == /* ]] ||
  { echo "prepare-node.sh: --node, --node-ip and an absolute --staging-dir are required" >&2; exit 2; }

[[ $EUID -eq 0 ]] || fail 1 "check privileges" "run it with sudo (the k3s layer does)." "running as uid $EUID, not root"

# kernel modules: modprobe is a no-op for a loaded or built-in module.
step="load kernel modules"
for module in "${modules[@]}"; do
  if [[ -d "/sys/module/$module" ]]; then
    log "ok: kernel module $module is loaded"
    continue
  fi
  # a built-in module without parameters has no /sys/module entry.
  if grep -q "/$module\.ko" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null; then
    log "ok: kernel module $module is built in"
    continue
  fi
  rc=0
  out="$(modprobe "$module" 2>&1)" || rc=$?
  ((rc == 0)) || fail "$rc" "$step" "use an image whose kernel ships $module (Ubuntu cloud images do); check with 'modinfo $module'." \
    "modprobe $module failed (exit $rc) on kernel $(uname -r)" "$out"
  log "fixed: loaded kernel module $module"
done

# sysctls (after the modules: the bridge keys exist only once br_netfilter is loaded).
step="set sysctls"
for entry in "${sysctls[@]}"; do
  key="${entry%%=*}"
  want="${entry#*=}"
  path="/proc/sys/${key//.//}"
  [[ -f "$path" ]] || fail 1 "$step" "load the module that provides $key (see the kernel module checks above)." "sysctl $key does not exist on kernel $(uname -r)"
  have="$(cat "$path")"
  if [[ "$have" == "$want" ]]; then
    log "ok: $key = $want"
  else
    printf '%s\n' "$want" >"$path"
    log "fixed: $key = $want (was $have)"
  fi
done

# the lab address: k3s advertises --node-ip; if it is not ours, routes and tunnels would use
# another network. see https://docs.k3s.io/cli/server#listeners
step="check the node address"
mapfile -t addresses < <(ip -4 -o addr show | awk '{ print $2, $4 }')
found=""
for entry in "${addresses[@]}"; do
  if [[ "${entry#* }" == "$node_ip/"* ]]; then
    found="${entry%% *}"
  fi
done
[[ -n "$found" ]] || fail 1 "$step" "check the libvirt DHCP reservation for this node's MAC (virsh net-dumpxml <network>) and the node's network-config." \
  "--node-ip $node_ip is not assigned to any interface; IPv4 addresses found:" "${addresses[@]}"
log "ok: $node_ip is on $found"
if [[ -z "$(ip -4 route show default)" ]]; then
  # k3s's air-gap guide: "K3s requires a default route in order to auto-detect the node's primary IP"
  # (with --node-ip set it still needs one for kube-proxy's ClusterIP routing).
  log "warning: no IPv4 default route; ClusterIP services may not work. see https://docs.k3s.io/installation/airgap"
fi

# staging directory: the k3s layer copies its scripts (and the air-gap files) here over SFTP as the
# login user, so that user owns it; the scripts run from it as root.
step="create the staging directory"
owner="${SUDO_USER:-root}"
for dir in "$staging" "$staging/airgap" "$staging/airgap/images"; do
  install -d -m 0700 -o "$owner" -g "$(id -gn "$owner")" "$dir"
done
log "ok: staging directory $staging (owner $owner)"
