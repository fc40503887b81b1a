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
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// FieldOwner is the server-side apply field manager of every write the
// operator makes. It never changes, so that a new operator version takes over
// the fields of the previous one.
const FieldOwner = "ragops-operator"

// RagServiceReconciler reconciles a RagService into its children.
type RagServiceReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads Secrets and ConfigMaps uncached: the cache only holds
	// their metadata.
	APIReader client.Reader
	// Recorder emits events on the RagService.
	Recorder events.EventRecorder
	// RagServerImage is the server image used when spec.server.image is
	// empty.
	RagServerImage string
	// ClusterDomain is the cluster's DNS domain, for status.endpoint.
	ClusterDomain string
	// IndexBackoff is the retry policy of failed indexing Jobs; zero means
	// DefaultIndexBackoff.
	IndexBackoff IndexBackoff
}

// scope is what one reconcile pass knows about one RagService. Steps fill it
// in; the deferred status update reads it.
type scope struct {
	rs *ragv1alpha1.RagService
	// start is when the pass began.
	start time.Time

	// inputsHash is the hash of the API key.
	inputsHash string
	// collectionOwner is the identity the server stamps on its collection.
	collectionOwner string
	// orphanedPVC names a retained Chroma volume that an external vector
	// store left unused.
	orphanedPVC string
	// Live children as the pass last saw them (the apply answer, or the
	// cache); nil when absent.
	serverDeployment  *appsv1.Deployment
	serverService     *corev1.Service
	chromaStatefulSet *appsv1.StatefulSet
	pvc               *corev1.PersistentVolumeClaim
	hpa               *autoscalingv2.HorizontalPodAutoscaler
	// monitoring is the MonitoringReady condition; nil when monitoring is
	// disabled or the pass did not get to it.
	monitoring *condition
	// chromaMoving says what the move of Chroma from its former Deployment
	// to the StatefulSet waits for; empty when no move is under way.
	chromaMoving string
	// created lists the children this pass created, for one event.
	created []string

	// activeModel is the embedding model the server uses
	// (status.embedding.activeModel after the embedding step).
	activeModel string
	// embedding is the EmbeddingModelSwitched condition the pass found;
	// nil leaves it as it was.
	embedding *condition

	// indexed is the Indexed condition the pass found; nil leaves it as
	// it was (the pass stopped before the index step).
	indexed *condition
	// indexEvents are the indexing events of the pass.
	indexEvents []indexEvent
	// requeueAfter, when set, is when the pass wants to look again without
	// a watch event (the next schedule slot, the end of a back-off).
	requeueAfter time.Duration
}

// requeue asks for a pass after d at the latest.
func (s *scope) requeue(d time.Duration) {
	if d > 0 && (s.requeueAfter == 0 || d < s.requeueAfter) {
		s.requeueAfter = d
	}
}

// +kubebuilder:rbac:groups=rag.ragops.dev,resources=ragservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=rag.ragops.dev,resources=ragservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=rag.ragops.dev,resources=ragservices/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups="",resources=services;persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list

// Reconcile brings one RagService's children in line with its spec and
// reports what it observed. It is level-triggered: every pass reads the world
// again and trusts nothing it wrote earlier, and a pass with nothing to change
// writes nothing.
func (r *RagServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	rs := &ragv1alpha1.RagService{}
	if err := r.Client.Get(ctx, req.NamespacedName, rs); err != nil {
		if apierrors.IsNotFound(err) {
			forgetRagService(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rs.DeletionTimestamp.IsZero() {
		forgetRagService(req.NamespacedName)
		// No finalizer: owned children go by garbage collection and a
		// retained volume carries no owner reference.
		return ctrl.Result{}, nil
	}

	s := &scope{rs: rs, start: time.Now()}
	original := rs.DeepCopy()
	defer func() {
		r.updateConditions(ctx, s, retErr)
		result, retErr = classify(ctx, result, retErr)
		written, err := r.patchStatus(ctx, original, rs)
		switch {
		case apierrors.IsConflict(err):
			// This pass started from a RagService older than the stored one
			// (the cache had not seen the last status write yet). Its
			// observations may be stale too: look again shortly.
			log.FromContext(ctx).V(1).Info("Status changed during the pass, looking again")
			result, retErr = ctrl.Result{RequeueAfter: conflictRequeueAfter}, nil
		case err != nil:
			// A failed status write is transient whatever the pass found.
			result, retErr = ctrl.Result{}, err
		}
		r.emitEvents(original, s, written)
	}()

	for _, step := range []func(context.Context, *scope) error{
		r.reconcileSpec,
		r.reconcileVectorStore,
		r.reconcileInputs,
		r.reconcileAuth,
		r.reconcileEmbedding,
		r.reconcileServer,
		r.reconcileIndex,
		r.reconcileAutoscaling,
		r.reconcileMonitoring,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// classify turns a step error into what the workqueue should do with it.
func classify(ctx context.Context, result ctrl.Result, err error) (ctrl.Result, error) {
	if err == nil {
		return result, nil
	}
	if _, ok := asStall(err); ok {
		// Terminal: logged once per pass and counted apart from transient
		// errors; the next change of the spec wakes the RagService again.
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if w, ok := asWait(err); ok {
		log.FromContext(ctx).Info("Waiting for a prerequisite", "reason", w.reason, "message", w.message)
		after := waitRequeueAfter
		if w.after > 0 {
			after = w.after
		}
		return ctrl.Result{RequeueAfter: after}, nil
	}
	return ctrl.Result{}, err
}

// reconcileSpec checks what the CRD's validation cannot: rules written for
// objects stored before the CRD carried them, and nothing else. The
// comparison of the spec with the world (a retained volume) is made where the
// world is read.
func (r *RagServiceReconciler) reconcileSpec(_ context.Context, s *scope) error {
	spec := s.rs.Spec
	switch {
	case spec.SecretRef == nil && spec.BaseURL == "":
		return stall(ragv1alpha1.ReasonInvalidSpec, "secretRef is required unless baseURL points to a keyless OpenAI-compatible server")
	case spec.VectorStore.Chroma != nil && spec.VectorStore.External != nil:
		return stall(ragv1alpha1.ReasonInvalidSpec, "exactly one of vectorStore.chroma and vectorStore.external must be set")
	case spec.Server.Image == "" && r.RagServerImage == "":
		return stall(ragv1alpha1.ReasonInvalidSpec, "server.image is empty and the operator has no default ragserver image")
	}
	if d := spec.Documents; d != nil && d.Schedule != "" {
		if _, err := ParseSchedule(d.Schedule); err != nil {
			return stall(ragv1alpha1.ReasonInvalidSpec, "%v", err)
		}
	}
	// The server refuses what the contract does not allow; objects stored
	// before the CRD carried these bounds must stall here, not crash-loop.
	topK, chunkSize, chunkOverlap := resources.Retrieval(s.rs)
	switch {
	case topK < contract.MinTopK || topK > contract.MaxTopK:
		return stall(ragv1alpha1.ReasonInvalidSpec, "retrieval.topK %d must be from %d to %d", topK, contract.MinTopK, contract.MaxTopK)
	case chunkSize < contract.MinChunkSize || chunkSize > contract.MaxChunkSize:
		return stall(ragv1alpha1.ReasonInvalidSpec, "retrieval.chunkSize %d must be from %d to %d", chunkSize, contract.MinChunkSize, contract.MaxChunkSize)
	case chunkOverlap < contract.MinChunkOverlap || chunkOverlap >= chunkSize:
		return stall(ragv1alpha1.ReasonInvalidSpec, "retrieval.chunkOverlap must be less than retrieval.chunkSize")
	}
	return nil
}

// reconcileVectorStore runs Chroma (volume, StatefulSet, Service,
// NetworkPolicy), or removes it when the RagService uses an external store.
func (r *RagServiceReconciler) reconcileVectorStore(ctx context.Context, s *scope) error {
	rs := s.rs
	if !resources.ManagesChroma(rs) {
		return r.removeChroma(ctx, s)
	}

	owner, err := r.checkRetainedVolume(ctx, s)
	if err != nil {
		return err
	}
	s.collectionOwner = owner
	pvc, err := applyChild(ctx, r, s, resources.ChromaPVC(rs, owner), newPVC, extractPVC)
	if err != nil {
		return fmt.Errorf("apply PersistentVolumeClaim: %w", err)
	}
	s.pvc = pvc

	moving, err := r.moveChromaOffDeployment(ctx, s)
	if err != nil {
		return err
	}
	if moving == "" {
		sts, err := applyChild(ctx, r, s, resources.ChromaStatefulSet(rs), newStatefulSet, extractStatefulSet)
		if err != nil {
			return fmt.Errorf("apply Chroma StatefulSet: %w", err)
		}
		s.chromaStatefulSet = sts
	} else {
		s.chromaMoving = moving
		s.requeue(chromaMoveRequeueAfter)
	}
	if _, err := applyChild(ctx, r, s, resources.ChromaService(rs), newService, extractService); err != nil {
		return fmt.Errorf("apply Chroma Service: %w", err)
	}
	if _, err := applyChild(ctx, r, s, resources.ChromaNetworkPolicy(rs), newNetworkPolicy, extractNetworkPolicy); err != nil {
		return fmt.Errorf("apply Chroma NetworkPolicy: %w", err)
	}
	return nil
}

// chromaMoveRequeueAfter is how often a move of Chroma to its StatefulSet
// looks whether the old pod is gone (pods are not watched).
const chromaMoveRequeueAfter = 2 * time.Second

// moveChromaOffDeployment moves a RagService whose Chroma ran as a
// Deployment (operator versions before the StatefulSet) to the StatefulSet,
// on the same volume. It returns what the move still waits for, or "" when
// the StatefulSet may be applied.
//
// At most one Chroma process may use the volume at any instant, so the
// StatefulSet is created only once no pod of the former Deployment exists
// any more: the Deployment is deleted in the foreground (the garbage
// collector removes its ReplicaSet and pods first, and a pod object goes
// only once the kubelet has stopped its containers), and then the
// RagService's Chroma pods are listed, uncached, until none is left that
// the StatefulSet does not control (a Deployment deleted with its pods
// orphaned, a pod still terminating).
//
// A crash at any instant leaves a state the next pass completes: before the
// delete, the Deployment still runs Chroma; after it, the Deployment is being
// deleted or gone and no StatefulSet exists; the StatefulSet is created only
// by a pass that saw no other Chroma pod. The volume is never touched. Chroma
// is down from the old pod's stop to the new pod's start.
//
// Once the StatefulSet exists (the steady state), nothing is read.
func (r *RagServiceReconciler) moveChromaOffDeployment(ctx context.Context, s *scope) (string, error) {
	rs := s.rs
	key := types.NamespacedName{Namespace: rs.Namespace, Name: resources.ChromaName(rs)}
	switch err := r.Client.Get(ctx, key, &appsv1.StatefulSet{}); {
	case err == nil:
		return "", nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("get Chroma StatefulSet: %w", err)
	}

	old := &appsv1.Deployment{}
	switch err := r.Client.Get(ctx, key, old); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", fmt.Errorf("get Chroma Deployment: %w", err)
	case !ours(old, rs):
		// Someone else's Deployment of that name (the server of a
		// RagService named "<name>-chroma"): not Chroma's concern.
	case old.DeletionTimestamp.IsZero():
		uid := old.UID
		if err := r.Client.Delete(ctx, old, client.Preconditions{UID: &uid},
			client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
			return "", fmt.Errorf("delete the former Chroma Deployment %s: %w", key.Name, err)
		}
		log.FromContext(ctx).Info("Moving Chroma to a StatefulSet: deleted the former Deployment", "name", key.Name)
		r.Recorder.Eventf(rs, old, corev1.EventTypeNormal, "MovingChroma", "DeleteDeployment",
			"Moving Chroma to a StatefulSet on the same volume: deleted Deployment %s; the StatefulSet starts once its pod is gone", key.Name)
		return fmt.Sprintf("moving Chroma to a StatefulSet: waiting for the former Deployment %s and its pod to be deleted", key.Name), nil
	default:
		return fmt.Sprintf("moving Chroma to a StatefulSet: waiting for the former Deployment %s and its pod to be deleted", key.Name), nil
	}

	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(rs.Namespace),
		client.MatchingLabels(resources.SelectorLabels(rs, resources.ComponentVectorStore))); err != nil {
		return "", fmt.Errorf("list Chroma pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "StatefulSet" && ref.Name == key.Name {
			continue
		}
		return fmt.Sprintf("moving Chroma to a StatefulSet: waiting for pod %s, which may still use the volume, to be deleted", p.Name), nil
	}
	return "", nil
}

// checkRetainedVolume compares the spec with a volume that already exists,
// typically one retained from an earlier RagService of the same name: a
// volume cannot shrink and its class cannot change, so such a spec stalls
// with a clear message instead of failing every apply.
//
// It returns the collection owner recorded on the volume (the UID of the
// RagService that created it), or this RagService's UID for a new volume or
// one created before owners were recorded.
func (r *RagServiceReconciler) checkRetainedVolume(ctx context.Context, s *scope) (string, error) {
	rs := s.rs
	live := &corev1.PersistentVolumeClaim{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: resources.PVCName(rs)}, live)
	if apierrors.IsNotFound(err) {
		return string(rs.UID), nil
	}
	if err != nil {
		return "", fmt.Errorf("get PersistentVolumeClaim: %w", err)
	}
	owner := live.Annotations[resources.CollectionOwnerAnnotation]
	if owner == "" || !ours(live, rs) {
		// A foreign volume is refused by applyChild.
		owner = string(rs.UID)
	}
	storage := rs.Spec.VectorStore.Chroma.Storage
	want := resource.MustParse(ragv1alpha1.DefaultStorageSize)
	if storage.Size != nil {
		want = *storage.Size
	}
	if have, ok := live.Spec.Resources.Requests[corev1.ResourceStorage]; ok && want.Cmp(have) < 0 {
		return "", stall(ragv1alpha1.ReasonInvalidSpec,
			"vectorStore.chroma.storage.size %s is smaller than the existing volume %s (%s); volumes cannot shrink",
			want.String(), live.Name, have.String())
	}
	if cls := storage.StorageClassName; cls != nil && live.Spec.StorageClassName != nil && *cls != *live.Spec.StorageClassName {
		return "", stall(ragv1alpha1.ReasonInvalidSpec,
			"vectorStore.chroma.storage.storageClassName %q differs from the existing volume %s (%q); the class of a volume cannot change",
			*cls, live.Name, *live.Spec.StorageClassName)
	}
	return owner, nil
}

// removeChroma deletes the Chroma children of a RagService that switched to
// an external store. The volume goes only with the Delete retention policy
// (that is, when the RagService owns it); a retained one still holds every
// document of the old store, which the status and an event say.
func (r *RagServiceReconciler) removeChroma(ctx context.Context, s *scope) error {
	rs := s.rs
	s.collectionOwner = string(rs.UID)
	key := types.NamespacedName{Namespace: rs.Namespace, Name: resources.ChromaName(rs)}
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &appsv1.Deployment{}, &corev1.Service{}, &networkingv1.NetworkPolicy{}} {
		if err := r.deleteOwned(ctx, s, key, obj); err != nil {
			return err
		}
	}
	pvcKey := types.NamespacedName{Namespace: rs.Namespace, Name: resources.PVCName(rs)}
	if err := r.deleteOwned(ctx, s, pvcKey, &corev1.PersistentVolumeClaim{}); err != nil {
		return err
	}
	pvc := &corev1.PersistentVolumeClaim{}
	switch err := r.Client.Get(ctx, pvcKey, pvc); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get PersistentVolumeClaim: %w", err)
	case pvc.DeletionTimestamp.IsZero() && ours(pvc, rs):
		s.orphanedPVC = pvc.Name
	}
	return nil
}

// reconcileInputs reads the API key Secret and the API token Secret
// (uncached) and hashes the key for the pod template. A missing one is a
// wait. The key does not leave this function; only its hash. The documents
// are the indexing Job's (reconcileIndex): the server does not wait for them.
func (r *RagServiceReconciler) reconcileInputs(ctx context.Context, s *scope) error {
	rs := s.rs
	var apiKey []byte
	if ref := rs.Spec.SecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = ragv1alpha1.DefaultSecretKey
		}
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: ref.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return wait(ragv1alpha1.ReasonSecretNotFound, "Secret %q not found", ref.Name)
			}
			return fmt.Errorf("get Secret %q: %w", ref.Name, err)
		}
		value, err := secretValue(secret, key)
		if err != nil {
			return err
		}
		apiKey = value
	}
	if ref := rs.Spec.Auth.SecretRef; ref != nil && resources.AuthMode(rs) == ragv1alpha1.AuthToken {
		name, key, _ := resources.APITokenRef(rs)
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return wait(ragv1alpha1.ReasonSecretNotFound, "API token Secret %q not found", name)
			}
			return fmt.Errorf("get Secret %q: %w", name, err)
		}
		if _, err := secretValue(secret, key); err != nil {
			return err
		}
	}

	s.inputsHash = resources.InputsHash(apiKey)
	return nil
}

// secretValue returns a key of a Secret; a missing or blank one (the server
// trims whitespace and would refuse to start) is a wait.
func secretValue(secret *corev1.Secret, key string) ([]byte, error) {
	value, ok := secret.Data[key]
	if !ok {
		return nil, wait(ragv1alpha1.ReasonSecretKeyMissing, "Secret %q has no key %q", secret.Name, key)
	}
	if strings.TrimSpace(string(value)) == "" {
		return nil, wait(ragv1alpha1.ReasonSecretKeyEmpty, "Secret %q: key %q holds only whitespace", secret.Name, key)
	}
	return value, nil
}

// reconcileAuth keeps the generated API token Secret: created once with a
// random token, never rotated by a pass (the stored token is applied again),
// and deleted when auth is disabled or uses the user's Secret.
func (r *RagServiceReconciler) reconcileAuth(ctx context.Context, s *scope) error {
	rs := s.rs
	key := types.NamespacedName{Namespace: rs.Namespace, Name: resources.APITokenSecretName(rs)}
	if !resources.GeneratesAPIToken(rs) {
		return r.deleteOwned(ctx, s, key, &corev1.Secret{})
	}
	token := ""
	live := &corev1.Secret{}
	switch err := r.APIReader.Get(ctx, key, live); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get Secret %q: %w", key.Name, err)
	case ours(live, rs):
		token = string(live.Data[ragv1alpha1.DefaultTokenKey])
	}
	if strings.TrimSpace(token) == "" {
		var err error
		if token, err = newAPIToken(); err != nil {
			return err
		}
	}
	if _, err := applyChild(ctx, r, s, resources.APITokenSecret(rs, token), newSecret, extractSecret); err != nil {
		return fmt.Errorf("apply API token Secret: %w", err)
	}
	return nil
}

// newAPIToken returns 32 random bytes, hex-encoded.
func newAPIToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate API token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// reconcileServer applies the server Deployment, its Service and, with more
// than one replica, its PodDisruptionBudget.
func (r *RagServiceReconciler) reconcileServer(ctx context.Context, s *scope) error {
	rs := s.rs
	image := rs.Spec.Server.Image
	if image == "" {
		image = r.RagServerImage
	}
	desired := resources.ServerDeployment(rs, resources.ServerInputs{Image: image, InputsHash: s.inputsHash, CollectionOwner: s.collectionOwner, EmbeddingModel: s.activeModel})

	before := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}, before)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get server Deployment: %w", err)
	}
	d, err := applyChild(ctx, r, s, desired, newDeployment, extractDeployment)
	if err != nil {
		return fmt.Errorf("apply server Deployment: %w", err)
	}
	s.serverDeployment = d
	if old := before.Spec.Template.Annotations[resources.InputsHashAnnotation]; old != "" && old != s.inputsHash {
		r.Recorder.Eventf(rs, nil, corev1.EventTypeNormal, "Rolled", "RollPods",
			"Referenced Secret changed: rolling the server pods")
	}

	svc, err := applyChild(ctx, r, s, resources.ServerService(rs), newService, extractService)
	if err != nil {
		return fmt.Errorf("apply server Service: %w", err)
	}
	s.serverService = svc
	if _, err := applyChild(ctx, r, s, resources.ServerNetworkPolicy(rs), newNetworkPolicy, extractNetworkPolicy); err != nil {
		return fmt.Errorf("apply server NetworkPolicy: %w", err)
	}

	if resources.NeedsPDB(rs) {
		if _, err := applyChild(ctx, r, s, resources.ServerPDB(rs), newPDB, extractPDB); err != nil {
			return fmt.Errorf("apply PodDisruptionBudget: %w", err)
		}
		return nil
	}
	return r.deleteOwned(ctx, s, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}, &policyv1.PodDisruptionBudget{})
}
