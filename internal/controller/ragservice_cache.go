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
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// The cache holds every RagService, every child and the metadata of every
// Secret and ConfigMap, so what each cached object carries is the operator's
// memory. The transforms below drop, before an object enters the cache, what
// no code path reads:
//
//   - managedFields (the largest part of an object written with server-side
//     apply), except on children the operator's own apply entry: applyChild
//     extracts the fields the operator owns from it to decide that a child
//     already matches without a request (ExtractDeployment and friends read
//     only the entries of FieldOwner with operation Apply);
//   - kubectl's last-applied-configuration annotation, a full copy of the
//     object as last applied with kubectl (for a Secret: its data).

// lastAppliedAnnotation is the copy of the object kubectl apply keeps.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// transformStripAll drops managedFields and the last-applied annotation:
// for RagServices and the metadata of Secrets and ConfigMaps, whose
// managedFields nothing reads.
func transformStripAll() toolscache.TransformFunc {
	return func(in any) (any, error) {
		if obj, err := meta.Accessor(in); err == nil {
			if obj.GetManagedFields() != nil {
				obj.SetManagedFields(nil)
			}
			dropLastApplied(obj)
		}
		return in, nil
	}
}

// transformChild keeps only the operator's own apply entry of managedFields
// (what applyChild extracts) and drops the last-applied annotation.
func transformChild() toolscache.TransformFunc {
	return func(in any) (any, error) {
		if obj, err := meta.Accessor(in); err == nil {
			obj.SetManagedFields(ownApplyEntries(obj.GetManagedFields()))
			dropLastApplied(obj)
		}
		return in, nil
	}
}

// transformJob keeps of an indexing Job its metadata (without managedFields
// and the last-applied annotation) and its status: the operator identifies a
// Job by its name and annotations, never compares its spec (a Job's
// template is immutable), and the spec carries the sources' JSON.
func transformJob() toolscache.TransformFunc {
	strip := transformStripAll()
	return func(in any) (any, error) {
		if job, ok := in.(*batchv1.Job); ok {
			job.Spec = batchv1.JobSpec{}
		}
		return strip(in)
	}
}

// ownApplyEntries returns the managedFields entries of FieldOwner's applies
// to the main resource, or nil when there are none.
func ownApplyEntries(entries []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	var kept []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager == FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			kept = append(kept, e)
		}
	}
	return kept
}

func dropLastApplied(obj metav1.Object) {
	a := obj.GetAnnotations()
	if _, ok := a[lastAppliedAnnotation]; !ok {
		return
	}
	delete(a, lastAppliedAnnotation)
	if len(a) == 0 {
		a = nil
	}
	obj.SetAnnotations(a)
}
