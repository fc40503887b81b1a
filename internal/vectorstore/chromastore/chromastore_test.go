package chromastore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
	"github.com/ragops/ragops/internal/vectorstore/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chromaserver.StopShared()
	os.Exit(code)
}

var seq atomic.Int64

func open(t *testing.T, url, name string) *chromastore.Store {
	t.Helper()
	s, err := chromastore.New(chromastore.Options{URL: url, Collection: name, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := chromaserver.Shared(t)
	storetest.Run(t, func(t *testing.T, name string) vectorstore.Store {
		return open(t, srv.URL(), fmt.Sprintf("conf-%s-%d", name, seq.Add(1)))
	})
}

func TestPersistsAcrossRestart(t *testing.T) {
	srv := chromaserver.Start(t, "")
	ctx := context.Background()
	s := open(t, srv.URL(), "persist")
	err := s.Upsert(ctx, []vectorstore.Record{{ID: "x", Source: "x.md", Chunk: 7, Text: "kept", Embedding: []float32{0, 1, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// A new client, as a restarted ragserver would have.
	s = open(t, srv.URL(), "persist")
	hits, err := s.Query(ctx, []float32{0, 1, 0}, 1, nil)
	if err != nil || len(hits) != 1 || hits[0].Text != "kept" || hits[0].Chunk != 7 {
		t.Fatalf("after restart: hits %+v err %v", hits, err)
	}
}

func TestUnavailable(t *testing.T) {
	srv := chromaserver.Start(t, "")
	ctx := context.Background()
	s := open(t, srv.URL(), "down")
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := s.Ping(ctx); !errors.Is(err, vectorstore.ErrUnavailable) {
		t.Fatalf("Ping with Chroma down = %v, want ErrUnavailable", err)
	}
	if _, err := s.Query(ctx, []float32{1}, 1, nil); !errors.Is(err, vectorstore.ErrUnavailable) {
		t.Fatalf("Query with Chroma down = %v, want ErrUnavailable", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	if _, err := s.Query(ctx, []float32{1}, 1, nil); err != nil {
		t.Fatalf("Query after recovery: %v", err)
	}
}

func TestCollectionName(t *testing.T) {
	for _, bad := range []string{"", "ab", "-abc", "abc-", "a b c", strings.Repeat("x", 513)} {
		if chromastore.ValidCollectionName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := chromastore.ValidCollectionName("ragops-text-embedding-3-small"); err != nil {
		t.Error(err)
	}
}

// TestScanOfALargeCollection pages through a large collection on the real
// Chroma (RAGOPS_SCAN_CHUNKS chunks: 20,000 in make test, 100,000 in make
// soak), with a per-request timeout below the time the whole scan takes: a
// scan never runs under one deadline, so the maintenance of a large index
// always finishes.
func TestScanOfALargeCollection(t *testing.T) {
	srv := chromaserver.Shared(t)
	ctx := context.Background()
	n, timeout := 20_000, 3*time.Second
	if v := os.Getenv("RAGOPS_SCAN_CHUNKS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("RAGOPS_SCAN_CHUNKS=%q is not a positive number", v)
		}
	}
	name := fmt.Sprintf("scan-%d", seq.Add(1))
	w := open(t, srv.URL(), name) // writes get the default room
	s, err := chromastore.New(chromastore.Options{URL: srv.URL(), Collection: name, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	start := time.Now()
	batch := make([]vectorstore.Record, 0, vectorstore.PageSize)
	for i := range n {
		batch = append(batch, vectorstore.Record{ID: fmt.Sprintf("r%06d", i), Source: fmt.Sprintf("s%d.md", i%97), Chunk: i,
			Text: "t", Embedding: []float32{float32(i%7) + 1, 1, 0, float32(i % 3)}, Version: "v", Written: 1})
		if len(batch) == cap(batch) || i == n-1 {
			if err := w.Upsert(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	t.Logf("wrote %d chunks in %s", n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	seen, pages := map[string]bool{}, 0
	err = s.Scan(ctx, nil, false, func(page []vectorstore.Record) error {
		pages++
		for _, r := range page {
			seen[r.ID] = true
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("scan after %d pages, %s: %v", pages, took, err)
	}
	if len(seen) != n {
		t.Fatalf("scan saw %d distinct chunks, want %d", len(seen), n)
	}
	t.Logf("scanned %d chunks in %d pages in %s (per-request timeout %s)", n, pages, took.Round(time.Millisecond), timeout)
}
