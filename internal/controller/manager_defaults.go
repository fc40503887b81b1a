/*
Copyright 2026 The ragops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

// Defaults of the manager's flags that the chart (charts/ragops/values.yaml)
// and the kustomize Deployment (config/manager) spell out too;
// test/manifests checks that they agree. make bench-operator chose them
// (README, "The operator at scale").
const (
	// DefaultMaxConcurrentReconciles is --max-concurrent-reconciles: more
	// workers only queue at the API server, which bounds convergence.
	DefaultMaxConcurrentReconciles = 2
	// DefaultKubeAPIQPS is --kube-api-qps: 0 is no client-side limit, since
	// every cap the API server can serve faster than slows convergence.
	DefaultKubeAPIQPS = 0
	// DefaultKubeAPIBurst is --kube-api-burst: 0 is twice the QPS.
	DefaultKubeAPIBurst = 0
)
