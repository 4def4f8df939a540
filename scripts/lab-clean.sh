#!/usr/bin/env bash
# lab-clean.sh: list, and with --yes remove, everything cilium-lab left on libvirt hosts after a
# crash, a killed `pulumi up` or a lost state; purge the shared base pool or the image cache.
#
# usage:
#   scripts/lab-clean.sh [--uri URI]... [--stack NAME] [--purge-base] [--pool-root DIR]... [--yes] [--check]
#   scripts/lab-clean.sh --purge-image-cache [--yes]
#
#   (no --yes)           list what would be removed; change nothing
#   --yes                remove it, host by host: domains (destroy, undefine --nvram …), networks
#                        (net-destroy, net-undefine), stack pools (every volume in them: overlays,
#                        seeds, console logs, the marker; then pool-destroy, pool-delete,
#                        pool-undefine), then what --purge-base and --pool-root name
#   --uri URI            a libvirt host, repeatable (default: $LIBVIRT_DEFAULT_URI or qemu:///system);
#                        qemu+ssh://user@host[:port]/system works like a local URI: everything goes
#                        through virsh, nothing assumes that host's files are local
#   --stack NAME         only objects of that Pulumi stack (default: every cilium-lab stack)
#   --purge-base         also the shared base pool: its volumes that no volume of any pool on that
#                        host backs onto and no domain uses, then the pool once only its marker is
#                        left (`pulumi destroy` keeps them on purpose, like the image cache)
#   --base-pool NAME     the shared base pool's name (default: cilium-lab-base)
#   --pool-root DIR      where root-era labs kept their pool directories (before libvirt pools: a
#                        directory with a .cilium-lab-pool.json marker directly under DIR), repeatable
#                        (default: /var/lib/libvirt/cilium-lab); local files, removed with rm, so run
#                        this part as root (sudo) on the host that has them
#   --check              exit 1 when anything was found (for CI sweeps after a test suite)
#   --purge-image-cache  remove the downloaded base images,
#                        ${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-~/.cache}/cilium-lab}/images;
#                        `pulumi destroy` keeps them on purpose (other stacks and the next `up`
#                        reuse them)
#
# What counts as ours (nothing else is ever touched):
#   - libvirt domains and networks whose <metadata> carries
#       <lab:owner xmlns:lab="https://cilium-lab.dev/libvirt/1" project="cilium-lab" stack="…"/>
#     (written by infra/libvirt/xml/render.ts);
#   - storage pools holding the marker volume cilium-lab-pool.json with
#     {"project":"cilium-lab","stack":"…"} (pools have no metadata; the base pool's says stack "*").
#     An inactive dir pool is started to read its marker, and stopped again unless it is removed;
#   - root-era directories holding a .cilium-lab-pool.json marker directly under a --pool-root.
# After removing objects by hand, run `pulumi refresh` (or `pulumi stack rm --force` for a stack
# you are abandoning) so the state agrees.
#
# Works as root and as a user in group libvirt. A remote URI is reached by virsh's own ssh: host keys
# must be in ~/.ssh/known_hosts, the key in ssh-agent or named by ?keyfile=; add no_tty=1 for
# unattended runs. Without a terminal, each host must answer within $LAB_CLEAN_TIMEOUT seconds
# (default 60). Needs: virsh (libvirt-clients), xmllint (libxml2-utils), timeout (coreutils).
# Exit: 0 ok, 1 found with --check, 2 usage, tool or connection error.
set -Eeuo pipefail
trap 'printf "lab-clean: failed at line %s (exit %s); see the message above\n" "$LINENO" "$?" >&2; exit 2' ERR

readonly NS="https://cilium-lab.dev/libvirt/1"
readonly PROJECT="cilium-lab"
readonly POOL_MARKER="cilium-lab-pool.json"
readonly LEGACY_MARKER=".cilium-lab-pool.json"
readonly UNDEFINE_FLAGS=(--nvram --managed-save --snapshots-metadata --checkpoints-metadata)

uris=()
stack=""
yes=0
check=0
purge=0
purge_base=0
base_pool="cilium-lab-base"
pool_roots=()

die() { printf 'lab-clean: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -Eeuo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) [[ $# -ge 2 ]] || usage; stack="$2"; shift 2 ;;
    --uri) [[ $# -ge 2 ]] || usage; uris+=("$2"); shift 2 ;;
    --pool-root) [[ $# -ge 2 ]] || usage; pool_roots+=("$2"); shift 2 ;;
    --base-pool) [[ $# -ge 2 ]] || usage; base_pool="$2"; shift 2 ;;
    --purge-base) purge_base=1; shift ;;
    --yes) yes=1; shift ;;
    --check) check=1; shift ;;
    --purge-image-cache) purge=1; shift ;;
    -h|--help) usage ;;
    *) printf 'lab-clean: unknown argument %s\n' "$1" >&2; usage ;;
  esac
done
[[ ${#uris[@]} -gt 0 ]] || uris=("${LIBVIRT_DEFAULT_URI:-qemu:///system}")
[[ ${#pool_roots[@]} -gt 0 ]] || pool_roots=(/var/lib/libvirt/cilium-lab)

if [[ $purge -eq 1 ]]; then
  cache="${CILIUM_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab}/images"
  if [[ ! -d "$cache" ]]; then
    printf 'image cache %s: absent, nothing to purge\n' "$cache"
    exit 0
  fi
  printf 'image cache %s: %s\n' "$cache" "$(du -sh "$cache" | cut -f1)"
  find "$cache" -mindepth 1 -maxdepth 1 -printf '  %f\n'
  if [[ $yes -eq 1 ]]; then
    rm -rf -- "$cache"
    printf 'removed %s\n' "$cache"
  else
    printf 'run again with --yes to remove it\n'
  fi
  exit 0
fi

command -v "${VIRSH_BIN:-virsh}" >/dev/null || die "virsh not found: apt-get install libvirt-clients"
command -v xmllint >/dev/null || die "xmllint not found: apt-get install libxml2-utils"
timeout_s="${LAB_CLEAN_TIMEOUT:-60}"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] || die "LAB_CLEAN_TIMEOUT must be whole seconds > 0 (got '$timeout_s')"

# Marker volumes are read with vol-download into this private directory (virsh cannot write to a pipe).
work="$(mktemp -d "${TMPDIR:-/tmp}/lab-clean.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT

uri=""
v() { LC_ALL=C "${VIRSH_BIN:-virsh}" -q -c "$uri" "$@"; }
# names <list command…> : the names a `virsh … --name` listing prints, one a line (virsh pads them).
names() { v "$@" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d'; }

# connect : probe $uri once; on failure say why and how to fix it, and return 1.
connect() {
  local err rc=0
  if [[ -t 0 ]]; then
    err="$(v uri 2>&1 >/dev/null)" || rc=$?
  else
    err="$(LC_ALL=C timeout "$timeout_s" "${VIRSH_BIN:-virsh}" -q -c "$uri" uri 2>&1 >/dev/null)" || rc=$?
  fi
  [[ $rc -eq 0 ]] && return 0
  local fix="start libvirtd there (systemctl start libvirtd) and check the URI"
  case "$err" in
    *"authentication unavailable"* | *"Permission denied"* | *"access denied"* | *"authentication failed"*)
      fix="sudo usermod -aG libvirt $(id -un) (on that host, for a remote URI), then log in again (or newgrp libvirt); or run as root" ;;
    *"Host key verification failed"*)
      fix="check the host's key fingerprint, then add it to ~/.ssh/known_hosts (ssh to it once); host keys are never skipped" ;;
  esac
  [[ $rc -eq 124 ]] && { err="no answer within $timeout_s s"; fix="check the host, port and sshd (ssh -p PORT user@host true), or raise LAB_CLEAN_TIMEOUT"; }
  printf 'lab-clean: cannot reach libvirt at %s: %s. Fix: %s.\n' "$uri" "$(tr '\n' ' ' <<<"$err" | sed 's/ *$//')" "$fix" >&2
  return 1
}

# owner_stack <root element> : the stack of our owner stamp in the XML on stdin, empty if none.
owner_stack() {
  local root="$1" xml project
  xml="$(cat)"
  project="$(xmllint --xpath "string(/$root/metadata/*[local-name()='owner' and namespace-uri()='$NS']/@project)" - <<<"$xml" 2>/dev/null || true)"
  [[ "$project" == "$PROJECT" ]] || return 0
  xmllint --xpath "string(/$root/metadata/*[local-name()='owner' and namespace-uri()='$NS']/@stack)" - <<<"$xml" 2>/dev/null || true
}

# json_stack : the stack of a one-line marker {"project":"cilium-lab","stack":"…"} on stdin, empty if not ours.
json_stack() {
  local json
  json="$(head -c 4096 | tr -d '\n')"
  [[ "$json" =~ \"project\"[[:space:]]*:[[:space:]]*\"cilium-lab\" ]] || return 0
  [[ "$json" =~ \"stack\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]] && printf '%s' "${BASH_REMATCH[1]}"
  return 0
}

wanted() { [[ -n "$1" && "$1" != "*" && ( -z "$stack" || "$1" == "$stack" ) ]]; }

# volumes <pool> : the names of a running pool's volumes, one a line (after a refresh: files written
# by others, such as a console log, become volumes only then).
volumes() {
  v pool-refresh "$1" >/dev/null 2>&1 || true
  v vol-list "$1" 2>/dev/null | sed -n 's/^ *\([^ ]*\)  *\/.*$/\1/p'
}

# pool_marker <pool> : set $marker to the stack in a pool's marker volume, empty if none. Starts an
# inactive dir pool to read it (recorded in $started, for restore_pool).
pool_marker() {
  local pool="$1" state type
  marker=""
  state="$(v pool-info "$pool" 2>/dev/null | sed -n 's/^State: *//p' || true)"
  if [[ "$state" != "running" ]]; then
    type="$(v pool-dumpxml --inactive "$pool" 2>/dev/null | xmllint --xpath 'string(/pool/@type)' - 2>/dev/null || true)"
    [[ "$type" == dir ]] || return 0
    v pool-start "$pool" >/dev/null 2>&1 || return 0
    started["$pool"]=1
  fi
  v vol-info --pool "$pool" "$POOL_MARKER" >/dev/null 2>&1 || return 0
  rm -f -- "$work/marker"
  v vol-download --pool "$pool" "$POOL_MARKER" "$work/marker" >/dev/null 2>&1 || return 0
  marker="$(json_stack <"$work/marker")"
}

# scan : list this host's domains, networks and stack pools of the wanted stacks.
scan() {
  local name xml s vols names nets all
  names="$(names list --all --name)" || die "cannot list domains at $uri"
  nets="$(names net-list --all --name)" || die "cannot list networks at $uri"
  all="$(names pool-list --all --name)" || die "cannot list storage pools at $uri"
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    xml="$(v dumpxml "$name" 2>/dev/null)" || continue
    s="$(owner_stack domain <<<"$xml")"
    wanted "$s" || continue
    domains+=("$name")
    printf 'domain   %-40s stack %s (%s)\n' "$name" "$s" "$(v domstate "$name" 2>/dev/null | head -n1 || true)"
  done <<<"$names"
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    s="$(v net-dumpxml "$name" 2>/dev/null | owner_stack network || true)"
    wanted "$s" || continue
    networks+=("$name")
    printf 'network  %-40s stack %s\n' "$name" "$s"
  done <<<"$nets"
  while IFS= read -r name; do
    [[ -n "$name" && "$name" != "$base_pool" ]] || continue
    pool_marker "$name"
    s="$marker"
    if ! wanted "$s"; then
      restore_pool "$name"
      continue
    fi
    pools+=("$name")
    vols="$(volumes "$name" | grep -cvx "$POOL_MARKER" || true)"
    printf 'pool     %-40s stack %s (%s volume(s) besides the marker, %s)\n' "$name" "$s" "$vols" \
      "$(v pool-dumpxml "$name" 2>/dev/null | xmllint --xpath 'string(/pool/target/path)' - 2>/dev/null || true)"
  done <<<"$all"
}

# restore_pool <pool> : stop a pool again that pool_marker started only to read it.
restore_pool() {
  if [[ -n "${started[$1]:-}" ]]; then
    v pool-destroy "$1" >/dev/null 2>&1 || true
    unset 'started[$1]'
  fi
}

# remove_pool <pool> : every volume (the marker last), then the pool and its directory.
remove_pool() {
  local pool="$1" vol vols
  vols="$(volumes "$pool")" || die "cannot list the volumes of pool $pool at $uri"
  while IFS= read -r vol; do
    [[ -n "$vol" && "$vol" != "$POOL_MARKER" ]] || continue
    v vol-delete --pool "$pool" "$vol" >/dev/null
  done <<<"$vols"
  v vol-delete --pool "$pool" "$POOL_MARKER" >/dev/null
  v pool-destroy "$pool" >/dev/null
  v pool-delete "$pool" >/dev/null
  v pool-undefine "$pool" >/dev/null
  unset 'started[$pool]'
}

# used_paths : write every path that a volume of any pool backs onto, or a domain's disk uses, to
# $work/used, one a line. An inactive dir pool is started to read it and stopped again; any other
# inactive pool, or a volume or domain that cannot be read, stops the purge (it might use a base
# volume); one that vanished meanwhile does not.
used_paths() {
  local pool vol name pools vols names xml type
  : >"$work/used"
  pools="$(names pool-list --all --name)" || die "cannot list storage pools at $uri: base volumes kept"
  while IFS= read -r pool; do
    [[ -n "$pool" ]] || continue
    if [[ "$(v pool-info "$pool" 2>/dev/null | sed -n 's/^State: *//p' || true)" != running ]]; then
      type="$(v pool-dumpxml --inactive "$pool" 2>/dev/null | xmllint --xpath 'string(/pool/@type)' - 2>/dev/null || true)"
      [[ "$type" == dir ]] || die "inactive $type pool $pool at $uri cannot be read, and may back onto a base volume: base volumes kept. Fix: start it (virsh pool-start $pool) or undefine it, then run again"
      v pool-start "$pool" >/dev/null 2>&1 || continue
      started["$pool"]=1
    fi
    vols="$(volumes "$pool")" || { ! v pool-info "$pool" >/dev/null 2>&1 || die "cannot list pool $pool at $uri: base volumes kept"; continue; }
    while IFS= read -r vol; do
      [[ -n "$vol" ]] || continue
      xml="$(v vol-dumpxml --pool "$pool" "$vol" 2>/dev/null)" || {
        ! v vol-info --pool "$pool" "$vol" >/dev/null 2>&1 || die "cannot read volume $vol of pool $pool at $uri: base volumes kept"
        continue
      }
      { xmllint --xpath 'string(/volume/backingStore/path)' - <<<"$xml" 2>/dev/null || true; echo; } >>"$work/used"
    done <<<"$vols"
    [[ "$pool" == "$base_pool" ]] || restore_pool "$pool"
  done <<<"$pools"
  names="$(names list --all --name)" || die "cannot list domains at $uri: base volumes kept"
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    xml="$(v dumpxml --inactive "$name" 2>/dev/null)" || {
      ! v dominfo "$name" >/dev/null 2>&1 || die "cannot read domain $name at $uri: base volumes kept"
      continue
    }
    xmllint --xpath '/domain/devices/disk/source/@file' - <<<"$xml" 2>/dev/null | sed -n 's/^ *file="\(.*\)"$/\1/p' >>"$work/used" || true
  done <<<"$names"
}

# base : the base pool's unused volumes (listed; removed with --yes, then the pool once empty).
base() {
  local vol vols path left=0 unused=()
  if ! v pool-info "$base_pool" >/dev/null 2>&1; then
    return 0
  fi
  pool_marker "$base_pool"
  if [[ "$marker" != "*" ]]; then
    printf 'lab-clean: pool %s at %s has no cilium-lab base marker (%s); left alone\n' "$base_pool" "$uri" "$POOL_MARKER" >&2
    restore_pool "$base_pool"
    return 0
  fi
  used_paths
  vols="$(volumes "$base_pool")" || die "cannot list the volumes of pool $base_pool at $uri"
  while IFS= read -r vol; do
    [[ -n "$vol" && "$vol" != "$POOL_MARKER" ]] || continue
    path="$(v vol-path --pool "$base_pool" "$vol")"
    if grep -qxF -- "$path" "$work/used"; then
      printf 'base     %-40s in use, kept\n' "$vol"
      left=$((left + 1))
    else
      printf 'base     %-40s unused\n' "$vol"
      unused+=("$vol")
    fi
  done <<<"$vols"
  found=$((found + ${#unused[@]} + (left == 0 ? 1 : 0)))
  [[ $left -eq 0 ]] && printf 'pool     %-40s the base pool, empty once those are gone\n' "$base_pool"
  if [[ $yes -ne 1 ]]; then
    restore_pool "$base_pool"
    return 0
  fi
  for vol in "${unused[@]}"; do
    v vol-delete --pool "$base_pool" "$vol" >/dev/null
    printf 'removed base volume %s\n' "$vol"
  done
  if [[ $left -eq 0 ]]; then
    remove_pool "$base_pool"
    printf 'removed pool %s\n' "$base_pool"
  else
    restore_pool "$base_pool"
  fi
}

# clean_uri : one host: scan, then (with --yes) remove.
clean_uri() {
  local name
  domains=()
  networks=()
  pools=()
  started=()
  found=0
  scan
  found=$(( ${#domains[@]} + ${#networks[@]} + ${#pools[@]} ))
  if [[ $yes -eq 1 ]]; then
    for name in "${domains[@]}"; do
      v destroy "$name" >/dev/null 2>&1 || true
      v undefine "$name" "${UNDEFINE_FLAGS[@]}" >/dev/null
      printf 'removed domain %s\n' "$name"
    done
    for name in "${networks[@]}"; do
      v net-destroy "$name" >/dev/null 2>&1 || true
      v net-undefine "$name" >/dev/null
      printf 'removed network %s\n' "$name"
    done
    for name in "${pools[@]}"; do
      remove_pool "$name"
      printf 'removed pool %s\n' "$name"
    done
  else
    for name in "${pools[@]}"; do restore_pool "$name"; done
  fi
  [[ $purge_base -eq 1 ]] && base
  report "at $uri"
}

# report <where> : the summary line of one host or of the pool roots.
report() {
  total=$((total + found))
  if [[ $found -eq 0 ]]; then
    printf 'nothing of cilium-lab%s found %s\n' "${stack:+ stack $stack}" "$1"
  elif [[ $yes -ne 1 ]]; then
    printf '%d object(s) found %s; run again with --yes to remove them\n' "$found" "$1"
  fi
}

# marker_stack <dir> : the stack in a root-era pool directory's marker, empty if none.
marker_stack() {
  [[ -f "$1/$LEGACY_MARKER" && ! -L "$1/$LEGACY_MARKER" ]] || return 0
  json_stack <"$1/$LEGACY_MARKER"
}

# legacy : root-era pool directories under the --pool-root directories (local files).
legacy() {
  local root d s dirs=()
  found=0
  for root in "${pool_roots[@]}"; do
    [[ -e "$root" ]] || continue
    if [[ ! -r "$root" || ! -x "$root" ]]; then
      printf 'lab-clean: %s is not readable by uid %s (a lab created as root?): run sudo %s --pool-root %s\n' "$root" "$(id -u)" "$0" "$root" >&2
      continue
    fi
    while IFS= read -r -d '' d; do
      s="$(marker_stack "$d")"
      wanted "$s" || continue
      dirs+=("$d")
      printf 'pool dir %-40s stack %s (%s files, %s)\n' "$d" "$s" "$(find "$d" -type f ! -name "$LEGACY_MARKER" | wc -l)" "$(du -sh "$d" | cut -f1)"
    done < <(find "$root" -mindepth 1 -maxdepth 1 -type d -print0)
  done
  found=${#dirs[@]}
  [[ $found -gt 0 ]] || return 0
  if [[ $yes -eq 1 ]]; then
    for d in "${dirs[@]}"; do
      rm -rf -- "$d"
      printf 'removed pool dir %s\n' "$d"
    done
  fi
  report "under ${pool_roots[*]}"
}

declare -A started=()
marker=""
domains=()
networks=()
pools=()
found=0
total=0
failed=0
for uri in "${uris[@]}"; do
  if connect; then
    clean_uri
  else
    failed=1
  fi
done
legacy
[[ $failed -eq 1 ]] && exit 2
[[ $check -eq 1 && $total -gt 0 ]] && exit 1
exit 0
