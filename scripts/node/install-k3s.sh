#!/usr/bin/env bash
# Runs on a lab node as root: installs (or reconfigures/upgrades in place) the k3s server or an agent
# with k3s's own install script, online or from the air-gap files staged next to this script.
#
# The k3s layer (infra/k3s, installCommand and installStdin in args.ts) copies lib.sh and this file
# to the node as one file (infra/node-scripts.ts puts them together) and runs it with a short command line: what identifies the step, the settings users change, and a
# hash of the whole argument list (pulumi-command prints the command line in every failure), e.g.
#   sudo bash /var/lib/cilium-lab/install-k3s.sh --node node-2 --role agent --source online \
#     --version v1.26.6+k3s1 --kube-proxy-replacement false --args-sha256 <12 hex digits>
# stdin: the cluster token on the first line (never on a command line), then the other arguments,
# one per line, e.g.
#   --installer-url / https://raw.githubusercontent.com/k3s-io/k3s/v1.26.6%2Bk3s1/install.sh /
#   --token-file / /etc/rancher/k3s/cilium-lab-token / --staging-dir / /var/lib/cilium-lab /
#   --server-url / https://192.168.150.11:6443 / --vm-id / <libvirt domain uuid> /
#   --script-sha256 / <sha256 of the copied file> / --timeout / 900 /
#   --env / INSTALL_K3S_VERSION=v1.26.6+k3s1 / --env / K3S_TOKEN_FILE=/etc/rancher/k3s/cilium-lab-token /
#   --env / K3S_URL=https://192.168.150.11:6443 / -- / agent / --node-name=node-2 / --node-ip=192.168.150.12
# The command line's arguments and stdin's, in that order, are one list; --args-sha256 is the first
# 12 hex digits of the SHA-256 of that list, one argument per line, and is checked.
#
# Everything after `--` is the k3s command and its flags, given to install.sh as arguments (it writes
# them into the systemd unit); every `--env` is given to install.sh's environment (it persists
# K3S_* variables into /etc/systemd/system/k3s*.service.env, which is why the token travels as a
# 0600 file, K3S_TOKEN_FILE, and never as K3S_TOKEN).
# see https://docs.k3s.io/reference/env-variables and https://docs.k3s.io/installation/airgap
#
# --kube-proxy-replacement true|false: whether Cilium replaces kube-proxy (the server's k3s command
# then has --disable-kube-proxy). Agents have no kube-proxy flag of their own: they take the
# server's setting when they start, so a change restarts the service (INSTALL_K3S_FORCE_RESTART),
# and with `true` the KUBE-* iptables rules kube-proxy left behind are removed, as kube-proxy
# --cleanup and k3s-killall.sh do (see remove_kube_proxy_rules below).
#
# Air-gap layout under --staging-dir: airgap/k3s, airgap/install.sh, airgap/images/*.tar[.gz|.zst].
# Who owns what on the node: the staging directory belongs to the prepare step (prepare-node.sh), the
# scripts and air-gap files in it to the copy steps; this script (the install step) creates only the
# token file, the kube-proxy state file beside it and, online, $staging/install.sh: the uninstall
# removes those and nothing else of the staging directory.
#
# exit 0: install.sh succeeded (the unit is started; nodes stay NotReady until a CNI runs: this does
# not wait for Ready). else: `cilium-lab error: node=… step="…" exit=N`, the last lines of output with
# the token redacted (repeated lines once, with their count), and the fix when the failure is a known
# one (no internet → air-gap mode).
set -Eeuo pipefail

readonly K3S_BIN=/usr/local/bin/k3s
readonly K3S_IMAGES_DIR=/var/lib/rancher/k3s/agent/images

# stdin first, before anything else can read it: the token, then the arguments not on the command
# line; then stdin is closed for every child.
token=""
IFS= read -r token || true
stdin_args=()
while IFS= read -r line || [[ -n "$line" ]]; do
  stdin_args+=("$line")
done
exec </dev/null

cli_args=("$@")
node="" role="" source="" version="" installer_url="" token_file="" staging="" server_url="" vm_id=""
script_sha256="" install_timeout=600 kube_proxy_replacement="" args_sha256=""
envs=()
k3s_args=()
set -- "$@" "${stdin_args[@]}"
while (($# > 0)); do
  case "$1" in
    --node) node="${2:?--node needs a value}"; shift 2 ;;
    --role) role="${2:?--role needs a value}"; shift 2 ;;
    --source) source="${2:?--source needs a value}"; shift 2 ;;
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --kube-proxy-replacement) kube_proxy_replacement="${2:?--kube-proxy-replacement needs true or false}"; shift 2 ;;
    --args-sha256) args_sha256="${2:?--args-sha256 needs a value}"; shift 2 ;;
    --installer-url) installer_url="${2:?--installer-url needs a value}"; shift 2 ;;
    --token-file) token_file="${2:?--token-file needs a value}"; shift 2 ;;
    --staging-dir) staging="${2:?--staging-dir needs a value}"; shift 2 ;;
    --server-url) server_url="${2:?--server-url needs a value}"; shift 2 ;;
    --vm-id) vm_id="${2:?--vm-id needs a value}"; shift 2 ;;
    --script-sha256) script_sha256="${2:?--script-sha256 needs a value}"; shift 2 ;;
    --timeout) install_timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --env) envs+=("${2:?--env needs NAME=VALUE}"); shift 2 ;;
    --) shift; k3s_args=("$@"); break ;;
    *) printf 'install-k3s.sh: unknown argument %q\n' "$1" >&2; exit 2 ;;
  esac
done

step="start"
fix=""
log_file=""
# report <exit code> [details...]: the structured failure of the current $step, with $fix; the
# details and the log tail redacted (lib.sh's report_failure).
report() { report_failure "$1" "$fix" "last lines of output (secrets redacted)" "${@:2}"; }
# abort <exit code> [details...]: report, then exit with the code.
abort() {
  local code="$1"
  shift
  trap - ERR
  report "$code" "$@"
  exit "$code"
}
trap 'on_error $? $LINENO install-k3s.sh' ERR
cleanup() { [[ -z "$log_file" ]] || rm -f "$log_file"; }
trap cleanup EXIT

# the fix for a node that cannot download k3s: the air-gap mode of the lab.
readonly AIRGAP_FIX="the node cannot download k3s (no internet access from the lab network?). Either give the libvirt host outbound access, or install from local files: put k3s, install.sh and k3s-airgap-images-amd64.tar.zst of ${version:-<k3sVersion>} into a host directory and set it with 'pulumi config set cilium-lab:k3sAirgapDir <dir>' (see the README, \"Air-gapped install\")."

# arguments.
step="check arguments"
fix="this is a bug in the k3s layer (infra/k3s/args.ts): the script and its caller disagree."
[[ -n "$node" ]] || abort 2 "--node is required"
[[ "$role" == server || "$role" == agent ]] || abort 2 "--role must be server or agent (got '$role')"
[[ "$source" == online || "$source" == airgap ]] || abort 2 "--source must be online or airgap (got '$source')"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$ ]] || abort 2 "--version must look like v1.26.6+k3s1 (got '$version')"
[[ "$kube_proxy_replacement" == true || "$kube_proxy_replacement" == false ]] || abort 2 "--kube-proxy-replacement must be true or false (got '$kube_proxy_replacement')"
# the command line and stdin are one list: the hash on the command line proves they belong together.
all_args=("${cli_args[@]}" "${stdin_args[@]}")
without_hash=()
for ((i = 0; i < ${#all_args[@]}; i++)); do
  if [[ "${all_args[i]}" == --args-sha256 ]]; then
    i=$((i + 1))
  else
    without_hash+=("${all_args[i]}")
  fi
done
have_args_sha256="$(printf '%s\n' "${without_hash[@]}" | sha256sum)"
have_args_sha256="${have_args_sha256:0:12}"
[[ "$args_sha256" == "$have_args_sha256" ]] ||
  abort 2 "the arguments on the command line and on stdin hash to $have_args_sha256, but --args-sha256 is '$args_sha256' (${#stdin_args[@]} arguments on stdin after the token)"
[[ "$token_file" == /* && "$staging" == /* ]] || abort 2 "--token-file and --staging-dir must be absolute paths"
[[ "$install_timeout" =~ ^[1-9][0-9]*$ ]] || abort 2 "--timeout must be whole seconds > 0 (got '$install_timeout')"
[[ "${k3s_args[0]:-}" == "$role" ]] || abort 2 "the k3s command after -- must start with '$role' (got '${k3s_args[0]:-}')"
[[ "$source" == airgap || "$installer_url" == https://* ]] || abort 2 "--installer-url must be an https:// URL in online mode"
[[ "$role" == server || "$server_url" =~ ^https://[^/:]+:[0-9]+$ ]] || abort 2 "an agent needs --server-url https://<ip>:<port> (got '$server_url')"
for entry in "${envs[@]}"; do
  [[ "$entry" =~ ^(INSTALL_K3S|K3S)_[A-Z0-9_]+= ]] || abort 2 "--env takes INSTALL_K3S_*=… or K3S_*=… (got '${entry%%=*}')"
done
[[ $EUID -eq 0 ]] || { fix="run it with sudo (the k3s layer does)."; abort 1 "running as uid $EUID, not root"; }

# the file must be the one the program copied: its hash is part of the command, so an edit re-runs.
step="verify this script"
fix="re-run 'pulumi up': the copy of install-k3s.sh on the node is stale or damaged."
have_sha256="$(sha256sum "${BASH_SOURCE[0]}")"
have_sha256="${have_sha256%% *}"
[[ -z "$script_sha256" || "$have_sha256" == "$script_sha256" ]] ||
  abort 1 "${BASH_SOURCE[0]} has sha256 $have_sha256, expected $script_sha256"

# the token: a 0600 file, written atomically, never echoed.
step="write the token file"
fix="the k3s token from the nodes layer is empty or malformed; this is a bug in the program, not on the node."
[[ -n "$token" ]] || abort 1 "no token on stdin"
[[ "$token" =~ ^[[:graph:]]+$ ]] || abort 1 "the token on stdin contains whitespace or control characters"
fix=""
install -d -m 0755 "$(dirname "$token_file")"
old_umask="$(umask)"
umask 077
printf '%s\n' "$token" >"$token_file.tmp"
umask "$old_umask"
chmod 0600 "$token_file.tmp"
mv -f "$token_file.tmp" "$token_file"
log "token written to $token_file (mode 0600)"

log_file="$(mktemp /tmp/cilium-lab-install-k3s.XXXXXX)"

# install.sh restarts k3s only when its binary, unit or env file changed during its run; these
# changes happen outside it and set INSTALL_K3S_FORCE_RESTART=true (https://docs.k3s.io/reference/env-variables).
force_restart=false

# the installer and, in air-gap mode, the binary and images.
if [[ "$source" == online ]]; then
  step="download the k3s install script"
  installer="$staging/install.sh"
  fix="$AIRGAP_FIX"
  downloader=""
  if command -v curl >/dev/null 2>&1; then
    downloader=curl
  elif command -v wget >/dev/null 2>&1; then
    downloader=wget
  else
    abort 127 "neither curl nor wget is installed on the node; install.sh needs one of them to download k3s"
  fi
  rc=0
  if [[ "$downloader" == curl ]]; then
    curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 15 --max-time 120 -o "$installer.tmp" "$installer_url" >>"$log_file" 2>&1 || rc=$?
  else
    wget -q --tries=3 --timeout=30 -O "$installer.tmp" "$installer_url" >>"$log_file" 2>&1 || rc=$?
  fi
  if ((rc != 0)); then
    if [[ "$downloader" == curl && "$rc" == 22 ]]; then
      fix="the URL answered with an HTTP error: check that cilium-lab:k3sVersion $version is a published k3s release (https://github.com/k3s-io/k3s/releases)."
    fi
    abort "$rc" "$downloader could not download $installer_url (exit $rc)"
  fi
  mv -f "$installer.tmp" "$installer"
else
  step="install the air-gap files"
  airgap="$staging/airgap"
  installer="$airgap/install.sh"
  fix="re-run 'pulumi up' to copy the air-gap files again; check cilium-lab:k3sAirgapDir on the host."
  for file in "$airgap/k3s" "$installer"; do
    [[ -s "$file" ]] || abort 1 "$file is missing or empty (the program copies it from cilium-lab:k3sAirgapDir)"
  done
  shopt -s nullglob
  images=("$airgap"/images/*)
  shopt -u nullglob
  ((${#images[@]} > 0)) || abort 1 "no image tarball in $airgap/images (k3s-airgap-images-amd64.tar.zst at least)"
  chmod 0755 "$airgap/k3s"
  rc=0
  out="$("$airgap/k3s" --version 2>>"$log_file")" || rc=$?
  ((rc == 0)) || abort "$rc" "$airgap/k3s does not run on this node (exit $rc): is it the linux amd64 binary?"
  have_version="${out%%$'\n'*}"
  step="check the air-gap k3s version"
  # e.g. "k3s version v1.26.6+k3s1 (3b1919b0)"
  if [[ "$have_version" != "k3s version $version "* && "$have_version" != "k3s version $version" ]]; then
    fix="download k3s $version into cilium-lab:k3sAirgapDir (https://github.com/k3s-io/k3s/releases/tag/${version/+/%2B}), or set cilium-lab:k3sVersion to the binary's version."
    abort 1 "the air-gap binary reports '$have_version', but cilium-lab:k3sVersion is $version"
  fi
  step="place the air-gap binary and images"
  fix=""
  # install.sh restarts k3s only when the binary, unit or env file changed *during* its run; here
  # the binary (and images, imported at start only) change before it, so force the restart then.
  changed=false
  cmp -s "$airgap/k3s" "$K3S_BIN" || changed=true
  install -m 0755 -o root -g root "$airgap/k3s" "$K3S_BIN"
  install -d -m 0755 "$K3S_IMAGES_DIR"
  for image in "${images[@]}"; do
    cmp -s "$image" "$K3S_IMAGES_DIR/${image##*/}" || changed=true
    install -m 0644 -o root -g root "$image" "$K3S_IMAGES_DIR/${image##*/}"
  done
  if [[ "$changed" == true ]]; then
    force_restart=true
  fi
  log "placed $K3S_BIN ($version) and ${#images[@]} image tarball(s) in $K3S_IMAGES_DIR (changed: $changed)"
fi
step="check the install script"
fix="the install script is not k3s's: in online mode check --installer-url, in air-gap mode download https://get.k3s.io as install.sh."
read -r shebang <"$installer" || true
[[ "$shebang" == '#!'*sh* ]] || abort 1 "$installer does not start with a shell '#!' line (got '${shebang:0:60}')"
grep -q INSTALL_K3S_SKIP_DOWNLOAD "$installer" || abort 1 "$installer does not mention INSTALL_K3S_SKIP_DOWNLOAD"

# an agent needs the server's API port; checking it first turns a hang into a clear message.
if [[ "$role" == agent ]]; then
  step="reach the k3s server"
  hostport="${server_url#https://}"
  host="${hostport%:*}"
  port="${hostport##*:}"
  fix="check that the server node's k3s runs ('sudo systemctl status k3s' there) and that nothing between the nodes filters TCP $port."
  deadline=$((SECONDS + 60))
  # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash, from its arguments.
  until timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; do
    ((SECONDS < deadline)) || abort 1 "could not open a TCP connection to $host:$port for 60s ($server_url)"
    sleep 2
  done
  log "ok: $server_url accepts connections"
fi

unit=k3s
[[ "$role" == server ]] || unit=k3s-agent

# kube-proxy replacement: k3s runs kube-proxy inside the k3s process of every node; an agent takes
# --disable-kube-proxy from the server's config when it starts, and its own unit does not change, so
# install.sh would not restart it. The setting of the last successful install is kept beside the
# token (the install step's file; k3s's uninstall removes /etc/rancher/k3s with it): when it differs,
# force the restart. No file but a unit: installed by an older lab, which ran kube-proxy (false).
step="check the kube-proxy setting"
fix=""
kpr_file="$(dirname "$token_file")/cilium-lab-kube-proxy-replacement"
kpr_before=""
if [[ -f "$kpr_file" ]]; then
  kpr_before="$(cat "$kpr_file")"
elif [[ -f "/etc/systemd/system/$unit.service" ]]; then
  kpr_before=false
fi
if [[ -n "$kpr_before" && "$kpr_before" != "$kube_proxy_replacement" ]]; then
  force_restart=true
  log "kube-proxy replacement changes from $kpr_before to $kube_proxy_replacement: $unit restarts"
fi
if [[ "$force_restart" == true ]]; then
  envs+=(INSTALL_K3S_FORCE_RESTART=true)
fi

# install.sh: writes the unit and env file, (re)starts the service, returns once systemd reports it
# started. The unit's TimeoutStartSec=0 would let a stuck start hang forever: bound it.
step="run install.sh ($role, $source)"
fix=""
log "running install.sh for k3s $version $role ($source)..."
rc=0
timeout "$install_timeout" env "${envs[@]}" sh "$installer" "${k3s_args[@]}" >>"$log_file" 2>&1 || rc=$?
if ((rc != 0)); then
  if grep -q -e 'Download failed' -e 'Failed to download' -e 'Could not resolve host' "$log_file"; then
    fix="$AIRGAP_FIX"
  elif ((rc == 124)); then
    fix="the $unit service did not report started within ${install_timeout}s; read 'sudo journalctl -u $unit' on the node."
  else
    fix="read 'sudo journalctl -u $unit' on the node."
  fi
  journal=()
  if command -v journalctl >/dev/null 2>&1; then
    mapfile -t journal < <(journalctl -u "$unit" -n 15 --no-pager -o cat 2>/dev/null | dedupe || true)
  fi
  if ((${#journal[@]} > 0)); then
    abort "$rc" "install.sh exited with $rc; last lines of 'journalctl -u $unit':" "${journal[@]}"
  fi
  abort "$rc" "install.sh exited with $rc"
fi

# kube-proxy's rules outlive it: a stopped kube-proxy leaves KUBE-SERVICES and its other chains in
# iptables (`kube-proxy --cleanup` exists to remove them; kubernetes pkg/proxy/iptables/cleanup.go).
# With Cilium replacing kube-proxy they would still catch service traffic before Cilium's
# socket-level load balancing sees it. Removed like k3s-killall.sh does (`iptables-save | grep -v
# KUBE- | … | iptables-restore`, k3s install.sh create_killall; Cilium's kube-proxy-free guide does
# the same with `grep -v KUBE`): only lines naming KUBE-* chains go, Cilium's CILIUM_* rules stay,
# and the kubelet re-creates its own few KUBE-* chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY).
remove_kube_proxy_rules() {
  local tables chains
  for tables in iptables ip6tables; do
    if ! command -v "$tables-save" >/dev/null 2>&1; then
      log "$tables-save is not installed: no $tables rules of kube-proxy to remove"
      continue
    fi
    # KUBE-SERVICES is kube-proxy's own chain (the kubelet's are KUBE-FIREWALL, KUBE-KUBELET-CANARY…):
    # only when it is there. grep without -q reads everything: -q would exit early and fail
    # $tables-save with SIGPIPE.
    if "$tables-save" | grep '^:KUBE-SERVICES ' >/dev/null; then
      chains="$("$tables-save" | grep -c '^:KUBE-' || true)"
      "$tables-save" | grep -v 'KUBE-' | "$tables-restore"
      log "removed kube-proxy's $tables rules (${chains} KUBE-* chains)"
    fi
  done
}

step="record the kube-proxy setting"
printf '%s\n' "$kube_proxy_replacement" >"$kpr_file.tmp"
chmod 0644 "$kpr_file.tmp"
mv -f "$kpr_file.tmp" "$kpr_file"
if [[ "$kube_proxy_replacement" == true ]]; then
  step="remove kube-proxy's iptables rules"
  fix="remove them by hand: sudo sh -c 'iptables-save | grep -v KUBE- | iptables-restore' (and ip6tables), then re-run 'pulumi up'."
  remove_kube_proxy_rules
  fix=""
fi

# `systemctl is-active` prints the state and exits non-zero for every state but active: take what it
# printed, whatever the exit code.
state="$(systemctl is-active "$unit" 2>/dev/null)" || true
log "k3s $version $role installed ($source) on VM ${vm_id:-?}; $unit is ${state:-unknown}"
