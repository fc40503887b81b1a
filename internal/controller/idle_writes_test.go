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
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// quiesce waits until the operator made no write in ns for a while, and
// returns the writes so far.
func quiesce(t *testing.T, ns string, quiet time.Duration) []string {
	t.Helper()
	last, since := len(writes.in(ns)), time.Now()
	deadline := time.Now().Add(time.Minute)
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("the operator never went quiet in %s: %s", ns, summarize(writes.in(ns)))
		}
		time.Sleep(100 * time.Millisecond)
		if n := len(writes.in(ns)); n != last {
			last, since = n, time.Now()
		}
	}
	return writes.in(ns)
}

// playDeploymentController marks every Deployment and StatefulSet in ns
// available until all RagServices there are Ready for their current
// generation.
func playDeploymentController(t *testing.T, ns string, want int, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	eventually(t, timeout, func() error {
		deployments := &appsv1.DeploymentList{}
		if err := k8sClient.List(ctx, deployments, client.InNamespace(ns)); err != nil {
			return err
		}
		for i := range deployments.Items {
			d := &deployments.Items[i]
			n := ptr.Deref(d.Spec.Replicas, 1)
			if d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == n {
				continue
			}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
			if err := k8sClient.Status().Update(ctx, d); err != nil {
				return err
			}
		}
		statefulSets := &appsv1.StatefulSetList{}
		if err := k8sClient.List(ctx, statefulSets, client.InNamespace(ns)); err != nil {
			return err
		}
		for i := range statefulSets.Items {
			s := &statefulSets.Items[i]
			n := ptr.Deref(s.Spec.Replicas, 1)
			if s.Status.ObservedGeneration == s.Generation && s.Status.ReadyReplicas == n {
				continue
			}
			s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, CurrentReplicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
			if err := k8sClient.Status().Update(ctx, s); err != nil {
				return err
			}
		}
		list := &ragv1alpha1.RagServiceList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			rs := &list.Items[i]
			if hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, "") == nil && rs.Status.ObservedGeneration == rs.Generation {
				ready++
			}
		}
		if ready != want {
			return fmt.Errorf("%d/%d RagServices ready", ready, want)
		}
		return nil
	})
}

// TestWritesPerRagService measures what one RagService costs in API writes
// from creation to Ready, with the Deployment and StatefulSet becoming
// available.
func TestWritesPerRagService(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, newRagService(ns, "one"))
	playDeploymentController(t, ns, 1, timeout)
	all := quiesce(t, ns, 2*time.Second)
	t.Logf("API writes for one RagService from creation to Ready: %d (%s)", len(all), summarize(all))
	// 8 applies (with the API token Secret and the server NetworkPolicy),
	// 1 Created event, 1 Ready event, and a few status patches as
	// the children appear and become available.
	if len(all) > 16 {
		t.Errorf("one RagService cost %d writes, want at most 16: %s", len(all), summarize(all))
	}
}

// TestIdleWrites converges 50 RagServices, then makes the operator look at
// every one of them again, twice directly and once through its Secret watch,
// and asserts that it writes nothing at all: no apply, no status patch, no
// event.
func TestIdleWrites(t *testing.T) {
	const n = 50
	ctx := context.Background()
	ns := newNamespace(t)
	secret := createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	start := time.Now()
	for i := range n {
		create(t, newRagService(ns, fmt.Sprintf("rag-%02d", i), func(rs *ragv1alpha1.RagService) {
			if i%2 == 1 {
				rs.Spec.Replicas = ptr.To[int32](2) // with a PodDisruptionBudget
			}
		}))
	}
	playDeploymentController(t, ns, n, 2*time.Minute)
	converged := quiesce(t, ns, 2*time.Second)
	t.Logf("%d RagServices converged in %s with %d writes (%s)", n, time.Since(start).Round(time.Millisecond), len(converged), summarize(converged))

	// Idle: every RagService reconciled again, through the reconciler...
	for round := range 2 {
		for i := range n {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("rag-%02d", i)}}
			res, err := reconciler.Reconcile(ctx, req)
			if err != nil || res != (reconcile.Result{}) {
				t.Fatalf("round %d, %s: result %+v, error %v", round, req.Name, res, err)
			}
		}
	}
	// ...and through the watch: a label on the Secret (not its data) wakes
	// all 50 RagServices that reference it.
	update(t, secret, func(s *corev1.Secret) { s.Labels = map[string]string{"touched": "yes"} })
	idle := quiesce(t, ns, 3*time.Second)[len(converged):]
	t.Logf("Idle writes after %d forced passes and a watch-driven pass over %d RagServices: %d", 2*n, n, len(idle))
	if len(idle) != 0 {
		t.Errorf("the operator wrote %d times while nothing changed: %s", len(idle), summarize(idle))
	}
}
