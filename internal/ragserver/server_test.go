package ragserver_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

func TestFirstRunOffline(t *testing.T) {
	ts := start(t, map[string]string{"DOCS_DIR": sampleDocs})
	ts.waitReady(t)

	r := ts.post(t, "/query", map[string]any{"question": "What was the net interest margin in the fourth quarter?"})
	if r.Status != 200 || r.str("mode") != "extractive" || r.str("model") != "extractive" {
		t.Fatalf("query: %s", r)
	}
	sources := r.list("sources")
	if len(sources) != 4 {
		t.Fatalf("got %d sources, want TOP_K=4", len(sources))
	}
	first := sources[0].(map[string]any)
	for _, k := range []string{"id", "source", "chunk", "text", "score"} {
		if _, ok := first[k]; !ok {
			t.Errorf("source lacks %q: %v", k, first)
		}
	}
	if first["source"] != "q4-earnings-call.md" || !strings.Contains(r.str("answer"), "3.18%") {
		t.Fatalf("best source %v, answer %q", first["source"], r.str("answer"))
	}

	r = ts.get(t, "/documents")
	if r.Status != 200 || len(r.list("documents")) != 5 || r.str("embedding_model") != "local-hash-384" {
		t.Fatalf("documents: %s", r)
	}
	r = ts.get(t, "/metrics")
	for _, m := range []string{`ragserver_http_request_duration_seconds_count{code="200",method="POST",route="POST /query"} 1`,
		`ragserver_chunks_indexed_total{op="added"} 8`, `ragserver_startup_ingestion_done 1`} {
		if !strings.Contains(string(r.Body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestGenerativeOnChroma(t *testing.T) {
	chroma := chromaserver.Shared(t)
	f, url := fake(t)
	ts := start(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test",
		"LLM_MODEL": "fake-chat-1", "EMBEDDING_MODEL": "fake-embed-1",
		"CHROMA_URL": chroma.URL(), "CHROMA_COLLECTION": "gen",
	})
	ts.waitReady(t)

	q := map[string]any{"question": "What are the main credit risks?", "top_k": 2}
	r := ts.post(t, "/query", q)
	if r.Status != 200 || r.str("mode") != "generative" || r.str("model") != "fake-chat-1" {
		t.Fatalf("query: %s", r)
	}
	// The fake echoes the model it was asked for and the passages it saw.
	answer := r.str("answer")
	if !strings.Contains(answer, "Model fake-chat-1 read 2 passages") || !strings.Contains(answer, "risk-factors.md") {
		t.Fatalf("the model did not get the context: %q", answer)
	}
	if f.Stats().LastEmbeddingModel != "fake-embed-1" {
		t.Fatalf("embedding model %q", f.Stats().LastEmbeddingModel)
	}
	usage := r.JSON["usage"].(map[string]any)
	if usage["completion_tokens"].(float64) == 0 || usage["embedding_tokens"].(float64) == 0 {
		t.Fatalf("usage %v", usage)
	}

	t.Run("stream", func(t *testing.T) {
		resp, err := http.Post(ts.URL+"/query", "application/json", strings.NewReader(`{"question":"What are the main credit risks?","top_k":2,"stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d, type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := readSSE(t, resp.Body)
		var tokens strings.Builder
		for _, e := range events[:len(events)-1] {
			if e.Event != "token" {
				t.Fatalf("event %q before the end", e.Event)
			}
			tokens.WriteString(e.Data["token"].(string))
		}
		done := events[len(events)-1]
		if done.Event != "done" || done.Data["answer"] != tokens.String() || tokens.String() != answer {
			t.Fatalf("done event %v, tokens %q", done, tokens.String())
		}
		if len(done.Data["sources"].([]any)) != 2 {
			t.Fatalf("done event sources: %v", done.Data["sources"])
		}
	})

	t.Run("retrieve makes no chat call", func(t *testing.T) {
		before := f.Stats().ChatRequests
		r := ts.post(t, "/retrieve", map[string]any{"question": "dividend per share", "top_k": 1})
		if r.Status != 200 || len(r.list("sources")) != 1 {
			t.Fatalf("retrieve: %s", r)
		}
		if src := r.list("sources")[0].(map[string]any)["source"]; src != "dividend-policy.txt" {
			t.Fatalf("best source %v", src)
		}
		if f.Stats().ChatRequests != before {
			t.Fatal("retrieve called the chat model")
		}
	})

	t.Run("documents API", func(t *testing.T) {
		r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{
			{"source": "memo.txt", "text": "The treasury team hedged 60% of floating-rate exposure with swaps.", "metadata": map[string]any{"team": "treasury", "year": 2024}},
		}})
		if r.Status != 200 || r.JSON["added"].(float64) != 1 || r.JSON["documents"].(float64) != 1 {
			t.Fatalf("post documents: %s", r)
		}
		r = ts.post(t, "/retrieve", map[string]any{"question": "swaps hedge", "filter": map[string]any{"team": "treasury", "year": 2024}})
		if r.Status != 200 || len(r.list("sources")) != 1 {
			t.Fatalf("filtered retrieve: %s", r)
		}
		src := r.list("sources")[0].(map[string]any)
		if src["source"] != "memo.txt" || src["metadata"].(map[string]any)["year"] != "2024" {
			t.Fatalf("filtered source %v", src)
		}

		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, err := mw.CreateFormFile("file", "upload.md")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(fw, "# Upload\n\nBranch count fell to 140 after two closures."); err != nil {
			t.Fatal(err)
		}
		mw.Close()
		r = do(t, mustReq(t, "POST", ts.URL+"/documents", &body, mw.FormDataContentType()))
		if r.Status != 200 || r.JSON["added"].(float64) != 1 {
			t.Fatalf("multipart upload: %s", r)
		}

		r = do(t, mustReq(t, "DELETE", ts.URL+"/documents/memo.txt", nil, ""))
		if r.Status != 200 || r.JSON["removed"].(float64) != 1 {
			t.Fatalf("delete: %s", r)
		}
		r = ts.get(t, "/documents")
		var names []string
		for _, d := range r.list("documents") {
			names = append(names, d.(map[string]any)["source"].(string))
		}
		if strings.Join(names, ",") != "10k-summary.md,dividend-policy.txt,glossary.md,q4-earnings-call.md,risk-factors.md,upload.md" {
			t.Fatalf("documents after delete: %v", names)
		}
	})
}

func TestRestartReingestsWithoutEmbeddingCalls(t *testing.T) {
	chroma := chromaserver.Shared(t)
	f, url := fake(t)
	env := map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "EMBEDDING_MODEL": "fake-embed-restart",
		"LLM_MODEL": "local", "CHROMA_URL": chroma.URL(),
	}
	first := start(t, env)
	first.waitReady(t)
	if f.Stats().EmbeddingRequests == 0 {
		t.Fatal("first start made no embedding call")
	}
	first.stop(t)
	f.Reset()
	second := start(t, env)
	second.waitReady(t)
	if n := f.Stats().EmbeddingRequests; n != 0 {
		t.Fatalf("second start of unchanged docs made %d embedding calls, want 0", n)
	}
	r := second.post(t, "/query", map[string]any{"question": "dividend"})
	if r.Status != 200 || r.str("mode") != "extractive" || f.Stats().EmbeddingRequests != 1 {
		t.Fatalf("query: %s (embedding calls %d)", r, f.Stats().EmbeddingRequests)
	}
}

func TestEmbeddedStorePersistsAcrossRestart(t *testing.T) {
	env := map[string]string{"DATA_DIR": t.TempDir()}
	first := start(t, env)
	r := first.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "kept.md", "text": "Goodwill impairment was zero."}}})
	if r.Status != 200 {
		t.Fatal(r)
	}
	first.stop(t)
	second := start(t, env)
	r = second.post(t, "/retrieve", map[string]any{"question": "goodwill impairment"})
	if r.Status != 200 || len(r.list("sources")) != 1 || r.list("sources")[0].(map[string]any)["source"] != "kept.md" {
		t.Fatalf("after restart: %s", r)
	}
}

func TestReplicasIngestConcurrently(t *testing.T) {
	chroma := chromaserver.Shared(t)
	_, url := fake(t)
	env := map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "EMBEDDING_MODEL": "fake-embed-replicas",
		"LLM_MODEL": "local", "CHROMA_URL": chroma.URL(), "CHUNK_SIZE": "200", "CHUNK_OVERLAP": "20",
	}
	var wg sync.WaitGroup
	servers := make([]*testServer, 3)
	for i := range servers {
		wg.Go(func() { servers[i] = start(t, env) })
	}
	wg.Wait()
	for _, s := range servers {
		s.waitReady(t)
	}
	// Every replica sees the same, complete index, with no duplicate chunks.
	var want string
	for i, s := range servers {
		r := s.get(t, "/documents")
		if r.Status != 200 || len(r.list("documents")) != 5 {
			t.Fatalf("replica %d: %s", i, r)
		}
		if i == 0 {
			want = string(r.Body)
		} else if string(r.Body) != want {
			t.Fatalf("replica %d sees %s, replica 0 %s", i, r.Body, want)
		}
	}
	solo := start(t, map[string]string{"DOCS_DIR": sampleDocs, "CHUNK_SIZE": "200", "CHUNK_OVERLAP": "20"})
	solo.waitReady(t)
	if r := solo.get(t, "/documents"); strings.Replace(string(r.Body), "local-hash-384", "fake-embed-replicas", 1) != want {
		t.Fatalf("concurrent ingestion %s differs from a single one %s", want, r.Body)
	}
}

func TestChromaDown(t *testing.T) {
	chroma := chromaserver.Start(t, "")
	ts := start(t, map[string]string{"DOCS_DIR": sampleDocs, "CHROMA_URL": chroma.URL(), "UPSTREAM_TIMEOUT": "2s"})
	ts.waitReady(t)
	q := map[string]any{"question": "net income"}
	if r := ts.post(t, "/query", q); r.Status != 200 {
		t.Fatal(r)
	}
	chroma.Stop()
	waitFor(t, "/readyz to fail", 10*time.Second, func() bool { return ts.status(t, "GET", "/readyz") == 503 })
	r := ts.post(t, "/query", q)
	if r.Status != 503 || r.str("error") != "the vector store is unavailable, try again later" {
		t.Fatalf("query with Chroma down: %s", r)
	}
	if strings.Contains(string(r.Body), "127.0.0.1") || strings.Contains(string(r.Body), "connect") {
		t.Fatalf("error leaks internals: %s", r.Body)
	}
	if err := chroma.Restart(); err != nil {
		t.Fatal(err)
	}
	ts.waitReady(t)
	if r := ts.post(t, "/query", q); r.Status != 200 || len(r.list("sources")) == 0 {
		t.Fatalf("query after recovery: %s", r)
	}
}

func TestChromaDownAtStartup(t *testing.T) {
	chroma := chromaserver.Start(t, "")
	chroma.Stop()
	// Connections are refused at once while Chroma is down; the timeout only
	// gives the restarted Chroma room on a loaded machine.
	ts := start(t, map[string]string{"DOCS_DIR": sampleDocs, "CHROMA_URL": chroma.URL(), "UPSTREAM_TIMEOUT": "5s"})
	if s := ts.status(t, "GET", "/readyz"); s != 503 {
		t.Fatalf("readyz = %d with Chroma down, want 503", s)
	}
	if err := chroma.Restart(); err != nil {
		t.Fatal(err)
	}
	ts.waitReady(t) // start-up ingestion retried and finished
	if r := ts.get(t, "/documents"); len(r.list("documents")) != 5 {
		t.Fatalf("documents: %s", r)
	}
}

func TestModelFaults(t *testing.T) {
	f, url := fake(t)
	ts := start(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "LLM_MODEL": "fake-chat", "EMBEDDING_MODEL": "fake-embed",
		"MAX_RETRIES": "2", "REQUEST_TIMEOUT": "3s", "UPSTREAM_TIMEOUT": "1s",
	})
	ts.waitReady(t)
	q := map[string]any{"question": "What was total revenue?"}

	t.Run("429 then success is retried", func(t *testing.T) {
		f.Reset()
		f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 429, Times: 1, RetryAfter: "1"})
		start := time.Now()
		r := ts.post(t, "/query", q)
		if r.Status != 200 || r.str("mode") != "generative" {
			t.Fatalf("query: %s", r)
		}
		if s := f.Stats(); s.Faulted != 1 || s.ChatRequests != 1 || time.Since(start) < time.Second {
			t.Fatalf("stats %+v after %v: want one 429, a retry after Retry-After", s, time.Since(start))
		}
		m := string(ts.get(t, "/metrics").Body)
		if !strings.Contains(m, `ragserver_upstream_retries_total{kind="chat"} 1`) {
			t.Fatal("retry not counted in metrics")
		}
	})

	t.Run("500 forever gives 502 after bounded retries", func(t *testing.T) {
		f.Reset()
		f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 500, Times: -1})
		r := ts.post(t, "/query", q)
		if r.Status != 502 || r.str("error") != "the chat model failed to answer" {
			t.Fatalf("query: %s", r)
		}
		if strings.Contains(string(r.Body), "injected") {
			t.Fatalf("error leaks upstream text: %s", r.Body)
		}
		if s := f.Stats(); s.Faulted != 3 {
			t.Fatalf("%d attempts, want 1 + MAX_RETRIES=2", s.Faulted)
		}
		// A stream that fails before its first token is a plain JSON error.
		r = ts.post(t, "/query", map[string]any{"question": "revenue", "stream": true})
		if r.Status != 502 || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("stream: %s", r)
		}
	})

	t.Run("embeddings failing gives 502", func(t *testing.T) {
		f.Reset()
		f.SetFault(fakeopenai.Embeddings, fakeopenai.Fault{Status: 503, Times: -1})
		r := ts.post(t, "/retrieve", q)
		if r.Status != 502 || r.str("error") != "the embedding model failed to answer" {
			t.Fatalf("retrieve: %s", r)
		}
	})

	t.Run("too slow gives 504 at the deadline", func(t *testing.T) {
		f.Reset()
		f.SetLatency(fakeopenai.Chat, 10*time.Second)
		start := time.Now()
		r := ts.post(t, "/query", q)
		if r.Status != 504 {
			t.Fatalf("query: %s", r)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("answered after %v, want by the 3s REQUEST_TIMEOUT", d)
		}
	})
	f.Reset()
}

func TestAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, map[string]string{"API_TOKEN_FILE": tokenFile})
	query := func(token string) int {
		req := mustReq(t, "POST", ts.URL+"/retrieve", strings.NewReader(`{"question":"x"}`), "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return do(t, req).Status
	}
	if s := query(""); s != 401 {
		t.Fatalf("no token: %d", s)
	}
	if s := query("wrong"); s != 401 {
		t.Fatalf("wrong token: %d", s)
	}
	if s := query("s3cret"); s != 200 {
		t.Fatalf("right token: %d", s)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if s := ts.status(t, "GET", p); s != 200 {
			t.Errorf("%s needs no token, got %d", p, s)
		}
	}
	// A rotated Secret file takes effect without a restart.
	if err := os.WriteFile(tokenFile, []byte("n3w"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tokenFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new token to be accepted", 5*time.Second, func() bool { return query("n3w") == 200 })
	if s := query("s3cret"); s != 401 {
		t.Fatalf("old token after rotation: %d", s)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	f, url := fake(t)
	ts := start(t, map[string]string{"OPENAI_BASE_URL": url, "LLM_MODEL": "fake-chat", "EMBEDDING_MODEL": "fake-embed"})
	if r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "a.md", "text": "Alpha."}}}); r.Status != 200 {
		t.Fatal(r)
	}
	f.SetLatency(fakeopenai.Chat, 500*time.Millisecond)
	result := make(chan response, 1)
	go func() { result <- ts.post(t, "/query", map[string]any{"question": "alpha"}) }()
	waitFor(t, "the query to reach the model", 5*time.Second, func() bool { return f.Stats().EmbeddingRequests >= 2 })
	ts.stop(t)
	if r := <-result; r.Status != 200 {
		t.Fatalf("in-flight query: %s", r)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PORT": "99999"}, "PORT"},
		{map[string]string{"TOP_K": "zero"}, "TOP_K"},
		{map[string]string{"CHUNK_SIZE": "100", "CHUNK_OVERLAP": "100"}, "CHUNK_OVERLAP=100 must be smaller than CHUNK_SIZE=100"},
		{map[string]string{"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"},
		{map[string]string{"CHROMA_URL": "not a url"}, "CHROMA_URL"},
		{map[string]string{"OPENAI_API_KEY": "k", "OPENAI_API_KEY_FILE": "/etc/hostname"}, "not both"},
		{map[string]string{"OPENAI_API_KEY_FILE": "/nonexistent/key"}, "OPENAI_API_KEY_FILE"},
		{map[string]string{"DOCS_DIR": "/nonexistent/docs"}, "DOCS_DIR"},
		{map[string]string{"REQUEST_TIMEOUT": "-1s"}, "REQUEST_TIMEOUT"},
		{map[string]string{"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"DRAIN_PERIOD": "-1s"}, "DRAIN_PERIOD"},
		{map[string]string{"TOP_K": "51"}, "TOP_K=\"51\" must be an integer from 1 to 50"},
		{map[string]string{"CHUNK_SIZE": "49"}, "CHUNK_SIZE"},
		{map[string]string{"LLM_MODEL": "gpt-4o-mini"}, "LLM_MODEL=gpt-4o-mini needs OPENAI_API_KEY"},
		{map[string]string{"EMBEDDING_MODEL": "text-embedding-3-small"}, "EMBEDDING_MODEL=text-embedding-3-small needs OPENAI_API_KEY"},
	}
	for _, tt := range tests {
		err := ragserver.Run(context.Background(), nil, func(k string) string { return tt.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: err = %v, want one line mentioning %q", tt.env, err, tt.want)
		}
	}
	// Flags win over the environment.
	err := ragserver.Run(context.Background(), []string{"-top-k", "0"}, func(k string) string { return map[string]string{"TOP_K": "3"}[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TOP_K=\"0\"") {
		t.Errorf("flag -top-k 0: err = %v", err)
	}
	// The key never appears in logs.
	logs := &syncBuffer{}
	port := freePort(t)
	env := map[string]string{"PORT": itoa(port), "OPENAI_API_KEY": "sk-very-secret", "DATA_DIR": t.TempDir(), "DRAIN_PERIOD": "0s"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ragserver.Run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	waitFor(t, "the server to log", 10*time.Second, func() bool { return strings.Contains(logs.String(), "listening") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(logs.String(), "sk-very-secret") {
		t.Fatal("the API key appears in the logs")
	}
}

func TestHealthcheckCommand(t *testing.T) {
	ts := start(t, nil)
	port := strings.TrimPrefix(ts.URL, "http://127.0.0.1:")
	if err := ragserver.Run(context.Background(), []string{"healthcheck"}, func(k string) string { return map[string]string{"PORT": port}[k] }, io.Discard); err != nil {
		t.Fatalf("healthcheck of a running server: %v", err)
	}
	free := itoa(freePort(t))
	if err := ragserver.Run(context.Background(), []string{"healthcheck"}, func(k string) string { return map[string]string{"PORT": free}[k] }, io.Discard); err == nil {
		t.Fatal("healthcheck of nothing succeeded")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
