#!/usr/bin/env bash
# make test-e2e-autoscaling: the autoscaling phase of issue 14 on a real cluster (not part of
# make test-e2e). Builds metrics-server v0.8.0 from its Go module (hack/e2e-autoscaling/
# metrics-server) into a FROM-scratch image, loads it and the ragops images into the cluster, and
# runs TestAutoscalingOnCluster (test/e2e/autoscaling_test.go): a RagService with autoscaling 1..3
# on CPU is driven by load from inside the cluster until the HPA scales it to 3, then left alone
# until it comes back to 1. Prints the times.
#  - KUBECONFIG unset: builds (once) and starts the local single-node cluster, runs, tears it down
#    (E2E_KEEP_CLUSTER=1 keeps it).
#  - KUBECONFIG set: uses that cluster; IMAGE_LOAD_CMD loads an image into it (default: the local
#    cluster's loader, which needs root and the local cluster's containerd).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${IMG:?}" "${RAGSERVER_IMG:?}" "${FAKEOPENAI_IMG:?}" "${CHROMA_IMG:?}" "${KUBECTL:?}" "${HELM:?}" "${CLUSTER_BIN:?}"
METRICS_SERVER_IMG=${METRICS_SERVER_IMG:-ragops-local/metrics-server:v0.8.0}
LC=$ROOT/hack/localcluster/localcluster.sh
export LOCALCLUSTER_BIN=$CLUSTER_BIN
export LOCALCLUSTER_DIR=${LOCALCLUSTER_DIR:-$ROOT/.localcluster}
export RAGOPS_E2E_ARTIFACTS=${RAGOPS_E2E_ARTIFACTS:-$ROOT/.e2e-artifacts}
log() { printf '[e2e-autoscaling] %s\n' "$*" >&2; }
t0=$SECONDS

t=$SECONDS
work=$(mktemp -d)
(cd hack/e2e-autoscaling/metrics-server && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' \
  -o "$work/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server)
printf 'FROM scratch\nCOPY metrics-server /metrics-server\nUSER 65534:65534\nENTRYPOINT ["/metrics-server"]\n' >"$work/Dockerfile"
docker build -q -t "$METRICS_SERVER_IMG" "$work" >/dev/null
rm -rf "$work"
log "metrics-server image $METRICS_SERVER_IMG built in $((SECONDS - t)) s"
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
  "$LC" deps
  "$LC" build
  started=1
  KUBECONFIG=$("$LC" up)
  export KUBECONFIG
  "$LC" load "${images[@]}"
else
  log "using the cluster of KUBECONFIG=$KUBECONFIG"
  for i in "${images[@]}"; do ${IMAGE_LOAD_CMD:-"$LC" load} "$i"; done
fi

export RAGOPS_KUBECTL_BIN=$KUBECTL RAGOPS_HELM_BIN=$HELM
export RAGOPS_OPERATOR_IMAGE=$IMG RAGOPS_RAGSERVER_IMAGE=$RAGSERVER_IMG
export RAGOPS_FAKEOPENAI_IMAGE=$FAKEOPENAI_IMG RAGOPS_CHROMA_IMAGE=$CHROMA_IMG RAGOPS_METRICS_SERVER_IMAGE=$METRICS_SERVER_IMG
go test -tags e2e,autoscaling ./test/e2e/ -run '^TestAutoscalingOnCluster$' -count=1 -v -timeout 30m
