#!/usr/bin/env bash
# Builds, from Go modules, what the tests against a real Kubernetes API server need (issue 14): a
# control plane (etcd, kube-apiserver, kube-controller-manager) and the Kubernetes plugin
# pulumi-resource-kubernetes. Opt-in: nothing in `npm run lab` needs it, only test/k8s/.
#
# usage: eval "$(bash scripts/toolchain.sh)"            (first: the pulumi CLI and PULUMI_HOME)
#        eval "$(bash scripts/k8s-toolchain.sh)"
#
# stdout: only `export NAME=...` lines, for eval. stderr: progress and timings.
#
# What it builds, each part into its own cache directory keyed by its pinned versions and a hash of
# its wrapper module (parent ${CILIUM_LAB_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab/toolchain}):
#   k8s-control-plane-<versions>_<hash>/bin/{etcd,kube-apiserver,kube-controller-manager}
#       from tools/k8s-control-plane (k8s.io/kubernetes v1.33.13 with its staging modules at
#       v0.33.13, go.etcd.io/etcd/server/v3 v3.5.21)
#   pulumi-kubernetes-<version>_<hash>/bin/pulumi-resource-kubernetes
#       from tools/pulumi-kubernetes: provider commit f47bc2d6f199 (2026-01-15, after release 4.24.1,
#       before 4.25.0; the only provider/v4 version the Go module proxy serves). It is no release, so
#       it is stamped and installed under its own version 4.24.2-0.20260115033456-f47bc2d6f199
#       (a semver just above 4.24.1), never under the version @pulumi/kubernetes asks for: a program
#       must name it with an explicit `new k8s.Provider(..., { version })`.
# The plugin is then installed into $PULUMI_HOME (from scripts/toolchain.sh) with
# `pulumi plugin install resource kubernetes <that version> --file <binary>`.
# A second run finds each <dir>/.complete and only prints the exports (0.3 s measured).
# Cold, measured 2026-12-03 on 2 cores shared with VM tests (load 4-9), empty Go build cache, module
# cache filled: etcd 62 s, kube-controller-manager 478 s, kube-apiserver 8 s after it (it needs
# almost no package the controller-manager did not), plugin 799 s: 22.5 min in all, 1400 CPU-s.
#
# Builds run under `nice -n 19` (VM tests share the cores) with -mod=readonly, so a module whose
# content differs from the committed go.sum fails the build instead of being trusted.
set -euo pipefail

TOOL=k8s-toolchain
BUILD_NICE=19
# shellcheck source-path=SCRIPTDIR source=lib/toolchain-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/toolchain-lib.sh"

command -v go >/dev/null 2>&1 || die "go is not on PATH. Install Go >= 1.24.7 and re-run."
command -v node >/dev/null 2>&1 || die "node is not on PATH; it writes the plugin's embedded schema."
if ! command -v pulumi >/dev/null 2>&1 || [[ -z "${PULUMI_HOME:-}" ]]; then
  die "pulumi is not on PATH or PULUMI_HOME is unset: run 'eval \"\$(bash scripts/toolchain.sh)\"' first (the plugin is installed into that PULUMI_HOME)."
fi

cp_dir="$tools/k8s-control-plane"
plugin_dir="$tools/pulumi-kubernetes"
k8s_version="$(modver "$cp_dir" k8s.io/kubernetes)"
etcd_version="$(modver "$cp_dir" go.etcd.io/etcd/server/v3)"
provider_module=github.com/pulumi/pulumi-kubernetes/provider/v4
provider_pseudo="$(modver "$plugin_dir" "$provider_module")"

# The provider's pseudo-version v4.0.0-<UTC time>-<commit> names a commit after release 4.24.1
# (pkg.go.dev lists provider/v4 only as pseudo-versions; the release tags are on the repo root).
# Stamp it "4.24.1 plus commits", the form Go itself gives a commit after a tag (v4.24.2-0.<time>-<commit>).
plugin_version="$(after_release "$provider_pseudo" 4.24.2)"
[[ "$provider_pseudo" == "v4.0.0-20260115033456-f47bc2d6f199" ]] ||
  die "tools/pulumi-kubernetes now pins $provider_pseudo: update plugin_version in scripts/k8s-toolchain.sh to the release that commit follows."

# The version variables the Kubernetes release build sets (k8s.io/kubernetes hack/lib/version.sh,
# kube::version::ldflags: the same -X for k8s.io/client-go/pkg/version and k8s.io/component-base/version).
# buildDate is the tag's time from the proxy's .info, so the build is reproducible.
[[ "$k8s_version" == "v1.33.13" ]] ||
  die "tools/k8s-control-plane now pins k8s.io/kubernetes $k8s_version: update buildDate below to its tag time (the \"Time\" of 'go mod download -json k8s.io/kubernetes@$k8s_version')."
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.buildDate=2026-06-11T16:59:07Z"
done
etcd_ldflags="-s -w"
# Upstream's Makefile passes VERSION (no leading v) to both generate.go and this -X
# (pulumi/pulumi-kubernetes Makefile, cmd/pulumi-resource-kubernetes/generate.go).
plugin_ldflags="-s -w -X $provider_module/pkg/version.Version=$plugin_version"

gover="$(go env GOVERSION)"
cp_hash="$(cat "$cp_dir/go.mod" "$cp_dir/go.sum" <(printf '%s\n' "$k8s_ldflags" "$etcd_ldflags" "$gover") | sha256sum | cut -c1-12)"
plugin_hash="$(cat "$plugin_dir/go.mod" "$plugin_dir/go.sum" <(printf '%s\n' "$plugin_ldflags" "$gover") | sha256sum | cut -c1-12)"
cp_dest="$cache_root/k8s-control-plane-${k8s_version}_etcd-v${etcd_version#v}_${cp_hash}"
plugin_dest="$cache_root/pulumi-kubernetes-${plugin_version}_${plugin_hash}"

lock_cache .k8s-lock

if [[ -f "$cp_dest/.complete" ]]; then
  log "reusing $cp_dest"
else
  log "go: $(go version); cache: $cp_dest"
  start_build
  go_build "etcd $etcd_version" "$cp_dir" "$tmp/bin/etcd" go.etcd.io/etcd/server/v3 "$etcd_ldflags"
  go_build "kube-controller-manager $k8s_version" "$cp_dir" "$tmp/bin/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
  go_build "kube-apiserver $k8s_version" "$cp_dir" "$tmp/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
  got="$("$tmp/bin/kube-apiserver" --version)"
  [[ "$got" == "Kubernetes $k8s_version" ]] || die "the freshly built kube-apiserver reports '$got', expected 'Kubernetes $k8s_version': check k8s_ldflags in $0."
  got="$("$tmp/bin/etcd" --version)"
  got="${got%%$'\n'*}"
  [[ "$got" == "etcd Version: ${etcd_version#v}" ]] || die "the freshly built etcd reports '$got', expected ${etcd_version#v}."
  finish_build "$cp_dest"
fi

if [[ -f "$plugin_dest/.complete" ]]; then
  log "reusing $plugin_dest"
else
  log "go: $(go version); cache: $plugin_dest"
  start_build
  # The main package embeds schema-embed.json and terraform-mapping-embed.json, which upstream
  # generates (gitignored, so absent from the module zip). Build a copy of the wrapper with the main
  # package copied from the module cache into it, so the repository stays untouched.
  mod_dir="$(cd "$plugin_dir" && go mod download -json "$provider_module" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const j = JSON.parse(s); if (j.Error) { console.error(j.Error); process.exit(1); } console.log(j.Dir); });')" ||
    die "go mod download $provider_module@$provider_pseudo failed (see above)."
  work="$tmp/src"
  main_dir="$work/cmd/pulumi-resource-kubernetes"
  mkdir -p "$main_dir"
  cp "$plugin_dir/go.mod" "$plugin_dir/go.sum" "$work/"
  cp "$mod_dir/cmd/pulumi-resource-kubernetes/"{main.go,schema.json,terraform-mapping.json} "$main_dir/"
  chmod -R u+w "$work"
  # What upstream's generate.go does: the schema with .version set, and both files re-marshalled compactly.
  (cd "$main_dir" && VERSION="$plugin_version" node -e '
    const fs = require("fs");
    const s = JSON.parse(fs.readFileSync("schema.json", "utf8")); s.version = process.env.VERSION;
    fs.writeFileSync("schema-embed.json", JSON.stringify(s));
    fs.writeFileSync("terraform-mapping-embed.json", JSON.stringify(JSON.parse(fs.readFileSync("terraform-mapping.json", "utf8"))));')
  rm "$main_dir/schema.json" "$main_dir/terraform-mapping.json"
  go_build "pulumi-resource-kubernetes $plugin_version" "$work" "$tmp/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes "$plugin_ldflags"
  rm -rf "$work"
  finish_build "$plugin_dest"
fi

# Install under its own version only; `pulumi plugin install --file` lays it out the way the engine
# expects ($PULUMI_HOME/plugins/resource-kubernetes-v<version>/ plus its .lock).
plugin_bin="$plugin_dest/bin/pulumi-resource-kubernetes"
if ! cmp -s "$plugin_bin" "$PULUMI_HOME/plugins/resource-kubernetes-v$plugin_version/pulumi-resource-kubernetes"; then
  pulumi plugin install resource kubernetes "$plugin_version" --file "$plugin_bin" --reinstall >&2 ||
    die "pulumi plugin install of $plugin_bin as kubernetes $plugin_version into $PULUMI_HOME failed (see above)."
  log "installed kubernetes plugin $plugin_version into $PULUMI_HOME"
fi
log "ready: kube-apiserver/kube-controller-manager $k8s_version, etcd $etcd_version, kubernetes plugin $plugin_version (${provider_module}@${provider_pseudo})"

cat <<EOF
export CILIUM_LAB_ETCD=$(q "$cp_dest/bin/etcd")
export CILIUM_LAB_KUBE_APISERVER=$(q "$cp_dest/bin/kube-apiserver")
export CILIUM_LAB_KUBE_CONTROLLER_MANAGER=$(q "$cp_dest/bin/kube-controller-manager")
export CILIUM_LAB_K8S_PLUGIN_VERSION=$(q "$plugin_version")
EOF
