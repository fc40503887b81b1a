// Package manifests_test checks what users install: the Helm chart (helm lint, helm template) and
// the kustomize deployment (config/default), each rendered and then validated by a real API server
// (envtest) through server-side dry-run apply, with the generated CRD installed. It also checks that
// the chart's copies of the CRD and of the manager's RBAC rules equal the generated ones.
package manifests
