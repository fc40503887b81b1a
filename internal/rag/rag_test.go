package rag_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/vectorstore"
)

func setup(t *testing.T, opts rag.Options) (*rag.Service, *fakeopenai.Server, vectorstore.Store) {
	t.Helper()
	fake := fakeopenai.New(fakeopenai.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	store := newStore(t)
	retry := llm.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond}
	emb := llm.NewOpenAI(llm.Config{BaseURL: srv.URL + "/v1", Model: "fake-embed", Retry: retry})
	chat := llm.NewOpenAI(llm.Config{BaseURL: srv.URL + "/v1", Model: "fake-chat", Retry: retry})
	return rag.New(store, emb, chat, opts), fake, store
}

var docs = []rag.Document{
	{Source: "10k.md", Text: "Revenue grew 12% to $4.2 billion.\n\nOperating margin expanded to 18%."},
	{Source: "risks.md", Text: "Rising interest rates could reduce demand for loans. Cyber attacks could disrupt operations."},
}

func TestReingestUnchangedMakesNoEmbeddingCall(t *testing.T) {
	svc, fake, _ := setup(t, rag.Options{ChunkSize: 40})
	ctx := context.Background()
	first, err := svc.Ingest(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	if first.Added == 0 || first.Unchanged != 0 || first.Removed != 0 {
		t.Fatalf("first ingest: %+v", first)
	}
	before := fake.Stats().EmbeddingRequests
	second, err := svc.Ingest(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	if second.Added != 0 || second.Removed != 0 || second.Unchanged != first.Added {
		t.Fatalf("second ingest: %+v, want everything unchanged", second)
	}
	if got := fake.Stats().EmbeddingRequests - before; got != 0 {
		t.Fatalf("second ingest made %d embedding calls, want 0", got)
	}
}

func TestChangedDocumentReplacesOldChunks(t *testing.T) {
	svc, _, store := setup(t, rag.Options{ChunkSize: 40})
	ctx := context.Background()
	if _, err := svc.Ingest(ctx, docs); err != nil {
		t.Fatal(err)
	}
	changed := rag.Document{Source: "10k.md", Text: "Revenue fell 3% to $3.9 billion."}
	res, err := svc.Ingest(ctx, []rag.Document{changed})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Removed != 2 {
		t.Fatalf("result %+v, want 1 added and 2 removed", res)
	}
	// Only the new version's chunk is left in the store, not just visible.
	recs := scan(t, store, map[string]string{vectorstore.KeySource: "10k.md"})
	if len(recs) != 1 || recs[0].Text != changed.Text || recs[0].Chunk != 0 {
		t.Fatalf("records of 10k.md = %+v, want the new chunk only", recs)
	}
	srcs, _ := svc.Sources(ctx)
	if len(srcs) != 2 || srcs[0].Chunks != 1 {
		t.Fatalf("sources = %v", srcs)
	}
}

func TestEmbeddingsAreBatched(t *testing.T) {
	svc, fake, _ := setup(t, rag.Options{ChunkSize: 20, EmbedBatch: 64})
	var b strings.Builder
	for range 200 {
		b.WriteString("Quarterly results. ")
	}
	res, err := svc.Ingest(context.Background(), []rag.Document{{Source: "big.txt", Text: b.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 200 {
		t.Fatalf("added %d, want 200", res.Added)
	}
	if s := fake.Stats(); s.EmbeddingRequests != 4 || s.EmbeddedInputs != 200 {
		t.Fatalf("stats %+v, want 4 requests for 200 chunks", s)
	}
}

func TestAnswer(t *testing.T) {
	svc, _, _ := setup(t, rag.Options{ChunkSize: 200})
	ctx := context.Background()
	if _, err := svc.Ingest(ctx, docs); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Answer(ctx, rag.Query{Question: "What are the interest rate risks?", TopK: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != rag.ModeGenerative || a.Model != "fake-chat" || len(a.Sources) != 1 || a.Sources[0].Source != "risks.md" {
		t.Fatalf("answer %+v", a)
	}
	// The fake echoes what reached the model: the numbered passage and its source.
	if !strings.Contains(a.Answer, "[1] risks.md") || a.Usage.CompletionTokens == 0 {
		t.Fatalf("answer %q usage %+v", a.Answer, a.Usage)
	}
	var streamed strings.Builder
	b, err := svc.Answer(ctx, rag.Query{Question: "What are the interest rate risks?", TopK: 1}, func(s string) error {
		streamed.WriteString(s)
		return nil
	})
	if err != nil || streamed.String() != a.Answer || b.Answer != a.Answer {
		t.Fatalf("streamed %q, answer %q, err %v", streamed.String(), b.Answer, err)
	}
}

func TestExtractiveAnswer(t *testing.T) {
	svc := rag.New(newStore(t), llm.Local{}, nil, rag.Options{})
	ctx := context.Background()
	if _, err := svc.Ingest(ctx, docs); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Answer(ctx, rag.Query{Question: "How much did revenue grow?"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != rag.ModeExtractive || a.Model != "extractive" || a.Sources[0].Source != "10k.md" {
		t.Fatalf("answer %+v", a)
	}
	if !strings.Contains(a.Answer, `"Revenue grew 12% to $4.2 billion." [1]`) {
		t.Fatalf("answer %q does not quote the best sentence", a.Answer)
	}
}

func TestLoadDirReadsAConfigMapMount(t *testing.T) {
	// The layout kubelet gives a ConfigMap volume: files are symlinks into
	// ..data, itself a symlink to a timestamped directory.
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2024_05_01_10_00_00.123456789")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(ts, 0o755))
	must(os.WriteFile(filepath.Join(ts, "report.md"), []byte("Revenue grew."), 0o644))
	must(os.WriteFile(filepath.Join(ts, "notes.txt"), []byte("Notes."), 0o644))
	must(os.WriteFile(filepath.Join(ts, "logo.png"), []byte{0x89, 'P', 'N', 'G'}, 0o644))
	must(os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	for _, f := range []string{"report.md", "notes.txt", "logo.png"} {
		must(os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)))
	}
	must(os.WriteFile(filepath.Join(dir, ".hidden.md"), []byte("secret"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub", "deep.md"), []byte("deep"), 0o644))
	must(os.Symlink("missing.md", filepath.Join(dir, "dangling.md")))

	got, skipped, err := rag.LoadDir(dir)
	must(err)
	var names []string
	for _, d := range got {
		names = append(names, d.Source)
	}
	if !slices.Equal(names, []string{"notes.txt", "report.md"}) || got[1].Text != "Revenue grew." {
		t.Fatalf("loaded %v", names)
	}
	if _, ok := skipped["logo.png"]; !ok {
		t.Errorf("logo.png not reported as skipped: %v", skipped)
	}
	if _, ok := skipped["dangling.md"]; !ok {
		t.Errorf("dangling.md not reported as skipped: %v", skipped)
	}
}

func TestSyncPrunesOnlyRemovedSourcesOfItsOrigin(t *testing.T) {
	svc, fake, store := setup(t, rag.Options{ChunkSize: 40})
	ctx := context.Background()
	sources := func() []string {
		t.Helper()
		srcs, err := svc.Sources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range srcs {
			out = append(out, s.Source)
		}
		return out
	}
	a := rag.Document{Source: "a.md", Text: "Revenue grew 12% to $4.2 billion."}
	b := rag.Document{Source: "b.md", Text: "Rising interest rates could reduce demand for loans."}
	c := rag.Document{Source: "c.md", Text: "The treasury team hedged 60% of floating-rate exposure."}

	first, err := svc.Sync(ctx, rag.OriginDocsDir, []rag.Document{a, b}, nil)
	if err != nil || first.Added == 0 || len(first.Pruned) != 0 {
		t.Fatalf("first sync: %+v, %v", first, err)
	}
	if _, err := svc.Ingest(ctx, []rag.Document{c}); err != nil { // through the API: no origin
		t.Fatal(err)
	}
	origins := map[string]string{}
	if err := store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			origins[v.Source] = v.Origin
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a.md": rag.OriginDocsDir, "b.md": rag.OriginDocsDir, "c.md": ""}; !maps.Equal(origins, want) {
		t.Fatalf("origins = %v, want %v", origins, want)
	}

	before := fake.Stats().EmbeddingRequests
	res, err := svc.Sync(ctx, rag.OriginDocsDir, []rag.Document{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Pruned, []string{"b.md"}) || res.PrunedChunks != first.Added-1 || res.Added != 0 || res.Unchanged != 1 {
		t.Fatalf("sync without b.md: %+v", res)
	}
	if n := fake.Stats().EmbeddingRequests - before; n != 0 {
		t.Fatalf("sync of unchanged a.md made %d embedding calls", n)
	}
	if got := sources(); !slices.Equal(got, []string{"a.md", "c.md"}) {
		t.Fatalf("sources = %v", got)
	}
	// Idempotent: again, nothing to do.
	if res, err := svc.Sync(ctx, rag.OriginDocsDir, []rag.Document{a}, nil); err != nil || len(res.Pruned) != 0 || res.Added != 0 {
		t.Fatalf("second sync: %+v, %v", res, err)
	}
	// A name kept (present but not ingested this time) is not pruned.
	if res, err := svc.Sync(ctx, rag.OriginDocsDir, nil, []string{"a.md"}); err != nil || len(res.Pruned) != 0 {
		t.Fatalf("sync keeping a.md: %+v, %v", res, err)
	}
	// Another origin is a different set.
	if res, err := svc.Sync(ctx, "elsewhere", nil, nil); err != nil || len(res.Pruned) != 0 {
		t.Fatalf("sync of another origin: %+v, %v", res, err)
	}
	// A docs_dir source re-posted through the API becomes an API document.
	if _, err := svc.Ingest(ctx, []rag.Document{a}); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.Sync(ctx, rag.OriginDocsDir, nil, nil); err != nil || len(res.Pruned) != 0 {
		t.Fatalf("empty sync after a.md was re-posted: %+v, %v", res, err)
	}
	if got := sources(); !slices.Equal(got, []string{"a.md", "c.md"}) {
		t.Fatalf("sources = %v", got)
	}
	// An empty set prunes every source of the origin, and nothing else.
	if _, err := svc.Sync(ctx, rag.OriginDocsDir, []rag.Document{b}, nil); err != nil {
		t.Fatal(err)
	}
	res, err = svc.Sync(ctx, rag.OriginDocsDir, nil, nil)
	if err != nil || !slices.Equal(res.Pruned, []string{"b.md"}) {
		t.Fatalf("empty sync: %+v, %v", res, err)
	}
	if got := sources(); !slices.Equal(got, []string{"a.md", "c.md"}) {
		t.Fatalf("sources after empty sync = %v", got)
	}
}

func TestExtractQuotesWholeSentencesOnce(t *testing.T) {
	sources := []rag.Source{
		// A heading, a whole sentence, and a sentence the chunk boundary cut.
		{Source: "a.md", Text: "# Results\n\nRevenue grew 12% to $4.2 billion. Operating margin expanded to 18% as costs"},
		// The next, overlapping chunk: starts mid-sentence and repeats one.
		{Source: "a.md", Chunk: 1, Text: "margin expanded to 18% as costs fell. Revenue grew 12% to\n$4.2 billion."},
		// A hard-wrapped sentence with emphasis.
		{Source: "b.md", Text: "**Net interest margin** was 3.18%,\ndown four basis points."},
	}
	got := rag.Extract("How much did revenue and margin grow?", sources)
	want := `From the indexed documents: "Revenue grew 12% to $4.2 billion." [1] "Net interest margin was 3.18%, down four basis points." [3]`
	if got != want {
		t.Fatalf("Extract =\n%s\nwant\n%s", got, want)
	}
	// Nothing whole to quote: say so rather than quote a fragment.
	if got := rag.Extract("revenue?", []rag.Source{{Text: "## Revenue\n\nand then it grew by"}}); got != rag.NoContextAnswer {
		t.Fatalf("Extract of fragments = %q", got)
	}
}

// TestSyncerCommitsAsItGoes: a Syncer holds at most SyncBatch documents or
// SyncBatchBytes of text: what it was given before is committed while it
// is fed, so its memory does not grow with the set, and Prune removes only
// the names neither added nor kept.
func TestSyncerCommitsAsItGoes(t *testing.T) {
	svc, _, store := setup(t, rag.Options{ChunkSize: 100000, ChunkOverlap: 0})
	ctx := context.Background()
	committed := func() int {
		n := 0
		if err := store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error { n += len(page); return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	seed := svc.NewSyncer("src")
	for _, name := range []string{"old-gone.md", "old-kept.md"} {
		if err := seed.Add(ctx, rag.Document{Source: name, Text: "an older document " + name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := seed.Prune(ctx); err != nil {
		t.Fatal(err)
	}

	y := svc.NewSyncer("src")
	big := strings.Repeat("word ", rag.SyncBatchBytes/5/3+1) // three of these pass SyncBatchBytes
	for i := range 3 {
		if err := y.Add(ctx, rag.Document{Source: fmt.Sprintf("big-%d.md", i), Text: big + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := committed(); n != 2+3 {
		t.Fatalf("%d documents committed after SyncBatchBytes of text, want the 3 new ones beside the 2 old", n)
	}
	for i := range rag.SyncBatch {
		if err := y.Add(ctx, rag.Document{Source: fmt.Sprintf("small-%02d.md", i), Text: "small " + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := committed(); n != 2+3+rag.SyncBatch {
		t.Fatalf("%d documents committed after SyncBatch documents, want %d", n, 2+3+rag.SyncBatch)
	}
	y.Keep("old-kept.md")
	res, err := y.Prune(ctx)
	if err != nil || !slices.Equal(res.Pruned, []string{"old-gone.md"}) || res.Documents != 3+rag.SyncBatch {
		t.Fatalf("prune: %+v, %v", res, err)
	}
}

func TestLoadDirReadsDocumentFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("page.html", "<title>Page</title><nav>Menu</nav><p>Net interest margin widened.</p>")
	write("faq.jsonl", "{\"id\":\"q1\",\"text\":\"Refunds take five days.\",\"source\":\"crm\",\"team\":\"support\"}\nnot json\n")
	write("slides.pptx", "PK")
	docs, skipped, err := rag.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Source != "faq.jsonl#q1" || docs[1].Source != "page.html" ||
		docs[1].Text != "Page\n\nNet interest margin widened." {
		t.Fatalf("documents %+v", docs)
	}
	// A record's "source" field would override the store's key: left out.
	if md := docs[0].Metadata; md["team"] != "support" || md["format"] != "jsonl" || md["source"] != "" {
		t.Fatalf("metadata %v", md)
	}
	if !strings.Contains(skipped["faq.jsonl line 2"], "malformed JSON") || !strings.Contains(skipped["slides.pptx"], "extension is not one of") {
		t.Fatalf("skipped %v", skipped)
	}
}

func TestSyncKeepsTheRecordsOfASkippedJSONFile(t *testing.T) {
	svc, _, _ := setup(t, rag.Options{ChunkSize: 40})
	ctx := context.Background()
	recs := []rag.Document{
		{Source: "faq.jsonl#q1", Text: "Refunds take five days."},
		{Source: "faq.jsonl#q2", Text: "Cards ship in a week."},
		{Source: "old.jsonl#1", Text: "A file that goes away."},
	}
	if _, err := svc.Sync(ctx, rag.OriginDocsDir, recs, nil); err != nil {
		t.Fatal(err)
	}
	// faq.jsonl is now unreadable (skipped whole, so named in keep);
	// old.jsonl is gone.
	res, err := svc.Sync(ctx, rag.OriginDocsDir, nil, []string{"faq.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Pruned, []string{"old.jsonl#1"}) {
		t.Fatalf("pruned %v, want only old.jsonl#1", res.Pruned)
	}
	srcs, err := svc.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Source)
	}
	if !slices.Equal(names, []string{"faq.jsonl#q1", "faq.jsonl#q2"}) {
		t.Fatalf("sources %v", names)
	}
}
