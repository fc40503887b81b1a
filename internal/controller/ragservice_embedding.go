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
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// A switch of spec.embeddingModel from A to B, without downtime and without
// losing the documents added through the API (they live only in A's
// collection):
//
//  1. Copy. status.embedding.activeModel stays A, so the server Deployment
//     keeps A (the builder takes the model from there, not from the spec).
//     The indexing Job indexes the declared sources with B (its sources
//     hash includes the model), and a migrator Job ("ragserver migrate",
//     phase copy) copies every document of the API from A's collection to
//     B's, re-embedding the stored chunk text with B.
//  2. Cut-over. Once the migrator Job succeeded and the declared sources
//     are indexed with B, activeModel becomes B and previousModel A: the
//     Deployment rolls (maxUnavailable 0); old pods answer from A, complete,
//     until new ready pods answer from B, complete.
//  3. Finalize. Once no server pod with A is left (listed uncached, the
//     terminating ones included), a migrator Job (phase finalize) copies
//     what the old pods wrote to A since the copy started, where B has
//     nothing newer, then deletes A's collection unless
//     spec.vectorStore.keepPreviousCollection. previousModel is cleared.
//
// The one imperfect window is the cut-over's: a document deleted through
// an old pod after the copy read it is still in B (delete it again), and a
// document written through an old pod and then deleted through a new one
// comes back with the catch-up. Writes are never lost.
//
// Another switch waits for the finalize step of the last one; a switch
// back during the copy supersedes the copy Job (deleted in the foreground,
// as the indexer's) and leaves B's partial collection, which a later switch
// to B brings up to date (the copy prunes what A no longer holds).
//
// What a crash leaves: of the operator, Jobs with deterministic names and a
// status from an earlier pass, which the next pass reads again (the cut-over
// is one status write); of a migrator Job, documents of B at their previous
// or copied version, never a mix (see ragserver runMigrate), and a retry
// that copies only what is missing; of a server pod during the rollout, a
// Deployment that replaces it, the finalize step waiting until it is gone.

// rolloutRequeueAfter is how often the finalize step looks whether the last
// server pod of the previous model is gone (pods are not watched).
const rolloutRequeueAfter = 2 * time.Second

// reconcileEmbedding decides the model the server uses (s.activeModel) and
// runs the Jobs of a switch of spec.embeddingModel.
func (r *RagServiceReconciler) reconcileEmbedding(ctx context.Context, s *scope) error {
	rs := s.rs
	if rs.Status.Embedding == nil || rs.Status.Embedding.ActiveModel == "" {
		active, err := r.deployedModel(ctx, rs)
		if err != nil {
			return err
		}
		rs.Status.Embedding = &ragv1alpha1.EmbeddingStatus{ActiveModel: cmpOr(active, rs.Spec.EmbeddingModel)}
	}
	st := rs.Status.Embedding
	s.activeModel = st.ActiveModel

	var phase, from, to string
	switch {
	case st.PreviousModel != "":
		phase, from, to = contract.MigratePhaseFinalize, st.PreviousModel, st.ActiveModel
	case rs.Spec.EmbeddingModel != st.ActiveModel:
		phase, from, to = contract.MigratePhaseCopy, st.ActiveModel, rs.Spec.EmbeddingModel
	}
	run := ""
	if phase != "" {
		run = resources.MigrateRun(phase, from, to)
	}

	jobs, err := r.childJobs(ctx, rs, resources.ComponentMigrator)
	if err != nil {
		return err
	}
	var current []*batchv1.Job
	var blocking *batchv1.Job
	for i := range jobs {
		job := &jobs[i]
		switch {
		case !job.DeletionTimestamp.IsZero():
			if !jobFinished(job) {
				blocking = job // its pod may still write: wait until it is gone
			}
		case run != "" && job.Annotations[resources.MigrateRunAnnotation] == run:
			current = append(current, job)
		case jobFinished(job):
			// its TTL deletes it
		default:
			blocking = job
			if err := r.deleteJob(ctx, job, metav1.DeletePropagationForeground); err != nil {
				return err
			}
			s.indexEvents = append(s.indexEvents, indexEvent{reason: "MigrationSuperseded", action: "Supersede", always: true,
				message: fmt.Sprintf("spec.embeddingModel changed: deleting Job %s (%s)", job.Name, job.Annotations[resources.MigrateRunAnnotation])})
		}
	}
	slices.SortFunc(current, func(a, b *batchv1.Job) int { return attempt(a) - attempt(b) })
	for _, old := range current[:max(len(current)-1, 0)] {
		if jobFinished(old) {
			if err := r.deleteJob(ctx, old, metav1.DeletePropagationBackground); err != nil {
				return err
			}
		}
	}

	switched := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionEmbeddingModelSwitched) != nil
	if phase == "" {
		if switched || blocking != nil {
			s.embedding = ptrTo(isTrue(ragv1alpha1.ReasonSwitched, "The server uses embedding model "+st.ActiveModel))
		}
		return nil
	}
	waiting := ragv1alpha1.ReasonMigrating
	if phase == contract.MigratePhaseFinalize {
		waiting = ragv1alpha1.ReasonFinalizing
	}
	if blocking != nil {
		s.embedding = ptrTo(isFalse(waiting, fmt.Sprintf("Waiting for the superseded Job %s to stop", blocking.Name)))
		return nil
	}
	var latest *batchv1.Job
	if len(current) > 0 {
		latest = current[len(current)-1]
	}
	if phase == contract.MigratePhaseFinalize && latest == nil {
		if why, err := r.serverRolledOut(ctx, rs, st.ActiveModel); err != nil || why != "" {
			if err != nil {
				return err
			}
			s.embedding = ptrTo(isFalse(ragv1alpha1.ReasonCuttingOver, fmt.Sprintf(
				"The server rolls onto embedding model %s: %s", st.ActiveModel, why)))
			s.requeue(rolloutRequeueAfter)
			return nil
		}
	}

	in := resources.MigratorInputs{Image: cmpOr(rs.Spec.Server.Image, r.RagServerImage), CollectionOwner: s.collectionOwner,
		Phase: phase, From: from, To: to, Attempt: 1}
	if st.CopyStartTime != nil {
		in.Since = st.CopyStartTime.Unix()
	}
	switch {
	case latest == nil:
		return r.startMigrator(ctx, s, in, waiting)
	case jobSucceeded(latest):
		report, err := jobReport[contract.MigrationReport](ctx, r, latest, resources.MigratorContainerName, "a migration report")
		if err != nil {
			log.FromContext(ctx).Info("Migrator Job succeeded without a readable report", "job", latest.Name, "error", err.Error())
			report = &contract.MigrationReport{}
		}
		if phase == contract.MigratePhaseCopy {
			return r.cutOver(ctx, s, latest, report)
		}
		st.Job = latest.Name
		st.DocumentsCopied += report.Documents
		st.ChunksCopied += report.Chunks
		st.PreviousModel, st.CopyStartTime = "", nil
		fate := "deleted"
		if rs.Spec.VectorStore.KeepPreviousCollection {
			fate = "kept"
		}
		c := isTrue(ragv1alpha1.ReasonSwitched, fmt.Sprintf(
			"The server uses embedding model %s: %d documents (%d chunks) copied from %s, whose collection was %s",
			to, st.DocumentsCopied, st.ChunksCopied, from, fate))
		s.embedding = &c
		s.indexEvents = append(s.indexEvents, indexEvent{reason: ragv1alpha1.ReasonSwitched, action: "SwitchEmbeddingModel", message: c.message})
		return nil
	case jobFailed(latest):
		n := attempt(latest)
		next := jobFinishTime(latest).Add(r.indexBackoff().after(n))
		st.Job = latest.Name
		c := isFalse(ragv1alpha1.ReasonMigrationFailed, fmt.Sprintf("Job %s (%s, attempt %d) failed: %s; retrying at %s; the server keeps embedding model %s",
			latest.Name, phase, n, r.failureMessage(ctx, latest), next.UTC().Format(time.RFC3339), st.ActiveModel))
		s.embedding = &c
		if old := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionEmbeddingModelSwitched); old == nil || old.Reason != c.reason {
			s.indexEvents = append(s.indexEvents, indexEvent{warning: true, reason: c.reason, action: "SwitchEmbeddingModel", message: c.message})
		}
		if wait := time.Until(next); wait > 0 {
			s.requeue(wait)
			return nil
		}
		in.Attempt = n + 1
		return r.startMigrator(ctx, s, in, waiting)
	default:
		st.Job = latest.Name
		s.embedding = ptrTo(isFalse(waiting, migratorMessage(latest.Name, in)))
		if phase == contract.MigratePhaseCopy && rs.Spec.Documents != nil {
			s.embedding.message += "; the indexing Job indexes the declared sources with " + to
		}
		return nil
	}
}

func migratorMessage(job string, in resources.MigratorInputs) string {
	if in.Phase == contract.MigratePhaseFinalize {
		return fmt.Sprintf("Job %s copies what was written to the collection of %s during the cut-over (attempt %d)", job, in.From, in.Attempt)
	}
	return fmt.Sprintf("Job %s copies the documents added through the API from embedding model %s to %s (attempt %d); the server keeps %s until it is done",
		job, in.From, in.To, in.Attempt, in.From)
}

// cutOver makes the copied model the active one once the declared sources
// are indexed with it too.
func (r *RagServiceReconciler) cutOver(ctx context.Context, s *scope, job *batchv1.Job, report *contract.MigrationReport) error {
	rs := s.rs
	st := rs.Status.Embedding
	st.Job = job.Name
	if rs.Spec.Documents != nil {
		revisions, err := r.checkSourceObjects(ctx, s)
		if _, ok := asWait(err); err != nil && !ok {
			return err
		}
		hash := resources.SourcesHash(rs, s.collectionOwner, revisions)
		indexed := rs.Status.Index != nil && rs.Status.Index.SourcesHash == hash
		if !indexed && err == nil {
			// The indexing step of this pass, which records the Job's
			// success, runs after this one: read the Jobs themselves.
			jobs, jerr := r.indexJobs(ctx, rs)
			if jerr != nil {
				return jerr
			}
			for i := range jobs {
				indexed = indexed || (jobSucceeded(&jobs[i]) && jobs[i].Annotations[resources.SourcesHashAnnotation] == hash)
			}
		}
		if err != nil || !indexed {
			s.embedding = ptrTo(isFalse(ragv1alpha1.ReasonMigrating, fmt.Sprintf(
				"Job %s copied %d documents of the API to embedding model %s; waiting for the declared sources to be indexed with it (condition Indexed)",
				job.Name, report.Documents, rs.Spec.EmbeddingModel)))
			return nil
		}
	}
	// The copy read everything committed from its start on: what the old
	// pods write later is the catch-up's.
	since := metav1.NewTime(job.CreationTimestamp.Add(-contract.MigrateSinceMargin))
	if job.Status.StartTime != nil && job.Status.StartTime.Before(&job.CreationTimestamp) {
		since = metav1.NewTime(job.Status.StartTime.Add(-contract.MigrateSinceMargin))
	}
	st.PreviousModel, st.ActiveModel = st.ActiveModel, rs.Spec.EmbeddingModel
	st.CopyStartTime = &since
	st.DocumentsCopied, st.ChunksCopied = report.Documents, report.Chunks
	s.activeModel = st.ActiveModel
	c := isFalse(ragv1alpha1.ReasonCuttingOver, fmt.Sprintf(
		"The collection of embedding model %s is complete (%d documents of the API copied, %d pruned): the server rolls onto it",
		st.ActiveModel, report.Documents, report.Pruned))
	s.embedding = &c
	s.indexEvents = append(s.indexEvents, indexEvent{reason: ragv1alpha1.ReasonCuttingOver, action: "SwitchEmbeddingModel", message: c.message})
	return nil
}

// startMigrator creates the Job of one attempt of a step.
func (r *RagServiceReconciler) startMigrator(ctx context.Context, s *scope, in resources.MigratorInputs, reason string) error {
	job := &batchv1.Job{}
	if err := convert(resources.MigratorJob(s.rs, in), job); err != nil {
		return err
	}
	created, err := r.createJob(ctx, job, "migrator")
	if err != nil {
		return err
	}
	if created {
		s.indexEvents = append(s.indexEvents, indexEvent{reason: "MigrationStarted", action: "SwitchEmbeddingModel", always: true,
			message: fmt.Sprintf("Started Job %s: %s", job.Name, migratorMessage(job.Name, in))})
	}
	s.rs.Status.Embedding.Job = job.Name
	s.embedding = ptrTo(isFalse(reason, migratorMessage(job.Name, in)))
	return nil
}

// deployedModel is the embedding model of the live server Deployment ("":
// none), for a RagService whose status predates status.embedding.
func (r *RagServiceReconciler) deployedModel(ctx context.Context, rs *ragv1alpha1.RagService) (string, error) {
	// Uncached: the cache keeps no pod template (transformChild). This runs
	// once per RagService.
	d := &appsv1.Deployment{}
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}, d); {
	case apierrors.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("get server Deployment: %w", err)
	case !ours(d, rs):
		return "", nil
	}
	return podModel(d.Spec.Template.Spec), nil
}

// podModel is the EMBEDDING_MODEL of a server pod spec.
func podModel(spec corev1.PodSpec) string {
	for _, c := range spec.Containers {
		if c.Name != resources.ServerContainerName {
			continue
		}
		for _, e := range c.Env {
			if e.Name == contract.EnvEmbeddingModel {
				return e.Value
			}
		}
	}
	return ""
}

// serverRolledOut says what the rollout onto model still waits for ("":
// nothing): the Deployment renders it, every desired replica is updated
// and available, and no server pod with another model is left, not even
// a terminating one (it may still answer, and write, during its drain).
// It reads uncached (the cache keeps no pod template, and pods are not
// cached), only while a cut-over waits.
func (r *RagServiceReconciler) serverRolledOut(ctx context.Context, rs *ragv1alpha1.RagService, model string) (string, error) {
	d := &appsv1.Deployment{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return "the server Deployment does not exist yet", nil
		}
		return "", fmt.Errorf("get server Deployment: %w", err)
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	switch {
	case podModel(d.Spec.Template.Spec) != model:
		return "the Deployment is not updated yet", nil
	case d.Status.ObservedGeneration < d.Generation:
		return "the Deployment controller has not seen the update yet", nil
	case d.Status.UpdatedReplicas != want || d.Status.Replicas != want || d.Status.AvailableReplicas < want:
		return fmt.Sprintf("%d of %d replicas updated and %d available, %d in all", d.Status.UpdatedReplicas, want, d.Status.AvailableReplicas, d.Status.Replicas), nil
	}
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(rs.Namespace), client.MatchingLabels(resources.SelectorLabels(rs, resources.ComponentServer))); err != nil {
		return "", fmt.Errorf("list server pods: %w", err)
	}
	for i := range pods.Items {
		if m := podModel(pods.Items[i].Spec); m != model {
			return fmt.Sprintf("pod %s still uses embedding model %s", pods.Items[i].Name, m), nil
		}
	}
	return "", nil
}
