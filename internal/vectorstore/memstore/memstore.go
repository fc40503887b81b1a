// Package memstore is the embedded vector store of the RAG server:
// github.com/philippgille/chromem-go persisted under a data directory, used
// when no Chroma URL is configured.
//
// chromem-go has no listing API, so the store keeps its vector dimension in a
// small companion collection and lists records with a filtered exhaustive
// query.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/philippgille/chromem-go"

	"github.com/ragops/ragops/internal/vectorstore"
)

// Store implements vectorstore.Store on chromem-go.
type Store struct {
	db   *chromem.DB
	name string

	mu   sync.RWMutex
	coll *chromem.Collection // nil until the first Upsert
	meta *chromem.Collection
	dim  int
}

var noEmbed chromem.EmbeddingFunc = func(context.Context, string) ([]float32, error) {
	return nil, errors.New("memstore: records must carry their embedding")
}

// Open opens (or creates) the store persisted under dir, for collection name.
// An empty dir keeps everything in memory.
func Open(dir, name string) (*Store, error) {
	var db *chromem.DB
	if dir == "" {
		db = chromem.NewDB()
	} else {
		var err error
		if db, err = chromem.NewPersistentDB(dir, false); err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", dir, err)
		}
	}
	s := &Store{db: db, name: name}
	if c := db.GetCollection(name+".meta", noEmbed); c != nil {
		doc, err := c.GetByID(context.Background(), "dimension")
		if err == nil {
			if d, err := strconv.Atoi(doc.Content); err == nil && d > 0 {
				s.meta, s.dim = c, d
				s.coll = db.GetCollection(name, noEmbed)
			}
		}
	}
	return s, nil
}

// collection returns the records collection, creating it for dimension dim.
func (s *Store) collection(ctx context.Context, dim int) (*chromem.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coll != nil {
		if dim != s.dim {
			return nil, fmt.Errorf("memstore: embedding has %d dimensions, collection %q has %d", dim, s.name, s.dim)
		}
		return s.coll, nil
	}
	meta, err := s.db.GetOrCreateCollection(s.name+".meta", nil, noEmbed)
	if err != nil {
		return nil, err
	}
	if err := meta.AddDocument(ctx, chromem.Document{ID: "dimension", Content: strconv.Itoa(dim), Embedding: []float32{1}}); err != nil {
		return nil, err
	}
	coll, err := s.db.GetOrCreateCollection(s.name, map[string]string{"hnsw:space": "cosine"}, noEmbed)
	if err != nil {
		return nil, err
	}
	s.coll, s.meta, s.dim = coll, meta, dim
	return coll, nil
}

func (s *Store) current() (*chromem.Collection, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.coll, s.dim
}

// Upsert implements vectorstore.Store.
func (s *Store) Upsert(ctx context.Context, recs []vectorstore.Record) error {
	if len(recs) == 0 {
		return nil
	}
	coll, err := s.collection(ctx, len(recs[0].Embedding))
	if err != nil {
		return err
	}
	docs := make([]chromem.Document, len(recs))
	for i, r := range recs {
		if len(r.Embedding) != s.dim {
			return fmt.Errorf("memstore: record %s has %d dimensions, want %d", r.ID, len(r.Embedding), s.dim)
		}
		md := make(map[string]string, len(r.Metadata)+2)
		for k, v := range r.Metadata {
			md[k] = v
		}
		md[vectorstore.KeySource] = r.Source
		md[vectorstore.KeyChunk] = strconv.Itoa(r.Chunk)
		docs[i] = chromem.Document{ID: r.ID, Metadata: md, Embedding: r.Embedding, Content: r.Text}
	}
	return coll.AddDocuments(ctx, docs, 4)
}

// Query implements vectorstore.Store.
func (s *Store) Query(ctx context.Context, embedding []float32, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	coll, dim := s.current()
	if coll == nil || k <= 0 {
		return nil, nil
	}
	if len(embedding) != dim {
		return nil, fmt.Errorf("memstore: query has %d dimensions, collection %q has %d", len(embedding), s.name, dim)
	}
	k = min(k, coll.Count())
	if k == 0 {
		return nil, nil
	}
	var where map[string]string
	if len(filter) > 0 {
		where = filter
	}
	res, err := coll.QueryEmbedding(ctx, embedding, k, where, nil)
	if err != nil {
		return nil, err
	}
	hits := make([]vectorstore.Hit, len(res))
	for i, r := range res {
		hits[i] = toHit(r)
	}
	return hits, nil
}

func toHit(r chromem.Result) vectorstore.Hit {
	h := vectorstore.Hit{ID: r.ID, Text: r.Content, Score: r.Similarity, Metadata: map[string]string{}}
	for k, v := range r.Metadata {
		switch k {
		case vectorstore.KeySource:
			h.Source = v
		case vectorstore.KeyChunk:
			h.Chunk, _ = strconv.Atoi(v)
		default:
			h.Metadata[k] = v
		}
	}
	return h
}

// all returns every record matching where (nil for all).
func (s *Store) all(ctx context.Context, where map[string]string) ([]chromem.Result, error) {
	coll, dim := s.current()
	if coll == nil {
		return nil, nil
	}
	n := coll.Count()
	if n == 0 {
		return nil, nil
	}
	probe := make([]float32, dim)
	probe[0] = 1
	return coll.QueryEmbedding(ctx, probe, n, where, nil)
}

// IDs implements vectorstore.Store.
func (s *Store) IDs(ctx context.Context, sources ...string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, src := range sources {
		res, err := s.all(ctx, map[string]string{vectorstore.KeySource: src})
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			out[src] = append(out[src], r.ID)
		}
		slices.Sort(out[src])
	}
	return out, nil
}

// IDsWhere implements vectorstore.Store.
func (s *Store) IDsWhere(ctx context.Context, filter map[string]string) (map[string][]string, error) {
	var where map[string]string // nil, never empty: see Delete
	if len(filter) > 0 {
		where = filter
	}
	res, err := s.all(ctx, where)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, r := range res {
		src := r.Metadata[vectorstore.KeySource]
		out[src] = append(out[src], r.ID)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

// Delete implements vectorstore.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	coll, _ := s.current()
	if coll == nil || len(ids) == 0 {
		return nil
	}
	// where and whereDocument must be nil: an empty non-nil map deletes all.
	return coll.Delete(ctx, nil, nil, ids...)
}

// Sources implements vectorstore.Store.
func (s *Store) Sources(ctx context.Context) ([]vectorstore.SourceInfo, error) {
	res, err := s.all(ctx, nil)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, r := range res {
		counts[r.Metadata[vectorstore.KeySource]]++
	}
	out := make([]vectorstore.SourceInfo, 0, len(counts))
	for src, n := range counts {
		out = append(out, vectorstore.SourceInfo{Source: src, Chunks: n})
	}
	slices.SortFunc(out, func(a, b vectorstore.SourceInfo) int { return cmpString(a.Source, b.Source) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Ping implements vectorstore.Store; the embedded store is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements vectorstore.Store. Writes are persisted as they happen.
func (s *Store) Close() error { return nil }
