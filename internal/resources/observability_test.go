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
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
)

func TestServerResources(t *testing.T) {
	q := resource.MustParse
	for _, tt := range []struct {
		name    string
		res     *ragv1alpha1.ResourceRequirements
		wantCPU string
		wantMem string
	}{
		{"unset: the default CPU request", nil, contract.DefaultServerCPURequest, "0"},
		{"memory only: the default CPU request beside it", &ragv1alpha1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: q("256Mi")}}, contract.DefaultServerCPURequest, "256Mi"},
		{"a CPU request wins", &ragv1alpha1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("2")}}, "2", "0"},
		{"a CPU limit below the default caps it", &ragv1alpha1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("50m")}}, "50m", "0"},
		{"a CPU limit above the default leaves it", &ragv1alpha1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("4")}}, contract.DefaultServerCPURequest, "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRagService(func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Resources = tt.res })
			before := rs.DeepCopy()
			got := ServerResources(rs)
			if c := got.Requests.Cpu().String(); c != tt.wantCPU {
				t.Errorf("cpu request %s, want %s", c, tt.wantCPU)
			}
			if m := got.Requests.Memory().String(); m != tt.wantMem {
				t.Errorf("memory request %s, want %s", m, tt.wantMem)
			}
			if rs.Spec.Server.Resources != nil && len(rs.Spec.Server.Resources.Requests) != len(before.Spec.Server.Resources.Requests) {
				t.Error("ServerResources changed the spec")
			}
		})
	}
}

func TestServerHPA(t *testing.T) {
	rs := newRagService(func(rs *ragv1alpha1.RagService) {
		rs.Spec.Autoscaling = &ragv1alpha1.AutoscalingSpec{MinReplicas: 2, MaxReplicas: 6,
			TargetCPUUtilizationPercentage: ptr.To[int32](70), TargetRequestsInFlight: ptr.To[int32](12)}
	})
	h := ServerHPA(rs)
	s := h.Spec
	if *s.ScaleTargetRef.Kind != "RagService" || *s.ScaleTargetRef.Name != "docs" || *s.ScaleTargetRef.APIVersion != "rag.ragops.dev/v1alpha1" {
		t.Fatalf("scaleTargetRef %+v", s.ScaleTargetRef)
	}
	if *s.MinReplicas != 2 || *s.MaxReplicas != 6 || len(s.Metrics) != 2 {
		t.Fatalf("min %d max %d metrics %d", *s.MinReplicas, *s.MaxReplicas, len(s.Metrics))
	}
	if *s.Metrics[0].Type != autoscalingv2.ResourceMetricSourceType || *s.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("cpu metric %+v", s.Metrics[0])
	}
	if p := s.Metrics[1].Pods; *s.Metrics[1].Type != autoscalingv2.PodsMetricSourceType || *p.Metric.Name != contract.MetricRequestsInFlight || p.Target.AverageValue.Value() != 12 {
		t.Errorf("pods metric %+v", s.Metrics[1])
	}
	// Objects stored before the CRD defaulted the window get Kubernetes' default.
	if w := *s.Behavior.ScaleDown.StabilizationWindowSeconds; w != DefaultScaleDownStabilizationSeconds {
		t.Errorf("scale-down window %d, want %d", w, DefaultScaleDownStabilizationSeconds)
	}
	if h.OwnerReferences[0].Controller == nil || !*h.OwnerReferences[0].Controller {
		t.Error("the HPA is not controlled by the RagService")
	}
}

func TestSubset(t *testing.T) {
	live := map[string]any{"spec": map[string]any{"endpoints": []any{map[string]any{"port": "http", "path": "/metrics", "scheme": "http"}}, "extra": true}}
	for _, tt := range []struct {
		want any
		ok   bool
	}{
		{map[string]any{"spec": map[string]any{"endpoints": []any{map[string]any{"port": "http"}}}}, true},
		{map[string]any{"spec": map[string]any{"endpoints": []any{map[string]any{"port": "web"}}}}, false},
		{map[string]any{"spec": map[string]any{"endpoints": []any{}}}, false},
		{map[string]any{"spec": map[string]any{"missing": "x"}}, false},
	} {
		if got := Subset(tt.want, live); got != tt.ok {
			t.Errorf("Subset(%v) = %v, want %v", tt.want, got, tt.ok)
		}
	}
}
