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

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch

// readyGauge is 1 for a RagService whose Ready condition is True, 0
// otherwise; the "not Ready for 10 minutes" alert reads it. The operator
// registers it with controller-runtime's registry, beside the reconcile and
// workqueue metrics.
var readyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "ragops_ragservice_ready",
	Help: "1 when the RagService's Ready condition is True, 0 otherwise.",
}, []string{"namespace", "ragservice"})

func init() {
	ctrlmetrics.Registry.MustRegister(readyGauge)
}

// forgetRagService drops the series of a RagService that is gone.
func forgetRagService(key types.NamespacedName) {
	readyGauge.DeleteLabelValues(key.Namespace, key.Name)
}

// reconcileAutoscaling applies the HorizontalPodAutoscaler of
// spec.autoscaling, or deletes it when autoscaling is removed.
//
// The operator and the HPA never write the same field: the HPA targets the
// RagService's scale subresource and writes spec.replicas; the operator
// never writes spec.replicas and applies it, as it finds it, to the
// Deployment's replicas (which only the operator writes).
func (r *RagServiceReconciler) reconcileAutoscaling(ctx context.Context, s *scope) error {
	rs := s.rs
	key := types.NamespacedName{Namespace: rs.Namespace, Name: resources.HPAName(rs)}
	if !resources.Autoscaled(rs) {
		return r.deleteOwned(ctx, s, key, &autoscalingv2.HorizontalPodAutoscaler{})
	}
	hpa, err := applyChild(ctx, r, s, resources.ServerHPA(rs), newHPA, extractHPA)
	if err != nil {
		return fmt.Errorf("apply HorizontalPodAutoscaler: %w", err)
	}
	s.hpa = hpa
	return nil
}

// reconcileMonitoring creates the ServiceMonitor of spec.monitoring when the
// cluster has the Prometheus Operator's CRD, and deletes it when monitoring
// is disabled. Without the CRD it does not fail: MonitoringReady says so,
// and the watch on the CRD (see SetupWithManager) wakes the RagService when
// it is installed. The CRD's presence is read from the cache, so a cluster
// without it costs no request per pass.
func (r *RagServiceReconciler) reconcileMonitoring(ctx context.Context, s *scope) error {
	rs := s.rs
	installed, err := r.serviceMonitorCRDInstalled(ctx)
	if err != nil {
		return err
	}
	enabled := resources.MonitoringEnabled(rs)
	if !installed {
		if enabled {
			c := isFalse(ragv1alpha1.ReasonCRDNotInstalled, fmt.Sprintf(
				"The cluster has no %s CRD (Prometheus Operator): the ServiceMonitor is created once it is installed", resources.ServiceMonitorCRDName))
			s.monitoring = &c
		}
		return nil
	}

	key := types.NamespacedName{Namespace: rs.Namespace, Name: resources.ServiceMonitorName(rs)}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(resources.ServiceMonitorGVK)
	// Unstructured reads bypass the cache: one GET per pass, only on
	// clusters with the CRD.
	switch err := r.Client.Get(ctx, key, live); {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		live = nil
	case err != nil:
		return fmt.Errorf("get ServiceMonitor %s: %w", key.Name, err)
	case !ours(live, rs):
		if enabled {
			return childConflict("ServiceMonitor", key)
		}
		return nil
	}
	if !enabled {
		if live == nil || !metav1.IsControlledBy(live, rs) {
			return nil
		}
		uid := live.GetUID()
		if err := r.Client.Delete(ctx, live, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete ServiceMonitor %s: %w", key.Name, err)
		}
		log.FromContext(ctx).Info("Deleted child", "kind", "ServiceMonitor", "name", key.Name)
		return nil
	}

	desired := resources.ServerServiceMonitor(rs)
	if live == nil || !resources.Subset(desired.Object, live.Object) {
		if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			if apierrors.IsInvalid(err) {
				return stall(ragv1alpha1.ReasonInvalidSpec, "the API server rejected ServiceMonitor %s: %v", key.Name, err)
			}
			return fmt.Errorf("apply ServiceMonitor %s: %w", key.Name, err)
		}
		if live == nil {
			s.created = append(s.created, "ServiceMonitor/"+key.Name)
		}
	}
	c := isTrue(ragv1alpha1.ReasonAvailable, fmt.Sprintf("ServiceMonitor %s/%s scrapes /metrics of the server pods", key.Namespace, key.Name))
	s.monitoring = &c
	return nil
}

// serviceMonitorCRDInstalled reports whether the API server serves
// ServiceMonitors: the CRD is in the cache (metadata only) and discovery
// knows the kind (the RESTMapper looks the group up again on a miss, which
// happens only while the CRD is there but not yet served).
func (r *RagServiceReconciler) serviceMonitorCRDInstalled(ctx context.Context) (bool, error) {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(crdGVK)
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: resources.ServiceMonitorCRDName}, crd); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get CustomResourceDefinition %s: %w", resources.ServiceMonitorCRDName, err)
	}
	gvk := resources.ServiceMonitorGVK
	if _, err := r.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return false, fmt.Errorf("discover %s: %w", gvk.Kind, err)
	}
	return true, nil
}

// mapMonitoringCRD maps the ServiceMonitor CRD (created, established or
// deleted) to every RagService that enables monitoring.
func (r *RagServiceReconciler) mapMonitoringCRD(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetName() != resources.ServiceMonitorCRDName {
		return nil
	}
	list := &ragv1alpha1.RagServiceList{}
	if err := r.Client.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "Listing RagServices for the ServiceMonitor CRD failed")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if resources.MonitoringEnabled(&list.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// autoscalingStatus summarises the HPA for status.autoscaling.
func autoscalingStatus(rs *ragv1alpha1.RagService, hpa *autoscalingv2.HorizontalPodAutoscaler) *ragv1alpha1.AutoscalingStatus {
	if !resources.Autoscaled(rs) {
		return nil
	}
	st := &ragv1alpha1.AutoscalingStatus{HPAName: resources.HPAName(rs)}
	if hpa == nil {
		st.Message = "HorizontalPodAutoscaler is not created yet"
		return st
	}
	st.MinReplicas = max(1, derefInt32(hpa.Spec.MinReplicas))
	st.MaxReplicas = hpa.Spec.MaxReplicas
	st.CurrentReplicas = hpa.Status.CurrentReplicas
	st.DesiredReplicas = hpa.Status.DesiredReplicas
	st.LastScaleTime = hpa.Status.LastScaleTime
	var notes []string
	for _, c := range hpa.Status.Conditions {
		limited := c.Type == autoscalingv2.ScalingLimited && c.Status == corev1.ConditionTrue
		blocked := (c.Type == autoscalingv2.AbleToScale || c.Type == autoscalingv2.ScalingActive) && c.Status == corev1.ConditionFalse
		if limited || blocked {
			notes = append(notes, fmt.Sprintf("%s: %s", c.Reason, c.Message))
		}
	}
	st.Message = strings.Join(notes, "; ")
	return st
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func newHPA() *autoscalingv2.HorizontalPodAutoscaler { return &autoscalingv2.HorizontalPodAutoscaler{} }
