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
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

func TestChildrenAndStatus(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk-test-1"})
	create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "handbook"},
		Data:       map[string]string{"onboarding.md": "# Welcome"},
	})
	rs := newRagService(ns, "docs", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"}}
	})
	create(t, rs)

	// The server Deployment.
	d := get(t, &appsv1.Deployment{}, ns, "docs")
	if !metav1.IsControlledBy(d, rs) {
		t.Errorf("server Deployment is not controlled by the RagService: %+v", d.OwnerReferences)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != testServerImage {
		t.Errorf("image = %s, want the operator default %s", c.Image, testServerImage)
	}
	env := envOf(d)
	if ref := env["OPENAI_API_KEY"].ValueFrom; ref == nil || ref.SecretKeyRef == nil ||
		ref.SecretKeyRef.Name != "openai" || ref.SecretKeyRef.Key != "OPENAI_API_KEY" || env["OPENAI_API_KEY"].Value != "" {
		t.Errorf("OPENAI_API_KEY = %+v, want a secretKeyRef only", env["OPENAI_API_KEY"])
	}
	for k, want := range map[string]string{
		"LLM_MODEL": "gpt-4o-mini", "CHROMA_URL": fmt.Sprintf("http://docs-chroma.%s.svc:8000", ns),
		"CHROMA_COLLECTION": ns + ".docs", "PORT": "8080",
	} {
		if env[k].Value != want {
			t.Errorf("env %s = %q, want %q", k, env[k].Value, want)
		}
	}
	// The documents are the indexing Job's: the server neither reads nor
	// mounts them.
	if _, ok := env["DOCS_DIR"]; ok {
		t.Errorf("env DOCS_DIR = %q, want absent", env["DOCS_DIR"].Value)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			t.Errorf("server volume %s mounts ConfigMap %s, want none", v.Name, v.ConfigMap.Name)
		}
	}
	if inputsHash(d) == "" {
		t.Error("no inputs hash on the pod template")
	}
	if sc := c.SecurityContext; sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		t.Errorf("security context = %+v, want a read-only root file system", sc)
	}
	if d.Labels[resources.LabelManagedBy] != resources.ManagedBy {
		t.Errorf("labels = %v", d.Labels)
	}
	for _, f := range d.ManagedFields {
		if f.Operation == metav1.ManagedFieldsOperationApply && f.Manager != FieldOwner {
			t.Errorf("unexpected apply manager %q", f.Manager)
		}
	}

	// The other children.
	svc := get(t, &corev1.Service{}, ns, "docs")
	if svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].Name != "http" || !metav1.IsControlledBy(svc, rs) {
		t.Errorf("server Service = %+v", svc.Spec.Ports)
	}
	chroma := get(t, &appsv1.StatefulSet{}, ns, "docs-chroma")
	if ptr.Deref(chroma.Spec.Replicas, 0) != 1 || !metav1.IsControlledBy(chroma, rs) ||
		chroma.Spec.Template.Spec.Containers[0].Image != ragv1alpha1.DefaultChromaImage ||
		chroma.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "docs-chroma-data" {
		t.Errorf("Chroma StatefulSet = %+v", chroma.Spec)
	}
	absent(t, &appsv1.Deployment{}, ns, "docs-chroma")
	get(t, &corev1.Service{}, ns, "docs-chroma")
	np := get(t, &networkingv1.NetworkPolicy{}, ns, "docs-chroma")
	if np.Spec.Ingress[0].From[0].PodSelector.MatchLabels[resources.LabelInstance] != "docs" {
		t.Errorf("NetworkPolicy = %+v", np.Spec)
	}
	pvc := get(t, &corev1.PersistentVolumeClaim{}, ns, "docs-chroma-data")
	if len(pvc.OwnerReferences) != 0 {
		t.Errorf("a retained PVC must have no owner: %+v", pvc.OwnerReferences)
	}
	if got := pvc.Spec.Resources.Requests.Storage().String(); got != "1Gi" {
		t.Errorf("PVC size = %s", got)
	}
	absent(t, &policyv1.PodDisruptionBudget{}, ns, "docs")

	// Nothing runs yet: envtest binds no volume and starts no pod.
	waitFor(t, &ragv1alpha1.RagService{}, ns, "docs", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionFalse, ragv1alpha1.ReasonPVCPending); err != nil {
			return err
		}
		if err := hasCondition(rs, ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing); err != nil {
			return err
		}
		if err := hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionFalse, ""); err != nil {
			return err
		}
		if rs.Status.ObservedGeneration != rs.Generation {
			return fmt.Errorf("observedGeneration = %d, want %d", rs.Status.ObservedGeneration, rs.Generation)
		}
		if want := fmt.Sprintf("http://docs.%s.svc.cluster.local", ns); rs.Status.Endpoint != want {
			return fmt.Errorf("endpoint = %q, want %q", rs.Status.Endpoint, want)
		}
		if rs.Status.Selector != resources.ServerSelector(rs) {
			return fmt.Errorf("selector = %q", rs.Status.Selector)
		}
		return nil
	})

	// Status follows the children's readiness.
	markChromaAvailable(t, ns, "docs-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "docs",
		conditionIs(ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable))
	markAvailable(t, ns, "docs")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "docs", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.ReadyReplicas != 1 || rs.Status.Replicas != 1 {
			return fmt.Errorf("replicas %d/%d, want 1/1", rs.Status.ReadyReplicas, rs.Status.Replicas)
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, ragv1alpha1.ReasonAvailable)
	})
	markUnavailable(t, ns, "docs")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "docs", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing); err != nil {
			return err
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing)
	})

	waitForEvent(t, ns, "docs", "Created")
	waitForEvent(t, ns, "docs", "Ready")

	// A child edited by someone else is put back (drift), and an API key
	// never appears in the RagService.
	update(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}}, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "someone/else:1"
	})
	waitFor(t, &appsv1.Deployment{}, ns, "docs", func(d *appsv1.Deployment) error {
		if img := d.Spec.Template.Spec.Containers[0].Image; img != testServerImage {
			return fmt.Errorf("image = %s, want it restored", img)
		}
		return nil
	})
	raw := fmt.Sprintf("%+v", get(t, &ragv1alpha1.RagService{}, ns, "docs"))
	if strings.Contains(raw, "sk-test-1") {
		t.Error("the API key leaked into the RagService")
	}
}

func TestSpecChangePropagates(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "chat")
	create(t, rs)
	get(t, &appsv1.Deployment{}, ns, "chat")
	markAvailable(t, ns, "chat")
	markChromaAvailable(t, ns, "chat-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "chat", conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionTrue, ""))

	update(t, rs, func(rs *ragv1alpha1.RagService) {
		rs.Spec.Model = "gpt-4.1"
		rs.Spec.Server.Image = "ragops/ragserver:9.9.9"
		rs.Spec.Replicas = ptr.To[int32](3)
		rs.Spec.Retrieval.TopK = ptr.To[int32](7)
	})
	d := waitFor(t, &appsv1.Deployment{}, ns, "chat", func(d *appsv1.Deployment) error {
		env := envOf(d)
		switch {
		case env["LLM_MODEL"].Value != "gpt-4.1":
			return fmt.Errorf("LLM_MODEL = %s", env["LLM_MODEL"].Value)
		case d.Spec.Template.Spec.Containers[0].Image != "ragops/ragserver:9.9.9":
			return fmt.Errorf("image = %s", d.Spec.Template.Spec.Containers[0].Image)
		case ptr.Deref(d.Spec.Replicas, 0) != 3:
			return fmt.Errorf("replicas = %d", ptr.Deref(d.Spec.Replicas, 0))
		case env["TOP_K"].Value != "7":
			return fmt.Errorf("TOP_K = %s", env["TOP_K"].Value)
		}
		return nil
	})
	_ = d
	get(t, &policyv1.PodDisruptionBudget{}, ns, "chat")
	// The rollout has not happened yet: not Ready, and honest about it.
	waitFor(t, &ragv1alpha1.RagService{}, ns, "chat",
		conditionIs(ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing))
	markAvailable(t, ns, "chat")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "chat", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.ReadyReplicas != 3 {
			return fmt.Errorf("readyReplicas = %d", rs.Status.ReadyReplicas)
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.Replicas = ptr.To[int32](1) })
	absent(t, &policyv1.PodDisruptionBudget{}, ns, "chat")
}

func TestSecretRotationRollsPodsDocumentsDoNot(t *testing.T) {
	ns := newNamespace(t)
	secret := createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk-1", "other": "x"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}}
	create(t, cm)
	create(t, newRagService(ns, "rot", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}}
	}))
	first := get(t, &appsv1.Deployment{}, ns, "rot")

	changedFrom := func(old string) func(*appsv1.Deployment) error {
		return func(d *appsv1.Deployment) error {
			if h := inputsHash(d); h == old || h == "" {
				return fmt.Errorf("inputs hash %q did not change", h)
			}
			return nil
		}
	}
	// The documents change: a new indexing Job, and the server's pod
	// template stays as it was.
	job := waitForJobs(t, ns, "rot", 1)[0]
	finishJob(t, &job, 0, reportJSON(t, contract.IndexReport{Documents: 1, Chunks: 1, Sources: []contract.SourceReport{{Name: "configmap", Indexed: 1}}}))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "rot", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonIndexed))
	update(t, cm, func(cm *corev1.ConfigMap) { cm.Data["b.md"] = "B" })
	waitFor(t, &ragv1alpha1.RagService{}, ns, "rot", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.Index == nil || rs.Status.Index.Job == "" || rs.Status.Index.Job == job.Name {
			return fmt.Errorf("status.index = %+v, want a Job other than %s", rs.Status.Index, job.Name)
		}
		return nil
	})
	if d := get(t, &appsv1.Deployment{}, ns, "rot"); !equality.Semantic.DeepEqual(d.Spec.Template, first.Spec.Template) {
		t.Errorf("the server's pod template changed with the documents:\n%+v\nwas\n%+v", d.Spec.Template, first.Spec.Template)
	}

	update(t, secret, func(s *corev1.Secret) { s.Data["OPENAI_API_KEY"] = []byte("sk-2") })
	second := inputsHash(waitFor(t, &appsv1.Deployment{}, ns, "rot", changedFrom(inputsHash(first))))
	waitForEvent(t, ns, "rot", "Rolled")

	// Another key of the Secret is not an input: no roll. Rotate it, then
	// the referenced key, and check that only the second changed the hash.
	update(t, secret, func(s *corev1.Secret) { s.Data["other"] = []byte("y") })
	update(t, secret, func(s *corev1.Secret) { s.Data["OPENAI_API_KEY"] = []byte("sk-1") })
	d := waitFor(t, &appsv1.Deployment{}, ns, "rot", changedFrom(second))
	if want := resources.InputsHash([]byte("sk-1")); inputsHash(d) != want {
		t.Errorf("hash = %s, want %s (key sk-1)", inputsHash(d), want)
	}
}

func TestMissingSecretRecovers(t *testing.T) {
	ns := newNamespace(t)
	create(t, newRagService(ns, "wait", func(rs *ragv1alpha1.RagService) {
		rs.Spec.SecretRef.Key = "token"
	}))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "wait", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonSecretNotFound); err != nil {
			return err
		}
		if err := hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonSecretNotFound); err != nil {
			return err
		}
		if rs.Status.ObservedGeneration != 0 {
			return fmt.Errorf("observedGeneration = %d, want 0 while waiting", rs.Status.ObservedGeneration)
		}
		return nil
	})
	waitForEvent(t, ns, "wait", ragv1alpha1.ReasonSecretNotFound)
	absent(t, &appsv1.Deployment{}, ns, "wait")

	secret := createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	waitFor(t, &ragv1alpha1.RagService{}, ns, "wait",
		conditionIs(ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonSecretKeyMissing))

	update(t, secret, func(s *corev1.Secret) { s.Data["token"] = []byte("sk") })
	get(t, &appsv1.Deployment{}, ns, "wait")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "wait", func(rs *ragv1alpha1.RagService) error {
		if rs.Status.ObservedGeneration != rs.Generation {
			return fmt.Errorf("observedGeneration = %d, want %d", rs.Status.ObservedGeneration, rs.Generation)
		}
		return hasCondition(rs, ragv1alpha1.ConditionServerAvailable, metav1.ConditionFalse, ragv1alpha1.ReasonProgressing)
	})
}

func TestScaleSubresource(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, newRagService(ns, "scaled"))
	get(t, &appsv1.Deployment{}, ns, "scaled")

	// What kubectl scale does: read and update the scale subresource.
	disc := memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(testCfg))
	scales, err := scale.NewForConfig(testCfg, restmapper.NewDeferredDiscoveryRESTMapper(disc),
		dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(disc))
	if err != nil {
		t.Fatal(err)
	}
	gr := schema.GroupResource{Group: ragv1alpha1.GroupVersion.Group, Resource: "ragservices"}
	eventually(t, timeout, func() error {
		s, err := scales.Scales(ns).Get(context.Background(), gr, "scaled", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = 4
		_, err = scales.Scales(ns).Update(context.Background(), gr, s, metav1.UpdateOptions{})
		return err
	})
	waitFor(t, &appsv1.Deployment{}, ns, "scaled", func(d *appsv1.Deployment) error {
		if r := ptr.Deref(d.Spec.Replicas, 0); r != 4 {
			return fmt.Errorf("replicas = %d, want 4", r)
		}
		return nil
	})
	markAvailable(t, ns, "scaled")
	eventually(t, timeout, func() error {
		s, err := scales.Scales(ns).Get(context.Background(), gr, "scaled", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Status.Replicas != 4 || s.Status.Selector != "app.kubernetes.io/component=server,app.kubernetes.io/instance=scaled,app.kubernetes.io/name=ragserver" {
			return fmt.Errorf("scale status = %+v", s.Status)
		}
		return nil
	})
}

func TestRetentionPolicy(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	twoGi := resource.MustParse("2Gi")

	// Retain: the volume has no owner, outlives its RagService and is reused
	// by a RagService re-created with the same name.
	rs := newRagService(ns, "keep", func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore.Chroma = &ragv1alpha1.ChromaSpec{Storage: ragv1alpha1.ChromaStorage{Size: &twoGi}}
	})
	create(t, rs)
	pvc := get(t, &corev1.PersistentVolumeClaim{}, ns, "keep-chroma-data")
	if len(pvc.OwnerReferences) != 0 {
		t.Fatalf("retained PVC has owners %+v", pvc.OwnerReferences)
	}
	if err := k8sClient.Delete(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	absent(t, &ragv1alpha1.RagService{}, ns, "keep")

	// Re-created asking for less than the volume holds: the spec stalls
	// with a clear condition (a volume cannot shrink).
	oneGi := resource.MustParse("1Gi")
	again := newRagService(ns, "keep", func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore.Chroma = &ragv1alpha1.ChromaSpec{Storage: ragv1alpha1.ChromaStorage{Size: &oneGi}}
	})
	create(t, again)
	waitFor(t, &ragv1alpha1.RagService{}, ns, "keep", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonInvalidSpec); err != nil {
			return err
		}
		if msg := conditionMessage(rs, ragv1alpha1.ConditionReady); !strings.Contains(msg, "volumes cannot shrink") {
			return fmt.Errorf("message = %q", msg)
		}
		return nil
	})
	waitForEvent(t, ns, "keep", ragv1alpha1.ReasonInvalidSpec)

	// Fixed: the old volume is reused as it is.
	update(t, again, func(rs *ragv1alpha1.RagService) { rs.Spec.VectorStore.Chroma.Storage.Size = &twoGi })
	get(t, &appsv1.Deployment{}, ns, "keep")
	reused := get(t, &corev1.PersistentVolumeClaim{}, ns, "keep-chroma-data")
	if reused.UID != pvc.UID || len(reused.OwnerReferences) != 0 {
		t.Errorf("PVC %s (owners %v), want the retained %s without owners", reused.UID, reused.OwnerReferences, pvc.UID)
	}
	// The children that envtest's missing garbage collector left behind
	// move to the new RagService.
	waitFor(t, &appsv1.StatefulSet{}, ns, "keep-chroma", func(d *appsv1.StatefulSet) error {
		if !metav1.IsControlledBy(d, again) || len(d.OwnerReferences) != 1 {
			return fmt.Errorf("owners = %+v, want the new RagService only", d.OwnerReferences)
		}
		return nil
	})

	// Delete: the RagService owns the volume, so garbage collection removes
	// it with the RagService. Switching back to Retain drops the owner.
	update(t, again, func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore.Chroma.RetentionPolicy = ragv1alpha1.RetentionDelete
	})
	waitFor(t, &corev1.PersistentVolumeClaim{}, ns, "keep-chroma-data", func(p *corev1.PersistentVolumeClaim) error {
		if !metav1.IsControlledBy(p, again) || !ptr.Deref(p.OwnerReferences[0].BlockOwnerDeletion, false) {
			return fmt.Errorf("owners = %+v, want the RagService", p.OwnerReferences)
		}
		return nil
	})
	update(t, again, func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore.Chroma.RetentionPolicy = ragv1alpha1.RetentionRetain
	})
	waitFor(t, &corev1.PersistentVolumeClaim{}, ns, "keep-chroma-data", func(p *corev1.PersistentVolumeClaim) error {
		if len(p.OwnerReferences) != 0 {
			return fmt.Errorf("owners = %+v, want none", p.OwnerReferences)
		}
		return nil
	})
}

func TestExternalVectorStore(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	rs := newRagService(ns, "ext", func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore.Chroma = &ragv1alpha1.ChromaSpec{RetentionPolicy: ragv1alpha1.RetentionDelete}
	})
	create(t, rs)
	get(t, &appsv1.StatefulSet{}, ns, "ext-chroma")
	get(t, &corev1.PersistentVolumeClaim{}, ns, "ext-chroma-data")

	update(t, rs, func(rs *ragv1alpha1.RagService) {
		rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{External: &ragv1alpha1.ExternalVectorStore{URL: "http://chroma.shared.svc:8000"}}
	})
	waitFor(t, &appsv1.Deployment{}, ns, "ext", func(d *appsv1.Deployment) error {
		if u := envOf(d)["CHROMA_URL"].Value; u != "http://chroma.shared.svc:8000" {
			return fmt.Errorf("CHROMA_URL = %s", u)
		}
		return nil
	})
	absent(t, &appsv1.StatefulSet{}, ns, "ext-chroma")
	absent(t, &corev1.Service{}, ns, "ext-chroma")
	absent(t, &networkingv1.NetworkPolicy{}, ns, "ext-chroma")
	// Delete policy: the RagService owned the volume, so it is deleted
	// (envtest runs no PVC protection controller to remove its finalizer).
	waitFor(t, &corev1.PersistentVolumeClaim{}, ns, "ext-chroma-data", func(p *corev1.PersistentVolumeClaim) error {
		if p.DeletionTimestamp.IsZero() {
			return fmt.Errorf("PVC is not being deleted")
		}
		return nil
	})
	waitFor(t, &ragv1alpha1.RagService{}, ns, "ext",
		conditionIs(ragv1alpha1.ConditionVectorStoreReady, metav1.ConditionTrue, ragv1alpha1.ReasonExternal))
}

func conditionMessage(rs *ragv1alpha1.RagService, condType string) string {
	for _, c := range rs.Status.Conditions {
		if c.Type == condType {
			return c.Message
		}
	}
	return ""
}
