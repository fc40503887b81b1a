package memlex_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/memlex"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ids(t *testing.T, ix *memlex.Index, q string) []string {
	t.Helper()
	hits, err := ix.Search(context.Background(), q, 10, nil)
	must(t, err)
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

// TestStalenessIsBounded: writes the index is not told about (another
// replica's) are seen once the refresh interval has passed, not before;
// Invalidate makes the next query see them at once. Many changed sources at
// once are loaded by one scan of the store.
func TestStalenessIsBounded(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(t.TempDir(), "c")
	must(t, err)
	defer st.Close()
	put := func(id, source, version, text string) {
		must(t, st.Upsert(ctx, []vectorstore.Record{{ID: id, Source: source, Text: text, Version: version, Embedding: []float32{1}, Written: 1}}))
		must(t, st.Commit(ctx, vectorstore.SourceVersion{Source: source, Version: version, Chunks: 1}))
	}
	put("a1", "a.md", "v1", "kestrel")
	ix := memlex.New(st, time.Hour)
	if got := ids(t, ix, "kestrel"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("first query loads the store: %v", got)
	}
	put("a2", "a.md", "v2", "merlin")
	if got := ids(t, ix, "merlin"); len(got) != 0 {
		t.Fatalf("seen before the refresh interval: %v", got)
	}
	if got := ids(t, ix, "kestrel"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("old version lost before the refresh: %v", got)
	}
	ix.Invalidate()
	if got := ids(t, ix, "merlin kestrel"); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("after Invalidate: %v, want only the new version", got)
	}

	short := memlex.New(st, 50*time.Millisecond)
	_ = ids(t, short, "merlin")
	var many []vectorstore.Record
	var commits []vectorstore.SourceVersion
	for i := range 100 { // more than one scan per source would pay for
		src := string(rune('A'+i/26)) + string(rune('a'+i%26)) + ".md"
		many = append(many, vectorstore.Record{ID: "m" + src, Source: src, Text: "falcon number " + src, Version: "v1", Embedding: []float32{1}, Written: 1})
		commits = append(commits, vectorstore.SourceVersion{Source: src, Version: "v1", Chunks: 1})
	}
	must(t, st.Upsert(ctx, many))
	must(t, st.Commit(ctx, commits...))
	must(t, st.Uncommit(ctx, "a.md"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		hits, err := short.Search(ctx, "falcon merlin", 1000, nil)
		must(t, err)
		if len(hits) == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the refresh interval: %d hits, want the 100 falcons and no merlin", len(hits))
		}
		time.Sleep(20 * time.Millisecond)
	}
	freqs, total, err := short.DocFreqs(ctx, []string{"falcon", "merlin", "numbers"})
	must(t, err)
	if !slices.Equal(freqs, []int{100, 0, 100}) || total != 100 {
		t.Fatalf("DocFreqs = %v of %d, want [100 0 100] of 100", freqs, total)
	}
}
