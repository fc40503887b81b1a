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
// keeps the operator's own apply entry of managedFields (what applyChild
// compares; TestIdleWrites shows it still skips no-op applies) and nothing
// else of them, and no cached object keeps kubectl's last-applied copy.
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
		cached := &appsv1.Deployment{}
		if err := reconciler.Client.Get(ctx, key, cached); err != nil {
			return err
		}
		if cached.ResourceVersion != live.ResourceVersion {
			return fmt.Errorf("cache at %s, API server at %s", cached.ResourceVersion, live.ResourceVersion)
		}
		if len(cached.ManagedFields) != 1 {
			return fmt.Errorf("the cached Deployment has %d managedFields entries, want 1: %+v", len(cached.ManagedFields), cached.ManagedFields)
		}
		if e := cached.ManagedFields[0]; e.Manager != FieldOwner || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" {
			return fmt.Errorf("the cached Deployment keeps the entry of %s %s %q", e.Manager, e.Operation, e.Subresource)
		}
		return nil
	})

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
