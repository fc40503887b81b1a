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

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// Field indexes on RagServices, to find the RagServices that reference a
// Secret or a ConfigMap (the documents' ConfigMaps and the sources' Secrets
// included).
const (
	IndexSecretRef    = ".spec.secretRef.name"
	IndexConfigMapRef = ".spec.documents.configMapRef.name"
)

// CacheOptions scopes the manager's cache:
//
//   - RagServices: all of them (in the watched namespaces);
//   - Deployments, StatefulSets, Services, PersistentVolumeClaims, NetworkPolicies and
//     PodDisruptionBudgets: only those labelled managed-by=ragops-operator,
//     that is, the operator's children, with the digest of the fields the
//     operator owns instead of their managedFields and specs;
//   - indexing Jobs: the operator's only, metadata and status (no spec,
//     which carries the sources' JSON, and no managedFields);
//   - Pods: never cached; the pods of a finished Job are listed uncached,
//     once, for its termination message;
//   - Secrets and ConfigMaps: metadata only (no data), and of it only
//     namespace, name, UID, resourceVersion and the controller reference.
//     Their data is read uncached, and only for referenced objects.
//
// No cached object keeps kubectl's last-applied-configuration annotation.
//
// namespaces restricts the cache to those namespaces; empty means all.
func CacheOptions(namespaces []string) cache.Options {
	children := labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.ManagedBy})
	metadataOnly := cache.ByObject{Transform: transformReferenced()}
	child := cache.ByObject{Label: children, Transform: transformChild()}
	opts := cache.Options{
		// What the cached objects keep: see ragservice_cache.go.
		DefaultTransform: transformStripAll(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:                     child,
			&appsv1.StatefulSet{}:                    child,
			&corev1.Service{}:                        child,
			&corev1.PersistentVolumeClaim{}:          child,
			&networkingv1.NetworkPolicy{}:            child,
			&policyv1.PodDisruptionBudget{}:          child,
			&autoscalingv2.HorizontalPodAutoscaler{}: child,
			&batchv1.Job{}:                           {Label: children, Transform: transformJob()},
			// Only the ServiceMonitor CRD, metadata only: its presence
			// decides whether spec.monitoring can be honoured.
			crdMetadata(): {
				Field:     fields.OneTermEqualSelector("metadata.name", resources.ServiceMonitorCRDName),
				Transform: transformStripAll(),
			},
			&corev1.Secret{}:    metadataOnly,
			&corev1.ConfigMap{}: metadataOnly,
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// crdGVK is the kind of CustomResourceDefinitions, watched as metadata.
var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

func crdMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(crdGVK)
	return m
}

// ClientOptions makes typed reads of Secrets and ConfigMaps bypass the cache,
// so that no code path can start an informer holding their data.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{
		DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}},
	}}
}

// SetupWithManager registers the field indexes and the controller with its
// watches:
//
//   - RagServices, on generation, label and annotation changes (not on the
//     operator's own status writes);
//   - the owned children, on every change, since their status is the
//     RagService's status;
//   - the Chroma volumes by label, since a retained one has no owner;
//   - the indexing Jobs (owned), for their completion;
//   - Secrets and ConfigMaps (metadata only), mapped through the field
//     indexes to the RagServices that reference them (spec.secretRef,
//     auth.secretRef, documents.configMapRef and the sources' objects).
func (r *RagServiceReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &ragv1alpha1.RagService{}, IndexSecretRef, func(o client.Object) []string {
		spec := o.(*ragv1alpha1.RagService).Spec
		var names []string
		if ref := spec.SecretRef; ref != nil {
			names = append(names, ref.Name)
		}
		if ref := spec.Auth.SecretRef; ref != nil {
			names = append(names, ref.Name)
		}
		return append(names, resources.IndexSourceObjects(o.(*ragv1alpha1.RagService)).Secrets...)
	}); err != nil {
		return fmt.Errorf("index %s: %w", IndexSecretRef, err)
	}
	if err := indexer.IndexField(ctx, &ragv1alpha1.RagService{}, IndexConfigMapRef, func(o client.Object) []string {
		return resources.IndexSourceObjects(o.(*ragv1alpha1.RagService)).ConfigMaps
	}); err != nil {
		return fmt.Errorf("index %s: %w", IndexConfigMapRef, err)
	}

	return ctrl.NewControllerManagedBy(mgr).
		For(&ragv1alpha1.RagService{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.LabelChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
		))).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&batchv1.Job{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		WatchesMetadata(crdMetadata(), handler.EnqueueRequestsFromMapFunc(r.mapMonitoringCRD)).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.mapVolume)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.mapSecret)).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.mapReferrers(IndexConfigMapRef))).
		WithOptions(opts).
		Named("ragservice").
		Complete(r)
}

// mapReferrers maps a Secret or ConfigMap to the RagServices in its
// namespace that reference it through the given index.
func (r *RagServiceReconciler) mapReferrers(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &ragv1alpha1.RagServiceList{}
		if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing RagServices for a referenced object failed", "index", index, "name", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, rs := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}})
		}
		return reqs
	}
}

// mapSecret maps a Secret to the RagServices that reference it and to the
// RagService that owns it (the generated API token).
func (r *RagServiceReconciler) mapSecret(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.mapReferrers(IndexSecretRef)(ctx, o)
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "RagService" && ref.APIVersion == ragv1alpha1.GroupVersion.String() {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}})
	}
	return reqs
}

// mapVolume maps a Chroma volume to its RagService by the instance label;
// a retained volume has no owner reference to go by.
func (r *RagServiceReconciler) mapVolume(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[resources.LabelManagedBy] != resources.ManagedBy || l[resources.LabelComponent] != resources.ComponentVectorStore || l[resources.LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[resources.LabelInstance]}}}
}
