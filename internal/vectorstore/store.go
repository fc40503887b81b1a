// Package vectorstore defines the small interface the RAG server needs from a
// vector database, and the record types that cross it. Implementations live in
// the subpackages chromastore (a Chroma server) and sqlitestore (embedded,
// SQLite in WAL mode under a data directory); storetest holds the conformance
// suite both must pass.
//
// A store holds the chunks of one embedding model: callers open one store per
// model so that vectors of different models never mix.
//
// # Versions: how a source changes atomically
//
// A store has no multi-record transactions (Chroma has none), so a source is
// replaced in three steps that each survive a crash:
//
//  1. Upsert writes the chunks of the new version; each Record carries the
//     Version it belongs to. Readers do not see them yet.
//  2. Commit writes one SourceVersion record: from then on readers see the
//     chunks whose Version equals it, and only those. This single-record write
//     is the commit point.
//  3. The chunks of the previous version are deleted.
//
// A crash before step 2 leaves invisible chunks, a crash before step 3 leaves
// invisible stale chunks; both are garbage that a later Scan finds (Written
// tells how old it is). Query returns raw hits of every version: the caller
// keeps those whose Version is the committed one (internal/rag does).
package vectorstore

import (
	"context"
	"errors"
)

// Reserved metadata keys, set by the store from Record fields. User metadata
// must not use them.
const (
	KeySource  = "source"
	KeyChunk   = "chunk"
	KeyVersion = "ragops_version"
	KeyWritten = "ragops_written"
)

// Reserved reports whether a metadata key is reserved for the store.
func Reserved(key string) bool {
	switch key {
	case KeySource, KeyChunk, KeyVersion, KeyWritten:
		return true
	}
	return false
}

// Record is one chunk with its vector.
type Record struct {
	ID        string
	Source    string
	Chunk     int
	Text      string
	Metadata  map[string]string // user metadata; must not use reserved keys
	Embedding []float32         // nil in Scan results unless embeddings were asked for
	// Version is the version of Source this chunk belongs to (empty for
	// chunks written before versions existed).
	Version string
	// Written is when the chunk was written, in Unix seconds.
	Written int64
}

// Hit is a query result. Score is the cosine similarity, higher is closer.
type Hit struct {
	ID       string
	Source   string
	Chunk    int
	Text     string
	Metadata map[string]string // user metadata only
	Score    float32
	Version  string
}

// SourceVersion is the commit record of one source: the version whose chunks
// readers see.
type SourceVersion struct {
	Source  string `json:"source"`
	Version string `json:"version"`
	Chunks  int    `json:"chunks"`
	// Origin tells who wrote the source: empty for the API, "docs_dir" for
	// the start-up sync of DOCS_DIR, and so on. A sync prunes only its own.
	Origin string `json:"origin,omitempty"`
	// Updated is the commit time in Unix seconds.
	Updated int64 `json:"updated"`
}

// SourceInfo describes one indexed source in a listing.
type SourceInfo struct {
	Source string `json:"source"`
	Chunks int    `json:"chunks"`
}

// PageSize is the number of records or versions per page of a scan.
const PageSize = 1000

// Store is a vector store holding the chunks of one embedding model.
type Store interface {
	// Upsert inserts or replaces records by ID. It returns once they are
	// durable.
	Upsert(ctx context.Context, recs []Record) error
	// Query returns up to k hits closest to embedding, best first, among
	// records whose metadata (including "source" and KeyVersion) equals every
	// filter entry. Hits of every version are returned.
	Query(ctx context.Context, embedding []float32, k int, filter map[string]string) ([]Hit, error)
	// Scan calls fn with the records matching filter (nil or empty: all), at
	// most PageSize at a time, with their embeddings only if withEmbeddings.
	// Each page is its own request: a scan of any size never runs under one
	// deadline. An error from fn stops the scan and is returned.
	Scan(ctx context.Context, filter map[string]string, withEmbeddings bool, fn func([]Record) error) error
	// Delete removes records by ID; unknown IDs are ignored.
	Delete(ctx context.Context, ids []string) error

	// Commit makes each version the visible version of its source, durably.
	// Each version is committed atomically on its own: a batch cut off midway
	// leaves some sources at their new version and the rest at their old one.
	Commit(ctx context.Context, versions ...SourceVersion) error
	// Versions returns the committed versions of the given sources (sources
	// never committed are absent from the map).
	Versions(ctx context.Context, sources []string) (map[string]SourceVersion, error)
	// ScanVersions calls fn with every committed version, sorted by source,
	// at most PageSize at a time.
	ScanVersions(ctx context.Context, fn func([]SourceVersion) error) error
	// Uncommit removes the commit record of source: its chunks become
	// invisible. Unknown sources are ignored.
	Uncommit(ctx context.Context, source string) error

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close() error
}

// Errors a store wraps its failures in.
var (
	// ErrUnavailable means the store cannot be reached.
	ErrUnavailable = errors.New("vector store unavailable")
	// ErrInvalid means the store refused a request as malformed (e.g. a
	// vector of the wrong dimension): sending it again cannot help.
	ErrInvalid = errors.New("vector store refused the request")
	// ErrCorrupt means the stored data cannot be read: the server must not
	// start on it, and never resets it silently.
	ErrCorrupt = errors.New("vector store data is corrupt")
)

// Lexical is a store that also ranks chunks by the words of a query (Okapi
// BM25), beside Query's vector similarity. Both stores implement it: the
// embedded store with a SQLite FTS5 index written in the same transactions
// as the chunks, the Chroma store with an in-memory index every replica
// rebuilds from the committed chunks (see package memlex).
type Lexical interface {
	// LexicalQuery returns up to k chunks of committed versions that share a
	// word with query, best first (Score: the BM25 score, higher is better;
	// ties broken by ID), among chunks whose metadata equals every filter
	// entry. Like Query's hits, callers still check each hit's Version
	// against the commit records: an index may lag behind them (memlex by
	// a bounded time).
	LexicalQuery(ctx context.Context, query string, k int, filter map[string]string) ([]Hit, error)
	// DocFreqs returns how many indexed chunks contain each term (a word as
	// the index normalises it) and how many chunks the index holds: the
	// statistics of an inverse document frequency.
	DocFreqs(ctx context.Context, terms []string) (freqs []int, total int, err error)
}

// Dropper is a store that can delete itself whole: the collection of the
// previous embedding model once a switch of models is complete. Drop is
// idempotent; a crash midway leaves a store whose commit records are gone
// first (every chunk invisible), so a half-dropped store is an empty one.
type Dropper interface {
	Drop(ctx context.Context) error
}
