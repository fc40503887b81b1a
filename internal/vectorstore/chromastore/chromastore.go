// Package chromastore implements vectorstore.Store on a Chroma server (1.x,
// API v2) through github.com/amikos-tech/chroma-go.
//
// Vectors are always computed by the RAG server and passed explicitly; the
// collection is created with an embedding function that refuses to run (the
// library's default one would try to download onnxruntime) and with the cosine
// space set explicitly. Integer metadata comes back from Chroma as float64.
//
// The commit records of a collection live in a companion collection
// (VersionsCollection): one record per source, ID a hash of the source name,
// a one-dimensional placeholder vector. Chroma writes each record of an
// upsert atomically, which is all the versioned protocol of vectorstore needs.
package chromastore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/memlex"
)

// pageSize bounds records per request (Chroma's max_batch_size is ~5k).
const pageSize = vectorstore.PageSize

// Options configure a Store.
type Options struct {
	// URL of the Chroma server, e.g. http://chroma:8000.
	URL string
	// Collection is the collection name (callers derive it from the
	// embedding model).
	Collection string
	// Timeout bounds each call to Chroma (default 10s).
	Timeout time.Duration
	// Owner, when set, is stamped on the collection and checked: see Claim.
	Owner string
	// LexicalRefresh bounds the staleness of the lexical index (see
	// LexicalQuery; default 2s).
	LexicalRefresh time.Duration
}

// Store implements vectorstore.Store on Chroma.
type Store struct {
	client  chroma.Client
	name    string
	owner   string
	timeout time.Duration

	mu   sync.Mutex
	coll chroma.Collection // nil until first used, or after Chroma lost it
	vers chroma.Collection // the commit records, likewise

	lex *memlex.Index
}

var (
	_ vectorstore.Store   = (*Store)(nil)
	_ vectorstore.Lexical = (*Store)(nil)
)

// New returns a store; it does not contact Chroma until first used.
func New(opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if err := ValidCollectionName(opts.Collection); err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 128
	c, err := chroma.NewHTTPClient(
		chroma.WithBaseURL(strings.TrimRight(opts.URL, "/")),
		chroma.WithHTTPClient(&http.Client{Transport: t}),
	)
	if err != nil {
		return nil, fmt.Errorf("chroma client: %w", err)
	}
	if opts.LexicalRefresh <= 0 {
		opts.LexicalRefresh = 2 * time.Second
	}
	s := &Store{client: c, name: opts.Collection, owner: opts.Owner, timeout: opts.Timeout}
	s.lex = memlex.New(s, opts.LexicalRefresh)
	return s, nil
}

// ValidCollectionName checks Chroma's collection name rules: 3-512
// characters from [a-zA-Z0-9._-], starting and ending with a letter or digit.
func ValidCollectionName(name string) error {
	if len(name) < 3 || len(name) > 512 {
		return fmt.Errorf("chroma collection name %q must be 3 to 512 characters", name)
	}
	alnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' }
	for i := 0; i < len(name); i++ {
		if b := name[i]; !alnum(b) && b != '.' && b != '_' && b != '-' {
			return fmt.Errorf("chroma collection name %q may only contain letters, digits, '.', '_' and '-'", name)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return fmt.Errorf("chroma collection name %q must start and end with a letter or digit", name)
	}
	return nil
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) collection(ctx context.Context) (chroma.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coll != nil {
		return s.coll, nil
	}
	c, err := s.client.GetOrCreateCollection(ctx, s.name,
		chroma.WithEmbeddingFunctionCreate(precomputed{}),
		chroma.WithDisableEFConfigStorage(),
		chroma.WithHNSWSpaceCreate(embeddings.COSINE),
	)
	if err != nil {
		return nil, err
	}
	if err := s.claimOwner(ctx, c); err != nil {
		return nil, err
	}
	s.coll = c
	return c, nil
}

// Upsert implements vectorstore.Store, pageSize records per request, each
// request under its own timeout.
func (s *Store) Upsert(ctx context.Context, recs []vectorstore.Record) error {
	for batch := range slices.Chunk(recs, pageSize) {
		if err := s.upsert(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) upsert(ctx context.Context, batch []vectorstore.Record) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return s.wrap("upsert", err)
	}
	ids := make([]chroma.DocumentID, len(batch))
	texts := make([]string, len(batch))
	embs := make([]embeddings.Embedding, len(batch))
	mds := make([]chroma.DocumentMetadata, len(batch))
	for i, r := range batch {
		ids[i] = chroma.DocumentID(r.ID)
		texts[i] = r.Text
		embs[i] = embeddings.NewEmbeddingFromFloat32(r.Embedding)
		attrs := []*chroma.MetaAttribute{
			chroma.NewStringAttribute(vectorstore.KeySource, r.Source),
			chroma.NewIntAttribute(vectorstore.KeyChunk, int64(r.Chunk)),
			chroma.NewStringAttribute(vectorstore.KeyVersion, r.Version),
			chroma.NewIntAttribute(vectorstore.KeyWritten, r.Written),
		}
		for _, k := range sortedKeys(r.Metadata) {
			attrs = append(attrs, chroma.NewStringAttribute(k, r.Metadata[k]))
		}
		mds[i] = chroma.NewDocumentMetadata(attrs...)
	}
	err = coll.Upsert(ctx, chroma.WithIDs(ids...), chroma.WithTexts(texts...),
		chroma.WithEmbeddings(embs...), chroma.WithMetadatas(mds...))
	if err != nil {
		return s.wrap("upsert", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func where(filter map[string]string) chroma.WhereClause {
	var clauses []chroma.WhereClause
	for _, k := range sortedKeys(filter) {
		clauses = append(clauses, chroma.EqString(chroma.K(k), filter[k]))
	}
	switch len(clauses) {
	case 0:
		return nil
	case 1:
		return clauses[0]
	}
	return chroma.And(clauses...)
}

// Query implements vectorstore.Store.
func (s *Store) Query(ctx context.Context, embedding []float32, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	if k <= 0 {
		return nil, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return nil, s.wrap("query", err)
	}
	opts := []chroma.CollectionQueryOption{
		chroma.WithQueryEmbeddings(embeddings.NewEmbeddingFromFloat32(embedding)),
		chroma.WithNResults(k),
		chroma.WithInclude(chroma.IncludeDocuments, chroma.IncludeMetadatas, chroma.IncludeDistances),
	}
	if w := where(filter); w != nil {
		opts = append(opts, chroma.WithWhere(w))
	}
	res, err := coll.Query(ctx, opts...)
	// A record deleted while Chroma answers comes back with a null document,
	// which the client refuses to decode: the answer of a moment later is
	// whole. (Deletes are how replaced versions leave.)
	for try := 0; err != nil && try < 3 && strings.Contains(err.Error(), "error unmarshalling") && ctx.Err() == nil; try++ {
		res, err = coll.Query(ctx, opts...)
	}
	if err != nil {
		return nil, s.wrap("query", err)
	}
	idGroups := res.GetIDGroups()
	if len(idGroups) == 0 {
		return nil, nil
	}
	ids := idGroups[0]
	docs := group(res.GetDocumentsGroups())
	mds := group(res.GetMetadatasGroups())
	dists := group(res.GetDistancesGroups())
	hits := make([]vectorstore.Hit, len(ids))
	for i, id := range ids {
		h := vectorstore.Hit{ID: string(id)}
		if i < len(docs) && docs[i] != nil {
			h.Text = docs[i].ContentString()
		}
		if i < len(mds) {
			r := fromMetadata(mds[i])
			h.Source, h.Chunk, h.Metadata, h.Version = r.Source, r.Chunk, r.Metadata, r.Version
		}
		if i < len(dists) {
			// Cosine distance is 1 - cosine similarity.
			h.Score = float32(1 - float64(dists[i]))
		}
		hits[i] = h
	}
	return hits, nil
}

func group[S ~[]E, E any](groups []S) S {
	if len(groups) == 0 {
		return nil
	}
	return groups[0]
}

// Delete implements vectorstore.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	for batch := range slices.Chunk(ids, pageSize) {
		if err := s.delete(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) delete(ctx context.Context, batch []string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return s.wrap("delete", err)
	}
	docIDs := make([]chroma.DocumentID, len(batch))
	for i, id := range batch {
		docIDs[i] = chroma.DocumentID(id)
	}
	return s.wrap("delete", coll.Delete(ctx, chroma.WithIDs(docIDs...)))
}

// Ping implements vectorstore.Store with Chroma's heartbeat.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.timeout, 2*time.Second))
	defer cancel()
	return s.wrap("heartbeat", s.client.Heartbeat(ctx))
}

// Close implements vectorstore.Store.
func (s *Store) Close() error { return s.client.Close() }

// precomputed is the collection's embedding function. The server always
// passes vectors, so it is never meant to run.
type precomputed struct{}

var errPrecomputed = errors.New("chromastore: embeddings are computed by the caller")

func (precomputed) EmbedDocuments(context.Context, []string) ([]embeddings.Embedding, error) {
	return nil, errPrecomputed
}
func (precomputed) EmbedQuery(context.Context, string) (embeddings.Embedding, error) {
	return nil, errPrecomputed
}
func (precomputed) Name() string { return "ragops-precomputed" }
func (precomputed) GetConfig() embeddings.EmbeddingFunctionConfig {
	return embeddings.EmbeddingFunctionConfig{}
}
func (precomputed) DefaultSpace() embeddings.DistanceMetric { return embeddings.COSINE }
func (precomputed) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.COSINE}
}

// LexicalQuery implements vectorstore.Lexical with an in-memory BM25 index of
// the committed chunks (package memlex; Chroma 1.0 has no word ranking). The
// index is refreshed from the commit records when it is older than
// Options.LexicalRefresh or after a commit through this store; each replica
// keeps its own, and replicas that loaded the same commits rank alike.
func (s *Store) LexicalQuery(ctx context.Context, query string, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	return s.lex.Search(ctx, query, k, filter)
}

// DocFreqs implements vectorstore.Lexical from the same in-memory index.
func (s *Store) DocFreqs(ctx context.Context, terms []string) ([]int, int, error) {
	return s.lex.DocFreqs(ctx, terms)
}
