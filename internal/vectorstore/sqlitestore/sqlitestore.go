package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ragops/ragops/internal/vectorstore"
)

// FileName is the database file in the data directory.
const FileName = "ragops.db"

// maxParams bounds the parameters of one statement (IN lists).
const maxParams = 500

// file is one open database file, shared by the stores of its collections.
type file struct {
	dir, path string
	db        *sql.DB
	unlock    func() // releases the data directory's lock

	// wmu serialises writes: SQLite has one writer, and the in-memory
	// copies must be updated in commit order.
	wmu sync.Mutex

	// gen counts the committed write transactions; the cached document
	// frequencies of the full-text index (df, dfTotal) are those of
	// generation dfGen.
	gen     atomic.Uint64
	dfMu    sync.Mutex
	df      map[string]int
	dfTotal int
	dfGen   uint64

	refs  int              // under registry.mu
	colls map[string]*coll // under registry.mu
}

// registry holds the open files by path, so that every collection of a file
// shares one *sql.DB and one write lock.
var registry = struct {
	mu    sync.Mutex
	files map[string]*file
}{files: map[string]*file{}}

// Store implements vectorstore.Store for one collection of a database file.
type Store struct {
	f      *file
	c      *coll
	closed atomic.Bool
}

var _ vectorstore.Store = (*Store)(nil)

// Open opens (or creates) the database in dir and loads collection name. An
// old chromem-go store in dir/chromem is imported on the first Open. A file
// that cannot be read fails with an error wrapping vectorstore.ErrCorrupt.
func Open(dir, name string) (*Store, error) {
	if dir == "" || name == "" {
		return nil, errors.New("sqlitestore: a directory and a collection name are required")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)

	registry.mu.Lock()
	defer registry.mu.Unlock()
	f := registry.files[path]
	if f == nil {
		if f, err = openFile(dir, path); err != nil {
			return nil, err
		}
		registry.files[path] = f
	}
	c := f.colls[name]
	if c == nil {
		c = &coll{name: name}
		if err := f.load(context.Background(), c); err != nil {
			if f.refs == 0 {
				f.close()
				delete(registry.files, path)
			}
			return nil, err
		}
		f.colls[name] = c
	}
	f.refs++
	return &Store{f: f, c: c}, nil
}

func openFile(dir, path string) (*file, error) {
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(path); err != nil {
		unlock()
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		unlock()
		return nil, err
	}
	// Readers run beside the one writer (WAL); writes are serialised by wmu.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	f := &file{dir: dir, path: path, db: db, unlock: unlock, colls: map[string]*coll{}}
	ctx := context.Background()
	for _, step := range []func(context.Context) error{f.quickCheck, f.migrate, f.importLegacy} {
		if err := step(ctx); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

func (f *file) close() error {
	err := f.db.Close()
	f.unlock()
	return err
}

// dsn is the connection string: WAL, every commit synced, writers wait for
// each other, and transactions take the write lock when they begin.
func dsn(path string) string {
	u := url.URL{Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	// Reads map the file rather than copy it page by page.
	q.Add("_pragma", "mmap_size(1073741824)")
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// isCorrupt reports whether err is SQLite saying the file is damaged or not a
// database.
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
	}
	return false
}

// corrupt is the error for a damaged database file: what, where, and what to
// do about it.
func corrupt(path string, what any) error {
	return fmt.Errorf("%w: %s: %v. The server does not start on it and never resets it: stop the server, "+
		"move %s (and any %s-wal and %s-shm beside it) out of the data directory, start again and re-ingest "+
		"the documents, or restore the file from a backup", vectorstore.ErrCorrupt, path, what, FileName, FileName, FileName)
}

// readErr wraps an error of a read or write of f: ErrCorrupt when SQLite
// finds the file damaged.
func (f *file) readErr(err error) error {
	if err != nil && isCorrupt(err) {
		return corrupt(f.path, err)
	}
	return err
}

// Upsert implements vectorstore.Store: the records are written in one
// transaction, durable when it returns.
func (s *Store) Upsert(ctx context.Context, recs []vectorstore.Record) error {
	if len(recs) == 0 {
		return nil
	}
	dim := len(recs[0].Embedding)
	for _, r := range recs {
		switch {
		case r.ID == "":
			return errors.New("sqlitestore: a record has no ID")
		case len(r.Embedding) == 0:
			return fmt.Errorf("sqlitestore: record %s has no embedding", r.ID)
		case len(r.Embedding) != dim:
			return fmt.Errorf("sqlitestore: record %s has %d dimensions, the batch has %d", r.ID, len(r.Embedding), dim)
		}
	}
	s.f.wmu.Lock()
	defer s.f.wmu.Unlock()
	if cur, n := s.c.shape(); n > 0 && cur != dim {
		return fmt.Errorf("sqlitestore: embeddings have %d dimensions, collection %q has %d", dim, s.c.name, cur)
	}
	err := s.f.write(ctx, s.c, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO records (collection, id, source, chunk, version, written, text, metadata, embedding)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (collection, id) DO UPDATE SET source = excluded.source, chunk = excluded.chunk,
			version = excluded.version, written = excluded.written, text = excluded.text,
			metadata = excluded.metadata, embedding = excluded.embedding`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range recs {
			md, err := encodeMetadata(r.Metadata)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, s.c.name, r.ID, r.Source, r.Chunk, r.Version, r.Written, r.Text, md, encodeVector(r.Embedding)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.c.upsert(recs)
	return nil
}

// write runs fn in one transaction. When the commit fails, c's in-memory copy
// is reloaded: a failed fsync may still have committed.
func (f *file) write(ctx context.Context, c *coll, fn func(*sql.Tx) error) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return f.readErr(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return f.readErr(err)
	}
	defer f.gen.Add(1) // even a failed commit may have landed
	if err := tx.Commit(); err != nil {
		if c != nil {
			if lerr := f.load(context.WithoutCancel(ctx), c); lerr != nil {
				return errors.Join(f.readErr(err), lerr)
			}
		}
		return f.readErr(err)
	}
	return nil
}

// Query implements vectorstore.Store: exact cosine similarity over the
// in-memory vectors; the texts of the hits are read from the database.
func (s *Store) Query(ctx context.Context, embedding []float32, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	if k <= 0 {
		return nil, nil
	}
	hits, err := s.c.query(embedding, k, filter)
	if err != nil || len(hits) == 0 {
		return hits, err
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	texts := make(map[string]string, len(hits))
	err = s.inIDs(ctx, `SELECT id, text FROM records WHERE collection = ? AND id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			return err
		}
		texts[id] = text
		return nil
	})
	if err != nil {
		return nil, s.f.readErr(err)
	}
	out := hits[:0]
	for _, h := range hits {
		// A record deleted since the search is left out.
		if text, ok := texts[h.ID]; ok {
			h.Text = text
			out = append(out, h)
		}
	}
	return out, nil
}

// inIDs runs query (with one %s for the placeholders of an IN list) for ids,
// maxParams at a time, calling fn for each row.
func (s *Store) inIDs(ctx context.Context, query string, ids []string, fn func(*sql.Rows) error) error {
	for len(ids) > 0 {
		n := min(len(ids), maxParams)
		args := make([]any, 0, n+1)
		args = append(args, s.c.name)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		rows, err := s.f.db.QueryContext(ctx, fmt.Sprintf(query, placeholders(n)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := fn(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Scan implements vectorstore.Store. Filters on the source and the version
// are run by SQLite, the others on the decoded metadata; each page is one
// query, in ID order.
func (s *Store) Scan(ctx context.Context, filter map[string]string, withEmbeddings bool, fn func([]vectorstore.Record) error) error {
	cols := "id, source, chunk, version, written, text, metadata"
	if withEmbeddings {
		cols += ", embedding"
	}
	where := "collection = ? AND id %s ?"
	var fixed []any
	rest := map[string]string{}
	for k, v := range filter {
		switch k {
		case vectorstore.KeySource:
			where += " AND source = ?"
			fixed = append(fixed, v)
		case vectorstore.KeyVersion:
			where += " AND version = ?"
			fixed = append(fixed, v)
		default:
			rest[k] = v
		}
	}
	query := fmt.Sprintf("SELECT %s FROM records WHERE %s ORDER BY id LIMIT %d", cols, where, vectorstore.PageSize)
	q, after := fmt.Sprintf(query, ">="), ""
	for {
		args := append([]any{s.c.name, after}, fixed...)
		page, n, last, err := s.scanPage(ctx, q, args, withEmbeddings, rest)
		if err != nil {
			return s.f.readErr(err)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if n < vectorstore.PageSize {
			return nil
		}
		q, after = fmt.Sprintf(query, ">"), last
	}
}

// scanPage reads one page: the records that pass rest, the number of rows
// read and the last ID read.
func (s *Store) scanPage(ctx context.Context, query string, args []any, withEmbeddings bool, rest map[string]string) ([]vectorstore.Record, int, string, error) {
	rows, err := s.f.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	var page []vectorstore.Record
	n, last := 0, ""
	for rows.Next() {
		var r vectorstore.Record
		var md sql.NullString
		var emb []byte
		dest := []any{&r.ID, &r.Source, &r.Chunk, &r.Version, &r.Written, &r.Text, &md}
		if withEmbeddings {
			dest = append(dest, &emb)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, "", err
		}
		n, last = n+1, r.ID
		if r.Metadata, err = decodeMetadata(md.String); err != nil {
			return nil, 0, "", fmt.Errorf("record %s: %w", r.ID, err)
		}
		if !matchRecord(r, rest) {
			continue
		}
		if withEmbeddings {
			if r.Embedding, err = decodeVector(emb); err != nil {
				return nil, 0, "", fmt.Errorf("record %s: %w", r.ID, err)
			}
		}
		page = append(page, r)
	}
	return page, n, last, rows.Err()
}

// matchRecord checks the filter entries on keys other than the source and
// the version.
func matchRecord(r vectorstore.Record, filter map[string]string) bool {
	for k, v := range filter {
		var got string
		var ok bool
		switch k {
		case vectorstore.KeyChunk:
			got, ok = fmt.Sprint(r.Chunk), true
		case vectorstore.KeyWritten:
			got, ok = fmt.Sprint(r.Written), true
		default:
			got, ok = r.Metadata[k]
		}
		if !ok || got != v {
			return false
		}
	}
	return true
}

// Delete implements vectorstore.Store, in one transaction.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	s.f.wmu.Lock()
	defer s.f.wmu.Unlock()
	err := s.f.write(ctx, s.c, func(tx *sql.Tx) error {
		for rest := ids; len(rest) > 0; {
			n := min(len(rest), maxParams)
			args := make([]any, 0, n+1)
			args = append(args, s.c.name)
			for _, id := range rest[:n] {
				args = append(args, id)
			}
			rest = rest[n:]
			if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE collection = ? AND id IN (`+placeholders(n)+`)`, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.c.delete(ids)
	return nil
}

// Commit implements vectorstore.Store: every version of the batch in one
// transaction.
func (s *Store) Commit(ctx context.Context, versions ...vectorstore.SourceVersion) error {
	if len(versions) == 0 {
		return nil
	}
	s.f.wmu.Lock()
	defer s.f.wmu.Unlock()
	return s.f.write(ctx, nil, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO versions (collection, source, version, chunks, origin, updated)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (collection, source) DO UPDATE SET version = excluded.version, chunks = excluded.chunks,
			origin = excluded.origin, updated = excluded.updated`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, v := range versions {
			if _, err := stmt.ExecContext(ctx, s.c.name, v.Source, v.Version, v.Chunks, v.Origin, v.Updated); err != nil {
				return err
			}
		}
		return nil
	})
}

// Uncommit implements vectorstore.Store.
func (s *Store) Uncommit(ctx context.Context, source string) error {
	s.f.wmu.Lock()
	defer s.f.wmu.Unlock()
	return s.f.write(ctx, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE collection = ? AND source = ?`, s.c.name, source)
		return err
	})
}

// Versions implements vectorstore.Store.
func (s *Store) Versions(ctx context.Context, sources []string) (map[string]vectorstore.SourceVersion, error) {
	out := map[string]vectorstore.SourceVersion{}
	err := s.inIDs(ctx, `SELECT source, version, chunks, origin, updated FROM versions WHERE collection = ? AND source IN (%s)`, sources, func(rows *sql.Rows) error {
		var v vectorstore.SourceVersion
		if err := rows.Scan(&v.Source, &v.Version, &v.Chunks, &v.Origin, &v.Updated); err != nil {
			return err
		}
		out[v.Source] = v
		return nil
	})
	return out, s.f.readErr(err)
}

// ScanVersions implements vectorstore.Store: pages in source order.
func (s *Store) ScanVersions(ctx context.Context, fn func([]vectorstore.SourceVersion) error) error {
	query := func(cmp string) string {
		return fmt.Sprintf(`SELECT source, version, chunks, origin, updated FROM versions
			WHERE collection = ? AND source %s ? ORDER BY source LIMIT %d`, cmp, vectorstore.PageSize)
	}
	q, after := query(">="), "" // the first page includes the empty source
	for {
		var page []vectorstore.SourceVersion
		err := func() error {
			rows, err := s.f.db.QueryContext(ctx, q, s.c.name, after)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var v vectorstore.SourceVersion
				if err := rows.Scan(&v.Source, &v.Version, &v.Chunks, &v.Origin, &v.Updated); err != nil {
					return err
				}
				page = append(page, v)
			}
			return rows.Err()
		}()
		if err != nil {
			return s.f.readErr(err)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < vectorstore.PageSize {
			return nil
		}
		q, after = query(">"), page[len(page)-1].Source
	}
}

// Ping implements vectorstore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: store closed", vectorstore.ErrUnavailable)
	}
	if err := s.f.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", vectorstore.ErrUnavailable, err)
	}
	return nil
}

// Close implements vectorstore.Store. The file is closed with the last store
// of its collections.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	s.f.refs--
	if s.f.refs > 0 {
		return nil
	}
	delete(registry.files, s.f.path)
	return s.f.close()
}

// encodeMetadata returns the user metadata as JSON (reserved keys dropped),
// or nil when there is none.
func encodeMetadata(md map[string]string) (any, error) {
	user := make(map[string]string, len(md))
	for k, v := range md {
		if !vectorstore.Reserved(k) {
			user[k] = v
		}
	}
	if len(user) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(user)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeMetadata(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var md map[string]string
	if err := json.Unmarshal([]byte(s), &md); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return md, nil
}

// encodeVector is the BLOB of a vector: little-endian float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("embedding of %d bytes, not a multiple of 4", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func cloneMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	return maps.Clone(md)
}

var _ vectorstore.Dropper = (*Store)(nil)

// Drop implements vectorstore.Dropper: the collection's commit records and
// chunks go in one transaction (a crash leaves all of it or none). Other
// collections of the file are untouched; the handle stays usable, on an
// empty collection.
func (s *Store) Drop(ctx context.Context) error {
	s.f.wmu.Lock()
	defer s.f.wmu.Unlock()
	var ids []string
	err := s.f.write(ctx, s.c, func(tx *sql.Tx) error {
		ids = ids[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id FROM records WHERE collection = ?`, s.c.name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE collection = ?`, s.c.name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM records WHERE collection = ?`, s.c.name)
		return err
	})
	if err != nil {
		return err
	}
	s.c.delete(ids)
	return nil
}
