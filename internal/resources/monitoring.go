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

package resources

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// The Prometheus Operator's ServiceMonitor, built as an unstructured object
// so that the operator does not depend on the Prometheus Operator's module.
var (
	// ServiceMonitorGVK is the kind the operator creates.
	ServiceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	// ServiceMonitorCRDName is the name of its CustomResourceDefinition.
	ServiceMonitorCRDName = "servicemonitors.monitoring.coreos.com"
)

// MonitoringEnabled reports whether spec.monitoring asks for a monitor.
func MonitoringEnabled(rs *ragv1alpha1.RagService) bool {
	return rs.Spec.Monitoring != nil && rs.Spec.Monitoring.Enabled
}

// ServiceMonitorName is the name of the server's ServiceMonitor.
func ServiceMonitorName(rs *ragv1alpha1.RagService) string { return rs.Name }

// ServerServiceMonitor builds the ServiceMonitor that scrapes /metrics of
// every server pod through the server Service's http port. /metrics needs no
// token; the server's NetworkPolicy must admit Prometheus (its namespace in
// spec.server.allowedNamespaces when it runs in another one).
func ServerServiceMonitor(rs *ragv1alpha1.RagService) *unstructured.Unstructured {
	m := rs.Spec.Monitoring
	labels := map[string]any{}
	for k, v := range m.Labels {
		labels[k] = v
	}
	for k, v := range Labels(rs, ComponentServer) {
		labels[k] = v // the operator's labels win: its cache selects by them
	}
	selector := map[string]any{}
	for k, v := range SelectorLabels(rs, ComponentServer) {
		selector[k] = v
	}
	endpoint := map[string]any{"port": "http", "path": "/metrics", "scheme": "http"}
	if m.Interval != "" {
		endpoint["interval"] = m.Interval
	}
	owner := ownerReference(rs)
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{
			"name":      ServiceMonitorName(rs),
			"namespace": rs.Namespace,
			"labels":    labels,
			"ownerReferences": []any{map[string]any{
				"apiVersion":         *owner.APIVersion,
				"kind":               *owner.Kind,
				"name":               *owner.Name,
				"uid":                string(*owner.UID),
				"controller":         true,
				"blockOwnerDeletion": true,
			}},
		},
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": selector},
			"endpoints": []any{endpoint},
		},
	}}
	u.SetGroupVersionKind(ServiceMonitorGVK)
	return u
}

// Subset reports whether every field of want has the same value in have:
// the operator's view of "the live object matches what it applies" for
// objects it only knows as unstructured (fields other writers or defaults
// add are ignored).
func Subset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !Subset(v, h[k]) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !Subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return want == have
	}
}
