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
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/ragserver"
)

func withSources(rs *ragv1alpha1.RagService) {
	rs.Spec.Documents = &ragv1alpha1.DocumentsSource{
		ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"},
		Schedule:     "@daily",
		Sources: []ragv1alpha1.DocumentSource{
			{Name: "wiki", Git: &ragv1alpha1.GitSource{URL: "https://git.example/wiki.git", SecretRef: &ragv1alpha1.LocalSecretReference{Name: "creds"}}},
			{Name: "reports", S3: &ragv1alpha1.S3Source{Endpoint: "http://minio:9000", Bucket: "reports", SecretRef: &ragv1alpha1.LocalSecretReference{Name: "creds"}}},
			{Name: "faq", HTTP: &ragv1alpha1.HTTPSource{URLs: []string{"https://docs.example/faq.md"}, HeadersSecretRef: &ragv1alpha1.LocalSecretReference{Name: "headers"}}},
			{Name: "exports", PVC: &ragv1alpha1.PVCSource{ClaimName: "pipeline", Path: "out/"}},
			{Name: "policies", ConfigMap: &ragv1alpha1.ConfigMapReference{Name: "policies"}},
			{Name: "public", Git: &ragv1alpha1.GitSource{URL: "https://git.example/public.git"}},
		},
	}
}

func TestIndexerJob(t *testing.T) {
	rs := newRagService(withSources)
	job := typed[batchv1.Job](t, IndexerJob(rs, IndexerInputs{Image: "ragops/ragserver:0.2.0", CollectionOwner: "uid-1", SourcesHash: "h", Run: "h", Attempt: 2}))
	assertOwned(t, job.OwnerReferences)
	assertLabels(t, job.Labels, ComponentIndexer)
	assertLabels(t, job.Spec.Template.Labels, ComponentIndexer)
	if job.Name != IndexJobName(rs, "h", 2) || job.Annotations[IndexAttemptAnnotation] != "2" || job.Annotations[SourcesHashAnnotation] != "h" {
		t.Errorf("name %s, annotations %v", job.Name, job.Annotations)
	}
	if ptr.Deref(job.Spec.BackoffLimit, -1) != IndexerBackoffLimit || ptr.Deref(job.Spec.TTLSecondsAfterFinished, -1) != IndexerTTLSeconds ||
		ptr.Deref(job.Spec.ActiveDeadlineSeconds, -1) != IndexerActiveDeadlineSeconds {
		t.Errorf("job spec = %+v", job.Spec)
	}
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("resources = %+v, want IndexerResources", c.Resources)
	}

	// Each object once, though two sources share the Secret creds; the
	// public repository mounts nothing.
	objs := IndexSourceObjects(rs)
	if !slices.Equal(objs.Secrets, []string{"creds", "headers"}) || !slices.Equal(objs.PVCs, []string{"pipeline"}) ||
		!slices.Equal(objs.ConfigMaps, []string{"handbook", "policies"}) {
		t.Errorf("source objects = %+v", objs)
	}
	got := map[string]string{}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			t.Errorf("volume name %q: %v", v.Name, errs)
		}
	}
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		switch {
		case v.Secret != nil:
			got[m.MountPath] = "secret " + v.Secret.SecretName
		case v.ConfigMap != nil:
			got[m.MountPath] = "configmap " + v.ConfigMap.Name
		case v.PersistentVolumeClaim != nil:
			got[m.MountPath] = "pvc " + v.PersistentVolumeClaim.ClaimName + " " + m.SubPath
		}
	}
	dir := func(source, kind string) string { return filepath.Join(contract.SourcesMountDir, source, kind) }
	want := map[string]string{
		dir("configmap", contract.SourceConfigMapDir): "configmap handbook",
		dir("wiki", contract.SourceSecretDir):         "secret creds",
		dir("reports", contract.SourceSecretDir):      "secret creds",
		dir("faq", contract.SourceSecretDir):          "secret headers",
		dir("exports", contract.SourceVolumeDir):      "pvc pipeline out",
		dir("policies", contract.SourceConfigMapDir):  "configmap policies",
	}
	if len(got) != len(want) {
		t.Errorf("mounts = %v\nwant %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("mount %s = %q, want %q", k, got[k], v)
		}
	}
}

// TestIndexerEnvironmentLoadsInTheServer crosses the contract: the
// indexer's environment, without its sources, is a configuration the
// server's own loader accepts with the same store and model settings as the
// server's, and RAGOPS_SOURCES decodes into the API's DocumentsSource.
func TestIndexerEnvironmentLoadsInTheServer(t *testing.T) {
	rs := newRagService(withSources)
	job := typed[batchv1.Job](t, IndexerJob(rs, IndexerInputs{Image: "i:1", CollectionOwner: "uid-1", Run: "h", Attempt: 1}))
	env := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "sk-from-secret"
		}
	}
	var sources ragv1alpha1.DocumentsSource
	dec := json.NewDecoder(strings.NewReader(env[contract.EnvSources]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sources); err != nil {
		t.Fatalf("RAGOPS_SOURCES: %v", err)
	}
	if sources.ConfigMapRef != nil || sources.Sources[0].Name != contract.ConfigMapSourceName || len(sources.Sources) != 7 {
		t.Errorf("RAGOPS_SOURCES = %s", env[contract.EnvSources])
	}
	cfg, err := ragserver.LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("the server's loader refuses the indexer's environment: %v", err)
	}
	server, err := serverConfig(t, rs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChromaURL != server.ChromaURL || cfg.ChromaCollection != server.ChromaCollection || cfg.Owner != server.Owner ||
		cfg.EmbeddingModel != server.EmbeddingModel || cfg.ChunkSize != server.ChunkSize || cfg.ChunkOverlap != server.ChunkOverlap {
		t.Errorf("indexer config %+v\ndiffers from the server's %+v", cfg, server)
	}
}

func TestSourcesHash(t *testing.T) {
	rs := newRagService(withSources)
	revs := map[string]string{"configmap": "10", "policies": "11"}
	base := SourcesHash(rs, "uid-1", revs)
	same := map[string]func(*ragv1alpha1.RagService){
		"schedule":     func(rs *ragv1alpha1.RagService) { rs.Spec.Documents.Schedule = "@hourly" },
		"replicas":     func(rs *ragv1alpha1.RagService) { rs.Spec.Replicas = ptr.To[int32](3) },
		"server image": func(rs *ragv1alpha1.RagService) { rs.Spec.Server.Image = "ragops/ragserver:9.9.9" },
		"topK":         func(rs *ragv1alpha1.RagService) { rs.Spec.Retrieval.TopK = ptr.To[int32](9) },
	}
	for name, m := range same {
		if h := SourcesHash(newRagService(withSources, m), "uid-1", revs); h != base {
			t.Errorf("%s changed the sources hash", name)
		}
	}
	differ := map[string]string{
		"ConfigMap revision": SourcesHash(rs, "uid-1", map[string]string{"configmap": "12", "policies": "11"}),
		"collection owner":   SourcesHash(rs, "uid-2", revs),
		"include": SourcesHash(newRagService(withSources, func(rs *ragv1alpha1.RagService) {
			rs.Spec.Documents.Include = []string{"*.md"}
		}), "uid-1", revs),
		"git ref": SourcesHash(newRagService(withSources, func(rs *ragv1alpha1.RagService) {
			rs.Spec.Documents.Sources[0].Git.Ref = "v2"
		}), "uid-1", revs),
		"chunk size": SourcesHash(newRagService(withSources, func(rs *ragv1alpha1.RagService) {
			rs.Spec.Retrieval.ChunkSize = ptr.To[int32](500)
		}), "uid-1", revs),
		"embedding model": SourcesHash(newRagService(withSources, func(rs *ragv1alpha1.RagService) {
			rs.Spec.EmbeddingModel = "other"
		}), "uid-1", revs),
	}
	for name, h := range differ {
		if h == base {
			t.Errorf("%s did not change the sources hash", name)
		}
	}
	if SourcesHash(newRagService(), "uid-1", nil) != "" {
		t.Error("a RagService without documents has a sources hash")
	}
}

func TestIndexJobName(t *testing.T) {
	rs := newRagService(func(rs *ragv1alpha1.RagService) { rs.Name = "a" + strings.Repeat("b", 49) })
	names := map[string]bool{}
	for _, run := range []string{"h1", "h2", "h1@2026-01-01T00:00:00Z"} {
		for attempt := 1; attempt <= 3; attempt++ {
			name := IndexJobName(rs, run, attempt)
			// The Job's name is a label value on its pods.
			if errs := validation.IsValidLabelValue(name); len(errs) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
				t.Errorf("%q: %v", name, errs)
			}
			if IndexJobName(rs, run, attempt) != name {
				t.Errorf("%q is not deterministic", name)
			}
			names[name] = true
		}
	}
	if len(names) != 9 {
		t.Errorf("%d distinct names for 9 attempts", len(names))
	}
}
