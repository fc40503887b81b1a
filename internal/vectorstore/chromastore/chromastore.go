// Package chromastore implements vectorstore.Store on a Chroma server (1.x,
// API v2) through github.com/amikos-tech/chroma-go.
//
// Vectors are always computed by the RAG server and passed explicitly; the
// collection is created with an embedding function that refuses to run (the
// library's default one would try to download onnxruntime) and with the cosine
// space set explicitly. Integer metadata comes back from Chroma as float64.
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
)

// pageSize bounds records per request (Chroma's max_batch_size is ~5k).
const pageSize = 1000

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
}

// Store implements vectorstore.Store on Chroma.
type Store struct {
	client  chroma.Client
	name    string
	owner   string
	timeout time.Duration

	mu   sync.Mutex
	coll chroma.Collection
}

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
	return &Store{client: c, name: opts.Collection, owner: opts.Owner, timeout: opts.Timeout}, nil
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

// wrap marks errors as unavailability, keeping deadline errors recognisable,
// and forgets the cached collection when Chroma says it is gone.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") || strings.Contains(msg, "NotFound") {
		s.mu.Lock()
		s.coll = nil
		s.mu.Unlock()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("chroma %s: %w", op, err)
	}
	return fmt.Errorf("chroma %s: %w: %w", op, vectorstore.ErrUnavailable, err)
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

// Upsert implements vectorstore.Store.
func (s *Store) Upsert(ctx context.Context, recs []vectorstore.Record) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return s.wrap("upsert", err)
	}
	for batch := range slices.Chunk(recs, pageSize) {
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
			}
			for _, k := range sortedKeys(r.Metadata) {
				attrs = append(attrs, chroma.NewStringAttribute(k, r.Metadata[k]))
			}
			mds[i] = chroma.NewDocumentMetadata(attrs...)
		}
		err := coll.Upsert(ctx, chroma.WithIDs(ids...), chroma.WithTexts(texts...),
			chroma.WithEmbeddings(embs...), chroma.WithMetadatas(mds...))
		if err != nil {
			return s.wrap("upsert", err)
		}
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
			h.Source, h.Chunk, h.Metadata = fromMetadata(mds[i])
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

// fromMetadata splits Chroma metadata into source, chunk and user metadata.
func fromMetadata(md chroma.DocumentMetadata) (source string, chunk int, user map[string]string) {
	user = map[string]string{}
	impl, ok := md.(*chroma.DocumentMetadataImpl)
	if !ok || impl == nil {
		return "", 0, user
	}
	for _, k := range impl.Keys() {
		switch k {
		case vectorstore.KeySource:
			source, _ = md.GetString(k)
		case vectorstore.KeyChunk:
			if f, ok := md.GetFloat(k); ok { // what Chroma's JSON gives back
				chunk = int(f)
			} else if n, ok := md.GetInt(k); ok {
				chunk = int(n)
			}
		default:
			if v, ok := md.GetString(k); ok {
				user[k] = v
			} else if v, ok := md.GetRaw(k); ok {
				user[k] = fmt.Sprint(v)
			}
		}
	}
	return source, chunk, user
}

// get pages through the records matching w (nil for all).
func (s *Store) get(ctx context.Context, w chroma.WhereClause, fn func(id string, md chroma.DocumentMetadata)) error {
	coll, err := s.collection(ctx)
	if err != nil {
		return s.wrap("get", err)
	}
	for offset := 0; ; offset += pageSize {
		opts := []chroma.CollectionGetOption{
			chroma.WithInclude(chroma.IncludeMetadatas),
			chroma.WithLimit(pageSize), chroma.WithOffset(offset),
		}
		if w != nil {
			opts = append(opts, chroma.WithWhere(w))
		}
		res, err := coll.Get(ctx, opts...)
		if err != nil {
			return s.wrap("get", err)
		}
		ids, mds := res.GetIDs(), res.GetMetadatas()
		for i, id := range ids {
			var md chroma.DocumentMetadata
			if i < len(mds) {
				md = mds[i]
			}
			fn(string(id), md)
		}
		if len(ids) < pageSize {
			return nil
		}
	}
}

// IDs implements vectorstore.Store. It asks for up to 100 sources per
// request ($in), so that ingesting many documents costs few round trips.
func (s *Store) IDs(ctx context.Context, sources ...string) (map[string][]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out := map[string][]string{}
	for batch := range slices.Chunk(sources, 100) {
		var w chroma.WhereClause
		if len(batch) == 1 {
			w = chroma.EqString(chroma.K(vectorstore.KeySource), batch[0])
		} else {
			w = chroma.InString(chroma.K(vectorstore.KeySource), batch...)
		}
		err := s.get(ctx, w, func(id string, md chroma.DocumentMetadata) {
			if md != nil {
				src, _ := md.GetString(vectorstore.KeySource)
				out[src] = append(out[src], id)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

// IDsWhere implements vectorstore.Store.
func (s *Store) IDsWhere(ctx context.Context, filter map[string]string) (map[string][]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out := map[string][]string{}
	err := s.get(ctx, where(filter), func(id string, md chroma.DocumentMetadata) {
		if md != nil {
			src, _ := md.GetString(vectorstore.KeySource)
			out[src] = append(out[src], id)
		}
	})
	if err != nil {
		return nil, err
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

// Delete implements vectorstore.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return s.wrap("delete", err)
	}
	for batch := range slices.Chunk(ids, pageSize) {
		docIDs := make([]chroma.DocumentID, len(batch))
		for i, id := range batch {
			docIDs[i] = chroma.DocumentID(id)
		}
		if err := coll.Delete(ctx, chroma.WithIDs(docIDs...)); err != nil {
			return s.wrap("delete", err)
		}
	}
	return nil
}

// Sources implements vectorstore.Store.
func (s *Store) Sources(ctx context.Context) ([]vectorstore.SourceInfo, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	counts := map[string]int{}
	err := s.get(ctx, nil, func(_ string, md chroma.DocumentMetadata) {
		if md != nil {
			src, _ := md.GetString(vectorstore.KeySource)
			counts[src]++
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]vectorstore.SourceInfo, 0, len(counts))
	for src, n := range counts {
		out = append(out, vectorstore.SourceInfo{Source: src, Chunks: n})
	}
	slices.SortFunc(out, func(a, b vectorstore.SourceInfo) int { return strings.Compare(a.Source, b.Source) })
	return out, nil
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
