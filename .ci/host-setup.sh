#!/usr/bin/env bash
# Prepare a CI host (Debian/Ubuntu, root, possibly without systemd) for the libvirt tests:
# install .ci/apt-packages.txt (with Debian's non-free component for netperf: .ci/apt-component.sh),
# start virtlogd and libvirtd unless running, wait until qemu:///system answers, create the default
# storage dirs; start D-Bus and polkitd (before libvirtd), then make the unprivileged test user
# (.ci/test-user.sh). Idempotent: a second run changes nothing.
#
# usage: bash .ci/host-setup.sh
# environment:
#   LIBVIRT_WAIT_SECONDS   how long to wait for qemu:///system to answer (default 30)
#   CILIUM_LAB_TEST_USER   the test user .ci/test-user.sh makes (default clab)
#   CILIUM_LAB_CACHE       the readable cache .ci/test-user.sh prepares (default /var/cache/cilium-lab)
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
packages_file="$repo/.ci/apt-packages.txt"
wait_seconds="${LIBVIRT_WAIT_SECONDS:-30}"
readonly uri=qemu:///system

log() { printf '[host-setup] %s\n' "$*" >&2; }
die() { printf '[host-setup] error: %s\n' "$*" >&2; exit 1; }
t0=$SECONDS
step_t=$SECONDS
timing() { log "$1 ($((SECONDS - step_t)) s)"; step_t=$SECONDS; }

[[ $EUID -eq 0 ]] || die "needs root (apt-get, libvirtd); running as uid $EUID. Fix: sudo bash $0."
[[ "$wait_seconds" =~ ^[0-9]+$ ]] || die "LIBVIRT_WAIT_SECONDS must be a whole number of seconds (got '$wait_seconds')."
[[ -r "$packages_file" ]] || die "cannot read $packages_file. Fix: run from a full checkout of cilium-lab."

# install packages (skip apt entirely when everything is installed already).
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages_file" | grep -v '^$' || true)
missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == installed ]] || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  log "installing ${#missing[@]} of ${#packages[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # netperf (the latency tests) is in Debian's non-free component (Ubuntu: multiverse), which a
  # default install does not enable: add it from the same archive apt already uses.
  if [[ " ${missing[*]} " == *" netperf "* ]]; then
    enabled="$(bash "$repo/.ci/apt-component.sh")" || die "could not enable the non-free component for netperf (see above)."
    log "$enabled"
  fi
  apt-get update -qq >&2 || die "apt-get update failed. Fix: check /etc/apt/sources.list(.d) and network access to the mirror."
  apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install -y ${missing[*]} failed (see output above)."
  timing "packages installed"
else
  timing "all ${#packages[@]} packages already installed"
fi

# a daemon counts as running when its pid file names a live process, or a process of that name
# exists (another start method, other pid file).
running() {
  local name=$1 pid
  if [[ -r "/run/$name.pid" ]]; then
    pid="$(cat "/run/$name.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && return 0
  fi
  pgrep -x "$name" >/dev/null
}

virsh_answers() { LC_ALL=C timeout 10 virsh -c "$uri" version >/dev/null 2>&1; }

# daemon <command...>: starts a daemon with only stdin, stdout and stderr open. Any other file
# descriptor this script inherited would stay open in the daemon for its whole life: under
# `flock <lock> bash .ci/run` that is the lock's, and every later `flock <lock>` then waits forever.
daemon() {
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      if ((fd > 2)); then
        eval "exec ${fd}>&-"
      fi
    done
    exec "$@"
  )
}

# D-Bus's system bus and polkitd first: libvirtd asks polkit over the system bus whether a
# non-root client may manage qemu:///system (Debian grants group libvirt in
# /usr/share/polkit-1/rules.d/60-libvirt.rules), and libvirt keeps its first system-bus connection,
# so a libvirtd started before the bus refuses every non-root user until it is restarted.
if [[ -S /run/dbus/system_bus_socket ]] && running dbus-daemon; then
  log "D-Bus system bus already running"
else
  install -d -m 0755 /run/dbus
  rm -f /run/dbus/pid # a stale pid file (a container restarted) makes dbus-daemon refuse to start
  daemon dbus-daemon --system --fork || die "dbus-daemon --system --fork failed (exit $?). Fix: check that package dbus is installed and /run/dbus is writable."
  log "started the D-Bus system bus"
fi
polkitd_bin=/usr/lib/polkit-1/polkitd
if running polkitd; then
  log "polkitd already running"
else
  [[ -x "$polkitd_bin" ]] || die "$polkitd_bin not found. Fix: apt-get install -y polkitd."
  daemon setsid "$polkitd_bin" --no-debug </dev/null >>/var/log/polkitd.log 2>&1 &
  disown
  for _ in $(seq 1 50); do
    running polkitd && break
    sleep 0.1
  done
  running polkitd || die "polkitd exited right after its start. Fix: see /var/log/polkitd.log."
  log "started polkitd (log: /var/log/polkitd.log)"
fi

# start the daemons. NB without systemd there is no socket activation: start them ourselves.
if running virtlogd; then
  log "virtlogd already running"
else
  daemon virtlogd -d || die "virtlogd -d failed (exit $?). Fix: check /var/log/libvirt and that /run/libvirt is writable."
  log "started virtlogd"
fi
if running libvirtd || running virtqemud; then
  log "libvirt daemon already running"
elif virsh_answers; then
  log "$uri already answers (daemon started by other means)"
else
  daemon libvirtd -d || die "libvirtd -d failed (exit $?). Fix: run 'libvirtd -v' in the foreground to see why."
  log "started libvirtd"
fi

# wait for qemu:///system.
deadline=$((SECONDS + wait_seconds))
until virsh_answers; do
  if ((SECONDS >= deadline)); then
    err="$(LC_ALL=C timeout 10 virsh -c "$uri" version 2>&1 | tail -n 3 || true)"
    die "virsh -c $uri did not answer within $wait_seconds s: $err. Fix: check that libvirtd runs (pgrep -a libvirtd) and /run/libvirt/libvirt-sock exists; raise LIBVIRT_WAIT_SECONDS on a slow host."
  fi
  sleep 1
done
versions="$(LC_ALL=C virsh -c "$uri" version 2>/dev/null \
  | awk -F': ' '/Using library|Running hypervisor/ { s = s (s ? ", " : "") $2 } END { print s }')"
timing "$uri answers ($versions)"

# the default storage dirs (the qemu user must be able to traverse them).
for d in /var/lib/libvirt/images /var/lib/libvirt/boot; do
  if [[ ! -d "$d" ]]; then
    install -d -m 0711 "$d"
    log "created $d"
  fi
done

# the unprivileged test user and its outsider, the grant through polkit, the readable caches.
bash "$repo/.ci/test-user.sh" || die "setting up the test user failed (see above)."
timing "test user ${CILIUM_LAB_TEST_USER:-clab} ready"

log "host ready in $((SECONDS - t0)) s"
