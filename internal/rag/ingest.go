package rag

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"

	"github.com/ragops/ragops/internal/rag/chunk"
	"github.com/ragops/ragops/internal/vectorstore"
)

// Document is a named text to index.
type Document struct {
	Source   string
	Text     string
	Metadata map[string]string
}

// IngestResult counts documents and chunks per outcome.
type IngestResult struct {
	Documents int `json:"documents"`
	// Added counts the chunks written for new versions; Reused counts those
	// of them whose embedding was taken from the previous version (same text)
	// instead of calling the embedding model.
	Added     int `json:"added"`
	Reused    int `json:"reused"`
	Unchanged int `json:"unchanged"`
	// Removed counts the chunks of replaced versions deleted afterwards.
	Removed int `json:"removed"`
}

// stripeCount bounds the per-source locks: sources hash onto a fixed set of
// mutexes, so memory does not grow with the number of sources ever seen.
const stripeCount = 256

// stripes serialises writers of the same source within this process. Two
// sources may share a stripe; that only costs a little concurrency.
type stripes [stripeCount]sync.Mutex

// lock locks the stripes of sources in a fixed order (no deadlock between
// concurrent callers) and returns the unlock function.
func (st *stripes) lock(sources []string) func() {
	idx := make([]int, 0, len(sources))
	for _, src := range sources {
		h := fnv.New32a()
		h.Write([]byte(src))
		idx = append(idx, int(h.Sum32()%stripeCount))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		st[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			st[i].Unlock()
		}
	}
}

// digest is the content hash of a document version: its metadata and the text
// of its chunks, in order. Equal digests mean nothing to do.
func digest(md map[string]string, texts []string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(md)) {
		fmt.Fprintf(h, "%q=%q\x00", k, md[k])
	}
	for _, t := range texts {
		fmt.Fprintf(h, "%d\x00%s\x00", len(t), t)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// newVersion names a version: the content digest and a random suffix. The
// suffix makes every write attempt's chunk IDs its own, so that deleting one
// attempt's chunks can never delete another's (writers of the same source in
// other replicas do not share this process's locks).
func newVersion(dig string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return dig + "-" + hex.EncodeToString(b[:])
}

// versionDigest is the digest part of a version ("" for legacy chunks).
func versionDigest(version string) string {
	d, _, _ := cutLast(version, '-')
	return d
}

func cutLast(s string, sep byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// RecordID is the ID of chunk index of a source's version.
func RecordID(source, version string, index int) string {
	sh := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sh[:8]) + "-" + version + "-" + strconv.Itoa(index)
}

// Ingest indexes docs (sources must be distinct) as documents of the API.
//
// Each document is atomic: readers see either its previous version or all of
// the new one, never a mix, whatever happens to this process or request. The
// chunks of every new version are written first, invisible; then one commit
// record per document makes them visible; then the previous version's chunks
// are deleted. A crash or a cancelled request leaves, at worst, invisible
// chunks that Maintain collects. A document whose content and metadata are
// unchanged costs no embedding call and no write.
func (s *Service) Ingest(ctx context.Context, docs []Document) (IngestResult, error) {
	return s.ingest(ctx, docs, "")
}

func (s *Service) ingest(ctx context.Context, docs []Document, origin string) (res IngestResult, err error) {
	ctx, span := startSpan(ctx, "rag.ingest", attribute.Int(AttrDocuments, len(docs)), attribute.String(AttrOrigin, origin))
	defer func() {
		endSpan(span, err, attribute.Int(AttrAdded, res.Added), attribute.Int(AttrReused, res.Reused),
			attribute.Int(AttrUnchanged, res.Unchanged), attribute.Int(AttrRemoved, res.Removed), attribute.Int(AttrEmbedded, res.Added-res.Reused))
	}()
	res = IngestResult{Documents: len(docs)}
	sources := make([]string, len(docs))
	for i, d := range docs {
		sources[i] = d.Source
	}
	defer s.locks.lock(sources)()

	cur, err := s.store.Versions(ctx, sources)
	if err != nil {
		return res, storeErr(ctx, err)
	}
	now := time.Now().Unix()
	var toEmbed, ready []vectorstore.Record
	var commits []vectorstore.SourceVersion
	var stale []string
	for _, d := range docs {
		if origin != "" {
			// The chunks say where they come from too, so that queries can
			// filter on it (and the digest changes with the owner).
			md := make(map[string]string, len(d.Metadata)+1)
			maps.Copy(md, d.Metadata)
			md[KeyOrigin] = origin
			d.Metadata = md
		}
		texts := chunk.Split(d.Text, s.opts.ChunkSize, s.opts.ChunkOverlap)
		dig := digest(d.Metadata, texts)
		old, has := cur[d.Source]
		if has && versionDigest(old.Version) == dig {
			res.Unchanged += len(texts)
			continue
		}
		version := newVersion(dig)
		var reuse map[string][]float32
		if has {
			// One scan of the source: the old version's chunks to delete after
			// the commit, and every stored embedding of a text still present.
			reuse = map[string][]float32{}
			err := s.store.Scan(ctx, map[string]string{vectorstore.KeySource: d.Source}, true, func(page []vectorstore.Record) error {
				for _, r := range page {
					if r.Version == old.Version {
						stale = append(stale, r.ID)
					}
					if len(r.Embedding) > 0 {
						reuse[r.Text] = r.Embedding
					}
				}
				return nil
			})
			if err != nil {
				return res, storeErr(ctx, err)
			}
		}
		for i, text := range texts {
			r := vectorstore.Record{ID: RecordID(d.Source, version, i), Source: d.Source, Chunk: i, Text: text,
				Metadata: d.Metadata, Version: version, Written: now}
			if e, ok := reuse[text]; ok {
				r.Embedding = e
				ready = append(ready, r)
			} else {
				toEmbed = append(toEmbed, r)
			}
		}
		commits = append(commits, vectorstore.SourceVersion{Source: d.Source, Version: version, Chunks: len(texts), Origin: origin, Updated: now})
	}

	if err := s.embedAndUpsert(ctx, toEmbed, ready); err != nil {
		return res, err
	}
	res.Added, res.Reused = len(toEmbed)+len(ready), len(ready)
	if err := s.store.Commit(ctx, commits...); err != nil {
		return res, storeErr(ctx, err)
	}
	// The old versions are invisible now: deleting them only frees space. A
	// failure here is not the caller's (the documents are in); Maintain
	// collects what is left.
	if err := s.store.Delete(ctx, stale); err == nil {
		res.Removed = len(stale)
	}
	s.opts.Metrics.Chunks(res.Added, res.Removed)
	return res, nil
}

// UpsertBatch is the number of records per upsert during ingestion: the
// vector store writes one batch at a time, and bigger batches amortise its
// per-write cost.
const UpsertBatch = 256

// embedAndUpsert embeds toEmbed in batches, EmbedConcurrency requests at a
// time, while one writer upserts them and the already embedded records ready
// in batches of UpsertBatch. The error returned is the first failure: a store
// failure is not hidden behind the embedders it cancelled, nor the reverse.
func (s *Service) embedAndUpsert(ctx context.Context, toEmbed, ready []vectorstore.Record) error {
	if len(toEmbed) == 0 && len(ready) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	embedded := make(chan []vectorstore.Record, s.opts.EmbedConcurrency)
	g.Go(func() error {
		upsertBatch := max(UpsertBatch, s.opts.EmbedBatch)
		if s.opts.EmbedBatch == 1 {
			upsertBatch = 1 // one chunk per call, all the way (benchmark baseline)
		}
		buf := slices.Clone(ready)
		flush := func(all bool) error {
			for len(buf) >= upsertBatch || (all && len(buf) > 0) {
				n := min(len(buf), upsertBatch)
				if err := s.store.Upsert(gctx, buf[:n]); err != nil {
					return storeErr(gctx, err)
				}
				buf = buf[n:]
			}
			return nil
		}
		for batch := range embedded {
			buf = append(buf, batch...)
			if err := flush(false); err != nil {
				return err
			}
		}
		return flush(true)
	})
	var embedders sync.WaitGroup
	sem := make(chan struct{}, s.opts.EmbedConcurrency)
dispatch:
	for batch := range slices.Chunk(toEmbed, s.opts.EmbedBatch) {
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
			break dispatch
		}
		embedders.Add(1)
		g.Go(func() error {
			defer embedders.Done()
			defer func() { <-sem }()
			texts := make([]string, len(batch))
			for i, r := range batch {
				texts[i] = r.Text
			}
			vecs, usage, err := s.emb.Embed(gctx, texts)
			if err != nil {
				return modelErr(gctx, "embedding model", err)
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
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	}
	embedders.Wait()
	close(embedded)
	// errgroup keeps the first error returned: the one that cancelled the
	// others.
	return g.Wait()
}

// KeyOrigin is the metadata key that records where a chunk came from. Only
// Sync sets it (its commit records hold it too); it is reserved, so that
// documents added through the API can never be mistaken for (and pruned as)
// documents of a synced set.
const KeyOrigin = "origin"

// OriginDocsDir is the origin of the documents ingested from DOCS_DIR.
const OriginDocsDir = "docs_dir"

// SyncBatch is the number of documents Sync ingests (and commits) at a time,
// so that a large set makes progress that survives a restart, and no write
// attempt runs for long (Maintain's grace period assumes so).
const SyncBatch = 64

// SyncResult is the outcome of Sync.
type SyncResult struct {
	IngestResult
	// Pruned lists the sources deleted because they left the set, sorted;
	// PrunedChunks counts their chunks.
	Pruned       []string
	PrunedChunks int
}

// SyncBatchBytes bounds the text a Syncer holds before it ingests, so that
// the memory of a sync does not grow with the size of its documents.
const SyncBatchBytes = 8 << 20

// Sync makes the index follow a set of documents of one origin (the files of
// DOCS_DIR): it ingests docs as that origin, SyncBatch documents at a time,
// then deletes the sources of that origin that are neither in docs nor in keep
// (names still present in the set but not ingested this time, e.g. a file
// that could not be read: its last good version stays, and so do the
// records "file#id" of a JSON file named in keep). Sources of other
// origins, such as documents added through the API, are never deleted by Sync.
//
// Sync is idempotent: replicas running it at once on the same set converge
// to the same index. An empty set prunes every source of the origin; callers
// decide when that is meant. A Syncer does the same one document at a time.
func (s *Service) Sync(ctx context.Context, origin string, docs []Document, keep []string) (SyncResult, error) {
	y := s.NewSyncer(origin)
	for _, name := range keep {
		y.Keep(name)
	}
	for _, d := range docs {
		if err := y.Add(ctx, d); err != nil {
			return y.Result(), err
		}
	}
	return y.Prune(ctx)
}

// Syncer is Sync fed one document at a time, for sets too large to hold in
// memory (the sources of the indexer): it holds at most SyncBatch documents
// or SyncBatchBytes of text, plus the names seen. Each batch it ingests is
// committed document by document, as Ingest does; Prune runs only once the
// whole set went in. A Syncer is not safe for concurrent use.
type Syncer struct {
	svc     *Service
	origin  string
	present map[string]bool
	kept    map[string]bool // names kept without a read: a .json(l) file's records stay
	batch   []Document
	bytes   int
	res     SyncResult
}

// NewSyncer starts a sync of the documents of origin.
func (s *Service) NewSyncer(origin string) *Syncer {
	return &Syncer{svc: s, origin: origin, present: map[string]bool{}, kept: map[string]bool{}}
}

// Add queues d and ingests the queue when it is full. An error is the store's
// or the embedding model's: what was ingested before it stays.
func (y *Syncer) Add(ctx context.Context, d Document) error {
	y.present[d.Source] = true
	y.batch = append(y.batch, d)
	y.bytes += len(d.Text)
	if len(y.batch) >= SyncBatch || y.bytes >= SyncBatchBytes {
		return y.Flush(ctx)
	}
	return nil
}

// Keep marks name as still in the set without ingesting it (a file that
// could not be read this time): Prune leaves its last version in place.
func (y *Syncer) Keep(name string) {
	y.present[name] = true
	y.kept[name] = true
}

// Flush ingests the queued documents.
func (y *Syncer) Flush(ctx context.Context) error {
	if len(y.batch) == 0 {
		return nil
	}
	r, err := y.svc.ingest(ctx, y.batch, y.origin)
	y.res.Documents += r.Documents
	y.res.Added += r.Added
	y.res.Reused += r.Reused
	y.res.Unchanged += r.Unchanged
	y.res.Removed += r.Removed
	clear(y.batch)
	y.batch, y.bytes = y.batch[:0], 0
	return err
}

// Result is what the Syncer did so far.
func (y *Syncer) Result() SyncResult { return y.res }

// Prune flushes, then deletes the sources of the origin that were neither
// added nor kept. Call it only when the set is complete: a partial listing
// would delete documents that are still there.
func (y *Syncer) Prune(ctx context.Context) (SyncResult, error) {
	if err := y.Flush(ctx); err != nil {
		return y.res, err
	}
	s := y.svc
	// Only once the current set is in: a failed ingestion prunes nothing.
	var gone []string
	err := s.store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			if v.Origin == y.origin && !y.present[v.Source] && !keptFile(v.Source, y.kept) {
				gone = append(gone, v.Source)
			}
		}
		return nil
	})
	if err != nil {
		return y.res, storeErr(ctx, err)
	}
	for _, src := range gone {
		n, err := s.deleteSource(ctx, src, func(v vectorstore.SourceVersion) bool { return v.Origin == y.origin })
		if err != nil {
			return y.res, err
		}
		if n > 0 {
			y.res.Pruned = append(y.res.Pruned, src)
			y.res.PrunedChunks += n
		}
	}
	return y.res, nil
}

// keptFile reports whether source is a record "file#id" of a .json or
// .jsonl file in keep: a file skipped whole keeps all its records.
func keptFile(source string, keep map[string]bool) bool {
	for i := range len(source) {
		if source[i] == '#' && keep[source[:i]] {
			return true
		}
	}
	return false
}

// DeleteSource removes a source and reports how many chunks it had (0: it
// was not indexed).
func (s *Service) DeleteSource(ctx context.Context, source string) (int, error) {
	return s.deleteSource(ctx, source, nil)
}

// deleteSource removes source if its committed version passes cond (nil: any),
// checked under the source's lock so that a document just re-added by another
// origin is left alone. Removing the commit record is the deletion; the
// chunks are deleted afterwards (a crash in between leaves garbage for
// Maintain, never a visible half).
func (s *Service) deleteSource(ctx context.Context, source string, cond func(vectorstore.SourceVersion) bool) (int, error) {
	defer s.locks.lock([]string{source})()
	cur, err := s.store.Versions(ctx, []string{source})
	if err != nil {
		return 0, storeErr(ctx, err)
	}
	v, ok := cur[source]
	if !ok || (cond != nil && !cond(v)) {
		return 0, nil
	}
	if err := s.store.Uncommit(ctx, source); err != nil {
		return 0, storeErr(ctx, err)
	}
	var ids []string
	err = s.store.Scan(ctx, map[string]string{vectorstore.KeySource: source}, false, func(page []vectorstore.Record) error {
		for _, r := range page {
			if r.Version == v.Version {
				ids = append(ids, r.ID)
			}
		}
		return nil
	})
	if err == nil {
		err = s.store.Delete(ctx, ids)
	}
	removed := 0
	if err == nil {
		removed = len(ids)
	}
	s.opts.Metrics.Chunks(0, removed)
	return max(v.Chunks, removed), nil
}

// Sources lists the indexed sources (their committed versions), by name.
func (s *Service) Sources(ctx context.Context) ([]vectorstore.SourceInfo, error) {
	var out []vectorstore.SourceInfo
	err := s.store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			out = append(out, vectorstore.SourceInfo{Source: v.Source, Chunks: v.Chunks})
		}
		return nil
	})
	return out, storeErr(ctx, err)
}

// maxFetch bounds the hits asked of the store for one query while skipping
// invisible chunks; maxAttempts bounds the queries.
const (
	maxFetch    = 1000
	maxAttempts = 4
)

// visible keeps the hits that belong to the committed version of their
// source, in order, and tells whether it dropped any of a source that is
// committed (at another version).
func (s *Service) visible(ctx context.Context, hits []vectorstore.Hit) ([]vectorstore.Hit, bool, error) {
	if len(hits) == 0 {
		return nil, false, nil
	}
	seen := map[string]bool{}
	var sources []string
	for _, h := range hits {
		if !seen[h.Source] {
			seen[h.Source] = true
			sources = append(sources, h.Source)
		}
	}
	cur, err := s.store.Versions(ctx, sources)
	if err != nil {
		return nil, false, err
	}
	out := hits[:0:0]
	stale := false
	for _, h := range hits {
		v, ok := cur[h.Source]
		switch {
		case ok && v.Version == h.Version:
			out = append(out, h)
		case ok:
			stale = true
		}
	}
	return out, stale, nil
}

// MaintainResult is the outcome of Maintain.
type MaintainResult struct {
	// Adopted counts the sources written before commit records existed that
	// were given one (their chunks keep their meaning).
	Adopted int
	// Scanned counts the chunks looked at; Collected those deleted as
	// garbage: chunks of a version that is not (or no longer) committed.
	Scanned   int
	Collected int
}

// DefaultGrace is how old an invisible chunk must be before Maintain deletes
// it: a write attempt in progress (in this or another replica) must never
// lose its chunks before it commits. Write attempts are bounded by the
// request timeout and SyncBatch, far below this.
const DefaultGrace = time.Hour

// Maintain pages through the whole store once: it adopts chunks written before
// commit records existed (an older version of the server: one commit record
// per source, so they stay visible) and deletes garbage older than grace (the
// chunks a crash, a cancelled request or a replaced version left behind).
// It holds no lock and is safe to run beside ingestion, in any replica.
func (s *Service) Maintain(ctx context.Context, grace time.Duration) (MaintainResult, error) {
	var res MaintainResult
	committed := map[string]string{}
	err := s.store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			committed[v.Source] = v.Version
		}
		return nil
	})
	if err != nil {
		return res, storeErr(ctx, err)
	}
	cutoff := time.Now().Add(-grace).Unix()
	type legacySource struct {
		chunks int
		origin string
	}
	legacy := map[string]*legacySource{}
	var garbage []string
	err = s.store.Scan(ctx, nil, false, func(page []vectorstore.Record) error {
		res.Scanned += len(page)
		for _, r := range page {
			v, ok := committed[r.Source]
			switch {
			case ok && v == r.Version:
				// visible
			case !ok && r.Version == "":
				l := legacy[r.Source]
				if l == nil {
					l = &legacySource{origin: r.Metadata[KeyOrigin]}
					legacy[r.Source] = l
				}
				l.chunks++
			case r.Written < cutoff:
				garbage = append(garbage, r.ID)
			}
		}
		return nil
	})
	if err != nil {
		return res, storeErr(ctx, err)
	}
	var adopt []vectorstore.SourceVersion
	for _, src := range slices.Sorted(maps.Keys(legacy)) {
		l := legacy[src]
		adopt = append(adopt, vectorstore.SourceVersion{Source: src, Chunks: l.chunks, Origin: l.origin, Updated: time.Now().Unix()})
	}
	for batch := range slices.Chunk(adopt, vectorstore.PageSize) {
		if err := s.store.Commit(ctx, batch...); err != nil {
			return res, storeErr(ctx, err)
		}
		res.Adopted += len(batch)
	}
	for batch := range slices.Chunk(garbage, vectorstore.PageSize) {
		if err := s.store.Delete(ctx, batch); err != nil {
			return res, storeErr(ctx, err)
		}
		res.Collected += len(batch)
	}
	if res.Collected > 0 {
		s.opts.Metrics.Chunks(0, res.Collected)
	}
	return res, nil
}
