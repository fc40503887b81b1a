package ragserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

// bigDocs returns n documents of paragraphs that each fill one chunk of
// CHUNK_SIZE 100, tagged with their version.
func bigDocs(n, paragraphs int, tag string) []map[string]any {
	var docs []map[string]any
	for d := range n {
		var b strings.Builder
		for p := range paragraphs {
			fmt.Fprintf(&b, "Version %s paragraph %d of doc%d holds distinct words.\n\n", tag, p, d)
		}
		docs = append(docs, map[string]any{"source": fmt.Sprintf("doc%d.md", d), "text": b.String()})
	}
	return docs
}

// TestRequestCutOffByTimeoutLeavesNoHalfDocument: on the real Chroma, a
// POST /documents cut off by REQUEST_TIMEOUT (504) after some of its chunks
// were written changes no document: the listing and the answers show the
// previous versions, whole, and never a source the request introduced.
func TestRequestCutOffByTimeoutLeavesNoHalfDocument(t *testing.T) {
	chroma := chromaserver.Shared(t)
	model, modelURL := fake(t)
	ts := start(t, map[string]string{
		"OPENAI_BASE_URL": modelURL, "LLM_MODEL": "local", "CHROMA_URL": chroma.URL(), "CHROMA_COLLECTION": uniqueCollection(),
		"CHUNK_SIZE": "100", "CHUNK_OVERLAP": "0", "EMBED_BATCH_SIZE": "16", "EMBED_CONCURRENCY": "2", "REQUEST_TIMEOUT": "4s",
	})
	ts.waitReady(t)
	if r := ts.post(t, "/documents", map[string]any{"documents": bigDocs(3, 10, "one")}); r.Status != http.StatusOK {
		t.Fatalf("first version: %s", r)
	}
	// 6 documents x 200 chunks at 16 per call, 2 calls at a time, 200 ms
	// each: about 7.5 s of embedding, cut off by the 4 s request timeout after
	// upserts of 256 chunks went through (the first after about 1.6 s).
	model.SetLatency(fakeopenai.Embeddings, 200*time.Millisecond)
	r := ts.post(t, "/documents", map[string]any{"documents": bigDocs(6, 200, "two")})
	if r.Status != http.StatusGatewayTimeout {
		t.Fatalf("the slow update answered %s, want 504", r)
	}
	model.SetLatency(fakeopenai.Embeddings, 0)
	list := ts.get(t, "/documents")
	docs := list.list("documents")
	if len(docs) != 3 {
		t.Fatalf("listing after the cut-off: %s", list)
	}
	for _, d := range docs {
		if n := d.(map[string]any)["chunks"]; n != float64(10) {
			t.Fatalf("a listed source has %v chunks, not its whole first version (10): %s", n, list)
		}
	}
	for d := range 3 {
		q := ts.post(t, "/retrieve", map[string]any{"question": "Version two paragraph", "top_k": 50,
			"filter": map[string]any{"source": fmt.Sprintf("doc%d.md", d)}})
		if q.Status != http.StatusOK || len(q.list("sources")) != 10 {
			t.Fatalf("doc%d.md after the cut-off: %s", d, q)
		}
		if strings.Contains(string(q.Body), "Version two") {
			t.Fatalf("a chunk of the cut-off version is served: %s", q)
		}
	}
	// The same request, given time, goes through, reusing what it wrote.
	before := model.Stats().EmbeddedInputs
	if r := ts.post(t, "/documents", map[string]any{"documents": bigDocs(6, 200, "two")}); r.Status != http.StatusOK {
		t.Fatalf("the retry: %s", r)
	} else if reused := r.JSON["reused"].(float64); reused == 0 || model.Stats().EmbeddedInputs-before != 1200-int(reused) {
		t.Fatalf("the retry %s embedded %d texts: want the chunks written before the cut-off reused", r, model.Stats().EmbeddedInputs-before)
	}
}
