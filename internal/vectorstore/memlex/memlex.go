// Package memlex is an in-memory Okapi BM25 index over the committed chunks
// of a vectorstore.Store, for stores that have no full-text ranking of their
// own (Chroma 1.0 filters documents with $contains and $regex but does not
// rank them by words; its sparse vectors and BM25 came with later versions).
//
// Every server replica keeps its own index and rebuilds it from the same
// source of truth, the store's commit records and chunks, so that replicas
// on the same store answer the same question the same way:
//
//   - An index is refreshed when it is older than the refresh interval (or
//     after a write through the same store): it pages through the commit
//     records (ScanVersions), loads the chunks of the sources whose committed
//     version changed and drops those of the sources that are gone. A commit
//     made by another replica is seen within the interval: bounded staleness.
//   - Scores depend only on the loaded chunks (term frequencies, document
//     lengths, their counts and sums, all integers) and are summed in a fixed
//     term order; ties are broken by chunk ID. Two indexes that loaded the
//     same committed versions return identical rankings.
//
// Nothing is written: a crash loses the index, and the next start rebuilds it
// from the store.
package memlex

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/ragops/ragops/internal/vectorstore"
)

// BM25 parameters (the textbook defaults, as SQLite FTS5's bm25()).
const (
	K1 = 1.2
	B  = 0.75
)

// fullScanFrom is the number of changed sources from which a refresh reads
// the whole store in pages instead of one scan per source.
const fullScanFrom = 32

// Source is what the index reads from a store.
type Source interface {
	ScanVersions(ctx context.Context, fn func([]vectorstore.SourceVersion) error) error
	Scan(ctx context.Context, filter map[string]string, withEmbeddings bool, fn func([]vectorstore.Record) error) error
}

// doc is one indexed chunk.
type doc struct {
	hit    vectorstore.Hit // Score unset
	length int
	terms  []string // distinct terms, for removal
}

// Index is the BM25 index of one store's committed chunks.
type Index struct {
	src     Source
	refresh time.Duration

	rmu sync.Mutex // one refresh at a time

	mu       sync.RWMutex
	loaded   map[string]string   // source -> committed version loaded
	bySource map[string][]string // source -> chunk IDs
	docs     map[string]*doc     // chunk ID -> chunk
	postings map[string]map[string]int
	totalLen int
	at       time.Time // when the commit records of the last refresh were read

	dirty atomic.Bool
}

// New returns an index over src refreshed at most every refresh (a zero or
// negative interval refreshes on every query).
func New(src Source, refresh time.Duration) *Index {
	ix := &Index{src: src, refresh: refresh, loaded: map[string]string{}, bySource: map[string][]string{},
		docs: map[string]*doc{}, postings: map[string]map[string]int{}}
	ix.dirty.Store(true)
	return ix
}

// Invalidate makes the next query refresh the index: the store calls it after
// its own writes, so that a replica sees its own commits at once.
func (ix *Index) Invalidate() { ix.dirty.Store(true) }

// Tokens lower-cases text, splits it on everything that is not a letter or a
// digit and strips a plural "s" (not "ss") from words longer than three
// letters. Every word counts: no stop words.
func Tokens(text string) []string {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, f := range fields {
		if len(f) > 3 && strings.HasSuffix(f, "s") && !strings.HasSuffix(f, "ss") {
			fields[i] = f[:len(f)-1]
		}
	}
	return fields
}

// Search returns up to k chunks that share a term with query, by BM25 score
// (higher first; ties by ID), among chunks whose metadata equals every entry
// of filter ("source" included).
func (ix *Index) Search(ctx context.Context, query string, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	if err := ix.ensureFresh(ctx); err != nil {
		return nil, err
	}
	terms := Tokens(query)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	if k <= 0 || len(terms) == 0 {
		return nil, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := float64(len(ix.docs))
	if n == 0 {
		return nil, nil
	}
	avg := float64(ix.totalLen) / n
	scores := map[string]float64{}
	for _, t := range terms { // sorted: the same sum order everywhere
		post := ix.postings[t]
		if len(post) == 0 {
			continue
		}
		df := float64(len(post))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for id, tf := range post {
			d := ix.docs[id]
			if !match(d.hit, filter) {
				continue
			}
			f := float64(tf)
			scores[id] += idf * f * (K1 + 1) / (f + K1*(1-B+B*float64(d.length)/avg))
		}
	}
	ids := make([]string, 0, len(scores))
	for id := range scores {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(scores[b], scores[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	ids = ids[:min(k, len(ids))]
	out := make([]vectorstore.Hit, len(ids))
	for i, id := range ids {
		h := ix.docs[id].hit
		h.Score = float32(scores[id])
		out[i] = h
	}
	return out, nil
}

// DocFreqs returns the chunks holding each term (normalised by Tokens; a
// term of several words counts its first) and the chunks of the index.
func (ix *Index) DocFreqs(ctx context.Context, terms []string) ([]int, int, error) {
	if err := ix.ensureFresh(ctx); err != nil {
		return nil, 0, err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]int, len(terms))
	for i, t := range terms {
		if toks := Tokens(t); len(toks) > 0 {
			out[i] = len(ix.postings[toks[0]])
		}
	}
	return out, len(ix.docs), nil
}

// match checks filter against a chunk's source, version, chunk number and
// user metadata.
func match(h vectorstore.Hit, filter map[string]string) bool {
	for k, v := range filter {
		var got string
		switch k {
		case vectorstore.KeySource:
			got = h.Source
		case vectorstore.KeyVersion:
			got = h.Version
		case vectorstore.KeyChunk:
			got = strconv.Itoa(h.Chunk)
		default:
			var ok bool
			if got, ok = h.Metadata[k]; !ok {
				return false
			}
		}
		if got != v {
			return false
		}
	}
	return true
}

// Refresh brings the index up to the store's commit records now.
func (ix *Index) Refresh(ctx context.Context) error {
	ix.rmu.Lock()
	defer ix.rmu.Unlock()
	return ix.refreshLocked(ctx)
}

func (ix *Index) ensureFresh(ctx context.Context) error {
	ix.mu.RLock()
	fresh := !ix.dirty.Load() && !ix.at.IsZero() && time.Since(ix.at) < ix.refresh
	ix.mu.RUnlock()
	if fresh {
		return nil
	}
	ix.rmu.Lock()
	defer ix.rmu.Unlock()
	ix.mu.RLock()
	fresh = !ix.dirty.Load() && !ix.at.IsZero() && time.Since(ix.at) < ix.refresh
	ix.mu.RUnlock()
	if fresh { // another query refreshed it meanwhile
		return nil
	}
	return ix.refreshLocked(ctx)
}

// refreshLocked runs under rmu. The new chunks are read before the write lock
// is taken: queries keep running on the previous state meanwhile.
func (ix *Index) refreshLocked(ctx context.Context) error {
	ix.dirty.Store(false) // a write from now on marks it again
	began := time.Now()
	committed := map[string]vectorstore.SourceVersion{}
	err := ix.src.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			committed[v.Source] = v
		}
		return nil
	})
	if err != nil {
		ix.dirty.Store(true)
		return err
	}
	ix.mu.RLock()
	var changed, gone []string
	for src, v := range committed {
		if have, ok := ix.loaded[src]; !ok || have != v.Version {
			changed = append(changed, src)
		}
	}
	for src := range ix.loaded {
		if _, ok := committed[src]; !ok {
			gone = append(gone, src)
		}
	}
	ix.mu.RUnlock()
	slices.Sort(changed)

	fresh := map[string][]vectorstore.Record{}
	keep := func(page []vectorstore.Record) error {
		for _, r := range page {
			if v, ok := committed[r.Source]; ok && v.Version == r.Version {
				fresh[r.Source] = append(fresh[r.Source], r)
			}
		}
		return nil
	}
	if len(changed) >= fullScanFrom {
		want := make(map[string]bool, len(changed))
		for _, src := range changed {
			want[src] = true
		}
		err = ix.src.Scan(ctx, nil, false, func(page []vectorstore.Record) error {
			for _, r := range page {
				if v, ok := committed[r.Source]; ok && want[r.Source] && v.Version == r.Version {
					fresh[r.Source] = append(fresh[r.Source], r)
				}
			}
			return nil
		})
	} else {
		for _, src := range changed {
			if err = ix.src.Scan(ctx, map[string]string{vectorstore.KeySource: src}, false, keep); err != nil {
				break
			}
		}
	}
	if err != nil {
		ix.dirty.Store(true)
		return err
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, src := range gone {
		ix.dropLocked(src)
	}
	for _, src := range changed {
		ix.dropLocked(src)
		recs := fresh[src]
		for _, r := range recs {
			ix.addLocked(r)
		}
		// A version whose chunks were not all found (replaced again while
		// being read) is loaded as far as it goes and read again next time.
		if len(recs) == committed[src].Chunks {
			ix.loaded[src] = committed[src].Version
		} else {
			ix.dirty.Store(true)
		}
	}
	ix.at = began
	return nil
}

func (ix *Index) dropLocked(src string) {
	for _, id := range ix.bySource[src] {
		d := ix.docs[id]
		for _, t := range d.terms {
			delete(ix.postings[t], id)
			if len(ix.postings[t]) == 0 {
				delete(ix.postings, t)
			}
		}
		ix.totalLen -= d.length
		delete(ix.docs, id)
	}
	delete(ix.bySource, src)
	delete(ix.loaded, src)
}

func (ix *Index) addLocked(r vectorstore.Record) {
	if _, ok := ix.docs[r.ID]; ok {
		return
	}
	toks := Tokens(r.Text)
	tf := map[string]int{}
	for _, t := range toks {
		tf[t]++
	}
	d := &doc{hit: vectorstore.Hit{ID: r.ID, Source: r.Source, Chunk: r.Chunk, Text: r.Text, Metadata: r.Metadata, Version: r.Version},
		length: len(toks)}
	for t, n := range tf {
		p := ix.postings[t]
		if p == nil {
			p = map[string]int{}
			ix.postings[t] = p
		}
		p[r.ID] = n
		d.terms = append(d.terms, t)
	}
	ix.docs[r.ID] = d
	ix.bySource[r.Source] = append(ix.bySource[r.Source], r.ID)
	ix.totalLen += d.length
}
