package ragserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/testutil/gitserver"
	"github.com/ragops/ragops/internal/testutil/s3server"
)

// indexer runs "ragserver ingest" in-process with a store and sources.
type indexer struct {
	env      map[string]string
	mountDir string
	report   string
}

func newIndexer(t *testing.T, env map[string]string, spec any) *indexer {
	t.Helper()
	ix := &indexer{env: cloneEnv(env), mountDir: t.TempDir(), report: filepath.Join(t.TempDir(), "termination-log")}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ix.env[contract.EnvSources] = string(b)
	ix.env[contract.EnvSourcesMountDir] = ix.mountDir
	ix.env[contract.EnvIndexReportPath] = ix.report
	return ix
}

// mount writes files under the mount of source/<sub> (secret, volume...).
func (ix *indexer) mount(t *testing.T, source, sub string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(ix.mountDir, source, sub)
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs the indexer and returns its error, its report and its logs.
func (ix *indexer) run(t *testing.T) (contract.IndexReport, string, error) {
	t.Helper()
	var logs syncBuffer
	err := ragserver.Run(context.Background(), []string{contract.IndexerCommand}, func(k string) string { return ix.env[k] }, &logs)
	var rep contract.IndexReport
	b, rerr := os.ReadFile(ix.report)
	if rerr != nil {
		t.Fatalf("no index report (run error %v): %v\nlogs:\n%s", err, rerr, logs.String())
	}
	if len(b) > contract.MaxIndexReportBytes {
		t.Fatalf("report of %d bytes, over the termination message's %d", len(b), contract.MaxIndexReportBytes)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	return rep, logs.String(), err
}

func (ix *indexer) mustRun(t *testing.T) contract.IndexReport {
	t.Helper()
	rep, logs, err := ix.run(t)
	if err != nil {
		t.Fatalf("ingest: %v\nlogs:\n%s", err, logs)
	}
	return rep
}

func bySource(rep contract.IndexReport) map[string]contract.SourceReport {
	out := map[string]contract.SourceReport{}
	for _, s := range rep.Sources {
		out[s.Name] = s
	}
	return out
}

// documentChunks lists the server's documents with their chunk counts.
func documentChunks(t *testing.T, ts *testServer) map[string]int {
	t.Helper()
	r := ts.get(t, "/documents")
	if r.Status != 200 {
		t.Fatalf("GET /documents: %s", r)
	}
	out := map[string]int{}
	for _, d := range r.list("documents") {
		m := d.(map[string]any)
		name := m["source"].(string)
		if _, dup := out[name]; dup {
			t.Fatalf("document %s listed twice", name)
		}
		out[name] = int(m["chunks"].(float64))
	}
	return out
}

// TestIngestSources indexes a Git repository, HTTP files, an S3 prefix and a
// PVC directory, all served by real servers, into a real Chroma, beside a
// document added through the API and a source that cannot be reached; then
// changes the repository and loses the PVC.
func TestIngestSources(t *testing.T) {
	f, modelURL := fake(t)
	env := map[string]string{
		"OPENAI_BASE_URL": modelURL, "EMBEDDING_MODEL": "fake-embed-ingest", "LLM_MODEL": "local",
		"CHROMA_URL": chromaserver.Shared(t).URL(), "CHROMA_COLLECTION": uniqueCollection(),
		"CHUNK_SIZE": "200", "LOG_LEVEL": "info",
	}
	para := func(topic string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "Paragraph %d about %s: the finance team reviews %s every quarter and files the results.\n\n", i, topic, topic)
		}
		return b.String()
	}

	repo := gitserver.New(t)
	repo.User, repo.Password = "reader", "t0ken"
	c1 := repo.Commit("first", map[string]string{
		"docs/a.md": para("revenue", 6), "docs/b.md": para("liquidity", 6), "docs/keep.md": para("hedging", 6),
		"README.md": "excluded by the source's include", "docs/logo.png": "\x89PNG binary",
	})

	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer h77p" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, para("filings "+r.URL.Path, 3))
	}))
	defer httpSrv.Close()
	host := strings.TrimPrefix(httpSrv.URL, "http://")

	s3 := s3server.Start(t)
	admin, err := minio.New(strings.TrimPrefix(s3.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(s3server.AccessKey, s3server.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.MakeBucket(ctx, "reports", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{"annual/2025.md": para("the 2025 report", 4), "annual/2024.txt": para("the 2024 report", 4)} {
		if _, err := admin.PutObject(ctx, "reports", key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	spec := map[string]any{
		"exclude": []string{"**/draft-*"},
		"sources": []map[string]any{
			{"name": "handbook", "git": map[string]any{"url": repo.URL, "ref": "main", "secretRef": map[string]any{"name": "git-creds"}}, "include": []string{"docs/**"}},
			{"name": "filings", "http": map[string]any{"urls": []string{httpSrv.URL + "/f1.md", httpSrv.URL + "/f2.txt"}, "headersSecretRef": map[string]any{"name": "hdr"}}},
			{"name": "reports", "s3": map[string]any{"endpoint": s3.Endpoint, "bucket": "reports", "prefix": "annual/", "secretRef": map[string]any{"name": "s3"}}},
			{"name": "drop", "pvc": map[string]any{"claimName": "drop"}},
			{"name": "down", "http": map[string]any{"urls": []string{"http://127.0.0.1:1/unreachable.md"}}},
		},
	}
	ix := newIndexer(t, env, spec)
	ix.mount(t, "handbook", "secret", map[string]string{"username": "reader", "token": "t0ken"})
	ix.mount(t, "filings", "secret", map[string]string{"Authorization": "Bearer h77p"})
	ix.mount(t, "reports", "secret", map[string]string{"accessKeyID": s3server.AccessKey, "secretAccessKey": s3server.SecretKey})
	volume := ix.mount(t, "drop", "volume", map[string]string{"in/one.md": para("drop one", 3), "draft-two.md": "excluded globally"})

	// A server on the same store, with a document of the API.
	ts := start(t, env)
	ts.waitReady(t)
	if r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "api.md", "text": para("a note", 2)}}}); r.Status != 200 {
		t.Fatalf("POST /documents: %s", r)
	}

	before := f.Stats().EmbeddedInputs
	rep := ix.mustRun(t)
	firstInputs := f.Stats().EmbeddedInputs - before
	src := bySource(rep)
	if g := src["handbook"]; g.Revision != c1 || g.Indexed != 3 || g.Skipped != 1 || g.SkippedFiles[0][0] != "docs/logo.png" ||
		!strings.Contains(g.SkippedFiles[0][1], "extension") || g.Error != "" {
		t.Fatalf("git source report %+v", g)
	}
	if h := src["filings"]; h.Indexed != 2 || h.Error != "" || !strings.HasPrefix(h.Revision, "sha256:") {
		t.Fatalf("http source report %+v", h)
	}
	if s := src["reports"]; s.Indexed != 2 || s.Error != "" || s.Revision == "" {
		t.Fatalf("s3 source report %+v", s)
	}
	if p := src["drop"]; p.Indexed != 1 || p.Error != "" {
		t.Fatalf("pvc source report %+v", p)
	}
	if d := src["down"]; d.Error == "" || d.Indexed != 0 {
		t.Fatalf("the unreachable source: %+v, want its error", d)
	}
	docs := documentChunks(t, ts)
	want := []string{"api.md", "drop/in/one.md", "filings/" + host + "/f1.md", "filings/" + host + "/f2.txt",
		"handbook/docs/a.md", "handbook/docs/b.md", "handbook/docs/keep.md", "reports/2024.txt", "reports/2025.md"}
	if got := slices.Sorted(maps.Keys(docs)); !slices.Equal(got, want) {
		t.Fatalf("documents %v, want %v", got, want)
	}
	var declaredChunks int
	for name, n := range docs {
		if name != "api.md" {
			declaredChunks += n
		}
	}
	if rep.Documents != 8 || rep.Chunks != int64(declaredChunks) || firstInputs < declaredChunks {
		t.Fatalf("report totals %d documents, %d chunks; want 8 and %d; %d chunks embedded", rep.Documents, rep.Chunks, declaredChunks, firstInputs)
	}

	// Nothing changed: no embedding call at all.
	before = f.Stats().EmbeddingRequests
	rep = ix.mustRun(t)
	if n := f.Stats().EmbeddingRequests - before; n != 0 {
		t.Fatalf("a re-sync with nothing changed made %d embedding requests", n)
	}
	if bySource(rep)["handbook"].Revision != c1 || rep.Documents != 8 {
		t.Fatalf("second run: %+v", rep)
	}

	// A new commit: a.md changed (one paragraph), b.md removed, c.md added;
	// and the PVC is gone (not mounted): its document stays.
	aBefore := docs["handbook/docs/a.md"]
	c2 := repo.Commit("second", map[string]string{
		"docs/a.md": para("revenue", 6) + "A new closing paragraph about revenue recognition.\n",
		"docs/b.md": "", "docs/c.md": para("capital", 2),
	})
	if err := os.RemoveAll(volume); err != nil {
		t.Fatal(err)
	}
	before = f.Stats().EmbeddedInputs
	rep = ix.mustRun(t)
	embedded := f.Stats().EmbeddedInputs - before
	docs = documentChunks(t, ts)
	want = []string{"api.md", "drop/in/one.md", "filings/" + host + "/f1.md", "filings/" + host + "/f2.txt",
		"handbook/docs/a.md", "handbook/docs/c.md", "handbook/docs/keep.md", "reports/2024.txt", "reports/2025.md"}
	if got := slices.Sorted(maps.Keys(docs)); !slices.Equal(got, want) {
		t.Fatalf("after the commit: documents %v, want %v", got, want)
	}
	// Only new chunk texts are embedded: c.md's, and a.md's changed tail.
	if maxNew := docs["handbook/docs/c.md"] + 2; embedded == 0 || embedded > maxNew {
		t.Fatalf("%d chunks embedded after the commit, want 1..%d (c.md has %d, a.md had %d and has %d)",
			embedded, maxNew, docs["handbook/docs/c.md"], aBefore, docs["handbook/docs/a.md"])
	}
	src = bySource(rep)
	if src["handbook"].Revision != c2 || src["drop"].Error == "" || src["down"].Error == "" || src["reports"].Error != "" {
		t.Fatalf("third run report %+v", rep)
	}
	r := ts.post(t, "/retrieve", map[string]any{"question": "closing paragraph about revenue recognition", "top_k": 3})
	if r.Status != 200 || !strings.Contains(string(r.Body), "revenue recognition") {
		t.Fatalf("the changed text is not retrievable: %s", r)
	}
}

// TestIngestConfigMapUpgrade: an index built by the server's start-up
// ingestion of a mounted ConfigMap (DOCS_DIR) is re-synced by the indexer's
// configmap source in place: same names, no duplicate, no embedding call.
func TestIngestConfigMapUpgrade(t *testing.T) {
	f, modelURL := fake(t)
	env := map[string]string{"OPENAI_BASE_URL": modelURL, "EMBEDDING_MODEL": "fake-embed-cm", "LLM_MODEL": "local", "DATA_DIR": t.TempDir()}
	ix := newIndexer(t, env, map[string]any{"configMapRef": map[string]any{"name": "docs"}})
	files := map[string]string{"faq.md": "Dividends are paid quarterly.", "rates.txt": "The policy rate is 4.5 percent.", "image.bin": "\x00\x01"}
	dir := ix.mount(t, contract.ConfigMapSourceName, "configmap", files)

	old := cloneEnv(env)
	old["DOCS_DIR"] = dir
	ts := start(t, old)
	ts.waitReady(t)
	before := documentChunks(t, ts)
	ts.stop(t)

	inputs := f.Stats().EmbeddedInputs
	rep := ix.mustRun(t)
	if n := f.Stats().EmbeddedInputs - inputs; n != 0 {
		t.Fatalf("the indexer re-embedded %d chunks of the start-up ingestion's documents", n)
	}
	cm := bySource(rep)[contract.ConfigMapSourceName]
	if cm.Indexed != 2 || cm.Skipped != 1 || rep.Documents != 2 {
		t.Fatalf("report %+v", rep)
	}
	ts = start(t, env)
	ts.waitReady(t)
	if after := documentChunks(t, ts); !maps.Equal(after, before) {
		t.Fatalf("documents %v after the indexer, %v before", after, before)
	}
	ts.stop(t)

	// A key removed from the ConfigMap leaves the index.
	if err := os.Remove(filepath.Join(dir, "rates.txt")); err != nil {
		t.Fatal(err)
	}
	ix.mustRun(t)
	ts = start(t, env)
	ts.waitReady(t)
	if after := slices.Sorted(maps.Keys(documentChunks(t, ts))); !slices.Equal(after, []string{"faq.md"}) {
		t.Fatalf("documents %v, want [faq.md]", after)
	}
}

// TestIngestFailsWhenTheEmbedderFails: the run exits non-zero, and the
// report names the source it was indexing.
func TestIngestFailsWhenTheEmbedderFails(t *testing.T) {
	f, modelURL := fake(t)
	f.SetFault(fakeopenai.Embeddings, fakeopenai.Fault{Status: 500, Times: -1})
	env := map[string]string{"OPENAI_BASE_URL": modelURL, "EMBEDDING_MODEL": "fake-embed-fail", "LLM_MODEL": "local",
		"DATA_DIR": t.TempDir(), "MAX_RETRIES": "0"}
	ix := newIndexer(t, env, map[string]any{"sources": []map[string]any{
		{"name": "a", "pvc": map[string]any{"claimName": "a"}}, {"name": "b", "pvc": map[string]any{"claimName": "b"}},
	}})
	ix.mount(t, "a", "volume", map[string]string{"x.md": "some text"})
	ix.mount(t, "b", "volume", map[string]string{"y.md": "more text"})
	rep, _, err := ix.run(t)
	if err == nil {
		t.Fatal("ingest succeeded while the embedding model failed")
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Name != "a" || rep.Sources[0].Error == "" {
		t.Fatalf("report %+v: want source a with the error, b not attempted", rep)
	}
}

func TestIngestBadSources(t *testing.T) {
	for name, raw := range map[string]string{
		"unset":     "",
		"not json":  "{",
		"empty":     "{}",
		"duplicate": `{"sources":[{"name":"a","pvc":{"claimName":"a"}},{"name":"a","pvc":{"claimName":"b"}}]}`,
	} {
		if _, _, err := ragserver.ParseSources(raw); err == nil || !strings.Contains(err.Error(), contract.EnvSources) {
			t.Errorf("%s: %v, want an error naming %s", name, err, contract.EnvSources)
		}
	}
}

// TestFitReport: a report that would exceed the termination message drops
// the skipped-file details first, then shortens errors; counts stay.
func TestFitReport(t *testing.T) {
	var rep contract.IndexReport
	for i := range 32 {
		s := contract.SourceReport{Name: fmt.Sprintf("source-%02d-%s", i, strings.Repeat("n", 40)), Revision: strings.Repeat("f", 40), Indexed: 1000, Skipped: 50}
		for j := range contract.MaxSkippedReported {
			s.SkippedFiles = append(s.SkippedFiles, [2]string{fmt.Sprintf("dir/file-%d.pdf", j), "extension is not one of .txt, .md"})
		}
		if i%2 == 0 {
			s.Error = strings.Repeat("e", 500)
		}
		rep.Sources = append(rep.Sources, s)
	}
	b := ragserver.FitReport(rep)
	if len(b) > contract.MaxIndexReportBytes {
		t.Fatalf("%d bytes", len(b))
	}
	var got contract.IndexReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sources) != 32 || got.Sources[5].Indexed != 1000 || got.Sources[5].Skipped != 50 || got.Sources[4].Error == "" {
		t.Fatalf("fitted report lost counts or errors: %s", b)
	}
	small := contract.IndexReport{Sources: []contract.SourceReport{{Name: "a", SkippedFiles: [][2]string{{"x.pdf", "why"}}}}}
	if !bytes.Contains(ragserver.FitReport(small), []byte("x.pdf")) {
		t.Fatal("a small report lost its skipped files")
	}
}
