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
	"strconv"

	corev1 "k8s.io/api/core/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
)

// The Jobs of a switch of embedding models (see internal/contract, "The
// switch of embedding models").
const (
	// ComponentMigrator labels the Jobs (and pods) that copy documents from
	// the previous embedding model's collection. The Chroma NetworkPolicy
	// admits them.
	ComponentMigrator = "migrator"
	// MigratorContainerName is the Job's only container.
	MigratorContainerName = "migrator"
	// MigrateRunAnnotation on a Job is the step it belongs to:
	// "<phase>:<from>><to>", see MigrateRun.
	MigrateRunAnnotation = "rag.ragops.dev/migrate-run"
)

// MigratorInputs are what the migrator Job builder needs beyond the
// RagService.
type MigratorInputs struct {
	// Image is the server image: the migrator is its "migrate" subcommand.
	Image string
	// CollectionOwner is RAGOPS_OWNER, as for the server.
	CollectionOwner string
	// Phase is contract.MigratePhaseCopy or contract.MigratePhaseFinalize.
	Phase string
	// From and To are the previous and the new embedding model.
	From, To string
	// Since is the catch-up's start in Unix seconds (finalize only).
	Since int64
	// Attempt is the attempt number of this step, from 1.
	Attempt int
}

// MigrateRun names one step of a switch: its phase and its two models.
func MigrateRun(phase, from, to string) string { return phase + ":" + from + ">" + to }

// MigratorJobName names the Job of one attempt of one step: the
// RagService's name (at most 50 characters), "-em-" and 8 hex digits of a
// digest of the step and attempt. Deterministic, like IndexJobName.
func MigratorJobName(rs *ragv1alpha1.RagService, run string, attempt int) string {
	sum := sha256.Sum256([]byte(run + "/" + strconv.Itoa(attempt)))
	return rs.Name + "-em-" + hex.EncodeToString(sum[:])[:8]
}

// MigratorJob builds the Job of one step of a switch of embedding models:
// the server's image with the "migrate" subcommand, the store settings of
// the server with the new model (the collection it fills), and the previous
// model, phase, catch-up start and keep setting. It mounts nothing but a
// scratch directory, and runs like the indexing Job (IndexerJob).
func MigratorJob(rs *ragv1alpha1.RagService, in MigratorInputs) *batchv1ac.JobApplyConfiguration {
	env := append(modelStoreEnv(rs, in.To, in.CollectionOwner), envVar(contract.EnvDataDir, DataDir))
	env = append(env, retrievalEnv(rs)...)
	env = append(env,
		envVar(contract.EnvMigrateFromModel, in.From),
		envVar(contract.EnvMigratePhase, in.Phase),
		envVar(contract.EnvKeepPreviousCollection, strconv.FormatBool(rs.Spec.VectorStore.KeepPreviousCollection)),
	)
	if in.Phase == contract.MigratePhaseFinalize {
		env = append(env, envVar(contract.EnvMigrateSince, strconv.FormatInt(in.Since, 10)))
	}
	container := corev1ac.Container().
		WithName(MigratorContainerName).
		WithImage(in.Image).
		WithArgs(contract.MigrateCommand).
		WithEnv(env...).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("tmp").WithMountPath(ScratchDir)).
		WithTerminationMessagePath(contract.IndexReportPath).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(IndexerResources.Requests).
			WithLimits(IndexerResources.Limits)).
		WithSecurityContext(restrictedContainerSecurityContext(true))
	run := MigrateRun(in.Phase, in.From, in.To)
	annotations := map[string]string{
		MigrateRunAnnotation:   run,
		IndexAttemptAnnotation: strconv.Itoa(in.Attempt),
	}
	return runOnceJob(rs, MigratorJobName(rs, run, in.Attempt), ComponentMigrator, annotations, container,
		[]*corev1ac.VolumeApplyConfiguration{corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource())})
}
