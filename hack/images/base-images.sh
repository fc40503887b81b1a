#!/usr/bin/env bash
# Builds local stand-ins for the public base images that the Dockerfiles name, for machines that
# cannot pull from any registry (the default public bases stay in the Dockerfiles):
#   ragops-local/debian:bookworm         Debian 12 minbase rootfs (debootstrap) + ca-certificates, tzdata
#   ragops-local/golang:1.26-bookworm    the same rootfs + this host's Go toolchain (stands in for golang:1.26-bookworm)
# An image that exists already is kept (FORCE=1 rebuilds). Needs root, debootstrap and a Docker daemon.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEBIAN_IMAGE=${DEBIAN_IMAGE:-ragops-local/debian:bookworm}
GO_IMAGE=${GO_IMAGE:-ragops-local/golang:1.26-bookworm}
SUITE=bookworm
GOROOT_HOST=$(go env GOROOT)
log() { printf '[base-images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# This machine's own extra CA certificates (e.g. of a TLS-inspecting egress proxy) go into the
# stand-ins too, so that builds inside containers trust what the host trusts when they fetch modules
# and packages. Public base images do not need this.
add_host_cas() {
  local r=$1 n
  n=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || return 0
  mkdir -p "$r/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/"
  chroot "$r" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the rootfs"
  log "added $n host CA certificate(s)"
}
have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
docker info >/dev/null 2>&1 || die "no Docker daemon (run: hack/localcluster/localcluster.sh docker)"

if have "$DEBIAN_IMAGE" && have "$GO_IMAGE"; then
  log "$DEBIAN_IMAGE and $GO_IMAGE present (FORCE=1 rebuilds)"; exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }

work=$(mktemp -d /var/tmp/ragops-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
t0=$SECONDS
if ! have "$DEBIAN_IMAGE"; then
  log "debootstrap --variant=minbase $SUITE (1-3 min)"
  debootstrap --variant=minbase --include=ca-certificates,tzdata "$SUITE" "$rootfs" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  add_host_cas "$rootfs"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$DEBIAN_IMAGE" >/dev/null
  log "$DEBIAN_IMAGE built in $((SECONDS - t0)) s"
fi
if ! have "$GO_IMAGE"; then
  # Start from the Debian image's filesystem and add the host's Go toolchain.
  [ -d "$rootfs" ] || { mkdir -p "$rootfs"; cid=$(docker create "$DEBIAN_IMAGE"); docker export "$cid" | tar -C "$rootfs" -x; docker rm "$cid" >/dev/null; }
  mkdir -p "$rootfs/usr/local" "$rootfs/go"
  cp -a "$GOROOT_HOST" "$rootfs/usr/local/go"
  rm -rf "$rootfs/usr/local/go/pkg/obj" "$rootfs/usr/local/go/.git"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'WORKDIR /go' \
    --change 'CMD ["/bin/bash"]' - "$GO_IMAGE" >/dev/null
  log "$GO_IMAGE built ($(docker run --rm "$GO_IMAGE" go version)) in $((SECONDS - t0)) s"
fi
