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
	"io"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/ragserver"
)

// TestMigratorJob crosses the contract: the migrator's environment is a
// configuration the server's loader accepts, for the new model's
// collection, and the previous model's collection it reads is the one a
// server on that model uses; the server builder renders the model it is
// given, not the spec's.
func TestMigratorJob(t *testing.T) {
	rs := newRagService(withSources)
	rs.Spec.EmbeddingModel = "embed-new"
	rs.Spec.VectorStore.KeepPreviousCollection = true
	for _, phase := range []string{contract.MigratePhaseCopy, contract.MigratePhaseFinalize} {
		in := MigratorInputs{Image: "i:1", CollectionOwner: "uid-1", Phase: phase, From: "embed-old", To: "embed-new", Since: 1700000000, Attempt: 3}
		job := typed[batchv1.Job](t, MigratorJob(rs, in))
		assertOwned(t, job.OwnerReferences)
		assertLabels(t, job.Labels, ComponentMigrator)
		assertLabels(t, job.Spec.Template.Labels, ComponentMigrator)
		run := MigrateRun(phase, "embed-old", "embed-new")
		if job.Name != MigratorJobName(rs, run, 3) || job.Annotations[MigrateRunAnnotation] != run || job.Annotations[IndexAttemptAnnotation] != "3" {
			t.Errorf("name %s, annotations %v", job.Name, job.Annotations)
		}
		if MigratorJobName(rs, run, 3) == MigratorJobName(rs, run, 4) || MigratorJobName(rs, MigrateRun(contract.MigratePhaseCopy, "a", "b"), 1) == MigratorJobName(rs, MigrateRun(contract.MigratePhaseCopy, "b", "a"), 1) {
			t.Error("Job names collide")
		}
		c := job.Spec.Template.Spec.Containers[0]
		if c.Name != MigratorContainerName || len(c.Args) != 1 || c.Args[0] != contract.MigrateCommand || c.TerminationMessagePath != contract.IndexReportPath {
			t.Errorf("container %s args %v", c.Name, c.Args)
		}
		if c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem || *job.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Errorf("the migrator pod is not locked down: %+v", c.SecurityContext)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil {
				env[e.Name] = "sk-from-secret"
			}
		}
		if env[contract.EnvMigrateFromModel] != "embed-old" || env[contract.EnvMigratePhase] != phase || env[contract.EnvKeepPreviousCollection] != "true" {
			t.Errorf("%s: env %v", phase, env)
		}
		if _, has := env[contract.EnvMigrateSince]; has != (phase == contract.MigratePhaseFinalize) || (has && env[contract.EnvMigrateSince] != "1700000000") {
			t.Errorf("%s: %s = %q", phase, contract.EnvMigrateSince, env[contract.EnvMigrateSince])
		}
		cfg, err := ragserver.LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("the server's loader refuses the migrator's environment: %v", err)
		}
		if cfg.EmbeddingModel != "embed-new" {
			t.Errorf("the migrator writes the collection of %q, want the new model's", cfg.EmbeddingModel)
		}

		// The server on the previous model: its collection is the one the
		// migrator reads.
		d := typed[appsv1.Deployment](t, ServerDeployment(rs, ServerInputs{Image: "i:1", CollectionOwner: "uid-1", EmbeddingModel: "embed-old"}))
		senv := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			senv[e.Name] = e.Value
			if e.ValueFrom != nil {
				senv[e.Name] = "sk-from-secret"
			}
		}
		delete(senv, contract.EnvAPITokenFile) // a mounted file; serverConfig covers it
		server, err := ragserver.LoadConfig(nil, func(k string) string { return senv[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if server.EmbeddingModel != "embed-old" {
			t.Errorf("the server renders %q, want the active model it was given", server.EmbeddingModel)
		}
		if ragserver.CollectionName(server.ChromaCollection, server.EmbeddingModel) != ragserver.CollectionName(cfg.ChromaCollection, env[contract.EnvMigrateFromModel]) ||
			cfg.ChromaURL != server.ChromaURL || cfg.Owner != server.Owner {
			t.Errorf("the migrator reads another collection than the server on the previous model uses: %+v vs %+v", cfg, server)
		}
	}
}
