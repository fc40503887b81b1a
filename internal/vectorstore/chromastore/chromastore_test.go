package chromastore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	s, err := chromastore.New(chromastore.Options{URL: url, Collection: name, Timeout: 5 * time.Second})
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
