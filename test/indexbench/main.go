// Command indexbench is the indexer benchmark (make bench-index): it indexes
// a corpus of real text, the text files of the Go distribution ($(go env
// GOROOT): its .go, .s, .c, .h, .md, .txt and .html files, src first, in
// lexical order until the size is reached, each written as <path>.txt), with the
// real "ragserver ingest" binary into a real Chroma, embeddings from the
// in-repo fake model server. For each corpus size it reports throughput
// (MB/s, documents/s), the indexer's peak RSS (getrusage of the child), and
// a re-sync with nothing changed (its time and its embedding calls, which
// must be 0). Baselines measured in the same run: reading the corpus alone
// through the same source code (sources.Walk), and the smallest corpus's
// peak RSS (memory must not grow with the corpus).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/sources"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

const mib = 1 << 20

var textExts = map[string]bool{".go": true, ".s": true, ".c": true, ".h": true, ".md": true, ".txt": true, ".html": true}

func main() {
	goroot := flag.String("goroot", os.Getenv("GOROOT"), "the Go distribution whose text files make the corpus ($(go env GOROOT))")
	sizes := flag.String("sizes", "25,100", "corpus sizes in MiB, comma-separated; the first is the memory baseline")
	work := flag.String("dir", "", "working directory (default: a temporary one, removed at the end)")
	flag.Parse()
	if err := run(*goroot, *sizes, *work); err != nil {
		fmt.Fprintln(os.Stderr, "indexbench:", err)
		os.Exit(1)
	}
}

type result struct {
	size                 int
	files                int
	bytes                int64
	digest               string
	readOnly             time.Duration
	index                time.Duration
	rssKiB               int64
	chunks, requests     int64
	resync               time.Duration
	resyncRequests       int64
	resyncRSSKiB         int64
	documents, docChunks int64
}

func run(goroot, sizeList, work string) error {
	if goroot == "" {
		return errors.New("-goroot is required (make bench-index passes $(go env GOROOT))")
	}
	if work == "" {
		d, err := os.MkdirTemp("", "indexbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	bin := filepath.Join(work, "ragserver")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ragops/ragops/cmd/ragserver").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	chroma, err := chromaserver.New(filepath.Join(work, "chroma"))
	if err != nil {
		return err
	}
	defer chroma.Stop()
	fake := fakeopenai.New(fakeopenai.Options{})
	model := httptest.NewServer(fake)
	defer model.Close()

	var results []result
	for i, s := range strings.Split(sizeList, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive number of MiB", s)
		}
		mount := filepath.Join(work, fmt.Sprintf("mount-%d", i))
		volume := filepath.Join(mount, "corpus", sources.VolumeDir)
		r := result{size: size}
		if r.files, r.bytes, r.digest, err = makeCorpus(goroot, volume, int64(size)*mib); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "corpus %d MiB: %d files, %d bytes, sha256 %s\n", size, r.files, r.bytes, r.digest)

		// Baseline: the same source code reading the corpus, no indexing.
		t0 := time.Now()
		n := 0
		_, err = sources.Walk(context.Background(), sources.Dir{Root: volume}, sources.Filter{}, rag.MaxFileBytes, sources.Visitor{
			File: func(string, []byte) error { n++; return nil }, Skip: func(string, string) {},
		})
		if err != nil {
			return fmt.Errorf("read-only walk: %w", err)
		}
		if n != r.files {
			return fmt.Errorf("read-only walk: %d files of %d", n, r.files)
		}
		r.readOnly = time.Since(t0)

		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
			"CHROMA_URL=" + chroma.URL(), "CHROMA_COLLECTION=bench" + strconv.Itoa(i),
			"OPENAI_BASE_URL=" + model.URL + "/v1", "EMBEDDING_MODEL=fake-embed-bench", "LLM_MODEL=local", "LOG_LEVEL=warn",
			contract.EnvSources + `={"sources":[{"name":"corpus","pvc":{"claimName":"corpus"}}]}`,
			contract.EnvSourcesMountDir + "=" + mount, contract.EnvIndexReportPath + "=" + filepath.Join(mount, "report.json"),
		}
		before := fake.Stats()
		rep, d, rss, err := ingest(bin, env, filepath.Join(mount, "report.json"))
		if err != nil {
			return err
		}
		after := fake.Stats()
		r.index, r.rssKiB = d, rss
		r.requests, r.chunks = int64(after.EmbeddingRequests-before.EmbeddingRequests), int64(after.EmbeddedInputs-before.EmbeddedInputs)
		r.documents, r.docChunks = rep.Documents, rep.Chunks
		if rep.Documents != int64(r.files) || rep.Sources[0].Skipped != 0 {
			return fmt.Errorf("indexed %d documents of %d (report %+v)", rep.Documents, r.files, rep.Sources[0])
		}

		before = fake.Stats()
		if _, r.resync, r.resyncRSSKiB, err = ingest(bin, env, filepath.Join(mount, "report.json")); err != nil {
			return err
		}
		r.resyncRequests = int64(fake.Stats().EmbeddingRequests - before.EmbeddingRequests)
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "  indexed in %v (peak RSS %d MiB), re-sync in %v with %d embedding requests\n",
			r.index.Round(time.Millisecond), r.rssKiB/1024, r.resync.Round(time.Millisecond), r.resyncRequests)
		_ = os.RemoveAll(mount)
	}

	fmt.Printf("\nIndexer benchmark: ragserver ingest, PVC source, real Chroma, fake embeddings (dim 256); corpus = text files of %s\n\n", goroot)
	fmt.Println("| corpus | files | chunks | index time | MB/s | docs/s | read-only MB/s (baseline) | indexer peak RSS | RSS vs first | re-sync time | re-sync / index | re-sync embedding calls |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	base := results[0]
	for _, r := range results {
		mb := float64(r.bytes) / 1e6
		fmt.Printf("| %d MiB | %d | %d | %.1f s | %.2f | %.0f | %.1f | %d MiB | %.2fx | %.1f s | %.3f | %d |\n",
			r.size, r.files, r.docChunks, r.index.Seconds(), mb/r.index.Seconds(), float64(r.files)/r.index.Seconds(),
			mb/r.readOnly.Seconds(), r.rssKiB/1024, float64(r.rssKiB)/float64(base.rssKiB),
			r.resync.Seconds(), r.resync.Seconds()/r.index.Seconds(), r.resyncRequests)
	}
	for _, r := range results {
		if r.resyncRequests != 0 {
			return fmt.Errorf("the re-sync of the %d MiB corpus made %d embedding requests, want 0", r.size, r.resyncRequests)
		}
	}
	return nil
}

// ingest runs the indexer and returns its report, wall time and peak RSS.
func ingest(bin string, env []string, reportPath string) (contract.IndexReport, time.Duration, int64, error) {
	var rep contract.IndexReport
	cmd := exec.Command(bin, contract.IndexerCommand)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return rep, d, 0, fmt.Errorf("ragserver ingest: %w\n%s", err, out.String())
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	b, err := os.ReadFile(reportPath)
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err == nil && (len(rep.Sources) != 1 || rep.Sources[0].Error != "") {
		err = fmt.Errorf("report %s", b)
	}
	return rep, d, rss, err
}

// makeCorpus copies the text files of goroot (src, then test, doc, misc, lib
// and api), each tree in lexical order, until limit
// bytes, as <path>.txt under dir. It returns the file count, the bytes and a
// digest of the corpus (names and contents).
func makeCorpus(goroot, dir string, limit int64) (int, int64, string, error) {
	var n int
	var total int64
	h := sha256.New()
	errFull := errors.New("full")
	// src first (source files, documents of a few KB each), then the rest.
	var err error
	for _, top := range []string{"src", "test", "doc", "misc", "lib", "api"} {
		if err = copyTree(goroot, filepath.Join(goroot, top), dir, limit, &n, &total, h, errFull); err != nil {
			break
		}
	}
	if err == nil {
		return n, total, "", fmt.Errorf("%s holds only %d bytes of text, less than %d", goroot, total, limit)
	}
	if !errors.Is(err, errFull) {
		return n, total, "", err
	}
	return n, total, hex.EncodeToString(h.Sum(nil)[:8]), nil
}

func copyTree(goroot, tree, dir string, limit int64, n *int, total *int64, h io.Writer, errFull error) error {
	return filepath.WalkDir(tree, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || !textExts[filepath.Ext(p)] || strings.HasPrefix(de.Name(), ".") {
			return nil
		}
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > rag.MaxFileBytes {
			return nil
		}
		rel, _ := filepath.Rel(goroot, p)
		if strings.Contains(rel, string(filepath.Separator)+".") || strings.HasPrefix(rel, ".") {
			return nil
		}
		dst := filepath.Join(dir, rel+".txt")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00", rel)
		m, err := io.Copy(io.MultiWriter(out, h), in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		*n++
		*total += m
		if *total >= limit {
			return errFull
		}
		return nil
	})
}
