package resources

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/ragserver"
)

// serverConfig builds the server Deployment for rs and loads its container
// environment with the server's own LoadConfig, as the pod would at start.
// Values from Secrets and paths of mounted volumes are stood in for.
func serverConfig(t *testing.T, rs *ragv1alpha1.RagService) (ragserver.Config, error) {
	t.Helper()
	d := typed[appsv1.Deployment](t, ServerDeployment(rs, ServerInputs{Image: "ragops/ragserver:0.1.0", InputsHash: "abc", CollectionOwner: string(rs.UID)}))
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "sk-from-secret"
		}
	}
	tmp := t.TempDir()
	if env[contract.EnvAPITokenFile] != "" {
		f := filepath.Join(tmp, "token")
		if err := os.WriteFile(f, []byte("t0ken"), 0o600); err != nil {
			t.Fatal(err)
		}
		env[contract.EnvAPITokenFile] = f
	}
	return ragserver.LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
}

// TestServerEnvironmentLoadsInTheServer crosses the operator-server
// contract: for RagServices at every bound and default of the API, the
// environment the operator builds is accepted by the server's configuration
// loader, with the same values.
func TestServerEnvironmentLoadsInTheServer(t *testing.T) {
	i32 := func(v int) *int32 { return ptr.To(int32(v)) }
	tests := []struct {
		name                       string
		mutate                     func(*ragv1alpha1.RagService)
		topK, chunkSize, chunkOver int
	}{
		{"all defaults", func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{} },
			contract.DefaultTopK, contract.DefaultChunkSize, contract.DefaultChunkOverlap},
		{"minimum topK", func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval.TopK = i32(contract.MinTopK) },
			contract.MinTopK, 1000, 200},
		{"maximum topK", func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval.TopK = i32(contract.MaxTopK) },
			contract.MaxTopK, 1000, 200},
		{"minimum chunk size, default overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(contract.MinChunkSize)}
		}, contract.DefaultTopK, contract.MinChunkSize, contract.MinChunkSize / 5},
		{"chunk size 150, default overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(150)}
		}, contract.DefaultTopK, 150, 30},
		{"maximum chunk size, default overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(contract.MaxChunkSize)}
		}, contract.DefaultTopK, contract.MaxChunkSize, contract.DefaultChunkOverlap},
		{"maximum chunk size and overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(contract.MaxChunkSize), ChunkOverlap: i32(contract.MaxChunkOverlap)}
		}, contract.DefaultTopK, contract.MaxChunkSize, contract.MaxChunkOverlap},
		{"minimum chunk size, minimum overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(contract.MinChunkSize), ChunkOverlap: i32(contract.MinChunkOverlap)}
		}, contract.DefaultTopK, contract.MinChunkSize, contract.MinChunkOverlap},
		{"minimum chunk size, largest overlap", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval = ragv1alpha1.RetrievalSpec{ChunkSize: i32(contract.MinChunkSize), ChunkOverlap: i32(contract.MinChunkSize - 1)}
		}, contract.DefaultTopK, contract.MinChunkSize, contract.MinChunkSize - 1},
		{"lowest port", func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Port = 1024 }, 4, 1000, 200},
		{"highest port", func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Port = 65535 }, 4, 1000, 200},
		{"default port", func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Port = 0 }, 4, 1000, 200},
		{"keyless base URL, documents, external store, auth disabled", func(rs *ragv1alpha1.RagService) {
			rs.Spec.SecretRef = nil
			rs.Spec.BaseURL = "http://ollama.llm.svc:11434/v1"
			rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"}}
			rs.Spec.VectorStore = ragv1alpha1.VectorStoreSpec{External: &ragv1alpha1.ExternalVectorStore{URL: "https://chroma.shared.example:8443"}}
			rs.Spec.Auth.Mode = ragv1alpha1.AuthDisabled
		}, 4, 1000, 200},
		{"longest names, model without ASCII letters", func(rs *ragv1alpha1.RagService) {
			rs.Namespace = strings.Repeat("n", 63)
			rs.Name = "a" + strings.Repeat("b", 49)
			rs.Spec.EmbeddingModel = "埋め込み"
			rs.Spec.Model = strings.Repeat("m", 256)
		}, 4, 1000, 200},
		{"shortest names, model without ASCII letters", func(rs *ragv1alpha1.RagService) {
			rs.Namespace = "n"
			rs.Name = "a"
			rs.Spec.EmbeddingModel = "埋め込み"
		}, 4, 1000, 200},
		{"user token Secret", func(rs *ragv1alpha1.RagService) {
			rs.Spec.Auth.SecretRef = &ragv1alpha1.TokenSecretReference{Name: "my-token", Key: "t"}
		}, 4, 1000, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRagService(tt.mutate)
			cfg, err := serverConfig(t, rs)
			if err != nil {
				t.Fatalf("the server refuses the operator's environment: %v", err)
			}
			if cfg.TopK != tt.topK || cfg.ChunkSize != tt.chunkSize || cfg.ChunkOverlap != tt.chunkOver {
				t.Errorf("server config topK/chunkSize/chunkOverlap = %d/%d/%d, want %d/%d/%d",
					cfg.TopK, cfg.ChunkSize, cfg.ChunkOverlap, tt.topK, tt.chunkSize, tt.chunkOver)
			}
			if cfg.Port != int(ServerPort(rs)) || cfg.LLMModel != rs.Spec.Model || cfg.EmbeddingModel != rs.Spec.EmbeddingModel {
				t.Errorf("port/models = %d %q %q", cfg.Port, cfg.LLMModel, cfg.EmbeddingModel)
			}
			if cfg.Owner != string(rs.UID) {
				t.Errorf("owner = %q, want the UID", cfg.Owner)
			}
			if got, want := cfg.APITokenFile != "", AuthMode(rs) == ragv1alpha1.AuthToken; got != want {
				t.Errorf("API token file set = %v, want %v", got, want)
			}
			// The collection the server derives is valid for Chroma and
			// unique per namespace and name.
			name := ragserver.CollectionName(cfg.ChromaCollection, cfg.EmbeddingModel)
			if err := validChromaName(name); err != nil {
				t.Error(err)
			}
			if !strings.HasPrefix(name, rs.Namespace+"."+rs.Name) {
				t.Errorf("collection %q does not start with namespace.name", name)
			}
		})
	}
}

// TestTracingEnvironmentLoadsInTheServer crosses the contract for
// spec.server.tracing: the endpoint the operator sets is the one the server
// exports to (with the OTLP/HTTP traces path), under the RagService's name;
// without tracing the server gets no OpenTelemetry variable and stays off.
func TestTracingEnvironmentLoadsInTheServer(t *testing.T) {
	envOf := func(rs *ragv1alpha1.RagService) map[string]string {
		d := typed[appsv1.Deployment](t, ServerDeployment(rs, ServerInputs{Image: "ragops/ragserver:0.1.0", InputsHash: "abc"}))
		env := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		return env
	}
	for _, endpoint := range []string{"http://otel-collector.observability.svc:4318", "https://otlp.example:443/", "http://[fd00::1]:4318"} {
		rs := newRagService(func(rs *ragv1alpha1.RagService) {
			rs.Spec.Server.Tracing = &ragv1alpha1.TracingSpec{OTLPEndpoint: endpoint}
		})
		env := envOf(rs)
		got, err := ragserver.TracesEndpoint(func(k string) string { return env[k] })
		if want := strings.TrimRight(endpoint, "/") + "/v1/traces"; err != nil || got != want {
			t.Errorf("%s: the server exports to %q (%v), want %q", endpoint, got, err, want)
		}
		if env[contract.EnvOTelServiceName] != rs.Name {
			t.Errorf("%s: service name %q, want %q", endpoint, env[contract.EnvOTelServiceName], rs.Name)
		}
	}
	env := envOf(newRagService(func(*ragv1alpha1.RagService) {}))
	for k := range env {
		if strings.HasPrefix(k, "OTEL_") {
			t.Errorf("without spec.server.tracing the server gets %s=%q", k, env[k])
		}
	}
	if got, err := ragserver.TracesEndpoint(func(k string) string { return env[k] }); got != "" || err != nil {
		t.Errorf("without spec.server.tracing the server traces to %q (%v)", got, err)
	}
}

// validChromaName is Chroma's rule (see chromastore.ValidCollectionName).
func validChromaName(name string) error {
	if len(name) < 3 || len(name) > 512 {
		return fmt.Errorf("collection %q: 3 to 512 characters", name)
	}
	alnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' }
	for i := 0; i < len(name); i++ {
		if b := name[i]; !alnum(b) && b != '.' && b != '_' && b != '-' {
			return fmt.Errorf("collection %q: invalid character %q", name, b)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return fmt.Errorf("collection %q must start and end with a letter or digit", name)
	}
	return nil
}

// TestServerRollout: a rollout surges and never goes below the desired
// ready pods, and the grace period covers the drain and the shutdown.
func TestServerRollout(t *testing.T) {
	d := typed[appsv1.Deployment](t, ServerDeployment(newRagService(), ServerInputs{Image: "ragops/ragserver:0.1.0"}))
	st := d.Spec.Strategy
	if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil ||
		st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.IntValue() != 0 ||
		st.RollingUpdate.MaxSurge == nil || st.RollingUpdate.MaxSurge.IntValue() < 1 {
		t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0 and a surge", st)
	}
	env := envMap(d.Spec.Template.Spec.Containers[0])
	drain, err1 := time.ParseDuration(env[contract.EnvDrainPeriod])
	shutdown, err2 := time.ParseDuration(env[contract.EnvShutdownTimeout])
	if err1 != nil || err2 != nil || drain <= 0 || shutdown <= 0 {
		t.Fatalf("DRAIN_PERIOD=%q SHUTDOWN_TIMEOUT=%q", env[contract.EnvDrainPeriod], env[contract.EnvShutdownTimeout])
	}
	grace := time.Duration(ptr.Deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil || grace <= drain+shutdown {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than drain %v + shutdown %v", grace, drain, shutdown)
	}
}

// TestAuthAndNetworkPolicy: by default the server reads the generated token;
// a user Secret replaces it; Disabled removes the requirement. The
// NetworkPolicy admits the namespace and the allowed namespaces on the port.
func TestAuthAndNetworkPolicy(t *testing.T) {
	tokenMount := func(rs *ragv1alpha1.RagService) (secret, key, file string) {
		d := typed[appsv1.Deployment](t, ServerDeployment(rs, ServerInputs{Image: "ragops/ragserver:0.1.0"}))
		pod := d.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.Secret != nil && len(v.Secret.Items) == 1 && v.Secret.Items[0].Path == "token" {
				secret, key = v.Secret.SecretName, v.Secret.Items[0].Key
			}
		}
		return secret, key, envMap(pod.Containers[0])[contract.EnvAPITokenFile]
	}
	if s, k, f := tokenMount(newRagService()); s != "docs-api-token" || k != "token" || f != APITokenFile {
		t.Errorf("default auth: Secret %q key %q file %q, want docs-api-token/token at %s", s, k, f, APITokenFile)
	}
	own := newRagService(func(rs *ragv1alpha1.RagService) {
		rs.Spec.Auth.SecretRef = &ragv1alpha1.TokenSecretReference{Name: "my-token", Key: "bearer"}
	})
	if s, k, f := tokenMount(own); s != "my-token" || k != "bearer" || f != APITokenFile || GeneratesAPIToken(own) {
		t.Errorf("user Secret: Secret %q key %q file %q", s, k, f)
	}
	off := newRagService(func(rs *ragv1alpha1.RagService) { rs.Spec.Auth.Mode = ragv1alpha1.AuthDisabled })
	if s, _, f := tokenMount(off); s != "" || f != "" || GeneratesAPIToken(off) {
		t.Errorf("auth disabled: Secret %q file %q, want neither", s, f)
	}

	secret := typed[corev1.Secret](t, APITokenSecret(newRagService(), "abc"))
	assertOwned(t, secret.OwnerReferences)
	assertLabels(t, secret.Labels, ComponentServer)
	if secret.Name != "docs-api-token" || string(secret.Data["token"]) != "abc" {
		t.Errorf("token Secret = %s %v", secret.Name, secret.Data)
	}

	rs := newRagService(func(rs *ragv1alpha1.RagService) {
		rs.Spec.Server.Port = 9000
		rs.Spec.Server.AllowedNamespaces = []string{"ingress-nginx", "apps"}
	})
	np := typed[networkingv1.NetworkPolicy](t, ServerNetworkPolicy(rs))
	assertOwned(t, np.OwnerReferences)
	if np.Name != "docs" || np.Spec.PodSelector.MatchLabels[LabelComponent] != ComponentServer || len(np.Spec.Ingress) != 1 {
		t.Fatalf("NetworkPolicy = %+v", np)
	}
	in := np.Spec.Ingress[0]
	if len(in.Ports) != 1 || in.Ports[0].Port.IntValue() != 9000 {
		t.Errorf("ports = %+v, want 9000", in.Ports)
	}
	if len(in.From) != 2 || in.From[0].PodSelector == nil || len(in.From[0].PodSelector.MatchLabels) != 0 || in.From[0].NamespaceSelector != nil {
		t.Fatalf("from = %+v, want every pod of the namespace, then the allowed namespaces", in.From)
	}
	if sel := in.From[1].NamespaceSelector; sel == nil || len(sel.MatchExpressions) != 1 ||
		sel.MatchExpressions[0].Key != corev1.LabelMetadataName || strings.Join(sel.MatchExpressions[0].Values, ",") != "ingress-nginx,apps" {
		t.Errorf("namespace selector = %+v", in.From[1].NamespaceSelector)
	}
	if only := typed[networkingv1.NetworkPolicy](t, ServerNetworkPolicy(newRagService())); len(only.Spec.Ingress[0].From) != 1 {
		t.Errorf("without allowedNamespaces: from = %+v, want the namespace only", only.Spec.Ingress[0].From)
	}
}

// TestRetrievalModeAndRerankCrossTheContract: every retrieval mode of the
// API, its default, and the reranker's settings at their bounds reach the
// server's configuration unchanged.
func TestRetrievalModeAndRerankCrossTheContract(t *testing.T) {
	for _, mode := range append([]string{""}, contract.RetrievalModes...) {
		t.Run("mode "+cmpOr(mode, "unset"), func(t *testing.T) {
			rs := newRagService(func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval.Mode = mode })
			cfg, err := serverConfig(t, rs)
			if err != nil {
				t.Fatalf("the server refuses the operator's environment: %v", err)
			}
			if want := cmpOr(mode, contract.DefaultRetrievalMode); cfg.RetrievalMode != want {
				t.Errorf("server retrieval mode %q, want %q", cfg.RetrievalMode, want)
			}
			if cfg.RerankBaseURL != "" {
				t.Errorf("reranker %q configured without spec.retrieval.rerank", cfg.RerankBaseURL)
			}
		})
	}
	for _, topN := range []*int32{nil, ptr.To(int32(contract.MinRerankTopN)), ptr.To(int32(contract.MaxRerankTopN))} {
		want := contract.DefaultRerankTopN
		if topN != nil {
			want = int(*topN)
		}
		t.Run(fmt.Sprintf("rerank topN %d", want), func(t *testing.T) {
			rs := newRagService(func(rs *ragv1alpha1.RagService) {
				rs.Spec.Retrieval.Rerank = &ragv1alpha1.RerankSpec{BaseURL: "http://tei.llm.svc:8080/v1", Model: "bge-reranker-v2-m3", TopN: topN}
			})
			cfg, err := serverConfig(t, rs)
			if err != nil {
				t.Fatalf("the server refuses the operator's environment: %v", err)
			}
			if cfg.RerankBaseURL != "http://tei.llm.svc:8080/v1" || cfg.RerankModel != "bge-reranker-v2-m3" || cfg.RerankTopN != want {
				t.Errorf("server reranker %q %q %d, want the spec's with topN %d", cfg.RerankBaseURL, cfg.RerankModel, cfg.RerankTopN, want)
			}
		})
	}
}
