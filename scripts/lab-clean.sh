#!/usr/bin/env bash
# lab-clean.sh: list, and with --yes remove, everything cilium-lab left on this libvirt host after a
# crash, a killed `pulumi up` or a lost state, or purge the base-image cache.
#
# usage:
#   scripts/lab-clean.sh [--stack NAME] [--uri URI] [--pool-root DIR]... [--yes] [--check]
#   scripts/lab-clean.sh --purge-image-cache [--yes]
#
#   (no --yes)           list what would be removed; change nothing
#   --yes                remove it: domains (destroy, undefine --nvram …), then networks
#                        (net-destroy, net-undefine), then pool directories (overlays, seed ISOs,
#                        console logs) with everything in them
#   --stack NAME         only objects of that Pulumi stack (default: every cilium-lab stack)
#   --uri URI            libvirt URI (default: $LIBVIRT_DEFAULT_URI or qemu:///system)
#   --pool-root DIR      where to look for pool directories, repeatable
#                        (default: /var/lib/libvirt/cilium-lab)
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
#   - directories holding a .cilium-lab-pool.json marker (written by infra/libvirt/common.ts)
#     directly under a pool root, or holding a disk or console log of one of our domains.
# After removing objects by hand, run `pulumi refresh` (or `pulumi stack rm --force` for a stack
# you are abandoning) so the state agrees.
#
# Needs: virsh (libvirt-clients), xmllint (libxml2-utils). Exit: 0 ok, 1 found with --check,
# 2 usage or tool error.
set -euo pipefail

readonly NS="https://cilium-lab.dev/libvirt/1"
readonly PROJECT="cilium-lab"
readonly MARKER=".cilium-lab-pool.json"
readonly UNDEFINE_FLAGS=(--nvram --managed-save --snapshots-metadata --checkpoints-metadata)

uri="${LIBVIRT_DEFAULT_URI:-qemu:///system}"
stack=""
yes=0
check=0
purge=0
pool_roots=()

die() { printf 'lab-clean: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) [[ $# -ge 2 ]] || usage; stack="$2"; shift 2 ;;
    --uri) [[ $# -ge 2 ]] || usage; uri="$2"; shift 2 ;;
    --pool-root) [[ $# -ge 2 ]] || usage; pool_roots+=("$2"); shift 2 ;;
    --yes) yes=1; shift ;;
    --check) check=1; shift ;;
    --purge-image-cache) purge=1; shift ;;
    -h|--help) usage ;;
    *) printf 'lab-clean: unknown argument %s\n' "$1" >&2; usage ;;
  esac
done
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

v() { LC_ALL=C "${VIRSH_BIN:-virsh}" -c "$uri" "$@"; }

# owner_stack <root element> : the stack of our owner stamp in the XML on stdin, empty if none.
owner_stack() {
  local root="$1" xml project
  xml="$(cat)"
  project="$(xmllint --xpath "string(/$root/metadata/*[local-name()='owner' and namespace-uri()='$NS']/@project)" - <<<"$xml" 2>/dev/null || true)"
  [[ "$project" == "$PROJECT" ]] || return 0
  xmllint --xpath "string(/$root/metadata/*[local-name()='owner' and namespace-uri()='$NS']/@stack)" - <<<"$xml" 2>/dev/null || true
}

wanted() { [[ -n "$1" && ( -z "$stack" || "$1" == "$stack" ) ]]; }

# marker_stack <dir> : the stack in a pool directory's marker, empty if none (our own one-line JSON).
marker_stack() {
  [[ -f "$1/$MARKER" && ! -L "$1/$MARKER" ]] || return 0
  sed -n 's/.*"project":"cilium-lab".*"stack":"\([^"]*\)".*/\1/p' "$1/$MARKER" | head -n1
}

names="$(v list --all --name)" || die "cannot list domains at $uri (is libvirtd running?)"
nets="$(v net-list --all --name)" || die "cannot list networks at $uri"

domains=()
declare -A dirs=()
while IFS= read -r name; do
  [[ -n "$name" ]] || continue
  xml="$(v dumpxml "$name" 2>/dev/null)" || continue
  s="$(owner_stack domain <<<"$xml")"
  wanted "$s" || continue
  domains+=("$name")
  printf 'domain   %-40s stack %s (%s)\n' "$name" "$s" "$(v domstate "$name" 2>/dev/null | head -n1)"
  count="$(xmllint --xpath 'count(/domain/devices/disk/source/@file | /domain/devices/serial/source/@path)' - <<<"$xml")"
  for ((i = 1; i <= count; i++)); do
    f="$(xmllint --xpath "string((/domain/devices/disk/source/@file | /domain/devices/serial/source/@path)[$i])" - <<<"$xml")"
    d="$(dirname -- "$f")"
    [[ "$(marker_stack "$d")" == "$s" ]] && dirs["$d"]="$s"
  done
done <<<"$names"

networks=()
while IFS= read -r name; do
  [[ -n "$name" ]] || continue
  s="$(v net-dumpxml "$name" 2>/dev/null | owner_stack network)"
  wanted "$s" || continue
  networks+=("$name")
  printf 'network  %-40s stack %s\n' "$name" "$s"
done <<<"$nets"

for root in "${pool_roots[@]}"; do
  [[ -d "$root" ]] || continue
  while IFS= read -r -d '' d; do
    s="$(marker_stack "$d")"
    wanted "$s" && dirs["$d"]="$s"
  done < <(find "$root" -mindepth 1 -maxdepth 1 -type d -print0)
done
for d in "${!dirs[@]}"; do
  printf 'pool dir %-40s stack %s (%s files, %s)\n' "$d" "${dirs[$d]}" "$(find "$d" -type f ! -name "$MARKER" | wc -l)" "$(du -sh "$d" | cut -f1)"
done

found=$(( ${#domains[@]} + ${#networks[@]} + ${#dirs[@]} ))
if [[ $found -eq 0 ]]; then
  printf 'nothing of cilium-lab%s found at %s\n' "${stack:+ stack $stack}" "$uri"
  exit 0
fi
if [[ $yes -ne 1 ]]; then
  printf '%d object(s) found; run again with --yes to remove them\n' "$found"
  [[ $check -eq 1 ]] && exit 1
  exit 0
fi

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
for d in "${!dirs[@]}"; do
  rm -rf -- "$d"
  printf 'removed pool dir %s\n' "$d"
done
# Keep libvirt's view of any storage pool over those directories current.
while IFS= read -r pool; do
  if [[ -n "$pool" ]]; then
    v pool-refresh "$pool" >/dev/null 2>&1 || true
  fi
done < <(v pool-list --name 2>/dev/null || true)
[[ $check -eq 1 ]] && exit 1
exit 0
