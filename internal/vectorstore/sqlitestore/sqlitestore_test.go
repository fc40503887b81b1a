package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/philippgille/chromem-go"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
	"github.com/ragops/ragops/internal/vectorstore/storetest"
)

func TestConformance(t *testing.T) {
	// Every collection of the suite lives in one file, as the collections of
	// several embedding models do.
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string) vectorstore.Store {
		s, err := sqlitestore.Open(dir, t.Name()+"-"+name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func open(t *testing.T, dir, name string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func scanAll(t *testing.T, s vectorstore.Store) []vectorstore.Record {
	t.Helper()
	var out []vectorstore.Record
	must(t, s.Scan(context.Background(), nil, true, func(p []vectorstore.Record) error { out = append(out, p...); return nil }))
	return out
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir, "docs")
	must(t, s.Upsert(ctx, []vectorstore.Record{
		{ID: "x", Source: "x.md", Chunk: 2, Text: "kept", Embedding: []float32{0, 3}, Version: "v1", Written: 5, Metadata: map[string]string{"team": "a"}},
		{ID: "y", Source: "y.md", Text: "deleted", Embedding: []float32{1, 0}, Version: "v1"},
	}))
	must(t, s.Commit(ctx, vectorstore.SourceVersion{Source: "x.md", Version: "v1", Chunks: 1, Origin: "docs_dir", Updated: 7}))
	must(t, s.Delete(ctx, []string{"y"}))
	must(t, s.Close())

	s = open(t, dir, "docs")
	defer s.Close()
	hits, err := s.Query(ctx, []float32{0, 1}, 5, nil)
	if err != nil || len(hits) != 1 || hits[0].Text != "kept" || hits[0].Chunk != 2 || hits[0].Version != "v1" || hits[0].Metadata["team"] != "a" {
		t.Fatalf("after reopen: hits %+v err %v", hits, err)
	}
	recs := scanAll(t, s)
	if len(recs) != 1 || recs[0].Written != 5 || !slices.Equal(recs[0].Embedding, []float32{0, 3}) {
		t.Fatalf("after reopen Scan = %+v, want x with its embedding as written", recs)
	}
	vs, err := s.Versions(ctx, []string{"x.md"})
	must(t, err)
	if vs["x.md"] != (vectorstore.SourceVersion{Source: "x.md", Version: "v1", Chunks: 1, Origin: "docs_dir", Updated: 7}) {
		t.Fatalf("after reopen Versions = %+v", vs)
	}
}

// filled writes a database with n records in dir and closes it.
func filled(t *testing.T, dir string, n int) {
	t.Helper()
	s := open(t, dir, "docs")
	recs := make([]vectorstore.Record, n)
	for i := range recs {
		recs[i] = vectorstore.Record{ID: fmt.Sprintf("r%05d", i), Source: "a.md", Chunk: i, Text: strings.Repeat("text ", 40),
			Embedding: []float32{float32(i), 1, 2, 3}, Version: "v1"}
	}
	must(t, s.Upsert(context.Background(), recs))
	must(t, s.Close())
}

func TestCorruptFileIsAClearError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"garbage bytes", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte(strings.Repeat("this is not a database\n", 300)), 0o600))
		}},
		{"shorter than a header", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte("SQLite"), 0o600))
		}},
		{"truncated", func(t *testing.T, path string) {
			filled(t, filepath.Dir(path), 2000)
			fi, err := os.Stat(path)
			must(t, err)
			must(t, os.Truncate(path, fi.Size()/2))
		}},
		{"damaged page", func(t *testing.T, path string) {
			filled(t, filepath.Dir(path), 2000)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			_, err = f.WriteAt([]byte(strings.Repeat("\xff", 4096)), 3*4096) // a b-tree page
			must(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, sqlitestore.FileName)
			tc.spoil(t, path)
			before, err := os.ReadFile(path)
			must(t, err)
			s, err := sqlitestore.Open(dir, "docs")
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a damaged file")
			}
			if !errors.Is(err, vectorstore.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move") ||
				strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line wrapping ErrCorrupt, naming %s and saying what to do", err, path)
			}
			t.Logf("error: %v", err)
			after, err := os.ReadFile(path)
			must(t, err)
			if !slices.Equal(before, after) {
				t.Fatal("Open changed the damaged file")
			}
			// Refused again, not reset, at the next start.
			if _, err := sqlitestore.Open(dir, "docs"); !errors.Is(err, vectorstore.ErrCorrupt) {
				t.Fatalf("second Open: %v, want ErrCorrupt again", err)
			}
		})
	}
}

func TestEmptyFilesAreAnEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	t.Run("zero-length database file", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, sqlitestore.FileName), nil, 0o600))
		s := open(t, dir, "docs")
		defer s.Close()
		must(t, s.Upsert(ctx, []vectorstore.Record{{ID: "a", Source: "a.md", Text: "t", Embedding: []float32{1, 0}, Version: "v"}}))
		if recs := scanAll(t, s); len(recs) != 1 {
			t.Fatalf("Scan = %v", recs)
		}
	})
	t.Run("stray zero-length wal", func(t *testing.T) {
		dir := t.TempDir()
		filled(t, dir, 10)
		wal := filepath.Join(dir, sqlitestore.FileName+"-wal")
		must(t, os.WriteFile(wal, nil, 0o600))
		s := open(t, dir, "docs")
		defer s.Close()
		if recs := scanAll(t, s); len(recs) != 10 {
			t.Fatalf("Scan found %d records, want the 10 written", len(recs))
		}
		must(t, s.Upsert(ctx, []vectorstore.Record{{ID: "new", Source: "b.md", Text: "t", Embedding: []float32{1, 0, 0, 0}, Version: "v"}}))
	})
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "ragops.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	defer f.Close()
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)) // as another process would
	if _, err := sqlitestore.Open(dir, "docs"); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open of a locked directory: %v", err)
	}
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	s := open(t, dir, "docs")
	// Collections of one process share the file and its lock.
	s2 := open(t, dir, "other")
	must(t, s.Close())
	must(t, s2.Ping(context.Background()))
	must(t, s2.Close())
}

var noEmbed chromem.EmbeddingFunc = func(context.Context, string) ([]float32, error) {
	return nil, errors.New("records carry their embedding")
}

type legacyDoc struct {
	id, source string
	chunk      int
	text       string
	md         map[string]string
	vec        []float32
}

// writeLegacy writes a chromem-go directory the way the old embedded store
// (internal/vectorstore/memstore) did: the records' collection, with source
// and chunk in the metadata, and a "<name>.meta" companion holding the
// dimension.
func writeLegacy(t *testing.T, dir, name string, docs []legacyDoc) {
	t.Helper()
	ctx := context.Background()
	db, err := chromem.NewPersistentDB(dir, false)
	must(t, err)
	meta, err := db.GetOrCreateCollection(name+".meta", nil, noEmbed)
	must(t, err)
	must(t, meta.AddDocument(ctx, chromem.Document{ID: "dimension", Content: strconv.Itoa(len(docs[0].vec)), Embedding: []float32{1}}))
	coll, err := db.GetOrCreateCollection(name, map[string]string{"hnsw:space": "cosine"}, noEmbed)
	must(t, err)
	var cds []chromem.Document
	for _, d := range docs {
		md := map[string]string{vectorstore.KeySource: d.source, vectorstore.KeyChunk: strconv.Itoa(d.chunk)}
		for k, v := range d.md {
			md[k] = v
		}
		cds = append(cds, chromem.Document{ID: d.id, Metadata: md, Embedding: d.vec, Content: d.text})
	}
	must(t, coll.AddDocuments(ctx, cds, 4))
}

func TestImportsTheOldStore(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	legacy := filepath.Join(dataDir, sqlitestore.LegacyDir)
	writeLegacy(t, legacy, "ragops-local", []legacyDoc{
		{"a-0", "a.md", 0, "alpha zero", map[string]string{"origin": "docs_dir"}, []float32{1, 0, 0}},
		{"a-1", "a.md", 1, "alpha one", map[string]string{"origin": "docs_dir"}, []float32{0, 1, 0}},
		{"b-0", "b b/ü.md", 0, "beta", map[string]string{"team": "x"}, []float32{0, 0, 2}},
	})
	writeLegacy(t, legacy, "ragops-other-model", []legacyDoc{{"c-0", "c.md", 0, "gamma", nil, []float32{1, 1}}})

	s := open(t, dataDir, "ragops-local")
	recs := scanAll(t, s)
	if len(recs) != 3 {
		t.Fatalf("imported %d records, want 3: %+v", len(recs), recs)
	}
	b := recs[2]
	if b.ID != "b-0" || b.Source != "b b/ü.md" || b.Chunk != 0 || b.Text != "beta" || b.Version != "" || b.Metadata["team"] != "x" ||
		len(b.Metadata) != 1 || len(b.Embedding) != 3 || b.Embedding[2] < 0.99 {
		t.Fatalf("imported record = %+v", b)
	}
	if recs[1].Chunk != 1 || recs[1].Metadata["origin"] != "docs_dir" {
		t.Fatalf("imported record = %+v, want chunk 1 with its origin", recs[1])
	}
	hits, err := s.Query(ctx, []float32{0, 1, 0}, 1, map[string]string{vectorstore.KeySource: "a.md"})
	if err != nil || len(hits) != 1 || hits[0].ID != "a-1" || hits[0].Text != "alpha one" {
		t.Fatalf("Query after import: %+v %v", hits, err)
	}
	if vs, _ := s.Versions(ctx, []string{"a.md"}); len(vs) != 0 {
		t.Fatalf("the import committed versions %v; the rag layer adopts legacy records", vs)
	}
	other := open(t, dataDir, "ragops-other-model")
	if recs := scanAll(t, other); len(recs) != 1 || recs[0].Text != "gamma" {
		t.Fatalf("other collection imported as %+v", recs)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still there after the import: %v", legacy, err)
	}
	if _, err := os.Stat(legacy + ".migrated"); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	must(t, other.Close())

	// A crash between the import's commit and the rename: the directory is
	// back (with a record added, to tell an import from a rename).
	must(t, os.Rename(legacy+".migrated", legacy))
	writeLegacy(t, legacy, "ragops-local", []legacyDoc{{"z-0", "z.md", 0, "zeta", nil, []float32{1, 0, 0}}})
	s = open(t, dataDir, "ragops-local")
	defer s.Close()
	if recs := scanAll(t, s); len(recs) != 3 {
		t.Fatalf("after the rename was redone: %d records, want the 3 of the one import", len(recs))
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s not renamed at the second start: %v", legacy, err)
	}
}

func TestUnreadableOldStoreIsAClearError(t *testing.T) {
	dataDir := t.TempDir()
	legacy := filepath.Join(dataDir, sqlitestore.LegacyDir)
	writeLegacy(t, legacy, "ragops-local", []legacyDoc{{"a-0", "a.md", 0, "alpha", nil, []float32{1, 0}}})
	// What a kill -9 during a chromem-go write leaves: a zero-length document.
	entries, err := os.ReadDir(legacy)
	must(t, err)
	var collDir string // a collection's directory (either one)
	for _, e := range entries {
		if e.IsDir() {
			collDir = filepath.Join(legacy, e.Name())
		}
	}
	must(t, os.WriteFile(filepath.Join(collDir, "deadbeef.gob"), nil, 0o600))

	_, err = sqlitestore.Open(dataDir, "ragops-local")
	if !errors.Is(err, vectorstore.ErrCorrupt) || !strings.Contains(err.Error(), legacy) || !strings.Contains(err.Error(), "move it") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open with an unreadable old store: %v; want one line wrapping ErrCorrupt naming %s and the choice", err, legacy)
	}
	t.Logf("error: %v", err)
	if _, err := os.Stat(filepath.Join(collDir, "deadbeef.gob")); err != nil {
		t.Fatalf("the old store was touched: %v", err)
	}
	// Moving it away, as the message says, starts empty.
	must(t, os.Rename(legacy, filepath.Join(t.TempDir(), "chromem-broken")))
	s := open(t, dataDir, "ragops-local")
	defer s.Close()
	if recs := scanAll(t, s); len(recs) != 0 {
		t.Fatalf("Scan = %v, want an empty store", recs)
	}
}
