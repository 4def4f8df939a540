#!/usr/bin/env bash
# Build (or reuse) the self-booting Debian test image that stands in for the Ubuntu cloud image in
# tests: a qcow2 with an MBR, one ext4 partition labelled `root`, extlinux, cloud-init (NoCloud) and
# the tools the lab needs on a node.
#
# usage: bash scripts/dev/build-test-image.sh
#        eval "$(bash scripts/dev/build-test-image.sh)"   # sets TEST_IMAGE and TEST_IMAGE_SHA256
#
# stdout: exactly two lines, `TEST_IMAGE=<abs path>` and `TEST_IMAGE_SHA256=<hex>`; progress on stderr.
# The image is cached under
#   ${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab}/test-image/<key>/debian-test.qcow2
# where <key> hashes this script, the package list and the suite, so editing any of them rebuilds.
# A cache hit needs no root and takes milliseconds; a build needs root (debootstrap, loop devices).
#
# environment:
#   DEBIAN_MIRROR   debootstrap mirror (default http://deb.debian.org/debian)
#   CILIUM_LAB_CACHE, XDG_CACHE_HOME   cache location (see above)
set -euo pipefail

readonly SUITE=bookworm
# NB python3-cffi-backend must be explicit: without it debootstrap cannot configure
# python3-cryptography (it depends on the virtual python3-cffi-backend-api-min/max) and cloud-init
# stays unconfigured.
readonly PACKAGES=(
  systemd-sysv openssh-server cloud-init python3-cffi-backend iproute2 ifupdown isc-dhcp-client
  linux-image-cloud-amd64 udev sudo
  iperf3 ethtool cloud-guest-utils curl ca-certificates
)
readonly MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly DISK_SIZE_MIB=3072
readonly PART_START_MIB=1
readonly IMAGE_NAME=debian-test.qcow2
# the default user cloud-init creates and gives `ssh_authorized_keys` to; `ubuntu`, as on the Ubuntu
# cloud image this image replaces.
readonly DEFAULT_USER=ubuntu

log() { printf '[build-test-image] %s\n' "$*" >&2; }
die() { printf '[build-test-image] error: %s\n' "$*" >&2; exit 1; }

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
cache_root="${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab}/test-image"
key="$({ cat "$script_path"; printf '%s\n' "${PACKAGES[@]}" "$SUITE"; } | sha256sum | cut -c1-16)"
out_dir="$cache_root/$key"
image="$out_dir/$IMAGE_NAME"
sums="$out_dir/SHA256SUMS"

# print the contract lines for a finished cache entry; fail if the entry is malformed.
print_cached() {
  local sha
  sha="$(awk -v f="$IMAGE_NAME" '$2 == f || $2 == "*" f { print $1 }' "$sums")"
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "$sums has no sha256 line for $IMAGE_NAME (got '${sha}'). Fix: rm -rf '$out_dir' and rerun."
  printf 'TEST_IMAGE=%s\nTEST_IMAGE_SHA256=%s\n' "$image" "$sha"
}

# cache hit: the entry directory is renamed into place only once complete.
if [[ -f "$image" && -f "$sums" ]]; then
  log "cached: $image"
  print_cached
  exit 0
fi

# preflight.
[[ $EUID -eq 0 ]] || die "building the image needs root (debootstrap, losetup, mount); running as uid $EUID. Fix: sudo bash $0 (cache: $cache_root)."
missing=()
for tool in debootstrap:debootstrap sfdisk:fdisk losetup:mount mkfs.ext4:e2fsprogs \
  extlinux:extlinux qemu-img:qemu-utils flock:util-linux sha256sum:coreutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[[ -f /usr/lib/syslinux/mbr/mbr.bin ]] || missing+=(syslinux-common)
((${#missing[@]} == 0)) || die "missing tools; Fix: apt-get install -y ${missing[*]}"

mkdir -p "$cache_root"
# one build at a time per cache; a second caller waits, then finds the finished entry.
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
  log "another build holds $cache_root/.lock; waiting up to 30 min..."
  flock -w 1800 9 || die "timed out after 30 min waiting for $cache_root/.lock (held by another build). Fix: check 'fuser $cache_root/.lock'."
fi
if [[ -f "$image" && -f "$sums" ]]; then
  log "built meanwhile by another process: $image"
  print_cached
  exit 0
fi

work="$(mktemp -d "$cache_root/.build-$key.XXXXXX")"
rootfs="$work/rootfs"
mnt="$work/mnt"
raw="$work/disk.raw"
loopdev=""
started=$SECONDS

cleanup() {
  local rc=$? target
  set +e
  # unmount everything below the work dir, deepest first (debootstrap mounts proc/sys in the target).
  if [[ -n "${work:-}" && -d "$work" ]]; then
    while read -r target; do
      umount "$target" 2>/dev/null || umount -l "$target"
    done < <(findmnt -rn -o TARGET | awk -v w="$work" 'index($0, w) == 1' | sort -r)
  fi
  if [[ -n "$loopdev" ]]; then
    losetup -d "$loopdev"
    # the kernel detaches asynchronously; wait (bounded) so that "removed" below is true.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [[ -z "$(losetup -j "$raw" 2>/dev/null)" ]] && break
      sleep 0.5
    done
    [[ -z "$(losetup -j "$raw" 2>/dev/null)" ]] \
      || log "warning: $loopdev is still attached to $raw. Fix: losetup -d $loopdev"
  fi
  # --one-file-system: never follow a mount we failed to remove.
  [[ -n "${work:-}" && -d "$work" ]] && rm -rf --one-file-system "$work"
  if ((rc != 0)); then
    log "failed after $((SECONDS - started)) s (exit $rc); loop device and mounts removed, nothing cached."
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bootstrap the root filesystem.
log "cache miss (key $key); debootstrap $SUITE from $MIRROR (a few minutes)..."
include="$(IFS=,; echo "${PACKAGES[*]}")"
mkdir -p "$cache_root/debs"
if ! debootstrap --variant=minbase --include="$include" --cache-dir="$cache_root/debs" \
  "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  if [[ -f "$rootfs/debootstrap/debootstrap.log" ]]; then
    tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2
  fi
  die "debootstrap $SUITE from $MIRROR failed (log tail above). Fix: check the mirror is reachable (set DEBIAN_MIRROR=<url>) and the package list."
fi
log "debootstrap done ($((SECONDS - started)) s)"

# configure the guest.
# cloud-init renders NoCloud network-config for ifupdown into interfaces.d; without the source line
# the NIC never asks for a lease and cloud-init still reports success.
cat >"$rootfs/etc/network/interfaces" <<'EOF'
# cloud-init writes the NIC configuration to interfaces.d.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
mkdir -p "$rootfs/etc/network/interfaces.d"
cat >"$rootfs/etc/fstab" <<'EOF'
LABEL=root / ext4 defaults,errors=remount-ro 0 1
EOF
echo debian-test >"$rootfs/etc/hostname"
cat >"$rootfs/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
EOF
# NB minbase has no `locales` package (no locale-gen/update-locale); cloud-init's locale module then
# fails ("update-locale ... LANG=en_US.UTF-8") unless the system locale is already set. C.UTF-8 is
# built into libc and is what Ubuntu cloud images use.
echo 'LANG=C.UTF-8' >"$rootfs/etc/default/locale"
cat >"$rootfs/etc/cloud/cloud.cfg.d/90_dpkg.cfg" <<'EOF'
# cilium-lab test image: seeds come from a NoCloud ISO (label cidata).
datasource_list: [ NoCloud, None ]
EOF
cat >"$rootfs/etc/cloud/cloud.cfg.d/91_cilium_lab_user.cfg" <<EOF
# cilium-lab test image: the default user matches the Ubuntu cloud image's.
system_info:
  default_user:
    name: $DEFAULT_USER
    lock_passwd: true
    gecos: Ubuntu
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
EOF
cat >"$rootfs/etc/cloud/cloud.cfg.d/92_cilium_lab_tcg.cfg" <<'EOF'
# cilium-lab test image: without `ssh_keys` in the seed, make only an ed25519 host key; an RSA-3072
# key alone takes tens of seconds under TCG.
ssh_genkeytypes: [ed25519]
EOF
# a test node does only what the test asks: no periodic apt, trim or scrub jobs competing for TCG CPU.
rm -f "$rootfs"/etc/systemd/system/timers.target.wants/{apt-daily,apt-daily-upgrade,dpkg-db-backup,e2scrub_all,fstrim}.timer \
  "$rootfs/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service"
# every instance gets its own identity: cloud-init makes host keys (or writes `ssh_keys`), systemd a
# machine-id.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs/var/lib/cloud"
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
EOF

kernel="$(cd "$rootfs/boot" && find . -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)"
initrd="initrd.img-${kernel#vmlinuz-}"
[[ -n "$kernel" && -f "$rootfs/boot/$initrd" ]] || die "no kernel/initrd in $rootfs/boot (found '$kernel'); linux-image-cloud-amd64 did not install. See $work/debootstrap.log."
mkdir -p "$rootfs/boot/extlinux"
cat >"$rootfs/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
PROMPT 0
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=root rw console=ttyS0 net.ifnames=0
EOF
# shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not a shell variable.
cloud_init_version="$(chroot "$rootfs" dpkg-query -W -f '${Version}' cloud-init)"
log "configured (kernel $kernel, cloud-init $cloud_init_version, default user $DEFAULT_USER)"

# disk: MBR, one bootable partition from 1 MiB.
truncate -s "${DISK_SIZE_MIB}M" "$raw"
printf 'label: dos\nstart=%d, type=83, bootable\n' $((PART_START_MIB * 2048)) | sfdisk -q "$raw" \
  || die "sfdisk could not partition $raw."
# NB without udev, /dev/loopNp1 never appears: attach the partition itself with an offset.
loopdev="$(losetup -f --show -o $((PART_START_MIB * 1048576)) \
  --sizelimit $(((DISK_SIZE_MIB - PART_START_MIB) * 1048576)) "$raw")" \
  || die "losetup could not attach $raw. Fix: make sure loop devices are available (modprobe loop; ls /dev/loop*)."
mkfs.ext4 -q -L root "$loopdev"
mkdir -p "$mnt"
mount "$loopdev" "$mnt"
cp -a "$rootfs/." "$mnt/"
extlinux --install "$mnt/boot/extlinux" 2>"$work/extlinux.log" \
  || { cat "$work/extlinux.log" >&2; die "extlinux --install failed on $loopdev."; }
umount "$mnt"
losetup -d "$loopdev"
loopdev=""
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
log "disk written ($((SECONDS - started)) s)"

# convert, checksum, publish atomically.
mkdir -p "$work/out"
qemu-img convert -O qcow2 "$raw" "$work/out/$IMAGE_NAME"
rm -f "$raw"
(cd "$work/out" && sha256sum "$IMAGE_NAME" >SHA256SUMS)
printf 'suite=%s\nmirror=%s\nkernel=%s\ncloud-init=%s\ndefault-user=%s\npackages=%s\n' \
  "$SUITE" "$MIRROR" "$kernel" "$cloud_init_version" "$DEFAULT_USER" "$include" >"$work/out/BUILDINFO"
rm -rf "$out_dir"
mv "$work/out" "$out_dir"
log "built $image ($(du -m "$image" | cut -f1) MiB) in $((SECONDS - started)) s"
# older entries may still back someone's running VMs: name them, never delete them here.
for old in "$cache_root"/*/"$IMAGE_NAME"; do
  if [[ -f "$old" && "$old" != "$image" ]]; then
    log "older image kept (rm -rf '$(dirname "$old")' to reclaim space): $old"
  fi
done
print_cached
