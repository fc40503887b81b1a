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
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// validSpec is the smallest valid spec; every invalid case patches it.
const validSpec = `
model: gpt-4o-mini
embeddingModel: text-embedding-3-small
secretRef: {name: openai}
`

// merge deep-merges patch into base; a null in patch deletes the key.
func merge(base, patch map[string]any) map[string]any {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(base, k)
		case map[string]any:
			if bv, ok := base[k].(map[string]any); ok {
				base[k] = merge(bv, pv)
			} else {
				base[k] = pv
			}
		default:
			base[k] = v
		}
	}
	return base
}

func ragServiceFromYAML(t *testing.T, ns, name, specPatch string) *unstructured.Unstructured {
	t.Helper()
	spec, patch := map[string]any{}, map[string]any{}
	if err := yaml.Unmarshal([]byte(validSpec), &spec); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(specPatch), &patch); err != nil {
		t.Fatalf("bad patch %q: %v", specPatch, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ragv1alpha1.GroupVersion.String(),
		"kind":       "RagService",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       merge(spec, patch),
	}}
	return u
}

// TestInvalidRagServicesAreRejected is the catalogue of RagServices the API
// server must refuse, each with a message that tells the user what to fix.
func TestInvalidRagServicesAreRejected(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name  string
		obj   string // metadata.name, default "invalid"
		patch string
		want  string
		// blocking: a missing, unsupported or too long value, after which
		// the API server skips the CEL rules and says so (its own line,
		// which no schema can avoid).
		blocking bool
	}{
		{name: "empty model", patch: `model: ""`, want: "spec.model: Invalid value: \"\": spec.model in body should be at least 1 chars long"},
		{name: "missing model", patch: `model: null`, want: "spec.model: Required value", blocking: true},
		{name: "model with spaces", patch: `model: "gpt 4o"`, want: "spec.model in body should match"},
		{name: "missing embedding model", patch: `embeddingModel: null`, want: "spec.embeddingModel: Required value", blocking: true},
		{name: "negative replicas", patch: `replicas: -1`, want: "spec.replicas in body should be greater than or equal to 0"},
		{name: "too many replicas", patch: `replicas: 101`, want: "spec.replicas in body should be less than or equal to 100"},
		{name: "no key and no base URL", patch: `secretRef: null`, want: "secretRef is required unless baseURL points to a keyless OpenAI-compatible server"},
		{name: "secretRef without name", patch: `secretRef: {name: null, key: token}`, want: "spec.secretRef.name: Required value", blocking: true},
		{name: "secretRef with an invalid name", patch: `secretRef: {name: Open_AI}`, want: "spec.secretRef.name in body should match"},
		{name: "secretRef with an invalid key", patch: `secretRef: {name: openai, key: "a/b"}`, want: "spec.secretRef.key in body should match"},
		{name: "base URL is not a URL", patch: `baseURL: "not a url"`, want: "baseURL must be an absolute http or https URL"},
		{name: "base URL with another scheme", patch: `baseURL: "ftp://models.example/v1"`, want: "baseURL must be an absolute http or https URL"},
		{name: "relative embedding base URL", patch: `embeddingBaseURL: "/v1"`, want: "embeddingBaseURL must be an absolute http or https URL"},
		{name: "OTLP endpoint without a scheme", patch: `server: {tracing: {otlpEndpoint: "otel-collector:4318"}}`, want: "server.tracing.otlpEndpoint must be an absolute http or https URL"},
		{name: "OTLP endpoint over gRPC", patch: `server: {tracing: {otlpEndpoint: "grpc://otel-collector:4317"}}`, want: "server.tracing.otlpEndpoint must be an absolute http or https URL"},
		{name: "tracing without an endpoint", patch: `server: {tracing: {}}`, want: "spec.server.tracing.otlpEndpoint: Required value", blocking: true},
		{name: "documents without a ConfigMap or a source", patch: `documents: {}`, want: "documents needs configMapRef or at least one entry in sources"},
		{name: "documents with an empty source list", patch: `documents: {sources: []}`, want: "documents needs configMapRef or at least one entry in sources"},
		{name: "source with two kinds", patch: `documents: {sources: [{name: a, git: {url: "https://example.com/r.git"}, http: {urls: ["https://example.com/a.txt"]}}]}`, want: "a source sets exactly one of git, http, s3, pvc and configMap"},
		{name: "source with no kind", patch: `documents: {sources: [{name: a}]}`, want: "a source sets exactly one of git, http, s3, pvc and configMap"},
		{name: "source named configmap", patch: `documents: {sources: [{name: configmap, configMap: {name: docs}}]}`, want: "the source name configmap is reserved for documents.configMapRef"},
		{name: "source name not a DNS label", patch: `documents: {sources: [{name: Docs_1, configMap: {name: docs}}]}`, want: "spec.documents.sources[0].name in body should match"},
		{name: "duplicate source names", patch: `documents: {sources: [{name: a, configMap: {name: docs1}}, {name: a, configMap: {name: docs2}}]}`, want: "spec.documents.sources[1]: Duplicate value"},
		{name: "git URL without a host", patch: `documents: {sources: [{name: a, git: {url: "file:///etc"}}]}`, want: "spec.documents.sources[0].git.url in body should match"},
		{name: "git ref with a space", patch: `documents: {sources: [{name: a, git: {url: "https://example.com/r.git", ref: "main branch"}}]}`, want: "spec.documents.sources[0].git.ref in body should match"},
		{name: "http URL not http", patch: `documents: {sources: [{name: a, http: {urls: ["ftp://example.com/a.txt"]}}]}`, want: "spec.documents.sources[0].http.urls[0] in body should match"},
		{name: "http without URLs", patch: `documents: {sources: [{name: a, http: {urls: []}}]}`, want: "spec.documents.sources[0].http.urls: Invalid value"},
		{name: "s3 endpoint with a path", patch: `documents: {sources: [{name: a, s3: {endpoint: "https://s3.example.com/bucket", bucket: docs}}]}`, want: "spec.documents.sources[0].s3.endpoint in body should match"},
		{name: "s3 bucket not a bucket name", patch: `documents: {sources: [{name: a, s3: {endpoint: "https://s3.example.com", bucket: "My_Bucket"}}]}`, want: "spec.documents.sources[0].s3.bucket in body should match"},
		{name: "pvc path absolute", patch: `documents: {sources: [{name: a, pvc: {claimName: data, path: "/etc"}}]}`, want: "spec.documents.sources[0].pvc.path in body should match"},
		{name: "pvc path escapes", patch: `documents: {sources: [{name: a, pvc: {claimName: data, path: "docs/../../etc"}}]}`, want: "spec.documents.sources[0].pvc.path in body should match"},
		{name: "empty schedule", patch: `documents: {configMapRef: {name: docs}, schedule: ""}`, want: "spec.documents.schedule in body should be at least 1 chars long"},
		{name: "schedule in words", patch: `documents: {configMapRef: {name: docs}, schedule: "every five minutes"}`, want: "documents.schedule must be five cron fields (minute hour day-of-month month day-of-week, e.g. */15 * * * *) or a descriptor"},
		{name: "schedule with six fields", patch: `documents: {configMapRef: {name: docs}, schedule: "0 */5 * * * *"}`, want: "documents.schedule must be five cron fields"},
		{name: "both external and chroma", patch: `vectorStore: {chroma: {}, external: {url: "http://chroma:8000"}}`, want: "exactly one of vectorStore.chroma and vectorStore.external must be set"},
		{name: "neither external nor chroma", patch: `vectorStore: {}`, want: "exactly one of vectorStore.chroma and vectorStore.external must be set"},
		{name: "external URL is not a URL", patch: `vectorStore: {external: {url: "chroma:8000"}}`, want: "vectorStore.external.url must be an absolute http or https URL"},
		{name: "bad quantity", patch: `vectorStore: {chroma: {storage: {size: lots}}}`, want: "spec.vectorStore.chroma.storage.size"},
		{name: "zero storage", patch: `vectorStore: {chroma: {storage: {size: "0"}}}`, want: "storage.size must be greater than zero"},
		{name: "unknown retention policy", patch: `vectorStore: {chroma: {retentionPolicy: Keep}}`, want: `spec.vectorStore.chroma.retentionPolicy: Unsupported value: "Keep"`, blocking: true},
		{name: "chroma image latest", patch: `vectorStore: {chroma: {image: "chromadb/chroma:latest"}}`, want: "image must be pinned: the latest tag is not allowed"},
		{name: "chroma image without tag", patch: `vectorStore: {chroma: {image: "chromadb/chroma"}}`, want: "image must carry a tag or a digest"},
		{name: "server image latest", patch: `server: {image: "ragops/ragserver:latest"}`, want: "image must be pinned: the latest tag is not allowed"},
		{name: "privileged server port", patch: `server: {port: 80}`, want: "spec.server.port in body should be greater than or equal to 1024"},
		{name: "bad resource quantity", patch: `server: {resources: {limits: {memory: "a lot"}}}`, want: "spec.server.resources.limits.memory"},
		{name: "topK zero", patch: `retrieval: {topK: 0}`, want: "spec.retrieval.topK in body should be greater than or equal to 1"},
		{name: "overlap not below chunk size", patch: `retrieval: {chunkSize: 500, chunkOverlap: 500}`, want: "retrieval.chunkOverlap must be less than retrieval.chunkSize"},
		{name: "overlap above default chunk size", patch: `retrieval: {chunkOverlap: 5000}`, want: "retrieval.chunkOverlap must be less than retrieval.chunkSize"},
		{name: "unknown retrieval mode", patch: `retrieval: {mode: semantic}`, want: `spec.retrieval.mode: Unsupported value: "semantic": supported values: "vector", "lexical", "hybrid"`, blocking: true},
		{name: "rerank base URL is not a URL", patch: `retrieval: {rerank: {baseURL: "tei:8080", model: m}}`, want: "retrieval.rerank.baseURL must be an absolute http or https URL"},
		{name: "rerank without a model", patch: `retrieval: {rerank: {baseURL: "http://tei:8080/v1"}}`, want: "spec.retrieval.rerank.model: Required value", blocking: true},
		{name: "rerank topN above the server's maximum", patch: `retrieval: {rerank: {baseURL: "http://tei:8080/v1", model: m, topN: 101}}`, want: "spec.retrieval.rerank.topN in body should be less than or equal to 100"},
		{name: "name too long for its Services", obj: strings.Repeat("a", 51), want: "metadata.name must be a DNS-1035 label of at most 50 characters"},
		{name: "name not a DNS-1035 label", obj: "1rag", want: "metadata.name must be a DNS-1035 label"},

		// What the API accepted although the cluster or the server could
		// not run it (issue 9).
		{name: "topK above the server's maximum", patch: `retrieval: {topK: 51}`, want: "spec.retrieval.topK in body should be less than or equal to 50"},
		{name: "chunk size below the server's minimum", patch: `retrieval: {chunkSize: 49}`, want: "spec.retrieval.chunkSize in body should be greater than or equal to 50"},
		{name: "upper-case storage class", patch: `vectorStore: {chroma: {storage: {storageClassName: Fast-SSD}}}`, want: "storage.storageClassName must be a lower-case DNS-1123 subdomain"},
		{name: "secret key ..", patch: `secretRef: {name: openai, key: ".."}`, want: "secretRef.key must be a valid Secret key"},

		// spec.autoscaling and spec.monitoring (issue 14).
		{name: "autoscaling min above max", patch: `autoscaling: {minReplicas: 4, maxReplicas: 3, targetCPUUtilizationPercentage: 60}`, want: "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"},
		{name: "autoscaling without a target", patch: `autoscaling: {maxReplicas: 3}`, want: "autoscaling needs at least one target: targetCPUUtilizationPercentage or targetRequestsInFlight"},
		{name: "autoscaling without max", patch: `autoscaling: {targetCPUUtilizationPercentage: 60}`, want: "spec.autoscaling.maxReplicas: Required value", blocking: true},
		{name: "autoscaling min zero", patch: `autoscaling: {minReplicas: 0, maxReplicas: 3, targetCPUUtilizationPercentage: 60}`, want: "spec.autoscaling.minReplicas in body should be greater than or equal to 1"},
		{name: "autoscaling max above 100", patch: `autoscaling: {maxReplicas: 101, targetCPUUtilizationPercentage: 60}`, want: "spec.autoscaling.maxReplicas in body should be less than or equal to 100"},
		{name: "autoscaling cpu target zero", patch: `autoscaling: {maxReplicas: 3, targetCPUUtilizationPercentage: 0}`, want: "spec.autoscaling.targetCPUUtilizationPercentage in body should be greater than or equal to 1"},
		{name: "autoscaling in-flight target zero", patch: `autoscaling: {maxReplicas: 3, targetRequestsInFlight: 0}`, want: "spec.autoscaling.targetRequestsInFlight in body should be greater than or equal to 1"},
		{name: "autoscaling negative stabilisation", patch: `autoscaling: {maxReplicas: 3, targetCPUUtilizationPercentage: 60, scaleDownStabilizationSeconds: -1}`, want: "spec.autoscaling.scaleDownStabilizationSeconds in body should be greater than or equal to 0"},
		{name: "autoscaling stabilisation above an hour", patch: `autoscaling: {maxReplicas: 3, targetCPUUtilizationPercentage: 60, scaleDownStabilizationSeconds: 3601}`, want: "spec.autoscaling.scaleDownStabilizationSeconds in body should be less than or equal to 3600"},
		{name: "autoscaling with zero replicas", patch: `{replicas: 0, autoscaling: {maxReplicas: 3, targetCPUUtilizationPercentage: 60}}`, want: "replicas must be at least 1 while autoscaling is set"},
		{name: "monitoring interval not a duration", patch: `monitoring: {enabled: true, interval: "half a minute"}`, want: "spec.monitoring.interval in body should match"},
		{name: "secret key .", patch: `secretRef: {name: openai, key: "."}`, want: "secretRef.key must be a valid Secret key"},
		{name: "token secret key ..", patch: `auth: {secretRef: {name: tok, key: "..a"}}`, want: "auth.secretRef.key must be a valid Secret key"},
		{name: "limit below request", patch: `server: {resources: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}}`, want: "resources: the memory limit must be at least the memory request"},
		{name: "cpu limit below request", patch: `vectorStore: {chroma: {resources: {requests: {cpu: "2"}, limits: {cpu: 500m}}}}`, want: "resources: the cpu limit must be at least the cpu request"},
		{name: "negative cpu", patch: `server: {resources: {requests: {cpu: "-1"}}}`, want: "resources.requests must not be negative"},
		{name: "negative chroma limit", patch: `vectorStore: {chroma: {resources: {limits: {memory: "-1Gi"}}}}`, want: "resources.limits must not be negative"},
		{name: "unknown resource name", patch: `server: {resources: {limits: {gpu: "1"}}}`, want: "only cpu, memory, ephemeral-storage and hugepages-<size> are supported"},
		{name: "image with a trailing space", patch: `server: {image: "ragops/ragserver:0.1.0 "}`, want: "image must be a valid image reference"},
		{name: "image with a leading space", patch: `vectorStore: {chroma: {image: " chromadb/chroma:1.0.0"}}`, want: "image must be a valid image reference"},
		{name: "image with upper case", patch: `vectorStore: {chroma: {image: "ChromaDB/chroma:1.0.0"}}`, want: "image must be a valid image reference"},
		{name: "image with a short digest", patch: `server: {image: "ragops/ragserver@sha256:0123abcd"}`, want: "image must be a valid image reference"},
		{name: "fractional storage size", patch: `vectorStore: {chroma: {storage: {size: 500m}}}`, want: "storage.size must be a whole number of bytes"},
		{name: "model of no-break spaces", patch: "model: \"\u00a0\u00a0\"", want: "spec.model in body should match"},
		{name: "embedding model of ideographic spaces", patch: "embeddingModel: \"\u3000\"", want: "spec.embeddingModel in body should match"},
		{name: "model with a trailing no-break space", patch: "model: \"gpt-4o\u00a0\"", want: "spec.model in body should match"},
		{name: "unknown auth mode", patch: `auth: {mode: None}`, want: `spec.auth.mode: Unsupported value: "None"`, blocking: true},
		{name: "token secret with auth disabled", patch: `auth: {mode: Disabled, secretRef: {name: tok}}`, want: "auth.secretRef is only allowed with auth.mode Token"},
		{name: "allowed namespace not a label", patch: `server: {allowedNamespaces: ["Ingress_NGINX"]}`, want: "spec.server.allowedNamespaces[0] in body should match"},
	}
	if len(tests) < 20 {
		t.Fatalf("the catalogue has %d cases, want at least 20", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.obj
			if name == "" {
				name = "invalid"
			}
			err := k8sClient.Create(context.Background(), ragServiceFromYAML(t, ns, name, tt.patch))
			if err == nil {
				t.Fatalf("the API server accepted it")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("error is not Invalid: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.want)
			}
			// One clear line: no CEL rule left unchecked for want of type
			// or cost bounds, no runtime error of a rule.
			for _, noise := range []string{"some validation rules were not checked", "accessor error", "<nil>: Invalid value: null", "no such key", "exceeded budget", "estimated rule cost", "evaluating rule", "quantities must match"} {
				if strings.Contains(err.Error(), noise) && !tt.blocking {
					t.Errorf("message %q carries noise %q", err.Error(), noise)
				}
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestInvalidUpdatesAreRejected covers the rules that compare an update with
// the stored object.
func TestInvalidUpdatesAreRejected(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	u := ragServiceFromYAML(t, ns, "volume", `vectorStore: {chroma: {storage: {size: 2Gi, storageClassName: standard}}}`)
	if err := k8sClient.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		set  func(storage map[string]any)
		want string
	}{
		{"storage class changed", func(s map[string]any) { s["storageClassName"] = "fast" }, "storageClassName is immutable"},
		{"storage class removed", func(s map[string]any) { delete(s, "storageClassName") }, "storageClassName is immutable"},
		{"volume shrunk", func(s map[string]any) { s["size"] = "1Gi" }, "storage.size may grow but not shrink"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			// The operator writes the status meanwhile: retry conflicts.
			for err = apierrors.NewConflict(schema.GroupResource{}, "", nil); apierrors.IsConflict(err); {
				live := u.DeepCopy()
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
					t.Fatal(err)
				}
				storage, _, _ := unstructured.NestedMap(live.Object, "spec", "vectorStore", "chroma", "storage")
				tt.set(storage)
				if err := unstructured.SetNestedMap(live.Object, storage, "spec", "vectorStore", "chroma", "storage"); err != nil {
					t.Fatal(err)
				}
				err = k8sClient.Update(ctx, live)
			}
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want Invalid with %q", err, tt.want)
			}
		})
	}
}

// TestValidRagServices checks that the sample and a keyless, external,
// fully specified RagService are accepted, and that defaults are filled in.
func TestValidRagServices(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()

	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "rag_v1alpha1_ragservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sample := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &sample.Object); err != nil {
		t.Fatal(err)
	}
	sample.SetNamespace(ns)
	if err := k8sClient.Create(ctx, sample); err != nil {
		t.Fatalf("the sample is rejected: %v", err)
	}

	for i, patch := range []string{
		``,
		`{secretRef: null, baseURL: "http://ollama.llm.svc:11434/v1", embeddingBaseURL: "https://embed.example/v1"}`,
		`{vectorStore: {external: {url: "http://chroma.shared.svc:8000"}}, replicas: 0}`,
		`{server: {tracing: {otlpEndpoint: "http://otel-collector.observability.svc:4318"}}}`,
		`{vectorStore: {chroma: {image: "ragops-local/chroma:1.0.0", storage: {size: 1073741824}}}}`,
		`{server: {image: "ragops/ragserver@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}`,
		// Defaults never make a valid spec invalid: the overlap follows a
		// small chunk size.
		`{retrieval: {chunkSize: 150}}`,
		`{retrieval: {chunkSize: 50, topK: 50}}`,
		// The documented empty values.
		`{baseURL: "", server: {image: ""}, embeddingBaseURL: ""}`,
		`{vectorStore: {chroma: {image: "registry.example:5000/team/chroma:1.0.0", storage: {size: 500Mi, storageClassName: fast-ssd}, resources: {requests: {cpu: 100m, memory: 1Gi}, limits: {cpu: "2", memory: 1Gi}}}}}`,
		`{model: "qwen2.5:7b-instruct", embeddingModel: "埋め込み", server: {allowedNamespaces: [ingress-nginx], resources: {limits: {hugepages-2Mi: 1Gi}}}}`,
		`{auth: {mode: Disabled}}`,
		`{auth: {secretRef: {name: my-token}}}`,
		// Every kind of declared source.
		`{documents: {schedule: "*/15 * * * *", include: ["**/*.md"], exclude: ["drafts/**"], sources: [
			{name: handbook, git: {url: "https://git.example.com/team/handbook.git", ref: v1.2.0, paths: [docs], secretRef: {name: git-creds}}},
			{name: wiki, git: {url: "git@git.example.com:team/wiki.git"}},
			{name: policies, http: {urls: ["https://intranet.example/policies/leave.html", "http://10.0.0.7:8080/a.pdf?v=2"], headersSecretRef: {name: http-headers}}},
			{name: reports, s3: {endpoint: "http://minio.storage:9000", bucket: finance-reports, prefix: "2026/", region: eu-west-1, secretRef: {name: s3-creds}}},
			{name: exports, pvc: {claimName: pipeline-out, path: "exports/.latest"}, include: ["*.jsonl"]},
			{name: faq, configMap: {name: faq}}]}}`,
		// Every form of schedule the operator parses.
		`{documents: {configMapRef: {name: docs}, schedule: "@daily"}}`,
		`{documents: {configMapRef: {name: docs}, schedule: "@every 1h30m"}}`,
		`{documents: {configMapRef: {name: docs}, schedule: "0 6-18/2 * * MON-FRI"}}`,
	} {
		u := ragServiceFromYAML(t, ns, fmt.Sprintf("valid-%d", i), patch)
		if err := k8sClient.Create(ctx, u); err != nil {
			t.Errorf("valid case %d (%s) rejected: %v", i, patch, err)
		}
	}

	// Defaults, as the operator reads them.
	rs := get(t, &ragv1alpha1.RagService{}, ns, "valid-0")
	s := rs.Spec
	switch {
	case s.Replicas == nil || *s.Replicas != 1,
		s.SecretRef.Key != ragv1alpha1.DefaultSecretKey,
		s.VectorStore.Chroma == nil || s.VectorStore.Chroma.Image != ragv1alpha1.DefaultChromaImage,
		s.VectorStore.Chroma.Storage.Size == nil || s.VectorStore.Chroma.Storage.Size.String() != "1Gi",
		s.VectorStore.Chroma.RetentionPolicy != ragv1alpha1.RetentionRetain,
		s.Server.Port != ragv1alpha1.DefaultServerPort,
		*s.Retrieval.TopK != ragv1alpha1.DefaultTopK || *s.Retrieval.ChunkSize != ragv1alpha1.DefaultChunkSize ||
			s.Retrieval.ChunkOverlap != nil, // computed from chunkSize (contract.ChunkOverlap)
		s.Auth.Mode != ragv1alpha1.AuthToken:
		t.Errorf("defaults not applied: %+v", s)
	}
}
