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
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// TestCacheKeepsOnlyWhatTheOperatorReads reads the manager's cache: a child
// keeps, instead of its managedFields and spec, the digest of the fields the
// operator owns (what applyChild compares; TestIdleWrites shows it still
// skips no-op applies, TestChildrenAndStatus that a hand edit is put back),
// and what the status reads; no cached object keeps kubectl's last-applied
// copy.
func TestCacheKeepsOnlyWhatTheOperatorReads(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "cached", func(rs *ragv1alpha1.RagService) {
		rs.Annotations = map[string]string{lastAppliedAnnotation: `{"spec":{}}`, "keep": "me"}
	})
	create(t, rs)
	// The test plays the Deployment controller: a second field manager,
	// on the status subresource.
	playDeploymentController(t, ns, 1, timeout)
	key := types.NamespacedName{Namespace: ns, Name: "cached"}

	eventually(t, timeout, func() error {
		live := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, key, live); err != nil {
			return err
		}
		if len(live.ManagedFields) < 2 {
			return fmt.Errorf("the live Deployment has %d managedFields entries, want the operator's and the test's", len(live.ManagedFields))
		}
		if live.Status.ReadyReplicas != 1 {
			return fmt.Errorf("the live Deployment has %d ready replicas, want 1", live.Status.ReadyReplicas)
		}
		cached := &appsv1.Deployment{}
		if err := reconciler.Client.Get(ctx, key, cached); err != nil {
			return err
		}
		if cached.ResourceVersion != live.ResourceVersion {
			return fmt.Errorf("cache at %s, API server at %s", cached.ResourceVersion, live.ResourceVersion)
		}
		if cached.ManagedFields != nil || len(cached.Spec.Template.Spec.Containers) != 0 || cached.Spec.Selector != nil {
			return fmt.Errorf("the cached Deployment keeps %d managedFields entries, %d containers, selector %v",
				len(cached.ManagedFields), len(cached.Spec.Template.Spec.Containers), cached.Spec.Selector)
		}
		owned, err := extractDeployment(live)
		if err != nil {
			return err
		}
		want, err := ownedDigest(owned)
		if err != nil {
			return err
		}
		if got := cached.Annotations[ownedDigestAnnotation]; got != want {
			return fmt.Errorf("the cached Deployment's digest of its owned fields is %q, want %q", got, want)
		}
		// What the status and the roll-out event read.
		if *cached.Spec.Replicas != *live.Spec.Replicas || cached.Status.ReadyReplicas != 1 || cached.Generation != live.Generation ||
			cached.Spec.Template.Annotations[resources.InputsHashAnnotation] != live.Spec.Template.Annotations[resources.InputsHashAnnotation] {
			return fmt.Errorf("the cached Deployment lost what the operator reads: replicas %d, status %+v, template annotations %v",
				*cached.Spec.Replicas, cached.Status, cached.Spec.Template.Annotations)
		}
		// The transform is idempotent (client-go may pass a cached object
		// through it again).
		again, err := transformChild()(cached.DeepCopy())
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(again, cached) {
			return fmt.Errorf("a second transform changed the cached Deployment")
		}
		return nil
	})

	// A Secret's metadata keeps what the map functions read: the generated
	// token's controller reference maps it to its RagService.
	token := &corev1.Secret{}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "cached-api-token"}, token); err != nil {
		t.Fatal(err)
	}
	if len(token.Labels) == 0 || len(token.ManagedFields) == 0 {
		t.Fatalf("the live token Secret has labels %v and %d managedFields entries: the test needs both", token.Labels, len(token.ManagedFields))
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	eventually(t, timeout, func() error {
		return managerCache.Get(ctx, types.NamespacedName{Namespace: ns, Name: token.Name}, meta)
	})
	ref := metav1.GetControllerOf(meta)
	if ref == nil || ref.UID != token.OwnerReferences[0].UID || meta.UID != token.UID || meta.ResourceVersion == "" {
		t.Errorf("cached Secret metadata lost what the map functions read: %+v", meta.ObjectMeta)
	}
	if meta.Labels != nil || meta.Annotations != nil || meta.ManagedFields != nil {
		t.Errorf("cached Secret metadata keeps labels %v, annotations %v, %d managedFields entries", meta.Labels, meta.Annotations, len(meta.ManagedFields))
	}

	cached := &ragv1alpha1.RagService{}
	if err := reconciler.Client.Get(ctx, key, cached); err != nil {
		t.Fatal(err)
	}
	if cached.ManagedFields != nil {
		t.Errorf("the cached RagService keeps %d managedFields entries", len(cached.ManagedFields))
	}
	if _, ok := cached.Annotations[lastAppliedAnnotation]; ok || cached.Annotations["keep"] != "me" {
		t.Errorf("cached RagService annotations %v: want keep=me and no %s", cached.Annotations, lastAppliedAnnotation)
	}
}

// TestCacheKeepsJobsSmall: a cached indexing Job keeps its metadata and
// status, not its spec (the pod template with the sources' JSON) nor its
// managedFields.
func TestCacheKeepsJobsSmall(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}})
	create(t, newRagService(ns, "jobs", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}}
	}))
	live := waitForJobs(t, ns, "jobs", 1)[0]
	finishJob(t, &live, 0, `{"d":1,"c":1,"s":[]}`)
	eventually(t, timeout, func() error {
		cached := &batchv1.Job{}
		if err := reconciler.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: live.Name}, cached); err != nil {
			return err
		}
		if !jobSucceeded(cached) {
			return fmt.Errorf("the cached Job has not seen the completion yet: %+v", cached.Status)
		}
		raw, err := json.Marshal(cached)
		if err != nil {
			return err
		}
		full, _ := json.Marshal(live)
		if len(cached.Spec.Template.Spec.Containers) != 0 || cached.ManagedFields != nil ||
			cached.Annotations[resources.SourcesHashAnnotation] == "" || !metav1.IsControlledBy(cached, &ragv1alpha1.RagService{ObjectMeta: metav1.ObjectMeta{UID: live.OwnerReferences[0].UID}}) {
			return fmt.Errorf("cached Job = %s", raw)
		}
		t.Logf("cached Job: %d bytes of JSON; as stored: %d", len(raw), len(full))
		return nil
	})
}
