// Command eval measures the retrieval quality of the RAG server (make eval,
// make eval-ci).
//
// It builds a known-item benchmark from the Go standard library's
// documentation found on the machine (each exported function, method or
// type whose documentation is long enough is a document, the documentation
// minus its first sentence; the first sentence is the query whose only
// relevant document it is), starts the real ragserver binary offline (the
// local embedder) on the embedded store and on a real Chroma server, ingests
// the documents through POST /documents, runs every query through POST
// /retrieve over HTTP, and prints Recall@1/5/10, MRR@10, nDCG@10 and the
// latency of /retrieve per store and retrieval mode, beside an Okapi BM25
// baseline over the same documents computed in the same run. With -floors it
// exits non-zero when a store and mode falls below its floor.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	queries   int
	stores    []string
	modes     []string
	floors    string
	serverEnv []string
	weights   []float64
	ragserver string
	goroot    string
	packages  []string
}

func parseArgs(args []string) (*config, error) {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	c := &config{}
	fs.IntVar(&c.queries, "queries", 1000, "number of queries (a deterministic sample; 0: all)")
	stores := fs.String("stores", "embedded,chroma", "stores to measure: embedded (DATA_DIR) and chroma (a real Chroma server from "+chromaserver.EnvBin+")")
	modes := fs.String("modes", "vector,lexical,hybrid", "retrieval modes sent as \"mode\" in /retrieve, comma-separated (\"default\": none sent, the server's default)")
	weights := fs.String("weights", "", "also fuse the vector and lexical rankings (top "+strconv.Itoa(rag.FusionDepth)+" each) on the client with each of these comma-separated lexical weights, with the server's own fusion function (rag.Fuse): the measurement behind rag.LocalLexicalWeight")
	fs.StringVar(&c.ragserver, "ragserver", "", "ragserver binary to measure (default: built from this tree)")
	serverEnv := fs.String("server-env", "", "extra environment of the ragserver, comma-separated NAME=value (e.g. HYBRID_LEXICAL_WEIGHT=0.5)")
	fs.StringVar(&c.floors, "floors", "", "JSON file of minimum MRR@10 and Recall@10 per store and mode; below one, exit 1")
	fs.StringVar(&c.goroot, "goroot", "", "Go tree whose standard library documentation is the corpus (default: go env GOROOT)")
	pkgs := fs.String("packages", "", "comma-separated standard-library import paths of the corpus (default: all)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.stores = splitList(*stores)
	for _, s := range c.stores {
		if s != "embedded" && s != "chroma" {
			return nil, fmt.Errorf("-stores: unknown store %q (embedded, chroma)", s)
		}
	}
	c.modes = splitList(*modes)
	if len(c.modes) == 0 {
		c.modes = []string{"default"}
	}
	c.serverEnv = splitList(*serverEnv)
	for _, w := range splitList(*weights) {
		x, err := strconv.ParseFloat(w, 64)
		if err != nil || x < 0 || x > 1 {
			return nil, fmt.Errorf("-weights: %q is not a number from 0 to 1", w)
		}
		c.weights = append(c.weights, x)
	}
	c.packages = splitList(*pkgs)
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// result is one row of the table.
type result struct {
	store, mode string
	scores      *Scores
	// sweep marks a row of -weights: a measurement, never guarded by floors.
	sweep bool
}

func (r result) key() string { return r.store + "/" + r.mode }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	began := time.Now()
	cfg, err := parseArgs(args)
	if err != nil {
		return err
	}
	var floors []Floor
	if cfg.floors != "" {
		if floors, err = readFloors(cfg.floors); err != nil {
			return err
		}
	}
	if cfg.goroot == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w", err)
		}
		cfg.goroot = strings.TrimSpace(string(out))
	}
	corpus, err := BuildCorpus(cfg.goroot, cfg.packages)
	if err != nil {
		return err
	}
	queries := corpus.Sample(cfg.queries)
	fmt.Fprintf(os.Stderr, "eval: %d documents, %d queries (Go %s standard library docs)\n", len(corpus.Docs), len(queries), goVersion(cfg.goroot))

	tmp, err := os.MkdirTemp("", "ragops-eval-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.ragserver
	if bin == "" {
		if bin, err = buildServer(ctx, tmp); err != nil {
			return err
		}
	}

	var results []result
	for _, store := range cfg.stores {
		rs, err := evalStore(ctx, store, bin, tmp, corpus.Docs, queries, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		results = append(results, rs...)
	}
	bm := &Scores{}
	ix := NewBM25(corpus.Docs)
	for _, q := range queries {
		bm.Add(Rank(ix.Search(q.Text, K), q.Target), -1)
	}
	bm.Done()
	results = append(results, result{store: "bm25 (baseline)", scores: bm})

	printTable(stdout, results)
	fmt.Fprintf(os.Stderr, "eval: done in %s\n", time.Since(began).Round(time.Second))
	if cfg.floors != "" {
		return checkFloors(stdout, floors, results[:len(results)-1])
	}
	return nil
}

// evalStore starts the server on one store, ingests the corpus and runs the
// queries in every mode.
func evalStore(ctx context.Context, store, bin, tmp string, docs []Document, queries []Query, cfg *config) ([]result, error) {
	dir := filepath.Join(tmp, store)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var env []string
	switch store {
	case "embedded":
		env = []string{"DATA_DIR=" + filepath.Join(dir, "data")}
	case "chroma":
		ch, err := chromaserver.New(filepath.Join(dir, "chroma"))
		if err != nil {
			return nil, err
		}
		defer ch.Stop()
		env = []string{"CHROMA_URL=" + ch.URL(), "DATA_DIR=" + filepath.Join(dir, "data")}
	}
	srv, err := startServer(bin, filepath.Join(dir, "ragserver.log"), append(env, cfg.serverEnv...)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.stop() }()
	t0 := time.Now()
	if err := srv.ingest(ctx, docs); err != nil {
		return nil, withLog(err, srv.log)
	}
	fmt.Fprintf(os.Stderr, "eval: %s: ingested %d documents in %s\n", store, len(docs), time.Since(t0).Round(time.Millisecond))
	var out []result
	for _, mode := range cfg.modes {
		s := &Scores{}
		for _, q := range queries {
			sent := mode
			if mode == "default" {
				sent = ""
			}
			srcs, took, err := srv.retrieve(ctx, q.Text, sent)
			if err != nil {
				return nil, withLog(err, srv.log)
			}
			s.Add(Rank(srcs, q.Target), took)
		}
		s.Done()
		out = append(out, result{store: store, mode: mode, scores: s})
	}
	if len(cfg.weights) > 0 {
		rs, err := sweepWeights(ctx, srv, store, queries, cfg.weights)
		if err != nil {
			return nil, withLog(err, srv.log)
		}
		out = append(out, rs...)
	}
	if err := srv.stop(); err != nil {
		return nil, withLog(fmt.Errorf("ragserver exit on SIGTERM: %w", err), srv.log)
	}
	return out, nil
}

func withLog(err error, logPath string) error {
	b, _ := os.ReadFile(logPath)
	return fmt.Errorf("%w; ragserver log:\n%s", err, b)
}

func goVersion(goroot string) string {
	b, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| store | mode | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | p50 ms | p95 ms | queries |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		s := r.scores
		p50, p95 := "-", "-"
		if s.haveLatency {
			p50, p95 = ms(s.P50), ms(s.P95)
		}
		mode := r.mode
		if mode == "" {
			mode = "-"
		}
		fmt.Fprintf(w, "| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %s | %d |\n",
			r.store, mode, s.R1, s.R5, s.R10, s.MRR, s.NDCG, p50, p95, s.Queries)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// sweepWeights fetches the vector and the lexical rankings of every query
// (rag.FusionDepth chunks each) and fuses them with rag.Fuse for each lexical
// weight: the server's hybrid mode at that weight, without a restart per
// weight.
func sweepWeights(ctx context.Context, srv *server, store string, queries []Query, weights []float64) ([]result, error) {
	scores := make([]*Scores, len(weights))
	for i := range scores {
		scores[i] = &Scores{}
	}
	toHits := func(hs []hit) []vectorstore.Hit {
		out := make([]vectorstore.Hit, len(hs))
		for i, h := range hs {
			out[i] = vectorstore.Hit{ID: h.ID, Source: h.Source}
		}
		return out
	}
	for _, q := range queries {
		vec, _, err := srv.retrieveHits(ctx, q.Text, "vector", rag.FusionDepth)
		if err != nil {
			return nil, err
		}
		lex, _, err := srv.retrieveHits(ctx, q.Text, "lexical", rag.FusionDepth)
		if err != nil {
			return nil, err
		}
		for i, w := range weights {
			fused := rag.Fuse(toHits(vec), toHits(lex), w, K)
			srcs := make([]string, len(fused))
			for j, h := range fused {
				srcs[j] = h.Source
			}
			scores[i].Add(Rank(srcs, q.Target), -1)
		}
	}
	out := make([]result, len(weights))
	for i, w := range weights {
		scores[i].Done()
		out[i] = result{store: store, mode: fmt.Sprintf("fused, lexical weight %.2f", w), scores: scores[i], sweep: true}
	}
	return out, nil
}

// Floor is the regression guard of one store and mode.
type Floor struct {
	Store    string  `json:"store"`
	Mode     string  `json:"mode"`
	MRR10    float64 `json:"mrr10"`
	Recall10 float64 `json:"recall10"`
}

func readFloors(path string) ([]Floor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Note   string  `json:"note"`
		Floors []Floor `json:"floors"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Floors, nil
}

// checkFloors fails when a measured store and mode has no floor or is below
// it.
func checkFloors(w io.Writer, floors []Floor, rs []result) error {
	byKey := map[string]Floor{}
	for _, f := range floors {
		byKey[f.Store+"/"+f.Mode] = f
	}
	var errs []error
	for _, r := range rs {
		if r.sweep {
			continue
		}
		f, ok := byKey[r.key()]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no floor in the floors file: add one", r.key()))
			continue
		}
		if r.scores.MRR < f.MRR10 {
			errs = append(errs, fmt.Errorf("%s: MRR@10 %.3f is below its floor %.3f", r.key(), r.scores.MRR, f.MRR10))
		}
		if r.scores.R10 < f.Recall10 {
			errs = append(errs, fmt.Errorf("%s: Recall@10 %.3f is below its floor %.3f", r.key(), r.scores.R10, f.Recall10))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nfloors: every store and mode is at or above its floor (%d checked)\n", len(rs))
	return nil
}
