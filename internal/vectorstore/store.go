// Package vectorstore defines the small interface the RAG server needs from a
// vector database, and the record types that cross it. Implementations live in
// the subpackages chromastore (a Chroma server) and memstore (chromem-go,
// embedded and persisted on disk); storetest holds the conformance suite both
// must pass.
//
// A store holds the chunks of one embedding model: callers open one store per
// model so that vectors of different models never mix.
package vectorstore

import (
	"context"
	"errors"
)

// Reserved metadata keys, set by the store from Record fields.
const (
	KeySource = "source"
	KeyChunk  = "chunk"
)

// Record is one chunk with its vector.
type Record struct {
	ID        string
	Source    string
	Chunk     int
	Text      string
	Metadata  map[string]string // user metadata; must not use reserved keys
	Embedding []float32
}

// Hit is a query result. Score is the cosine similarity, higher is closer.
type Hit struct {
	ID       string
	Source   string
	Chunk    int
	Text     string
	Metadata map[string]string
	Score    float32
}

// SourceInfo describes one indexed source.
type SourceInfo struct {
	Source string `json:"source"`
	Chunks int    `json:"chunks"`
}

// Store is a vector store holding the chunks of one embedding model.
type Store interface {
	// Upsert inserts or replaces records by ID.
	Upsert(ctx context.Context, recs []Record) error
	// Query returns up to k hits closest to embedding, best first, among
	// records whose metadata (including "source") equals every filter entry.
	Query(ctx context.Context, embedding []float32, k int, filter map[string]string) ([]Hit, error)
	// IDs returns the sorted IDs of the records of each given source
	// (sources without records are absent from the map).
	IDs(ctx context.Context, sources ...string) (map[string][]string, error)
	// IDsWhere returns the sorted IDs of the records whose metadata
	// (including "source") equals every filter entry, grouped by source
	// (a nil or empty filter matches every record). Records lacking a filter
	// key do not match.
	IDsWhere(ctx context.Context, filter map[string]string) (map[string][]string, error)
	// Delete removes records by ID; unknown IDs are ignored.
	Delete(ctx context.Context, ids []string) error
	// Sources lists the indexed sources with their chunk counts, by name.
	Sources(ctx context.Context) ([]SourceInfo, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close() error
}

// ErrUnavailable wraps errors that mean the store cannot be reached.
var ErrUnavailable = errors.New("vector store unavailable")

// ErrInvalid wraps errors that mean the store refused a request as malformed
// (e.g. a vector of the wrong dimension): sending it again cannot help.
var ErrInvalid = errors.New("vector store refused the request")
