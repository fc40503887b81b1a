package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Reranker scores documents against a query with an OpenAI-style rerank
// endpoint: POST {BaseURL}/rerank with {model, query, documents, top_n},
// answered with {results: [{index, relevance_score}]} (the shape of vLLM,
// TEI's OpenAI route, Jina and Cohere).
type Reranker struct {
	url   string
	key   func() string
	model string
	hc    *http.Client
	retry Retry
	obs   Observer
}

// NewReranker returns a rerank client: cfg.BaseURL, Key and Model as for
// NewOpenAI; each call is one attempt of at most cfg.Retry.CallTimeout (a
// failed reranking is not retried: the caller keeps its own order).
func NewReranker(cfg Config) *Reranker {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	return &Reranker{url: strings.TrimRight(cfg.BaseURL, "/") + "/rerank", key: cfg.Key, model: cfg.Model, hc: hc,
		retry: cfg.Retry.withDefaults(), obs: obs}
}

// maxRerankAnswer bounds the answer read from the reranker.
const maxRerankAnswer = 1 << 20

// Rerank returns the relevance score of each document, in the documents'
// order.
func (r *Reranker) Rerank(ctx context.Context, query string, documents []string) (scores []float64, err error) {
	start := time.Now()
	status := 0
	defer func() {
		st := status
		if st == http.StatusOK {
			st = 0 // a malformed answer is an "error"
		}
		r.obs.Call("rerank", outcome(err, st, ctx), time.Since(start))
	}()
	body, err := json.Marshal(map[string]any{"model": r.model, "query": query, "documents": documents, "top_n": len(documents)})
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, r.retry.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.key != nil {
		if k := r.key(); k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, &Error{Op: "rerank", Attempts: 1, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRerankAnswer))
	if err != nil {
		return nil, &Error{Op: "rerank", Attempts: 1, Err: err}
	}
	if status = resp.StatusCode; status != http.StatusOK {
		return nil, &Error{Op: "rerank", Attempts: 1, Status: status, Err: fmt.Errorf("status %s", resp.Status)}
	}
	var out struct {
		Results []struct {
			Index          *int     `json:"index"`
			RelevanceScore *float64 `json:"relevance_score"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &Error{Op: "rerank", Attempts: 1, Err: fmt.Errorf("decode answer: %w", err)}
	}
	scores = make([]float64, len(documents))
	seen := make([]bool, len(documents))
	for _, x := range out.Results {
		if x.Index == nil || x.RelevanceScore == nil || *x.Index < 0 || *x.Index >= len(documents) || seen[*x.Index] {
			return nil, &Error{Op: "rerank", Attempts: 1, Err: fmt.Errorf("answer has an invalid or repeated result")}
		}
		seen[*x.Index] = true
		scores[*x.Index] = *x.RelevanceScore
	}
	if len(out.Results) != len(documents) {
		return nil, &Error{Op: "rerank", Attempts: 1, Err: fmt.Errorf("%d results for %d documents", len(out.Results), len(documents))}
	}
	return scores, nil
}
