package chromastore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
)

func openOwned(t *testing.T, url, name, owner string) *chromastore.Store {
	t.Helper()
	s, err := chromastore.New(chromastore.Options{URL: url, Collection: name, Timeout: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var record = vectorstore.Record{ID: "a", Source: "a.md", Text: "tenant A's document", Embedding: []float32{1, 0, 0}}

// TestCollectionOwner: the first owner stamps a new collection, the same
// owner is accepted again, another owner is refused on every operation.
func TestCollectionOwner(t *testing.T) {
	srv := chromaserver.Shared(t)
	ctx := context.Background()
	a := openOwned(t, srv.URL(), "owned-new", "uid-a")
	if err := a.Claim(ctx); err != nil {
		t.Fatalf("first owner: %v", err)
	}
	if err := a.Upsert(ctx, []vectorstore.Record{record}); err != nil {
		t.Fatal(err)
	}

	b := openOwned(t, srv.URL(), "owned-new", "uid-b")
	err := b.Claim(ctx)
	if !errors.Is(err, chromastore.ErrForeignCollection) {
		t.Fatalf("second owner: Claim = %v, want ErrForeignCollection", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, `"uid-a"`) || !strings.Contains(msg, `"uid-b"`) {
		t.Errorf("message %q is not one line naming both owners", msg)
	}
	if err := b.Upsert(ctx, []vectorstore.Record{{ID: "b", Source: "b.md", Text: "B", Embedding: []float32{0, 1, 0}}}); !errors.Is(err, chromastore.ErrForeignCollection) {
		t.Errorf("second owner: Upsert = %v, want ErrForeignCollection", err)
	}
	if err := b.Delete(ctx, []string{"a"}); !errors.Is(err, chromastore.ErrForeignCollection) {
		t.Errorf("second owner: Delete = %v, want ErrForeignCollection", err)
	}

	again := openOwned(t, srv.URL(), "owned-new", "uid-a")
	if err := again.Claim(ctx); err != nil {
		t.Fatalf("same owner again: %v", err)
	}
	hits, err := again.Query(ctx, record.Embedding, 5, nil)
	if err != nil || len(hits) != 1 || hits[0].Text != record.Text {
		t.Fatalf("tenant A's documents after B was refused: %+v, %v", hits, err)
	}
}

// TestCollectionWithoutOwnerIsAdopted: a collection created by a version that
// stamped no owner is adopted, data kept, by the first owner; then it is
// that owner's.
func TestCollectionWithoutOwnerIsAdopted(t *testing.T) {
	srv := chromaserver.Shared(t)
	ctx := context.Background()
	old := openOwned(t, srv.URL(), "owned-legacy", "")
	if err := old.Upsert(ctx, []vectorstore.Record{record}); err != nil {
		t.Fatal(err)
	}

	a := openOwned(t, srv.URL(), "owned-legacy", "uid-a")
	if err := a.Claim(ctx); err != nil {
		t.Fatalf("adopt: %v", err)
	}
	hits, err := a.Query(ctx, record.Embedding, 5, nil)
	if err != nil || len(hits) != 1 || hits[0].Text != record.Text {
		t.Fatalf("documents after adoption: %+v, %v", hits, err)
	}
	if err := openOwned(t, srv.URL(), "owned-legacy", "uid-b").Claim(ctx); !errors.Is(err, chromastore.ErrForeignCollection) {
		t.Fatalf("after adoption another owner: Claim = %v, want ErrForeignCollection", err)
	}
	if err := openOwned(t, srv.URL(), "owned-legacy", "uid-a").Claim(ctx); err != nil {
		t.Fatalf("after adoption the owner: %v", err)
	}
}
