package ragserver_test

import (
	"strings"
	"testing"
)

// TestAuthSchemeIsCaseInsensitive: the Bearer scheme matches in any case
// (RFC 9110); other schemes and missing credentials stay refused.
func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	ts := start(t, map[string]string{"API_TOKEN": "tok-0123456789"})
	query := func(header string) int {
		req := mustReq(t, "POST", ts.URL+"/retrieve", strings.NewReader(`{"question":"x"}`), "application/json")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		return do(t, req).Status
	}
	for _, h := range []string{"Bearer tok-0123456789", "bearer tok-0123456789", "BEARER tok-0123456789", "bEaReR   tok-0123456789 "} {
		if s := query(h); s != 200 {
			t.Errorf("Authorization %q: status %d, want 200", h, s)
		}
	}
	for _, h := range []string{"", "Basic dG9rOnRvaw==", "Basic tok-0123456789", "tok-0123456789", "Bearer", "Bearer ", "bearer wrong", "Bearertok-0123456789"} {
		if s := query(h); s != 401 {
			t.Errorf("Authorization %q: status %d, want 401", h, s)
		}
	}
}

// TestDuplicateJSONKeysRefused: a key given twice in one object, at any depth
// of the request, is a 400 naming the key and where it is, not a silent
// last-wins.
func TestDuplicateJSONKeysRefused(t *testing.T) {
	ts := start(t, nil)
	tests := []struct {
		name, path, body, want string
	}{
		{"top level", "/query", `{"question":"alpha","question":"beta"}`, `duplicate key "question" in the request object`},
		{"top level after other keys", "/retrieve", `{"top_k":1,"question":"alpha","top_k":2}`, `duplicate key "top_k" in the request object`},
		{"escaped spelling", "/query", `{"question":"alpha","q\u0075estion":"beta"}`, `duplicate key "question" in the request object`},
		{"in filter", "/retrieve", `{"question":"alpha","filter":{"team":"a","team":"b"}}`, `duplicate key "team" in filter`},
		{"in a document", "/documents", `{"documents":[{"source":"a.md","text":"one","text":"two"}]}`, `duplicate key "text" in documents[0]`},
		{"in metadata", "/documents", `{"documents":[{"source":"a.md","text":"one"},{"source":"b.md","text":"two","metadata":{"k":"1","k":"2"}}]}`, `duplicate key "k" in documents[1].metadata`},
		{"documents twice", "/documents", `{"documents":[{"source":"a.md","text":"one"}],"documents":[{"source":"b.md","text":"two"}]}`, `duplicate key "documents" in the request object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, mustReq(t, "POST", ts.URL+tt.path, strings.NewReader(tt.body), "application/json"))
			if r.Status != 400 || r.str("error") != tt.want {
				t.Fatalf("got %s, want 400 %q", r, tt.want)
			}
		})
	}
	if r := ts.get(t, "/documents"); len(r.list("documents")) != 0 {
		t.Fatalf("a refused request stored documents: %s", r)
	}
	// The same key in different objects is fine.
	ok := `{"documents":[{"source":"a.md","text":"one","metadata":{"k":"1"}},{"source":"b.md","text":"two","metadata":{"k":"2"}}]}`
	if r := do(t, mustReq(t, "POST", ts.URL+"/documents", strings.NewReader(ok), "application/json")); r.Status != 200 {
		t.Fatalf("same key in two objects: %s", r)
	}
}
