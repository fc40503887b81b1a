package ragserver_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

// TestDocsDirRemovalsArePruned: the index follows DOCS_DIR across restarts,
// on both stores. A file removed from DOCS_DIR is deleted at the next start;
// a document added through the API is not; an unchanged file costs no
// embedding call; a missing DOCS_DIR or an unreadable file deletes nothing; a
// really empty DOCS_DIR deletes the DOCS_DIR documents only.
func TestDocsDirRemovalsArePruned(t *testing.T) {
	for _, store := range []string{"chroma", "embedded"} {
		t.Run(store, func(t *testing.T) {
			f, url := fake(t)
			env := map[string]string{
				"OPENAI_BASE_URL": url, "EMBEDDING_MODEL": "fake-embed-prune-" + store, "LLM_MODEL": "local",
				"DATA_DIR": t.TempDir(), "LOG_LEVEL": "info",
			}
			if store == "chroma" {
				env["CHROMA_URL"] = chromaserver.Shared(t).URL()
				env["CHROMA_COLLECTION"] = uniqueCollection()
			}
			docs := t.TempDir()
			write := func(name, text string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(docs, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("a.md", "The board approved a quarterly dividend of 42 cents per share.")
			write("b.md", "Goodwill impairment testing found no impairment of the retail segment.")
			env["DOCS_DIR"] = docs

			documents := func(ts *testServer) []string {
				t.Helper()
				r := ts.get(t, "/documents")
				if r.Status != 200 {
					t.Fatalf("GET /documents: %s", r)
				}
				var names []string
				for _, d := range r.list("documents") {
					names = append(names, d.(map[string]any)["source"].(string))
				}
				return names
			}
			// retrieve returns the sources of the passages for question, by
			// source name, with their IDs.
			retrieve := func(ts *testServer, question string) map[string][]string {
				t.Helper()
				r := ts.post(t, "/retrieve", map[string]any{"question": question, "top_k": 50})
				if r.Status != 200 {
					t.Fatalf("retrieve: %s", r)
				}
				out := map[string][]string{}
				for _, s := range r.list("sources") {
					m := s.(map[string]any)
					out[m["source"].(string)] = append(out[m["source"].(string)], m["id"].(string))
				}
				return out
			}

			first := start(t, env)
			first.waitReady(t)
			r := first.post(t, "/documents", map[string]any{"documents": []map[string]any{
				{"source": "c.md", "text": "The treasury team hedged 60% of floating-rate exposure.", "metadata": map[string]any{"team": "treasury"}},
			}})
			if r.Status != 200 || r.JSON["added"] != float64(1) {
				t.Fatalf("POST /documents: %s", r)
			}
			if got := documents(first); !slices.Equal(got, []string{"a.md", "b.md", "c.md"}) {
				t.Fatalf("documents after the first start = %v", got)
			}
			before := retrieve(first, "dividend goodwill impairment treasury")
			if len(before["a.md"]) == 0 || len(before["b.md"]) == 0 || len(before["c.md"]) == 0 {
				t.Fatalf("retrieve before the restart: %v", before)
			}
			r = first.post(t, "/retrieve", map[string]any{"question": "dividend", "filter": map[string]any{"origin": "docs_dir"}, "top_k": 50})
			if n := len(r.list("sources")); r.Status != 200 || n != len(before["a.md"])+len(before["b.md"]) {
				t.Fatalf("filter origin=docs_dir: %d sources (%s)", n, r)
			}
			first.stop(t)

			// b.md leaves DOCS_DIR (a key removed from the ConfigMap).
			if err := os.Remove(filepath.Join(docs, "b.md")); err != nil {
				t.Fatal(err)
			}
			f.Reset()
			second := start(t, env)
			second.waitReady(t)
			if n := f.Stats().EmbeddingRequests; n != 0 {
				t.Fatalf("restart with unchanged a.md made %d embedding calls, want 0", n)
			}
			if !strings.Contains(second.logs.String(), `"msg":"Removed sources no longer in DOCS_DIR","sources":["b.md"]`) {
				t.Errorf("no log of the removal: %s", second.logs)
			}
			if got := documents(second); !slices.Equal(got, []string{"a.md", "c.md"}) {
				t.Fatalf("documents after b.md left DOCS_DIR = %v, want a.md and c.md", got)
			}
			after := retrieve(second, "dividend goodwill impairment treasury")
			if len(after["b.md"]) != 0 {
				t.Fatalf("b.md still retrieved: %v", after)
			}
			if !slices.Equal(after["a.md"], before["a.md"]) || !slices.Equal(after["c.md"], before["c.md"]) {
				t.Fatalf("a.md or c.md changed: before %v, after %v", before, after)
			}
			r = second.post(t, "/retrieve", map[string]any{"question": "goodwill impairment", "filter": map[string]any{"source": "b.md"}})
			if r.Status != 200 || len(r.list("sources")) != 0 {
				t.Fatalf("b.md by filter: %s", r)
			}
			second.stop(t)

			// A missing DOCS_DIR is a configuration error: the server does
			// not start, and deletes nothing.
			env["DOCS_DIR"] = filepath.Join(docs, "missing")
			err := ragserver.Run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "DOCS_DIR") {
				t.Fatalf("Run with a missing DOCS_DIR = %v, want a DOCS_DIR error", err)
			}
			// A file still present but unreadable (here a dangling symlink)
			// is skipped and keeps its last version.
			env["DOCS_DIR"] = docs
			if err := os.Rename(filepath.Join(docs, "a.md"), filepath.Join(t.TempDir(), "a.md")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("gone.md", filepath.Join(docs, "a.md")); err != nil {
				t.Fatal(err)
			}
			third := start(t, env)
			third.waitReady(t)
			if got := documents(third); !slices.Equal(got, []string{"a.md", "c.md"}) {
				t.Fatalf("documents with a.md unreadable = %v, want a.md and c.md", got)
			}
			third.stop(t)

			// A DOCS_DIR that exists and is really empty: no DOCS_DIR document
			// is left; the API one stays.
			if err := os.Remove(filepath.Join(docs, "a.md")); err != nil {
				t.Fatal(err)
			}
			fourth := start(t, env)
			fourth.waitReady(t)
			if got := documents(fourth); !slices.Equal(got, []string{"c.md"}) {
				t.Fatalf("documents with an empty DOCS_DIR = %v, want c.md", got)
			}
			if !strings.Contains(fourth.logs.String(), "DOCS_DIR is empty") {
				t.Errorf("no warning about the empty DOCS_DIR: %s", fourth.logs)
			}
			if got := retrieve(fourth, "treasury hedged"); len(got) != 1 || !slices.Equal(got["c.md"], before["c.md"]) {
				t.Fatalf("retrieve with an empty DOCS_DIR: %v", got)
			}
		})
	}
}

// TestReplicasPruneConcurrently: replicas starting at once on a DOCS_DIR that
// lost a file all become ready and agree on the index.
func TestReplicasPruneConcurrently(t *testing.T) {
	chroma := chromaserver.Shared(t)
	docs := t.TempDir()
	for _, name := range []string{"a.md", "b.md", "c.md"} {
		if err := os.WriteFile(filepath.Join(docs, name), []byte("Document "+name+" reports net revenue and operating margin."), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"DOCS_DIR": docs, "CHROMA_URL": chroma.URL(), "CHROMA_COLLECTION": uniqueCollection()}
	first := start(t, env)
	first.waitReady(t)
	first.stop(t)
	for _, name := range []string{"b.md", "c.md"} {
		if err := os.Remove(filepath.Join(docs, name)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	servers := make([]*testServer, 3)
	for i := range servers {
		wg.Go(func() { servers[i] = start(t, env) })
	}
	wg.Wait()
	for i, s := range servers {
		s.waitReady(t)
		r := s.get(t, "/documents")
		docs := r.list("documents")
		if r.Status != 200 || len(docs) != 1 || docs[0].(map[string]any)["source"] != "a.md" {
			t.Fatalf("replica %d: %s", i, r)
		}
		if strings.Contains(s.logs.String(), "Start-up ingestion failed") {
			t.Errorf("replica %d had to retry: %s", i, s.logs)
		}
	}
}

// uniqueCollection is a collection prefix of its own, so that a test finds an
// empty collection on the shared Chroma even when run with -count.
func uniqueCollection() string {
	return "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
}
