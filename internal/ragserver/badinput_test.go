package ragserver_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"strings"
	"testing"
)

func multipartBody(t *testing.T, files map[string]string, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, content := range files {
		fw, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(fw, content); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

// TestBadInput is the catalogue of bad requests: each gets a 4xx with a JSON
// error that says what is wrong.
func TestBadInput(t *testing.T) {
	ts := start(t, map[string]string{"MAX_BODY_BYTES": "2048"})
	if r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "a.md", "text": "Alpha beta."}}}); r.Status != 200 {
		t.Fatal(r)
	}
	big := `{"question":"` + strings.Repeat("a", 3000) + `"}`
	longQ := `{"question":"` + strings.Repeat("word ", 900) + `"}`
	docx, docxType := multipartBody(t, map[string]string{"report.docx": "PK\x03\x04"}, nil)
	noFile, noFileType := multipartBody(t, nil, map[string]string{"note": "hello"})
	binary, binaryType := multipartBody(t, map[string]string{"bin.txt": "\xff\xfe\x00bad"}, nil)

	tests := []struct {
		name, method, path, contentType string
		body                            io.Reader
		status                          int
		want                            string // substring of the error message
	}{
		{"malformed JSON", "POST", "/query", "application/json", strings.NewReader(`{"question": "x"`), 400, "truncated JSON"},
		{"JSON syntax error", "POST", "/query", "application/json", strings.NewReader(`{question: "x"}`), 400, "malformed JSON at byte 2"},
		{"unknown field", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","topk":3}`), 400, `unknown field "topk"`},
		{"empty body", "POST", "/query", "application/json", strings.NewReader(``), 400, "request body is empty"},
		{"empty question", "POST", "/query", "application/json", strings.NewReader(`{"question":""}`), 400, `"question" is required`},
		{"blank question", "POST", "/query", "application/json", strings.NewReader(`{"question":" \n\t "}`), 400, `"question" is required`},
		{"missing question", "POST", "/query", "application/json", strings.NewReader(`{"top_k":2}`), 400, `"question" is required`},
		{"question is a number", "POST", "/query", "application/json", strings.NewReader(`{"question":42}`), 400, `field "question" must be a string`},
		{"question too long", "POST", "/query", "application/json", strings.NewReader(longQ), 413, "larger than 2048 bytes"},
		{"top_k zero", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","top_k":0}`), 400, `"top_k" must be from 1 to 50`},
		{"top_k too large", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","top_k":1000}`), 400, `"top_k" must be from 1 to 50`},
		{"top_k not a number", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","top_k":"3"}`), 400, `field "top_k" must be a number`},
		{"top_k fractional", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","top_k":2.5}`), 400, `field "top_k" must be a number`},
		{"filter nested object", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","filter":{"a":{"b":1}}}`), 400, "must be a string, number or boolean"},
		{"filter null value", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","filter":{"a":null}}`), 400, "must be a string, number or boolean"},
		{"filter on chunk", "POST", "/query", "application/json", strings.NewReader(`{"question":"x","filter":{"chunk":1}}`), 400, `reserved key "chunk"`},
		{"two JSON objects", "POST", "/query", "application/json", strings.NewReader(`{"question":"x"}{"question":"y"}`), 400, "single JSON object"},
		{"JSON array body", "POST", "/query", "application/json", strings.NewReader(`[{"question":"x"}]`), 400, "must be a JSON object"},
		{"oversized body", "POST", "/query", "application/json", strings.NewReader(big), 413, "larger than 2048 bytes"},
		{"unsupported media type", "POST", "/query", "text/plain", strings.NewReader(`{"question":"x"}`), 415, "unsupported Content-Type"},
		{"XML", "POST", "/documents", "application/xml", strings.NewReader(`<doc/>`), 415, "unsupported Content-Type"},
		{"stream on retrieve", "POST", "/retrieve", "application/json", strings.NewReader(`{"question":"x","stream":true}`), 400, `unknown field "stream"`},
		{"no documents", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[]}`), 400, "at least one document"},
		{"document without source", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"text":"t"}]}`), 400, `non-empty "source"`},
		{"document without text", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a.md","text":"  "}]}`), 400, `empty "text"`},
		{"duplicate sources", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a.md","text":"t"},{"source":"a.md","text":"u"}]}`), 400, "more than once"},
		{"source with a slash", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"../etc/passwd","text":"t"}]}`), 400, "must not contain a slash"},
		{"source with control characters", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a\u0000b","text":"t"}]}`), 400, "control characters"},
		{"metadata overrides source", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a.md","text":"t","metadata":{"source":"b"}}]}`), 400, `reserved key "source"`},
		{"metadata sets origin", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a.md","text":"t","metadata":{"origin":"docs_dir"}}]}`), 400, `reserved key "origin"`},
		{"metadata array value", "POST", "/documents", "application/json", strings.NewReader(`{"documents":[{"source":"a.md","text":"t","metadata":{"tags":["x"]}}]}`), 400, "must be a string, number or boolean"},
		{"upload of a .docx only", "POST", "/documents", docxType, docx, 415, `no file could be read: report.docx: unsupported format: extension ".docx" is not supported`},
		{"upload of a binary .txt", "POST", "/documents", binaryType, binary, 415, "not UTF-8 text"},
		{"multipart without a file", "POST", "/documents", noFileType, noFile, 400, "holds no file"},
		{"multipart without boundary", "POST", "/documents", "multipart/form-data", strings.NewReader("x"), 400, "malformed multipart body"},
		{"wrong method", "GET", "/query", "", nil, 405, "method GET is not allowed"},
		{"unknown route", "GET", "/nope", "", nil, 404, "no such route"},
		{"delete unknown source", "DELETE", "/documents/missing.md", "", nil, 404, "is not indexed"},
	}
	if len(tests) < 20 {
		t.Fatalf("the catalogue must hold at least 20 cases, has %d", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, mustReq(t, tt.method, ts.URL+tt.path, tt.body, tt.contentType))
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
			if msg := r.str("error"); !strings.Contains(msg, tt.want) || r.JSON["status"] != float64(tt.status) {
				t.Fatalf("error %q (body %s), want it to mention %q", msg, r.Body, tt.want)
			}
		})
	}
	// The server is still fine.
	if r := ts.post(t, "/query", map[string]any{"question": "alpha"}); r.Status != 200 {
		t.Fatalf("after the catalogue: %s", r)
	}
}
