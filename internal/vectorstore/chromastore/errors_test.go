package chromastore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"

	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
)

// TestErrorsClassifiedByStatus: against a real Chroma, a request Chroma
// refuses as malformed is ErrInvalid, not ErrUnavailable; a collection
// deleted behind the store's back is ErrUnavailable once and then created
// again. (Chroma stopped is ErrUnavailable: TestUnavailable.)
func TestErrorsClassifiedByStatus(t *testing.T) {
	// Its own Chroma: a query of the wrong dimension can leave Chroma 1.0's
	// local compactor broken for every later request.
	srv := chromaserver.Start(t, "")
	ctx := context.Background()
	name := fmt.Sprintf("errs-%d", seq.Add(1))
	s := open(t, srv.URL(), name)
	rec := vectorstore.Record{ID: "a", Source: "a.md", Text: "alpha", Embedding: []float32{1, 0, 0}}
	if err := s.Upsert(ctx, []vectorstore.Record{rec}); err != nil {
		t.Fatal(err)
	}

	invalid := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, vectorstore.ErrInvalid) || errors.Is(err, vectorstore.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrInvalid and not ErrUnavailable", what, err)
		}
	}
	_, err := s.Query(ctx, []float32{1, 0, 0, 0, 0}, 1, nil)
	invalid("query with a vector of the wrong dimension", err)
	bad := rec
	bad.ID, bad.Embedding = "b", []float32{1, 0}
	invalid("upsert of a vector of the wrong dimension", s.Upsert(ctx, []vectorstore.Record{bad}))
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Chroma is fine after refusing requests: %v", err)
	}

	// Someone deletes the collection: the store says unavailable, forgets
	// it, and the next call works on a new one.
	c, err := chroma.NewHTTPClient(chroma.WithBaseURL(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.DeleteCollection(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, []float32{1, 0, 0}, 1, nil); !errors.Is(err, vectorstore.ErrUnavailable) {
		t.Fatalf("query on a deleted collection: %v, want ErrUnavailable", err)
	}
	if err := s.Upsert(ctx, []vectorstore.Record{rec}); err != nil {
		t.Fatalf("upsert after the collection was deleted: %v", err)
	}
	hits, err := s.Query(ctx, []float32{1, 0, 0}, 1, nil)
	if err != nil || len(hits) != 1 || hits[0].ID != "a" {
		t.Fatalf("query on the new collection: %+v, %v", hits, err)
	}
}
