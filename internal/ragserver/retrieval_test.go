package ragserver_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm/hashembed"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

// retrievalDocs share common words; each has one word of its own.
var retrievalDocs = []map[string]any{
	{"source": "harbour.md", "text": "The harbour opens at dawn. Boats leave the harbour with the tide, and the pelicans follow the boats."},
	{"source": "market.md", "text": "The market opens at dawn. Traders sell fish from the boats, and the prices follow the tide of the day."},
	{"source": "lighthouse.md", "text": "The lighthouse keeper climbs the stairs at dusk. The lamp turns all night so that the boats find the harbour."},
	{"source": "weather.md", "text": "Storms come from the west in winter. The wind turns at dusk, and the fishermen stay home when the sea is rough."},
}

func sources(t *testing.T, r interface{ list(string) []any }) []string {
	t.Helper()
	var out []string
	for _, x := range r.list("sources") {
		m, _ := x.(map[string]any)
		s, _ := m["source"].(string)
		out = append(out, s)
	}
	return out
}

// TestRetrievalModes: each mode retrieves through the real HTTP API, on the
// embedded store and on a real Chroma; a lexical query finds only chunks
// that share a word with it, vector search always finds the nearest; a bad
// mode is a 400 that names the field and the values.
func TestRetrievalModes(t *testing.T) {
	for _, store := range []string{"embedded", "chroma"} {
		t.Run(store, func(t *testing.T) {
			env := map[string]string{}
			if store == "chroma" {
				env["CHROMA_URL"] = chromaserver.Shared(t).URL()
				env["CHROMA_COLLECTION"] = "modes-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
			}
			ts := start(t, env)
			if r := ts.post(t, "/documents", map[string]any{"documents": retrievalDocs}); r.Status != http.StatusOK {
				t.Fatalf("ingest: %s", r)
			}
			for _, mode := range []string{"vector", "lexical", "hybrid", ""} {
				body := map[string]any{"question": "Who follows the boats? Pelicans.", "top_k": 2}
				if mode != "" {
					body["mode"] = mode
				}
				r := ts.post(t, "/retrieve", body)
				if got := sources(t, r); r.Status != http.StatusOK || len(got) == 0 || got[0] != "harbour.md" {
					t.Errorf("mode %q: %s, want harbour.md first", mode, r)
				}
			}
			// No word in common: lexical finds nothing, vector still ranks.
			q := map[string]any{"question": "Quantum chromodynamics", "top_k": 3}
			q["mode"] = "lexical"
			if r := ts.post(t, "/retrieve", q); r.Status != http.StatusOK || len(sources(t, r)) != 0 {
				t.Errorf("lexical, no shared word: %s, want no sources", r)
			}
			q["mode"] = "vector"
			if r := ts.post(t, "/retrieve", q); r.Status != http.StatusOK || len(sources(t, r)) != 3 {
				t.Errorf("vector, no shared word: %s, want 3 sources", r)
			}
			// /query takes the mode too.
			r := ts.post(t, "/query", map[string]any{"question": "When does the lamp turn?", "mode": "lexical", "top_k": 1})
			if got := sources(t, r); r.Status != http.StatusOK || !slices.Equal(got, []string{"lighthouse.md"}) {
				t.Errorf("/query lexical: %s", r)
			}
			for _, path := range []string{"/retrieve", "/query"} {
				r := ts.post(t, path, map[string]any{"question": "boats", "mode": "semantic"})
				want := `field "mode" must be one of vector, lexical, hybrid`
				if r.Status != http.StatusBadRequest || !strings.Contains(r.str("error"), want) {
					t.Errorf("%s with mode semantic: %s, want 400 %q", path, r, want)
				}
			}
		})
	}
}

// TestRetrievalModeConfig: RETRIEVAL_MODE sets the default; a bad value, a
// weight out of range or a reranker without a model stop the server with one
// line naming the setting.
func TestRetrievalModeConfig(t *testing.T) {
	base := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cfg, err := ragserver.LoadConfig(nil, base(), nil)
	if err != nil || cfg.RetrievalMode != "hybrid" || !cfg.QueryIDF || cfg.RerankBaseURL != "" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = ragserver.LoadConfig(nil, base("RETRIEVAL_MODE", "lexical"), nil)
	if err != nil || cfg.RetrievalMode != "lexical" {
		t.Fatalf("RETRIEVAL_MODE=lexical: %q, %v", cfg.RetrievalMode, err)
	}
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"RETRIEVAL_MODE", "semantic"}, `RETRIEVAL_MODE="semantic" must be one of vector, lexical, hybrid`},
		{[]string{"HYBRID_LEXICAL_WEIGHT", "1.5"}, `HYBRID_LEXICAL_WEIGHT="1.5" must be a number from 0 to 1`},
		{[]string{"QUERY_IDF", "yes"}, `QUERY_IDF="yes" must be true or false`},
		{[]string{"RERANK_BASE_URL", "http://tei:8080/v1"}, "RERANK_BASE_URL needs RERANK_MODEL"},
		{[]string{"RERANK_BASE_URL", "tei:8080", "RERANK_MODEL", "m"}, `RERANK_BASE_URL="tei:8080" must be an http:// or https:// URL`},
		{[]string{"RERANK_BASE_URL", "http://tei:8080/v1", "RERANK_MODEL", "m", "RERANK_TOP_N", "101"}, `RERANK_TOP_N="101" must be an integer from 1 to 100`},
	} {
		if _, err := ragserver.LoadConfig(nil, base(tt.env...), nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.env, err, tt.want)
		}
	}
}

var rerankDocs = []map[string]any{
	{"source": "albatross.md", "text": "Albatross."},
	{"source": "cliff.md", "text": "Gulls and terns nest on the cliff."},
	{"source": "beach.md", "text": "Gulls and terns rest on the beach."},
	{"source": "pier.md", "text": "Gulls wait on the pier."},
	{"source": "boats.md", "text": "Boats leave the harbour at dawn."},
}

// fakeScore is the fake reranker's score: the share of the query's words a
// document holds.
func fakeScore(query, doc string) float64 {
	q := map[string]bool{}
	for _, w := range hashembed.Tokens(query) {
		q[w] = true
	}
	have := map[string]bool{}
	for _, w := range hashembed.Tokens(doc) {
		if q[w] {
			have[w] = true
		}
	}
	return float64(len(have)) / float64(len(q))
}

// TestRerankThroughTheModelAPI: with a reranker configured, the passages come
// back in the reranker's order (the fake scores by shared words, over real
// HTTP); when the reranker fails, the answer is still a 200 in the fused
// order, and the failure is counted.
func TestRerankThroughTheModelAPI(t *testing.T) {
	f, url := fake(t)
	dir := t.TempDir()
	texts := map[string]string{}
	for _, d := range rerankDocs {
		texts[d["source"].(string)] = d["text"].(string)
	}
	order := func(r response) []string {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("/retrieve: %s", r)
		}
		return sources(t, r)
	}
	rerankOrder := func(question string, fused []string) []string {
		out := slices.Clone(fused)
		slices.SortStableFunc(out, func(a, b string) int {
			sa, sb := fakeScore(question, texts[a]), fakeScore(question, texts[b])
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		return out
	}

	// Without a reranker. The question's rare word is in one short document
	// (BM25 ranks it first), its two common words in longer ones (the
	// reranker, counting shared words, prefers those).
	ts := start(t, map[string]string{"DATA_DIR": dir})
	if r := ts.post(t, "/documents", map[string]any{"documents": rerankDocs}); r.Status != http.StatusOK {
		t.Fatalf("ingest: %s", r)
	}
	question := "albatross gulls terns"
	body := map[string]any{"question": question, "top_k": len(rerankDocs)}
	fused := order(ts.post(t, "/retrieve", body))
	byScore := rerankOrder(question, fused)
	ts.stop(t)
	if slices.Equal(fused, byScore) {
		t.Fatalf("fixture: the fused order %v is the reranker's already: the test would prove nothing", fused)
	}
	t.Logf("question %q: fused %v, reranked %v", body["question"], fused, byScore)

	ts = start(t, map[string]string{"DATA_DIR": dir, "RERANK_BASE_URL": url, "RERANK_MODEL": "fake-rerank", "RERANK_TOP_N": "4"})
	if got := order(ts.post(t, "/retrieve", body)); !slices.Equal(got, byScore) {
		t.Fatalf("with the reranker: %v, want the reranker's order %v (fused: %v)", got, byScore, fused)
	}
	if n := f.Stats().RerankRequests; n != 1 {
		t.Fatalf("rerank requests = %d, want 1", n)
	}
	f.SetFault(fakeopenai.Rerank, fakeopenai.Fault{Status: http.StatusInternalServerError, Times: -1})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if got := order(ts.post(t, "/retrieve", body)); !slices.Equal(got, fused) {
				t.Errorf("reranker failing: %v, want the fused order %v", got, fused)
			}
		})
	}
	wg.Wait()
	m := string(ts.get(t, "/metrics").Body)
	if !strings.Contains(m, "ragserver_rerank_failures_total 3") {
		t.Errorf("metrics do not count the 3 failures:\n%s", grepLines(m, "rerank"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}

// TestReplicasOnOneChromaAnswerAlike: two servers on the same Chroma
// collection keep their own lexical index, rebuilt from the committed
// chunks: they rank every question identically (same passages, same
// scores), and a document replaced through one replica is seen by the other
// within LEXICAL_REFRESH.
func TestReplicasOnOneChromaAnswerAlike(t *testing.T) {
	env := map[string]string{
		"CHROMA_URL":        chromaserver.Shared(t).URL(),
		"CHROMA_COLLECTION": "replicas",
		"LEXICAL_REFRESH":   "200ms",
	}
	a := start(t, env)
	docs := append(slices.Clone(retrievalDocs), rerankDocs...)
	if r := a.post(t, "/documents", map[string]any{"documents": docs}); r.Status != http.StatusOK {
		t.Fatalf("ingest: %s", r)
	}
	b := start(t, env)
	questions := []string{"Who follows the boats?", "gulls and terns", "when does the wind turn at dusk", "the the the", "albatross harbour lamp winter"}
	answer := func(ts *testServer, q, mode string) string {
		t.Helper()
		r := ts.post(t, "/retrieve", map[string]any{"question": q, "mode": mode, "top_k": 6})
		if r.Status != http.StatusOK {
			t.Fatalf("/retrieve: %s", r)
		}
		var parts []string
		for _, x := range r.list("sources") {
			m := x.(map[string]any)
			parts = append(parts, fmt.Sprintf("%s#%v=%v", m["source"], m["chunk"], m["score"]))
		}
		return strings.Join(parts, " ")
	}
	for _, mode := range []string{"lexical", "hybrid"} {
		for _, q := range questions {
			if x, y := answer(a, q, mode), answer(b, q, mode); x != y || x == "" {
				t.Errorf("%s %q: replica a: %s; replica b: %s", mode, q, x, y)
			}
		}
	}
	// A new version through a; b follows within the refresh interval.
	upd := []map[string]any{{"source": "harbour.md", "text": "The harbour is closed for the albatross season."}}
	if r := a.post(t, "/documents", map[string]any{"documents": upd}); r.Status != http.StatusOK {
		t.Fatalf("update: %s", r)
	}
	want := answer(a, "albatross season", "lexical")
	if !strings.HasPrefix(want, "harbour.md#0=") {
		t.Fatalf("replica a after the update: %s, want harbour.md first", want)
	}
	waitFor(t, "replica b to see the new version", 10*time.Second, func() bool { return answer(b, "albatross season", "lexical") == want })
	for _, q := range questions {
		if x, y := answer(a, q, "hybrid"), answer(b, q, "hybrid"); x != y {
			t.Errorf("hybrid %q after the update: replica a: %s; replica b: %s", q, x, y)
		}
	}
}
