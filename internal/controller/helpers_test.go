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
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

const timeout = 30 * time.Second

// newRagService returns a minimal valid RagService that reads its key from
// the Secret "openai".
func newRagService(ns, name string, mutate ...func(*ragv1alpha1.RagService)) *ragv1alpha1.RagService {
	rs := &ragv1alpha1.RagService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ragv1alpha1.RagServiceSpec{
			Model:          "gpt-4o-mini",
			EmbeddingModel: "text-embedding-3-small",
			SecretRef:      &ragv1alpha1.SecretKeyReference{Name: "openai"},
		},
	}
	for _, m := range mutate {
		m(rs)
	}
	return rs
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func createSecret(t *testing.T, ns, name string, data map[string]string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	create(t, s)
	return s
}

// update re-reads obj and applies change to it until the update goes through.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	eventually(t, timeout, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return k8sClient.Update(context.Background(), obj)
	})
}

// get waits for an object to exist and returns it.
func get[T client.Object](t *testing.T, obj T, ns, name string) T {
	t.Helper()
	eventually(t, timeout, func() error {
		return k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
	})
	return obj
}

// waitFor polls an object until check accepts it.
func waitFor[T client.Object](t *testing.T, obj T, ns, name string, check func(T) error) T {
	t.Helper()
	eventually(t, timeout, func() error {
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		return check(obj)
	})
	return obj
}

// absent waits until an object does not exist.
func absent(t *testing.T, obj client.Object, ns, name string) {
	t.Helper()
	eventually(t, timeout, func() error {
		err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
		if err == nil {
			return fmt.Errorf("%T %s still exists", obj, name)
		}
		return client.IgnoreNotFound(err)
	})
}

// hasCondition checks one condition of a RagService, and that it describes
// the current generation.
func hasCondition(rs *ragv1alpha1.RagService, condType string, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(rs.Status.Conditions, condType)
	if c == nil {
		return fmt.Errorf("no %s condition in %+v", condType, rs.Status.Conditions)
	}
	if c.Status != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != rs.Generation {
		return fmt.Errorf("%s = %s/%s (generation %d of %d, %q), want %s/%s",
			condType, c.Status, c.Reason, c.ObservedGeneration, rs.Generation, c.Message, status, reason)
	}
	return nil
}

func conditionIs(condType string, status metav1.ConditionStatus, reason string) func(*ragv1alpha1.RagService) error {
	return func(rs *ragv1alpha1.RagService) error { return hasCondition(rs, condType, status, reason) }
}

// markAvailable plays the Deployment controller and the kubelet: it reports
// every desired replica of the current generation as ready.
func markAvailable(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, timeout, func() error {
		d := &appsv1.Deployment{}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation,
			Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		}
		return k8sClient.Status().Update(context.Background(), d)
	})
}

// markChromaAvailable plays the StatefulSet controller and the kubelet: it
// reports Chroma's one replica of the current generation as ready.
func markChromaAvailable(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, timeout, func() error {
		s := &appsv1.StatefulSet{}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
			return err
		}
		s.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: s.Generation,
			Replicas:           1, CurrentReplicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		}
		return k8sClient.Status().Update(context.Background(), s)
	})
}

// markUnavailable reports a Deployment with no ready replica.
func markUnavailable(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, timeout, func() error {
		d := &appsv1.Deployment{}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n}
		return k8sClient.Status().Update(context.Background(), d)
	})
}

// waitForEvent waits for an event with the given reason on a RagService.
func waitForEvent(t *testing.T, ns, name, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, timeout, func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for i, e := range list.Items {
			if e.Regarding.Kind == "RagService" && e.Regarding.Name == name {
				if e.Reason == reason {
					found = &list.Items[i]
					return nil
				}
				seen = append(seen, e.Reason)
			}
		}
		return fmt.Errorf("no %s event on %s (seen %v)", reason, name, seen)
	})
	return found
}

func envOf(d *appsv1.Deployment) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		m[e.Name] = e
	}
	return m
}

func inputsHash(d *appsv1.Deployment) string {
	return d.Spec.Template.Annotations["rag.ragops.dev/inputs-hash"]
}
