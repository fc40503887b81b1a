// Package observability checks the ragops dashboard and alert rules
// (config/grafana, config/prometheus) against reality: the rules load with
// Prometheus' own rule parser, every PromQL expression parses with
// Prometheus' PromQL parser, and every metric they name, with every label
// value they match exactly, is exposed by a running operator (the manager
// binary on envtest's kube-apiserver) and a running RAG server (the ragserver
// binary with the fake model API), after traffic.
//
// It is a module of its own because github.com/prometheus/prometheus brings
// a large dependency tree that the operator and the server do not need.
// Run it with `make test-observability` (make test does).
package observability
