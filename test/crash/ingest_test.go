package crash_test

import (
	"context"
	"fmt"
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
	"github.com/ragops/ragops/internal/rag/chunk"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

// ingestKills is the number of SIGKILLs of the indexer mid-run.
const ingestKills = 6

// TestIngestKilledMidRun kills the real "ragserver ingest" with SIGKILL while
// it indexes a directory source, again and again on one DATA_DIR, with a file
// changed and one removed between kills; then runs it to the end and checks
// that every file is in the index exactly once, at its last content, whole
// (the committed chunks are the file's chunks, none missing, none twice),
// that the removed file is gone, and that one more run embeds nothing.
func TestIngestKilledMidRun(t *testing.T) {
	start := time.Now()
	bin := filepath.Join(t.TempDir(), "ragserver")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ragops/ragops/cmd/ragserver").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fake := fakeopenai.New(fakeopenai.Options{Latency: 15 * time.Millisecond})
	model := httptest.NewServer(fake)
	defer model.Close()

	dataDir, mountDir, logDir := t.TempDir(), t.TempDir(), t.TempDir()
	volume := filepath.Join(mountDir, "drop", "volume")
	files := map[string]string{}
	put := func(name, text string) {
		t.Helper()
		p := filepath.Join(volume, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = text
	}
	for i := range 240 {
		var b strings.Builder
		for j := range 12 {
			fmt.Fprintf(&b, "File %d, paragraph %d: the ledger entry %d balances against account %d. ", i, j, i*100+j, (i*7+j)%97)
		}
		put(fmt.Sprintf("dir%d/file-%03d.md", i%5, i), b.String())
	}
	const model1 = "fake-embed-crash"
	spec := `{"sources":[{"name":"drop","pvc":{"claimName":"drop"}}]}`
	report := filepath.Join(t.TempDir(), "termination-log")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"DATA_DIR=" + dataDir, "OPENAI_BASE_URL=" + model.URL + "/v1", "EMBEDDING_MODEL=" + model1, "LLM_MODEL=local",
		"CHUNK_SIZE=" + strconv.Itoa(chunkSize), "CHUNK_OVERLAP=" + strconv.Itoa(chunkOverlap), "EMBED_BATCH_SIZE=8",
		contract.EnvSources + "=" + spec, contract.EnvSourcesMountDir + "=" + mountDir, contract.EnvIndexReportPath + "=" + report,
	}
	run := func(round int, kill bool) (contract.IndexReport, bool) {
		t.Helper()
		var killAt func(before int) int
		if kill {
			// Kill once the run is well under way: some batches embedded,
			// at a point that differs from round to round.
			killAt = func(before int) int { return before + 3 + int(time.Now().UnixNano()%17) }
		}
		return jobRound[contract.IndexReport](t, fake, bin, contract.IndexerCommand, env, logDir, report, round, killAt)
	}

	killed := 0
	for k := range ingestKills {
		if _, ok := run(k, true); ok {
			killed++
		}
		switch k {
		case 2:
			put("dir0/file-000.md", "Replaced between two kills: the new content of file zero.")
		case 3:
			if err := os.Remove(filepath.Join(volume, "dir1/file-001.md")); err != nil {
				t.Fatal(err)
			}
			delete(files, "dir1/file-001.md")
		}
	}
	if killed < ingestKills/2 {
		t.Fatalf("only %d of %d runs were killed mid-run: the test proves little", killed, ingestKills)
	}
	rep, _ := run(ingestKills, false)
	if len(rep.Sources) != 1 || rep.Sources[0].Indexed != int64(len(files)) || rep.Sources[0].Error != "" || rep.Documents != int64(len(files)) {
		t.Fatalf("final run report %+v, want %d files indexed", rep, len(files))
	}
	requests := fake.Stats().EmbeddingRequests
	if rep, _ = run(ingestKills+1, false); rep.Documents != int64(len(files)) {
		t.Fatalf("re-run report %+v", rep)
	}
	if n := fake.Stats().EmbeddingRequests - requests; n != 0 {
		t.Fatalf("a re-run after completion made %d embedding requests", n)
	}

	// The index, read from the store itself.
	store, err := sqlitestore.Open(dataDir, ragserver.CollectionName("ragops", model1))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	committed := map[string]vectorstore.SourceVersion{}
	err = store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			if _, dup := committed[v.Source]; dup {
				t.Errorf("source %s committed twice", v.Source)
			}
			committed[v.Source] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	visible := map[string]map[int]string{}
	err = store.Scan(ctx, nil, false, func(page []vectorstore.Record) error {
		for _, r := range page {
			if v, ok := committed[r.Source]; ok && v.Version == r.Version {
				if visible[r.Source] == nil {
					visible[r.Source] = map[int]string{}
				}
				if _, dup := visible[r.Source][r.Chunk]; dup {
					t.Errorf("%s: chunk %d visible twice", r.Source, r.Chunk)
				}
				visible[r.Source][r.Chunk] = r.Text
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) != len(files) {
		t.Errorf("%d documents committed, want %d", len(committed), len(files))
	}
	for name, text := range files {
		src := "drop/" + name
		want := chunk.Split(text, chunkSize, chunkOverlap)
		v := committed[src]
		got := make([]string, len(visible[src]))
		for i, txt := range visible[src] {
			if i < len(got) {
				got[i] = txt
			}
		}
		if v.Chunks != len(want) || !slices.Equal(got, want) {
			t.Errorf("%s: %d chunks committed, %d visible, want %d matching the file", src, v.Chunks, len(visible[src]), len(want))
		}
	}
	if _, ok := committed["drop/dir1/file-001.md"]; ok {
		t.Error("the removed file is still in the index")
	}
	t.Logf("%d kills mid-run, then a complete run: %d documents whole, %v", killed, len(files), time.Since(start).Round(time.Millisecond))
}
