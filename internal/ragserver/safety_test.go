package ragserver_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
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

// TestMetadataIsBounded: metadata is copied into every chunk, so each
// document's metadata (and a query filter) is bounded in keys, key length,
// value length and total bytes; a 400 names the limit, the document and the
// key.
func TestMetadataIsBounded(t *testing.T) {
	ts := start(t, nil)
	text := strings.Repeat("Treasury hedged floating-rate exposure. ", 100) // several chunks
	doc := func(source string, md map[string]any) map[string]any {
		return map[string]any{"documents": []map[string]any{
			{"source": "fine.md", "text": "Fine."},
			{"source": source, "text": text, "metadata": md},
		}}
	}
	keys := func(n int) map[string]any {
		md := map[string]any{}
		for i := range n {
			md[fmt.Sprintf("k%02d", i)] = "v"
		}
		return md
	}
	refused := []struct {
		name string
		body any
		want string
	}{
		{"too many keys", doc("many.md", keys(ragserver.MaxMetadataKeys+1)),
			`metadata of document "many.md" has 33 keys, more than the limit of 32`},
		{"long key", doc("key.md", map[string]any{strings.Repeat("k", ragserver.MaxMetadataKeyRunes+1): "v"}),
			`metadata of document "key.md" has a key of 65 characters ("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..."), more than the limit of 64`},
		{"long value", doc("value.md", map[string]any{"team": "t", "note": strings.Repeat("x", ragserver.MaxMetadataValueBytes+1)}),
			`metadata of document "value.md": value of "note" is 1025 bytes, more than the limit of 1024`},
		{"long multibyte value", doc("utf8.md", map[string]any{"note": strings.Repeat("é", ragserver.MaxMetadataValueBytes/2+1)}),
			`metadata of document "utf8.md": value of "note" is 1026 bytes, more than the limit of 1024`},
		{"too many bytes in all", doc("total.md", map[string]any{"a": strings.Repeat("x", 1000), "b": strings.Repeat("x", 1000), "c": strings.Repeat("x", 1000), "d": strings.Repeat("x", 1000), "e": strings.Repeat("x", 100)}),
			`metadata of document "total.md" is 4105 bytes (keys and values), more than the limit of 4096`},
		{"long filter value", map[string]any{"question": "treasury", "filter": map[string]any{"team": strings.Repeat("x", 5000)}},
			`field "filter": value of "team" is 5000 bytes, more than the limit of 1024`},
		{"too many filter keys", map[string]any{"question": "treasury", "filter": keys(40)},
			`field "filter" has 40 keys, more than the limit of 32`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			path := "/documents"
			if _, ok := tt.body.(map[string]any)["question"]; ok {
				path = "/retrieve"
			}
			if r := ts.post(t, path, tt.body); r.Status != 400 || r.str("error") != tt.want {
				t.Fatalf("got %s, want 400 %q", r, tt.want)
			}
		})
	}
	if r := ts.get(t, "/documents"); len(r.list("documents")) != 0 {
		t.Fatalf("refused requests stored documents: %s", r)
	}

	// Exactly at the limits is accepted, and the metadata comes back whole.
	atLimit := keys(ragserver.MaxMetadataKeys - 4)
	for _, k := range []string{"a", "b", "c"} {
		atLimit[k] = strings.Repeat("y", ragserver.MaxMetadataValueBytes)
	}
	used := 0
	for k, v := range atLimit {
		used += len(k) + len(v.(string))
	}
	atLimit[strings.Repeat("z", 60)] = strings.Repeat("w", ragserver.MaxMetadataBytes-used-60)
	if r := ts.post(t, "/documents", doc("edge.md", atLimit)); r.Status != 200 {
		t.Fatalf("metadata at the limits: %s", r)
	}
	r := ts.post(t, "/retrieve", map[string]any{"question": "treasury", "top_k": 1, "filter": map[string]any{"source": "edge.md", "a": atLimit["a"]}})
	if r.Status != 200 || len(r.list("sources")) != 1 {
		t.Fatalf("retrieve at the limits: %s", r)
	}
	md, _ := r.list("sources")[0].(map[string]any)["metadata"].(map[string]any)
	if len(md) != ragserver.MaxMetadataKeys {
		t.Fatalf("metadata came back with %d keys, want %d", len(md), ragserver.MaxMetadataKeys)
	}
}

var seriesRE = regexp.MustCompile(`(?m)^(ragserver_\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\}`)

// metricSeries returns the label sets of the ragserver_ series in a
// /metrics page (le dropped), and the labels' values by name.
func metricSeries(page string) (series map[string]bool, values map[string]map[string]bool) {
	series, values = map[string]bool{}, map[string]map[string]bool{}
	for _, m := range seriesRE.FindAllStringSubmatch(page, -1) {
		var kept []string
		for _, l := range strings.Split(m[2], ",") {
			name, val, _ := strings.Cut(l, "=")
			if name == "le" {
				continue
			}
			kept = append(kept, l)
			if values[name] == nil {
				values[name] = map[string]bool{}
			}
			values[name][strings.Trim(val, `"`)] = true
		}
		series[m[1]+"{"+strings.Join(kept, ",")+"}"] = true
	}
	return series, values
}

// TestMetricsLabelsAreBounded: requests with made-up methods and paths do not
// add label values to /metrics; its size stays bounded.
func TestMetricsLabelsAreBounded(t *testing.T) {
	ts := start(t, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('A' + rnd.IntN(26))
		}
		return string(b)
	}
	send := func(method, path string) {
		t.Helper()
		r := do(t, mustReq(t, method, ts.URL+path, nil, ""))
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("%.20s... %.40s...: %s", method, path, r)
		}
	}
	random := func() {
		// A long custom method on a known route, on an unknown route, and a
		// standard method on an unknown route.
		send("X"+word(1000), "/query")
		send("X"+word(1000), "/"+strings.ToLower(word(500)))
		send("GET", "/documents/"+word(300)+"/"+word(300))
		send("PUT", "/"+word(1000))
	}
	random()              // every closed value that random requests can take now exists
	ts.get(t, "/metrics") // and the series of /metrics itself
	page := string(ts.get(t, "/metrics").Body)
	before, _ := metricSeries(page)
	for range 30 {
		random()
	}
	page2 := string(ts.get(t, "/metrics").Body)
	after, values := metricSeries(page2)
	for s := range after {
		if !before[s] {
			t.Errorf("new series after random requests: %.200s", s)
		}
	}
	if grew := len(page2) - len(page); grew > 2048 {
		t.Errorf("/metrics grew by %d bytes (%d -> %d) after 120 random requests", grew, len(page), len(page2))
	}
	for m := range values["method"] {
		if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "other"}, m) {
			t.Errorf("method label %.60q is not from the closed set", m)
		}
	}
	routes := []string{"unmatched", "POST /query", "POST /retrieve", "POST /documents", "GET /documents", "DELETE /documents/{source}", "GET /healthz", "GET /readyz", "GET /metrics"}
	for r := range values["route"] {
		if !slices.Contains(routes, r) {
			t.Errorf("route label %.60q is not from the route table", r)
		}
	}
	if !values["method"]["other"] || !values["route"]["unmatched"] {
		t.Errorf("want method=\"other\" and route=\"unmatched\" series, have methods %v routes %v", values["method"], values["route"])
	}
	if len(page2) > 64<<10 {
		t.Errorf("/metrics is %d bytes", len(page2))
	}
}

// TestSecretsNeverLogged: a model API that quotes the caller's key in its
// errors (refused key, server error), a key file that rotates, and a token
// pasted into a URL: the logs of the real server never hold the key or the
// token, and say where they were redacted.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		key1  = "sk-live-KEYONE-0123456789abcdef"
		key2  = "sk-live-KEYTWO-fedcba9876543210"
		token = "tok-TOKEN-0123456789abcdef"
	)
	var accepted atomic.Value
	accepted.Store("some-other-key-0000")
	f := fakeopenai.New(fakeopenai.Options{EchoKey: true, Keys: func() []string { return []string{accepted.Load().(string)} }})
	var lastAuth atomic.Value
	lastAuth.Store("")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastAuth.Store(r.Header.Get("Authorization"))
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": up.URL + "/v1", "OPENAI_API_KEY_FILE": keyFile,
		"LLM_MODEL": "fake-chat", "EMBEDDING_MODEL": "fake-embed", "API_TOKEN": token,
		"MAX_RETRIES": "0", "LOG_LEVEL": "info",
	})
	authed := func(method, path, body string) response {
		req := mustReq(t, method, ts.URL+path, strings.NewReader(body), "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}

	// The model API refuses the key and quotes it: start-up ingestion fails.
	waitFor(t, "start-up ingestion to fail", 10*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "Start-up ingestion failed")
	})
	// It accepts the key, then fails every chat call, quoting the key.
	accepted.Store(key1)
	ts.waitReady(t)
	f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 500, Times: -1})
	if r := authed("POST", "/query", `{"question":"revenue"}`); r.Status != 502 {
		t.Fatalf("query with the chat model failing: %s", r)
	}
	// A token pasted into a URL reaches the access log.
	if r := authed("DELETE", "/documents/"+token, ""); r.Status != 404 {
		t.Fatalf("delete: %s", r)
	}
	// The key file rotates; the model API refuses the new key, quoting it.
	if err := os.WriteFile(keyFile, []byte(key2), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(keyFile, future, future); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated key to be used and refused", 10*time.Second, func() bool {
		r := authed("POST", "/retrieve", `{"question":"revenue"}`)
		return lastAuth.Load() == "Bearer "+key2 && r.Status == 502
	})

	logs := ts.logs.String()
	for _, want := range []string{"Start-up ingestion failed", "Request failed", "The request used the key", `"path":"/documents/` + ragserver.Redacted} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs do not mention %q", want)
		}
	}
	for name, secret := range map[string]string{"first key": key1, "rotated key": key2, "API token": token} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s is in the logs", name)
		}
	}
	if n := strings.Count(logs, `key \"`+ragserver.Redacted+`\"`); n < 3 {
		t.Errorf("%d redacted keys in the logs, want one per failure (>= 3)", n)
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}

// TestClientCancelIs499: a client that goes away mid-request is recorded as
// 499 in the metrics and the access log, logged at info, and not counted as
// an upstream failure; a request that runs out of REQUEST_TIMEOUT stays 504.
func TestClientCancelIs499(t *testing.T) {
	f, url := fake(t)
	ts := start(t, map[string]string{
		"OPENAI_BASE_URL": url, "LLM_MODEL": "fake-chat", "EMBEDDING_MODEL": "fake-embed",
		"REQUEST_TIMEOUT": "2s", "UPSTREAM_TIMEOUT": "5s", "MAX_RETRIES": "0", "LOG_LEVEL": "info",
	})
	if r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "a.md", "text": "Revenue grew."}}}); r.Status != 200 {
		t.Fatal(r)
	}
	f.SetLatency(fakeopenai.Chat, time.Minute)

	// The client gives up while the chat model thinks.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := mustReq(t, "POST", ts.URL+"/query", strings.NewReader(`{"question":"revenue"}`), "application/json").WithContext(ctx)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the query to reach the chat model", 5*time.Second, func() bool { return f.Stats().EmbeddingRequests >= 2 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want canceled", err)
	}
	waitFor(t, "the access log of the canceled request", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), `"path":"/query","status":499`)
	})

	// A request that runs out of REQUEST_TIMEOUT is still a 504.
	if r := ts.post(t, "/query", map[string]any{"question": "revenue"}); r.Status != 504 {
		t.Fatalf("query past REQUEST_TIMEOUT: %s", r)
	}

	m := string(ts.get(t, "/metrics").Body)
	for _, want := range []string{
		`ragserver_http_request_duration_seconds_count{code="499",method="POST",route="POST /query"} 1`,
		`ragserver_http_request_duration_seconds_count{code="504",method="POST",route="POST /query"} 1`,
		`ragserver_upstream_request_duration_seconds_count{kind="chat",outcome="canceled"} 1`,
		`ragserver_upstream_request_duration_seconds_count{kind="chat",outcome="timeout"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, bad := range []string{`code="502"`, `code="503"`, `kind="chat",outcome="error"`} {
		if strings.Contains(m, bad) {
			t.Errorf("metrics count a failure: %s", bad)
		}
	}
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(line, `"status":499`) && !strings.Contains(line, `"level":"INFO"`) {
			t.Errorf("the canceled request is logged above info: %s", line)
		}
	}
	if !strings.Contains(ts.logs.String(), `"msg":"Request canceled by the client"`) {
		t.Errorf("no log line says the client canceled:\n%s", ts.logs)
	}
}

// TestStoreRefusalIsInternalError: when Chroma refuses a request as
// malformed (here: the collection holds vectors of another dimension), the
// answer is a 500 logged as an error, not a 503 "try again later".
func TestStoreRefusalIsInternalError(t *testing.T) {
	// Its own Chroma: a query of the wrong dimension can leave Chroma 1.0's
	// local compactor broken for every later request (seen: "Error sending
	// backfill request to compactor").
	chroma := chromaserver.Start(t, "")
	prefix := fmt.Sprintf("refusal%d", time.Now().UnixNano())
	// The collection of the local embedder (384 dimensions) already holds a
	// 3-dimensional vector.
	cs, err := chromastore.New(chromastore.Options{URL: chroma.URL(), Collection: ragserver.CollectionName(prefix, "local-hash-384")})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Upsert(context.Background(), []vectorstore.Record{{ID: "x", Source: "x.md", Text: "x", Embedding: []float32{1, 0, 0}}}); err != nil {
		t.Fatal(err)
	}
	ts := start(t, map[string]string{"CHROMA_URL": chroma.URL(), "CHROMA_COLLECTION": prefix})
	r := ts.post(t, "/retrieve", map[string]any{"question": "revenue"})
	if r.Status != 500 || r.str("error") != "internal error" {
		t.Fatalf("retrieve: %s, want 500 internal error", r)
	}
	if !strings.Contains(ts.logs.String(), `"level":"ERROR","msg":"Request failed"`) {
		t.Fatalf("no error logged:\n%s", ts.logs)
	}
}
