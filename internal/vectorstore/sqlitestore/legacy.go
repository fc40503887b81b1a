package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/philippgille/chromem-go"

	"github.com/ragops/ragops/internal/vectorstore"
)

// LegacyDir is the directory, in the data directory, of the chromem-go store
// that this store replaces; it is renamed to LegacyDir+".migrated" once
// imported.
const LegacyDir = "chromem"

// importLegacy imports the old chromem-go store, if there is one, then
// renames its directory. The import is one transaction that also records
// it in the meta table, so a crash before the rename only leaves the rename
// to do.
func (f *file) importLegacy(ctx context.Context) error {
	dir := filepath.Join(f.dir, LegacyDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var done string
	err := f.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaImport).Scan(&done)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return f.openErr(err)
	}
	if done == "" {
		colls, err := readLegacy(ctx, dir)
		if err != nil {
			return fmt.Errorf("%w: the old embedded store %s cannot be read (%w): move it out of the data directory to start "+
				"with an empty index (then re-ingest the documents), or restore it from a backup", vectorstore.ErrCorrupt, dir, err)
		}
		if err := f.insertLegacy(ctx, colls); err != nil {
			return err
		}
	}
	return renameAway(dir)
}

// insertLegacy writes the records of every collection and the meta row, in
// one transaction.
func (f *file) insertLegacy(ctx context.Context, colls map[string][]vectorstore.Record) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	counts := map[string]int{}
	return f.write(ctx, nil, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO records (collection, id, source, chunk, version, written, text, metadata, embedding)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (collection, id) DO UPDATE SET source = excluded.source, chunk = excluded.chunk,
			version = excluded.version, written = excluded.written, text = excluded.text,
			metadata = excluded.metadata, embedding = excluded.embedding`)
		// Not INSERT OR REPLACE: its implicit delete fires no trigger, and the
		// full-text index (records_fts) would keep the replaced text.
		if err != nil {
			return err
		}
		defer stmt.Close()
		for name, recs := range colls {
			for _, r := range recs {
				md, err := encodeMetadata(r.Metadata)
				if err != nil {
					return err
				}
				if _, err := stmt.ExecContext(ctx, name, r.ID, r.Source, r.Chunk, r.Version, r.Written, r.Text, md, encodeVector(r.Embedding)); err != nil {
					return err
				}
			}
			counts[name] = len(recs)
		}
		note, err := json.Marshal(map[string]any{"imported": time.Now().UTC().Format(time.RFC3339), "from": LegacyDir, "records": counts})
		if err != nil {
			return err
		}
		return metaSet(ctx, tx, metaImport, string(note))
	})
}

// readLegacy reads every collection of a chromem-go directory written by the
// old embedded store (each collection with a "<name>.meta" companion holding
// its dimension), as records of no version (legacy).
func readLegacy(ctx context.Context, dir string) (map[string][]vectorstore.Record, error) {
	db, err := chromem.NewPersistentDB(dir, false)
	if err != nil {
		return nil, err
	}
	all := db.ListCollections()
	now := time.Now().Unix()
	out := map[string][]vectorstore.Record{}
	for name, c := range all {
		if strings.HasSuffix(name, ".meta") || c.Count() == 0 {
			continue
		}
		meta := all[name+".meta"]
		if meta == nil {
			return nil, fmt.Errorf("collection %s has no %s.meta companion", name, name)
		}
		doc, err := meta.GetByID(ctx, "dimension")
		if err != nil {
			return nil, fmt.Errorf("collection %s: dimension: %w", name, err)
		}
		dim, err := strconv.Atoi(doc.Content)
		if err != nil || dim <= 0 {
			return nil, fmt.Errorf("collection %s: dimension %q", name, doc.Content)
		}
		probe := make([]float32, dim)
		probe[0] = 1
		res, err := c.QueryEmbedding(ctx, probe, c.Count(), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", name, err)
		}
		recs := make([]vectorstore.Record, 0, len(res))
		for _, r := range res {
			if len(r.Embedding) != dim {
				return nil, fmt.Errorf("collection %s: record %s has %d dimensions, want %d", name, r.ID, len(r.Embedding), dim)
			}
			rec := vectorstore.Record{ID: r.ID, Text: r.Content, Embedding: r.Embedding, Written: now}
			md := map[string]string{}
			for k, v := range r.Metadata {
				switch k {
				case vectorstore.KeySource:
					rec.Source = v
				case vectorstore.KeyChunk:
					rec.Chunk, _ = strconv.Atoi(v)
				default:
					md[k] = v
				}
			}
			rec.Metadata = md
			recs = append(recs, rec)
		}
		slices.SortFunc(recs, func(a, b vectorstore.Record) int { return cmpString(a.ID, b.ID) })
		out[name] = recs
	}
	return out, nil
}

// renameAway renames the imported directory out of the way, to
// dir.migrated (or dir.migrated-<time> if that exists already), and syncs the
// parent directory.
func renameAway(dir string) error {
	to := dir + ".migrated"
	if _, err := os.Lstat(to); err == nil {
		to = fmt.Sprintf("%s.migrated-%d", dir, time.Now().Unix())
	}
	if err := os.Rename(dir, to); err != nil {
		return fmt.Errorf("the old embedded store %s is imported, but renaming it failed: %w", dir, err)
	}
	if d, err := os.Open(filepath.Dir(dir)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
