package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/ragops/ragops/internal/vectorstore"
)

// coll is the in-memory copy of one collection: every record but its text,
// with its vector normalised, in slots of one contiguous matrix. Writers
// update it after their transaction committed, under the file's write lock,
// so it follows the commit order.
type coll struct {
	name string

	mu   sync.RWMutex
	dim  int
	slot map[string]int // ID -> index in ents and row of vecs
	ents []entry
	vecs []float32 // len(ents) rows of dim
}

type entry struct {
	id, source, version string
	chunk               int
	written             int64
	md                  map[string]string // user metadata; shared, never modified
}

// shape returns the dimension and the number of records.
func (c *coll) shape() (dim, n int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.dim, len(c.ents)
}

// load (re)reads c from the database.
func (f *file) load(ctx context.Context, c *coll) error {
	// Sizing the copy first spares growing (and copying) it row by row.
	var n, dim int
	err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE collection = ?`, c.name).Scan(&n)
	if err == nil && n > 0 {
		err = f.db.QueryRowContext(ctx, `SELECT length(embedding) / 4 FROM records WHERE collection = ? LIMIT 1`, c.name).Scan(&dim)
	}
	if err != nil {
		return f.openErr(err)
	}
	rows, err := f.db.QueryContext(ctx, `SELECT id, source, chunk, version, written, metadata, embedding FROM records WHERE collection = ?`, c.name)
	if err != nil {
		return f.openErr(err)
	}
	defer rows.Close()
	intern := map[string]string{}
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		intern[s] = s
		return s
	}
	ents := make([]entry, 0, n)
	vecs := make([]float32, 0, n*dim)
	for rows.Next() {
		var e entry
		var md sql.NullString
		var blob sql.RawBytes // valid until the next row: decoded in place
		if err := rows.Scan(&e.id, &e.source, &e.chunk, &e.version, &e.written, &md, &blob); err != nil {
			return f.openErr(err)
		}
		e.source, e.version = in(e.source), in(e.version)
		if e.md, err = decodeMetadata(md.String); err != nil {
			return corrupt(f.path, fmt.Sprintf("record %s of %s: %v", e.id, c.name, err))
		}
		if len(blob) != 4*dim {
			return corrupt(f.path, fmt.Sprintf("record %s of %s: an embedding of %d bytes, the collection has %d dimensions", e.id, c.name, len(blob), dim))
		}
		row := vecs[len(vecs) : len(vecs)+dim]
		vecs = vecs[:len(vecs)+dim]
		for i := range row {
			row[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		normalize(row)
		ents = append(ents, e)
	}
	if err := rows.Err(); err != nil {
		return f.openErr(err)
	}
	if len(ents) != n {
		return fmt.Errorf("load collection %s: %d records, counted %d", c.name, len(ents), n)
	}
	slot := make(map[string]int, len(ents))
	for i, e := range ents {
		slot[e.id] = i
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dim, c.slot, c.ents, c.vecs = dim, slot, ents, vecs
	return nil
}

// upsert applies committed records.
func (c *coll) upsert(recs []vectorstore.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ents) == 0 {
		c.dim = len(recs[0].Embedding)
	}
	if c.slot == nil {
		c.slot = map[string]int{}
	}
	for _, r := range recs {
		md := map[string]string{}
		for k, v := range r.Metadata {
			if !vectorstore.Reserved(k) {
				md[k] = v
			}
		}
		if len(md) == 0 {
			md = nil
		}
		e := entry{id: r.ID, source: r.Source, version: r.Version, chunk: r.Chunk, written: r.Written, md: md}
		i, ok := c.slot[r.ID]
		if !ok {
			i = len(c.ents)
			c.slot[r.ID] = i
			c.ents = append(c.ents, entry{})
			c.vecs = append(c.vecs, make([]float32, c.dim)...)
		}
		c.ents[i] = e
		row := c.vecs[i*c.dim : (i+1)*c.dim]
		copy(row, r.Embedding)
		normalize(row)
	}
}

// delete applies committed deletions: the last slot moves into each hole.
func (c *coll) delete(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		i, ok := c.slot[id]
		if !ok {
			continue
		}
		last := len(c.ents) - 1
		if i != last {
			c.ents[i] = c.ents[last]
			copy(c.vecs[i*c.dim:(i+1)*c.dim], c.vecs[last*c.dim:])
			c.slot[c.ents[i].id] = i
		}
		delete(c.slot, id)
		c.ents[last] = entry{}
		c.ents = c.ents[:last]
		c.vecs = c.vecs[:last*c.dim]
	}
}

// parallelMin is the number of records from which a query is split across
// the CPUs.
const parallelMin = 16384

type scored struct {
	slot  int
	score float32
}

// query returns the k best hits matching filter, without their texts.
func (c *coll) query(embedding []float32, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	q := slices.Clone(embedding)
	normalize(q)
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := len(c.ents)
	if n == 0 {
		return nil, nil
	}
	if len(q) != c.dim {
		return nil, fmt.Errorf("sqlitestore: query has %d dimensions, collection %q has %d", len(q), c.name, c.dim)
	}
	match := c.matcher(filter)
	parts := 1
	if n >= parallelMin {
		parts = min(runtime.GOMAXPROCS(0), n/(parallelMin/2))
	}
	var best []scored
	if parts <= 1 {
		best = c.topK(q, k, 0, n, match)
	} else {
		res := make([][]scored, parts)
		var wg sync.WaitGroup
		for p := range parts {
			lo, hi := p*n/parts, (p+1)*n/parts
			wg.Go(func() { res[p] = c.topK(q, k, lo, hi, match) })
		}
		wg.Wait()
		for _, r := range res {
			best = append(best, r...)
		}
	}
	slices.SortFunc(best, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return cmpString(c.ents[a.slot].id, c.ents[b.slot].id)
	})
	best = best[:min(k, len(best))]
	hits := make([]vectorstore.Hit, len(best))
	for i, b := range best {
		e := c.ents[b.slot]
		hits[i] = vectorstore.Hit{ID: e.id, Source: e.source, Chunk: e.chunk, Version: e.version, Metadata: cloneMetadata(e.md), Score: b.score}
	}
	return hits, nil
}

// topK scans slots [lo, hi) and keeps the k best matches in a min-heap.
func (c *coll) topK(q []float32, k, lo, hi int, match func(*entry) bool) []scored {
	h := make([]scored, 0, min(k, hi-lo))
	dim := c.dim
	for i := lo; i < hi; i++ {
		if match != nil && !match(&c.ents[i]) {
			continue
		}
		s := dot(q, c.vecs[i*dim:(i+1)*dim])
		if len(h) < k {
			h = append(h, scored{i, s})
			up(h, len(h)-1)
		} else if s > h[0].score {
			h[0] = scored{i, s}
			down(h, 0)
		}
	}
	return h
}

func up(h []scored, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].score <= h[i].score {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func down(h []scored, i int) {
	for {
		l, m := 2*i+1, i
		if l < len(h) && h[l].score < h[m].score {
			m = l
		}
		if r := l + 1; r < len(h) && h[r].score < h[m].score {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// matcher returns the test of a filter (nil: everything matches). Keys are
// the reserved ones (source, chunk, version, written) and user metadata.
func (c *coll) matcher(filter map[string]string) func(*entry) bool {
	if len(filter) == 0 {
		return nil
	}
	type cond struct{ key, val string }
	var conds []cond
	for k, v := range filter {
		conds = append(conds, cond{k, v})
	}
	return func(e *entry) bool {
		for _, cd := range conds {
			var got string
			var ok bool
			switch cd.key {
			case vectorstore.KeySource:
				got, ok = e.source, true
			case vectorstore.KeyVersion:
				got, ok = e.version, true
			case vectorstore.KeyChunk:
				got, ok = strconv.Itoa(e.chunk), true
			case vectorstore.KeyWritten:
				got, ok = strconv.FormatInt(e.written, 10), true
			default:
				got, ok = e.md[cd.key]
			}
			if !ok || got != cd.val {
				return false
			}
		}
		return true
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// normalize scales v to unit length in place (a zero vector stays zero).
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
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
