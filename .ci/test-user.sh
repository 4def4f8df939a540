#!/usr/bin/env bash
# Prepare the unprivileged test user CI runs the libvirt and VM suites as (scripts/run-tests.mjs),
# and check that libvirt treats it as the README's users are treated. Idempotent; run as root by
# .ci/host-setup.sh after libvirtd, D-Bus and polkitd are up.
# - the test user ${CILIUM_LAB_TEST_USER:-clab}: uid ≠ 0, in group libvirt, no sudo, a home;
# - its outsider <user>-out: not in group libvirt (the fault row of a user outside the group);
# - the grant: as the user `virsh -c qemu:///system version` works (Debian's polkit rule
#   /usr/share/polkit-1/rules.d/60-libvirt.rules grants group libvirt), as the outsider it fails
#   with libvirt's polkit message;
# - the checkout is readable by the user (it runs ava from it);
# - the caches: ${CILIUM_LAB_CACHE:-/var/cache/cilium-lab} (0755). A machine that has only the old
#   root cache (${XDG_CACHE_HOME:-~/.cache}/cilium-lab) gets it hard-linked there once (`cp -al`:
#   instant, and the old path keeps working), so a warm machine stays warm. Every file in it must be
#   readable by the user, but the toolchain's PULUMI_HOME (root's plugins, logs and workspaces for
#   the engine tests, which run as root; the user's Pulumi keeps its state under its own HOME).
#
# usage: bash .ci/test-user.sh
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
user="${CILIUM_LAB_TEST_USER:-clab}"
outsider="$user-out"
cache="${CILIUM_LAB_CACHE:-/var/cache/cilium-lab}"
old_cache="${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab"
readonly uri=qemu:///system

log() { printf '[test-user] %s\n' "$*" >&2; }
die() { printf '[test-user] error: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (useradd, runuser); running as uid $EUID. Fix: sudo bash $0."
[[ "$user" =~ ^[a-z_][a-z0-9_-]{0,27}$ ]] || die "CILIUM_LAB_TEST_USER='$user' is not a valid user name (lower case letters, digits, _ and -)."
getent group libvirt >/dev/null || die "group libvirt does not exist. Fix: apt-get install -y libvirt-daemon-system (it creates the group and the polkit rule)."

# the users.
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups libvirt "$user"
  log "created user $user (group libvirt)"
elif ! id -nG "$user" | tr ' ' '\n' | grep -qx libvirt; then
  usermod -aG libvirt "$user"
  log "added $user to group libvirt"
fi
if ! id "$outsider" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$outsider"
  log "created user $outsider (not in group libvirt)"
elif id -nG "$outsider" | tr ' ' '\n' | grep -qx libvirt; then
  gpasswd -d "$outsider" libvirt >/dev/null
  log "removed $outsider from group libvirt"
fi
for u in "$user" "$outsider"; do
  [[ "$(id -u "$u")" != 0 ]] || die "user $u has uid 0. Fix: pick another CILIUM_LAB_TEST_USER (the tests must run unprivileged)."
  extra="$(id -nG "$u" | tr ' ' '\n' | grep -xE 'root|sudo|wheel|adm|disk|kvm' || true)"
  [[ -z "$extra" ]] || die "user $u is in group(s) $(echo "$extra" | paste -sd, -), which make it (nearly) root. Fix: gpasswd -d $u <group>, or pick another CILIUM_LAB_TEST_USER."
  if grep -rqw -- "$u" /etc/sudoers /etc/sudoers.d 2>/dev/null; then
    die "a sudoers entry names $u ($(grep -rlw -- "$u" /etc/sudoers /etc/sudoers.d | paste -sd, -)). Fix: remove it; the test user has no sudo."
  fi
done
home="$(getent passwd "$user" | cut -d: -f6)"
[[ -d "$home" ]] || install -d -m 0700 -o "$user" -g "$(id -g "$user")" "$home"
log "$user: uid $(id -u "$user"), groups $(id -nG "$user" | tr ' ' ,), home $home; $outsider: groups $(id -nG "$outsider" | tr ' ' ,)"

# the grant, through polkit (no agent: the rule alone decides).
as() { local u=$1; shift; runuser -u "$u" -- env -i HOME=/ PATH=/usr/bin:/bin LC_ALL=C "$@"; }
if ! out="$(as "$user" timeout 20 virsh -c "$uri" version 2>&1)"; then
  die "as $user, virsh -c $uri version failed: $(tail -n 2 <<<"$out" | paste -sd' ' -). Fix: D-Bus and polkitd must run before libvirtd (libvirt keeps its first system-bus connection): restart libvirtd (kill \$(cat /run/libvirtd.pid); libvirtd -d), and check /usr/share/polkit-1/rules.d/60-libvirt.rules exists."
fi
out="$(as "$outsider" timeout 20 virsh -c "$uri" version 2>&1)" && die "as $outsider (not in group libvirt), virsh -c $uri version succeeded: something grants every user (a polkit rule, or unix_sock_rw_perms/auth_unix_rw in /etc/libvirt/libvirtd.conf); the refusal test cannot run. Fix: remove that grant."
grep -q "no polkit agent available to authenticate action 'org.libvirt.unix.manage'" <<<"$out" \
  || die "as $outsider, virsh -c $uri failed, but not with libvirt's polkit refusal: $(tail -n 2 <<<"$out" | paste -sd' ' -). Fix: see that message."
log "polkit grants $user and refuses $outsider on $uri"

# the checkout: ava runs from it as the user.
as "$user" test -r "$repo/package.json" -a -x "$repo/scripts" \
  || die "$user cannot read the checkout $repo. Fix: clone it where every user can read it (e.g. /srv/cilium-lab), or chmod o+x each parent directory of it."

# the caches.
if [[ ! -d "$cache" && -d "$old_cache" ]]; then
  install -d -m 0755 "$(dirname "$cache")"
  cp -al "$old_cache" "$cache"
  log "hard-linked the old cache $old_cache into $cache (cp -al; both keep working)"
fi
install -d -m 0755 "$cache"
chmod 0755 "$cache"
unreadable="$(find "$cache" -path '*/pulumi-home' -prune -o ! -perm -o+r -print -o -type d ! -perm -o+x -print | head -n 5)"
[[ -z "$unreadable" ]] || die "$user cannot read these in $cache: $(paste -sd' ' - <<<"$unreadable"). Fix: chmod -R o+rX $cache (it holds no secrets: images, scripts, the toolchain)."
log "cache $cache readable by $user"
