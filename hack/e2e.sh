#!/usr/bin/env bash
# make test-e2e: the users' sequence (helm install, kubectl apply, port-forward, /query) on a real cluster.
#  - KUBECONFIG unset: builds (once) and starts the local single-node cluster (hack/localcluster),
#    loads the images into it, runs the tests, and tears the cluster down again.
#  - KUBECONFIG set: uses that cluster; IMAGE_LOAD_CMD loads an image into it, e.g.
#    IMAGE_LOAD_CMD="kind load docker-image" (default: none, the images must be pullable), and
#    RAGOPS_E2E_HOST_ADDR the address its pods reach this host on (TestSourcesOnCluster serves
#    Git and HTTP from this host; on the local cluster it is the pods' bridge, lcbr0).
# Failure artifacts (events, pod logs, describe) go to $RAGOPS_E2E_ARTIFACTS (default .e2e-artifacts/).
# E2E_RUN, when set, is passed to go test -run (e.g. E2E_RUN=TestSourcesOnCluster); default: every test.
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
images=("$IMG" "$RAGSERVER_IMG" "$FAKEOPENAI_IMG" "$CHROMA_IMG")

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
export RAGOPS_FAKEOPENAI_IMAGE=$FAKEOPENAI_IMG RAGOPS_CHROMA_IMAGE=$CHROMA_IMG
t=$SECONDS
go test -tags e2e ./test/e2e/ -run "${E2E_RUN:-.}" -count=1 -v -timeout 60m
log "e2e tests passed in $((SECONDS - t)) s"
