// Package storetest is the conformance suite every vectorstore.Store must
// pass. The Chroma and the embedded store tests both call Run, so the two
// behave the same for the server.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/ragops/ragops/internal/vectorstore"
)

// Open returns a new, empty store for a collection called name.
type Open func(t *testing.T, name string) vectorstore.Store

const dim = 8

func unit(i int) []float32 {
	v := make([]float32, dim)
	v[i%dim] = 1
	return v
}

func mix(a, b int, wa float32) []float32 {
	v := make([]float32, dim)
	v[a] = wa
	v[b] = float32(math.Sqrt(float64(1 - wa*wa)))
	return v
}

func rec(id, source string, chunk int, vec []float32, md map[string]string) vectorstore.Record {
	return vectorstore.Record{ID: id, Source: source, Chunk: chunk, Text: "text of " + id, Metadata: md, Embedding: vec, Version: "v1", Written: 1700000000}
}

// scanAll returns every record matching filter, sorted by ID.
func scanAll(t *testing.T, s vectorstore.Store, filter map[string]string, emb bool) []vectorstore.Record {
	t.Helper()
	var out []vectorstore.Record
	err := s.Scan(context.Background(), filter, emb, func(page []vectorstore.Record) error {
		if len(page) > vectorstore.PageSize {
			t.Errorf("page of %d records, more than PageSize", len(page))
		}
		out = append(out, page...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b vectorstore.Record) int { return cmp(a.ID, b.ID) })
	return out
}

func cmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ids(recs []vectorstore.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func allVersions(t *testing.T, s vectorstore.Store) []vectorstore.SourceVersion {
	t.Helper()
	var out []vectorstore.SourceVersion
	err := s.ScanVersions(context.Background(), func(page []vectorstore.SourceVersion) error {
		if len(page) > vectorstore.PageSize {
			t.Errorf("page of %d versions, more than PageSize", len(page))
		}
		out = append(out, page...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("empty store", func(t *testing.T) {
		s := open(t, "empty")
		hits, err := s.Query(ctx, unit(0), 3, nil)
		must(t, err)
		if len(hits) != 0 {
			t.Fatalf("hits = %v, want none", hits)
		}
		if recs := scanAll(t, s, nil, false); len(recs) != 0 {
			t.Fatalf("Scan = %v, want none", recs)
		}
		if vs := allVersions(t, s); len(vs) != 0 {
			t.Fatalf("ScanVersions = %v, want none", vs)
		}
		got, err := s.Versions(ctx, []string{"nothing"})
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("Versions = %v, want none", got)
		}
		must(t, s.Delete(ctx, []string{"unknown"}))
		must(t, s.Uncommit(ctx, "unknown"))
		must(t, s.Ping(ctx))
	})

	t.Run("query ranks by cosine similarity", func(t *testing.T) {
		s := open(t, "rank")
		must(t, s.Upsert(ctx, []vectorstore.Record{
			rec("a", "a.md", 0, unit(0), map[string]string{"year": "2024"}),
			rec("b", "b.md", 3, mix(0, 1, 0.8), nil),
			rec("c", "c.md", 12, unit(1), nil),
			rec("d", "d.md", 1, unit(2), nil),
		}))
		hits, err := s.Query(ctx, unit(0), 2, nil)
		must(t, err)
		if len(hits) != 2 || hits[0].ID != "a" || hits[1].ID != "b" {
			t.Fatalf("hits = %+v, want a then b", hits)
		}
		h := hits[0]
		if h.Source != "a.md" || h.Chunk != 0 || h.Text != "text of a" || h.Version != "v1" {
			t.Fatalf("fields did not round-trip: %+v", h)
		}
		if len(h.Metadata) != 1 || h.Metadata["year"] != "2024" {
			t.Fatalf("hit metadata = %v, want the user's only", h.Metadata)
		}
		if math.Abs(float64(h.Score)-1) > 1e-3 || math.Abs(float64(hits[1].Score)-0.8) > 1e-3 {
			t.Fatalf("scores = %v, %v; want cosine similarities 1 and 0.8", h.Score, hits[1].Score)
		}
		hits, err = s.Query(ctx, unit(1), 10, nil)
		must(t, err)
		if len(hits) != 4 || hits[0].ID != "c" || hits[0].Chunk != 12 {
			t.Fatalf("k larger than the collection: hits = %+v", hits)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Score > hits[i-1].Score {
				t.Fatalf("hits not sorted by score: %+v", hits)
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		s := open(t, "filter")
		a2 := rec("a2", "a.md", 1, unit(1), map[string]string{"kind": "10k", "year": "2023"})
		a2.Version = "v2"
		must(t, s.Upsert(ctx, []vectorstore.Record{
			rec("a1", "a.md", 0, unit(0), map[string]string{"kind": "10k", "year": "2024"}),
			a2,
			rec("b1", "b.md", 0, unit(0), map[string]string{"kind": "call", "year": "2024"}),
		}))
		hitIDs := func(hits []vectorstore.Hit) []string {
			var out []string
			for _, h := range hits {
				out = append(out, h.ID)
			}
			slices.Sort(out)
			return out
		}
		for _, tc := range []struct {
			filter map[string]string
			want   []string
		}{
			{map[string]string{"source": "a.md"}, []string{"a1", "a2"}},
			{map[string]string{"kind": "call"}, []string{"b1"}},
			{map[string]string{"kind": "10k", "year": "2024"}, []string{"a1"}},
			{map[string]string{"kind": "none"}, nil},
			{map[string]string{vectorstore.KeyVersion: "v2"}, []string{"a2"}},
			{map[string]string{"source": "a.md", vectorstore.KeyVersion: "v1"}, []string{"a1"}},
		} {
			hits, err := s.Query(ctx, unit(0), 10, tc.filter)
			must(t, err)
			if got := hitIDs(hits); !slices.Equal(got, tc.want) {
				t.Errorf("Query filter %v: got %v, want %v", tc.filter, got, tc.want)
			}
			if got := ids(scanAll(t, s, tc.filter, false)); (len(got) != 0 || len(tc.want) != 0) && !slices.Equal(got, tc.want) {
				t.Errorf("Scan filter %v: got %v, want %v", tc.filter, got, tc.want)
			}
		}
	})

	t.Run("upsert replaces by id", func(t *testing.T) {
		s := open(t, "replace")
		must(t, s.Upsert(ctx, []vectorstore.Record{rec("x", "x.md", 0, unit(0), nil)}))
		r := rec("x", "x.md", 0, unit(3), map[string]string{"v": "2"})
		r.Text, r.Version, r.Written = "new text", "v2", 1800000000
		must(t, s.Upsert(ctx, []vectorstore.Record{r}))
		hits, err := s.Query(ctx, unit(3), 5, nil)
		must(t, err)
		if len(hits) != 1 || hits[0].Text != "new text" || hits[0].Metadata["v"] != "2" || hits[0].Version != "v2" || hits[0].Score < 0.99 {
			t.Fatalf("hits = %+v, want the replaced record only", hits)
		}
		recs := scanAll(t, s, nil, true)
		if len(recs) != 1 || recs[0].Written != 1800000000 || recs[0].Version != "v2" || len(recs[0].Embedding) != dim || recs[0].Embedding[3] < 0.99 {
			t.Fatalf("Scan = %+v, want the replaced record with its embedding", recs)
		}
	})

	t.Run("scan and delete", func(t *testing.T) {
		s := open(t, "delete")
		var recs []vectorstore.Record
		for i := range 3 {
			recs = append(recs, rec(fmt.Sprintf("a-%d", i), "a.md", i, unit(i), map[string]string{"k": "v"}))
		}
		recs = append(recs, rec("b-0", "b.md", 0, unit(5), nil))
		must(t, s.Upsert(ctx, recs))
		got := scanAll(t, s, map[string]string{"source": "a.md"}, false)
		if !slices.Equal(ids(got), []string{"a-0", "a-1", "a-2"}) {
			t.Fatalf("Scan(a.md) = %v", ids(got))
		}
		r := got[1]
		if r.Source != "a.md" || r.Chunk != 1 || r.Text != "text of a-1" || r.Metadata["k"] != "v" || len(r.Metadata) != 1 ||
			r.Version != "v1" || r.Written != 1700000000 || r.Embedding != nil {
			t.Fatalf("Scan without embeddings returned %+v", r)
		}
		must(t, s.Delete(ctx, []string{"a-0", "a-2", "missing"}))
		if got := ids(scanAll(t, s, map[string]string{"source": "a.md"}, false)); !slices.Equal(got, []string{"a-1"}) {
			t.Fatalf("after delete Scan(a.md) = %v", got)
		}
		hits, err := s.Query(ctx, unit(0), 10, nil)
		must(t, err)
		if len(hits) != 2 {
			t.Fatalf("after delete %d hits, want 2", len(hits))
		}
	})

	t.Run("scan stops on the callback's error", func(t *testing.T) {
		s := open(t, "stop")
		must(t, s.Upsert(ctx, []vectorstore.Record{rec("a", "a.md", 0, unit(0), nil)}))
		stop := fmt.Errorf("stop here")
		if err := s.Scan(ctx, nil, false, func([]vectorstore.Record) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("Scan returned %v, want the callback's error", err)
		}
	})

	t.Run("versions commit, replace and uncommit", func(t *testing.T) {
		s := open(t, "versions")
		v1 := vectorstore.SourceVersion{Source: "a.md", Version: "v1", Chunks: 3, Origin: "docs_dir", Updated: 1700000000}
		must(t, s.Commit(ctx, v1))
		must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: "b.md", Version: "x", Chunks: 1, Updated: 1700000001}))
		got, err := s.Versions(ctx, []string{"a.md", "c.md"})
		must(t, err)
		if len(got) != 1 || got["a.md"] != v1 {
			t.Fatalf("Versions = %+v, want a.md at v1", got)
		}
		v2 := vectorstore.SourceVersion{Source: "a.md", Version: "v2", Chunks: 5, Updated: 1700000002}
		must(t, s.Commit(ctx, v2))
		got, err = s.Versions(ctx, []string{"a.md"})
		must(t, err)
		if got["a.md"] != v2 {
			t.Fatalf("after a second commit Versions = %+v, want %+v", got, v2)
		}
		if vs := allVersions(t, s); len(vs) != 2 || vs[0] != v2 || vs[1].Source != "b.md" {
			t.Fatalf("ScanVersions = %+v", vs)
		}
		must(t, s.Uncommit(ctx, "a.md"))
		must(t, s.Uncommit(ctx, "a.md"))
		if vs := allVersions(t, s); len(vs) != 1 || vs[0].Source != "b.md" {
			t.Fatalf("after Uncommit ScanVersions = %+v", vs)
		}
	})

	t.Run("odd source names", func(t *testing.T) {
		s := open(t, "odd")
		names := []string{"a b/c.md", "ünïcödé 名前.txt", "x\"y'z", "../../etc/passwd", "%2F.md"}
		for i, n := range names {
			r := rec(fmt.Sprintf("r%d", i), n, 0, unit(i), nil)
			must(t, s.Upsert(ctx, []vectorstore.Record{r}))
			must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: n, Version: "v1", Chunks: 1}))
		}
		got, err := s.Versions(ctx, names)
		must(t, err)
		for _, n := range names {
			if got[n].Source != n {
				t.Errorf("Versions lost %q: %+v", n, got)
			}
			if recs := scanAll(t, s, map[string]string{"source": n}, false); len(recs) != 1 || recs[0].Source != n {
				t.Errorf("Scan(source=%q) = %+v", n, recs)
			}
		}
	})

	t.Run("collections do not mix", func(t *testing.T) {
		a, b := open(t, "model-a"), open(t, "model-b")
		must(t, a.Upsert(ctx, []vectorstore.Record{rec("1", "a.md", 0, unit(0), nil)}))
		must(t, a.Commit(ctx, vectorstore.SourceVersion{Source: "a.md", Version: "v1", Chunks: 1}))
		// A different model may even have a different dimension.
		must(t, b.Upsert(ctx, []vectorstore.Record{{ID: "1", Source: "b.md", Text: "t", Embedding: []float32{1, 0, 0}, Version: "v1"}}))
		hits, err := a.Query(ctx, unit(0), 5, nil)
		must(t, err)
		if len(hits) != 1 || hits[0].Source != "a.md" {
			t.Fatalf("collection a sees %+v", hits)
		}
		if recs := scanAll(t, b, nil, false); len(recs) != 1 || recs[0].Source != "b.md" {
			t.Fatalf("collection b records %v", recs)
		}
		if vs := allVersions(t, b); len(vs) != 0 {
			t.Fatalf("collection b sees a's versions %v", vs)
		}
	})

	t.Run("drop removes one collection whole", func(t *testing.T) {
		a, b := open(t, "drop-a"), open(t, "drop-b")
		d, ok := a.(vectorstore.Dropper)
		if !ok {
			t.Fatalf("%T does not implement vectorstore.Dropper", a)
		}
		for _, s := range []vectorstore.Store{a, b} {
			must(t, s.Upsert(ctx, []vectorstore.Record{rec("1", "a.md", 0, unit(0), nil), rec("2", "a.md", 1, unit(1), nil)}))
			must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: "a.md", Version: "v1", Chunks: 2}))
		}
		must(t, d.Drop(ctx))
		if recs := scanAll(t, a, nil, false); len(recs) != 0 {
			t.Fatalf("records after Drop: %v", recs)
		}
		if vs := allVersions(t, a); len(vs) != 0 {
			t.Fatalf("versions after Drop: %v", vs)
		}
		hits, err := a.Query(ctx, unit(0), 5, nil)
		must(t, err)
		if len(hits) != 0 {
			t.Fatalf("hits after Drop: %v", hits)
		}
		must(t, d.Drop(ctx)) // idempotent
		if recs := scanAll(t, b, nil, false); len(recs) != 2 || len(allVersions(t, b)) != 1 {
			t.Fatalf("the other collection lost data: %v", recs)
		}
		// The handle stays usable.
		must(t, a.Upsert(ctx, []vectorstore.Record{rec("3", "c.md", 0, unit(2), nil)}))
		if recs := scanAll(t, a, nil, false); len(recs) != 1 {
			t.Fatalf("records after a write following Drop: %v", recs)
		}
	})

	t.Run("many records and versions page through", func(t *testing.T) {
		s := open(t, "many")
		const n = 2500
		recs := make([]vectorstore.Record, n)
		for i := range recs {
			recs[i] = rec(fmt.Sprintf("r%05d", i), fmt.Sprintf("s%d.md", i%2), i/2, mix(i%dim, (i+1)%dim, 0.9), nil)
		}
		must(t, s.Upsert(ctx, recs))
		if got := scanAll(t, s, nil, false); len(got) != n {
			t.Fatalf("Scan found %d records, want %d", len(got), n)
		}
		s1 := scanAll(t, s, map[string]string{"source": "s1.md"}, true)
		if len(s1) != n/2 || len(s1[0].Embedding) != dim {
			t.Fatalf("Scan(s1.md) has %d records, want %d with embeddings", len(s1), n/2)
		}
		must(t, s.Delete(ctx, ids(s1)))
		if got := scanAll(t, s, nil, false); len(got) != n/2 {
			t.Fatalf("after deleting s1.md, Scan found %d records", len(got))
		}
		var sources []string
		var vs []vectorstore.SourceVersion
		for i := range n {
			src := fmt.Sprintf("src%05d.md", i)
			sources = append(sources, src)
			vs = append(vs, vectorstore.SourceVersion{Source: src, Version: "v", Chunks: i})
		}
		must(t, s.Commit(ctx, vs[:7]...))
		must(t, s.Commit(ctx, vs[7:]...)) // more than PageSize in one call
		vs = nil
		vs = allVersions(t, s)
		if len(vs) != n || vs[0].Source != "src00000.md" || vs[n-1].Source != sources[n-1] || vs[n-1].Chunks != n-1 {
			t.Fatalf("ScanVersions found %d versions, want %d sorted", len(vs), n)
		}
		got, err := s.Versions(ctx, sources)
		must(t, err)
		if len(got) != n {
			t.Fatalf("Versions of %d sources found %d", n, len(got))
		}
	})

	t.Run("concurrent identical upserts are idempotent", func(t *testing.T) {
		s := open(t, "concurrent")
		recs := []vectorstore.Record{rec("a", "a.md", 0, unit(0), nil), rec("b", "a.md", 1, unit(1), nil)}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				if err := s.Upsert(ctx, recs); err != nil {
					errs <- err
					return
				}
				errs <- s.Commit(ctx, vectorstore.SourceVersion{Source: "a.md", Version: "v1", Chunks: 2})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		if got := scanAll(t, s, nil, false); len(got) != 2 {
			t.Fatalf("Scan = %v", got)
		}
		if vs := allVersions(t, s); len(vs) != 1 || vs[0].Chunks != 2 {
			t.Fatalf("ScanVersions = %v", vs)
		}
	})

	t.Run("lexical ranking of committed chunks", func(t *testing.T) {
		s := open(t, "lexical")
		lex, ok := s.(vectorstore.Lexical)
		if !ok {
			t.Fatalf("%T does not implement vectorstore.Lexical", s)
		}
		text := func(r vectorstore.Record, text, version string) vectorstore.Record {
			r.Text, r.Version = text, version
			return r
		}
		must(t, s.Upsert(ctx, []vectorstore.Record{
			text(rec("a0", "a.md", 0, unit(0), nil), "The quick brown fox jumps over the lazy dog.", "v1"),
			text(rec("a1", "a.md", 1, unit(1), nil), "Sorting slices of integers.", "v1"),
			text(rec("b0", "b.md", 0, unit(2), map[string]string{"lang": "en"}), "A fox, and a fox again: fox.", "v1"),
			text(rec("c0", "c.md", 0, unit(3), nil), "Nothing relevant here at all.", "v1"),
			text(rec("d0", "d.md", 0, unit(4), nil), "fox fox fox fox", "v1"),    // never committed
			text(rec("a2", "a.md", 0, unit(5), nil), "fox of version two", "v2"), // not committed yet
			text(rec("e0", "e.md", 0, unit(6), nil), "zebra", "v1"),
		}))
		// e0 is rewritten in place: the index must forget "zebra".
		must(t, s.Upsert(ctx, []vectorstore.Record{text(rec("e0", "e.md", 0, unit(6), nil), "yak", "v1")}))
		must(t, s.Commit(ctx,
			vectorstore.SourceVersion{Source: "a.md", Version: "v1", Chunks: 2},
			vectorstore.SourceVersion{Source: "b.md", Version: "v1", Chunks: 1},
			vectorstore.SourceVersion{Source: "c.md", Version: "v1", Chunks: 1},
			vectorstore.SourceVersion{Source: "e.md", Version: "v1", Chunks: 1}))
		search := func(q string, k int, filter map[string]string) []string {
			t.Helper()
			hits, err := lex.LexicalQuery(ctx, q, k, filter)
			must(t, err)
			var out []string
			for i, h := range hits {
				out = append(out, h.ID)
				if h.Score <= 0 || (i > 0 && h.Score > hits[i-1].Score) {
					t.Errorf("%q: scores not positive and descending: %+v", q, hits)
				}
				if h.Text == "" || h.Source == "" || h.Version == "" {
					t.Errorf("%q: hit fields missing: %+v", q, h)
				}
			}
			return out
		}
		if got := search("fox", 10, nil); !slices.Equal(got, []string{"b0", "a0"}) {
			t.Fatalf("fox = %v, want [b0 a0]: committed chunks only, the denser first", got)
		}
		if got := search("Which FOX?", 1, nil); !slices.Equal(got, []string{"b0"}) {
			t.Fatalf("k=1: %v", got)
		}
		if got := search("fox", 10, map[string]string{vectorstore.KeySource: "a.md"}); !slices.Equal(got, []string{"a0"}) {
			t.Fatalf("source filter: %v", got)
		}
		if got := search("fox dog", 10, map[string]string{"lang": "en"}); !slices.Equal(got, []string{"b0"}) {
			t.Fatalf("metadata filter: %v", got)
		}
		if got := search("integers", 10, nil); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("integers = %v", got)
		}
		if got := search("zebra", 10, nil); len(got) != 0 {
			t.Fatalf("replaced text still found: %v", got)
		}
		if got := search("yak", 10, nil); !slices.Equal(got, []string{"e0"}) {
			t.Fatalf("yak = %v", got)
		}
		for _, q := range []string{"", "?!", "unknownword", `fox" OR "dog`, "AND OR NOT ( * NEAR"} {
			if _, err := lex.LexicalQuery(ctx, q, 5, nil); err != nil {
				t.Fatalf("query %q: %v", q, err)
			}
		}
		if got := search("unknownword", 10, nil); len(got) != 0 {
			t.Fatalf("unknownword = %v", got)
		}
		// A new version replaces the old one at its commit; an uncommitted
		// source disappears.
		must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: "a.md", Version: "v2", Chunks: 1}))
		must(t, s.Uncommit(ctx, "b.md"))
		if got := search("fox", 10, nil); !slices.Equal(got, []string{"a2"}) {
			t.Fatalf("after commit of a.md v2 and uncommit of b.md: fox = %v, want [a2]", got)
		}
		// The same question gets the same answer.
		first := search("fox version integers", 10, nil)
		for range 3 {
			if got := search("fox version integers", 10, nil); !slices.Equal(got, first) {
				t.Fatalf("ranking changed between identical queries: %v then %v", first, got)
			}
		}
	})
}
