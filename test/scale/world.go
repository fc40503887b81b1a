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

package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ragv1alpha1.AddToScheme(scheme))
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// ragService is the benchmark's RagService: the operator's Chroma, two
// replicas (so a PodDisruptionBudget too), the namespace's Secret.
func ragService(ns, name string) *ragv1alpha1.RagService {
	return &ragv1alpha1.RagService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ragv1alpha1.RagServiceSpec{
			Model:          "gpt-4o-mini",
			EmbeddingModel: "text-embedding-3-small",
			Replicas:       ptr.To[int32](2),
			SecretRef:      &ragv1alpha1.SecretKeyReference{Name: "openai"},
		},
	}
}

// converged reports whether a RagService is Ready for its generation.
func converged(rs *ragv1alpha1.RagService) bool {
	c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == rs.Generation &&
		rs.Status.ObservedGeneration == rs.Generation
}

// world is the benchmark's view of the cluster: an informer cache of
// RagServices (to time convergence), Deployments and StatefulSets (to play
// their controllers), and an uncached client.
type world struct {
	c     client.Client
	cache cache.Cache

	mu sync.Mutex
	// target maps each tracked RagService to the generation it must reach
	// and when it was asked to; done records when it got there.
	target map[types.NamespacedName]int64
	since  map[types.NamespacedName]time.Time
	done   map[types.NamespacedName]time.Time

	queue workqueue.TypedRateLimitingInterface[workloadKey]
}

// workloadKey names a Deployment or a StatefulSet to mark available.
type workloadKey struct {
	statefulSet bool
	types.NamespacedName
}

func newWorld(ctx context.Context, cfg *rest.Config) (*world, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	w := &world{
		c: c, cache: ca,
		target: map[types.NamespacedName]int64{},
		since:  map[types.NamespacedName]time.Time{},
		done:   map[types.NamespacedName]time.Time{},
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[workloadKey]()),
	}
	rsInformer, err := ca.GetInformer(ctx, &ragv1alpha1.RagService{})
	if err != nil {
		return nil, err
	}
	observe := func(obj any) {
		if rs, ok := obj.(*ragv1alpha1.RagService); ok {
			w.observe(rs)
		}
	}
	if _, err := rsInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		return nil, err
	}
	dInformer, err := ca.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return nil, err
	}
	enqueue := func(obj any) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if !deploymentAvailable(o) {
				w.queue.Add(workloadKey{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
			}
		case *appsv1.StatefulSet:
			if !statefulSetAvailable(o) {
				w.queue.Add(workloadKey{statefulSet: true, NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
			}
		}
	}
	if _, err := dInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	stsInformer, err := ca.GetInformer(ctx, &appsv1.StatefulSet{})
	if err != nil {
		return nil, err
	}
	if _, err := stsInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("benchmark cache did not sync")
	}
	for range 8 {
		go w.playDeployments(ctx)
	}
	go func() {
		<-ctx.Done()
		w.queue.ShutDown()
	}()
	return w, nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	n := ptr.Deref(d.Spec.Replicas, 1)
	st := d.Status
	return st.ObservedGeneration == d.Generation && st.ReadyReplicas == n && st.AvailableReplicas == n && st.UpdatedReplicas == n
}

func statefulSetAvailable(s *appsv1.StatefulSet) bool {
	n := ptr.Deref(s.Spec.Replicas, 1)
	st := s.Status
	return st.ObservedGeneration == s.Generation && st.ReadyReplicas == n && st.AvailableReplicas == n && st.UpdatedReplicas == n
}

// playDeployments is the Deployment and StatefulSet controller (envtest runs
// none): every current generation is rolled out and available at once.
func (w *world) playDeployments(ctx context.Context) {
	for {
		key, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		err := w.markAvailable(ctx, key)
		if err != nil && ctx.Err() == nil {
			w.queue.AddRateLimited(key)
		} else {
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
}

func (w *world) markAvailable(ctx context.Context, key workloadKey) error {
	if key.statefulSet {
		s := &appsv1.StatefulSet{}
		if err := w.c.Get(ctx, key.NamespacedName, s); err != nil {
			return client.IgnoreNotFound(err)
		}
		if statefulSetAvailable(s) {
			return nil
		}
		n := ptr.Deref(s.Spec.Replicas, 1)
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, CurrentReplicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		if err := w.c.Status().Update(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	}
	d := &appsv1.Deployment{}
	if err := w.c.Get(ctx, key.NamespacedName, d); err != nil {
		return client.IgnoreNotFound(err)
	}
	if deploymentAvailable(d) {
		return nil
	}
	n := ptr.Deref(d.Spec.Replicas, 1)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	if err := w.c.Status().Update(ctx, d); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// track starts timing a RagService towards generation gen from now.
func (w *world) track(key types.NamespacedName, gen int64, since time.Time) {
	w.mu.Lock()
	w.target[key], w.since[key] = gen, since
	delete(w.done, key)
	w.mu.Unlock()
	rs := &ragv1alpha1.RagService{}
	if err := w.cache.Get(context.Background(), key, rs); err == nil {
		w.observe(rs)
	}
}

func (w *world) observe(rs *ragv1alpha1.RagService) {
	key := types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	gen, ok := w.target[key]
	if !ok || rs.Generation < gen || !converged(rs) {
		return
	}
	if _, seen := w.done[key]; !seen {
		w.done[key] = time.Now()
	}
}

// waitConverged waits until every key reached its target, and returns the
// time of the last one and each object's latency.
func (w *world) waitConverged(ctx context.Context, keys []types.NamespacedName, timeout time.Duration, progress func(done int)) (time.Time, []time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		var last time.Time
		latencies := make([]time.Duration, 0, len(keys))
		for _, k := range keys {
			if at, ok := w.done[k]; ok {
				latencies = append(latencies, at.Sub(w.since[k]))
				if at.After(last) {
					last = at
				}
			}
		}
		w.mu.Unlock()
		if progress != nil {
			progress(len(latencies))
		}
		if len(latencies) == len(keys) {
			sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
			return last, latencies, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil, fmt.Errorf("%d/%d RagServices converged after %s", len(latencies), len(keys), timeout)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return time.Time{}, nil, err
		}
	}
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// countDone returns how many of keys reached their target.
func (w *world) countDone(keys []types.NamespacedName) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := w.done[k]; ok {
			n++
		}
	}
	return n
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// childCounts lists the operator's children in namespaces and counts them
// per RagService (instance label) and kind.
func (w *world) childCounts(ctx context.Context, namespaces []string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	lists := map[string]client.ObjectList{
		"deployments":            &appsv1.DeploymentList{},
		"statefulsets":           &appsv1.StatefulSetList{},
		"services":               &corev1.ServiceList{},
		"persistentvolumeclaims": &corev1.PersistentVolumeClaimList{},
		"networkpolicies":        &networkingv1.NetworkPolicyList{},
		"poddisruptionbudgets":   &policyv1.PodDisruptionBudgetList{},
	}
	for _, ns := range namespaces {
		for kind, list := range lists {
			if err := w.c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/managed-by": "ragops-operator"}); err != nil {
				return nil, err
			}
			items, err := meta.ExtractList(list)
			if err != nil {
				return nil, err
			}
			for _, item := range items {
				o := item.(client.Object)
				key := ns + "/" + o.GetLabels()["app.kubernetes.io/instance"]
				if out[key] == nil {
					out[key] = map[string]int{}
				}
				out[key][kind]++
			}
		}
	}
	return out, nil
}
