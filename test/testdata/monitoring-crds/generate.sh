#!/usr/bin/env bash
# Regenerates the Prometheus Operator CRDs the tests install (ServiceMonitor,
# PrometheusRule) from the Prometheus Operator's own API types, with the
# project's controller-gen: the same schema the real CRDs carry, without
# descriptions. Usage: test/testdata/monitoring-crds/generate.sh (from the
# repository root; needs the Go module proxy).
set -euo pipefail
VERSION=${PROMETHEUS_OPERATOR_APIS_VERSION:-v0.95.2}
root=$(pwd)
out=$root/test/testdata/monitoring-crds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'module gen\n\ngo 1.26.0\n' >go.mod
printf 'package gen\n\nimport _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"\n' >tools.go
go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$VERSION" >/dev/null
go mod tidy >/dev/null
"$root/bin/controller-gen" crd:crdVersions=v1,maxDescLen=0 \
  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:artifacts:config=crds
for kind in servicemonitors prometheusrules; do
  cp "crds/monitoring.coreos.com_$kind.yaml" "$out/"
done
echo "wrote $out (prometheus-operator apis $VERSION)"
