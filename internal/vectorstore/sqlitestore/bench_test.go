package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

const benchDim = 256

// fill writes n chunks of benchDim dimensions (200 sources, 800-character
// texts) in batches of 256, as ingestion does.
func fill(b *testing.B, dir string, n int) {
	b.Helper()
	s, err := sqlitestore.Open(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	text := strings.Repeat("lorem ipsum dolor sit amet ", 30)
	for lo := 0; lo < n; lo += 256 {
		var batch []vectorstore.Record
		for i := lo; i < min(n, lo+256); i++ {
			v := make([]float32, benchDim)
			for j := range v {
				v[j] = rng.Float32()*2 - 1
			}
			src := fmt.Sprintf("doc-%03d.md", i%200)
			batch = append(batch, vectorstore.Record{ID: fmt.Sprintf("%s-v1-%d", src, i/200), Source: src, Chunk: i / 200,
				Text: text, Embedding: v, Version: "v1", Written: 1, Metadata: map[string]string{"team": fmt.Sprint(i % 7)}})
		}
		if err := s.Upsert(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuery measures a query of k=6 (top_k 4 and the rag layer's
// margin), without and with a source filter.
func BenchmarkQuery(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		start := time.Now()
		fill(b, dir, n)
		b.Logf("%d chunks written in %v (%s)", n, time.Since(start).Round(time.Millisecond), fileSize(dir))
		s, err := sqlitestore.Open(dir, "bench")
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		q := make([]float32, benchDim)
		for j := range q {
			q[j] = rng.Float32()*2 - 1
		}
		for _, filter := range []map[string]string{nil, {vectorstore.KeySource: "doc-042.md"}} {
			b.Run(fmt.Sprintf("chunks=%d/filter=%v", n, filter != nil), func(b *testing.B) {
				for b.Loop() {
					hits, err := s.Query(context.Background(), q, 6, filter)
					if err != nil || len(hits) != 6 {
						b.Fatalf("%d hits, %v", len(hits), err)
					}
				}
			})
		}
		s.Close()
	}
}

// BenchmarkOpen measures Open of a database of 100k chunks: PRAGMA
// quick_check, then the load of the in-memory copy.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	fill(b, dir, 100_000)
	b.Logf("database: %s", fileSize(dir))
	b.Run("quick_check", func(b *testing.B) {
		db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for b.Loop() {
			var res string
			if err := db.QueryRow("PRAGMA quick_check").Scan(&res); err != nil || res != "ok" {
				b.Fatal(res, err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			s, err := sqlitestore.Open(dir, "bench")
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

func fileSize(dir string) string {
	fi, err := os.Stat(filepath.Join(dir, sqlitestore.FileName))
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%.0f MB", float64(fi.Size())/1e6)
}

// BenchmarkLexicalQuery compares a lexical query (FTS5, bm25(), committed
// chunks only) with a vector query of the same depth (50, the fusion depth
// of hybrid retrieval) on the same 10k chunks: texts of 120 words drawn from
// a Zipf-distributed vocabulary of 20,000 words, questions of 8 words.
func BenchmarkLexicalQuery(b *testing.B) {
	dir := b.TempDir()
	s, err := sqlitestore.Open(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(7, 8)), 1.1, 1, 19_999)
	words := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", zipf.Uint64())
		}
		return strings.Join(w, " ")
	}
	const n = 10_000
	var commits []vectorstore.SourceVersion
	for lo := 0; lo < n; lo += 256 {
		var batch []vectorstore.Record
		for i := lo; i < min(n, lo+256); i++ {
			v := make([]float32, benchDim)
			for j := range v {
				v[j] = rng.Float32()*2 - 1
			}
			src := fmt.Sprintf("doc-%05d.md", i)
			batch = append(batch, vectorstore.Record{ID: src + "-v1-0", Source: src, Text: words(120), Embedding: v, Version: "v1", Written: 1})
			commits = append(commits, vectorstore.SourceVersion{Source: src, Version: "v1", Chunks: 1})
		}
		if err := s.Upsert(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Commit(ctx, commits...); err != nil {
		b.Fatal(err)
	}
	questions := make([]string, 64)
	for i := range questions {
		questions[i] = words(8)
	}
	q := make([]float32, benchDim)
	for j := range q {
		q[j] = rng.Float32()*2 - 1
	}
	b.Run("vector", func(b *testing.B) {
		for b.Loop() {
			if hits, err := s.Query(ctx, q, 50, nil); err != nil || len(hits) != 50 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
		}
	})
	b.Run("lexical", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.LexicalQuery(ctx, questions[i%len(questions)], 50, nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
