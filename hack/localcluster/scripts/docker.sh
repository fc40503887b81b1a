#!/usr/bin/env bash
# Makes a Docker daemon available for building images and for `load`:
#   docker.sh         if `docker info` fails: apt-get install docker.io when dockerd is missing, then
#                     start dockerd in the background (pid in $LOCALCLUSTER_DIR/run/dockerd.pid,
#                     log in logs/dockerd.log). A dockerd that already runs is left alone.
#   docker.sh stop    stop the dockerd this script started (down does this too); never another one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"

need_root docker
mkdir -p "$R" "$L"
if [ "${1:-}" = stop ]; then
  if alive dockerd dockerd; then stop dockerd dockerd; else log "docker: no dockerd started by localcluster"; rm -f "$R/dockerd.pid"; fi
  exit 0
fi
if docker info >/dev/null 2>&1; then log "docker: daemon already running"; exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  log "docker: installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >&2
  # on systemd hosts the package starts docker.service itself
  for _ in $(seq 1 10); do docker info >/dev/null 2>&1 && { log "docker: daemon running (system service)"; exit 0; }; sleep 1; done
fi
start dockerd dockerd
# dockerd's command line does not name the state dir, so check it with the pattern 'dockerd'
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then log "docker: daemon running (pid $(pid_of dockerd))"; exit 0; fi
  alive dockerd dockerd || die "dockerd exited; last lines of $L/dockerd.log: $(tail -n 5 "$L/dockerd.log" 2>/dev/null)"
  sleep 0.5
done
die "dockerd not ready after 60 s; see $L/dockerd.log"
