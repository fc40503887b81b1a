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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// Indexing (spec.documents) runs in Jobs, one at a time per RagService:
//
//   - A run is identified by the sources hash (resources.SourcesHash: the
//     sources, the ConfigMaps' resourceVersions, the index settings) and,
//     for a scheduled re-sync, the schedule slot. status.index.sourcesHash
//     records the last run that succeeded; a run whose hash is recorded
//     there and whose slot has not come is not started again.
//   - A newer run supersedes a running Job: it is deleted with foreground
//     propagation, and the next Job starts only once the old one is gone,
//     that is, once its pod has stopped, so that two indexers never write
//     the same collection. The recorded hash is cleared at that moment: the
//     index may hold part of the superseded run, so the current sources are
//     indexed again even if they are back to the recorded ones.
//   - A failed Job is reported (IndexFailed, a Warning event with its
//     termination message) and retried as a new Job with the next attempt
//     number, after an exponential back-off (IndexBackoff) counted from the
//     failure. The attempt number lives on the Job; the failed Job stays
//     until the next attempt starts (or its TTL deletes it).
//   - Finished Jobs are deleted by their TTL; their outcome stays in
//     status.index.
//
// What a crash of the operator leaves behind at any instant: at most one
// Job per RagService that is running or finished, with a deterministic name
// (a second pass creating the same attempt gets AlreadyExists), and a status
// that describes an earlier state; the next pass reads the Jobs again and
// carries on. What a crash of the indexer leaves: a Job that fails (or a pod
// the Job replaces), and an index holding part of the run; upserts are keyed
// by deterministic chunk IDs, so the retry completes it without duplicates.

// IndexBackoff is the delay before the next attempt of a failed indexing
// run: Base after the first failure, doubling up to Max.
type IndexBackoff struct {
	Base, Max time.Duration
}

// DefaultIndexBackoff is 30 s, 1 min, 2 min, ... up to 30 min, which stays
// below the finished Jobs' TTL (resources.IndexerTTLSeconds), so the failed
// Job that carries the attempt number is still there when the next attempt
// is due.
var DefaultIndexBackoff = IndexBackoff{Base: 30 * time.Second, Max: 30 * time.Minute}

// after returns the delay after the given failed attempt (from 1).
func (b IndexBackoff) after(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// missingObjectRequeueAfter is how often a RagService whose sources name a
// PersistentVolumeClaim that does not exist looks again: the operator does
// not watch other PVCs than its own.
const missingObjectRequeueAfter = 30 * time.Second

// maxMessage bounds what a termination message adds to a condition or an
// event.
const maxMessage = 1024

// indexEvent is an event about indexing that the pass emits once the status
// that records it is written (or at once, when always).
type indexEvent struct {
	warning bool
	reason  string
	action  string
	message string
	always  bool
}

// ParseSchedule parses spec.documents.schedule: standard cron (five fields)
// or a descriptor such as @hourly. A schedule firing more often than once a
// minute is refused: each firing starts a Job.
func ParseSchedule(spec string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("documents.schedule %q is not a cron schedule (five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly, @every <duration>): %w", spec, err)
	}
	// Two firings from a fixed point: the shortest cron interval is a minute,
	// so only @every can be shorter.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := sched.Next(t0)
	if sched.Next(first).Sub(first) < time.Minute {
		return nil, fmt.Errorf("documents.schedule %q fires more often than once a minute; each firing starts an indexing Job", spec)
	}
	return sched, nil
}

// reconcileIndex runs the indexing Jobs of spec.documents and records their
// outcome in status.index and the Indexed condition. It never makes the
// server wait: a missing source object or a failed Job only shows in
// Indexed.
func (r *RagServiceReconciler) reconcileIndex(ctx context.Context, s *scope) error {
	rs := s.rs
	jobs, err := r.indexJobs(ctx, rs)
	if err != nil {
		return err
	}
	if rs.Spec.Documents == nil {
		for i := range jobs {
			if err := r.deleteJob(ctx, &jobs[i], metav1.DeletePropagationForeground); err != nil {
				return err
			}
		}
		rs.Status.Index = nil
		s.indexed = ptrTo(isTrue(ragv1alpha1.ReasonNoDocuments, "spec.documents is unset: nothing to index"))
		return nil
	}

	revisions, err := r.checkSourceObjects(ctx, s)
	if err != nil {
		if w, ok := asWait(err); ok {
			s.indexed = ptrTo(isFalse(w.reason, w.message+"; the indexing Job starts once it exists"))
			s.requeue(cmpOrDuration(w.after, waitRequeueAfter))
			return nil
		}
		return err
	}
	hash := resources.SourcesHash(rs, s.collectionOwner, revisions)
	if rs.Status.Index == nil {
		rs.Status.Index = &ragv1alpha1.IndexStatus{}
	}
	run, err := r.currentRun(s, hash)
	if err != nil {
		return err
	}

	// The Jobs of the current run, the latest attempt last; the others are
	// superseded.
	var current []*batchv1.Job
	var blocking *batchv1.Job
	for i := range jobs {
		job := &jobs[i]
		if !job.DeletionTimestamp.IsZero() {
			if !jobFinished(job) {
				blocking = job // its pod may still write: wait until it is gone
			}
			continue
		}
		if run != "" && job.Annotations[resources.IndexRunAnnotation] == run {
			current = append(current, job)
			continue
		}
		if jobFinished(job) {
			continue // its TTL deletes it
		}
		blocking = job
		if err := r.deleteJob(ctx, job, metav1.DeletePropagationForeground); err != nil {
			return err
		}
		// The index may now hold part of the superseded run.
		rs.Status.Index.SourcesHash = ""
		s.indexEvents = append(s.indexEvents, indexEvent{reason: "IndexSuperseded", action: "Supersede", always: true,
			message: fmt.Sprintf("The sources changed: deleting indexing Job %s, which indexed an older version", job.Name)})
	}
	if run == "" && blocking != nil {
		// A superseded run was stopped: index the current sources again.
		run = hash
	}
	slices.SortFunc(current, func(a, b *batchv1.Job) int { return attempt(a) - attempt(b) })
	for _, old := range current[:max(len(current)-1, 0)] {
		if jobFinished(old) {
			if err := r.deleteJob(ctx, old, metav1.DeletePropagationBackground); err != nil {
				return err
			}
		}
	}

	switch {
	case run == "":
		s.indexed = ptrTo(recordedCondition(rs))
		return nil
	case len(current) > 0:
		return r.followJob(ctx, s, current[len(current)-1], hash, run)
	case blocking != nil:
		s.indexed = ptrTo(isFalse(ragv1alpha1.ReasonIndexing, fmt.Sprintf(
			"Waiting for the superseded indexing Job %s to stop before indexing the current sources", blocking.Name)))
		return nil
	default:
		return r.startJob(ctx, s, hash, run, 1)
	}
}

// currentRun returns the run the sources ask for: the hash when it is not
// the one last indexed, the hash and the slot when the schedule's slot after
// the last sync has come, or "" when the index is up to date. It schedules
// the pass for the next slot.
func (r *RagServiceReconciler) currentRun(s *scope, hash string) (string, error) {
	idx := s.rs.Status.Index
	if idx.SourcesHash != hash {
		return hash, nil
	}
	spec := s.rs.Spec.Documents.Schedule
	if spec == "" || idx.LastSyncTime == nil {
		return "", nil
	}
	sched, err := ParseSchedule(spec)
	if err != nil {
		return "", stall(ragv1alpha1.ReasonInvalidSpec, "%v", err)
	}
	slot := sched.Next(idx.LastSyncTime.Time)
	if now := time.Now(); slot.After(now) {
		s.requeue(slot.Sub(now))
		return "", nil
	}
	return hash + "@" + slot.UTC().Format(time.RFC3339), nil
}

// followJob reports the Job of the current run, records its outcome once,
// and retries a failed one after the back-off.
func (r *RagServiceReconciler) followJob(ctx context.Context, s *scope, job *batchv1.Job, hash, run string) error {
	rs := s.rs
	idx := rs.Status.Index
	n := attempt(job)
	indexedCond := meta.FindStatusCondition(rs.Status.Conditions, ragv1alpha1.ConditionIndexed)
	recorded := idx.Job == job.Name && indexedCond != nil && indexedCond.Reason != ragv1alpha1.ReasonIndexing

	switch {
	case jobSucceeded(job):
		if recorded {
			s.indexed = ptrTo(recordedCondition(rs))
			return nil
		}
		report, err := jobReport[contract.IndexReport](ctx, r, job, resources.IndexerContainerName, "an index report")
		idx.Job = job.Name
		idx.SourcesHash = hash
		idx.LastSyncTime = ptrTo(metav1.NewTime(time.Now().Truncate(time.Second)))
		if job.Status.CompletionTime != nil {
			idx.LastSyncTime = job.Status.CompletionTime.DeepCopy()
		}
		if err != nil {
			log.FromContext(ctx).Info("Indexing Job succeeded without a readable report", "job", job.Name, "error", err.Error())
			c := isTrue(ragv1alpha1.ReasonIndexed, fmt.Sprintf("Indexing Job %s succeeded, but its report could not be read (%v): the counts are those of the sync before", job.Name, err))
			s.indexed = &c
			s.indexEvents = append(s.indexEvents, indexEvent{reason: ragv1alpha1.ReasonIndexed, action: "Index", message: c.message})
			return nil
		}
		applyReport(idx, report)
		c := recordedCondition(rs)
		s.indexed = &c
		s.indexEvents = append(s.indexEvents, indexEvent{
			warning: c.reason == ragv1alpha1.ReasonSourceUnreachable,
			reason:  c.reason, action: "Index", message: c.message,
		})
		if _, err := r.currentRun(s, hash); err != nil { // requeue at the next slot
			return err
		}
		return nil

	case jobFailed(job):
		failedAt := jobFinishTime(job)
		next := failedAt.Add(r.indexBackoff().after(n))
		if !recorded {
			idx.Job = job.Name
			why := r.failureMessage(ctx, job)
			c := isFalse(ragv1alpha1.ReasonIndexFailed, fmt.Sprintf(
				"Indexing Job %s failed (attempt %d): %s; retrying at %s", job.Name, n, why, next.UTC().Format(time.RFC3339)))
			s.indexed = &c
			s.indexEvents = append(s.indexEvents, indexEvent{warning: true, reason: ragv1alpha1.ReasonIndexFailed, action: "Index", message: c.message})
		} else {
			s.indexed = ptrTo(condition{indexedCond.Status, indexedCond.Reason, indexedCond.Message})
		}
		if wait := time.Until(next); wait > 0 {
			s.requeue(wait)
			return nil
		}
		return r.startJob(ctx, s, hash, run, n+1)

	default:
		idx.Job = job.Name
		s.indexed = ptrTo(isFalse(ragv1alpha1.ReasonIndexing, fmt.Sprintf("Indexing Job %s runs (attempt %d)", job.Name, n)))
		return nil
	}
}

// createJob creates a Job whose name is deterministic (what names its kind
// in logs and errors). It reports false, and no error, when the Job exists
// already: created by an earlier pass that the cache has not seen yet.
func (r *RagServiceReconciler) createJob(ctx context.Context, job *batchv1.Job, what string) (bool, error) {
	switch err := r.Client.Create(ctx, job, client.FieldOwner(FieldOwner)); {
	case apierrors.IsAlreadyExists(err):
		log.FromContext(ctx).V(1).Info("Job exists already", "job", job.Name, "kind", what)
		return false, nil
	case apierrors.IsInvalid(err):
		return false, stall(ragv1alpha1.ReasonInvalidSpec, "the API server rejected %s Job %s: %v", what, job.Name, err)
	case err != nil:
		return false, fmt.Errorf("create %s Job: %w", what, err)
	}
	return true, nil
}

// startJob creates the Job of one attempt of a run.
func (r *RagServiceReconciler) startJob(ctx context.Context, s *scope, hash, run string, n int) error {
	rs := s.rs
	image := cmpOr(rs.Spec.Server.Image, r.RagServerImage)
	job := &batchv1.Job{}
	if err := convert(resources.IndexerJob(rs, resources.IndexerInputs{
		Image: image, CollectionOwner: s.collectionOwner, SourcesHash: hash, Run: run, Attempt: n,
	}), job); err != nil {
		return err
	}
	created, err := r.createJob(ctx, job, "indexing")
	if err != nil {
		return err
	}
	if created {
		why := "the sources changed"
		if strings.Contains(run, "@") {
			why = "the schedule's slot " + run[strings.Index(run, "@")+1:] + " came"
		}
		if n > 1 {
			why = fmt.Sprintf("attempt %d after a failure", n)
		}
		s.indexEvents = append(s.indexEvents, indexEvent{reason: "IndexStarted", action: "Index", always: true,
			message: fmt.Sprintf("Started indexing Job %s: %s", job.Name, why)})
	}
	rs.Status.Index.Job = job.Name
	s.indexed = ptrTo(isFalse(ragv1alpha1.ReasonIndexing, fmt.Sprintf("Indexing Job %s runs (attempt %d)", job.Name, n)))
	return nil
}

// checkSourceObjects checks that the Secrets, PVCs and ConfigMaps the Job
// would mount exist (a missing one is a wait: the Job would not start), and
// returns the ConfigMap sources' revisions (their resourceVersions, from the
// metadata cache) for the sources hash.
func (r *RagServiceReconciler) checkSourceObjects(ctx context.Context, s *scope) (map[string]string, error) {
	rs := s.rs
	objs := resources.IndexSourceObjects(rs)
	key := func(name string) types.NamespacedName {
		return types.NamespacedName{Namespace: rs.Namespace, Name: name}
	}
	metaOf := func(kind string) *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
		return m
	}
	cmVersions := map[string]string{}
	for _, name := range objs.ConfigMaps {
		m := metaOf("ConfigMap")
		if err := r.Client.Get(ctx, key(name), m); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, wait(ragv1alpha1.ReasonConfigMapNotFound, "documents ConfigMap %q not found", name)
			}
			return nil, fmt.Errorf("get ConfigMap %q: %w", name, err)
		}
		cmVersions[name] = m.ResourceVersion
	}
	for _, name := range objs.Secrets {
		if err := r.Client.Get(ctx, key(name), metaOf("Secret")); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, wait(ragv1alpha1.ReasonSecretNotFound, "Secret %q of the documents sources not found", name)
			}
			return nil, fmt.Errorf("get Secret %q: %w", name, err)
		}
	}
	for _, name := range objs.PVCs {
		// Not cached (the cache holds the operator's own volumes only).
		if err := r.APIReader.Get(ctx, key(name), &corev1.PersistentVolumeClaim{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &waitError{reason: ragv1alpha1.ReasonPVCNotFound, after: missingObjectRequeueAfter,
					message: fmt.Sprintf("PersistentVolumeClaim %q of the documents sources not found", name)}
			}
			return nil, fmt.Errorf("get PersistentVolumeClaim %q: %w", name, err)
		}
	}
	revisions := map[string]string{}
	for _, src := range resources.IndexSources(rs).Sources {
		if src.ConfigMap != nil {
			revisions[src.Name] = cmVersions[src.ConfigMap.Name]
		}
	}
	return revisions, nil
}

// indexJobs lists the RagService's indexing Jobs from the cache.
func (r *RagServiceReconciler) indexJobs(ctx context.Context, rs *ragv1alpha1.RagService) ([]batchv1.Job, error) {
	return r.childJobs(ctx, rs, resources.ComponentIndexer)
}

// childJobs lists the RagService's Jobs of a component from the cache.
func (r *RagServiceReconciler) childJobs(ctx context.Context, rs *ragv1alpha1.RagService, component string) ([]batchv1.Job, error) {
	list := &batchv1.JobList{}
	if err := r.Client.List(ctx, list, client.InNamespace(rs.Namespace), client.MatchingLabels{
		resources.LabelInstance: rs.Name, resources.LabelComponent: component,
	}); err != nil {
		return nil, fmt.Errorf("list %s Jobs: %w", component, err)
	}
	jobs := list.Items[:0]
	for _, job := range list.Items {
		if metav1.IsControlledBy(&job, rs) {
			jobs = append(jobs, job)
		}
	}
	return jobs, nil
}

// deleteJob deletes a Job with the given propagation: foreground for a
// running Job (the Job object stays until its pods are gone, so the next
// Job waits for the old indexer to stop), background for a finished one.
func (r *RagServiceReconciler) deleteJob(ctx context.Context, job *batchv1.Job, propagation metav1.DeletionPropagation) error {
	if !job.DeletionTimestamp.IsZero() {
		return nil
	}
	uid := job.UID
	err := r.Client.Delete(ctx, job, client.PropagationPolicy(propagation), client.Preconditions{UID: &uid})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete indexing Job %s: %w", job.Name, err)
	}
	log.FromContext(ctx).Info("Deleted indexing Job", "job", job.Name, "propagation", propagation)
	return nil
}

// jobReport reads the report (an IndexReport or a MigrationReport) that a
// succeeded Job's pod left in the termination message of its container.
// Pods are listed (uncached, by the Job's controller-uid label) only once
// per finished Job.
func jobReport[R any](ctx context.Context, r *RagServiceReconciler, job *batchv1.Job, container, what string) (*R, error) {
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return nil, err
	}
	for _, st := range pods {
		if st.ExitCode != 0 {
			continue
		}
		report := new(R)
		if err := json.Unmarshal([]byte(st.Message), report); err != nil {
			return nil, fmt.Errorf("the termination message is not %s: %w", what, err)
		}
		return report, nil
	}
	return nil, fmt.Errorf("no pod of the Job with a successful %s container is left", container)
}

// failureMessage returns why a Job failed: the termination message of its
// last failed pod (the report, or the log tail with FallbackToLogsOnError),
// else the Job's Failed condition.
func (r *RagServiceReconciler) failureMessage(ctx context.Context, job *batchv1.Job) string {
	why := ""
	if c := jobCondition(job, batchv1.JobFailed); c != nil {
		why = strings.TrimSpace(c.Reason + ": " + c.Message)
	}
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		log.FromContext(ctx).Info("Reading the failed indexing Job's pods failed", "job", job.Name, "error", err.Error())
	}
	for _, st := range pods {
		if st.ExitCode != 0 && strings.TrimSpace(st.Message) != "" {
			why = fmt.Sprintf("exit code %d: %s", st.ExitCode, strings.TrimSpace(st.Message))
			break
		}
	}
	if why == "" {
		why = "no reason given"
	}
	if len(why) > maxMessage {
		why = why[:maxMessage] + "..."
	}
	return why
}

// jobPods returns the terminated states of the indexer (or migrator)
// container of the Job's pods, the latest first.
func (r *RagServiceReconciler) jobPods(ctx context.Context, job *batchv1.Job) ([]*corev1.ContainerStateTerminated, error) {
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return nil, fmt.Errorf("list the pods of Job %s: %w", job.Name, err)
	}
	var states []*corev1.ContainerStateTerminated
	for i := range pods.Items {
		for _, cs := range pods.Items[i].Status.ContainerStatuses {
			isOurs := cs.Name == resources.IndexerContainerName || cs.Name == resources.MigratorContainerName
			if isOurs && cs.State.Terminated != nil {
				states = append(states, cs.State.Terminated)
			}
		}
	}
	slices.SortFunc(states, func(a, b *corev1.ContainerStateTerminated) int {
		return b.FinishedAt.Compare(a.FinishedAt.Time)
	})
	return states, nil
}

// applyReport copies an IndexReport into status.index.
func applyReport(idx *ragv1alpha1.IndexStatus, report *contract.IndexReport) {
	idx.Documents, idx.Chunks = report.Documents, report.Chunks
	idx.Sources = nil
	for _, src := range report.Sources {
		if len(idx.Sources) == 33 { // the API's bound: 32 sources and configMapRef
			break
		}
		st := ragv1alpha1.SourceIndexStatus{
			Name: src.Name, Revision: src.Revision,
			FilesIndexed: src.Indexed, FilesSkipped: src.Skipped, LastError: src.Error,
		}
		for _, f := range src.SkippedFiles[:min(len(src.SkippedFiles), contract.MaxSkippedReported)] {
			st.Skipped = append(st.Skipped, ragv1alpha1.SkippedFile{Path: f[0], Reason: f[1]})
		}
		idx.Sources = append(idx.Sources, st)
	}
}

// recordedCondition is the Indexed condition that status.index describes
// after a successful sync.
func recordedCondition(rs *ragv1alpha1.RagService) condition {
	idx := rs.Status.Index
	var failed []string
	for _, src := range idx.Sources {
		if src.LastError != "" {
			failed = append(failed, fmt.Sprintf("%s (%s)", src.Name, src.LastError))
		}
	}
	counts := fmt.Sprintf("%d documents, %d chunks", idx.Documents, idx.Chunks)
	if len(failed) > 0 {
		msg := fmt.Sprintf("Indexing Job %s finished: %s; sources not read, their documents kept as they were: %s", idx.Job, counts, strings.Join(failed, "; "))
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "..."
		}
		return isFalse(ragv1alpha1.ReasonSourceUnreachable, msg)
	}
	return isTrue(ragv1alpha1.ReasonIndexed, fmt.Sprintf("Indexing Job %s finished: %s", idx.Job, counts))
}

func (r *RagServiceReconciler) indexBackoff() IndexBackoff {
	if r.IndexBackoff.Base > 0 && r.IndexBackoff.Max > 0 {
		return r.IndexBackoff
	}
	return DefaultIndexBackoff
}

func attempt(job *batchv1.Job) int {
	n, err := strconv.Atoi(job.Annotations[resources.IndexAttemptAnnotation])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func jobSucceeded(job *batchv1.Job) bool { return jobCondition(job, batchv1.JobComplete) != nil }
func jobFailed(job *batchv1.Job) bool    { return jobCondition(job, batchv1.JobFailed) != nil }
func jobFinished(job *batchv1.Job) bool  { return jobSucceeded(job) || jobFailed(job) }

// jobFinishTime is when a finished Job finished: its completion time, else
// the transition time of its final condition.
func jobFinishTime(job *batchv1.Job) time.Time {
	if t := job.Status.CompletionTime; t != nil {
		return t.Time
	}
	for _, t := range []batchv1.JobConditionType{batchv1.JobFailed, batchv1.JobComplete} {
		if c := jobCondition(job, t); c != nil {
			return c.LastTransitionTime.Time
		}
	}
	return job.CreationTimestamp.Time
}

func ptrTo[T any](v T) *T { return &v }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpOrDuration(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}
