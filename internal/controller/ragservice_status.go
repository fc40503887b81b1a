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
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// condition is the outcome of one condition type in one pass.
type condition struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

func isTrue(reason, message string) condition {
	return condition{metav1.ConditionTrue, reason, message}
}

func isFalse(reason, message string) condition {
	return condition{metav1.ConditionFalse, reason, message}
}

// updateConditions computes the whole status from what the pass found and
// from the live children, whatever step the pass stopped at, so that no
// condition is left over from an earlier pass. err is the step error.
func (r *RagServiceReconciler) updateConditions(ctx context.Context, s *scope, err error) {
	rs := s.rs
	r.observeChildren(ctx, s)

	vectorStore := vectorStoreCondition(rs, s.chromaStatefulSet, s.pvc, s.orphanedPVC, s.chromaMoving)
	server := serverCondition(rs, s.serverDeployment, err)

	var ready condition
	stalled, isStall := asStall(err)
	_, isWait := asWait(err)
	switch {
	case isStall:
		ready = isFalse(stalled.reason, stalled.message)
	case isWait:
		ready = isFalse(server.reason, server.message)
	case err != nil:
		ready = isFalse(ragv1alpha1.ReasonReconcileError, "Reconcile failed, retrying: "+err.Error())
	case vectorStore.status != metav1.ConditionTrue:
		ready = isFalse(vectorStore.reason, "Vector store: "+vectorStore.message)
	case server.status != metav1.ConditionTrue:
		ready = isFalse(server.reason, "Server: "+server.message)
	default:
		ready = isTrue(ragv1alpha1.ReasonAvailable, "RAG server is available at "+resources.Endpoint(rs, r.ClusterDomain))
	}

	conditions := map[string]condition{
		ragv1alpha1.ConditionVectorStoreReady: vectorStore,
		ragv1alpha1.ConditionServerAvailable:  server,
		ragv1alpha1.ConditionReady:            ready,
	}
	// Indexed does not gate Ready: the server answers from the last
	// complete index while a sync runs or fails.
	if s.indexed != nil {
		conditions[ragv1alpha1.ConditionIndexed] = *s.indexed
	} else if c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionIndexed); c != nil {
		conditions[ragv1alpha1.ConditionIndexed] = condition{c.Status, c.Reason, c.Message}
	}
	// So does EmbeddingModelSwitched: the server answers from the complete
	// previous collection during a switch.
	if s.embedding != nil {
		conditions[ragv1alpha1.ConditionEmbeddingModelSwitched] = *s.embedding
	} else if c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionEmbeddingModelSwitched); c != nil {
		conditions[ragv1alpha1.ConditionEmbeddingModelSwitched] = condition{c.Status, c.Reason, c.Message}
	}
	for t, c := range conditions {
		meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{
			Type:               t,
			Status:             c.status,
			Reason:             c.reason,
			Message:            c.message,
			ObservedGeneration: rs.Generation,
		})
	}

	if s.monitoring != nil {
		meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{
			Type:               ragv1alpha1.ConditionMonitoringReady,
			Status:             s.monitoring.status,
			Reason:             s.monitoring.reason,
			Message:            s.monitoring.message,
			ObservedGeneration: rs.Generation,
		})
	} else if !resources.MonitoringEnabled(rs) {
		meta.RemoveStatusCondition(&rs.Status.Conditions, ragv1alpha1.ConditionMonitoringReady)
	}
	readyValue := 0.0
	if ready.status == metav1.ConditionTrue {
		readyValue = 1
	}
	readyGauge.WithLabelValues(rs.Namespace, rs.Name).Set(readyValue)
	if err != nil && (rs.Status.LastError == nil || rs.Status.LastError.Message != ready.message) {
		rs.Status.LastError = &ragv1alpha1.LastError{Message: ready.message, Time: metav1.NewTime(s.start.Truncate(time.Second))}
	}
	rs.Status.Autoscaling = autoscalingStatus(rs, s.hpa)

	rs.Status.Selector = resources.ServerSelector(rs)
	rs.Status.Replicas, rs.Status.ReadyReplicas = 0, 0
	if d := s.serverDeployment; d != nil {
		rs.Status.Replicas = d.Status.Replicas
		rs.Status.ReadyReplicas = d.Status.ReadyReplicas
	}
	rs.Status.Endpoint = ""
	if s.serverService != nil {
		rs.Status.Endpoint = resources.Endpoint(rs, r.ClusterDomain)
	}
	if err == nil {
		rs.Status.ObservedGeneration = rs.Generation
	}
}

// observeChildren fills in, from the cache, the children the pass did not
// get to. A failed read leaves the child unknown (nil).
func (r *RagServiceReconciler) observeChildren(ctx context.Context, s *scope) {
	rs := s.rs
	get := func(name string, obj client.Object) bool {
		return r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, obj) == nil
	}
	if s.serverDeployment == nil {
		if d := (&appsv1.Deployment{}); get(rs.Name, d) {
			s.serverDeployment = d
		}
	}
	if s.serverService == nil {
		if svc := (&corev1.Service{}); get(rs.Name, svc) {
			s.serverService = svc
		}
	}
	if s.hpa == nil && resources.Autoscaled(rs) {
		if hpa := (&autoscalingv2.HorizontalPodAutoscaler{}); get(resources.HPAName(rs), hpa) {
			s.hpa = hpa
		}
	}
	if !resources.ManagesChroma(rs) {
		return
	}
	if s.chromaStatefulSet == nil && s.chromaMoving == "" {
		if sts := (&appsv1.StatefulSet{}); get(resources.ChromaName(rs), sts) {
			s.chromaStatefulSet = sts
		}
	}
	if s.pvc == nil {
		if pvc := (&corev1.PersistentVolumeClaim{}); get(resources.PVCName(rs), pvc) {
			s.pvc = pvc
		}
	}
}

func vectorStoreCondition(rs *ragv1alpha1.RagService, sts *appsv1.StatefulSet, pvc *corev1.PersistentVolumeClaim, orphanedPVC, moving string) condition {
	switch {
	case !resources.ManagesChroma(rs) && orphanedPVC != "":
		return isTrue(ragv1alpha1.ReasonRetainedVolumeOrphaned, fmt.Sprintf(
			"Using the external vector store at %s; PersistentVolumeClaim %s/%s of the former Chroma is retained and still holds its documents, unused: switch back to vectorStore.chroma to use them, or delete it",
			rs.Spec.VectorStore.External.URL, rs.Namespace, orphanedPVC))
	case !resources.ManagesChroma(rs):
		return isTrue(ragv1alpha1.ReasonExternal, "Using the external vector store at "+rs.Spec.VectorStore.External.URL)
	case moving != "":
		return isFalse(ragv1alpha1.ReasonProgressing, strings.ToUpper(moving[:1])+moving[1:])
	case sts != nil && statefulSetReady(sts):
		return isTrue(ragv1alpha1.ReasonAvailable, "Chroma is ready")
	case pvc != nil && pvc.Status.Phase == corev1.ClaimPending:
		return isFalse(ragv1alpha1.ReasonPVCPending, fmt.Sprintf("PersistentVolumeClaim %s is not bound yet", pvc.Name))
	case sts == nil:
		return isFalse(ragv1alpha1.ReasonProgressing, "Chroma StatefulSet is not created yet")
	default:
		return isFalse(ragv1alpha1.ReasonProgressing, fmt.Sprintf("Chroma StatefulSet has %d/1 ready replicas", sts.Status.ReadyReplicas))
	}
}

// statefulSetReady reports whether the Chroma StatefulSet has rolled out its
// current spec to its one replica, and that replica is available.
func statefulSetReady(sts *appsv1.StatefulSet) bool {
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		return false
	}
	st := sts.Status
	return st.ObservedGeneration >= sts.Generation &&
		st.UpdatedReplicas >= 1 &&
		st.ReadyReplicas >= 1 &&
		st.AvailableReplicas >= 1
}

func serverCondition(rs *ragv1alpha1.RagService, d *appsv1.Deployment, err error) condition {
	if w, ok := asWait(err); ok {
		return isFalse(w.reason, w.message)
	}
	desired := resources.Replicas(rs)
	switch {
	case d == nil:
		return isFalse(ragv1alpha1.ReasonProgressing, "Server Deployment is not created yet")
	case !deploymentReady(d, desired):
		return isFalse(ragv1alpha1.ReasonProgressing,
			fmt.Sprintf("Server Deployment has %d/%d updated ready replicas", min(d.Status.ReadyReplicas, d.Status.UpdatedReplicas), desired))
	case desired == 0:
		return isTrue(ragv1alpha1.ReasonScaledToZero, "Server is scaled to zero replicas")
	default:
		return isTrue(ragv1alpha1.ReasonAvailable, fmt.Sprintf("%d/%d replicas ready", d.Status.ReadyReplicas, desired))
	}
}

// deploymentReady reports whether a Deployment has rolled out its current
// spec with at least desired ready and available replicas.
func deploymentReady(d *appsv1.Deployment, desired int32) bool {
	if d.Spec.Replicas == nil || *d.Spec.Replicas != desired {
		return false
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation &&
		st.UpdatedReplicas >= desired &&
		st.ReadyReplicas >= desired &&
		st.AvailableReplicas >= desired
}

// patchStatus writes the status only when it changed, so that a pass with
// nothing new writes nothing (and the operator's own writes do not wake it).
// The patch is conditional on the resourceVersion the pass started from, so
// that a pass working from a stale cache never overwrites a newer status.
// It reports whether it wrote.
func (r *RagServiceReconciler) patchStatus(ctx context.Context, original, rs *ragv1alpha1.RagService) (bool, error) {
	if equality.Semantic.DeepEqual(original.Status, rs.Status) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, rs, patch, client.FieldOwner(FieldOwner)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("patch status: %w", err)
	}
	return true, nil
}

// emitEvents tells the user what changed in this pass: children created, a
// prerequisite gone missing, an invalid spec, the service becoming ready.
// Only transitions of the stored status emit events (statusWritten), so a
// waiting RagService does not repeat them on every pass.
func (r *RagServiceReconciler) emitEvents(original *ragv1alpha1.RagService, s *scope, statusWritten bool) {
	rs := s.rs
	if len(s.created) > 0 {
		r.Recorder.Eventf(rs, nil, corev1.EventTypeNormal, "Created", "Create", "Created %s", strings.Join(s.created, ", "))
	}
	// Starting and superseding a Job are events whatever the status write
	// did; an outcome is an event once the status records it.
	for _, e := range s.indexEvents {
		if e.always {
			r.Recorder.Eventf(rs, nil, corev1.EventTypeNormal, e.reason, e.action, "%s", e.message)
		}
	}
	if !statusWritten {
		return
	}
	changed := func(t string) (*metav1.Condition, bool) {
		now := meta.FindStatusCondition(rs.Status.Conditions, t)
		before := meta.FindStatusCondition(original.Status.Conditions, t)
		return now, now != nil && (before == nil || before.Reason != now.Reason || before.Status != now.Status)
	}
	if c, ok := changed(ragv1alpha1.ConditionServerAvailable); ok {
		switch c.Reason {
		case ragv1alpha1.ReasonSecretNotFound, ragv1alpha1.ReasonSecretKeyMissing, ragv1alpha1.ReasonSecretKeyEmpty,
			ragv1alpha1.ReasonChildConflict:
			r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, c.Reason, "WaitForInput", "%s", c.Message)
		}
	}
	if c, ok := changed(ragv1alpha1.ConditionIndexed); ok {
		switch c.Reason {
		case ragv1alpha1.ReasonSecretNotFound, ragv1alpha1.ReasonConfigMapNotFound, ragv1alpha1.ReasonPVCNotFound:
			r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, c.Reason, "WaitForInput", "%s", c.Message)
		}
	}
	for _, e := range s.indexEvents {
		if e.always {
			continue
		}
		typ := corev1.EventTypeNormal
		if e.warning {
			typ = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(rs, nil, typ, e.reason, e.action, "%s", e.message)
	}
	if c, ok := changed(ragv1alpha1.ConditionVectorStoreReady); ok && c.Reason == ragv1alpha1.ReasonRetainedVolumeOrphaned {
		r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, c.Reason, "SwitchVectorStore", "%s", c.Message)
	}
	if c, ok := changed(ragv1alpha1.ConditionReady); ok {
		switch {
		case c.Reason == ragv1alpha1.ReasonInvalidSpec:
			r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, c.Reason, "Validate", "%s", c.Message)
		case c.Status == metav1.ConditionTrue:
			r.Recorder.Eventf(rs, nil, corev1.EventTypeNormal, "Ready", "Reconcile", "%s", c.Message)
		}
	}
}
