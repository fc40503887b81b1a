package main

import (
	"io"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRankCountsEachSourceOnce(t *testing.T) {
	for _, tc := range []struct {
		sources []string
		want    int
	}{
		{[]string{"t", "a", "b"}, 1},
		{[]string{"a", "a", "a", "t"}, 2}, // three chunks of a are one document
		{[]string{"a", "b"}, 0},
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "t"}, 0}, // 11th: outside the top 10
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "t"}, 10},
	} {
		if got := Rank(tc.sources, "t"); got != tc.want {
			t.Errorf("Rank(%v) = %d, want %d", tc.sources, got, tc.want)
		}
	}
}

func TestMetricsOnHandMadeRankings(t *testing.T) {
	// Four queries: target first, third, tenth, missing.
	ranks := []int{1, 3, 10, 0}
	if got := RecallAt(ranks, 1); !near(got, 0.25) {
		t.Errorf("R@1 = %v, want 0.25", got)
	}
	if got := RecallAt(ranks, 5); !near(got, 0.5) {
		t.Errorf("R@5 = %v, want 0.5", got)
	}
	if got := RecallAt(ranks, 10); !near(got, 0.75) {
		t.Errorf("R@10 = %v, want 0.75", got)
	}
	s := &Scores{}
	for i, r := range ranks {
		s.Add(r, time.Duration(i+1)*time.Millisecond)
	}
	s.Done()
	wantMRR := (1 + 1.0/3 + 1.0/10 + 0) / 4
	if !near(s.MRR, wantMRR) {
		t.Errorf("MRR@10 = %v, want %v", s.MRR, wantMRR)
	}
	// One relevant document: DCG = 1/log2(rank+1), ideal DCG = 1.
	wantNDCG := (1 + 1/math.Log2(4) + 1/math.Log2(11) + 0) / 4
	if !near(s.NDCG, wantNDCG) {
		t.Errorf("nDCG@10 = %v, want %v", s.NDCG, wantNDCG)
	}
	if !near(NDCG(3), 0.5) {
		t.Errorf("nDCG of rank 3 = %v, want 0.5", NDCG(3))
	}
	if s.Queries != 4 || s.P50 != 2*time.Millisecond || s.P95 != 4*time.Millisecond {
		t.Errorf("queries %d, p50 %v, p95 %v; want 4, 2ms, 4ms", s.Queries, s.P50, s.P95)
	}
	if ReciprocalRank(11) != 0 || NDCG(11) != 0 {
		t.Error("a rank beyond 10 must score 0")
	}
}

func TestBM25RanksTheObviousDocumentFirst(t *testing.T) {
	ix := NewBM25([]Document{
		{Source: "cats", Text: "The cat sat on the mat. Cats purr."},
		{Source: "dogs", Text: "The dog barked at the mailman. Dogs bark."},
		{Source: "long-cat", Text: "The cat is mentioned once in this much longer text about gardens, weather, roads, rivers and the sea."},
		{Source: "the", Text: "The the the the."},
	})
	if got := ix.Search("cat", 10); !slices.Equal(got, []string{"cats", "long-cat"}) {
		t.Errorf("cat: %v, want [cats long-cat] (same tf, the shorter document first; no match: not returned)", got)
	}
	if got := ix.Search("Dog barked!", 10); len(got) == 0 || got[0] != "dogs" {
		t.Errorf("dog barked: %v, want dogs first", got)
	}
	// A term in every document weighs less than a rare one.
	if ix.IDF("the") >= ix.IDF("mailman") {
		t.Errorf("idf(the) %v >= idf(mailman) %v", ix.IDF("the"), ix.IDF("mailman"))
	}
	if got := ix.Search("cat dog", 1); len(got) != 1 {
		t.Errorf("k=1 returned %v", got)
	}
	if got := BMTokens("Hello, World-2 x86_64"); !slices.Equal(got, []string{"hello", "world", "2", "x86", "64"}) {
		t.Errorf("tokens: %v", got)
	}
}

func TestSampleIsStableAndSpread(t *testing.T) {
	c := &Corpus{}
	for i := range 10 {
		c.Queries = append(c.Queries, Query{Target: string(rune('a' + i))})
	}
	got := c.Sample(5)
	var targets []string
	for _, q := range got {
		targets = append(targets, q.Target)
	}
	if !slices.Equal(targets, []string{"a", "c", "e", "g", "i"}) {
		t.Errorf("Sample(5) = %v", targets)
	}
	if len(c.Sample(0)) != 10 || len(c.Sample(20)) != 10 {
		t.Error("Sample(0) and Sample(n > len) must return all")
	}
}

func TestCorpusOfPackageStrings(t *testing.T) {
	c, err := BuildCorpus(goroot(t), []string{"strings", "math/rand"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Docs) < 10 || len(c.Docs) != len(c.Queries) {
		t.Fatalf("%d documents, %d queries", len(c.Docs), len(c.Queries))
	}
	byName := map[string]Document{}
	for i, d := range c.Docs {
		if i > 0 && c.Docs[i-1].Source >= d.Source {
			t.Errorf("documents not sorted: %s before %s", c.Docs[i-1].Source, d.Source)
		}
		byName[d.Source] = d
	}
	for _, q := range c.Queries {
		d, ok := byName[q.Target]
		if !ok {
			t.Fatalf("query %q: no document %s", q.Text, q.Target)
		}
		if strings.Contains(d.Text, q.Text) || len(d.Text) < minDocChars {
			t.Errorf("%s: the document contains its query or is short: %q / %q", q.Target, q.Text, d.Text)
		}
	}
	// "Cut slices s around the first instance of sep, returning ..." is the query.
	if d := byName["strings.Cut"]; !strings.HasPrefix(d.Text, "The found result reports whether sep appears in s.") {
		t.Errorf("strings.Cut: %q", d.Text)
	}
	for src := range byName {
		if strings.HasPrefix(src, "math-rand.") {
			return
		}
	}
	t.Error("no math-rand.* document (a slash is not allowed in a source)")
}

func goroot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func TestFloorsFailBelowOrWithoutAFloor(t *testing.T) {
	floors := []Floor{{Store: "embedded", Mode: "vector", MRR10: 0.3, Recall10: 0.5}}
	ok := result{store: "embedded", mode: "vector", scores: &Scores{MRR: 0.31, R10: 0.5}}
	if err := checkFloors(io.Discard, floors, []result{ok}); err != nil {
		t.Errorf("at the floor: %v", err)
	}
	low := result{store: "embedded", mode: "vector", scores: &Scores{MRR: 0.29, R10: 0.6}}
	if err := checkFloors(io.Discard, floors, []result{low}); err == nil || !strings.Contains(err.Error(), "MRR@10 0.290 is below its floor 0.300") {
		t.Errorf("below the MRR floor: %v", err)
	}
	other := result{store: "chroma", mode: "hybrid", scores: &Scores{MRR: 1, R10: 1}}
	if err := checkFloors(io.Discard, floors, []result{other}); err == nil || !strings.Contains(err.Error(), "chroma/hybrid: no floor") {
		t.Errorf("without a floor: %v", err)
	}
}

func TestFloorsFileParses(t *testing.T) {
	floors, err := readFloors("floors.json")
	if err != nil {
		t.Fatal(err)
	}
	// make eval-ci measures every default store and mode: each has a floor.
	cfg, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range floors {
		have[f.Store+"/"+f.Mode] = true
	}
	for _, store := range cfg.stores {
		for _, mode := range cfg.modes {
			if !have[store+"/"+mode] {
				t.Errorf("no floor for %s/%s in %+v", store, mode, floors)
			}
		}
	}
	if len(floors) != len(cfg.stores)*len(cfg.modes) {
		t.Errorf("%d floors for %d stores and modes: %+v", len(floors), len(cfg.stores)*len(cfg.modes), floors)
	}
}
