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
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/resources"
)

// TestCollectionIsUniquePerRagService: two RagServices of the same name in
// two namespaces sharing an external Chroma get distinct collections, and
// each server is told its owner (the UID) to stamp on the collection.
func TestCollectionIsUniquePerRagService(t *testing.T) {
	seen := map[string]string{}
	for range 2 {
		ns := newNamespace(t)
		createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
		rs := newRagService(ns, "shared", func(rs *ragv1alpha1.RagService) {
			rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{External: &ragv1alpha1.ExternalVectorStore{URL: "http://chroma.shared.svc:8000"}}
		})
		create(t, rs)
		d := get(t, &appsv1.Deployment{}, ns, "shared")
		env := envOf(d)
		prefix, owner := env["CHROMA_COLLECTION"].Value, env["RAGOPS_OWNER"].Value
		if prefix != ns+".shared" {
			t.Errorf("CHROMA_COLLECTION = %q, want %q", prefix, ns+".shared")
		}
		if owner != string(rs.UID) {
			t.Errorf("RAGOPS_OWNER = %q, want the UID %s", owner, rs.UID)
		}
		if other, dup := seen[prefix]; dup {
			t.Errorf("namespaces %s and %s share the collection prefix %q", other, ns, prefix)
		}
		seen[prefix] = ns
	}

	// With the managed Chroma, the owner is recorded on the volume, so that a
	// RagService re-created over a retained volume keeps its collection.
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "managed")
	create(t, rs)
	waitFor(t, &corev1.PersistentVolumeClaim{}, ns, "managed-chroma-data", func(p *corev1.PersistentVolumeClaim) error {
		if p.Annotations[resources.CollectionOwnerAnnotation] != string(rs.UID) {
			return fmt.Errorf("annotations = %v", p.Annotations)
		}
		return nil
	})
	waitFor(t, &appsv1.Deployment{}, ns, "managed", func(d *appsv1.Deployment) error {
		if o := envOf(d)["RAGOPS_OWNER"].Value; o != string(rs.UID) {
			return fmt.Errorf("RAGOPS_OWNER = %q", o)
		}
		return nil
	})
}

// TestSwitchToExternalReportsTheRetainedVolume: the retained volume of the
// former Chroma still holds every document added through the API; the switch
// says so in the status and in a Warning event naming the claim.
func TestSwitchToExternalReportsTheRetainedVolume(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "moving")
	create(t, rs)
	get(t, &corev1.PersistentVolumeClaim{}, ns, "moving-chroma-data")

	update(t, rs, func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{External: &ragv1alpha1.ExternalVectorStore{URL: "http://chroma.shared.svc:8000"}}
	})
	absent(t, &appsv1.StatefulSet{}, ns, "moving-chroma")
	got := waitFor(t, &ragv1alpha1.RagService{}, ns, "moving",
		conditionIs(ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionTrue, ragv1alpha1.ReasonRetainedVolumeOrphaned))
	if msg := conditionMessage(got, ragv1alpha1.ConditionVectorStoreReady); !strings.Contains(msg, ns+"/moving-chroma-data") {
		t.Errorf("VectorStoreReady message %q does not name the claim", msg)
	}
	ev := waitForEvent(t, ns, "moving", ragv1alpha1.ReasonRetainedVolumeOrphaned)
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, "moving-chroma-data") {
		t.Errorf("event = %s %q, want a Warning naming the claim", ev.Type, ev.Note)
	}
	// The volume is kept.
	if p := get(t, &corev1.PersistentVolumeClaim{}, ns, "moving-chroma-data"); !p.DeletionTimestamp.IsZero() {
		t.Error("the retained volume is being deleted")
	}

	// Switching back uses it again.
	update(t, got, func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{Chroma: &ragv1alpha1.ChromaSpec{}}
	})
	waitFor(t, &ragv1alpha1.RagService{}, ns, "moving", func(rs *ragv1alpha1.RagService) error {
		c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionVectorStoreReady)
		if c == nil || c.Reason == ragv1alpha1.ReasonRetainedVolumeOrphaned || c.ObservedGeneration != rs.Generation {
			return fmt.Errorf("VectorStoreReady = %+v", c)
		}
		return nil
	})
}

// TestForeignChildrenAreNotAdopted: an object the operator did not create
// that has the name of a child stalls the RagService with ChildConflict
// naming it, is left untouched, and the RagService recovers once it is gone.
func TestForeignChildrenAreNotAdopted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	labels := map[string]string{"app": "someone-else"}
	foreignDeploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
		},
	}
	foreignSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc-taken"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "web", Port: 8081}}},
	}
	create(t, foreignDeploy)
	create(t, foreignSvc)
	create(t, newRagService(ns, "taken"))
	create(t, newRagService(ns, "svc-taken"))

	for _, tt := range []struct {
		rs, kind string
		obj      interface {
			GetOwnerReferences() []metav1.OwnerReference
			GetLabels() map[string]string
		}
	}{
		{"taken", "Deployment", &appsv1.Deployment{}},
		{"svc-taken", "Service", &corev1.Service{}},
	} {
		got := waitFor(t, &ragv1alpha1.RagService{}, ns, tt.rs,
			conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonChildConflict))
		want := fmt.Sprintf("%s %s/%s", tt.kind, ns, tt.rs)
		if msg := conditionMessage(got, ragv1alpha1.ConditionReady); !strings.Contains(msg, want) {
			t.Errorf("%s: Ready message %q does not name %s", tt.rs, msg, want)
		}
		waitForEvent(t, ns, tt.rs, ragv1alpha1.ReasonChildConflict)
	}
	// Untouched: no owner, no label, the original spec.
	d := get(t, &appsv1.Deployment{}, ns, "taken")
	if len(d.OwnerReferences) != 0 || d.Labels[resources.LabelManagedBy] != "" || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" {
		t.Errorf("the foreign Deployment was changed: owners %v labels %v image %s", d.OwnerReferences, d.Labels, d.Spec.Template.Spec.Containers[0].Image)
	}
	svc := get(t, &corev1.Service{}, ns, "svc-taken")
	if len(svc.OwnerReferences) != 0 || svc.Labels[resources.LabelManagedBy] != "" || svc.Spec.Ports[0].Port != 8081 {
		t.Errorf("the foreign Service was changed: owners %v labels %v ports %v", svc.OwnerReferences, svc.Labels, svc.Spec.Ports)
	}

	// Recovery once the foreign objects are gone.
	if err := k8sClient.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"taken", "svc-taken"} {
		rs := get(t, &ragv1alpha1.RagService{}, ns, name)
		waitFor(t, &appsv1.Deployment{}, ns, name, func(d *appsv1.Deployment) error {
			if !metav1.IsControlledBy(d, rs) {
				return fmt.Errorf("server Deployment not created by the RagService yet")
			}
			return nil
		})
		waitFor(t, &corev1.Service{}, ns, name, func(s *corev1.Service) error {
			if !metav1.IsControlledBy(s, rs) {
				return fmt.Errorf("server Service not created by the RagService yet")
			}
			return nil
		})
		waitFor(t, &ragv1alpha1.RagService{}, ns, name, func(rs *ragv1alpha1.RagService) error {
			if c := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionReady); c == nil || c.Reason == ragv1alpha1.ReasonChildConflict {
				return fmt.Errorf("Ready = %+v", c)
			}
			return nil
		})
	}
}

// TestChildOfAnotherRagServiceIsNotTaken: RagService "pair" serves Chroma
// through the Service pair-chroma; a RagService named "pair-chroma" would
// name its server Service the same. It stalls with ChildConflict instead of
// taking over (and later deleting) the other's Chroma Service.
func TestChildOfAnotherRagServiceIsNotTaken(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	pair := newRagService(ns, "pair")
	create(t, pair)
	get(t, &corev1.Service{}, ns, "pair-chroma")
	create(t, newRagService(ns, "pair-chroma"))
	got := waitFor(t, &ragv1alpha1.RagService{}, ns, "pair-chroma",
		conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonChildConflict))
	if msg := conditionMessage(got, ragv1alpha1.ConditionReady); !strings.Contains(msg, "Service "+ns+"/pair-chroma") {
		t.Errorf("Ready message %q does not name the Service", msg)
	}
	svc := get(t, &corev1.Service{}, ns, "pair-chroma")
	if !metav1.IsControlledBy(svc, pair) || svc.Spec.Selector[resources.LabelComponent] != resources.ComponentVectorStore {
		t.Errorf("pair's Chroma Service was taken over: owners %+v, selector %v", svc.OwnerReferences, svc.Spec.Selector)
	}
}

// TestAPITokenByDefault: the operator generates a token once into a Secret
// it owns, the server requires it, a NetworkPolicy guards the server, the
// token survives reconciles, and Disabled removes the requirement.
func TestAPITokenByDefault(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "secure")
	create(t, rs)

	secret := get(t, &corev1.Secret{}, ns, "secure-api-token")
	token := string(secret.Data["token"])
	if len(token) < 32 || !metav1.IsControlledBy(secret, rs) {
		t.Fatalf("token Secret: %d-character token, owners %+v", len(token), secret.OwnerReferences)
	}
	d := waitFor(t, &appsv1.Deployment{}, ns, "secure", func(d *appsv1.Deployment) error {
		if f := envOf(d)["API_TOKEN_FILE"].Value; f != resources.APITokenFile {
			return fmt.Errorf("API_TOKEN_FILE = %q", f)
		}
		return nil
	})
	found := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		found = found || (v.Secret != nil && v.Secret.SecretName == "secure-api-token")
	}
	if !found {
		t.Errorf("no volume of the token Secret: %+v", d.Spec.Template.Spec.Volumes)
	}
	np := get(t, &networkingv1.NetworkPolicy{}, ns, "secure")
	if !metav1.IsControlledBy(np, rs) || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8080 {
		t.Errorf("server NetworkPolicy = %+v", np.Spec)
	}

	// Reconciles (a spec change, a forced pass) never rotate the token.
	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.Model = "gpt-4o" })
	waitFor(t, &appsv1.Deployment{}, ns, "secure", func(d *appsv1.Deployment) error {
		if m := envOf(d)["LLM_MODEL"].Value; m != "gpt-4o" {
			return fmt.Errorf("LLM_MODEL = %q", m)
		}
		return nil
	})
	if _, err := reconciler.Reconcile(context.Background(), reqFor(ns, "secure")); err != nil {
		t.Fatal(err)
	}
	after := get(t, &corev1.Secret{}, ns, "secure-api-token")
	if string(after.Data["token"]) != token || after.ResourceVersion != secret.ResourceVersion {
		t.Errorf("the token Secret changed across reconciles (resourceVersion %s -> %s)", secret.ResourceVersion, after.ResourceVersion)
	}

	// Disabled: no token, no Secret.
	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.Auth = ragv1alpha1.AuthSpec{Mode: ragv1alpha1.AuthDisabled} })
	waitFor(t, &appsv1.Deployment{}, ns, "secure", func(d *appsv1.Deployment) error {
		if e, ok := envOf(d)["API_TOKEN_FILE"]; ok {
			return fmt.Errorf("API_TOKEN_FILE = %q with auth disabled", e.Value)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				return fmt.Errorf("Secret volume %s with auth disabled", v.Name)
			}
		}
		return nil
	})
	absent(t, &corev1.Secret{}, ns, "secure-api-token")
}

// TestBlankSecretKeysWait: a key that holds only whitespace would make the
// server exit (it trims); the RagService waits with SecretKeyEmpty instead,
// for the model API key and for a user's token Secret.
func TestBlankSecretKeysWait(t *testing.T) {
	ns := newNamespace(t)
	key := createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": " \n\t"})
	create(t, newRagService(ns, "blank-key"))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "blank-key",
		conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonSecretKeyEmpty))
	absent(t, &appsv1.Deployment{}, ns, "blank-key")
	update(t, key, func(s *corev1.Secret) { s.Data = map[string][]byte{"OPENAI_API_KEY": []byte("sk-real")} })
	get(t, &appsv1.Deployment{}, ns, "blank-key")

	createSecret(t, ns, "my-token", map[string]string{"token": "   "})
	create(t, newRagService(ns, "blank-token", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Auth.SecretRef = &ragv1alpha1.TokenSecretReference{Name: "my-token"}
	}))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "blank-token",
		conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonSecretKeyEmpty))
	absent(t, &appsv1.Deployment{}, ns, "blank-token")
}

// TestUnrunnableStoredSpecStalls: a RagService stored before the CRD carried
// the server's bounds (here topK 60) stalls with InvalidSpec instead of
// deploying a server that crash-loops.
func TestUnrunnableStoredSpecStalls(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "old", func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval.TopK = ptr.To[int32](5) })
	create(t, rs)
	get(t, &appsv1.Deployment{}, ns, "old")
	// The API refuses topK 60 now; an object stored earlier is replayed
	// through the reconciler with that value.
	stored := get(t, &ragv1alpha1.RagService{}, ns, "old")
	stored.Spec.Retrieval.TopK = ptr.To[int32](60)
	err := reconciler.reconcileSpec(context.Background(), &scope{rs: stored})
	st, ok := asStall(err)
	if !ok || st.reason != ragv1alpha1.ReasonInvalidSpec || !strings.Contains(st.message, "retrieval.topK 60 must be from 1 to 50") {
		t.Fatalf("reconcileSpec = %v, want an InvalidSpec stall naming retrieval.topK", err)
	}
}

func reqFor(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
