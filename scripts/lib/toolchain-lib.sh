#!/usr/bin/env bash
# What scripts/toolchain.sh and scripts/k8s-toolchain.sh share; they source it, it never runs on its
# own. Both build pinned binaries from Go modules (a wrapper module per binary family under tools/)
# into a cache directory keyed by versions and hashes, and print `export` lines for eval.
#
# The sourcing script sets TOOL (its name in messages: toolchain, k8s-toolchain) and BUILD_NICE (the
# `nice -n` of its go builds) first. This file sets repo, tools and cache_root
# (${CILIUM_LAB_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab/toolchain}), and an EXIT
# trap that removes an unfinished build directory ($tmp).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034 # the sourcing script's.
tools="$repo/tools"
cache_root="${CILIUM_LAB_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab/toolchain}"
t0=$SECONDS

# log <words...>: progress on stderr, with the seconds since the start.
log() { printf '[%s %4ds] %s\n' "$TOOL" "$((SECONDS - t0))" "$*" >&2; }
# die <words...>: the error on stderr, then exit 1.
die() {
  printf 'scripts/%s.sh: error: %s\n' "$TOOL" "$*" >&2
  exit 1
}

# modver <wrapper dir> <module path>: the version the wrapper's go.mod requires.
modver() {
  local v
  v="$(awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod")"
  [[ -n "$v" ]] || die "$1/go.mod does not require $2; restore it from git."
  printf '%s' "$v"
}

# after_release <pseudo-version> <base>: `<base>-0.<time>-<commit>` for a Go pseudo-version
# `v<N>.0.0-<time>-<commit>`: the form Go itself gives a commit after a release tag, with <base> the
# release that commit follows plus one patch (a semver just above that release).
after_release() {
  local time="${1#v*.0.0-}"
  printf '%s-0.%s-%s' "$2" "${time%%-*}" "${1##*-}"
}

# lock_cache <lock file name>: creates cache_root and holds an exclusive lock on it (fd 9) until
# the script ends: two CI jobs on one machine must not build into the same directory at once. Then
# sets the Go environment of every build (local toolchain, no cgo, go.sum is the truth).
lock_cache() {
  mkdir -p "$cache_root"
  exec 9>"$cache_root/$1"
  if ! flock -n 9; then
    log "another build holds $cache_root/$1 (CI's background build?): waiting for it, then reusing what it built"
    flock 9
  fi
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
}

# go_build <label> <dir> <output> <package> <ldflags> [tags]: `go build -trimpath` of <package> in
# the module <dir>, as release builds do; progress and timing on stderr; dies with the likely
# causes when it fails.
go_build() {
  local label="$1" dir="$2" out="$3" pkg="$4" ldflags="$5" tags="${6:-}" start=$SECONDS
  local flags=(-trimpath)
  [[ -z "$tags" ]] || flags+=(-tags "$tags")
  log "building $label (go build $pkg in ${dir#"$repo"/}; cold: several minutes on 2 cores)"
  if ! (cd "$dir" && nice -n "$BUILD_NICE" go build "${flags[@]}" -ldflags "$ldflags" -o "$out" "$pkg") >&2; then
    die "go build of $pkg in $dir failed (see above). A 403 'This module version is not available' from the proxy means that module version cannot be fetched here; a 'checksum mismatch' means the module differs from the committed go.sum."
  fi
  log "built $label in $((SECONDS - start))s, $(du -m "$out" | cut -f1) MiB"
}

# start_build: a fresh directory to build into, $tmp (in the cache, so the final move is a rename).
tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT
start_build() {
  tmp="$(mktemp -d "$cache_root/.build.XXXXXX")"
  chmod 0755 "$tmp"
}
# finish_build <dest>: $tmp becomes <dest>, marked complete (a later run reuses it as it is).
finish_build() {
  rm -rf "$1"
  mv "$tmp" "$1"
  tmp=""
  touch "$1/.complete"
}

# q <text>: the text quoted for the shell that evals the output.
q() { printf '%q' "$1"; }
