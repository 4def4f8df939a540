#!/usr/bin/env bash
# Builds a Pulumi engine from Go modules, for CI and air-gapped hosts only: a machine that reaches
# the Go module proxy but not Pulumi's download servers (get.pulumi.com, api.pulumi.com). If you
# have the `pulumi` CLI installed, you never need this script.
#
# usage: bash scripts/toolchain.sh [PROJECT_DIR]        (PROJECT_DIR defaults to this repository)
#        eval "$(bash scripts/toolchain.sh)"            (what .ci/run does)
#
# stdout: only `export NAME=...` lines, for eval. stderr: progress and timings.
#
# What it builds, into a cache directory keyed by the pinned versions and a hash of the wrapper
# modules (default ${XDG_CACHE_HOME:-$HOME/.cache}/cilium-lab/toolchain/<key>/, override the
# parent with CILIUM_LAB_TOOLCHAIN_CACHE):
#   bin/pulumi                   the CLI, from tools/pulumi-cli (github.com/pulumi/pulumi/pkg/v3)
#   bin/pulumi-language-nodejs   the Node.js language host, from tools/pulumi-language-nodejs; the
#                                CLI only looks for it next to its own real path (it is a "bundled"
#                                plugin and cannot be installed with `pulumi plugin install`)
#   bin/pulumi-resource-pulumi-nodejs
#                                the dynamic-provider host: a copy of the /bin/sh shim that ships in
#                                the project's node_modules/@pulumi/pulumi (it resolves
#                                @pulumi/pulumi from the program's directory, so one copy serves
#                                every checkout)
#   pulumi-home/                 PULUMI_HOME: plugin cache, no credentials needed (file backend)
# Not built here: pulumi-resource-command and pulumi-resource-kubernetes (scripts/k8s-toolchain.sh builds
# the one kubernetes provider commit the proxy serves, under its own version). The proxy serves no module
# version of github.com/pulumi/pulumi-command/provider for 1.2.1 nor of
# github.com/pulumi/pulumi-kubernetes/provider/v4 for 4.34.2 (403 "This module version is not
# available"), and a plugin must not be installed under a version it is not.
# A second run finds <key>/.complete and only refreshes the shim: it takes a second or two.
#
# Versions: each wrapper go.mod pins one binary family, so minimal version selection cannot move
# the CLI's Pulumi version. Their go.sum files are committed; builds run with -mod=readonly, so a
# module whose content differs from go.sum fails the build instead of being trusted.
# See the README section "Building Pulumi from Go modules (CI / air-gapped only)" for which
# versions the Go module proxy could serve and why they are what they are.
set -euo pipefail

TOOL=toolchain
BUILD_NICE=10
# shellcheck source-path=SCRIPTDIR source=lib/toolchain-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/toolchain-lib.sh"
project="$(cd "${1:-$repo}" && pwd)"

command -v go >/dev/null 2>&1 || die "go is not on PATH. Install Go >= 1.25.11 (Debian: apt-get install golang-go if new enough, or the tarball) and re-run."
command -v node >/dev/null 2>&1 || die "node is not on PATH; the dynamic-provider shim and the Node.js language host need it."
shim_src="$project/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
[[ -f "$shim_src" ]] || die "$shim_src not found. Run 'npm ci' in $project first (the shim ships in the @pulumi/pulumi npm package)."

cli_dir="$tools/pulumi-cli"
host_dir="$tools/pulumi-language-nodejs"
cli_version="$(modver "$cli_dir" github.com/pulumi/pulumi/pkg/v3)"
host_module=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
host_pseudo="$(modver "$host_dir" "$host_module")"

# The language host has no release tags, only pseudo-versions v3.0.0-<UTC time>-<commit>. The Go
# module proxy serves no pseudo-version of it for any 3.24x/3.25x release commit (403 "This module
# version is not available"); the newest it serves is the 2025-08-06 commit bee5e4fa4815, between
# the 3.187.0 and 3.188.0 releases. Stamp that honestly: "3.187.0 plus one commit".
host_commit="${host_pseudo##*-}"
host_version="$(after_release "$host_pseudo" v3.187.1)"
[[ "$host_pseudo" == "v3.0.0-20250806165243-bee5e4fa4815" ]] ||
  die "tools/pulumi-language-nodejs now pins $host_pseudo: update host_version in scripts/toolchain.sh to the release that commit follows (it is reported by the host's GetPluginInfo)."

# Release builds use these flags (pulumi/pulumi .goreleaser.yml: -trimpath, tags osusergo and
# grpcnotrace, -s -w). The -X sets what `pulumi version` and the host's GetPluginInfo report
# (empty by default: pulumi/pulumi sdk/go/common/version/version.go).
pulumi_tags="osusergo,grpcnotrace"
cli_ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli_version"
host_ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$host_version"

hash_inputs() {
  cat "$cli_dir/go.mod" "$cli_dir/go.sum" "$host_dir/go.mod" "$host_dir/go.sum"
  printf '%s\n' "$pulumi_tags" "$cli_ldflags" "$host_ldflags" "$(go env GOVERSION)"
}
key_hash="$(hash_inputs | sha256sum | cut -c1-12)"
key="pulumi-${cli_version}_nodejs-${host_commit}_${key_hash}"
dest="$cache_root/$key"
lock_cache .lock

if [[ -f "$dest/.complete" ]]; then
  log "reusing $dest"
else
  log "go: $(go version); cache: $dest"
  start_build
  mkdir -p "$tmp/bin" "$tmp/pulumi-home"
  go_build "pulumi $cli_version" "$cli_dir" "$tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$cli_ldflags" "$pulumi_tags"
  go_build "pulumi-language-nodejs $host_version" "$host_dir" "$tmp/bin/pulumi-language-nodejs" "$host_module" "$host_ldflags" "$pulumi_tags"

  got="$(PULUMI_HOME="$tmp/pulumi-home" PULUMI_SKIP_UPDATE_CHECK=true "$tmp/bin/pulumi" version)"
  [[ "$got" == "$cli_version" ]] || die "the freshly built pulumi reports '$got', expected $cli_version: check the -X flag in $0."
  finish_build "$dest"
fi

# The shim belongs to the npm package, not to the Go build: refresh it on every run (atomic rename,
# so a concurrent engine never sees a half-written file).
if ! cmp -s "$shim_src" "$dest/bin/pulumi-resource-pulumi-nodejs"; then
  cp "$shim_src" "$dest/bin/.pulumi-resource-pulumi-nodejs.$$"
  chmod 0755 "$dest/bin/.pulumi-resource-pulumi-nodejs.$$"
  mv -f "$dest/bin/.pulumi-resource-pulumi-nodejs.$$" "$dest/bin/pulumi-resource-pulumi-nodejs"
fi

# Default backend and passphrase, the same as scripts/lab.sh: state in <project>/.pulumi-state/ and
# a random passphrase generated once into .pulumi-state/passphrase (mode 0600; keep it).
state="$project/.pulumi-state"
mkdir -p "$state"
if [[ ! -s "$state/passphrase" ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 >"$state/passphrase")
  log "generated the state passphrase in $state/passphrase (used only if PULUMI_CONFIG_PASSPHRASE(_FILE) is unset)"
fi
log "ready: pulumi $cli_version, pulumi-language-nodejs $host_version (${host_module}@${host_pseudo})"

# The ${...} tests below run in the shell that evals this output, so a backend URL or passphrase
# already set there wins.
cat <<EOF
export PATH=$(q "$dest/bin")":\$PATH"
export PULUMI_HOME=$(q "$dest/pulumi-home")
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DISABLE_REGISTRY_RESOLVE=true
[ -n "\${PULUMI_BACKEND_URL:-}" ] || export PULUMI_BACKEND_URL=$(q "file://$state")
[ -n "\${PULUMI_CONFIG_PASSPHRASE+set}\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || export PULUMI_CONFIG_PASSPHRASE_FILE=$(q "$state/passphrase")
EOF
