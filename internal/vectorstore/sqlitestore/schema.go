package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// schemaVersion is the version of the schema this code writes; migrations[i]
// takes a database from version i to i+1, in one transaction.
const schemaVersion = 2

var migrations = []string{
	`CREATE TABLE records (
		collection TEXT NOT NULL,
		id         TEXT NOT NULL,
		source     TEXT NOT NULL,
		chunk      INTEGER NOT NULL,
		version    TEXT NOT NULL,
		written    INTEGER NOT NULL,
		text       TEXT NOT NULL,
		metadata   TEXT,          -- user metadata, a JSON object of strings; NULL when none
		embedding  BLOB NOT NULL, -- little-endian float32s
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
	);`,
	// 2: the full-text index. records gets an explicit rowid (rid) so that
	// the index, which refers to rows by rowid, survives a VACUUM; the
	// triggers keep the index in the same transactions as the chunks. The
	// whole migration is one transaction: a crash leaves version 1 intact.
	`CREATE TABLE records2 (
		rid        INTEGER PRIMARY KEY,
		collection TEXT NOT NULL,
		id         TEXT NOT NULL,
		source     TEXT NOT NULL,
		chunk      INTEGER NOT NULL,
		version    TEXT NOT NULL,
		written    INTEGER NOT NULL,
		text       TEXT NOT NULL,
		metadata   TEXT,
		embedding  BLOB NOT NULL,
		UNIQUE (collection, id)
	);
	INSERT INTO records2 (collection, id, source, chunk, version, written, text, metadata, embedding)
		SELECT collection, id, source, chunk, version, written, text, metadata, embedding FROM records ORDER BY rowid;
	DROP TABLE records;
	ALTER TABLE records2 RENAME TO records;
	CREATE INDEX records_source ON records (collection, source, version);
	CREATE VIRTUAL TABLE records_fts USING fts5(text, content='records', content_rowid='rid', tokenize='` + ftsTokenizer + `');
	INSERT INTO records_fts (records_fts) VALUES ('rebuild');
	CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
		INSERT INTO records_fts (rowid, text) VALUES (new.rid, new.text);
	END;
	CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
		INSERT INTO records_fts (records_fts, rowid, text) VALUES ('delete', old.rid, old.text);
	END;
	CREATE TRIGGER records_fts_update AFTER UPDATE OF text ON records BEGIN
		INSERT INTO records_fts (records_fts, rowid, text) VALUES ('delete', old.rid, old.text);
		INSERT INTO records_fts (rowid, text) VALUES (new.rid, new.text);
	END;`,
}

// ftsTokenizer is the FTS5 tokenizer of the full-text index, chosen on
// make eval (README): Unicode word boundaries, case and diacritics folded,
// English words reduced to their Porter stem.
const ftsTokenizer = "porter unicode61 remove_diacritics 2"

// Keys of the meta table.
const (
	metaSchema = "schema_version"
	metaImport = "chromem_import" // the import of the old chromem-go directory
)

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// checkHeader refuses a file that is not a SQLite database before SQLite
// opens it. A missing or zero-length file is a new, empty database.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a database file", path)
	}
	if fi.Size() == 0 {
		return nil
	}
	hdr := make([]byte, 100) // the database header
	if _, err := io.ReadFull(f, hdr); err != nil {
		return corrupt(path, fmt.Sprintf("%d bytes, shorter than a database header", fi.Size()))
	}
	if !bytes.HasPrefix(hdr, sqliteMagic) {
		return corrupt(path, "not a SQLite database (its first bytes are not the SQLite header)")
	}
	return nil
}

// quickCheck runs PRAGMA quick_check: every page of the file is read and the
// structure of every b-tree checked (not that indexes match their tables).
func (f *file) quickCheck(ctx context.Context) error {
	rows, err := f.db.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return f.openErr(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return f.openErr(err)
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "*** in database main ***"))
		if line != "ok" {
			problems = append(problems, strings.ReplaceAll(line, "\n", "; "))
		}
	}
	if err := rows.Err(); err != nil {
		return f.openErr(err)
	}
	if len(problems) > 0 {
		return corrupt(f.path, "PRAGMA quick_check: "+strings.Join(problems, "; "))
	}
	return nil
}

// openErr wraps an error met while opening f (nil stays nil).
func (f *file) openErr(err error) error {
	if err == nil {
		return nil
	}
	if isCorrupt(err) {
		return corrupt(f.path, err)
	}
	return fmt.Errorf("open %s: %w", f.path, err)
}

// migrate brings the schema to schemaVersion, in one transaction.
func (f *file) migrate(ctx context.Context) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return f.openErr(err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`); err != nil {
		return f.openErr(err)
	}
	v, err := metaGet(ctx, tx, metaSchema)
	if err != nil {
		return f.openErr(err)
	}
	have := 0
	if v != "" {
		if have, err = strconv.Atoi(v); err != nil {
			return corrupt(f.path, fmt.Sprintf("schema version %q", v))
		}
	}
	if have > schemaVersion {
		return fmt.Errorf("open %s: it was written by a newer ragserver (schema version %d; this one knows up to %d): run that version, or move the file away and re-ingest",
			f.path, have, schemaVersion)
	}
	if have == schemaVersion {
		return nil
	}
	for _, m := range migrations[have:] {
		if _, err := tx.ExecContext(ctx, m); err != nil {
			return f.openErr(fmt.Errorf("migrate the schema: %w", err))
		}
	}
	if err := metaSet(ctx, tx, metaSchema, strconv.Itoa(schemaVersion)); err != nil {
		return f.openErr(err)
	}
	return f.openErr(tx.Commit())
}

func metaGet(ctx context.Context, tx *sql.Tx, key string) (string, error) {
	var v string
	err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func metaSet(ctx context.Context, tx *sql.Tx, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
