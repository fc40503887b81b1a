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
	"path/filepath"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// TestAutoscaling: spec.autoscaling creates an autoscaling/v2 HPA that
// targets the RagService's scale subresource; the HPA's writes to /scale
// reach the Deployment and the operator never writes them back; changing
// and removing autoscaling updates and deletes the HPA; status.autoscaling
// shows the HPA's state.
func TestAutoscaling(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "auto", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Autoscaling = &ragv1alpha1.AutoscalingSpec{
			MaxReplicas: 3, TargetCPUUtilizationPercentage: ptr.To[int32](60), ScaleDownStabilizationSeconds: ptr.To[int32](30),
		}
	})
	create(t, rs)

	hpa := waitFor(t, &autoscalingv2.HorizontalPodAutoscaler{}, ns, "auto", func(h *autoscalingv2.HorizontalPodAutoscaler) error {
		return nil
	})
	want := autoscalingv2.CrossVersionObjectReference{APIVersion: "rag.ragops.dev/v1alpha1", Kind: "RagService", Name: "auto"}
	if hpa.Spec.ScaleTargetRef != want {
		t.Fatalf("scaleTargetRef = %+v, want %+v", hpa.Spec.ScaleTargetRef, want)
	}
	if ptr.Deref(hpa.Spec.MinReplicas, 0) != 1 || hpa.Spec.MaxReplicas != 3 {
		t.Fatalf("min/max = %v/%d, want 1/3 (min defaulted by the CRD)", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		ptr.Deref(hpa.Spec.Metrics[0].Resource.Target.AverageUtilization, 0) != 60 {
		t.Fatalf("metrics = %+v, want CPU at 60%%", hpa.Spec.Metrics)
	}
	if b := hpa.Spec.Behavior; b == nil || b.ScaleDown == nil || ptr.Deref(b.ScaleDown.StabilizationWindowSeconds, -1) != 30 {
		t.Fatalf("behavior = %+v, want a 30 s scale-down window", hpa.Spec.Behavior)
	}
	if !metav1.IsControlledBy(hpa, getRS(t, ns, "auto")) {
		t.Fatalf("the HPA is not controlled by the RagService: %+v", hpa.OwnerReferences)
	}
	// CPU utilisation needs a CPU request: the default one.
	d := get(t, &appsv1.Deployment{}, ns, "auto")
	if cpu := d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String(); cpu != contract.DefaultServerCPURequest {
		t.Fatalf("server CPU request = %s, want the default %s", cpu, contract.DefaultServerCPURequest)
	}
	waitFor(t, &ragv1alpha1.RagService{}, ns, "auto", func(rs *ragv1alpha1.RagService) error {
		a := rs.Status.Autoscaling
		if a == nil || a.HPAName != "auto" || a.MinReplicas != 1 || a.MaxReplicas != 3 {
			return fmt.Errorf("status.autoscaling = %+v", a)
		}
		return nil
	})

	// Play the HPA controller: it reports its state and writes /scale.
	eventually(t, timeout, func() error {
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "auto"}, h); err != nil {
			return err
		}
		h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
			CurrentReplicas: 1, DesiredReplicas: 3,
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{
				Type: autoscalingv2.ScalingLimited, Status: corev1.ConditionTrue, Reason: "TooManyReplicas",
				Message: "the desired replica count is more than the maximum replica count", LastTransitionTime: metav1.Now(),
			}},
		}
		return k8sClient.Status().Update(ctx, h)
	})
	scales, gr := scaleClient(t)
	eventually(t, timeout, func() error {
		s, err := scales.Scales(ns).Get(ctx, gr, "auto", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = 3
		_, err = scales.Scales(ns).Update(ctx, gr, s, metav1.UpdateOptions{})
		return err
	})
	waitFor(t, &appsv1.Deployment{}, ns, "auto", func(d *appsv1.Deployment) error {
		if r := ptr.Deref(d.Spec.Replicas, 0); r != 3 {
			return fmt.Errorf("Deployment replicas = %d, want 3 (from /scale)", r)
		}
		return nil
	})
	markAvailable(t, ns, "auto")
	markChromaAvailable(t, ns, "auto-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "auto", func(rs *ragv1alpha1.RagService) error {
		a := rs.Status.Autoscaling
		if a == nil || a.CurrentReplicas != 1 || a.DesiredReplicas != 3 || a.Message == "" || rs.Status.ReadyReplicas != 3 {
			return fmt.Errorf("status = %+v, autoscaling %+v", rs.Status, a)
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable)
	})

	// Change the autoscaling: a second target, a new maximum.
	update(t, &ragv1alpha1.RagService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auto"}}, func(rs *ragv1alpha1.RagService) {
		rs.Spec.Autoscaling.MaxReplicas = 5
		rs.Spec.Autoscaling.TargetRequestsInFlight = ptr.To[int32](8)
	})
	waitFor(t, &autoscalingv2.HorizontalPodAutoscaler{}, ns, "auto", func(h *autoscalingv2.HorizontalPodAutoscaler) error {
		if h.Spec.MaxReplicas != 5 || len(h.Spec.Metrics) != 2 {
			return fmt.Errorf("max %d, %d metrics", h.Spec.MaxReplicas, len(h.Spec.Metrics))
		}
		p := h.Spec.Metrics[1].Pods
		if p == nil || p.Metric.Name != contract.MetricRequestsInFlight || p.Target.AverageValue == nil || p.Target.AverageValue.Value() != 8 {
			return fmt.Errorf("pods metric = %+v", h.Spec.Metrics[1])
		}
		return nil
	})
	// The operator left spec.replicas as /scale wrote it.
	if r := ptr.Deref(getRS(t, ns, "auto").Spec.Replicas, 0); r != 3 {
		t.Fatalf("spec.replicas = %d after a pass, want the 3 the HPA wrote", r)
	}

	// Remove autoscaling: the HPA goes, replicas stay where they were.
	update(t, &ragv1alpha1.RagService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auto"}}, func(rs *ragv1alpha1.RagService) {
		rs.Spec.Autoscaling = nil
	})
	absent(t, &autoscalingv2.HorizontalPodAutoscaler{}, ns, "auto")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "auto", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.Autoscaling != nil {
			return fmt.Errorf("status.autoscaling = %+v after autoscaling was removed", rs.Status.Autoscaling)
		}
		return nil
	})
	if r := ptr.Deref(get(t, &appsv1.Deployment{}, ns, "auto").Spec.Replicas, 0); r != 3 {
		t.Fatalf("Deployment replicas = %d after autoscaling was removed, want 3", r)
	}
}

// TestServerCPURequestFromSpec: a CPU request in the spec wins over the
// default; a CPU limit below the default caps the default request.
func TestServerCPURequestFromSpec(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	for name, tt := range map[string]struct {
		res  ragv1alpha1.ResourceRequirements
		want string
	}{
		"request": {ragv1alpha1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}, "250m"},
		"limit":   {ragv1alpha1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}}, "50m"},
	} {
		create(t, newRagService(ns, name, func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Resources = &tt.res }))
		d := get(t, &appsv1.Deployment{}, ns, name)
		if got := d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String(); got != tt.want {
			t.Errorf("%s: CPU request %s, want %s", name, got, tt.want)
		}
	}
}

// TestMonitoringWithoutAndWithTheCRD: spec.monitoring on a cluster without
// the Prometheus Operator does not fail the RagService and makes no
// requests in a loop; installing the CRD creates the ServiceMonitor (the CRD
// watch wakes the RagService); disabling monitoring deletes it.
//
// It installs the ServiceMonitor CRD into the suite's API server, so it runs
// its "without" half first; every other test runs without the CRD only if
// it runs before this one, which no test relies on.
func TestMonitoringWithoutAndWithTheCRD(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	if _, err := reconciler.serviceMonitorCRDInstalled(ctx); err != nil {
		t.Fatal(err)
	}
	if installed, _ := reconciler.serviceMonitorCRDInstalled(ctx); installed {
		t.Fatal("the ServiceMonitor CRD is installed before the test installs it")
	}
	create(t, newRagService(ns, "mon", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Monitoring = &ragv1alpha1.MonitoringSpec{Enabled: true, Interval: "15s", Labels: map[string]string{"release": "kube-prometheus-stack"}}
	}))
	markAvailableWhenCreated(t, ns, "mon")
	markChromaAvailable(t, ns, "mon-chroma")
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "mon", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionMonitoringReady, metav1.ConditionFalse, ragv1alpha1.ReasonCRDNotInstalled); err != nil {
			return err
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable)
	})
	if rs.Status.LastError != nil {
		t.Fatalf("lastError = %+v: a missing CRD is not an error", rs.Status.LastError)
	}
	// No retry loop: a pass neither requeues nor writes; the CRD watch is
	// what wakes the RagService.
	settled := quiesce(t, ns, 2*time.Second)
	for range 2 {
		res, err := reconciler.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "mon"}})
		if err != nil || res != (reconcile.Result{}) {
			t.Fatalf("a pass without the CRD: result %+v, error %v; want neither a requeue nor an error", res, err)
		}
	}
	if after := quiesce(t, ns, 2*time.Second); len(after) != len(settled) {
		t.Fatalf("the operator wrote %d times while the CRD was missing: %s", len(after)-len(settled), summarize(after[len(settled):]))
	}

	// Install the CRD (generated from the Prometheus Operator's API types).
	if _, err := envtest.InstallCRDs(testCfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join("..", "..", "test", "testdata", "monitoring-crds", "monitoring.coreos.com_servicemonitors.yaml")},
		ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(resources.ServiceMonitorGVK)
	eventually(t, timeout, func() error {
		return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mon"}, sm)
	})
	if !metav1.IsControlledBy(sm, getRS(t, ns, "mon")) || sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Fatalf("ServiceMonitor metadata: owners %+v, labels %v", sm.GetOwnerReferences(), sm.GetLabels())
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := get(t, &corev1.Service{}, ns, "mon")
	wantEndpoint := map[string]any{"port": "http", "path": "/metrics", "scheme": "http", "interval": "15s"}
	if len(endpoints) != 1 || !reflect.DeepEqual(endpoints[0], wantEndpoint) || svc.Spec.Ports[0].Name != "http" {
		t.Fatalf("endpoints = %v, want %v on the Service's port %q", endpoints, wantEndpoint, svc.Spec.Ports[0].Name)
	}
	for k, v := range selector {
		if svc.Labels[k] != v {
			t.Fatalf("the selector %v does not select the server Service (labels %v)", selector, svc.Labels)
		}
	}
	waitFor(t, &ragv1alpha1.RagService{}, ns, "mon", conditionIs(ragv1alpha1.ConditionMonitoringReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable))

	// Disable: the monitor goes, and so does the condition.
	update(t, &ragv1alpha1.RagService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mon"}}, func(rs *ragv1alpha1.RagService) {
		rs.Spec.Monitoring.Enabled = false
	})
	absent(t, sm.DeepCopy(), ns, "mon")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "mon", func(rs *ragv1alpha1.RagService) error {
		if c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionMonitoringReady); c != nil {
			return fmt.Errorf("MonitoringReady still present: %+v", c)
		}
		return nil
	})
}

// TestLastErrorStaysAfterRecovery: status.lastError tells on-call what went
// wrong even after the RagService recovered.
func TestLastErrorStaysAfterRecovery(t *testing.T) {
	ns := newNamespace(t)
	create(t, newRagService(ns, "flaky"))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "flaky", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.LastError == nil || rs.Status.LastError.Message != `Secret "openai" not found` {
			return fmt.Errorf("lastError = %+v", rs.Status.LastError)
		}
		return nil
	})
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	markAvailableWhenCreated(t, ns, "flaky")
	markChromaAvailable(t, ns, "flaky-chroma")
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "flaky", conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable))
	if rs.Status.LastError == nil || rs.Status.LastError.Message != `Secret "openai" not found` || rs.Status.LastError.Time.IsZero() {
		t.Fatalf("lastError after recovery = %+v", rs.Status.LastError)
	}
}

func getRS(t *testing.T, ns, name string) *ragv1alpha1.RagService {
	t.Helper()
	return get(t, &ragv1alpha1.RagService{}, ns, name)
}

// markAvailableWhenCreated waits for a Deployment and reports it ready.
func markAvailableWhenCreated(t *testing.T, ns, name string) {
	t.Helper()
	get(t, &appsv1.Deployment{}, ns, name)
	markAvailable(t, ns, name)
}

// scaleClient is what kubectl scale and the HPA controller use.
func scaleClient(t *testing.T) (scale.ScalesGetter, schema.GroupResource) {
	t.Helper()
	disc := memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(testCfg))
	scales, err := scale.NewForConfig(testCfg, restmapper.NewDeferredDiscoveryRESTMapper(disc),
		dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(disc))
	if err != nil {
		t.Fatal(err)
	}
	return scales, schema.GroupResource{Group: ragv1alpha1.GroupVersion.Group, Resource: "ragservices"}
}
