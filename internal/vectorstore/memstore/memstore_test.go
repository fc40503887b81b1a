package memstore_test

import (
	"context"
	"testing"

	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/memstore"
	"github.com/ragops/ragops/internal/vectorstore/storetest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string) vectorstore.Store {
		s, err := memstore.Open(dir, t.Name()+"-"+name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := memstore.Open(dir, "docs")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Upsert(ctx, []vectorstore.Record{{ID: "x", Source: "x.md", Chunk: 2, Text: "kept", Embedding: []float32{0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err = memstore.Open(dir, "docs")
	if err != nil {
		t.Fatal(err)
	}
	hits, err := s.Query(ctx, []float32{0, 1}, 1, nil)
	if err != nil || len(hits) != 1 || hits[0].Text != "kept" || hits[0].Chunk != 2 {
		t.Fatalf("after reopen: hits %+v err %v", hits, err)
	}
}
