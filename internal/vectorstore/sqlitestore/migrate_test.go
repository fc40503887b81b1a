package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

// schemaV1 is the database as the server wrote it before the full-text index
// (schema version 1), byte for byte the DDL of that release.
const schemaV1 = `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE records (
		collection TEXT NOT NULL,
		id         TEXT NOT NULL,
		source     TEXT NOT NULL,
		chunk      INTEGER NOT NULL,
		version    TEXT NOT NULL,
		written    INTEGER NOT NULL,
		text       TEXT NOT NULL,
		metadata   TEXT,
		embedding  BLOB NOT NULL,
		PRIMARY KEY (collection, id)
	);
	CREATE INDEX records_source ON records (collection, source, version);
	CREATE TABLE versions (
		collection TEXT NOT NULL,
		source     TEXT NOT NULL,
		version    TEXT NOT NULL,
		chunks     INTEGER NOT NULL,
		origin     TEXT NOT NULL,
		updated    INTEGER NOT NULL,
		PRIMARY KEY (collection, source)
	);
	INSERT INTO meta VALUES ('schema_version', '1');`

// writeV1 creates a schema-1 database in dir holding two committed chunks of
// collection "c" and one uncommitted chunk.
func writeV1(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
	must(t, err)
	defer db.Close()
	_, err = db.Exec(schemaV1)
	must(t, err)
	vec := make([]byte, 8) // two float32 zeros
	vec[3] = 0x3f          // 0.5
	for _, r := range []struct{ id, source, version, text string }{
		{"a0", "a.md", "v1", "Pelicans fly over the harbour."},
		{"b0", "b.md", "v1", "Herons wade in the harbour shallows."},
		{"b9", "b.md", "v2", "An uncommitted pelican."},
	} {
		_, err = db.Exec(`INSERT INTO records VALUES ('c', ?, ?, 0, ?, 1700000000, ?, NULL, ?)`, r.id, r.source, r.version, r.text, vec)
		must(t, err)
	}
	_, err = db.Exec(`INSERT INTO versions VALUES ('c', 'a.md', 'v1', 1, '', 1700000000), ('c', 'b.md', 'v1', 1, '', 1700000000)`)
	must(t, err)
}

// TestMigratesToTheFullTextIndex: a database written before the full-text
// index exists is migrated at open: its chunks are indexed, the new writes
// are indexed with them, and the vectors and commit records are untouched.
func TestMigratesToTheFullTextIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeV1(t, dir)

	s := open(t, dir, "c")
	lexical := func(q string) []string {
		t.Helper()
		hits, err := s.LexicalQuery(ctx, q, 10, nil)
		must(t, err)
		var ids []string
		for _, h := range hits {
			ids = append(ids, h.ID)
		}
		return ids
	}
	if got := lexical("pelican harbour"); !slices.Equal(got, []string{"a0", "b0"}) {
		t.Fatalf("after migration: %v, want [a0 b0] (b9 is not committed)", got)
	}
	hits, err := s.Query(ctx, []float32{0, 0.5}, 5, nil)
	must(t, err)
	if len(hits) != 3 {
		t.Fatalf("vector query after migration: %d hits, want the 3 chunks", len(hits))
	}
	// New chunks and deletions reach the index.
	must(t, s.Upsert(ctx, []vectorstore.Record{{ID: "c0", Source: "c.md", Text: "Cormorants dry their wings.", Embedding: []float32{1, 0}, Version: "v1", Written: 1}}))
	must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: "c.md", Version: "v1", Chunks: 1}))
	must(t, s.Delete(ctx, []string{"a0"}))
	if got := lexical("cormorant pelicans"); !slices.Equal(got, []string{"c0"}) {
		t.Fatalf("after writes: %v, want [c0]", got)
	}
	must(t, s.Close())

	// Reopening does not migrate again, and the index persisted.
	s = open(t, dir, "c")
	defer s.Close()
	if got := lexical("herons cormorants"); len(got) != 2 {
		t.Fatalf("after reopen: %v", got)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName)+"?mode=ro")
	must(t, err)
	defer db.Close()
	var v string
	must(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&v))
	if v != "2" {
		t.Fatalf("schema version %s, want 2", v)
	}
	// The index matches its table (FTS5's own consistency check).
	_, err = db.Exec(`INSERT INTO records_fts (records_fts) VALUES ('integrity-check')`)
	if err != nil {
		t.Fatalf("FTS5 integrity-check: %v", err)
	}
}

// TestFailedMigrationLeavesVersion1: the migration is one transaction; when
// it cannot finish (here: a table in the way of its full-text index), the
// database is left exactly as it was, and the open fails.
func TestFailedMigrationLeavesVersion1(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
	must(t, err)
	_, err = db.Exec(`CREATE TABLE records_fts (x)`) // the migration's virtual table cannot be created
	must(t, err)
	must(t, db.Close())

	if s, err := sqlitestore.Open(dir, "c"); err == nil {
		s.Close()
		t.Fatal("open succeeded with a migration that cannot run")
	}
	db, err = sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
	must(t, err)
	defer db.Close()
	var v string
	var n int
	must(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&v))
	must(t, db.QueryRow(`SELECT count(*) FROM records`).Scan(&n))
	var cols int
	must(t, db.QueryRow(`SELECT count(*) FROM pragma_table_info('records') WHERE name = 'rid'`).Scan(&cols))
	if v != "1" || n != 3 || cols != 0 {
		t.Fatalf("after a failed migration: schema %s, %d records, rid column %d; want 1, 3, 0", v, n, cols)
	}
}
