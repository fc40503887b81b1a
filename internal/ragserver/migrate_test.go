package ragserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/llm/hashembed"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

const (
	modelA = "fake-embed-a"
	modelB = "fake-embed-b"
)

// migrate runs "ragserver migrate" in-process and returns its report.
func migrate(t *testing.T, env map[string]string, phase string, since int64) contract.MigrationReport {
	t.Helper()
	env = cloneEnv(env)
	report := filepath.Join(t.TempDir(), "termination-log")
	env[contract.EnvIndexReportPath] = report
	env[contract.EnvMigratePhase] = phase
	if since > 0 {
		env[contract.EnvMigrateSince] = strconv.FormatInt(since, 10)
	}
	var logs syncBuffer
	if err := ragserver.Run(context.Background(), []string{contract.MigrateCommand, "--from", modelA}, func(k string) string { return env[k] }, &logs); err != nil {
		t.Fatalf("migrate %s: %v\nlogs:\n%s", phase, err, logs.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep contract.MigrationReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	return rep
}

// apiDoc is a document added through the API, a few chunks long.
func apiDoc(source, tag string) map[string]any {
	var b strings.Builder
	for p := range 4 {
		fmt.Fprintf(&b, "Document %s paragraph %d, version %s: the auditors sign the %s ledger.\n\n", source, p, tag, source)
	}
	return map[string]any{"source": source, "text": b.String(), "metadata": map[string]string{"team": "audit-" + source}}
}

// committedChunks reads a store's visible chunks: source to its chunks in
// order, with their embeddings and metadata.
func committedChunks(t *testing.T, store vectorstore.Store) map[string][]vectorstore.Record {
	t.Helper()
	ctx := context.Background()
	committed := map[string]vectorstore.SourceVersion{}
	if err := store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			committed[v.Source] = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]vectorstore.Record{}
	if err := store.Scan(ctx, nil, true, func(page []vectorstore.Record) error {
		for _, r := range page {
			if v, ok := committed[r.Source]; ok && v.Version == r.Version {
				out[r.Source] = append(out[r.Source], r)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for src, recs := range out {
		slices.SortFunc(recs, func(a, b vectorstore.Record) int { return a.Chunk - b.Chunk })
		if len(recs) != committed[src].Chunks {
			t.Errorf("%s: %d visible chunks, its commit record says %d", src, len(recs), committed[src].Chunks)
		}
		for i, r := range recs {
			if r.Chunk != i {
				t.Errorf("%s: chunk %d at position %d (missing or doubled chunks)", src, r.Chunk, i)
			}
		}
	}
	return out
}

// TestMigrateEmbeddingModel switches a server from model A to model B the
// way the operator does, on the embedded store and on a real Chroma:
// documents added through the API and a declared source are in A; the
// indexer syncs the declared source into B and "migrate" copies the API
// documents, re-embedded with B; a re-run embeds nothing; the old server
// keeps writing A (an update, a delete, a new document) and a second copy
// before the cut-over follows it; after the cut-over the new server writes B
// and the old one A, and the finalize phase copies only A's newer writes,
// then deletes A (Chroma) unless kept.
func TestMigrateEmbeddingModel(t *testing.T) {
	for _, kind := range []string{"embedded", "chroma"} {
		t.Run(kind, func(t *testing.T) {
			f, modelURL := fake(t)
			env := map[string]string{
				"OPENAI_BASE_URL": modelURL, "EMBEDDING_MODEL": modelA, "LLM_MODEL": "local",
				"CHROMA_COLLECTION": uniqueCollection(), "CHUNK_SIZE": "120", "CHUNK_OVERLAP": "0",
				"EMBED_BATCH_SIZE": "4", "DATA_DIR": t.TempDir(),
			}
			var openA, openB func() vectorstore.Store
			if kind == "chroma" {
				env["CHROMA_URL"] = chromaserver.Shared(t).URL()
				open := func(model string) func() vectorstore.Store {
					return func() vectorstore.Store {
						s, err := chromastore.New(chromastore.Options{URL: env["CHROMA_URL"], Collection: ragserver.CollectionName(env["CHROMA_COLLECTION"], model)})
						if err != nil {
							t.Fatal(err)
						}
						return s
					}
				}
				openA, openB = open(modelA), open(modelB)
			} else {
				open := func(model string) func() vectorstore.Store {
					return func() vectorstore.Store {
						s, err := sqlitestore.Open(env["DATA_DIR"], ragserver.CollectionName(env["CHROMA_COLLECTION"], model))
						if err != nil {
							t.Fatal(err)
						}
						return s
					}
				}
				openA, openB = open(modelA), open(modelB)
			}
			envB := cloneEnv(env)
			envB["EMBEDDING_MODEL"] = modelB

			// Model A: a declared source and three documents of the API.
			ixA := newIndexer(t, env, map[string]any{"sources": []map[string]any{{"name": "drop", "pvc": map[string]any{"claimName": "drop"}}}})
			ixA.mount(t, "drop", "volume", map[string]string{"a.md": apiDoc("a", "declared")["text"].(string), "b.md": apiDoc("b", "declared")["text"].(string)})
			ixA.mustRun(t)
			a := start(t, env)
			if r := a.post(t, "/documents", map[string]any{"documents": []any{apiDoc("api1", "one"), apiDoc("api2", "one"), apiDoc("api3", "one")}}); r.Status != http.StatusOK {
				t.Fatalf("POST /documents: %s", r)
			}
			a.stop(t)

			// Before the cut-over: the indexer with B, then the copy.
			ixB := newIndexer(t, envB, map[string]any{"sources": []map[string]any{{"name": "drop", "pvc": map[string]any{"claimName": "drop"}}}})
			ixB.env[contract.EnvSourcesMountDir] = ixA.mountDir
			ixB.mustRun(t)
			rep := migrate(t, envB, contract.MigratePhaseCopy, 0)
			if rep.Documents != 3 || rep.Pruned != 0 || rep.Dropped {
				t.Fatalf("first copy: %+v, want 3 documents copied", rep)
			}
			storeA, storeB := openA(), openB()
			inA, inB := committedChunks(t, storeA), committedChunks(t, storeB)
			if want := []string{"api1", "api2", "api3", "drop/a.md", "drop/b.md"}; !slices.Equal(slices.Sorted(mapsKeys(inB)), want) {
				t.Fatalf("B holds %v, want %v (each once)", slices.Sorted(mapsKeys(inB)), want)
			}
			for _, src := range []string{"api1", "api2", "api3"} {
				if len(inB[src]) != len(inA[src]) || len(inB[src]) < 2 {
					t.Fatalf("%s: %d chunks in B, %d in A", src, len(inB[src]), len(inA[src]))
				}
				for i, r := range inB[src] {
					if r.Text != inA[src][i].Text || r.Metadata["team"] != "audit-"+src {
						t.Errorf("%s chunk %d: text or metadata changed in the copy: %+v", src, i, r)
					}
					// Chroma hands back the vectors it stored, not bit for bit.
					if c := cosine(r.Embedding, hashembed.Vector(r.Text, len(r.Embedding), modelB)); c < 0.9999 {
						t.Errorf("%s chunk %d: the embedding in B is not model B's (cosine %f)", src, i, c)
					}
					if c := cosine(r.Embedding, inA[src][i].Embedding); c > 0.99 {
						t.Errorf("%s chunk %d: B holds A's embedding (cosine %f)", src, i, c)
					}
				}
			}
			requests := f.Stats().EmbeddingRequests
			if rep := migrate(t, envB, contract.MigratePhaseCopy, 0); rep.Documents != 0 || rep.Unchanged != 3 {
				t.Fatalf("second copy: %+v, want 3 unchanged", rep)
			}
			if n := f.Stats().EmbeddingRequests - requests; n != 0 {
				t.Fatalf("a second copy made %d embedding requests", n)
			}

			// The old server keeps serving A until the cut-over.
			time.Sleep(1100 * time.Millisecond) // commit times are in seconds
			a = start(t, env)
			if r := a.post(t, "/documents", map[string]any{"documents": []any{apiDoc("api1", "two"), apiDoc("api4", "one")}}); r.Status != http.StatusOK {
				t.Fatalf("POST /documents: %s", r)
			}
			if r := a.status(t, http.MethodDelete, "/documents/api2"); r != http.StatusOK {
				t.Fatalf("DELETE: %d", r)
			}
			a.stop(t)
			if rep := migrate(t, envB, contract.MigratePhaseCopy, 0); rep.Documents != 2 || rep.Pruned != 1 || rep.Unchanged != 1 {
				t.Fatalf("copy after the old server's writes: %+v, want 2 copied (api1, api4), 1 pruned (api2), 1 unchanged", rep)
			}

			// The cut-over: B serves, A's last server still writes.
			since := time.Now().Unix() - 1
			time.Sleep(1100 * time.Millisecond)
			a = start(t, env)
			if r := a.post(t, "/documents", map[string]any{"documents": []any{apiDoc("api3", "late-in-a"), apiDoc("api5", "one"), apiDoc("api1", "three")}}); r.Status != http.StatusOK {
				t.Fatalf("POST /documents to A: %s", r)
			}
			a.stop(t)
			b := start(t, envB)
			// B's own write of api1 is the newest: the catch-up keeps it.
			time.Sleep(1100 * time.Millisecond)
			if r := b.post(t, "/documents", map[string]any{"documents": []any{apiDoc("api1", "four-in-b"), apiDoc("api6", "one")}}); r.Status != http.StatusOK {
				t.Fatalf("POST /documents to B: %s", r)
			}
			b.stop(t)
			if kind == "embedded" {
				storeA.Close() // the finalize phase drops A: no handle may be open
				storeB.Close()
			}
			rep = migrate(t, envB, contract.MigratePhaseFinalize, since)
			if rep.Documents != 2 || rep.Kept != 1 || !rep.Dropped {
				t.Fatalf("finalize: %+v, want 2 copied (api3, api5), api1 kept, A dropped", rep)
			}
			if kind == "embedded" {
				storeB = openB()
			}
			inB = committedChunks(t, storeB)
			if want := []string{"api1", "api3", "api4", "api5", "api6", "drop/a.md", "drop/b.md"}; !slices.Equal(slices.Sorted(mapsKeys(inB)), want) {
				t.Fatalf("B after the switch holds %v, want %v", slices.Sorted(mapsKeys(inB)), want)
			}
			for src, tag := range map[string]string{"api1": "four-in-b", "api3": "late-in-a", "api5": "one"} {
				if !strings.Contains(inB[src][0].Text, "version "+tag) {
					t.Errorf("%s in B: %q, want version %s", src, inB[src][0].Text, tag)
				}
			}
			storeA = openA()
			if left := committedChunks(t, storeA); len(left) != 0 {
				t.Errorf("A still holds %d documents after the finalize phase", len(left))
			}
			storeA.Close()
			storeB.Close()

			b = start(t, envB)
			r := b.get(t, "/documents")
			if r.str("embedding_model") != modelB || len(r.list("documents")) != 7 {
				t.Fatalf("GET /documents on B: %s", r)
			}
		})
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}
