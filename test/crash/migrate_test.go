package crash_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

// migrateKills is the number of SIGKILLs of the migrator mid-copy.
const migrateKills = 5

// migrateDocs is the number of documents of the API in the previous
// collection.
const migrateDocs = 500

// visibleDocs reads a store's committed documents: source to its chunk
// texts in order (a chunk missing or doubled fails the test) and metadata.
func visibleDocs(t *testing.T, store vectorstore.Store) (map[string][]string, map[string]map[string]string) {
	t.Helper()
	ctx := context.Background()
	committed := map[string]vectorstore.SourceVersion{}
	if err := store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			if _, dup := committed[v.Source]; dup {
				t.Errorf("source %s committed twice", v.Source)
			}
			committed[v.Source] = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	texts := map[string]map[int]string{}
	mds := map[string]map[string]string{}
	if err := store.Scan(ctx, nil, false, func(page []vectorstore.Record) error {
		for _, r := range page {
			if v, ok := committed[r.Source]; ok && v.Version == r.Version {
				if texts[r.Source] == nil {
					texts[r.Source] = map[int]string{}
				}
				if _, dup := texts[r.Source][r.Chunk]; dup {
					t.Errorf("%s: chunk %d visible twice", r.Source, r.Chunk)
				}
				texts[r.Source][r.Chunk] = r.Text
				mds[r.Source] = r.Metadata
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for src, v := range committed {
		got := make([]string, v.Chunks)
		for i := range v.Chunks {
			txt, ok := texts[src][i]
			if !ok {
				t.Errorf("%s: chunk %d of %d missing", src, i, v.Chunks)
			}
			got[i] = txt
		}
		if len(texts[src]) != v.Chunks {
			t.Errorf("%s: %d visible chunks, %d committed", src, len(texts[src]), v.Chunks)
		}
		out[src] = got
	}
	return out, mds
}

// TestMigrateKilledMidCopy kills the real "ragserver migrate" (phase copy)
// with SIGKILL again and again while it copies 500 documents of the API from
// model A's collection to model B's, on the embedded store and on a real
// Chroma, with the old server's writes landing in A between kills (a
// document changed, one deleted, one added); then runs it to the end and
// checks that B holds exactly A's documents, each once, whole, with A's
// chunk texts in order and its metadata, and that one more run embeds
// nothing.
func TestMigrateKilledMidCopy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ragserver")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ragops/ragops/cmd/ragserver").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, kind := range []string{"embedded", "chroma"} {
		t.Run(kind, func(t *testing.T) { migrateKilled(t, bin, kind) })
	}
}

func migrateKilled(t *testing.T, bin, kind string) {
	start := time.Now()
	ctx := context.Background()
	fake := fakeopenai.New(fakeopenai.Options{Latency: 15 * time.Millisecond})
	model := httptest.NewServer(fake)
	defer model.Close()
	const modelA, modelB, prefix = "fake-embed-old", "fake-embed-new", "crashmig"
	dataDir, logDir := t.TempDir(), t.TempDir()
	chromaURL := ""
	if kind == "chroma" {
		chromaURL = chromaserver.Start(t, "").URL()
	}
	open := func(m string) vectorstore.Store {
		t.Helper()
		name := ragserver.CollectionName(prefix, m)
		var s vectorstore.Store
		var err error
		if kind == "chroma" {
			s, err = chromastore.New(chromastore.Options{URL: chromaURL, Collection: name})
		} else {
			s, err = sqlitestore.Open(dataDir, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// writeA plays the old server: it writes documents of the API to A.
	writeA := func(docs []rag.Document, del ...string) {
		t.Helper()
		store := open(modelA)
		defer store.Close()
		svc := rag.New(store, llm.NewOpenAI(llm.Config{BaseURL: model.URL + "/v1", Model: modelA}), nil,
			rag.Options{ChunkSize: chunkSize, ChunkOverlap: chunkOverlap, EmbedBatch: 16})
		if len(docs) > 0 {
			if _, err := svc.Ingest(ctx, docs); err != nil {
				t.Fatal(err)
			}
		}
		for _, src := range del {
			if _, err := svc.DeleteSource(ctx, src); err != nil {
				t.Fatal(err)
			}
		}
	}
	doc := func(i int, tag string) rag.Document {
		var b strings.Builder
		for j := range 10 {
			fmt.Fprintf(&b, "Note %d (%s), paragraph %d: invoice %d was reconciled with purchase order %d. ", i, tag, j, i*100+j, (i*13+j)%101)
		}
		return rag.Document{Source: fmt.Sprintf("notes/note-%03d.md", i), Text: b.String(), Metadata: map[string]string{"author": "clerk-" + strconv.Itoa(i%7)}}
	}
	var docs []rag.Document
	for i := range migrateDocs {
		docs = append(docs, doc(i, "first"))
	}
	for batch := range slices.Chunk(docs, 100) {
		writeA(batch)
	}

	report := filepath.Join(t.TempDir(), "termination-log")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"DATA_DIR=" + dataDir, "CHROMA_URL=" + chromaURL, "CHROMA_COLLECTION=" + prefix,
		"OPENAI_BASE_URL=" + model.URL + "/v1", "EMBEDDING_MODEL=" + modelB, "LLM_MODEL=local",
		"CHUNK_SIZE=" + strconv.Itoa(chunkSize), "CHUNK_OVERLAP=" + strconv.Itoa(chunkOverlap), "EMBED_BATCH_SIZE=8",
		contract.EnvMigrateFromModel + "=" + modelA, contract.EnvMigratePhase + "=" + contract.MigratePhaseCopy,
		contract.EnvIndexReportPath + "=" + report,
	}
	run := func(round int, kill bool) (contract.MigrationReport, bool) {
		t.Helper()
		var killAt func(before int) int
		if kill {
			// Kill after 20 to 95 requests, later in each round (of
			// about 315 of 8 chunks in all; a commit every 64 documents,
			// about 40 requests): the kills land before, between and
			// after commits, and leave work for the final run.
			killAt = func(before int) int { return before + 20 + 15*round + int(time.Now().UnixNano()%15) }
		}
		return jobRound[contract.MigrationReport](t, fake, bin, contract.MigrateCommand, env, logDir, report, round, killAt)
	}

	killed := 0
	for k := range migrateKills {
		if _, ok := run(k, true); ok {
			killed++
		}
		switch k {
		case 1:
			writeA([]rag.Document{doc(0, "changed between kills"), doc(500, "added between kills")})
		case 2:
			writeA(nil, "notes/note-001.md")
		}
	}
	if killed < migrateKills/2 {
		t.Fatalf("only %d of %d runs were killed mid-copy: the test proves little", killed, migrateKills)
	}
	rep, _ := run(migrateKills, false)
	if rep.Unchanged == 0 || rep.Documents+rep.Unchanged != migrateDocs {
		t.Fatalf("final run %+v: the killed runs committed nothing, or the copy is incomplete", rep)
	}
	requests := fake.Stats().EmbeddingRequests
	if rep2, _ := run(migrateKills+1, false); rep2.Documents != 0 || rep2.Unchanged != migrateDocs {
		t.Fatalf("re-run report %+v, want %d unchanged", rep2, migrateDocs)
	}
	if n := fake.Stats().EmbeddingRequests - requests; n != 0 {
		t.Fatalf("a re-run after completion made %d embedding requests", n)
	}

	a, b := open(modelA), open(modelB)
	defer a.Close()
	defer b.Close()
	inA, mdA := visibleDocs(t, a)
	inB, mdB := visibleDocs(t, b)
	if len(inA) != migrateDocs || len(inB) != len(inA) {
		t.Fatalf("A holds %d documents, B %d; want %d each", len(inA), len(inB), migrateDocs)
	}
	for src, want := range inA {
		if !slices.Equal(inB[src], want) {
			t.Errorf("%s: B's chunks differ from A's", src)
		}
		if !maps.Equal(mdB[src], mdA[src]) {
			t.Errorf("%s: metadata %v in B, %v in A", src, mdB[src], mdA[src])
		}
	}
	if _, ok := inB["notes/note-001.md"]; ok {
		t.Error("the document deleted from A between kills is still in B")
	}
	if !strings.Contains(strings.Join(inB["notes/note-000.md"], ""), "changed between kills") {
		t.Error("B holds the old content of the document changed between kills")
	}
	t.Logf("%s: %d kills mid-copy, then a complete run (%+v): %d documents whole, %v", kind, killed, rep, len(inB), time.Since(start).Round(time.Millisecond))
}
