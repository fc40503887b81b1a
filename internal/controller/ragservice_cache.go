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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
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
//     apply) and the children's specs. What applyChild needs of them, to
//     decide without a request that a child already matches, is only whether
//     the fields the operator owns (extracted from its apply entry, values
//     as stored) equal what it wants: the child transform extracts them
//     once, as the object enters the cache, and keeps their digest in the
//     cached copy's ownedDigestAnnotation. What the status and the checks
//     read stays: metadata, status, a Deployment's replicas and pod
//     template annotations, a volume's spec;
//   - kubectl's last-applied-configuration annotation, a full copy of the
//     object as last applied with kubectl (for a Secret: its data).
//
// A cached child is therefore never a base for a write: applyChild builds
// every apply from the desired state, and deletes go by name and UID.

// lastAppliedAnnotation is the copy of the object kubectl apply keeps.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// ownedDigestAnnotation holds, on cached children only (never on the API
// server), the digest of the fields FieldOwner owns (see ownedDigest).
const ownedDigestAnnotation = "cache.ragops.dev/owned-fields-sha256"

// transformReferenced keeps, of the metadata of a Secret or ConfigMap, what
// the map functions read (namespace, name, the controller reference) and
// what the informer needs (UID, resourceVersion, deletion). A change to
// anything else still reaches the map functions as an update.
func transformReferenced() toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, err := meta.Accessor(in)
		if err != nil {
			return in, nil
		}
		var refs []metav1.OwnerReference
		if c := metav1.GetControllerOfNoCopy(obj); c != nil {
			refs = []metav1.OwnerReference{*c}
		}
		obj.SetOwnerReferences(refs)
		obj.SetLabels(nil)
		obj.SetAnnotations(nil)
		obj.SetFinalizers(nil)
		obj.SetManagedFields(nil)
		obj.SetGenerateName("")
		obj.SetCreationTimestamp(metav1.Time{})
		return in, nil
	}
}

// transformStripAll drops managedFields and the last-applied annotation:
// for RagServices (and any other kind), whose managedFields nothing reads.
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

// transformChild replaces a child's managedFields and spec with the digest
// of the fields the operator owns, keeping what the operator reads, and
// drops the last-applied annotation. It is idempotent: an object that has
// the digest and no managedFields is already transformed.
func transformChild() toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, err := meta.Accessor(in)
		if err != nil {
			return in, nil
		}
		if _, done := obj.GetAnnotations()[ownedDigestAnnotation]; done && obj.GetManagedFields() == nil {
			return in, nil
		}
		var owned any
		switch o := in.(type) {
		case *appsv1.Deployment:
			owned, err = extractDeployment(o)
			o.Spec = appsv1.DeploymentSpec{
				Replicas: o.Spec.Replicas,
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: o.Spec.Template.Annotations}},
			}
		case *appsv1.StatefulSet:
			owned, err = extractStatefulSet(o)
			o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
		case *corev1.Service:
			owned, err = extractService(o)
			o.Spec = corev1.ServiceSpec{}
		case *networkingv1.NetworkPolicy:
			owned, err = extractNetworkPolicy(o)
			o.Spec = networkingv1.NetworkPolicySpec{}
		case *policyv1.PodDisruptionBudget:
			owned, err = extractPDB(o)
			o.Spec = policyv1.PodDisruptionBudgetSpec{}
		case *corev1.PersistentVolumeClaim:
			// checkRetainedVolume reads the spec; it is small.
			owned, err = extractPVC(o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			// status.autoscaling reports the bounds in force.
			owned, err = extractHPA(o)
			o.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: o.Spec.MinReplicas, MaxReplicas: o.Spec.MaxReplicas}
		default:
			return nil, fmt.Errorf("no child transform for %T", in)
		}
		if err != nil {
			return nil, fmt.Errorf("extract the fields %s owns of %T %s/%s: %w", FieldOwner, in, obj.GetNamespace(), obj.GetName(), err)
		}
		digest, err := ownedDigest(owned)
		if err != nil {
			return nil, err
		}
		obj.SetManagedFields(nil)
		dropLastApplied(obj)
		a := obj.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[ownedDigestAnnotation] = digest
		obj.SetAnnotations(a)
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

// ownedDigest is the SHA-256 of v's JSON form with object keys sorted: two
// values have the same digest exactly when their JSON forms decode to equal
// values (an apply configuration and the object it extracts from share one
// JSON shape).
func ownedDigest(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return "", err
	}
	// encoding/json writes map keys sorted.
	if raw, err = json.Marshal(generic); err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
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
