package rag

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/vectorstore"
)

// Hybrid retrieval: reciprocal rank fusion (Cormack et al., 2009) of the
// vector ranking and the lexical (BM25) ranking. A passage at rank r (from 1)
// of a list earns weight/(RRFK+r) from it; the vector list weighs
// 1-LexicalWeight, the lexical list LexicalWeight.
const (
	// RRFK is the k of the fusion, the value of the paper.
	RRFK = 60
	// LocalLexicalWeight is the default weight with the offline embedder,
	// measured on make eval (README, "Retrieval quality": 1,000 queries,
	// weights 0.3 to 0.95, both stores): MRR@10 rises with the weight up to
	// 0.9, where hybrid beats the BM25 baseline on both stores; 0.95 is
	// within the noise of it and leaves the vector ranking little more than
	// a tie-break.
	LocalLexicalWeight = 0.9
	// DefaultLexicalWeight is the default with a model's embeddings: the
	// equal weighting of plain RRF, as nothing here can measure them.
	DefaultLexicalWeight = 0.5
	// FusionDepth is the number of passages taken from each list.
	FusionDepth = 50
)

// Reranker orders passages by relevance to a query: it returns one score per
// document, higher is more relevant.
type Reranker interface {
	Rerank(ctx context.Context, query string, documents []string) ([]float64, error)
}

// Retrieve returns the best passages for the question in the query's mode
// (the service's default when empty), among the committed versions of their
// sources. With a reranker, the best RerankTopN passages are ordered again by
// it; when it fails, they keep their order (logged and counted, not an
// error).
func (s *Service) Retrieve(ctx context.Context, q Query) (srcs []Source, _ Usage, retErr error) {
	k := q.TopK
	if k <= 0 {
		k = s.opts.TopK
	}
	mode := cmp.Or(q.Mode, s.opts.Mode)
	ctx, span := startSpan(ctx, "rag.retrieve", attribute.Int(AttrTopK, k), attribute.Int(AttrFilters, len(q.Filter)), attribute.String(AttrMode, mode))
	defer func() { endSpan(span, retErr, attribute.Int(AttrHits, len(srcs))) }()
	want := k
	if s.opts.Reranker != nil {
		want = max(k, s.opts.RerankTopN)
	}
	var hits []vectorstore.Hit
	var usage Usage
	var err error
	switch mode {
	case contract.ModeVector:
		hits, usage, err = s.vectorHits(ctx, q, want)
	case contract.ModeLexical:
		hits, err = s.lexicalHits(ctx, q, want)
	case contract.ModeHybrid:
		hits, usage, err = s.hybridHits(ctx, q, want)
	default:
		return nil, Usage{}, fmt.Errorf("unknown retrieval mode %q", mode)
	}
	if err != nil {
		return nil, Usage{}, err
	}
	if s.opts.Reranker != nil && len(hits) > 1 {
		hits = s.rerank(ctx, q.Question, hits)
	}
	hits = hits[:min(k, len(hits))]
	out := make([]Source, len(hits))
	for i, h := range hits {
		out[i] = Source{ID: h.ID, Source: h.Source, Chunk: h.Chunk, Text: h.Text, Score: h.Score}
		if len(h.Metadata) > 0 {
			out[i].Metadata = h.Metadata
		}
	}
	return out, usage, nil
}

// vectorHits returns the k visible chunks closest to the question's
// embedding.
func (s *Service) vectorHits(ctx context.Context, q Query, k int) ([]vectorstore.Hit, Usage, error) {
	vecs, eu, err := s.embedQuery(ctx, q.Question)
	if err != nil {
		return nil, Usage{}, err
	}
	s.opts.Metrics.Tokens("embedding", eu.TotalTokens)
	usage := Usage{EmbeddingTokens: eu.TotalTokens, TotalTokens: eu.TotalTokens}
	// Invisible chunks (a version being written, or one replaced a moment
	// ago) are rare: ask for a few more than k, and again only when needed:
	// when the store may hold more (it filled the page), or when a version
	// was committed between the query and the look-up of the versions (the
	// hits were of the old one; the new one's chunks are in the store now).
	var hits []vectorstore.Hit
	n := k + max(4, k/2)
	for attempt := 0; ; attempt++ {
		raw, err := s.store.Query(ctx, vecs[0], n, q.Filter)
		if err != nil {
			return nil, Usage{}, storeErr(ctx, err)
		}
		var stale bool
		if hits, stale, err = s.visible(ctx, raw); err != nil {
			return nil, Usage{}, storeErr(ctx, err)
		}
		full := len(raw) == n && n < maxFetch
		if len(hits) >= k || (!full && !stale) || attempt == maxAttempts {
			break
		}
		if full {
			n = min(n*4, maxFetch)
		}
	}
	return hits[:min(k, len(hits))], usage, nil
}

// QueryWeighter is an embedder that can weigh the words of a query (the
// offline embedder, llm.Local): documents keep their unweighted vectors.
type QueryWeighter interface {
	QueryTerms(text string) []string
	EmbedQuery(text string, weights map[string]float64) []float32
}

// embedQuery embeds the question. With an embedder that weighs query words
// and a store with a lexical index (and Options.QueryIDF), each word weighs
// its inverse document frequency in the index, ln(1 + (N - n + 0.5) /
// (n + 0.5)), as in BM25: common words no longer drown the distinctive ones.
func (s *Service) embedQuery(ctx context.Context, question string) ([][]float32, llm.Usage, error) {
	qw, ok := s.emb.(QueryWeighter)
	lex, lexOK := s.store.(vectorstore.Lexical)
	if !ok || !lexOK || !s.opts.QueryIDF {
		vecs, eu, err := s.emb.Embed(ctx, []string{question})
		if err != nil {
			return nil, eu, modelErr(ctx, "embedding model", err)
		}
		if len(vecs) != 1 {
			return nil, eu, &UpstreamError{Service: "embedding model", Err: fmt.Errorf("got %d vectors for 1 text", len(vecs))}
		}
		return vecs, eu, nil
	}
	terms := qw.QueryTerms(question)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	freqs, total, err := lex.DocFreqs(ctx, terms)
	if err != nil {
		return nil, llm.Usage{}, storeErr(ctx, err)
	}
	weights := make(map[string]float64, len(terms))
	for i, t := range terms {
		n, df := float64(total), float64(freqs[i])
		weights[t] = math.Log(1 + (n-df+0.5)/(df+0.5))
	}
	return [][]float32{qw.EmbedQuery(question, weights)}, llm.Usage{}, nil
}

// lexicalHits returns the k visible chunks that rank best by BM25. A store
// without a lexical index fails: the server only opens stores that have one.
func (s *Service) lexicalHits(ctx context.Context, q Query, k int) ([]vectorstore.Hit, error) {
	lex, ok := s.store.(vectorstore.Lexical)
	if !ok {
		return nil, storeErr(ctx, fmt.Errorf("%w: the store has no lexical index", vectorstore.ErrInvalid))
	}
	// The index only holds committed chunks; a few more than k cover the
	// ones replaced since it was refreshed.
	n := k + max(4, k/2)
	raw, err := lex.LexicalQuery(ctx, q.Question, n, q.Filter)
	if err != nil {
		return nil, storeErr(ctx, err)
	}
	hits, _, err := s.visible(ctx, raw)
	if err != nil {
		return nil, storeErr(ctx, err)
	}
	return hits[:min(k, len(hits))], nil
}

// hybridHits fuses the vector and the lexical rankings. Each is read at its
// own instant, so a version committed in between could put chunks of two
// versions of a source side by side: the fused list is checked against one
// read of the commit records, and read again (a few times at most) when that
// dropped chunks of a source committed at another version.
func (s *Service) hybridHits(ctx context.Context, q Query, k int) ([]vectorstore.Hit, Usage, error) {
	depth := max(k, FusionDepth)
	for attempt := 0; ; attempt++ {
		var vec, lex []vectorstore.Hit
		var usage Usage
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			vec, usage, err = s.vectorHits(gctx, q, depth)
			return err
		})
		g.Go(func() (err error) {
			lex, err = s.lexicalHits(gctx, q, depth)
			return err
		})
		if err := g.Wait(); err != nil {
			return nil, Usage{}, err
		}
		hits, stale, err := s.visible(ctx, Fuse(vec, lex, s.lexicalWeight, len(vec)+len(lex)))
		if err != nil {
			return nil, Usage{}, storeErr(ctx, err)
		}
		if !stale || attempt == maxAttempts {
			return hits[:min(k, len(hits))], usage, nil
		}
	}
}

// Fuse merges the vector and the lexical rankings by weighted reciprocal rank
// fusion and returns the best n, with the fused score as Score. Ties are
// broken by chunk ID, so the order depends only on the two rankings.
func Fuse(vec, lex []vectorstore.Hit, lexicalWeight float64, n int) []vectorstore.Hit {
	score := make(map[string]float64, len(vec)+len(lex))
	byID := make(map[string]vectorstore.Hit, len(vec)+len(lex))
	for r, h := range vec {
		score[h.ID] += (1 - lexicalWeight) / float64(RRFK+r+1)
		byID[h.ID] = h
	}
	for r, h := range lex {
		score[h.ID] += lexicalWeight / float64(RRFK+r+1)
		if _, ok := byID[h.ID]; !ok {
			byID[h.ID] = h
		}
	}
	out := make([]vectorstore.Hit, 0, len(byID))
	for id, h := range byID {
		h.Score = float32(score[id])
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b vectorstore.Hit) int {
		if c := cmp.Compare(score[b.ID], score[a.ID]); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out[:min(n, len(out))]
}

// rerank orders the best RerankTopN hits by the reranker's scores (ties keep
// their order); the rest follow unchanged. On failure the hits are returned
// as they are.
func (s *Service) rerank(ctx context.Context, question string, hits []vectorstore.Hit) []vectorstore.Hit {
	n := min(len(hits), s.opts.RerankTopN)
	docs := make([]string, n)
	for i, h := range hits[:n] {
		docs[i] = h.Text
	}
	scores, err := s.opts.Reranker.Rerank(ctx, question, docs)
	if err == nil && len(scores) != n {
		err = fmt.Errorf("%d scores for %d documents", len(scores), n)
	}
	if err != nil {
		s.opts.Metrics.RerankFailed()
		s.opts.Logger.WarnContext(ctx, "Reranker failed: passages keep their fused order", "err", err)
		return hits
	}
	top := slices.Clone(hits[:n])
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	out := make([]vectorstore.Hit, 0, len(hits))
	for _, i := range idx {
		h := top[i]
		h.Score = float32(scores[i])
		out = append(out, h)
	}
	return append(out, hits[n:]...)
}
