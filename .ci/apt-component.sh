#!/usr/bin/env bash
# Enable one more component of the machine's own distribution archive for apt: the archive (URIs and
# Signed-By) and suites apt already uses for this release, with only the component added. Used for
# netperf, which Debian ships in non-free (bookworm: netperf 2.7.0-0.1; Ubuntu: multiverse).
#
# Reads both source formats: deb822 `*.sources` stanzas and one-line `sources.list` / `*.list`
# entries. The archive is the first enabled `deb` source whose suites include the release's
# codename (VERSION_CODENAME of os-release), so the security archive and third-party repositories
# are never copied. Writes sources.list.d/cilium-lab-<component>.sources (or .list, in the format
# of the source it copies). Idempotent: when any source of that archive and codename already lists
# the component (including the file this script wrote), it changes nothing.
#
# usage: bash .ci/apt-component.sh [component]     (default: non-free on Debian, multiverse on Ubuntu)
# environment (for tests): APT_ETC (default /etc/apt), OS_RELEASE (default /etc/os-release)
# prints one line: `present: <component> <uri> <codename>` or `added: <file>`; run `apt-get update`
# after `added`.
set -euo pipefail

apt_etc="${APT_ETC:-/etc/apt}"
os_release="${OS_RELEASE:-/etc/os-release}"

die() { printf '[apt-component] error: %s\n' "$*" >&2; exit 1; }

[[ -r "$os_release" ]] || die "cannot read $os_release. Fix: run on Debian or Ubuntu (or set OS_RELEASE)."
# shellcheck source=/dev/null
id="$(. "$os_release" && printf '%s' "${ID:-}")"
# shellcheck source=/dev/null
codename="$(. "$os_release" && printf '%s' "${VERSION_CODENAME:-}")"
[[ -n "$codename" ]] || die "$os_release has no VERSION_CODENAME (ID=$id). Fix: enable the component by hand in /etc/apt/sources.list.d/."
case "${1:-}" in
  "") case "$id" in
        debian) component=non-free ;;
        ubuntu) component=multiverse ;;
        *) die "no default component for ID=$id. Fix: pass it, e.g. bash $0 non-free." ;;
      esac ;;
  *) component="$1" ;;
esac
[[ "$component" =~ ^[a-z][a-z0-9-]*$ ]] || die "component must be a word like non-free (got '$component')."

shopt -s nullglob
deb822=("$apt_etc"/sources.list.d/*.sources)
oneline=()
[[ -f "$apt_etc/sources.list" ]] && oneline+=("$apt_etc/sources.list")
oneline+=("$apt_etc"/sources.list.d/*.list)

# Every enabled `deb` source as one record: format|uri|suites (space separated)|components|signed-by|options.
records() {
  local f
  for f in "${deb822[@]}"; do
    awk -v RS= -v OFS='|' '
      {
        delete v; key = ""
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          line = lines[i]
          if (line ~ /^#/) continue
          if (line ~ /^[ \t]/ && key != "") { v[key] = v[key] "\n" line; continue }
          p = index(line, ":"); if (p == 0) continue
          key = tolower(substr(line, 1, p - 1)); val = substr(line, p + 1)
          sub(/^[ \t]+/, "", val); sub(/[ \t]+$/, "", val); v[key] = val
        }
        if (tolower(v["enabled"]) == "no" || v["types"] !~ /(^| )deb( |$)/) next
        signed = v["signed-by"]; gsub(/\n/, "\\n", signed)
        nu = split(v["uris"], uris, /[ \t]+/)
        for (u = 1; u <= nu; u++) print "deb822", uris[u], v["suites"], v["components"], signed, ""
      }' "$f"
  done
  for f in "${oneline[@]}"; do
    awk -v OFS='|' '
      /^[ \t]*deb[ \t]/ {
        line = $0; sub(/#.*/, "", line); opts = ""
        if (match(line, /\[[^]]*\]/)) { opts = substr(line, RSTART, RLENGTH); line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH) }
        n = split(line, w, /[ \t]+/); k = 0
        for (i = 1; i <= n; i++) if (w[i] != "") a[++k] = w[i]
        comps = ""; for (i = 4; i <= k; i++) comps = comps (comps ? " " : "") a[i]
        print "oneline", a[2], a[3], comps, "", opts
      }' "$f"
  done
}

has_word() { [[ " $1 " == *" $2 "* ]]; }

mapfile -t all < <(records)
archive=""
for r in "${all[@]}"; do
  IFS='|' read -r _ uri suites _ _ _ <<<"$r"
  if has_word "$suites" "$codename"; then
    archive="$uri"
    break
  fi
done
[[ -n "$archive" ]] || die "no enabled deb source for $codename in $apt_etc/sources.list or $apt_etc/sources.list.d/. Fix: add the $id archive for $codename with the $component component by hand."

# Already there?
for r in "${all[@]}"; do
  IFS='|' read -r _ uri suites comps _ _ <<<"$r"
  if [[ "$uri" == "$archive" ]] && has_word "$suites" "$codename" && has_word "$comps" "$component"; then
    echo "present: $component $archive $codename"
    exit 0
  fi
done

# Copy every source of the archive whose suites belong to this release, with only the component.
out=""
format=""
for r in "${all[@]}"; do
  IFS='|' read -r fmt uri suites _ signed opts <<<"$r"
  [[ "$uri" == "$archive" ]] || continue
  mine=""
  for s in $suites; do
    [[ "$s" == "$codename" || "$s" == "$codename"-* ]] && [[ "$s" != *-security ]] && mine+="${mine:+ }$s"
  done
  [[ -n "$mine" ]] || continue
  format="${format:-$fmt}"
  if [[ "$fmt" == deb822 ]]; then
    out+="Types: deb"$'\n'"URIs: $uri"$'\n'"Suites: $mine"$'\n'"Components: $component"$'\n'
    [[ -n "$signed" ]] && out+="Signed-By: ${signed//\\n/$'\n'}"$'\n'
    out+=$'\n'
  else
    for s in $mine; do
      out+="deb ${opts:+$opts }$uri $s $component"$'\n'
    done
  fi
done
ext=$([[ "$format" == deb822 ]] && echo sources || echo list)
file="$apt_etc/sources.list.d/cilium-lab-$component.$ext"
mkdir -p "$apt_etc/sources.list.d"
{
  echo "# Written by cilium-lab's .ci/apt-component.sh: the $component component of $archive ($codename)."
  printf '%s' "$out"
} >"$file"
echo "added: $file"
