# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file
# Sourced by every script in this folder (after it sets HERE to its own folder):
# paths, defaults and small helpers. Nothing here starts or stops anything.

KIT=$(cd "$HERE/.." && pwd)                      # the localcluster folder (scripts/, etc/, build/ ...)

LOCALCLUSTER_DIR=${LOCALCLUSTER_DIR:-$PWD/.localcluster}
case $LOCALCLUSTER_DIR in /*) ;; *) LOCALCLUSTER_DIR=$PWD/$LOCALCLUSTER_DIR ;; esac
LOCALCLUSTER_DIR=${LOCALCLUSTER_DIR%/}
LOCALCLUSTER_BIN=${LOCALCLUSTER_BIN:-$LOCALCLUSTER_DIR/bin}
case $LOCALCLUSTER_BIN in /*) ;; *) LOCALCLUSTER_BIN=$PWD/$LOCALCLUSTER_BIN ;; esac
LOCALCLUSTER_BIN=${LOCALCLUSTER_BIN%/}
export LOCALCLUSTER_DIR LOCALCLUSTER_BIN

D=$LOCALCLUSTER_DIR
BIN=$LOCALCLUSTER_BIN
P=$D/pki      # CA, certificates, kubeconfigs
R=$D/run      # pid files, sockets, rendered kube-proxy config
L=$D/logs     # one log per daemon
V=$D/var      # etcd data, containerd root, kubelet root, PV directories
E=$D/etc      # configs rendered from $KIT/etc
KUBECONFIG_FILE=$P/admin.kubeconfig
CTR_SOCK=$R/containerd/containerd.sock
KUBECTL=${KUBECTL:-$BIN/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl || echo "$BIN/kubectl")

# Fixed cluster layout (must match etc/*.in and addons/).
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/16                            # kube-proxy clusterCIDR
POD_SUBNET=10.244.0.0/24                          # this node's pods (CNI host-local range)
CNI_NETWORK=localcluster                          # name in etc/cni/10-localcluster.conflist.in
CNI_BRIDGE=lcbr0
PAUSE_IMAGE=localcluster.local/pause:3.10
COREDNS_IMAGE=localcluster.local/coredns:v1.15.0
# Daemons in start order; down stops them in reverse.
COMPONENTS="containerd etcd kube-apiserver kube-controller-manager kube-scheduler pvprov kubelet kube-proxy netpol"

export PATH=$PATH:/usr/sbin:/sbin

log() { printf '[localcluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "'$1' must run as root (it starts daemons and changes iptables)"; }
need_cmd() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "missing command '$c' (run: localcluster.sh deps)"; done; }

# Milliseconds since the epoch, and seconds since $1 (ms) with one decimal.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }

check_dir() {
  case $D in *[[:space:]\&\|\\]*) die "LOCALCLUSTER_DIR must not contain whitespace, '&', '|' or '\\': '$D'" ;; esac
  # unix socket paths are limited to 107 bytes; this is the longest one
  local s="$CTR_SOCK.ttrpc"
  [ ${#s} -lt 108 ] || die "LOCALCLUSTER_DIR is too long for unix sockets (${#s} > 107 bytes): '$s'"
}

# Node identity: name from hostname, IP from the default route (override with NODE / NODE_IP).
node_name() { local n=${NODE:-$(hostname)}; echo "$n" | tr '[:upper:]' '[:lower:]'; }
node_ip() {
  if [ -n "${NODE_IP:-}" ]; then echo "$NODE_IP"; return; fi
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="src") {print $(i+1); exit}}')
  [ -n "$ip" ] || ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*","",$4); print $4; exit}')
  [ -n "$ip" ] || die "cannot find a non-loopback IPv4 address; set NODE_IP"
  echo "$ip"
}

# --- processes, always by pid file -------------------------------------------------------------
pid_of() { cat "$R/$1.pid" 2>/dev/null || true; }
# alive NAME [PATTERN]: the pid in $R/NAME.pid is a live process whose command line contains
# PATTERN (default: this state dir, which every daemon's command line names), so a recycled
# pid is never mistaken for ours.
alive() {
  local pid pat=${2:-$D/}
  pid=$(pid_of "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  grep -qF -- "$pat" <<<"$cmdline"
}
# start NAME CMD...: run CMD in its own session, log to $L/NAME.log, pid to $R/NAME.pid.
# A running instance (same pid file, same state dir) is left alone.
start() {
  local n=$1; shift
  if alive "$n"; then log "$n already running (pid $(pid_of "$n"))"; return 0; fi
  [ -f "$L/$n.log" ] && mv -f "$L/$n.log" "$L/$n.log.1"
  setsid "$@" >"$L/$n.log" 2>&1 </dev/null &
  echo $! >"$R/$n.pid"
  log "started $n (pid $!)"
}
# waitfor NAME SECONDS CMD...: poll CMD until it succeeds; fail early if NAME's process died.
waitfor() {
  local n=$1 t=$2 end; shift 2
  end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$R/$n.pid" ] && ! alive "$n"; then
      log "$n exited; last lines of $L/$n.log:"; tail -n 20 "$L/$n.log" >&2 || true; return 1
    fi
    if [ $SECONDS -ge $end ]; then
      log "$n not ready after ${t}s; last lines of $L/$n.log:"; tail -n 20 "$L/$n.log" >&2 || true; return 1
    fi
    sleep 0.5
  done
  log "$n ready${T0:+ at +$(since "$T0")s}"
}
# stop NAME [PATTERN]: SIGTERM, wait up to 15 s, then SIGKILL; removes the pid file.
stop() {
  local n=$1 pat=${2:-$D/} pid
  if alive "$n" "$pat"; then
    pid=$(pid_of "$n")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do alive "$n" "$pat" || break; sleep 0.5; done
    if alive "$n" "$pat"; then kill -KILL "$pid" 2>/dev/null || true; log "killed $n ($pid)"; else log "stopped $n ($pid)"; fi
  fi
  rm -f "$R/$n.pid"
}
# Child pids of $1, from /proc (no procps needed).
children() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed -n 's/^\([0-9]*\) (.*) [A-Za-z] \([0-9]*\) .*/\1 \2/p' |
    awk -v p="$1" '$2 == p {print $1}'
}
kill_tree() { local c; for c in $(children "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }

# FORWARD rules added by up.sh, removed by cleanup-host.sh. Docker sets the FORWARD policy to DROP,
# so pod traffic needs ACCEPT rules; they are appended, i.e. after kube-proxy's chains, so that
# kube-proxy's REJECT for a Service without endpoints still applies. A packet still addressed to a
# Service IP in FORWARD matched no kube-proxy rule: reject it rather than route it off the node.
forward_rules() {
  echo "-d $SERVICE_CIDR -m comment --comment localcluster-no-such-service -j REJECT"
  echo "-s $POD_SUBNET -m comment --comment localcluster-pods -j ACCEPT"
  echo "-d $POD_SUBNET -m comment --comment localcluster-pods -j ACCEPT"
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
api_ready() { [ -f "$KUBECONFIG_FILE" ] && kc get --raw /readyz >/dev/null 2>&1; }
ctr_() { ctr -a "$CTR_SOCK" -n k8s.io "$@"; }

# write_if_changed FILE: stdin replaces FILE only when the content differs (a running
# kube-proxy exits when its config file changes, so unchanged files must stay untouched).
write_if_changed() {
  local f=$1 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv -f "$tmp" "$f"; fi
}
