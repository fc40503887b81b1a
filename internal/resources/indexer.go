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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
)

// The indexing Job (see internal/contract, "The indexing Job").
const (
	// ComponentIndexer labels the indexing Jobs and their pods. The Chroma
	// NetworkPolicy admits pods with the indexer's selector labels.
	ComponentIndexer = "indexer"
	// IndexerContainerName is the Job's only container.
	IndexerContainerName = "indexer"

	// SourcesHashAnnotation on a Job is the SourcesHash it indexes.
	SourcesHashAnnotation = "rag.ragops.dev/sources-hash"
	// IndexRunAnnotation on a Job is the run it belongs to: the sources hash,
	// plus the schedule slot for a scheduled re-sync.
	IndexRunAnnotation = "rag.ragops.dev/index-run"
	// IndexAttemptAnnotation on a Job is its attempt number within its run
	// (1 for the first), from which the operator derives the back-off of
	// the next attempt after a failure.
	IndexAttemptAnnotation = "rag.ragops.dev/index-attempt"

	// IndexerBackoffLimit is the number of pod retries inside one Job. The
	// operator retries a failed Job itself, with an exponential back-off,
	// so the Job's own retries stay few.
	IndexerBackoffLimit int32 = 1
	// IndexerTTLSeconds: a finished Job (and its pod) is deleted an hour
	// after it finished; its outcome stays in status.index. It is longer
	// than the operator's longest back-off, so the last failed Job (which
	// carries the attempt number) is still there when the next one is due.
	IndexerTTLSeconds int32 = 3600
	// IndexerActiveDeadlineSeconds bounds one Job: a hung indexer fails
	// after six hours instead of blocking every later sync.
	IndexerActiveDeadlineSeconds int64 = 6 * 3600
)

// IndexerResources are the indexer container's requests and limits. The
// indexer streams files and embeds in batches, so its memory does not grow
// with the corpus; the limit bounds a misbehaving source.
var IndexerResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("100m"),
		corev1.ResourceMemory:           resource.MustParse("256Mi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("256Mi"),
	},
	Limits: corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("1"),
		corev1.ResourceMemory:           resource.MustParse("1Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("4Gi"),
	},
}

// IndexerInputs are what the Job builder needs beyond the RagService.
type IndexerInputs struct {
	// Image is the server image: the indexer is its "ingest" subcommand.
	Image string
	// CollectionOwner is RAGOPS_OWNER, as for the server.
	CollectionOwner string
	// SourcesHash is SourcesHash of the sources this Job indexes.
	SourcesHash string
	// Run is the run the Job belongs to (IndexRunAnnotation).
	Run string
	// Attempt is the attempt number within the run, from 1.
	Attempt int
}

// IndexSources returns spec.documents as the indexer reads it
// (contract.EnvSources): documents.configMapRef becomes the first source,
// named contract.ConfigMapSourceName. It returns nil without documents.
func IndexSources(rs *ragv1alpha1.RagService) *ragv1alpha1.DocumentsSource {
	d := rs.Spec.Documents
	if d == nil {
		return nil
	}
	out := d.DeepCopy()
	if ref := out.ConfigMapRef; ref != nil {
		out.Sources = append([]ragv1alpha1.DocumentSource{{
			Name:      contract.ConfigMapSourceName,
			ConfigMap: &ragv1alpha1.ConfigMapReference{Name: ref.Name},
		}}, out.Sources...)
		out.ConfigMapRef = nil
	}
	return out
}

// SourceObjects are the objects of the RagService's namespace that the
// indexing Job mounts: the Secrets, PersistentVolumeClaims and ConfigMaps
// its sources name, each once, in spec order.
type SourceObjects struct {
	Secrets, PVCs, ConfigMaps []string
}

// IndexSourceObjects returns the objects the indexing Job of rs needs.
func IndexSourceObjects(rs *ragv1alpha1.RagService) SourceObjects {
	var o SourceObjects
	d := IndexSources(rs)
	if d == nil {
		return o
	}
	add := func(list *[]string, name string) {
		for _, n := range *list {
			if n == name {
				return
			}
		}
		*list = append(*list, name)
	}
	for _, src := range d.Sources {
		if name := sourceSecret(src); name != "" {
			add(&o.Secrets, name)
		}
		if src.PVC != nil {
			add(&o.PVCs, src.PVC.ClaimName)
		}
		if src.ConfigMap != nil {
			add(&o.ConfigMaps, src.ConfigMap.Name)
		}
	}
	return o
}

// sourceSecret returns the Secret a source names, or "".
func sourceSecret(src ragv1alpha1.DocumentSource) string {
	switch {
	case src.Git != nil && src.Git.SecretRef != nil:
		return src.Git.SecretRef.Name
	case src.HTTP != nil && src.HTTP.HeadersSecretRef != nil:
		return src.HTTP.HeadersSecretRef.Name
	case src.S3 != nil && src.S3.SecretRef != nil:
		return src.S3.SecretRef.Name
	}
	return ""
}

// SourcesHash identifies what an indexing run reads and writes: the sources
// as the indexer gets them (without the schedule, which says when, not
// what), the content revisions the operator knows without reading the
// sources (revisions: source name to revision, the ConfigMaps'
// resourceVersions), and the settings that shape the index (embedding
// model and endpoint, chunking, store, collection owner). Two equal hashes
// mean a finished sync need not run again.
func SourcesHash(rs *ragv1alpha1.RagService, collectionOwner string, revisions map[string]string) string {
	d := IndexSources(rs)
	if d == nil {
		return ""
	}
	d.Schedule = ""
	_, chunkSize, chunkOverlap := Retrieval(rs)
	type revision struct{ Source, Revision string }
	var revs []revision
	for _, src := range d.Sources {
		if r, ok := revisions[src.Name]; ok {
			revs = append(revs, revision{src.Name, r})
		}
	}
	raw, err := json.Marshal(struct {
		Documents       *ragv1alpha1.DocumentsSource
		Revisions       []revision
		EmbeddingModel  string
		EmbeddingURL    string
		ChunkSize       int
		ChunkOverlap    int
		ChromaURL       string
		Collection      string
		CollectionOwner string
	}{d, revs, rs.Spec.EmbeddingModel, cmpOr(rs.Spec.EmbeddingBaseURL, rs.Spec.BaseURL),
		chunkSize, chunkOverlap, ChromaURL(rs), CollectionPrefix(rs), collectionOwner})
	if err != nil {
		panic(fmt.Sprintf("marshal sources: %v", err)) // cannot happen for typed structs
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:32]
}

// IndexJobName names the Job of one attempt of one run: the RagService's
// name (at most 50 characters), "-ix-" and 8 hex digits of a digest of run
// and attempt, so at most 62 characters (a Job's name is a label value on
// its pods). The name is deterministic, so a pass that works from a stale
// cache cannot start a second Job for the same attempt.
func IndexJobName(rs *ragv1alpha1.RagService, run string, attempt int) string {
	sum := sha256.Sum256([]byte(run + "/" + strconv.Itoa(attempt)))
	return rs.Name + "-ix-" + hex.EncodeToString(sum[:])[:8]
}

// IndexerJob builds the indexing Job: the server's image, store and model
// settings (the same secretKeyRef for the API key), the "ingest"
// subcommand, the sources as JSON, and read-only mounts of only the
// Secrets, PVCs and ConfigMaps the sources name. It runs once (restart
// policy Never, few retries), under the restricted Pod Security profile,
// with a read-only root file system and an emptyDir for /tmp, and is
// deleted an hour after it finishes. Its pods need no Kubernetes API access
// and serve nothing.
func IndexerJob(rs *ragv1alpha1.RagService, in IndexerInputs) *batchv1ac.JobApplyConfiguration {
	d := IndexSources(rs)
	if d == nil {
		d = &ragv1alpha1.DocumentsSource{}
	}
	sources, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("marshal sources: %v", err)) // cannot happen for a typed struct
	}

	volumes := []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
	}
	mounts := []*corev1ac.VolumeMountApplyConfiguration{
		corev1ac.VolumeMount().WithName("tmp").WithMountPath(ScratchDir),
	}
	mount := func(volume *corev1ac.VolumeApplyConfiguration, source, dir, subPath string) {
		volumes = append(volumes, volume)
		m := corev1ac.VolumeMount().WithName(*volume.Name).
			WithMountPath(path.Join(contract.SourcesMountDir, source, dir)).WithReadOnly(true)
		if subPath != "" {
			m.WithSubPath(subPath)
		}
		mounts = append(mounts, m)
	}
	for _, src := range d.Sources {
		// Volume names are DNS labels of at most 63 characters; a source
		// name is one already, so "<kind>-<index>" keeps them short.
		if name := sourceSecret(src); name != "" {
			mount(corev1ac.Volume().WithName(fmt.Sprintf("secret-%d", len(volumes))).
				WithSecret(corev1ac.SecretVolumeSource().WithSecretName(name)),
				src.Name, contract.SourceSecretDir, "")
		}
		if p := src.PVC; p != nil {
			mount(corev1ac.Volume().WithName(fmt.Sprintf("pvc-%d", len(volumes))).
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().
					WithClaimName(p.ClaimName).WithReadOnly(true)),
				src.Name, contract.SourceVolumeDir, strings.TrimSuffix(p.Path, "/"))
		}
		if c := src.ConfigMap; c != nil {
			mount(corev1ac.Volume().WithName(fmt.Sprintf("configmap-%d", len(volumes))).
				WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(c.Name)),
				src.Name, contract.SourceConfigMapDir, "")
		}
	}

	env := append(modelStoreEnv(rs, rs.Spec.EmbeddingModel, in.CollectionOwner), envVar(contract.EnvDataDir, DataDir))
	env = append(env, retrievalEnv(rs)...)
	env = append(env, envVar(contract.EnvSources, string(sources)))

	container := corev1ac.Container().
		WithName(IndexerContainerName).
		WithImage(in.Image).
		WithArgs(contract.IndexerCommand).
		WithEnv(env...).
		WithVolumeMounts(mounts...).
		WithTerminationMessagePath(contract.IndexReportPath).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(IndexerResources.Requests).
			WithLimits(IndexerResources.Limits)).
		WithSecurityContext(restrictedContainerSecurityContext(true))

	annotations := map[string]string{
		SourcesHashAnnotation:  in.SourcesHash,
		IndexRunAnnotation:     in.Run,
		IndexAttemptAnnotation: strconv.Itoa(in.Attempt),
	}
	return runOnceJob(rs, IndexJobName(rs, in.Run, in.Attempt), ComponentIndexer, annotations, container, volumes)
}

// runOnceJob wraps the container of an indexer or migrator in a Job that
// runs once (restart policy Never, few retries, a deadline, a TTL) under the
// restricted Pod Security profile, with no Kubernetes API access.
func runOnceJob(rs *ragv1alpha1.RagService, name, component string, annotations map[string]string,
	container *corev1ac.ContainerApplyConfiguration, volumes []*corev1ac.VolumeApplyConfiguration) *batchv1ac.JobApplyConfiguration {
	return batchv1ac.Job(name, rs.Namespace).
		WithLabels(Labels(rs, component)).
		WithAnnotations(annotations).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(batchv1ac.JobSpec().
			WithBackoffLimit(IndexerBackoffLimit).
			WithTTLSecondsAfterFinished(IndexerTTLSeconds).
			WithActiveDeadlineSeconds(IndexerActiveDeadlineSeconds).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(Labels(rs, component)).
				WithSpec(corev1ac.PodSpec().
					WithRestartPolicy(corev1.RestartPolicyNever).
					WithAutomountServiceAccountToken(false).
					WithEnableServiceLinks(false).
					WithSecurityContext(restrictedPodSecurityContext()).
					WithContainers(container).
					WithVolumes(volumes...))))
}
