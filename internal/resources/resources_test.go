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

package resources

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// newRagService returns a RagService as the API server stores it after
// defaulting, changed by the given mutators.
func newRagService(mutate ...func(*ragv1alpha1.RagService)) *ragv1alpha1.RagService {
	size := resource.MustParse("1Gi")
	rs := &ragv1alpha1.RagService{
		ObjectMeta: metav1.ObjectMeta{Name: "docs", Namespace: "team-a", UID: "uid-1"},
		Spec: ragv1alpha1.RagServiceSpec{
			Model:          "gpt-4o-mini",
			EmbeddingModel: "text-embedding-3-small",
			Replicas:       ptr.To[int32](1),
			SecretRef:      &ragv1alpha1.SecretKeyReference{Name: "openai", Key: "OPENAI_API_KEY"},
			VectorStore: ragv1alpha1.VectorStoreSpec{Chroma: &ragv1alpha1.ChromaSpec{
				Image:           ragv1alpha1.DefaultChromaImage,
				Storage:         ragv1alpha1.ChromaStorage{Size: &size},
				RetentionPolicy: ragv1alpha1.RetentionRetain,
			}},
			Server: ragv1alpha1.ServerSpec{Port: 8080},
			Retrieval: ragv1alpha1.RetrievalSpec{
				TopK: ptr.To[int32](4), ChunkSize: ptr.To[int32](1000), ChunkOverlap: ptr.To[int32](200),
			},
		},
	}
	for _, m := range mutate {
		m(rs)
	}
	return rs
}

// typed converts an apply configuration into the typed object it describes.
func typed[T any](t *testing.T, ac any) *T {
	t.Helper()
	raw, err := yaml.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := yaml.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			v = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
		m[e.Name] = v
	}
	return m
}

func assertOwned(t *testing.T, refs []metav1.OwnerReference) {
	t.Helper()
	if len(refs) != 1 || refs[0].UID != "uid-1" || refs[0].Kind != "RagService" || !ptr.Deref(refs[0].Controller, false) {
		t.Errorf("owner references = %+v, want the RagService as controller", refs)
	}
}

func assertLabels(t *testing.T, got map[string]string, component string) {
	t.Helper()
	for k, v := range map[string]string{
		LabelInstance: "docs", LabelComponent: component, LabelManagedBy: "ragops-operator", LabelPartOf: "ragops",
	} {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestServerDeployment(t *testing.T) {
	tests := []struct {
		name      string
		rs        *ragv1alpha1.RagService
		wantEnv   map[string]string // "" means: must be absent
		wantPort  int32
		wantLimit string
	}{{
		name: "defaults",
		rs:   newRagService(),
		wantEnv: map[string]string{
			"LLM_MODEL": "gpt-4o-mini", "EMBEDDING_MODEL": "text-embedding-3-small",
			"OPENAI_API_KEY": "secret:openai/OPENAI_API_KEY", "OPENAI_BASE_URL": "", "EMBEDDING_BASE_URL": "",
			"CHROMA_URL": "http://docs-chroma.team-a.svc:8000", "CHROMA_COLLECTION": "team-a.docs", "RAGOPS_OWNER": "uid-1",
			"API_TOKEN_FILE": "/etc/ragops/api-token/token", "DRAIN_PERIOD": "5s", "SHUTDOWN_TIMEOUT": "20s",
			"DOCS_DIR": "", "DATA_DIR": "/tmp/ragserver", "PORT": "8080",
			"TOP_K": "4", "CHUNK_SIZE": "1000", "CHUNK_OVERLAP": "200",
		},
		wantPort: 8080,
	}, {
		name: "keyless base URL is used for embeddings too",
		rs: newRagService(func(rs *ragv1alpha1.RagService) {
			rs.Spec.SecretRef = nil
			rs.Spec.BaseURL = "http://ollama.llm.svc:11434/v1"
		}),
		wantEnv: map[string]string{
			"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://ollama.llm.svc:11434/v1",
			"EMBEDDING_BASE_URL": "http://ollama.llm.svc:11434/v1",
		},
		wantPort: 8080,
	}, {
		name: "separate embedding server, custom key, documents, external store, port, retrieval, resources",
		rs: newRagService(func(rs *ragv1alpha1.RagService) {
			rs.Spec.SecretRef.Key = "token"
			rs.Spec.BaseURL = "https://chat.example/v1"
			rs.Spec.EmbeddingBaseURL = "https://embed.example/v1"
			rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"}}
			rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{External: &ragv1alpha1.ExternalVectorStore{URL: "http://chroma.shared.svc:8000"}}
			rs.Spec.Server.Port = 9000
			rs.Spec.Retrieval.TopK = ptr.To[int32](8)
			rs.Spec.Server.Resources = &ragv1alpha1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}
		}),
		wantEnv: map[string]string{
			"OPENAI_API_KEY": "secret:openai/token", "OPENAI_BASE_URL": "https://chat.example/v1",
			"EMBEDDING_BASE_URL": "https://embed.example/v1", "CHROMA_URL": "http://chroma.shared.svc:8000",
			"DOCS_DIR": "", "RAGOPS_SOURCES": "", "PORT": "9000", "TOP_K": "8",
		},
		wantPort:  9000,
		wantLimit: "512Mi",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac := ServerDeployment(tt.rs, ServerInputs{Image: "ragops/ragserver:0.1.0", InputsHash: "abc", CollectionOwner: "uid-1"})
			d := typed[appsv1.Deployment](t, ac)
			if d.Name != "docs" || d.Namespace != "team-a" {
				t.Errorf("name = %s/%s", d.Namespace, d.Name)
			}
			assertOwned(t, d.OwnerReferences)
			assertLabels(t, d.Labels, ComponentServer)
			assertLabels(t, d.Spec.Template.Labels, ComponentServer)
			if got := ptr.Deref(d.Spec.Replicas, -1); got != 1 {
				t.Errorf("replicas = %d, want 1", got)
			}
			for k, v := range d.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the template", k, v)
				}
			}
			if got := d.Spec.Template.Annotations[InputsHashAnnotation]; got != "abc" {
				t.Errorf("inputs hash annotation = %q", got)
			}
			pod := d.Spec.Template.Spec
			if ptr.Deref(pod.AutomountServiceAccountToken, true) || ptr.Deref(pod.EnableServiceLinks, true) {
				t.Error("want no service account token and no service links")
			}
			if psc := pod.SecurityContext; psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context = %+v, want restricted", psc)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("containers = %d", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Image != "ragops/ragserver:0.1.0" || len(c.Args) != 0 || len(c.Command) != 0 {
				t.Errorf("image/command/args = %s %v %v", c.Image, c.Command, c.Args)
			}
			sc := c.SecurityContext
			if sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("container security context = %+v, want restricted with a read-only root", sc)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != tt.wantPort || c.Ports[0].Name != "http" {
				t.Errorf("ports = %+v, want http on %d", c.Ports, tt.wantPort)
			}
			for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz", c.StartupProbe: "/healthz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.StrVal != "http" {
					t.Errorf("probe = %+v, want GET %s on http", probe, path)
				}
			}
			env := envMap(c)
			for k, want := range tt.wantEnv {
				if got, ok := env[k]; want == "" && ok {
					t.Errorf("env %s = %q, want absent", k, got)
				} else if want != "" && got != want {
					t.Errorf("env %s = %q, want %q", k, got, want)
				}
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			if _, ok := mounts["/tmp"]; !ok {
				t.Error("no scratch emptyDir on /tmp")
			}
			// The server never mounts the documents: the indexing Job
			// reads them.
			for _, v := range pod.Volumes {
				if v.ConfigMap != nil || v.PersistentVolumeClaim != nil {
					t.Errorf("volume %+v, want none of the documents", v)
				}
			}
			if got := c.Resources.Limits.Memory(); tt.wantLimit != "" && got.String() != tt.wantLimit {
				t.Errorf("memory limit = %s, want %s", got, tt.wantLimit)
			}
			raw, _ := yaml.Marshal(ac)
			if strings.Contains(string(raw), "status:") || strings.Contains(string(raw), "creationTimestamp") {
				t.Error("a desired object must not carry a status")
			}
		})
	}
}

func TestServerServiceAndPDB(t *testing.T) {
	rs := newRagService()
	svc := typed[corev1.Service](t, ServerService(rs))
	assertOwned(t, svc.OwnerReferences)
	assertLabels(t, svc.Labels, ComponentServer)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 {
		t.Fatalf("service spec = %+v", svc.Spec)
	}
	if p := svc.Spec.Ports[0]; p.Name != "http" || p.Port != 80 || p.TargetPort.StrVal != "http" || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("port = %+v, want 80/http -> http", p)
	}
	if svc.Spec.Selector[LabelComponent] != ComponentServer {
		t.Errorf("selector = %v", svc.Spec.Selector)
	}

	for replicas, want := range map[int32]bool{0: false, 1: false, 2: true, 5: true} {
		if got := NeedsPDB(newRagService(func(rs *ragv1alpha1.RagService) { rs.Spec.Replicas = &replicas })); got != want {
			t.Errorf("NeedsPDB(replicas=%d) = %v, want %v", replicas, got, want)
		}
	}
	pdb := typed[policyv1.PodDisruptionBudget](t, ServerPDB(rs))
	assertOwned(t, pdb.OwnerReferences)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntVal != 1 || pdb.Spec.Selector.MatchLabels[LabelComponent] != ComponentServer {
		t.Errorf("pdb spec = %+v", pdb.Spec)
	}
}

func TestChromaStatefulSet(t *testing.T) {
	tests := []struct {
		name      string
		rs        *ragv1alpha1.RagService
		wantImage string
		wantUser  int64
		wantGroup *int64
	}{
		{"defaults", newRagService(), "chromadb/chroma:1.0.0", 65532, ptr.To[int64](65532)},
		{"stored before defaulting", newRagService(func(rs *ragv1alpha1.RagService) { rs.Spec.VectorStore.Chroma = nil }),
			"chromadb/chroma:1.0.0", 65532, ptr.To[int64](65532)},
		{"image and security context override", newRagService(func(rs *ragv1alpha1.RagService) {
			rs.Spec.VectorStore.Chroma.Image = "ragops-local/chroma:1.0.0"
			rs.Spec.VectorStore.Chroma.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
		}), "ragops-local/chroma:1.0.0", 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := typed[appsv1.StatefulSet](t, ChromaStatefulSet(tt.rs))
			if d.Name != "docs-chroma" || d.Spec.ServiceName != "docs-chroma" {
				t.Errorf("name/serviceName = %s/%s", d.Name, d.Spec.ServiceName)
			}
			assertOwned(t, d.OwnerReferences)
			assertLabels(t, d.Spec.Template.Labels, ComponentVectorStore)
			// One identity, one pod at a time: a replacement pod starts only
			// after the old one is gone.
			if ptr.Deref(d.Spec.Replicas, 0) != 1 || d.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
				d.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
				t.Errorf("replicas/updateStrategy/podManagementPolicy = %v/%s/%s, want 1/RollingUpdate/OrderedReady",
					d.Spec.Replicas, d.Spec.UpdateStrategy.Type, d.Spec.PodManagementPolicy)
			}
			// The volume the operator creates (and keeps), not a template.
			if len(d.Spec.VolumeClaimTemplates) != 0 {
				t.Errorf("volumeClaimTemplates = %+v, want none", d.Spec.VolumeClaimTemplates)
			}
			for k, v := range d.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod template", k, v)
				}
			}
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			if c.Image != tt.wantImage || len(c.Command) != 0 || len(c.Args) != 0 {
				t.Errorf("image/command = %s %v %v", c.Image, c.Command, c.Args)
			}
			if c.Ports[0].ContainerPort != 8000 {
				t.Errorf("port = %d", c.Ports[0].ContainerPort)
			}
			if c.ReadinessProbe.HTTPGet.Path != "/api/v2/heartbeat" || c.LivenessProbe.HTTPGet == nil || c.StartupProbe.HTTPGet == nil {
				t.Errorf("probes must GET /api/v2/heartbeat")
			}
			if c.VolumeMounts[0].MountPath != "/data" || pod.Volumes[0].PersistentVolumeClaim.ClaimName != "docs-chroma-data" {
				t.Errorf("data volume = %+v %+v", c.VolumeMounts, pod.Volumes)
			}
			if ptr.Deref(pod.SecurityContext.RunAsUser, -1) != tt.wantUser || !ptr.Equal(pod.SecurityContext.FSGroup, tt.wantGroup) {
				t.Errorf("pod security context = %+v", pod.SecurityContext)
			}
			if ptr.Deref(c.SecurityContext.AllowPrivilegeEscalation, true) {
				t.Error("privilege escalation must be off")
			}
		})
	}
}

func TestChromaPVC(t *testing.T) {
	tests := []struct {
		name      string
		rs        *ragv1alpha1.RagService
		wantOwner bool
		wantSize  string
		wantClass *string
	}{
		{"retain by default: no owner", newRagService(), false, "1Gi", nil},
		{"delete: owned", newRagService(func(rs *ragv1alpha1.RagService) {
			rs.Spec.VectorStore.Chroma.RetentionPolicy = ragv1alpha1.RetentionDelete
		}), true, "1Gi", nil},
		{"size and class", newRagService(func(rs *ragv1alpha1.RagService) {
			q := resource.MustParse("5Gi")
			rs.Spec.VectorStore.Chroma.Storage = ragv1alpha1.ChromaStorage{Size: &q, StorageClassName: ptr.To("fast")}
		}), false, "5Gi", ptr.To("fast")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pvc := typed[corev1.PersistentVolumeClaim](t, ChromaPVC(tt.rs, "uid-1"))
			if pvc.Name != "docs-chroma-data" {
				t.Errorf("name = %s", pvc.Name)
			}
			assertLabels(t, pvc.Labels, ComponentVectorStore)
			if got := len(pvc.OwnerReferences) > 0; got != tt.wantOwner {
				t.Errorf("owned = %v, want %v", got, tt.wantOwner)
			}
			if got := pvc.Spec.Resources.Requests.Storage().String(); got != tt.wantSize {
				t.Errorf("size = %s, want %s", got, tt.wantSize)
			}
			if !ptr.Equal(pvc.Spec.StorageClassName, tt.wantClass) {
				t.Errorf("storage class = %v, want %v", pvc.Spec.StorageClassName, tt.wantClass)
			}
			if len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
				t.Errorf("access modes = %v", pvc.Spec.AccessModes)
			}
		})
	}
}

func TestChromaServiceAndNetworkPolicy(t *testing.T) {
	rs := newRagService()
	svc := typed[corev1.Service](t, ChromaService(rs))
	if svc.Name != "docs-chroma" || svc.Spec.Ports[0].Port != 8000 || svc.Spec.Selector[LabelComponent] != ComponentVectorStore {
		t.Errorf("chroma service = %+v", svc)
	}
	np := typed[networkingv1.NetworkPolicy](t, ChromaNetworkPolicy(rs))
	assertOwned(t, np.OwnerReferences)
	if np.Spec.PodSelector.MatchLabels[LabelComponent] != ComponentVectorStore {
		t.Errorf("policy selects %v, want the Chroma pods", np.Spec.PodSelector.MatchLabels)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || len(np.Spec.Ingress) != 1 {
		t.Fatalf("policy = %+v, want one ingress rule", np.Spec)
	}
	rule := np.Spec.Ingress[0]
	if len(rule.From) != 3 {
		t.Fatalf("ingress from = %+v, want this RagService's server, indexer and migrator pods", rule.From)
	}
	for i, component := range []string{ComponentServer, ComponentIndexer, ComponentMigrator} {
		from := rule.From[i].PodSelector.MatchLabels
		if from[LabelComponent] != component || from[LabelInstance] != "docs" || rule.From[i].NamespaceSelector != nil {
			t.Errorf("ingress from[%d] = %+v, want this RagService's %s pods", i, rule.From[i], component)
		}
	}
	if len(rule.Ports) != 1 || rule.Ports[0].Port.IntVal != 8000 {
		t.Errorf("ingress ports = %+v", rule.Ports)
	}
}

func TestInputsHash(t *testing.T) {
	base := InputsHash([]byte("sk-1"))
	if InputsHash([]byte("sk-1")) != base {
		t.Error("the hash must be deterministic")
	}
	for name, other := range map[string]string{
		"rotated key": InputsHash([]byte("sk-2")),
		"no key":      InputsHash(nil),
		"empty key":   InputsHash([]byte("")),
	} {
		if other == base {
			t.Errorf("%s: hash did not change", name)
		}
	}
	if strings.Contains(base, "sk-1") || len(base) != 32 {
		t.Errorf("hash = %q", base)
	}
	// Unchanged from the releases that also hashed the documents, so that
	// upgrading the operator does not roll servers without documents.
	if want := "9d32b74a54b562ecef4a086e4f12cc7b"; base != want {
		t.Errorf("hash = %s, want %s", base, want)
	}
}

func TestNamesAndURLs(t *testing.T) {
	rs := newRagService()
	for got, want := range map[string]string{
		Endpoint(rs, "cluster.local"): "http://docs.team-a.svc.cluster.local",
		ChromaURL(rs):                 "http://docs-chroma.team-a.svc:8000",
		ServerSelector(rs):            "app.kubernetes.io/component=server,app.kubernetes.io/instance=docs,app.kubernetes.io/name=ragserver",
		PVCName(rs):                   "docs-chroma-data",
		ChromaName(rs):                "docs-chroma",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
