#!/usr/bin/env bash
# Baseline for the provider benchmark: boot N domains of the test image with plain virsh (NAT network
# with DHCP host reservations, qcow2 overlays, NoCloud seeds from cloud-localds, host keys pre-set
# through cloud-init ssh_keys) and time how long until every node answers SSH with a generated key
# and the pinned host key and has finished cloud-init: the same readiness as the Domain provider's
# (its READY_COMMAND, infra/libvirt/domain/readiness.ts). Prints one JSON line on stdout; progress on
# stderr. Everything it creates is named cl-bench-<run>-* and removed on exit; consoles and qemu logs
# are kept in bench/out/<run>/.
#
# usage: bash bench/virsh-boot.sh [count=3] [accel=tcg|kvm] [cidr=192.168.199.0/24]
# environment:
#   TEST_IMAGE          base qcow2 (default: whatever scripts/dev/build-test-image.sh prints)
#   BOOT_TIMEOUT        seconds until every node must answer SSH (default 600)
#   MEMORY_MIB          memory per node (default 1024)
#   DISK_SIZE           overlay size per node (default 8G)
#   LIBVIRT_POOL_DIR    where the run's files go (default /var/lib/libvirt/images)
set -euo pipefail

count="${1:-3}"
accel="${2:-tcg}"
cidr="${3:-192.168.199.0/24}"
boot_timeout="${BOOT_TIMEOUT:-600}"
memory_mib="${MEMORY_MIB:-1024}"
disk_size="${DISK_SIZE:-8G}"
pool_dir="${LIBVIRT_POOL_DIR:-/var/lib/libvirt/images}"
readonly uri=qemu:///system user=ubuntu

log() { printf '[virsh-boot] %s\n' "$*" >&2; }
die() { printf '[virsh-boot] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
virsh() { LC_ALL=C command virsh -q -c "$uri" "$@"; }

# validate arguments.
[[ "$count" =~ ^[1-9][0-9]*$ && "$count" -le 50 ]] || die "count must be 1..50 (got '$count')."
case "$accel" in
  # NB qemu64 advertises AMD's svm; the guest then loads kvm modules for nothing.
  tcg) domain_type=qemu; cpu_xml="<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model><feature policy='disable' name='svm'/></cpu>" ;;
  kvm) domain_type=kvm; cpu_xml="<cpu mode='host-passthrough'/>" ;;
  *) die "accel must be tcg or kvm (got '$accel')." ;;
esac
[[ "$boot_timeout" =~ ^[0-9]+$ ]] || die "BOOT_TIMEOUT must be whole seconds (got '$boot_timeout')."
[[ $EUID -eq 0 ]] || die "needs root for qemu:///system and $pool_dir (running as uid $EUID). Fix: sudo bash $0."
for tool in virsh:libvirt-clients qemu-img:qemu-utils cloud-localds:cloud-image-utils \
  ssh:openssh-client ssh-keygen:openssh-client ip:iproute2; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || die "\`${tool%%:*}\` not found on PATH. Fix: apt-get install -y ${tool#*:}."
done
virsh version >/dev/null 2>&1 || die "cannot reach libvirt at $uri. Fix: bash .ci/host-setup.sh (starts virtlogd and libvirtd)."

# IPv4 arithmetic on 32-bit integers.
ip2int() { local IFS=.; read -r a b c d <<<"$1"; echo $(((a << 24) | (b << 16) | (c << 8) | d)); }
int2ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }
mask() { echo $(((0xffffffff << (32 - $1)) & 0xffffffff)); }
valid_ip() { [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] && ((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256 && BASH_REMATCH[4] < 256)); }
# overlaps <net-int> <prefix> <net-int> <prefix>: true when the two ranges share an address.
overlaps() { local p=$(($2 < $4 ? $2 : $4)) m; m=$(mask "$p"); ((($1 & m) == ($3 & m))); }

if ! { [[ "$cidr" == */* ]] && valid_ip "${cidr%/*}" && [[ "${cidr#*/}" =~ ^[0-9]+$ ]]; }; then
  die "cidr must look like 192.168.199.0/24 (got '$cidr')."
fi
prefix="${cidr#*/}"
((prefix >= 16 && prefix <= 28)) || die "cidr prefix must be /16../28 (got /$prefix in '$cidr')."
net_int=$(ip2int "${cidr%/*}")
if ((net_int != (net_int & $(mask "$prefix")))); then
  die "cidr '$cidr' has host bits set. Fix: use $(int2ip $((net_int & $(mask "$prefix"))))/$prefix."
fi
((count + 10 < (1 << (32 - prefix)) - 1)) || die "cidr '$cidr' is too small for $count nodes at .10 onwards."

# the range must not touch any host route, interface address or (even inactive) libvirt network.
# NB libvirt itself refuses only an exact route match; a partial overlap breaks host routing.
check_free() {
  local line dest p ip
  while read -r line; do
    dest="$(awk '{ i = 1; if ($1 ~ /^(local|broadcast|unicast|anycast|multicast|unreachable|blackhole|prohibit|throw|nat)$/) i = 2; print $i }' <<<"$line")"
    [[ "$dest" == default || -z "$dest" ]] && continue
    [[ "$dest" == */* ]] || dest="$dest/32"
    valid_ip "${dest%/*}" || continue
    if overlaps "$net_int" "$prefix" "$(ip2int "${dest%/*}")" "${dest#*/}"; then
      die "cidr '$cidr' overlaps host route '$line'. Fix: pass a free range as third argument, e.g. 192.168.197.0/24."
    fi
  done < <(ip -4 route show table all; ip -o -4 addr show | awk '{ print $4, "dev", $2 }')
  local net xml
  while read -r net; do
    [[ -n "$net" ]] || continue
    xml="$(virsh net-dumpxml "$net" 2>/dev/null || true)"
    ip="$(sed -n "s/.*<ip [^>]*address='\([0-9.]*\)'.*/\1/p" <<<"$xml" | head -n 1)"
    [[ -n "$ip" ]] || continue
    p="$(sed -n "s/.*<ip [^>]*prefix='\([0-9]*\)'.*/\1/p" <<<"$xml" | head -n 1)"
    if [[ -z "$p" ]]; then
      local nm
      nm="$(sed -n "s/.*<ip [^>]*netmask='\([0-9.]*\)'.*/\1/p" <<<"$xml" | head -n 1)"
      nm=$(ip2int "${nm:-255.255.255.0}")
      p=0
      while ((nm & 0x80000000)); do p=$((p + 1)); nm=$(((nm << 1) & 0xffffffff)); done
    fi
    if overlaps "$net_int" "$prefix" "$(ip2int "$ip")" "$p"; then
      die "cidr '$cidr' overlaps libvirt network '$net' ($ip/$p). Fix: pass another range, or remove it: virsh net-destroy $net; virsh net-undefine $net."
    fi
  done < <(virsh net-list --all --name)
}
check_free

# base image.
repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
if [[ -z "${TEST_IMAGE:-}" ]]; then
  eval "$(bash "$repo/scripts/dev/build-test-image.sh")"
fi
[[ -f "$TEST_IMAGE" ]] || die "TEST_IMAGE '$TEST_IMAGE' does not exist. Fix: eval \"\$(bash scripts/dev/build-test-image.sh)\"."

# names: cl-bench-<run>-*, never used by the project.
run="$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
name="cl-bench-$run"
net_name="$name-net"
bridge="clb-$run"
gateway="$(int2ip $((net_int + 1)))"
netmask="$(int2ip "$(mask "$prefix")")"
work="$pool_dir/$name"
domains=()
net_defined=0
t_begin="$(now)"

cleanup() {
  local rc=$? d
  set +e
  trap - EXIT INT TERM
  for d in "${domains[@]}"; do
    if virsh domstate "$d" >/dev/null 2>&1; then
      [[ "$(virsh domstate "$d" 2>/dev/null)" == "shut off" ]] || virsh destroy "$d" >/dev/null 2>&1
      virsh undefine "$d" --nvram --managed-save >/dev/null 2>&1 || virsh undefine "$d" >/dev/null 2>&1
    fi
  done
  if ((net_defined)); then
    virsh net-destroy "$net_name" >/dev/null 2>&1
    virsh net-undefine "$net_name" >/dev/null 2>&1
  fi
  # keep the consoles for diagnosis (bench/out/ is git-ignored).
  if [[ -d "$work" ]]; then
    mkdir -p "$repo/bench/out/$name"
    for d in "$work"/node-*/console.log; do
      [[ -f "$d" ]] && cp "$d" "$repo/bench/out/$name/$(basename "$(dirname "$d")").console.log"
    done
    rm -rf --one-file-system "$work"
  fi
  for d in /var/log/libvirt/qemu/"$name"-node-*.log; do
    [[ -f "$d" ]] && mv "$d" "$repo/bench/out/$name/$(basename "$d" .log).qemu.log"
  done
  # pollers run in the background; they end on their own deadline, stop them sooner.
  jobs -p | xargs -r kill 2>/dev/null
  log "cleaned up $name (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# files: the qemu user must traverse the dir; seeds and keys stay 0600.
install -d -m 0711 "$work"
log "run $name: $count node(s), $accel, $cidr, image $TEST_IMAGE"
cp --reflink=auto --sparse=always "$TEST_IMAGE" "$work/base.qcow2"
ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$work/id_ed25519"
pubkey="$(cat "$work/id_ed25519.pub")"

hosts_xml=""
for i in $(seq 1 "$count"); do
  macs[i]="$(printf '52:54:00:cb:%s:%02x' "${run:0:2}" "$i")"
  ips[i]="$(int2ip $((net_int + 9 + i)))"
  hosts_xml+="<host mac='${macs[i]}' name='$name-node-$i' ip='${ips[i]}'/>"
done

cat >"$work/net.xml" <<EOF
<network>
  <name>$net_name</name>
  <forward mode='nat'/>
  <bridge name='$bridge' stp='off'/>
  <ip address='$gateway' netmask='$netmask'>
    <dhcp>$hosts_xml</dhcp>
  </ip>
</network>
EOF
virsh net-define "$work/net.xml" >/dev/null
net_defined=1
virsh net-start "$net_name" >/dev/null || die "virsh net-start $net_name failed (bridge $bridge, $cidr); see the message above."

for i in $(seq 1 "$count"); do
  node="$name-node-$i"
  dir="$work/node-$i"
  install -d -m 0711 "$dir"
  qemu-img create -q -f qcow2 -F qcow2 -b "$work/base.qcow2" "$dir/disk.qcow2" "$disk_size"
  # pre-set host key (as the provider does): cloud-init writes it instead of generating keys, and
  # the poller below pins it.
  ssh-keygen -q -t ed25519 -N '' -C "$node" -f "$dir/ssh_host_ed25519_key"
  echo "${ips[i]} $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
  {
    echo '#cloud-config'
    echo 'ssh_authorized_keys:'
    echo "  - $pubkey"
    echo 'ssh_keys:'
    echo '  ed25519_private: |'
    sed 's/^/    /' "$dir/ssh_host_ed25519_key"
    echo "  ed25519_public: $(cat "$dir/ssh_host_ed25519_key.pub")"
  } >"$dir/user-data"
  cat >"$dir/meta-data" <<EOF
instance-id: $node
local-hostname: $node
EOF
  cat >"$dir/network-config" <<EOF
version: 2
ethernets:
  eth0:
    match:
      macaddress: "${macs[i]}"
    set-name: eth0
    dhcp4: true
EOF
  (umask 077 && cloud-localds -N "$dir/network-config" "$dir/seed.iso" "$dir/user-data" "$dir/meta-data")
  cat >"$dir/domain.xml" <<EOF
<domain type='$domain_type'>
  <name>$node</name>
  <memory unit='MiB'>$memory_mib</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  $cpu_xml
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$dir/disk.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$dir/seed.iso'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <interface type='network'><source network='$net_name'/><mac address='${macs[i]}'/><model type='virtio'/></interface>
    <serial type='file'><source path='$dir/console.log'/><target port='0'/></serial>
  </devices>
</domain>
EOF
  virsh define "$dir/domain.xml" >/dev/null
  domains+=("$node")
done
setup_s="$(since "$t_begin")"
log "network, overlays, seeds and domains defined in $setup_s s; starting..."

# boot and time SSH per node; one background poller per node writes its elapsed seconds.
t_start="$(now)"
for i in $(seq 1 "$count"); do
  if ! virsh start "$name-node-$i" >/dev/null; then
    hint="see the libvirt error above and bench/out/$name/$name-node-$i.qemu.log"
    [[ "$accel" == kvm ]] && hint+="; if KVM cannot run guests on this host (e.g. 'failed to set MSR'), use accel tcg"
    die "virsh start $name-node-$i failed ($accel). Fix: $hint."
  fi
done
start_s="$(since "$t_start")"
deadline=$((SECONDS + boot_timeout))
for i in $(seq 1 "$count"); do
  (
    while ((SECONDS < deadline)); do
      if timeout $((deadline - SECONDS + 1)) ssh -q -i "$work/id_ed25519" -o BatchMode=yes -o ConnectTimeout=5 \
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$work/node-$i/known_hosts" -o LogLevel=ERROR \
        "$user@${ips[i]}" 'cloud-init status --wait >/dev/null 2>&1; sync' </dev/null 2>/dev/null; then
        since "$t_start" >"$work/node-$i/ssh_s"
        exit 0
      fi
      sleep 2
    done
  ) &
done
wait

ssh_list=()
failed=()
for i in $(seq 1 "$count"); do
  if [[ -s "$work/node-$i/ssh_s" ]]; then
    ssh_list+=("$(cat "$work/node-$i/ssh_s")")
  else
    failed+=("$name-node-$i (${macs[i]}, ${ips[i]})")
    log "console tail of $name-node-$i:"
    tail -n 15 "$work/node-$i/console.log" >&2 2>/dev/null || true
  fi
done
if ((${#failed[@]} > 0)); then
  die "no SSH within $boot_timeout s from: ${failed[*]}. Leases: $(virsh net-dhcp-leases "$net_name" 2>/dev/null | awk '{ print $3, $5 }' | paste -sd ';'). Fix: raise BOOT_TIMEOUT, or check the console tail above."
fi
all_ssh_s="$(printf '%s\n' "${ssh_list[@]}" | sort -n | tail -n 1)"
log "all $count node(s) answer SSH after $all_ssh_s s"

printf '{"tool":"virsh","run":"%s","count":%d,"accel":"%s","cidr":"%s","memory_mib":%d,"setup_s":%s,"start_s":%s,"ssh_s":[%s],"all_ssh_s":%s,"total_s":%s}\n' \
  "$name" "$count" "$accel" "$cidr" "$memory_mib" "$setup_s" "$start_s" \
  "$(IFS=,; echo "${ssh_list[*]}")" "$all_ssh_s" "$(since "$t_begin")"
