package fakeopenai_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/ragops/ragops/internal/fakeopenai"
)

// TestEmbeddingsDependOnTheModel: the same text embedded with two model
// names gives unrelated vectors (a switch of embedding models must show in
// the vectors), and the same model gives the same vector every time.
func TestEmbeddingsDependOnTheModel(t *testing.T) {
	srv := httptest.NewServer(fakeopenai.New(fakeopenai.Options{}))
	defer srv.Close()
	embed := func(model string) []float64 {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"model": model, "input": []string{"the treasury code marks the transfer"}})
		resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Data []struct {
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data) != 1 {
			t.Fatalf("embeddings of %s: %v %+v", model, err, out)
		}
		return out.Data[0].Embedding
	}
	a, a2, b := embed("fake-embed-a"), embed("fake-embed-a"), embed("fake-embed-b")
	if !slices.Equal(a, a2) {
		t.Error("the same model gave two vectors for one text")
	}
	var dot float64
	for i := range a {
		dot += a[i] * b[i]
	}
	if len(a) != len(b) || dot > 0.5 {
		t.Errorf("models a and b give close vectors (cosine %.3f): a switch would not show", dot)
	}
}
