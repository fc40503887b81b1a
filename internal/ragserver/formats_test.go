package ragserver_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragops/ragops/internal/docformat"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

// TestUploadDocumentFormats: real PDF and HTML files from Debian's
// documentation, a JSON Lines file and files that cannot be read are
// uploaded in one multipart request to the real server on a real Chroma.
// The readable ones are indexed (their text clean), the others are listed
// with their reasons, and /retrieve finds passages from inside the PDF and
// the HTML page.
func TestUploadDocumentFormats(t *testing.T) {
	if _, err := docformat.PDFAvailable(); err != nil {
		t.Fatalf("%v: run `make poppler` (or apt-get install poppler-utils)", err)
	}
	_, url := fake(t)
	ts := start(t, map[string]string{
		"OPENAI_BASE_URL": url, "EMBEDDING_MODEL": "fake-embed-formats", "LLM_MODEL": "local",
		"CHROMA_URL": chromaserver.Shared(t).URL(), "CHROMA_COLLECTION": uniqueCollection(),
	})
	ts.waitReady(t)

	fixture := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "docformat", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	files := []struct{ name, content string }{
		{"camlidl-1.04.doc.pdf", fixture("camlidl-1.04.doc.pdf")},
		{"debian-policy-ch-binary.html", fixture("debian-policy-ch-binary.html")},
		{"faq.jsonl", "{\"id\":\"refunds\",\"text\":\"Refunds are paid within five business days.\",\"team\":\"support\"}\n{\"id\":\"broken\"\n"},
		{"slides.pptx", "PK\x03\x04"},
		{"scan.pdf", "%PDF-1.4\n%%EOF\n"},
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		fw, err := mw.CreateFormFile("file", f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(fw, f.content); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	r := do(t, mustReq(t, "POST", ts.URL+"/documents", &body, mw.FormDataContentType()))
	if r.Status != 200 || r.JSON["documents"] != float64(3) || r.JSON["added"].(float64) < 3 {
		t.Fatalf("upload: %s", r)
	}
	skipped := map[string]string{}
	for _, s := range r.list("skipped") {
		m := s.(map[string]any)
		skipped[m["file"].(string)] = m["reason"].(string)
	}
	if len(skipped) != 3 || !strings.Contains(skipped["slides.pptx"], `extension ".pptx" is not supported`) ||
		!strings.Contains(skipped["scan.pdf"], "damaged PDF") || !strings.Contains(skipped["faq.jsonl line 2"], "truncated JSON") {
		t.Fatalf("skipped %v", skipped)
	}

	r = ts.get(t, "/documents")
	var names []string
	for _, d := range r.list("documents") {
		names = append(names, d.(map[string]any)["source"].(string))
	}
	if !slices.Equal(names, []string{"camlidl-1.04.doc.pdf", "debian-policy-ch-binary.html", "faq.jsonl#refunds"}) {
		t.Fatalf("documents %v", names)
	}

	for _, tc := range []struct{ question, source, passage, format string }{
		{"What does IDL stand for? Interface Description Language", "camlidl-1.04.doc.pdf", "IDL stands for Interface Description Language.", "pdf"},
		{"dpkg will consider 96May01 greater than 96Dec24", "debian-policy-ch-binary.html", "dpkg will consider “96May01” to be greater than “96Dec24”.", "html"},
		{"When are refunds paid?", "faq.jsonl#refunds", "Refunds are paid within five business days.", "jsonl"},
	} {
		r := ts.post(t, "/retrieve", map[string]any{"question": tc.question, "top_k": 3})
		if r.Status != 200 || len(r.list("sources")) == 0 {
			t.Fatalf("retrieve %q: %s", tc.question, r)
		}
		top := r.list("sources")[0].(map[string]any)
		text := top["text"].(string)
		if top["source"] != tc.source || !strings.Contains(squash(text), tc.passage) {
			t.Fatalf("retrieve %q: top source %v, text %q; want %s holding %q", tc.question, top["source"], text, tc.source, tc.passage)
		}
		if md := top["metadata"].(map[string]any); md["format"] != tc.format {
			t.Fatalf("metadata %v", md)
		}
		if strings.Contains(text, "<") || strings.Contains(text, "Quick search") || strings.Contains(text, " Tj") {
			t.Fatalf("markup in the indexed text: %q", text)
		}
	}
	// Metadata from the formats filters like any other.
	r = ts.post(t, "/retrieve", map[string]any{"question": "package", "top_k": 50, "filter": map[string]any{"format": "html"}})
	for _, s := range r.list("sources") {
		if s.(map[string]any)["source"] != "debian-policy-ch-binary.html" {
			t.Fatalf("filter format=html returned %v", s)
		}
	}
	if r.Status != 200 || len(r.list("sources")) == 0 {
		t.Fatalf("filtered retrieve: %s", r)
	}
}

// squash normalises white space.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }
