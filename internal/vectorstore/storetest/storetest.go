// Package storetest is the conformance suite every vectorstore.Store must
// pass. The Chroma and the embedded store tests both call Run, so the two
// behave the same for the server.
package storetest

import (
	"context"
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
	return vectorstore.Record{ID: id, Source: source, Chunk: chunk, Text: "text of " + id, Metadata: md, Embedding: vec}
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
		srcs, err := s.Sources(ctx)
		must(t, err)
		ids, err := s.IDs(ctx, "nothing")
		must(t, err)
		all, err := s.IDsWhere(ctx, nil)
		must(t, err)
		if len(srcs) != 0 || len(ids) != 0 || len(all) != 0 {
			t.Fatalf("sources %v ids %v, want none", srcs, ids)
		}
		must(t, s.Delete(ctx, []string{"unknown"}))
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
		if h.Source != "a.md" || h.Chunk != 0 || h.Text != "text of a" || h.Metadata["year"] != "2024" {
			t.Fatalf("fields did not round-trip: %+v", h)
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
		must(t, s.Upsert(ctx, []vectorstore.Record{
			rec("a1", "a.md", 0, unit(0), map[string]string{"kind": "10k", "year": "2024"}),
			rec("a2", "a.md", 1, unit(1), map[string]string{"kind": "10k", "year": "2023"}),
			rec("b1", "b.md", 0, unit(0), map[string]string{"kind": "call", "year": "2024"}),
		}))
		ids := func(hits []vectorstore.Hit) []string {
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
		} {
			hits, err := s.Query(ctx, unit(0), 10, tc.filter)
			must(t, err)
			if got := ids(hits); !slices.Equal(got, tc.want) {
				t.Errorf("filter %v: got %v, want %v", tc.filter, got, tc.want)
			}
		}
	})

	t.Run("upsert replaces by id", func(t *testing.T) {
		s := open(t, "replace")
		must(t, s.Upsert(ctx, []vectorstore.Record{rec("x", "x.md", 0, unit(0), nil)}))
		r := rec("x", "x.md", 0, unit(3), map[string]string{"v": "2"})
		r.Text = "new text"
		must(t, s.Upsert(ctx, []vectorstore.Record{r}))
		hits, err := s.Query(ctx, unit(3), 5, nil)
		must(t, err)
		if len(hits) != 1 || hits[0].Text != "new text" || hits[0].Metadata["v"] != "2" || hits[0].Score < 0.99 {
			t.Fatalf("hits = %+v, want the replaced record only", hits)
		}
	})

	t.Run("ids, delete and sources", func(t *testing.T) {
		s := open(t, "delete")
		var recs []vectorstore.Record
		for i := range 3 {
			recs = append(recs, rec(fmt.Sprintf("a-%d", i), "a.md", i, unit(i), nil))
		}
		recs = append(recs, rec("b-0", "b.md", 0, unit(5), nil))
		must(t, s.Upsert(ctx, recs))
		got, err := s.IDs(ctx, "a.md", "b.md", "c.md")
		must(t, err)
		if len(got) != 2 || !slices.Equal(got["a.md"], []string{"a-0", "a-1", "a-2"}) || !slices.Equal(got["b.md"], []string{"b-0"}) {
			t.Fatalf("IDs(a.md, b.md, c.md) = %v", got)
		}
		srcs, err := s.Sources(ctx)
		must(t, err)
		want := []vectorstore.SourceInfo{{Source: "a.md", Chunks: 3}, {Source: "b.md", Chunks: 1}}
		if !slices.Equal(srcs, want) {
			t.Fatalf("Sources = %v, want %v", srcs, want)
		}
		must(t, s.Delete(ctx, []string{"a-0", "a-2", "missing"}))
		got, err = s.IDs(ctx, "a.md")
		must(t, err)
		if !slices.Equal(got["a.md"], []string{"a-1"}) {
			t.Fatalf("after delete IDs(a.md) = %v", got)
		}
		hits, err := s.Query(ctx, unit(0), 10, nil)
		must(t, err)
		if len(hits) != 2 {
			t.Fatalf("after delete %d hits, want 2", len(hits))
		}
	})

	t.Run("ids where metadata matches", func(t *testing.T) {
		s := open(t, "where")
		byID, err := s.IDsWhere(ctx, map[string]string{"origin": "docs_dir"})
		must(t, err)
		if len(byID) != 0 {
			t.Fatalf("empty store: IDsWhere = %v", byID)
		}
		dd := map[string]string{"origin": "docs_dir"}
		must(t, s.Upsert(ctx, []vectorstore.Record{
			rec("a-0", "a.md", 0, unit(0), dd),
			rec("a-1", "a.md", 1, unit(1), dd),
			rec("b-0", "b.md", 0, unit(2), map[string]string{"origin": "docs_dir", "kind": "10k"}),
			rec("c-0", "c.md", 0, unit(3), nil),                                  // no origin
			rec("d-0", "d.md", 0, unit(4), map[string]string{"origin": "other"}), // another origin
			rec("e-0", "e.md", 0, unit(5), dd),
			rec("e-1", "e.md", 1, unit(6), nil), // mixed within one source
		}))
		for _, tc := range []struct {
			filter map[string]string
			want   map[string][]string
		}{
			{dd, map[string][]string{"a.md": {"a-0", "a-1"}, "b.md": {"b-0"}, "e.md": {"e-0"}}},
			{map[string]string{"origin": "docs_dir", "source": "e.md"}, map[string][]string{"e.md": {"e-0"}}},
			{map[string]string{"origin": "docs_dir", "source": "c.md"}, map[string][]string{}},
			{map[string]string{"origin": "docs_dir", "kind": "10k"}, map[string][]string{"b.md": {"b-0"}}},
			{map[string]string{"source": "e.md"}, map[string][]string{"e.md": {"e-0", "e-1"}}},
			{map[string]string{"origin": "none"}, map[string][]string{}},
			{nil, map[string][]string{"a.md": {"a-0", "a-1"}, "b.md": {"b-0"}, "c.md": {"c-0"}, "d.md": {"d-0"}, "e.md": {"e-0", "e-1"}}},
			{map[string]string{}, map[string][]string{"a.md": {"a-0", "a-1"}, "b.md": {"b-0"}, "c.md": {"c-0"}, "d.md": {"d-0"}, "e.md": {"e-0", "e-1"}}},
		} {
			got, err := s.IDsWhere(ctx, tc.filter)
			must(t, err)
			if len(got) != len(tc.want) {
				t.Errorf("IDsWhere(%v) = %v, want %v", tc.filter, got, tc.want)
				continue
			}
			for src, ids := range tc.want {
				if !slices.Equal(got[src], ids) {
					t.Errorf("IDsWhere(%v) = %v, want %v", tc.filter, got, tc.want)
				}
			}
		}
		// Deleting what a filter found leaves the rest alone.
		got, err := s.IDsWhere(ctx, map[string]string{"origin": "docs_dir", "source": "e.md"})
		must(t, err)
		must(t, s.Delete(ctx, got["e.md"]))
		must(t, s.Delete(ctx, got["e.md"])) // again: a no-op
		srcs, err := s.Sources(ctx)
		must(t, err)
		want := []vectorstore.SourceInfo{{Source: "a.md", Chunks: 2}, {Source: "b.md", Chunks: 1}, {Source: "c.md", Chunks: 1}, {Source: "d.md", Chunks: 1}, {Source: "e.md", Chunks: 1}}
		if !slices.Equal(srcs, want) {
			t.Fatalf("after deleting e.md's docs_dir chunks, Sources = %v, want %v", srcs, want)
		}
	})

	t.Run("collections do not mix", func(t *testing.T) {
		a, b := open(t, "model-a"), open(t, "model-b")
		must(t, a.Upsert(ctx, []vectorstore.Record{rec("1", "a.md", 0, unit(0), nil)}))
		// A different model may even have a different dimension.
		must(t, b.Upsert(ctx, []vectorstore.Record{{ID: "1", Source: "b.md", Text: "t", Embedding: []float32{1, 0, 0}}}))
		hits, err := a.Query(ctx, unit(0), 5, nil)
		must(t, err)
		if len(hits) != 1 || hits[0].Source != "a.md" {
			t.Fatalf("collection a sees %+v", hits)
		}
		srcs, err := b.Sources(ctx)
		must(t, err)
		if len(srcs) != 1 || srcs[0].Source != "b.md" {
			t.Fatalf("collection b sources %v", srcs)
		}
	})

	t.Run("many records page through", func(t *testing.T) {
		s := open(t, "many")
		const n = 2500
		recs := make([]vectorstore.Record, n)
		for i := range recs {
			recs[i] = rec(fmt.Sprintf("r%05d", i), fmt.Sprintf("s%d.md", i%2), i/2, mix(i%dim, (i+1)%dim, 0.9), nil)
		}
		must(t, s.Upsert(ctx, recs))
		srcs, err := s.Sources(ctx)
		must(t, err)
		if !slices.Equal(srcs, []vectorstore.SourceInfo{{Source: "s0.md", Chunks: n / 2}, {Source: "s1.md", Chunks: n / 2}}) {
			t.Fatalf("Sources = %v", srcs)
		}
		var sources []string
		for i := range 150 { // more than one $in batch
			sources = append(sources, fmt.Sprintf("other%d.md", i))
		}
		byID, err := s.IDs(ctx, append(sources, "s1.md")...)
		must(t, err)
		if len(byID) != 1 || len(byID["s1.md"]) != n/2 {
			t.Fatalf("IDs(s1.md) has %d ids, want %d", len(byID["s1.md"]), n/2)
		}
		must(t, s.Delete(ctx, byID["s1.md"]))
		srcs, err = s.Sources(ctx)
		must(t, err)
		if len(srcs) != 1 {
			t.Fatalf("after deleting s1.md, Sources = %v", srcs)
		}
	})

	t.Run("concurrent identical upserts are idempotent", func(t *testing.T) {
		s := open(t, "concurrent")
		recs := []vectorstore.Record{rec("a", "a.md", 0, unit(0), nil), rec("b", "a.md", 1, unit(1), nil)}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- s.Upsert(ctx, recs) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		srcs, err := s.Sources(ctx)
		must(t, err)
		if !slices.Equal(srcs, []vectorstore.SourceInfo{{Source: "a.md", Chunks: 2}}) {
			t.Fatalf("Sources = %v", srcs)
		}
	})
}
