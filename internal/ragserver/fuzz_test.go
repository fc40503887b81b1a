package ragserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ragops/ragops/internal/rag"
)

// fuzzHandler is a server on the embedded store with the local embedder and
// one indexed document.
func fuzzHandler(t testing.TB) http.Handler {
	env := map[string]string{"DATA_DIR": t.TempDir(), "MAX_BODY_BYTES": "65536"}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(cfg, slog.New(slog.DiscardHandler), newSecrets(cfg))
	if err != nil {
		t.Fatal(err)
	}
	s.ready.Store(true)
	if _, err := s.svc.Ingest(context.Background(), []rag.Document{{Source: "a.md", Text: "Revenue grew. Risks rose."}}); err != nil {
		t.Fatal(err)
	}
	return s.routes()
}

// FuzzDecodeQuery sends arbitrary bodies to /query, /retrieve and
// /documents: the server must never panic, and must answer 200 or a 4xx
// with a JSON error.
func FuzzDecodeQuery(f *testing.F) {
	h := fuzzHandler(f)
	f.Add(uint8(0), "application/json", []byte(`{"question":"revenue","top_k":2}`))
	f.Add(uint8(0), "", []byte(`{"question":"x","filter":{"source":"a.md"},"stream":true}`))
	f.Add(uint8(1), "application/json", []byte(`{"question":"x","filter":{"k":1.5e300}}`))
	f.Add(uint8(2), "application/json", []byte(`{"documents":[{"source":"b.md","text":"t","metadata":{"a":true}}]}`))
	f.Add(uint8(2), "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n"))
	f.Add(uint8(0), "application/json", []byte(`{"question":"\ud800"}`))
	f.Add(uint8(1), "application/json", []byte(`{"question":"x","filter":{"a":1,"a":2}}`))
	f.Add(uint8(2), "application/json", []byte(`{"documents":[{"source":"b.md","text":"t","metadata":{"k":"1","k":"2"}}]}`))
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		path := []string{"/query", "/retrieve", "/documents"}[int(route)%3]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == 200:
		case w.Code >= 400 && w.Code < 500:
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s: %d without a JSON error: %q", path, w.Code, w.Body.String())
			}
		default:
			t.Fatalf("%s: status %d for body %q: %s", path, w.Code, body, w.Body.String())
		}
	})
}
