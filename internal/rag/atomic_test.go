package rag_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/rag/chunk"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chromaserver.StopShared()
	os.Exit(code)
}

var seq atomic.Int64

// newStore returns an empty collection on the shared real Chroma server.
func newStore(t *testing.T) vectorstore.Store {
	t.Helper()
	srv := chromaserver.Shared(t)
	s, err := chromastore.New(chromastore.Options{URL: srv.URL(), Collection: fmt.Sprintf("rag-%d-%d", os.Getpid(), seq.Add(1)), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// scan returns every stored record matching filter, visible or not.
func scan(t *testing.T, s vectorstore.Store, filter map[string]string) []vectorstore.Record {
	t.Helper()
	var out []vectorstore.Record
	if err := s.Scan(context.Background(), filter, false, func(p []vectorstore.Record) error {
		out = append(out, p...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// cancelAfter is an embedder that cancels the ingestion's context once it
// has answered n calls: a request cut off midway, as by REQUEST_TIMEOUT or a
// shutdown.
type cancelAfter struct {
	llm.Embedder
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Embed(ctx context.Context, texts []string) ([][]float32, llm.Usage, error) {
	v, u, err := c.Embedder.Embed(ctx, texts)
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	return v, u, err
}

// version builds a document whose chunks all say which version they are.
func version(source, tag string, chunks int) rag.Document {
	var b strings.Builder
	for i := range chunks {
		fmt.Fprintf(&b, "Version %s paragraph %d of %s holds distinct words.\n\n", tag, i, source)
	}
	return rag.Document{Source: source, Text: b.String()}
}

// TestCutOffIngestionChangesNothing cuts ingestions off midway (after some
// embedding batches and upserts went through) and checks that each source is
// either at its old version or absent, that listings and queries agree, and
// that Maintain removes what the cut-off attempt wrote.
func TestCutOffIngestionChangesNothing(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	opts := rag.Options{ChunkSize: 100, ChunkOverlap: 0, EmbedBatch: 16, EmbedConcurrency: 2}
	// The model API answers embeddings in 25 ms, so that upserts of earlier
	// batches are done by the time later batches are cut off.
	fake := fakeopenai.New(fakeopenai.Options{})
	fake.SetLatency(fakeopenai.Embeddings, 25*time.Millisecond)
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	model := llm.NewOpenAI(llm.Config{BaseURL: api.URL + "/v1", Model: "fake-embed", Retry: llm.Retry{MaxAttempts: 1}})
	svc := rag.New(store, model, nil, opts)
	v1 := []rag.Document{version("a.md", "one", 30), version("b.md", "one", 30)}
	if _, err := svc.Ingest(ctx, v1); err != nil {
		t.Fatal(err)
	}
	wantChunks := len(chunk.Split(v1[0].Text, 100, 0))

	// 2 x 400 one-paragraph chunks: 50 embedding calls, and upserts of
	// rag.UpsertBatch chunks each: cuts after 40 calls land after some upserts.
	for _, cutAfter := range []int64{1, 5, 40, 48} {
		cctx, cancel := context.WithCancel(ctx)
		emb := &cancelAfter{Embedder: model, cancel: cancel}
		emb.n.Store(cutAfter)
		cut := rag.New(store, emb, nil, opts)
		// New text on every attempt: an attempt after a cut-off would
		// otherwise reuse the embeddings its predecessor stored.
		tag := fmt.Sprintf("two-%d", cutAfter)
		v2 := []rag.Document{version("a.md", tag, 400), version("c.md", tag, 400)}
		_, err := cut.Ingest(cctx, v2)
		cancel()
		if err == nil {
			t.Fatalf("cut after %d calls: the ingestion succeeded", cutAfter)
		}
		// Something of v2 reached the store...
		if n := len(scan(t, store, map[string]string{vectorstore.KeySource: "c.md"})) + len(scan(t, store, map[string]string{vectorstore.KeySource: "a.md"})) - wantChunks; n <= 0 && cutAfter >= 40 {
			t.Fatalf("cut after %d calls: no v2 chunk was written, the test cuts too early", cutAfter)
		}
		// ...but nobody sees it.
		srcs, err := svc.Sources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []vectorstore.SourceInfo{{Source: "a.md", Chunks: wantChunks}, {Source: "b.md", Chunks: wantChunks}}
		if !slices.Equal(srcs, want) {
			t.Fatalf("cut after %d calls: sources %v, want %v", cutAfter, srcs, want)
		}
		for _, src := range []string{"a.md", "c.md"} {
			got, _, err := svc.Retrieve(ctx, rag.Query{Question: "Version two paragraph", TopK: 50, Filter: map[string]string{"source": src}})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range got {
				if !strings.Contains(h.Text, "Version one") {
					t.Fatalf("cut after %d calls: a query sees a chunk of the unfinished version: %q", cutAfter, h.Text)
				}
			}
			if src == "a.md" && len(got) != wantChunks {
				t.Fatalf("cut after %d calls: %d chunks of a.md retrievable, want all %d of v1", cutAfter, len(got), wantChunks)
			}
		}
	}
	// Maintain keeps young garbage (a write may be in progress elsewhere) and
	// collects it once it is older than the grace period.
	if res, err := svc.Maintain(ctx, time.Hour); err != nil || res.Collected != 0 {
		t.Fatalf("Maintain with an hour's grace: %+v, %v", res, err)
	}
	res, err := svc.Maintain(ctx, -time.Second)
	if err != nil || res.Collected == 0 || res.Scanned != res.Collected+2*wantChunks {
		t.Fatalf("Maintain: %+v, %v", res, err)
	}
	if recs := scan(t, store, nil); len(recs) != 2*wantChunks {
		t.Fatalf("after Maintain %d records remain, want %d", len(recs), 2*wantChunks)
	}
	// The interrupted update goes through when tried again.
	if _, err := svc.Ingest(ctx, []rag.Document{version("a.md", "two", 40)}); err != nil {
		t.Fatal(err)
	}
	got, _, err := svc.Retrieve(ctx, rag.Query{Question: "Version one paragraph", TopK: 50, Filter: map[string]string{"source": "a.md"}})
	if err != nil || len(got) == 0 || !strings.Contains(got[0].Text, "Version two") {
		t.Fatalf("after the retry: %v, %v", got, err)
	}
}

// failingStore fails its nth Upsert: a vector store that breaks during a
// large ingestion.
type failingStore struct {
	vectorstore.Store
	n atomic.Int64
}

var errStoreBroke = errors.New("store broke")

func (f *failingStore) Upsert(ctx context.Context, recs []vectorstore.Record) error {
	if f.n.Add(-1) == 0 {
		return fmt.Errorf("chroma upsert: %w: %w", vectorstore.ErrUnavailable, errStoreBroke)
	}
	return f.Store.Upsert(ctx, recs)
}

// TestStoreFailureIsReportedAsSuch: when the store fails while embedders are
// still running, the error names the store, not the embedders it cancelled.
func TestStoreFailureIsReportedAsSuch(t *testing.T) {
	fake := fakeopenai.New(fakeopenai.Options{})
	fake.SetLatency(fakeopenai.Embeddings, 30*time.Millisecond)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	emb := llm.NewOpenAI(llm.Config{BaseURL: srv.URL + "/v1", Model: "fake-embed", Retry: llm.Retry{MaxAttempts: 1}})
	for range 3 {
		store := &failingStore{Store: newStore(t)}
		store.n.Store(1)
		svc := rag.New(store, emb, nil, rag.Options{ChunkSize: 100, ChunkOverlap: 0, EmbedBatch: 1, EmbedConcurrency: 4})
		var docs []rag.Document
		for i := range 20 {
			docs = append(docs, version(fmt.Sprintf("d%d.md", i), "x", 20))
		}
		_, err := svc.Ingest(context.Background(), docs)
		var up *rag.UpstreamError
		if !errors.As(err, &up) || up.Service != "vector store" || !errors.Is(err, errStoreBroke) {
			t.Fatalf("error %v (%T), want the vector store's failure", err, err)
		}
	}
}

// TestReadersNeverSeeHalfAVersion flips a document between two versions of
// different lengths while readers query it: every answer holds chunks of one
// version only, and every listing shows one version's chunk count.
func TestReadersNeverSeeHalfAVersion(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	opts := rag.Options{ChunkSize: 100, ChunkOverlap: 0, EmbedBatch: 8}
	svc := rag.New(store, llm.Local{}, nil, opts)
	a, b := version("doc.md", "alpha", 12), version("doc.md", "beta", 20)
	counts := map[int]bool{len(chunk.Split(a.Text, 100, 0)): true, len(chunk.Split(b.Text, 100, 0)): true}
	if _, err := svc.Ingest(ctx, []rag.Document{a}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := svc.Retrieve(ctx, rag.Query{Question: "Version paragraph of doc.md", TopK: 50, Filter: map[string]string{"source": "doc.md"}})
				if err != nil {
					errs <- err
					return
				}
				alpha, beta := 0, 0
				for _, h := range got {
					if strings.Contains(h.Text, "alpha") {
						alpha++
					} else {
						beta++
					}
				}
				if (alpha > 0 && beta > 0) || !counts[alpha+beta] {
					errs <- fmt.Errorf("a query saw %d alpha and %d beta chunks", alpha, beta)
					return
				}
				srcs, err := svc.Sources(ctx)
				if err != nil || len(srcs) != 1 || !counts[srcs[0].Chunks] {
					errs <- fmt.Errorf("listing %v: %w", srcs, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range 10 {
		d := a
		if i%2 == 0 {
			d = b
		}
		if _, err := svc.Ingest(ctx, []rag.Document{d}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if reads.Load() < 10 {
		t.Fatalf("only %d reads ran during the updates", reads.Load())
	}
	// Ten updates left no garbage behind.
	if recs := scan(t, store, nil); !counts[len(recs)] {
		t.Fatalf("%d records stored after the updates, want one version's", len(recs))
	}
}

// TestMaintainAdoptsChunksOfOlderServers: chunks written before commit
// records existed (no version) stay visible once Maintain has run, keep their
// origin, and an update replaces them.
func TestMaintainAdoptsChunksOfOlderServers(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	emb := llm.Local{}
	var recs []vectorstore.Record
	for i, text := range []string{"Old revenue paragraph.", "Old margin paragraph."} {
		vec, _, _ := emb.Embed(ctx, []string{text})
		recs = append(recs, vectorstore.Record{ID: fmt.Sprintf("old-%d", i), Source: "old.md", Chunk: i, Text: text,
			Metadata: map[string]string{rag.KeyOrigin: rag.OriginDocsDir}, Embedding: vec[0]})
	}
	if err := store.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	svc := rag.New(store, emb, nil, rag.Options{})
	if srcs, _ := svc.Sources(ctx); len(srcs) != 0 {
		t.Fatalf("before Maintain: %v", srcs)
	}
	res, err := svc.Maintain(ctx, 0)
	if err != nil || res.Adopted != 1 || res.Collected != 0 {
		t.Fatalf("Maintain: %+v, %v", res, err)
	}
	if srcs, _ := svc.Sources(ctx); !slices.Equal(srcs, []vectorstore.SourceInfo{{Source: "old.md", Chunks: 2}}) {
		t.Fatalf("after Maintain: %v", srcs)
	}
	got, _, err := svc.Retrieve(ctx, rag.Query{Question: "revenue", TopK: 2})
	if err != nil || len(got) != 2 {
		t.Fatalf("retrieve: %v, %v", got, err)
	}
	// The docs_dir sync owns it: a sync without it prunes it.
	sr, err := svc.Sync(ctx, rag.OriginDocsDir, nil, nil)
	if err != nil || !slices.Equal(sr.Pruned, []string{"old.md"}) {
		t.Fatalf("sync: %+v, %v", sr, err)
	}
	if recs := scan(t, store, nil); len(recs) != 0 {
		t.Fatalf("records left after pruning: %v", recs)
	}
}

// TestMetadataChangeReusesEmbeddings: a document whose metadata alone
// changed is a new version, written without any embedding call.
func TestMetadataChangeReusesEmbeddings(t *testing.T) {
	svc, fake, _ := setup(t, rag.Options{ChunkSize: 40})
	ctx := context.Background()
	if _, err := svc.Ingest(ctx, docs); err != nil {
		t.Fatal(err)
	}
	before := fake.Stats().EmbeddingRequests
	d := docs[0]
	d.Metadata = map[string]string{"year": "2024"}
	res, err := svc.Ingest(ctx, []rag.Document{d})
	if err != nil || res.Added == 0 || res.Reused != res.Added || res.Removed != res.Added {
		t.Fatalf("result %+v, %v: want every chunk rewritten with its old embedding", res, err)
	}
	if n := fake.Stats().EmbeddingRequests - before; n != 0 {
		t.Fatalf("a metadata change made %d embedding calls", n)
	}
	got, _, err := svc.Retrieve(ctx, rag.Query{Question: "revenue", Filter: map[string]string{"year": "2024"}})
	if err != nil || len(got) == 0 || got[0].Source != d.Source {
		t.Fatalf("retrieve by the new metadata: %v, %v", got, err)
	}
}
