#!/usr/bin/env bash
# Runs a Pulumi command on one of the lab's stacks with a local file backend: no Pulumi Cloud
# account needed. State lives in .pulumi-state/ beside this repo.
#
# usage: scripts/lab.sh <up|preview|refresh|destroy|output|cancel|config> <stack> [pulumi flags...]
#        scripts/lab.sh recover <stack>   (roll a stuck Cilium release back after a killed `up`, then refresh)
#        scripts/lab.sh doctor [stack] [--json] [--no-probe]   (what the stack needs from this host; creates nothing)
#   e.g. scripts/lab.sh up vxlan          (npm run lab -- up vxlan)
#        scripts/lab.sh output native --json
#        scripts/lab.sh config vxlan set cilium-lab:routingMode native
#
# Secrets (SSH keys, the k3s token, the kubeconfig) are encrypted in the state with a passphrase:
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE if you set one, else a random one
# generated once into .pulumi-state/passphrase (mode 0600). Keep that file: without it the
# stack's secrets cannot be read, and `pulumi destroy` cannot run.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
# doctor first: it needs neither the pulumi CLI nor the state directory, and creates nothing.
if [[ "${1:-}" == doctor ]]; then
  shift
  if [[ ! -x "$repo/node_modules/.bin/tsx" ]]; then
    echo "scripts/lab.sh: doctor needs the project's node modules: run npm ci in $repo" >&2
    exit 127
  fi
  exec "$repo/node_modules/.bin/tsx" "$repo/scripts/doctor.ts" "$@"
fi
cmd="${1:-}"
stack="${2:-}"
case "$cmd" in
  up | preview | refresh | destroy | output | cancel | config | recover) ;;
  *)
    echo "usage: scripts/lab.sh <up|preview|refresh|destroy|output|cancel|config> <stack> [pulumi flags...]" >&2
    echo "       scripts/lab.sh recover <stack>" >&2
    echo "       scripts/lab.sh doctor [stack] [--json] [--no-probe]" >&2
    exit 2
    ;;
esac
if [[ -z "$stack" ]]; then
  echo "scripts/lab.sh: name a stack, e.g. vxlan, native or geneve (stacks/Pulumi.<stack>.yaml)" >&2
  exit 2
fi
shift 2

if ! command -v pulumi >/dev/null 2>&1; then
  echo "scripts/lab.sh: the pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/)," >&2
  echo "or on a host without internet access build it: eval \"\$(bash scripts/toolchain.sh)\"" >&2
  exit 127
fi

state="$repo/.pulumi-state"
mkdir -p "$state"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$state}"
if [[ -z "${PULUMI_CONFIG_PASSPHRASE+set}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  if [[ ! -s "$state/passphrase" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 >"$state/passphrase")
    echo "scripts/lab.sh: generated the state passphrase in $state/passphrase (keep it)" >&2
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$state/passphrase"
fi

cd "$repo"
pulumi stack select --create --secrets-provider passphrase "$stack" >/dev/null
# A new cluster behind the stack's server URL (k3s reinstalled, node-1's VM replaced): drop the
# Kubernetes objects that went with the old one from state first, or `up`/`refresh` fail on them
# (scripts/recover/replaced.ts explains when, and why nothing is dropped from a cluster that still
# exists). `up` does this itself, and once more if the cluster is replaced during the `up`
# (scripts/recover/up.ts: then it drops them and runs `up` once more, once).
if [[ "$cmd" == refresh ]]; then
  "$repo/node_modules/.bin/tsx" "$repo/scripts/recover.ts" prepare "$stack" "$cmd" "$@"
fi
case "$cmd" in
  up) exec "$repo/node_modules/.bin/tsx" "$repo/scripts/recover.ts" up "$stack" "$@" ;;
  recover) exec "$repo/node_modules/.bin/tsx" "$repo/scripts/recover.ts" recover "$stack" ;;
  output) exec pulumi stack output --stack "$stack" "$@" ;;
  config) exec pulumi config --stack "$stack" "$@" ;;
  *) exec pulumi "$cmd" --stack "$stack" "$@" ;;
esac
