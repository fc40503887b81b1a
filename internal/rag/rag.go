package rag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag/chunk"
	"github.com/ragops/ragops/internal/vectorstore"
)

// Modes of answering.
const (
	ModeGenerative = "generative"
	ModeExtractive = "extractive"
)

// Options tune the pipeline. Zero values take the defaults.
type Options struct {
	ChunkSize    int // runes per chunk (default 800)
	ChunkOverlap int // runes repeated between chunks (default 100)
	TopK         int // default number of passages per query (default 4)
	// EmbedBatch is the number of chunks per embeddings request (default 64);
	// EmbedConcurrency bounds the requests in flight (default 4).
	EmbedBatch       int
	EmbedConcurrency int
	Metrics          Metrics
}

// Metrics receives pipeline counts.
type Metrics interface {
	Tokens(kind string, n int) // kind: "embedding", "prompt", "completion"
	Chunks(added, removed int)
}

type nopMetrics struct{}

func (nopMetrics) Tokens(string, int) {}
func (nopMetrics) Chunks(int, int)    {}

// Service runs the pipeline over one store, one embedder and an optional chat
// model (nil means extractive answers).
type Service struct {
	store vectorstore.Store
	emb   llm.Embedder
	chat  llm.ChatModel
	opts  Options

	locks sync.Map // source -> *sync.Mutex: one ingestion per source at a time
}

// New returns a Service.
func New(store vectorstore.Store, emb llm.Embedder, chat llm.ChatModel, opts Options) *Service {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 800
	}
	if opts.ChunkOverlap < 0 || opts.ChunkOverlap >= opts.ChunkSize {
		opts.ChunkOverlap = 0
	}
	if opts.TopK <= 0 {
		opts.TopK = 4
	}
	if opts.EmbedBatch <= 0 {
		opts.EmbedBatch = 64
	}
	if opts.EmbedConcurrency <= 0 {
		opts.EmbedConcurrency = 4
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	return &Service{store: store, emb: emb, chat: chat, opts: opts}
}

// Mode is ModeGenerative with a chat model, ModeExtractive without.
func (s *Service) Mode() string {
	if s.chat == nil {
		return ModeExtractive
	}
	return ModeGenerative
}

// ChatModel names the model that writes answers ("extractive" without one).
func (s *Service) ChatModel() string {
	if s.chat == nil {
		return ModeExtractive
	}
	return s.chat.Model()
}

// EmbeddingModel names the embedding model.
func (s *Service) EmbeddingModel() string { return s.emb.Model() }

// TopK is the default number of passages.
func (s *Service) TopK() int { return s.opts.TopK }

// Store returns the vector store.
func (s *Service) Store() vectorstore.Store { return s.store }

// UpstreamError is a failure of a service behind the pipeline. Its message is
// for logs only.
type UpstreamError struct {
	Service string // "vector store", "embedding model" or "chat model"
	Timeout bool
	Err     error
}

func (e *UpstreamError) Error() string { return e.Service + ": " + e.Err.Error() }
func (e *UpstreamError) Unwrap() error { return e.Err }

func storeErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return &UpstreamError{Service: "vector store", Timeout: errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded), Err: err}
}

func modelErr(ctx context.Context, service string, err error) error {
	if err == nil {
		return nil
	}
	return &UpstreamError{Service: service, Timeout: llm.IsTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded), Err: err}
}

// Document is a named text to index.
type Document struct {
	Source   string
	Text     string
	Metadata map[string]string
}

// IngestResult counts chunks per outcome.
type IngestResult struct {
	Documents int `json:"documents"`
	Added     int `json:"added"`
	Unchanged int `json:"unchanged"`
	Removed   int `json:"removed"`
}

// ChunkID is the deterministic ID of a chunk: a hash of the source, the chunk
// index and a hash of the content and metadata.
func ChunkID(source string, index int, text string, md map[string]string) string {
	sh := sha256.Sum256([]byte(source))
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(md)) {
		fmt.Fprintf(h, "%q=%q\x00", k, md[k])
	}
	h.Write([]byte(text))
	return hex.EncodeToString(sh[:8]) + "-" + strconv.Itoa(index) + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Ingest indexes docs. Sources must be distinct.
func (s *Service) Ingest(ctx context.Context, docs []Document) (IngestResult, error) {
	res := IngestResult{Documents: len(docs)}
	// Lock the sources in a fixed order so concurrent calls cannot deadlock.
	sources := make([]string, len(docs))
	for i, d := range docs {
		sources[i] = d.Source
	}
	slices.Sort(sources)
	sources = slices.Compact(sources)
	for _, src := range sources {
		m, _ := s.locks.LoadOrStore(src, &sync.Mutex{})
		m.(*sync.Mutex).Lock()
		defer m.(*sync.Mutex).Unlock()
	}

	var todo []vectorstore.Record
	var stale []string
	existingBySource, err := s.store.IDs(ctx, sources...)
	if err != nil {
		return res, storeErr(ctx, err)
	}
	for _, d := range docs {
		existing := existingBySource[d.Source]
		have := make(map[string]bool, len(existing))
		for _, id := range existing {
			have[id] = true
		}
		keep := map[string]bool{}
		for i, text := range chunk.Split(d.Text, s.opts.ChunkSize, s.opts.ChunkOverlap) {
			id := ChunkID(d.Source, i, text, d.Metadata)
			if keep[id] {
				continue
			}
			keep[id] = true
			if have[id] {
				res.Unchanged++
				continue
			}
			todo = append(todo, vectorstore.Record{ID: id, Source: d.Source, Chunk: i, Text: text, Metadata: d.Metadata})
		}
		for _, id := range existing {
			if !keep[id] {
				stale = append(stale, id)
			}
		}
	}

	if err := s.embedAndUpsert(ctx, todo); err != nil {
		return res, err
	}
	res.Added = len(todo)
	// Remove old chunks only once the new ones are in, so that queries never
	// see a document disappear.
	if err := s.store.Delete(ctx, stale); err != nil {
		return res, storeErr(ctx, err)
	}
	res.Removed = len(stale)
	s.opts.Metrics.Chunks(res.Added, res.Removed)
	return res, nil
}

// UpsertBatch is the number of records per upsert during ingestion: the
// vector store writes one batch at a time, and bigger batches amortise its
// per-write cost.
const UpsertBatch = 256

// embedAndUpsert embeds records in batches, EmbedConcurrency requests at a
// time, while one writer upserts the embedded records in batches of
// UpsertBatch.
func (s *Service) embedAndUpsert(ctx context.Context, recs []vectorstore.Record) error {
	if len(recs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	embedded := make(chan []vectorstore.Record, s.opts.EmbedConcurrency)
	g.Go(func() error {
		upsertBatch := max(UpsertBatch, s.opts.EmbedBatch)
		if s.opts.EmbedBatch == 1 {
			upsertBatch = 1 // one chunk per call, all the way (benchmark baseline)
		}
		var buf []vectorstore.Record
		flush := func() error {
			if len(buf) == 0 {
				return nil
			}
			err := s.store.Upsert(gctx, buf)
			buf = nil
			return storeErr(gctx, err)
		}
		for batch := range embedded {
			buf = append(buf, batch...)
			if len(buf) >= upsertBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	embedders, ectx := errgroup.WithContext(gctx)
	embedders.SetLimit(s.opts.EmbedConcurrency)
	for batch := range slices.Chunk(recs, s.opts.EmbedBatch) {
		embedders.Go(func() error {
			texts := make([]string, len(batch))
			for i, r := range batch {
				texts[i] = r.Text
			}
			vecs, usage, err := s.emb.Embed(ectx, texts)
			if err != nil {
				return modelErr(ectx, "embedding model", err)
			}
			if len(vecs) != len(batch) {
				return &UpstreamError{Service: "embedding model", Err: fmt.Errorf("got %d vectors for %d texts", len(vecs), len(batch))}
			}
			s.opts.Metrics.Tokens("embedding", usage.TotalTokens)
			for i := range batch {
				batch[i].Embedding = vecs[i]
			}
			select {
			case embedded <- batch:
				return nil
			case <-ectx.Done():
				return ectx.Err()
			}
		})
	}
	err := embedders.Wait()
	close(embedded)
	if werr := g.Wait(); err == nil {
		err = werr
	}
	return err
}

// KeyOrigin is the metadata key that records where a chunk came from. Only
// Sync sets it; it is reserved, so that documents added through the API can
// never be mistaken for (and pruned as) documents of a synced set.
const KeyOrigin = "origin"

// OriginDocsDir is the origin of the documents ingested from DOCS_DIR.
const OriginDocsDir = "docs_dir"

// SyncResult is the outcome of Sync.
type SyncResult struct {
	IngestResult
	// Pruned lists the sources deleted because they left the set, sorted;
	// PrunedChunks counts their chunks.
	Pruned       []string
	PrunedChunks int
}

// Sync makes the index follow a set of documents of one origin (the files of
// DOCS_DIR): it ingests docs tagged with KeyOrigin=origin, then deletes the
// chunks of that origin whose source is neither in docs nor in keep (names
// still present in the set but not ingested this time, e.g. a file that
// could not be read: its last good version stays). Chunks of other origins,
// such as documents added through the API, are never deleted by Sync.
//
// Sync is idempotent: replicas running it at once on the same set converge
// to the same index (deletes of chunks already gone are no-ops). An empty set
// prunes every source of the origin; callers decide when that is meant.
func (s *Service) Sync(ctx context.Context, origin string, docs []Document, keep []string) (SyncResult, error) {
	tagged := make([]Document, len(docs))
	present := make(map[string]bool, len(docs)+len(keep))
	for i, d := range docs {
		md := make(map[string]string, len(d.Metadata)+1)
		maps.Copy(md, d.Metadata)
		md[KeyOrigin] = origin
		d.Metadata = md
		tagged[i] = d
		present[d.Source] = true
	}
	for _, name := range keep {
		present[name] = true
	}
	var res SyncResult
	var err error
	if res.IngestResult, err = s.Ingest(ctx, tagged); err != nil {
		return res, err
	}
	// Only once the current set is in: a failed ingestion prunes nothing.
	byOrigin, err := s.store.IDsWhere(ctx, map[string]string{KeyOrigin: origin})
	if err != nil {
		return res, storeErr(ctx, err)
	}
	for _, src := range slices.Sorted(maps.Keys(byOrigin)) {
		if present[src] {
			continue
		}
		n, err := s.pruneSource(ctx, src, origin)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Pruned = append(res.Pruned, src)
			res.PrunedChunks += n
		}
	}
	return res, nil
}

// pruneSource deletes the chunks of source that have the given origin. It
// lists them again under the source's lock, so that a document just
// re-added through the API (without an origin) is left alone.
func (s *Service) pruneSource(ctx context.Context, source, origin string) (int, error) {
	m, _ := s.locks.LoadOrStore(source, &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	defer m.(*sync.Mutex).Unlock()
	byID, err := s.store.IDsWhere(ctx, map[string]string{vectorstore.KeySource: source, KeyOrigin: origin})
	if err != nil {
		return 0, storeErr(ctx, err)
	}
	ids := byID[source]
	if err := s.store.Delete(ctx, ids); err != nil {
		return 0, storeErr(ctx, err)
	}
	s.opts.Metrics.Chunks(0, len(ids))
	return len(ids), nil
}

// DeleteSource removes all chunks of a source and reports how many.
func (s *Service) DeleteSource(ctx context.Context, source string) (int, error) {
	m, _ := s.locks.LoadOrStore(source, &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	defer m.(*sync.Mutex).Unlock()
	byID, err := s.store.IDs(ctx, source)
	if err != nil {
		return 0, storeErr(ctx, err)
	}
	ids := byID[source]
	if err := s.store.Delete(ctx, ids); err != nil {
		return 0, storeErr(ctx, err)
	}
	s.opts.Metrics.Chunks(0, len(ids))
	return len(ids), nil
}

// Sources lists the indexed sources.
func (s *Service) Sources(ctx context.Context) ([]vectorstore.SourceInfo, error) {
	out, err := s.store.Sources(ctx)
	return out, storeErr(ctx, err)
}

// Query is a question to answer.
type Query struct {
	Question string
	TopK     int
	Filter   map[string]string
}

// Source is a retrieved passage.
type Source struct {
	ID       string            `json:"id"`
	Source   string            `json:"source"`
	Chunk    int               `json:"chunk"`
	Text     string            `json:"text"`
	Score    float32           `json:"score"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Usage counts the tokens a query spent.
type Usage struct {
	EmbeddingTokens  int `json:"embedding_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Answer is the result of a query.
type Answer struct {
	Answer  string   `json:"answer"`
	Sources []Source `json:"sources"`
	Model   string   `json:"model"`
	Mode    string   `json:"mode"`
	Usage   Usage    `json:"usage"`
}

// Retrieve returns the passages closest to the question.
func (s *Service) Retrieve(ctx context.Context, q Query) ([]Source, Usage, error) {
	k := q.TopK
	if k <= 0 {
		k = s.opts.TopK
	}
	vecs, eu, err := s.emb.Embed(ctx, []string{q.Question})
	if err != nil {
		return nil, Usage{}, modelErr(ctx, "embedding model", err)
	}
	if len(vecs) != 1 {
		return nil, Usage{}, &UpstreamError{Service: "embedding model", Err: fmt.Errorf("got %d vectors for 1 text", len(vecs))}
	}
	s.opts.Metrics.Tokens("embedding", eu.TotalTokens)
	hits, err := s.store.Query(ctx, vecs[0], k, q.Filter)
	if err != nil {
		return nil, Usage{}, storeErr(ctx, err)
	}
	out := make([]Source, len(hits))
	for i, h := range hits {
		out[i] = Source{ID: h.ID, Source: h.Source, Chunk: h.Chunk, Text: h.Text, Score: h.Score}
		if len(h.Metadata) > 0 {
			out[i].Metadata = h.Metadata
		}
	}
	return out, Usage{EmbeddingTokens: eu.TotalTokens, TotalTokens: eu.TotalTokens}, nil
}

// NoContextAnswer is the answer when no passage matches.
const NoContextAnswer = "No indexed document matches the question."

// Answer retrieves passages and answers the question. With onToken non-nil
// the answer is passed on piece by piece as it is produced.
func (s *Service) Answer(ctx context.Context, q Query, onToken func(string) error) (Answer, error) {
	sources, usage, err := s.Retrieve(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Sources: sources, Model: s.ChatModel(), Mode: s.Mode(), Usage: usage}
	if len(sources) == 0 || s.chat == nil {
		if len(sources) == 0 {
			a.Answer = NoContextAnswer
		} else {
			a.Answer = Extract(q.Question, sources)
		}
		if onToken != nil {
			for _, w := range splitKeep(a.Answer) {
				if err := onToken(w); err != nil {
					return a, err
				}
			}
		}
		return a, nil
	}
	msgs := Prompt(q.Question, sources)
	var cu llm.Usage
	if onToken == nil {
		a.Answer, cu, err = s.chat.Complete(ctx, msgs)
	} else {
		var b strings.Builder
		cu, err = s.chat.Stream(ctx, msgs, func(tok string) error {
			b.WriteString(tok)
			return onToken(tok)
		})
		a.Answer = b.String()
	}
	if err != nil {
		return a, modelErr(ctx, "chat model", err)
	}
	s.opts.Metrics.Tokens("prompt", cu.PromptTokens)
	s.opts.Metrics.Tokens("completion", cu.CompletionTokens)
	a.Usage.PromptTokens = cu.PromptTokens
	a.Usage.CompletionTokens = cu.CompletionTokens
	a.Usage.TotalTokens += cu.TotalTokens
	return a, nil
}

// splitKeep splits s into words, each keeping its trailing space.
func splitKeep(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
