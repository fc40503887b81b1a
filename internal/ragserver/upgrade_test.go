package ragserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/philippgille/chromem-go"

	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/vectorstore"
)

// writeChromem writes DATA_DIR/chromem the way the embedded store of the
// previous release (chromem-go) did: the records' collection, with source,
// chunk and origin in the metadata, and a "<name>.meta" companion holding the
// dimension.
func writeChromem(t *testing.T, dataDir string, docs map[string][]string) {
	t.Helper()
	ctx := context.Background()
	emb := llm.Local{}
	name := ragserver.CollectionName("ragops", emb.Model())
	noEmbed := func(context.Context, string) ([]float32, error) { return nil, errors.New("no") }
	db, err := chromem.NewPersistentDB(filepath.Join(dataDir, "chromem"), false)
	if err != nil {
		t.Fatal(err)
	}
	var cds []chromem.Document
	dim := 0
	for src, chunks := range docs {
		vecs, _, err := emb.Embed(ctx, chunks)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range chunks {
			dim = len(vecs[i])
			cds = append(cds, chromem.Document{ID: src + "-" + strconv.Itoa(i), Content: text, Embedding: vecs[i],
				Metadata: map[string]string{vectorstore.KeySource: src, vectorstore.KeyChunk: strconv.Itoa(i), "origin": "docs_dir"}})
		}
	}
	meta, err := db.GetOrCreateCollection(name+".meta", nil, noEmbed)
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.AddDocument(ctx, chromem.Document{ID: "dimension", Content: strconv.Itoa(dim), Embedding: []float32{1}}); err != nil {
		t.Fatal(err)
	}
	coll, err := db.GetOrCreateCollection(name, map[string]string{"hnsw:space": "cosine"}, noEmbed)
	if err != nil {
		t.Fatal(err)
	}
	if err := coll.AddDocuments(ctx, cds, 2); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeFromTheChromemStore(t *testing.T) {
	dataDir := t.TempDir()
	writeChromem(t, dataDir, map[string][]string{
		"old-memo.md": {"The treasury team hedged sixty percent of floating-rate exposure.", "Hedges roll quarterly."},
		"old-risk.md": {"Credit risk is concentrated in commercial real estate."},
	})
	ts := start(t, map[string]string{"DATA_DIR": dataDir})
	ts.waitReady(t)
	r := ts.get(t, "/documents")
	got := map[string]float64{}
	for _, d := range r.list("documents") {
		m := d.(map[string]any)
		got[m["source"].(string)] = m["chunks"].(float64)
	}
	if r.Status != 200 || len(got) != 2 || got["old-memo.md"] != 2 || got["old-risk.md"] != 1 {
		t.Fatalf("documents after the upgrade: %s", r)
	}
	r = ts.post(t, "/retrieve", map[string]any{"question": "floating-rate exposure hedged", "top_k": 1})
	if r.Status != 200 || len(r.list("sources")) != 1 || r.list("sources")[0].(map[string]any)["source"] != "old-memo.md" {
		t.Fatalf("retrieve after the upgrade: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "chromem.migrated")); err != nil {
		t.Fatalf("the old store was not set aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "chromem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old store is still in place: %v", err)
	}
	// The imported documents are ordinary ones now: deletable, and still
	// there after a restart.
	if r := do(t, mustReq(t, "DELETE", ts.URL+"/documents/old-risk.md", nil, "")); r.Status != 200 {
		t.Fatalf("delete: %s", r)
	}
	ts.stop(t)
	ts = start(t, map[string]string{"DATA_DIR": dataDir})
	ts.waitReady(t)
	if r := ts.get(t, "/documents"); len(r.list("documents")) != 1 {
		t.Fatalf("documents after a restart: %s", r)
	}
}

func TestUnreadableChromemStoreStopsTheStart(t *testing.T) {
	dataDir := t.TempDir()
	writeChromem(t, dataDir, map[string][]string{"a.md": {"alpha"}})
	// What a kill -9 of the old store during a write left: an empty record.
	dirs, err := os.ReadDir(filepath.Join(dataDir, "chromem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "chromem", dirs[0].Name(), "0123abcd.gob"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATA_DIR": dataDir, "PORT": strconv.Itoa(freePort(t))}
	err = ragserver.Run(context.Background(), nil, func(k string) string { return env[k] }, &syncBuffer{})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if !strings.HasPrefix(msg, "DATA_DIR: ") || !strings.Contains(msg, filepath.Join(dataDir, "chromem")) || !strings.Contains(msg, "move it") ||
		strings.Contains(msg, "\n") {
		t.Fatalf("Run = %v; want one line naming the old store and the choice", err)
	}
	t.Log(msg)
}
