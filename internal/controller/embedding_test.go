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

// The switch of spec.embeddingModel on envtest: the tests play the Job
// controller, the kubelet and the Deployment controller (see index_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// migratorJobs lists the migrator Jobs of a RagService that are not being
// deleted.
func migratorJobs(t *testing.T, ns, name string) []batchv1.Job {
	t.Helper()
	list := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{
		resources.LabelInstance: name, resources.LabelComponent: resources.ComponentMigrator,
	}); err != nil {
		t.Fatal(err)
	}
	var out []batchv1.Job
	for _, j := range list.Items {
		if j.DeletionTimestamp.IsZero() {
			out = append(out, j)
		}
	}
	return out
}

// waitForMigrator waits for the migrator Job of one step and returns it.
func waitForMigrator(t *testing.T, ns, name, run string) batchv1.Job {
	t.Helper()
	var job batchv1.Job
	eventually(t, timeout, func() error {
		for _, j := range migratorJobs(t, ns, name) {
			if j.Annotations[resources.MigrateRunAnnotation] == run {
				job = j
				return nil
			}
		}
		return fmt.Errorf("no migrator Job for %s", run)
	})
	return job
}

func migrationJSON(t *testing.T, r contract.MigrationReport) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jobEnv(job *batchv1.Job) map[string]string {
	out := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

// serverModel waits until the server Deployment renders model.
func serverModel(t *testing.T, ns, name, model string) *appsv1.Deployment {
	t.Helper()
	return waitFor(t, &appsv1.Deployment{}, ns, name, func(d *appsv1.Deployment) error {
		if got := envOf(d)[contract.EnvEmbeddingModel].Value; got != model {
			return fmt.Errorf("the server uses embedding model %q, want %q", got, model)
		}
		return nil
	})
}

func activeModel(model, previous string) func(*ragv1alpha1.RagService) error {
	return func(rs *ragv1alpha1.RagService) error {
		e := rs.Status.Embedding
		if e == nil || e.ActiveModel != model || e.PreviousModel != previous {
			return fmt.Errorf("status.embedding = %+v, want active %q, previous %q", e, model, previous)
		}
		return nil
	}
}

// TestEmbeddingModelSwitch walks a RagService through switches of
// spec.embeddingModel: the server keeps the active model while a Job copies
// the documents of the API; the Job's success flips the active model and
// rolls the Deployment; the finalize Job waits until no server pod of the
// previous model is left (a terminating one included), then deletes (or
// keeps) the previous collection; a switch back supersedes a running copy.
func TestEmbeddingModelSwitch(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, newRagService(ns, "sw", func(rs *ragv1alpha1.RagService) { rs.Spec.EmbeddingModel = "embed-a" }))

	// Creation: the spec's model is active at once; no migration.
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", activeModel("embed-a", ""))
	serverModel(t, ns, "sw", "embed-a")
	markAvailable(t, ns, "sw")
	quiesce(t, ns, time.Second)
	if jobs := migratorJobs(t, ns, "sw"); len(jobs) != 0 {
		t.Fatalf("%d migrator Jobs after creation, want none", len(jobs))
	}
	if c := findCondition(get(t, &ragv1alpha1.RagService{}, ns, "sw"), ragv1alpha1.ConditionEmbeddingModelSwitched); c.Type != "" {
		t.Fatalf("condition %+v before any switch", c)
	}

	// The switch: the server keeps embed-a, the Job copies to embed-b.
	update(t, get(t, &ragv1alpha1.RagService{}, ns, "sw"), func(rs *ragv1alpha1.RagService) { rs.Spec.EmbeddingModel = "embed-b" })
	copyJob := waitForMigrator(t, ns, "sw", resources.MigrateRun(contract.MigratePhaseCopy, "embed-a", "embed-b"))
	env := jobEnv(&copyJob)
	if env[contract.EnvEmbeddingModel] != "embed-b" || env[contract.EnvMigrateFromModel] != "embed-a" || env[contract.EnvMigratePhase] != contract.MigratePhaseCopy ||
		copyJob.Spec.Template.Spec.Containers[0].Args[0] != contract.MigrateCommand {
		t.Fatalf("copy Job env %v args %v", env, copyJob.Spec.Template.Spec.Containers[0].Args)
	}
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionFalse, ragv1alpha1.ReasonMigrating))
	serverModel(t, ns, "sw", "embed-a")

	// The copy succeeds: embed-b becomes active, the Deployment rolls.
	finishJob(t, &copyJob, 0, migrationJSON(t, contract.MigrationReport{Phase: contract.MigratePhaseCopy, Documents: 5, Chunks: 12}))
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", activeModel("embed-b", "embed-a"))
	if rs.Status.Embedding.CopyStartTime == nil || rs.Status.Embedding.CopyStartTime.After(copyJob.CreationTimestamp.Time) {
		t.Errorf("copyStartTime %v, want at or before the copy Job's creation %v", rs.Status.Embedding.CopyStartTime, copyJob.CreationTimestamp)
	}
	serverModel(t, ns, "sw", "embed-b")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionFalse, ragv1alpha1.ReasonCuttingOver))

	// An old server pod is still there (terminating, say): no finalize Job.
	oldPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sw-old", Labels: resources.SelectorLabels(rs, resources.ComponentServer)},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), Containers: []corev1.Container{{
			Name: resources.ServerContainerName, Image: testServerImage,
			Env: []corev1.EnvVar{{Name: contract.EnvEmbeddingModel, Value: "embed-a"}},
		}}},
	}
	create(t, oldPod)
	markAvailable(t, ns, "sw")
	rs = waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", func(rs *ragv1alpha1.RagService) error {
		if c := findCondition(rs, ragv1alpha1.ConditionEmbeddingModelSwitched); !strings.Contains(c.Message, "sw-old") {
			return fmt.Errorf("condition %q does not name the old pod", c.Message)
		}
		return nil
	})
	if jobs := migratorJobs(t, ns, "sw"); len(jobs) != 1 {
		t.Fatalf("%d migrator Jobs while an old pod is left, want only the copy", len(jobs))
	}
	if err := k8sClient.Delete(context.Background(), oldPod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}

	// The finalize Job: catch-up since the copy's start, delete embed-a.
	finalJob := waitForMigrator(t, ns, "sw", resources.MigrateRun(contract.MigratePhaseFinalize, "embed-a", "embed-b"))
	env = jobEnv(&finalJob)
	if env[contract.EnvMigrateSince] != fmt.Sprint(rs.Status.Embedding.CopyStartTime.Unix()) || env[contract.EnvKeepPreviousCollection] != "false" ||
		env[contract.EnvEmbeddingModel] != "embed-b" || env[contract.EnvMigrateFromModel] != "embed-a" {
		t.Fatalf("finalize Job env %v", env)
	}
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionFalse, ragv1alpha1.ReasonFinalizing))
	finishJob(t, &finalJob, 0, migrationJSON(t, contract.MigrationReport{Phase: contract.MigratePhaseFinalize, Documents: 1, Chunks: 2, Dropped: true}))
	rs = waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionTrue, ragv1alpha1.ReasonSwitched))
	if e := rs.Status.Embedding; e.ActiveModel != "embed-b" || e.PreviousModel != "" || e.DocumentsCopied != 6 || e.ChunksCopied != 14 {
		t.Errorf("status.embedding = %+v", e)
	}
	if c := findCondition(rs, ragv1alpha1.ConditionEmbeddingModelSwitched); !strings.Contains(c.Message, "was deleted") {
		t.Errorf("condition %q", c.Message)
	}
	waitForEvent(t, ns, "sw", ragv1alpha1.ReasonSwitched)

	// Kept: the finalize Job of the next switch keeps embed-b's collection.
	update(t, rs, func(rs *ragv1alpha1.RagService) {
		rs.Spec.EmbeddingModel = "embed-c"
		rs.Spec.VectorStore.KeepPreviousCollection = true
	})
	copyJob = waitForMigrator(t, ns, "sw", resources.MigrateRun(contract.MigratePhaseCopy, "embed-b", "embed-c"))
	finishJob(t, &copyJob, 0, migrationJSON(t, contract.MigrationReport{Phase: contract.MigratePhaseCopy, Documents: 6}))
	serverModel(t, ns, "sw", "embed-c")
	markAvailable(t, ns, "sw")
	finalJob = waitForMigrator(t, ns, "sw", resources.MigrateRun(contract.MigratePhaseFinalize, "embed-b", "embed-c"))
	if env := jobEnv(&finalJob); env[contract.EnvKeepPreviousCollection] != "true" {
		t.Fatalf("finalize Job env %v, want the collection kept", env)
	}
	finishJob(t, &finalJob, 0, migrationJSON(t, contract.MigrationReport{Phase: contract.MigratePhaseFinalize}))
	rs = waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", func(rs *ragv1alpha1.RagService) error {
		if c := findCondition(rs, ragv1alpha1.ConditionEmbeddingModelSwitched); c.Reason != ragv1alpha1.ReasonSwitched || !strings.Contains(c.Message, "embed-b, whose collection was kept") {
			return fmt.Errorf("condition %s %q", c.Reason, c.Message)
		}
		return nil
	})

	// A switch back during the copy: the copy Job is superseded, the
	// server never leaves embed-c, and no other Job starts.
	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.EmbeddingModel = "embed-d" })
	copyJob = waitForMigrator(t, ns, "sw", resources.MigrateRun(contract.MigratePhaseCopy, "embed-c", "embed-d"))
	update(t, get(t, &ragv1alpha1.RagService{}, ns, "sw"), func(rs *ragv1alpha1.RagService) { rs.Spec.EmbeddingModel = "embed-c" })
	eventually(t, timeout, func() error {
		live := &batchv1.Job{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(&copyJob), live); err != nil {
			return err
		}
		if live.DeletionTimestamp.IsZero() {
			return fmt.Errorf("the superseded copy Job is not being deleted")
		}
		return nil
	})
	waitForEvent(t, ns, "sw", "MigrationSuperseded")
	collectGarbage(t, ns)
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", activeModel("embed-c", ""))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "sw", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionTrue, ragv1alpha1.ReasonSwitched))
	quiesce(t, ns, time.Second)
	for _, j := range migratorJobs(t, ns, "sw") {
		if !jobFinished(&j) {
			t.Errorf("migrator Job %s (%s) runs after the switch back", j.Name, j.Annotations[resources.MigrateRunAnnotation])
		}
	}
	serverModel(t, ns, "sw", "embed-c")
}

// TestEmbeddingSwitchWaitsForTheSources: with declared sources, the cut-over
// waits until the indexing Job has indexed them with the new model too; a
// failed copy is retried and the server keeps its model meanwhile.
func TestEmbeddingSwitchWaitsForTheSources(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}})
	create(t, newRagService(ns, "src", func(rs *ragv1alpha1.RagService) {
		rs.Spec.EmbeddingModel = "embed-a"
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}}
	}))
	first := waitForJobs(t, ns, "src", 1)[0]
	finishJob(t, &first, 0, reportJSON(t, contract.IndexReport{Documents: 1, Chunks: 1, Sources: []contract.SourceReport{{Name: "configmap", Indexed: 1}}}))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "src", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonIndexed))

	update(t, get(t, &ragv1alpha1.RagService{}, ns, "src"), func(rs *ragv1alpha1.RagService) { rs.Spec.EmbeddingModel = "embed-b" })
	index := otherJob(t, waitForJobs(t, ns, "src", 2), first.Name)
	if got := envOf(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: index.Spec.Template}})[contract.EnvEmbeddingModel].Value; got != "embed-b" {
		t.Fatalf("the indexing Job uses %q, want the new model", got)
	}
	copyJob := waitForMigrator(t, ns, "src", resources.MigrateRun(contract.MigratePhaseCopy, "embed-a", "embed-b"))

	// The copy fails: retried after the back-off; the server keeps embed-a.
	finishJob(t, &copyJob, 1, "chroma copy: vector store unavailable")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "src", conditionIs(ragv1alpha1.ConditionEmbeddingModelSwitched, metav1.ConditionFalse, ragv1alpha1.ReasonMigrationFailed))
	var retry batchv1.Job
	eventually(t, timeout, func() error {
		for _, j := range migratorJobs(t, ns, "src") {
			if attempt(&j) == 2 {
				retry = j
				return nil
			}
		}
		return fmt.Errorf("no second attempt")
	})
	finishJob(t, &retry, 0, migrationJSON(t, contract.MigrationReport{Phase: contract.MigratePhaseCopy, Documents: 2}))
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "src", func(rs *ragv1alpha1.RagService) error {
		if c := findCondition(rs, ragv1alpha1.ConditionEmbeddingModelSwitched); !strings.Contains(c.Message, "waiting for the declared sources") {
			return fmt.Errorf("condition %s %q", c.Reason, c.Message)
		}
		return nil
	})
	if rs.Status.Embedding.ActiveModel != "embed-a" {
		t.Fatalf("active model %q before the sources are indexed", rs.Status.Embedding.ActiveModel)
	}
	serverModel(t, ns, "src", "embed-a")

	finishJob(t, &index, 0, reportJSON(t, contract.IndexReport{Documents: 1, Chunks: 1, Sources: []contract.SourceReport{{Name: "configmap", Indexed: 1}}}))
	waitFor(t, &ragv1alpha1.RagService{}, ns, "src", activeModel("embed-b", "embed-a"))
	serverModel(t, ns, "src", "embed-b")
}
