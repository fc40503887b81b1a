package rag_test

import (
	"slices"
	"testing"

	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/vectorstore"
)

func hitList(ids ...string) []vectorstore.Hit {
	out := make([]vectorstore.Hit, len(ids))
	for i, id := range ids {
		out[i] = vectorstore.Hit{ID: id, Source: id + ".md"}
	}
	return out
}

func idsOf(hs []vectorstore.Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// TestFuse: reciprocal rank fusion weighs the two lists, keeps the union,
// breaks ties by ID and cuts at n.
func TestFuse(t *testing.T) {
	vec, lex := hitList("a", "b", "c"), hitList("c", "d", "a")
	for _, tt := range []struct {
		w    float64
		n    int
		want []string
	}{
		{0, 10, []string{"a", "b", "c", "d"}},   // vector order; d scores 0 and comes last
		{1, 10, []string{"c", "d", "a", "b"}},   // lexical order
		{0.5, 10, []string{"a", "c", "b", "d"}}, // a and c tie (1/61 + 1/63 each): by ID
		{0.5, 2, []string{"a", "c"}},
		{0.9, 3, []string{"c", "a", "d"}},
	} {
		got := rag.Fuse(vec, lex, tt.w, tt.n)
		if !slices.Equal(idsOf(got), tt.want) {
			t.Errorf("weight %v, n %d: %v, want %v", tt.w, tt.n, idsOf(got), tt.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Score > got[i-1].Score {
				t.Errorf("weight %v: scores not descending: %v", tt.w, got)
			}
		}
	}
	if got := rag.Fuse(nil, nil, 0.5, 5); len(got) != 0 {
		t.Errorf("empty lists: %v", got)
	}
}
