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
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
)

// DefaultScaleDownStabilizationSeconds is Kubernetes' own default, used for
// objects stored before the CRD defaulted the field.
const DefaultScaleDownStabilizationSeconds int32 = 300

// HPAName is the name of the server's HorizontalPodAutoscaler.
func HPAName(rs *ragv1alpha1.RagService) string { return rs.Name }

// Autoscaled reports whether a HorizontalPodAutoscaler owns spec.replicas.
func Autoscaled(rs *ragv1alpha1.RagService) bool { return rs.Spec.Autoscaling != nil }

// ServerHPA builds the HorizontalPodAutoscaler of spec.autoscaling. Its
// target is the RagService itself, through the scale subresource: the HPA
// reads status.replicas and status.selector and writes spec.replicas, which
// the operator copies to the Deployment. The Deployment is never the target,
// so the operator and the HPA never write the same field.
func ServerHPA(rs *ragv1alpha1.RagService) *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	a := rs.Spec.Autoscaling
	var metrics []*autoscalingv2ac.MetricSpecApplyConfiguration
	if a.TargetCPUUtilizationPercentage != nil {
		metrics = append(metrics, autoscalingv2ac.MetricSpec().
			WithType(autoscalingv2.ResourceMetricSourceType).
			WithResource(autoscalingv2ac.ResourceMetricSource().
				WithName(corev1.ResourceCPU).
				WithTarget(autoscalingv2ac.MetricTarget().
					WithType(autoscalingv2.UtilizationMetricType).
					WithAverageUtilization(*a.TargetCPUUtilizationPercentage))))
	}
	if a.TargetRequestsInFlight != nil {
		metrics = append(metrics, autoscalingv2ac.MetricSpec().
			WithType(autoscalingv2.PodsMetricSourceType).
			WithPods(autoscalingv2ac.PodsMetricSource().
				WithMetric(autoscalingv2ac.MetricIdentifier().WithName(contract.MetricRequestsInFlight)).
				WithTarget(autoscalingv2ac.MetricTarget().
					WithType(autoscalingv2.AverageValueMetricType).
					WithAverageValue(*resource.NewQuantity(int64(*a.TargetRequestsInFlight), resource.DecimalSI)))))
	}
	minReplicas := max(a.MinReplicas, 1)
	return autoscalingv2ac.HorizontalPodAutoscaler(HPAName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(autoscalingv2ac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
				WithAPIVersion(ragv1alpha1.GroupVersion.String()).
				WithKind("RagService").
				WithName(rs.Name)).
			WithMinReplicas(minReplicas).
			WithMaxReplicas(max(a.MaxReplicas, minReplicas)).
			WithMetrics(metrics...).
			WithBehavior(autoscalingv2ac.HorizontalPodAutoscalerBehavior().
				WithScaleDown(autoscalingv2ac.HPAScalingRules().
					WithStabilizationWindowSeconds(ptr.Deref(a.ScaleDownStabilizationSeconds, DefaultScaleDownStabilizationSeconds)))))
}
