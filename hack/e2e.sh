#!/usr/bin/env bash
# make test-e2e: the end-to-end tests of test/e2e on a real cluster, in one `go test -tags e2e`:
# TestAutoscalingOnCluster (metrics-server, load, the HPA scales a RagService 1 -> 3 -> 1),
# TestEndToEnd (the users' sequence: helm install, kubectl apply, port-forward, /query, ...) and
# TestSourcesOnCluster (Git and HTTP sources). Each installs and removes what it needs, so they
# share one cluster.
#  - KUBECONFIG unset: builds (once) and starts the local single-node cluster (hack/localcluster),
#    loads the images into it, runs the tests, and tears the cluster down again
#    (E2E_KEEP_CLUSTER=1 keeps it).
#  - KUBECONFIG set: uses that cluster; IMAGE_LOAD_CMD loads an image into it, e.g.
#    IMAGE_LOAD_CMD="kind load docker-image" (default: none, the images must be pullable), and
#    RAGOPS_E2E_HOST_ADDR the address its pods reach this host on (TestSourcesOnCluster serves
#    Git and HTTP from this host; on the local cluster it is the pods' bridge, lcbr0).
# metrics-server v0.8.0 is built from its Go module (hack/e2e-autoscaling/metrics-server) once, by
# `make metrics-server`, into $CLUSTER_BIN/metrics-server-<version>, then into a FROM-scratch image $METRICS_SERVER_IMG.
# Failure artifacts (events, pod logs, describe) go to $RAGOPS_E2E_ARTIFACTS (default .e2e-artifacts/).
# E2E_RUN, when set, is passed to go test -run (e.g. E2E_RUN=TestSourcesOnCluster; make
# test-e2e-autoscaling sets ^TestAutoscalingOnCluster$); default: every test.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${IMG:?}" "${RAGSERVER_IMG:?}" "${FAKEOPENAI_IMG:?}" "${CHROMA_IMG:?}" "${KUBECTL:?}" "${HELM:?}" "${CLUSTER_BIN:?}"
LC=$ROOT/hack/localcluster/localcluster.sh
export LOCALCLUSTER_BIN=$CLUSTER_BIN
export LOCALCLUSTER_DIR=${LOCALCLUSTER_DIR:-$ROOT/.localcluster}
export RAGOPS_E2E_ARTIFACTS=${RAGOPS_E2E_ARTIFACTS:-$ROOT/.e2e-artifacts}
log() { printf '[e2e] %s\n' "$*" >&2; }
t0=$SECONDS

# metrics-server: built from Go modules by `make metrics-server` (cached in bin/cluster), wrapped here
# into a FROM-scratch image.
: "${METRICS_SERVER_BIN:?}" "${METRICS_SERVER_VERSION:?}"
[ -x "$METRICS_SERVER_BIN" ] || { log "no metrics-server binary at $METRICS_SERVER_BIN (make metrics-server)"; exit 1; }
METRICS_SERVER_IMG=${METRICS_SERVER_IMG:-ragops-local/metrics-server:$METRICS_SERVER_VERSION}
ms_bin=$METRICS_SERVER_BIN
t=$SECONDS
work=$(mktemp -d)
cp "$ms_bin" "$work/metrics-server"
printf 'FROM scratch\nCOPY metrics-server /metrics-server\nUSER 65534:65534\nENTRYPOINT ["/metrics-server"]\n' >"$work/Dockerfile"
docker build -q -t "$METRICS_SERVER_IMG" "$work" >/dev/null
rm -rf "$work"
log "metrics-server image $METRICS_SERVER_IMG ready in $((SECONDS - t)) s"
images=("$IMG" "$RAGSERVER_IMG" "$FAKEOPENAI_IMG" "$CHROMA_IMG" "$METRICS_SERVER_IMG")

started=0
cleanup() {
  local rc=$?
  if [ "$started" = 1 ] && [ "${E2E_KEEP_CLUSTER:-0}" != 1 ]; then
    log "tearing down the local cluster"
    "$LC" down >&2 || true
  fi
  log "total $((SECONDS - t0)) s (exit $rc)"
  exit $rc
}
trap cleanup EXIT

if [ -z "${KUBECONFIG:-}" ]; then
  t=$SECONDS
  "$LC" deps
  "$LC" build
  log "cluster binaries ready in $((SECONDS - t)) s"
  # Each run starts from an empty etcd: API objects survive down/up, and what an interrupted run
  # left there (a helm release, an APIService without its server) would meet this run's installs.
  # A cluster that still runs from this state dir is kept as it is.
  etcd_pid=$(cat "$LOCALCLUSTER_DIR/run/etcd.pid" 2>/dev/null || true)
  if [ -n "$etcd_pid" ] && grep -qsF "$LOCALCLUSTER_DIR/" "/proc/$etcd_pid/cmdline"; then
    log "the local cluster of $LOCALCLUSTER_DIR is running: using it as it is"
  else
    rm -rf "$LOCALCLUSTER_DIR/var/etcd"
  fi
  t=$SECONDS
  started=1
  KUBECONFIG=$("$LC" up)
  export KUBECONFIG
  log "cluster up in $((SECONDS - t)) s"
  t=$SECONDS
  "$LC" load "${images[@]}"
  log "images loaded in $((SECONDS - t)) s"
  # The cluster's containers are processes of this host: the suite also watches them in /proc.
  export RAGOPS_E2E_HOST_PROCESSES=1
else
  log "using the cluster of KUBECONFIG=$KUBECONFIG"
  if [ -n "${IMAGE_LOAD_CMD:-}" ]; then
    for i in "${images[@]}"; do $IMAGE_LOAD_CMD "$i"; done
  fi
fi

export RAGOPS_KUBECTL_BIN=$KUBECTL RAGOPS_HELM_BIN=$HELM
export RAGOPS_OPERATOR_IMAGE=$IMG RAGOPS_RAGSERVER_IMAGE=$RAGSERVER_IMG
export RAGOPS_FAKEOPENAI_IMAGE=$FAKEOPENAI_IMG RAGOPS_CHROMA_IMAGE=$CHROMA_IMG RAGOPS_METRICS_SERVER_IMAGE=$METRICS_SERVER_IMG
t=$SECONDS
go test -tags e2e ./test/e2e/ -run "${E2E_RUN:-.}" -count=1 -v -timeout 60m
log "e2e tests passed in $((SECONDS - t)) s"
