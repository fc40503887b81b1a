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
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// applyConfiguration is a typed server-side apply configuration of a
// namespaced object.
type applyConfiguration interface {
	runtime.ApplyConfiguration
	GetName() *string
	GetNamespace() *string
	GetKind() *string
}

// applyChild makes the live child match desired with one server-side apply
// under FieldOwner, and skips the request when it already does.
//
// An apply request is a write even when it changes nothing, so "already
// matches" is decided first, without a request: the fields FieldOwner owns on
// the live object (extracted from its managedFields, values as stored) are
// compared with the desired configuration, by digest (the cache keeps only
// the digest of a child's owned fields, see ragservice_cache.go). A field someone else changed
// (kubectl edit takes its ownership) or a field the operator no longer sets
// makes them differ, and the apply (with ForceOwnership) puts it back.
//
// It never adopts an object the operator did not create (see ours): the
// forced apply would take it over and garbage collection would later delete
// it with the RagService. Such an object is a ChildConflict wait. The cache
// only holds labelled children, so a cache miss is checked with an uncached
// read, which is then what the desired state is compared with.
//
// It returns the live object: the apply answer, or the cached object when no
// request was needed.
func applyChild[T client.Object, A applyConfiguration](
	ctx context.Context, r *RagServiceReconciler, s *scope, desired A,
	newObj func() T, extract func(T) (any, error),
) (T, error) {
	var zero T
	key := types.NamespacedName{Namespace: deref(desired.GetNamespace()), Name: deref(desired.GetName())}
	kind := deref(desired.GetKind())

	live := newObj()
	err := r.Client.Get(ctx, key, live)
	if apierrors.IsNotFound(err) {
		// Not in the cache: new, created so recently that the cache has
		// not seen it (a pass woken by the first child's event looks for
		// the others), or someone else's object, which the cache does not
		// hold. Ask the API server, and compare with its copy.
		uncached := newObj()
		switch err2 := r.APIReader.Get(ctx, key, uncached); {
		case apierrors.IsNotFound(err2):
		case err2 != nil:
			return zero, fmt.Errorf("get %s %s: %w", kind, key.Name, err2)
		case !ours(uncached, s.rs):
			return zero, childConflict(kind, key)
		default:
			live, err = uncached, nil
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		// New: the apply creates it.
	case err != nil:
		return zero, fmt.Errorf("get %s %s: %w", kind, key.Name, err)
	case !ours(live, s.rs):
		return zero, childConflict(kind, key)
	default:
		// A cached child carries the digest of its owned fields (see
		// transformChild); an uncached one (a Secret) its managedFields.
		have, cached := live.GetAnnotations()[ownedDigestAnnotation]
		if !cached {
			owned, err := extract(live)
			if err != nil {
				return zero, fmt.Errorf("extract the fields of %s %s: %w", kind, key.Name, err)
			}
			if have, err = ownedDigest(owned); err != nil {
				return zero, err
			}
		}
		want, err := ownedDigest(desired)
		if err != nil {
			return zero, err
		}
		if have == want {
			return live, nil
		}
		log.FromContext(ctx).V(1).Info("Applying drifted child", "kind", kind, "name", key.Name)
	}

	if err := r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		if apierrors.IsInvalid(err) {
			// The API server rejects what the spec asks for (for example a
			// volume that cannot shrink): retrying cannot help.
			return zero, stall(ragv1alpha1.ReasonInvalidSpec, "the API server rejected %s %s: %v", kind, key.Name, err)
		}
		return zero, err
	}
	// desired now holds the API server's answer.
	fresh := newObj()
	if err := convert(desired, fresh); err != nil {
		return zero, err
	}
	// Creation timestamps have a resolution of one second.
	if created := fresh.GetCreationTimestamp(); !created.Time.Before(s.start.Truncate(time.Second)) {
		s.created = append(s.created, kind+"/"+key.Name)
	}
	return fresh, nil
}

// ours reports whether obj is a child of rs: controlled by it, or labelled
// by the operator as a child of a RagService of this name and either without
// a controller (a retained volume) or controlled by an earlier RagService of
// the same name (deleted and re-created before garbage collection ran).
func ours(obj client.Object, rs *ragv1alpha1.RagService) bool {
	ref := metav1.GetControllerOf(obj)
	if ref != nil && ref.UID == rs.UID {
		return true
	}
	l := obj.GetLabels()
	if l[resources.LabelManagedBy] != resources.ManagedBy || l[resources.LabelInstance] != rs.Name {
		return false
	}
	return ref == nil || (ref.APIVersion == ragv1alpha1.GroupVersion.String() && ref.Kind == "RagService" && ref.Name == rs.Name)
}

func childConflict(kind string, key types.NamespacedName) error {
	return conflict("%s %s/%s exists and was not created by this RagService: the operator does not adopt it; delete or rename it", kind, key.Namespace, key.Name)
}

// deleteOwned deletes a child the RagService controls, if it exists. An
// object of the same name that the RagService does not control (a retained
// volume, someone else's object) is left alone.
func (r *RagServiceReconciler) deleteOwned(ctx context.Context, s *scope, key types.NamespacedName, obj client.Object) error {
	if err := r.Client.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, s.rs) {
		return nil
	}
	uid := obj.GetUID()
	if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %T %s: %w", obj, key.Name, err)
	}
	log.FromContext(ctx).Info("Deleted child", "kind", fmt.Sprintf("%T", obj), "name", key.Name)
	return nil
}

// convert copies in into out through JSON (apply configurations and typed
// objects share one JSON shape).
func convert(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func newDeployment() *appsv1.Deployment             { return &appsv1.Deployment{} }
func newStatefulSet() *appsv1.StatefulSet           { return &appsv1.StatefulSet{} }
func newService() *corev1.Service                   { return &corev1.Service{} }
func newPVC() *corev1.PersistentVolumeClaim         { return &corev1.PersistentVolumeClaim{} }
func newNetworkPolicy() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} }
func newPDB() *policyv1.PodDisruptionBudget         { return &policyv1.PodDisruptionBudget{} }
func newSecret() *corev1.Secret                     { return &corev1.Secret{} }
func extractSecret(o *corev1.Secret) (any, error)   { return corev1ac.ExtractSecret(o, FieldOwner) }
func extractDeployment(o *appsv1.Deployment) (any, error) {
	return appsv1ac.ExtractDeployment(o, FieldOwner)
}
func extractStatefulSet(o *appsv1.StatefulSet) (any, error) {
	return appsv1ac.ExtractStatefulSet(o, FieldOwner)
}
func extractService(o *corev1.Service) (any, error) { return corev1ac.ExtractService(o, FieldOwner) }
func extractPVC(o *corev1.PersistentVolumeClaim) (any, error) {
	return corev1ac.ExtractPersistentVolumeClaim(o, FieldOwner)
}
func extractNetworkPolicy(o *networkingv1.NetworkPolicy) (any, error) {
	return networkingv1ac.ExtractNetworkPolicy(o, FieldOwner)
}
func extractHPA(o *autoscalingv2.HorizontalPodAutoscaler) (any, error) {
	return autoscalingv2ac.ExtractHorizontalPodAutoscaler(o, FieldOwner)
}
func extractPDB(o *policyv1.PodDisruptionBudget) (any, error) {
	return policyv1ac.ExtractPodDisruptionBudget(o, FieldOwner)
}
