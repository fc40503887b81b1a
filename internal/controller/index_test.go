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

// The indexing Job on envtest. envtest runs no Job controller, no kubelet
// and no garbage collector: the tests play them. A Job "finishes" when the
// test writes its status as the Job controller would and creates its pod
// with the terminated container status a kubelet would report, carrying
// the index report as its termination message; a foreground deletion ends
// when the test removes the foregroundDeletion finalizer, as the garbage
// collector does once the pods are gone.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/resources"
)

// jobsOf lists the indexing Jobs of a RagService, oldest first (by the
// second).
func jobsOf(t *testing.T, ns, name string) []batchv1.Job {
	t.Helper()
	list := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{
		resources.LabelInstance: name, resources.LabelComponent: resources.ComponentIndexer,
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b batchv1.Job) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return attempt(&a) - attempt(&b)
	})
	return list.Items
}

// waitForJobs waits until a RagService has n indexing Jobs.
func waitForJobs(t *testing.T, ns, name string, n int) []batchv1.Job {
	t.Helper()
	var jobs []batchv1.Job
	eventually(t, timeout, func() error {
		jobs = jobsOf(t, ns, name)
		if len(jobs) != n {
			return fmt.Errorf("%d indexing Jobs, want %d", len(jobs), n)
		}
		return nil
	})
	return jobs
}

// otherJob returns the Job of jobs that is not named name (creation
// timestamps have a resolution of a second, so they do not order Jobs).
func otherJob(t *testing.T, jobs []batchv1.Job, name string) batchv1.Job {
	t.Helper()
	for _, j := range jobs {
		if j.Name != name {
			return j
		}
	}
	t.Fatalf("no Job other than %s", name)
	return batchv1.Job{}
}

// finishJob plays the Job controller and the kubelet: the Job's pod ends
// with the given exit code and termination message, and the Job's status
// says Complete (exit code 0) or Failed.
func finishJob(t *testing.T, job *batchv1.Job, exitCode int32, message string) {
	t.Helper()
	ctx := context.Background()
	container := resources.IndexerContainerName
	if job.Labels[resources.LabelComponent] == resources.ComponentMigrator {
		container = resources.MigratorContainerName
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: job.Namespace, Name: job.Name + "-pod",
			Labels: map[string]string{batchv1.ControllerUidLabel: string(job.UID), batchv1.JobNameLabel: job.Name},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: container, Image: testServerImage}},
		},
	}
	create(t, pod)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: container, Image: testServerImage,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCode, Message: message, StartedAt: now, FinishedAt: now, Reason: "Completed",
		}},
	}}}
	if exitCode != 0 {
		pod.Status.Phase = corev1.PodFailed
		pod.Status.ContainerStatuses[0].State.Terminated.Reason = "Error"
	}
	if err := k8sClient.Status().Update(ctx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}

	eventually(t, timeout, func() error {
		live := &batchv1.Job{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(job), live); err != nil {
			return err
		}
		live.Status.StartTime = &now
		if exitCode == 0 {
			live.Status.Succeeded = 1
			live.Status.CompletionTime = &now
			live.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
			}
		} else {
			live.Status.Failed = 2
			live.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit", LastTransitionTime: now, LastProbeTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit", LastTransitionTime: now, LastProbeTime: now},
			}
		}
		return k8sClient.Status().Update(ctx, live)
	})
}

// collectGarbage plays the garbage collector for a foreground deletion: it
// removes the foregroundDeletion finalizer of the deleted Jobs in ns (their
// pods are gone: envtest has none running).
func collectGarbage(t *testing.T, ns string) {
	t.Helper()
	list := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		job := &list.Items[i]
		if job.DeletionTimestamp.IsZero() {
			continue
		}
		update(t, job, func(j *batchv1.Job) { j.Finalizers = nil })
	}
}

func reportJSON(t *testing.T, r contract.IndexReport) string {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > contract.MaxIndexReportBytes {
		t.Fatalf("report of %d bytes does not fit the termination message", len(raw))
	}
	return string(raw)
}

// touch wakes the operator for a RagService without changing its spec.
func touch(t *testing.T, ns, name string) {
	t.Helper()
	update(t, &ragv1alpha1.RagService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, func(rs *ragv1alpha1.RagService) {
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		rs.Annotations["test/touched"] = time.Now().Format(time.RFC3339Nano)
	})
}

func TestIndexJobSpec(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	createSecret(t, ns, "git-creds", map[string]string{"token": "t"})
	createSecret(t, ns, "unrelated", map[string]string{"x": "y"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "handbook"}, Data: map[string]string{"a.md": "A"}})
	create(t, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reports"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})
	rs := newRagService(ns, "idx", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{
			ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"},
			Exclude:      []string{"drafts/**"},
			Sources: []ragv1alpha1.DocumentSource{
				{Name: "wiki", Git: &ragv1alpha1.GitSource{URL: "https://git.example/wiki.git", Ref: "main", SecretRef: &ragv1alpha1.LocalSecretReference{Name: "git-creds"}}},
				{Name: "filings", PVC: &ragv1alpha1.PVCSource{ClaimName: "reports", Path: "2026/q3"}},
				{Name: "faq", HTTP: &ragv1alpha1.HTTPSource{URLs: []string{"https://docs.example/faq.md"}}},
			},
		}
	})
	create(t, rs)
	job := waitForJobs(t, ns, "idx", 1)[0]
	server := get(t, &appsv1.Deployment{}, ns, "idx")

	if !metav1.IsControlledBy(&job, rs) {
		t.Errorf("Job owners = %+v, want the RagService", job.OwnerReferences)
	}
	spec := job.Spec
	if ptr.Deref(spec.BackoffLimit, -1) != resources.IndexerBackoffLimit || ptr.Deref(spec.TTLSecondsAfterFinished, -1) != resources.IndexerTTLSeconds {
		t.Errorf("backoffLimit %v, ttl %v", spec.BackoffLimit, spec.TTLSecondsAfterFinished)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || ptr.Deref(pod.AutomountServiceAccountToken, true) || ptr.Deref(pod.EnableServiceLinks, true) {
		t.Errorf("pod = restart %s, token %v, links %v", pod.RestartPolicy, pod.AutomountServiceAccountToken, pod.EnableServiceLinks)
	}
	if psc := pod.SecurityContext; psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v, want restricted", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != testServerImage || !slices.Equal(c.Args, []string{"ingest"}) || len(c.Command) != 0 {
		t.Errorf("image %s, command %v, args %v; want the server image with args [ingest]", c.Image, c.Command, c.Args)
	}
	if c.TerminationMessagePath != contract.IndexReportPath || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("termination message %s %s", c.TerminationMessagePath, c.TerminationMessagePolicy)
	}
	sc := c.SecurityContext
	if sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context = %+v, want restricted with a read-only root", sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources = %+v, want requests and limits", c.Resources)
	}

	// The same model and store settings as the server, the API key by the
	// same secretKeyRef.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	serverEnv := envOf(server)
	for _, k := range []string{"LLM_MODEL", "EMBEDDING_MODEL", "CHROMA_URL", "CHROMA_COLLECTION", "RAGOPS_OWNER", "CHUNK_SIZE", "CHUNK_OVERLAP"} {
		if env[k].Value == "" || env[k].Value != serverEnv[k].Value {
			t.Errorf("env %s = %q, server has %q", k, env[k].Value, serverEnv[k].Value)
		}
	}
	if ref := env["OPENAI_API_KEY"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || *ref.SecretKeyRef != *serverEnv["OPENAI_API_KEY"].ValueFrom.SecretKeyRef {
		t.Errorf("OPENAI_API_KEY = %+v, want the server's secretKeyRef", env["OPENAI_API_KEY"])
	}
	for _, k := range []string{"API_TOKEN_FILE", "DOCS_DIR", "PORT"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s set on the indexer", k)
		}
	}
	var sources ragv1alpha1.DocumentsSource
	if err := json.Unmarshal([]byte(env[contract.EnvSources].Value), &sources); err != nil {
		t.Fatalf("RAGOPS_SOURCES: %v", err)
	}
	var names []string
	for _, s := range sources.Sources {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"configmap", "wiki", "filings", "faq"}) || sources.ConfigMapRef != nil ||
		sources.Sources[0].ConfigMap.Name != "handbook" || !slices.Equal(sources.Exclude, []string{"drafts/**"}) {
		t.Errorf("RAGOPS_SOURCES = %s, want configMapRef as the source configmap, then the sources", env[contract.EnvSources].Value)
	}

	// Only the objects the sources name, read-only, at the contract's paths.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounted := map[string]string{} // mount path -> object
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		switch {
		case v.EmptyDir != nil:
			if m.MountPath != "/tmp" {
				t.Errorf("emptyDir at %s, want /tmp", m.MountPath)
			}
			continue
		case v.Secret != nil:
			mounted[m.MountPath] = "secret/" + v.Secret.SecretName
		case v.ConfigMap != nil:
			mounted[m.MountPath] = "configmap/" + v.ConfigMap.Name
		case v.PersistentVolumeClaim != nil:
			if !v.PersistentVolumeClaim.ReadOnly {
				t.Errorf("PVC volume %s is writable", v.Name)
			}
			mounted[m.MountPath] = "pvc/" + v.PersistentVolumeClaim.ClaimName + ":" + m.SubPath
		default:
			t.Errorf("unexpected volume %+v", v)
		}
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.MountPath)
		}
	}
	want := map[string]string{
		"/var/run/ragops/sources/configmap/configmap": "configmap/handbook",
		"/var/run/ragops/sources/wiki/secret":         "secret/git-creds",
		"/var/run/ragops/sources/filings/volume":      "pvc/reports:2026/q3",
	}
	if fmt.Sprint(mounted) != fmt.Sprint(want) {
		t.Errorf("mounts = %v\nwant %v", mounted, want)
	}

	// The Chroma NetworkPolicy admits the indexer's pods; the server
	// Service does not select them.
	np := get(t, &networkingv1.NetworkPolicy{}, ns, "idx-chroma")
	admitted := false
	for _, peer := range np.Spec.Ingress[0].From {
		sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		admitted = admitted || (peer.NamespaceSelector == nil && sel.Matches(labels.Set(spec.Template.Labels)))
	}
	if !admitted {
		t.Errorf("the Chroma NetworkPolicy %+v does not admit the indexer pods %v", np.Spec.Ingress, spec.Template.Labels)
	}
	svc := get(t, &corev1.Service{}, ns, "idx")
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(spec.Template.Labels)) {
		t.Errorf("the server Service selects the indexer pods")
	}

	// Status: Indexing, an event; Ready does not wait for the index.
	markAvailable(t, ns, "idx")
	markChromaAvailable(t, ns, "idx-chroma")
	waitFor(t, &ragv1alpha1.RagService{}, ns, "idx", func(rs *ragv1alpha1.RagService) error {
		if err := hasCondition(rs, ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, ragv1alpha1.ReasonIndexing); err != nil {
			return err
		}
		if rs.Status.Index == nil || rs.Status.Index.Job != job.Name {
			return fmt.Errorf("status.index = %+v, want job %s", rs.Status.Index, job.Name)
		}
		return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	waitForEvent(t, ns, "idx", "IndexStarted")
}

func TestIndexStatusFollowsTheJob(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}}
	create(t, cm)
	create(t, newRagService(ns, "follow", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{
			ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"},
			Sources:      []ragv1alpha1.DocumentSource{{Name: "faq", HTTP: &ragv1alpha1.HTTPSource{URLs: []string{"https://docs.example/faq.md"}}}},
		}
	}))
	first := waitForJobs(t, ns, "follow", 1)[0]
	waitFor(t, &ragv1alpha1.RagService{}, ns, "follow", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, ragv1alpha1.ReasonIndexing))

	// A source the indexer could not reach: SourceUnreachable, with counts
	// and per-source state.
	finishJob(t, &first, 0, reportJSON(t, contract.IndexReport{Documents: 1, Chunks: 3, Sources: []contract.SourceReport{
		{Name: "configmap", Revision: cm.ResourceVersion, Indexed: 1, Skipped: 1, SkippedFiles: [][2]string{{"logo.png", "unsupported format"}}},
		{Name: "faq", Error: "GET https://docs.example/faq.md: 503 Service Unavailable"},
	}}))
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "follow", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, ragv1alpha1.ReasonSourceUnreachable))
	idx := rs.Status.Index
	if idx.Documents != 1 || idx.Chunks != 3 || idx.Job != first.Name || idx.LastSyncTime == nil || idx.SourcesHash != first.Annotations[resources.SourcesHashAnnotation] {
		t.Errorf("status.index = %+v", idx)
	}
	wantSources := []ragv1alpha1.SourceIndexStatus{
		{Name: "configmap", Revision: cm.ResourceVersion, FilesIndexed: 1, FilesSkipped: 1, Skipped: []ragv1alpha1.SkippedFile{{Path: "logo.png", Reason: "unsupported format"}}},
		{Name: "faq", LastError: "GET https://docs.example/faq.md: 503 Service Unavailable"},
	}
	if fmt.Sprintf("%+v", idx.Sources) != fmt.Sprintf("%+v", wantSources) {
		t.Errorf("status.index.sources = %+v\nwant %+v", idx.Sources, wantSources)
	}
	if e := waitForEvent(t, ns, "follow", ragv1alpha1.ReasonSourceUnreachable); e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "503") {
		t.Errorf("event = %s %q, want a Warning naming the error", e.Type, e.Note)
	}

	// Nothing changed: no new Job, whatever wakes the operator.
	before := len(quiesce(t, ns, time.Second))
	touch(t, ns, "follow")
	after := quiesce(t, ns, 2*time.Second)
	if jobs := jobsOf(t, ns, "follow"); len(jobs) != 1 {
		t.Errorf("%d Jobs after a pass with nothing changed, want 1", len(jobs))
	}
	if extra := after[before:]; len(extra) != 0 {
		t.Errorf("a pass with nothing changed wrote %d times: %s", len(extra), summarize(extra))
	}

	// The documents change: a new Job; it succeeds with every source read.
	update(t, cm, func(cm *corev1.ConfigMap) { cm.Data["b.md"] = "B" })
	second := otherJob(t, waitForJobs(t, ns, "follow", 2), first.Name)
	if second.Annotations[resources.SourcesHashAnnotation] == first.Annotations[resources.SourcesHashAnnotation] {
		t.Error("the sources hash did not change with the ConfigMap")
	}
	finishJob(t, &second, 0, reportJSON(t, contract.IndexReport{Documents: 3, Chunks: 7, Sources: []contract.SourceReport{
		{Name: "configmap", Revision: "2", Indexed: 2}, {Name: "faq", Revision: "etag", Indexed: 1},
	}}))
	rs = waitFor(t, &ragv1alpha1.RagService{}, ns, "follow", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonIndexed))
	if rs.Status.Index.Documents != 3 || rs.Status.Index.Chunks != 7 || rs.Status.Index.Job != second.Name {
		t.Errorf("status.index = %+v", rs.Status.Index)
	}
	if e := waitForEvent(t, ns, "follow", ragv1alpha1.ReasonIndexed); !strings.Contains(e.Note, "3 documents, 7 chunks") {
		t.Errorf("Indexed event %q, want the counts", e.Note)
	}

	// spec.documents removed: no Job, Indexed=True NoDocuments, no
	// status.index.
	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.Documents = nil })
	rs = waitFor(t, &ragv1alpha1.RagService{}, ns, "follow", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonNoDocuments))
	if rs.Status.Index != nil {
		t.Errorf("status.index = %+v, want none", rs.Status.Index)
	}
}

func TestIndexJobSuperseded(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}})
	rs := newRagService(ns, "sup", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}}
	})
	create(t, rs)
	old := waitForJobs(t, ns, "sup", 1)[0]

	update(t, rs, func(rs *ragv1alpha1.RagService) { rs.Spec.Documents.Include = []string{"**/*.md"} })
	// The running Job is deleted in the foreground; no second Job runs
	// beside it.
	waitFor(t, &batchv1.Job{}, ns, old.Name, func(j *batchv1.Job) error {
		if j.DeletionTimestamp.IsZero() || !slices.Contains(j.Finalizers, metav1.FinalizerDeleteDependents) {
			return fmt.Errorf("Job %s not deleted in the foreground (finalizers %v)", j.Name, j.Finalizers)
		}
		return nil
	})
	quiesce(t, ns, time.Second)
	if jobs := jobsOf(t, ns, "sup"); len(jobs) != 1 {
		t.Fatalf("%d Jobs while the superseded one stops, want 1", len(jobs))
	}
	waitForEvent(t, ns, "sup", "IndexSuperseded")

	collectGarbage(t, ns)
	absent(t, &batchv1.Job{}, ns, old.Name)
	next := waitForJobs(t, ns, "sup", 1)[0]
	if next.Name == old.Name || next.Annotations[resources.SourcesHashAnnotation] == old.Annotations[resources.SourcesHashAnnotation] {
		t.Errorf("new Job %s (%s), want another run than %s", next.Name, next.Annotations[resources.SourcesHashAnnotation], old.Name)
	}
	var sources ragv1alpha1.DocumentsSource
	for _, e := range next.Spec.Template.Spec.Containers[0].Env {
		if e.Name == contract.EnvSources {
			if err := json.Unmarshal([]byte(e.Value), &sources); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(sources.Include, []string{"**/*.md"}) {
		t.Errorf("new Job's sources %+v, want the new include", sources)
	}
}

func TestIndexFailureBacksOff(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}})
	create(t, newRagService(ns, "fail", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}}
	}))

	// Every Job fails as soon as it appears, for window: count the Jobs
	// created and the gaps between them.
	backoff := reconciler.IndexBackoff
	const window = 14 * time.Second
	start := time.Now()
	var created []time.Time
	seen := map[string]bool{}
	for time.Since(start) < window {
		for _, job := range jobsOf(t, ns, "fail") {
			if seen[job.Name] || !job.DeletionTimestamp.IsZero() {
				continue
			}
			seen[job.Name] = true
			created = append(created, time.Now())
			finishJob(t, &job, 1, "cannot reach the embedding API: connection refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var gaps []time.Duration
	for i := 1; i < len(created); i++ {
		gaps = append(gaps, created[i].Sub(created[i-1]).Round(10*time.Millisecond))
	}
	t.Logf("back-off %v: %d Jobs in %s, gaps %v", backoff, len(created), window, gaps)
	// With 1 s doubling to 4 s, failures at once: Jobs at about 0, 1, 3, 7,
	// 11 s, so 5 in 14 s (a hot loop would make hundreds). The Job's
	// completion time has a resolution of a second, so a gap may be up to
	// a second shorter than the back-off.
	if len(created) < 4 || len(created) > 6 {
		t.Errorf("%d Jobs in %s, want 4 to 6", len(created), window)
	}
	for i, g := range gaps {
		want := backoff.after(i + 1)
		if g < want-time.Second || g > want+2*time.Second {
			t.Errorf("gap %d = %s, want about %s", i+1, g, want)
		}
	}
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "fail", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, ragv1alpha1.ReasonIndexFailed))
	if c := findCondition(rs, ragv1alpha1.ConditionIndexed); !strings.Contains(c.Message, "connection refused") || !strings.Contains(c.Message, "retrying at") {
		t.Errorf("Indexed message %q, want the termination message and the retry time", c.Message)
	}
	if e := waitForEvent(t, ns, "fail", ragv1alpha1.ReasonIndexFailed); e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "connection refused") {
		t.Errorf("IndexFailed event %s %q", e.Type, e.Note)
	}
	// Finished attempts of the run are cleaned up as the next starts.
	if jobs := jobsOf(t, ns, "fail"); len(jobs) > 2 {
		t.Errorf("%d Jobs kept, want the last attempts only", len(jobs))
	}
}

func TestIndexSchedule(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Data: map[string]string{"a.md": "A"}})
	create(t, newRagService(ns, "cron", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}, Schedule: "0 * * * *"}
	}))
	first := waitForJobs(t, ns, "cron", 1)[0]
	finishJob(t, &first, 0, reportJSON(t, contract.IndexReport{Documents: 1, Chunks: 1, Sources: []contract.SourceReport{{Name: "configmap", Indexed: 1}}}))
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "cron", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonIndexed))

	// The next slot is at most an hour away: the pass asks to be woken then.
	res, err := reconciler.Reconcile(context.Background(), reconcileRequest(ns, "cron"))
	next := time.Now().Truncate(time.Hour).Add(time.Hour)
	if err != nil || res.RequeueAfter <= 0 || res.RequeueAfter > time.Until(next)+time.Second {
		t.Errorf("result %+v, error %v; want a requeue at the next slot %s", res, err, next)
	}

	// The last sync was two hours ago: a slot has come, a new run starts.
	rs.Status.Index.LastSyncTime = ptr.To(metav1.NewTime(time.Now().Add(-2 * time.Hour).Truncate(time.Second)))
	if err := k8sClient.Status().Update(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	touch(t, ns, "cron")
	second := otherJob(t, waitForJobs(t, ns, "cron", 2), first.Name)
	if run := second.Annotations[resources.IndexRunAnnotation]; !strings.Contains(run, "@") ||
		second.Annotations[resources.SourcesHashAnnotation] != first.Annotations[resources.SourcesHashAnnotation] {
		t.Errorf("scheduled Job: run %q, hash %q; want the same sources at a slot", run, second.Annotations[resources.SourcesHashAnnotation])
	}
	if e := waitForEvent(t, ns, "cron", "IndexStarted"); e == nil {
		t.Fatal("no IndexStarted event")
	}
}

func TestIndexInvalidSchedule(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	for name, schedule := range map[string]string{"minute61": "61 * * * *", "toooften": "@every 10s"} {
		create(t, newRagService(ns, name, func(rs *ragv1alpha1.RagService) {
			rs.Spec.Documents = &ragv1alpha1.DocumentsSource{ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "docs"}, Schedule: schedule}
		}))
		rs := waitFor(t, &ragv1alpha1.RagService{}, ns, name, conditionIs(ragv1alpha1.ConditionReady, metav1.ConditionFalse, ragv1alpha1.ReasonInvalidSpec))
		if c := findCondition(rs, ragv1alpha1.ConditionReady); !strings.Contains(c.Message, "documents.schedule") {
			t.Errorf("%s: message %q, want one naming documents.schedule", name, c.Message)
		}
		if jobs := jobsOf(t, ns, name); len(jobs) != 0 {
			t.Errorf("%s: %d Jobs for an invalid schedule", name, len(jobs))
		}
	}
}

func TestIndexWaitsForSourceObjects(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, newRagService(ns, "miss", func(rs *ragv1alpha1.RagService) {
		rs.Spec.Documents = &ragv1alpha1.DocumentsSource{
			ConfigMapRef: &ragv1alpha1.ConfigMapReference{Name: "handbook"},
			Sources: []ragv1alpha1.DocumentSource{
				{Name: "wiki", Git: &ragv1alpha1.GitSource{URL: "https://git.example/wiki.git", SecretRef: &ragv1alpha1.LocalSecretReference{Name: "git-creds"}}},
			},
		}
	}))
	markAvailable(t, ns, "miss")
	markChromaAvailable(t, ns, "miss-chroma")
	// The server does not wait for the documents: Ready; Indexed names the
	// missing object; no Job.
	for _, step := range []struct {
		reason, object string
		create         func()
	}{
		{ragv1alpha1.ReasonConfigMapNotFound, `"handbook"`, func() {
			create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "handbook"}, Data: map[string]string{"a.md": "A"}})
		}},
		{ragv1alpha1.ReasonSecretNotFound, `"git-creds"`, func() { createSecret(t, ns, "git-creds", map[string]string{"token": "t"}) }},
	} {
		rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "miss", func(rs *ragv1alpha1.RagService) error {
			if err := hasCondition(rs, ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, step.reason); err != nil {
				return err
			}
			return hasCondition(rs, ragv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		})
		if c := findCondition(rs, ragv1alpha1.ConditionIndexed); !strings.Contains(c.Message, step.object) {
			t.Errorf("Indexed message %q, want it to name %s", c.Message, step.object)
		}
		if jobs := jobsOf(t, ns, "miss"); len(jobs) != 0 {
			t.Fatalf("%d Jobs while %s is missing", len(jobs), step.object)
		}
		waitForEvent(t, ns, "miss", step.reason)
		step.create()
	}
	waitForJobs(t, ns, "miss", 1)
	waitFor(t, &ragv1alpha1.RagService{}, ns, "miss", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionFalse, ragv1alpha1.ReasonIndexing))
}

func TestNoDocumentsNoJob(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "openai", map[string]string{"OPENAI_API_KEY": "sk"})
	create(t, newRagService(ns, "plain"))
	rs := waitFor(t, &ragv1alpha1.RagService{}, ns, "plain", conditionIs(ragv1alpha1.ConditionIndexed, metav1.ConditionTrue, ragv1alpha1.ReasonNoDocuments))
	quiesce(t, ns, time.Second)
	if jobs := jobsOf(t, ns, "plain"); len(jobs) != 0 || rs.Status.Index != nil {
		t.Errorf("%d Jobs, status.index %+v; want none", len(jobs), rs.Status.Index)
	}
	for _, w := range writes.in(ns) {
		if strings.Contains(w, "/jobs") || strings.Contains(w, "/pods") {
			t.Errorf("write %s for a RagService without documents", w)
		}
	}
}

func findCondition(rs *ragv1alpha1.RagService, t string) metav1.Condition {
	for _, c := range rs.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}

func reconcileRequest(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// TestParseSchedule checks the operator's side of the schedule: what the
// CRD's rule admits and cron cannot run, and schedules firing too often.
func TestParseSchedule(t *testing.T) {
	for _, ok := range []string{"*/15 * * * *", "@hourly", "@daily", "@every 1h30m", "0 6-18/2 * * MON-FRI", "@every 1m"} {
		if _, err := ParseSchedule(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"61 * * * *":  "above maximum",
		"* * * * FOO": "not a cron schedule",
		"@every 10s":  "more often than once a minute",
		"@every soon": "not a cron schedule",
	} {
		if _, err := ParseSchedule(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", bad, err, want)
		}
	}
	b := IndexBackoff{Base: 30 * time.Second, Max: 30 * time.Minute}
	var got []time.Duration
	for n := 1; n <= 9; n++ {
		got = append(got, b.after(n))
	}
	if fmt.Sprint(got) != "[30s 1m0s 2m0s 4m0s 8m0s 16m0s 30m0s 30m0s 30m0s]" {
		t.Errorf("back-off = %v", got)
	}
	if time.Duration(resources.IndexerTTLSeconds)*time.Second <= DefaultIndexBackoff.Max {
		t.Error("a failed Job's TTL must outlast the longest back-off: it carries the attempt number")
	}
}
