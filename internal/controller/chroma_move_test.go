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
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// consistently checks cond every 200 ms for d; any failure fails the test.
func consistently(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// noStatefulSet fails while the Chroma StatefulSet exists.
func noStatefulSet(ns, name string) func() error {
	return func() error {
		err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &appsv1.StatefulSet{})
		if err == nil {
			return fmt.Errorf("StatefulSet %s exists while a pod of the former Deployment may still use the volume", name)
		}
		return client.IgnoreNotFound(err)
	}
}

// legacyChroma creates what an operator before the StatefulSet left for a
// RagService: the retained volume, the Chroma Deployment (Recreate) and its
// running pod, all labelled as its children and controlled by an earlier
// RagService of the same name. It returns the volume and the pod.
func legacyChroma(t *testing.T, rs *ragv1alpha1.RagService) (*corev1.PersistentVolumeClaim, *corev1.Pod) {
	t.Helper()
	ns, name := rs.Namespace, resources.ChromaName(rs)
	owner := metav1.OwnerReference{
		APIVersion: ragv1alpha1.GroupVersion.String(), Kind: "RagService", Name: rs.Name,
		UID: "00000000-0000-0000-0000-000000000001", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: resources.PVCName(rs), Labels: resources.Labels(rs, resources.ComponentVectorStore),
			Annotations: map[string]string{resources.CollectionOwnerAnnotation: string(owner.UID)},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(ragv1alpha1.DefaultStorageSize)},
			},
		},
	}
	create(t, pvc)

	// The former Deployment ran the same pod as the StatefulSet does now.
	var template corev1.PodTemplateSpec
	raw, err := json.Marshal(resources.ChromaStatefulSet(rs).Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &template); err != nil {
		t.Fatal(err)
	}
	create(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, Labels: resources.Labels(rs, resources.ComponentVectorStore),
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: resources.SelectorLabels(rs, resources.ComponentVectorStore)},
			Template: template,
		},
	})
	// Its pod, scheduled on a node: deleting it leaves it terminating
	// until the kubelet (absent here; the test plays it) confirms.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name + "-5d8f7c9b4-x2x7q", Labels: template.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-5d8f7c9b4",
				UID: "00000000-0000-0000-0000-000000000002", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: template.Spec,
	}
	pod.Spec.NodeName = "node-1"
	create(t, pod)
	return pvc, pod
}

// TestChromaMovesFromDeploymentToStatefulSet: a RagService whose Chroma ran
// as a Deployment gets a StatefulSet on the same volume, and the StatefulSet
// (whose pod would mount the volume) is created only once the old pod is
// gone: first the Deployment is deleted in the foreground, then the move
// waits for every pod of the former Deployment, including one left behind.
func TestChromaMovesFromDeploymentToStatefulSet(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "legacy")
	oldPVC, oldPod := legacyChroma(t, rs)
	create(t, rs)
	ctx := context.Background()

	// The former Deployment is deleted in the foreground: the garbage
	// collector would remove its ReplicaSet and pod first.
	waitFor(t, &appsv1.Deployment{}, ns, "legacy-chroma", func(d *appsv1.Deployment) error {
		if d.DeletionTimestamp.IsZero() || !strings.Contains(strings.Join(d.Finalizers, ","), metav1.FinalizerDeleteDependents) {
			return fmt.Errorf("deletionTimestamp %v, finalizers %v: want a foreground deletion", d.DeletionTimestamp, d.Finalizers)
		}
		return nil
	})
	waitForEvent(t, ns, "legacy", "MovingChroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "legacy", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing); err != nil {
			return err
		}
		if msg := conditionMessage(rs, ragv1alpha1.ConditionVectorStoreReady); !strings.Contains(msg, "former Deployment legacy-chroma") {
			return fmt.Errorf("VectorStoreReady message %q does not name the former Deployment", msg)
		}
		return nil
	})
	consistently(t, "while the former Deployment exists", 3*time.Second, noStatefulSet(ns, "legacy-chroma"))

	// The garbage collector is done with the Deployment, but its pod is
	// still terminating (as after a deletion that orphaned it).
	update(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy-chroma"}},
		func(d *appsv1.Deployment) { d.Finalizers = nil })
	absent(t, &appsv1.Deployment{}, ns, "legacy-chroma")
	if err := k8sClient.Delete(ctx, oldPod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &corev1.Pod{}, ns, oldPod.Name, func(p *corev1.Pod) error {
		if p.DeletionTimestamp.IsZero() {
			return fmt.Errorf("pod is not terminating")
		}
		return nil
	})
	waitFor(t, &ragv1alpha1.RagService{}, ns, "legacy", func(rs *ragv1alpha1.RagService) error {
		if msg := conditionMessage(rs, ragv1alpha1.ConditionVectorStoreReady); !strings.Contains(msg, "pod "+oldPod.Name) {
			return fmt.Errorf("VectorStoreReady message %q does not name the old pod", msg)
		}
		return nil
	})
	consistently(t, "while the old pod terminates", 3*time.Second, noStatefulSet(ns, "legacy-chroma"))

	// The kubelet confirms that the old containers stopped.
	if err := k8sClient.Delete(ctx, oldPod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	sts := get(t, &appsv1.StatefulSet{}, ns, "legacy-chroma")
	if claim := sts.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim; claim == nil || claim.ClaimName != oldPVC.Name {
		t.Errorf("StatefulSet volume = %+v, want the claim %s", sts.Spec.Template.Spec.Volumes[0], oldPVC.Name)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Errorf("volumeClaimTemplates = %+v, want none", sts.Spec.VolumeClaimTemplates)
	}
	// The same volume, kept: same object, no owner (Retain), same
	// collection owner, so the server finds its documents.
	pvc := get(t, &corev1.PersistentVolumeClaim{}, ns, oldPVC.Name)
	if pvc.UID != oldPVC.UID || !pvc.DeletionTimestamp.IsZero() || len(pvc.OwnerReferences) != 0 ||
		pvc.Annotations[resources.CollectionOwnerAnnotation] != oldPVC.Annotations[resources.CollectionOwnerAnnotation] {
		t.Errorf("PVC %s (owners %v, annotations %v), want the former %s unchanged", pvc.UID, pvc.OwnerReferences, pvc.Annotations, oldPVC.UID)
	}
	// The Service still reaches Chroma: its selector matches the
	// StatefulSet's pods, and the StatefulSet's selector is the old one.
	svc := get(t, &corev1.Service{}, ns, "legacy-chroma")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not match the StatefulSet's pods %v", svc.Spec.Selector, sts.Spec.Template.Labels)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(oldPod.Labels)) ||
		!labels.Equals(sts.Spec.Selector.MatchLabels, resources.SelectorLabels(rs, resources.ComponentVectorStore)) {
		t.Errorf("selectors changed: Service %v, StatefulSet %v", svc.Spec.Selector, sts.Spec.Selector.MatchLabels)
	}
	server := get(t, &appsv1.Deployment{}, ns, "legacy")
	if u := envOf(server)["CHROMA_URL"].Value; u != fmt.Sprintf("http://legacy-chroma.%s.svc:8000", ns) {
		t.Errorf("CHROMA_URL = %s", u)
	}

	markChromaAvailable(t, ns, "legacy-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "legacy",
		conditionIs(ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable))

	// From now on the StatefulSet is there: no pod is listed, no Deployment
	// of that name is deleted (the name is free for others).
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "legacy-chroma"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment legacy-chroma: %v, want NotFound", err)
	}
}

// TestChromaStatefulSetForANewRagService: a new RagService gets its Chroma
// as a StatefulSet at once (no former Deployment, no pod to wait for).
func TestChromaStatefulSetForANewRagService(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "fresh")
	create(t, rs)
	sts := get(t, &appsv1.StatefulSet{}, ns, "fresh-chroma")
	if !metav1.IsControlledBy(sts, rs) || sts.Spec.ServiceName != "fresh-chroma" ||
		sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
		sts.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "fresh-chroma-data" {
		t.Errorf("StatefulSet = %+v", sts.Spec)
	}
	absent(t, &appsv1.Deployment{}, ns, "fresh-chroma")
	markChromaAvailable(t, ns, "fresh-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "fresh",
		conditionIs(ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable))
}
