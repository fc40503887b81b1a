package ragserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
)

const (
	traceTestKey      = "sk-trace-test-secret-key-0123456789"
	traceTestQuestion = "Which ports does the zephyr gateway open?"
	traceTestDocText  = "The zephyr gateway opens ports 7000 and 7001 for the orbital relay."
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tracedServer is a server whose spans go to an in-memory exporter, in
// front of the fake model API (whose requests' traceparent headers it
// records).
type tracedServer struct {
	url         string
	spans       *tracetest.InMemoryExporter
	logs        *lockedBuffer
	fake        *fakeopenai.Server
	mu          sync.Mutex
	traceparent []string // of the requests to the model API
}

func newTracedServer(t *testing.T) *tracedServer { return newTracedServerTB(t, "sync") }

// newTracedServerTB builds the server with tracing "off" (no-op provider),
// "sync" (spans exported as they end) or "batch" (as a real server does).
func newTracedServerTB(t testing.TB, mode string) *tracedServer {
	t.Helper()
	ts := &tracedServer{spans: tracetest.NewInMemoryExporter(), logs: &lockedBuffer{}, fake: fakeopenai.New(fakeopenai.Options{})}
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.traceparent = append(ts.traceparent, r.Header.Get("traceparent"))
		ts.mu.Unlock()
		ts.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(model.Close)
	env := map[string]string{"OPENAI_BASE_URL": model.URL + "/v1", "OPENAI_API_KEY": traceTestKey, "DATA_DIR": t.TempDir(), "MAX_RETRIES": "1"}
	getenv := func(k string) string { return env[k] }
	cfg, err := LoadConfig(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sec := newSecrets(cfg)
	log := slog.New(traceLogHandler{newRedactHandler(slog.NewJSONHandler(ts.logs, nil), sec.values)})
	s, err := newServer(cfg, log, sec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.svc.Store().Close() })
	switch mode {
	case "sync", "batch":
		opt := sdktrace.WithSyncer(ts.spans)
		if mode == "batch" {
			opt = sdktrace.WithBatcher(ts.spans)
		}
		tp := sdktrace.NewTracerProvider(opt)
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		s.tracer = tp
	}
	s.ready.Store(true)
	hs := httptest.NewServer(s.routes())
	t.Cleanup(hs.Close)
	ts.url = hs.URL
	return ts
}

func (ts *tracedServer) post(t testing.TB, path string, body any, header map[string]string) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// spanTree indexes ended spans by name and by parent.
type spanTree struct{ spans tracetest.SpanStubs }

func (st spanTree) named(t *testing.T, name string) []tracetest.SpanStub {
	t.Helper()
	var out []tracetest.SpanStub
	for _, s := range st.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no span %q among %v", name, st.names())
	}
	return out
}

func (st spanTree) names() []string {
	var out []string
	for _, s := range st.spans {
		out = append(out, s.Name)
	}
	return out
}

// children returns the names of the direct children of parent.
func (st spanTree) children(parent tracetest.SpanStub) []string {
	var out []string
	for _, s := range st.spans {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() && s.SpanContext.TraceID() == parent.SpanContext.TraceID() {
			out = append(out, s.Name)
		}
	}
	return out
}

func (st spanTree) only(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	s := st.named(t, name)
	if len(s) != 1 {
		t.Fatalf("%d spans %q, want 1", len(s), name)
	}
	return s[0]
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, s tracetest.SpanStub, key string, want any) {
	t.Helper()
	v, ok := attr(s, key)
	if !ok {
		t.Errorf("span %s: no attribute %s (has %v)", s.Name, key, s.Attributes)
		return
	}
	if got := v.AsInterface(); got != want {
		t.Errorf("span %s: %s = %v (%T), want %v (%T)", s.Name, key, got, got, want, want)
	}
}

func sameNames(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	count := map[string]int{}
	for _, n := range got {
		count[n]++
	}
	for _, n := range want {
		count[n]--
	}
	for _, c := range count {
		if c != 0 {
			return false
		}
	}
	return true
}

// noSecrets checks that no span carries the API key, the question or the
// document text, in an attribute, an event or a status.
func noSecrets(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	for _, s := range spans {
		var all []string
		for _, kv := range s.Attributes {
			all = append(all, kv.Value.String())
		}
		for _, e := range s.Events {
			for _, kv := range e.Attributes {
				all = append(all, kv.Value.String())
			}
		}
		all = append(all, s.Status.Description)
		for _, v := range all {
			for _, secret := range []string{traceTestKey, "zephyr", "orbital"} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s carries %q: %q", s.Name, secret, v)
				}
			}
		}
	}
}

func TestTracingIngestAndQuerySpans(t *testing.T) {
	ts := newTracedServer(t)

	// Ingestion: the request span, the pipeline's, the store's and the model's.
	if code := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "gw.md", "text": traceTestDocText}}}, nil); code != http.StatusOK {
		t.Fatalf("POST /documents: %d", code)
	}
	st := spanTree{ts.spans.GetSpans()}
	req := st.only(t, "POST /documents")
	if req.SpanKind != trace.SpanKindServer {
		t.Errorf("request span kind %v", req.SpanKind)
	}
	wantAttr(t, req, "http.route", "/documents")
	wantAttr(t, req, "http.response.status_code", int64(200))
	if got := st.children(req); !sameNames(got, "rag.ingest") {
		t.Errorf("children of POST /documents: %v", got)
	}
	ingest := st.only(t, "rag.ingest")
	if got := st.children(ingest); !sameNames(got, "store.versions", "llm.embeddings", "store.upsert", "store.commit", "store.delete") {
		t.Errorf("children of rag.ingest: %v", got)
	}
	wantAttr(t, ingest, rag.AttrDocuments, int64(1))
	wantAttr(t, ingest, rag.AttrAdded, int64(1))
	wantAttr(t, ingest, rag.AttrEmbedded, int64(1))
	wantAttr(t, st.only(t, "store.upsert"), AttrStoreRecords, int64(1))
	wantAttr(t, st.only(t, "store.commit"), AttrStoreRecords, int64(1))
	wantAttr(t, st.only(t, "store.commit"), AttrStoreSystem, "sqlite")
	emb := st.only(t, "llm.embeddings")
	wantAttr(t, emb, llm.AttrModel, DefaultEmbeddingModel)
	wantAttr(t, emb, llm.AttrInputs, int64(1))
	wantAttr(t, emb, llm.AttrAttempts, int64(1))
	ts.spans.Reset()

	// A query in a trace the client started: the request span is the child
	// of the client's span, and the model API gets the trace.
	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	// Vector mode: the exact span tree below (hybrid adds the lexical
	// query, see TestTracingChatCompletionsSpans).
	if code := ts.post(t, "/query", map[string]any{"question": traceTestQuestion, "top_k": 3, "mode": "vector"},
		map[string]string{"traceparent": "00-" + clientTrace + "-" + clientSpan + "-01"}); code != http.StatusOK {
		t.Fatalf("POST /query: %d", code)
	}
	st = spanTree{ts.spans.GetSpans()}
	req = st.only(t, "POST /query")
	if req.SpanContext.TraceID().String() != clientTrace || req.Parent.SpanID().String() != clientSpan || !req.Parent.IsRemote() {
		t.Errorf("request span: trace %s parent %s (remote %v), want the client's %s/%s",
			req.SpanContext.TraceID(), req.Parent.SpanID(), req.Parent.IsRemote(), clientTrace, clientSpan)
	}
	if got := st.children(req); !sameNames(got, "rag.retrieve", "rag.generate") {
		t.Errorf("children of POST /query: %v", got)
	}
	retrieve := st.only(t, "rag.retrieve")
	wantAttr(t, retrieve, rag.AttrTopK, int64(3))
	wantAttr(t, retrieve, rag.AttrHits, int64(1))
	if got := st.children(retrieve); !sameNames(got, "llm.embeddings", "store.query", "store.versions") {
		t.Errorf("children of rag.retrieve: %v", got)
	}
	wantAttr(t, st.only(t, "store.query"), AttrStoreHits, int64(1))
	gen := st.only(t, "rag.generate")
	wantAttr(t, gen, rag.AttrModel, DefaultLLMModel)
	wantAttr(t, gen, rag.AttrPassages, int64(1))
	if got := st.children(gen); !sameNames(got, "llm.chat") {
		t.Errorf("children of rag.generate: %v", got)
	}
	chat := st.only(t, "llm.chat")
	wantAttr(t, chat, llm.AttrModel, DefaultLLMModel)
	wantAttr(t, chat, llm.AttrStream, false)
	if v, _ := attr(chat, llm.AttrInputTokens); v.AsInt64() <= 0 {
		t.Errorf("llm.chat: input tokens %v", v.AsInt64())
	}
	for _, s := range st.spans {
		if s.SpanContext.TraceID().String() != clientTrace {
			t.Errorf("span %s is in trace %s, not the client's", s.Name, s.SpanContext.TraceID())
		}
		if s.Status.Code == codes.Error {
			t.Errorf("span %s failed: %s", s.Name, s.Status.Description)
		}
	}
	noSecrets(t, st.spans)

	// The model API got the spans of its calls as W3C traceparent.
	ts.mu.Lock()
	got := append([]string(nil), ts.traceparent...)
	ts.mu.Unlock()
	want := map[string]bool{}
	for _, s := range append(st.named(t, "llm.embeddings"), chat) {
		want["00-"+clientTrace+"-"+s.SpanContext.SpanID().String()+"-01"] = true
	}
	seen := 0
	for _, h := range got {
		if want[h] {
			seen++
		}
	}
	if seen != len(want) {
		t.Errorf("model API traceparents %v, want those of %v", got, want)
	}

	// The access log line of the query carries the trace and the request span.
	var found bool
	for line := range strings.SplitSeq(ts.logs.String(), "\n") {
		if !strings.Contains(line, `"path":"/query"`) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		found = true
		if rec["trace_id"] != clientTrace || rec["span_id"] != req.SpanContext.SpanID().String() {
			t.Errorf("log line %s: want trace_id %s span_id %s", line, clientTrace, req.SpanContext.SpanID())
		}
	}
	if !found {
		t.Errorf("no access log line for /query in %s", ts.logs)
	}
}

func TestTracingChatCompletionsSpans(t *testing.T) {
	ts := newTracedServer(t)
	if code := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "gw.md", "text": traceTestDocText}}}, nil); code != http.StatusOK {
		t.Fatalf("POST /documents: %d", code)
	}
	ts.spans.Reset()
	body := map[string]any{"model": DefaultLLMModel, "stream": true, "messages": []map[string]string{{"role": "user", "content": traceTestQuestion}}}
	if code := ts.post(t, "/v1/chat/completions", body, nil); code != http.StatusOK {
		t.Fatalf("POST /v1/chat/completions: %d", code)
	}
	st := spanTree{ts.spans.GetSpans()}
	req := st.only(t, "POST /v1/chat/completions")
	if req.Parent.IsValid() {
		t.Errorf("request span has a parent without a traceparent: %v", req.Parent)
	}
	if got := st.children(req); !sameNames(got, "rag.retrieve", "rag.generate") {
		t.Errorf("children of POST /v1/chat/completions: %v", got)
	}
	gen := st.only(t, "rag.generate")
	wantAttr(t, gen, rag.AttrStream, true)
	wantAttr(t, st.only(t, "llm.chat"), llm.AttrStream, true)
	// The default mode, hybrid: the vector and the lexical query, and the
	// look-ups of the committed versions (one per ranking, and one for the
	// fused list).
	ret := st.only(t, "rag.retrieve")
	wantAttr(t, ret, rag.AttrMode, "hybrid")
	got := st.children(ret)
	for _, want := range []string{"llm.embeddings", "store.query", "store.lexical_query", "store.versions"} {
		if !slices.Contains(got, want) {
			t.Errorf("children of rag.retrieve: %v, no %s", got, want)
		}
	}
	for _, name := range got {
		if !strings.HasPrefix(name, "store.") && !strings.HasPrefix(name, "llm.") {
			t.Errorf("children of rag.retrieve: %v: %s is neither a store nor a model call", got, name)
		}
	}
	noSecrets(t, st.spans)
}

func TestTracingRecordsErrors(t *testing.T) {
	ts := newTracedServer(t)
	if code := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{{"source": "gw.md", "text": traceTestDocText}}}, nil); code != http.StatusOK {
		t.Fatalf("POST /documents: %d", code)
	}
	ts.spans.Reset()
	ts.fake.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: http.StatusInternalServerError, Times: -1})
	if code := ts.post(t, "/query", map[string]any{"question": traceTestQuestion}, nil); code != http.StatusBadGateway {
		t.Fatalf("POST /query with a failing model: %d, want 502", code)
	}
	st := spanTree{ts.spans.GetSpans()}
	for name, desc := range map[string]string{
		"llm.chat":     "chat failed after 2 attempt(s), last status 500",
		"rag.generate": "chat model failed",
		"POST /query":  "Bad Gateway",
	} {
		s := st.only(t, name)
		if s.Status.Code != codes.Error || s.Status.Description != desc {
			t.Errorf("span %s: status %v %q, want Error %q", name, s.Status.Code, s.Status.Description, desc)
		}
	}
	chat := st.only(t, "llm.chat")
	wantAttr(t, chat, llm.AttrAttempts, int64(2))
	var exc bool
	for _, e := range chat.Events {
		exc = exc || e.Name == "exception"
	}
	if !exc {
		t.Errorf("llm.chat: no exception event in %v", chat.Events)
	}
	if s := st.only(t, "rag.retrieve"); s.Status.Code == codes.Error {
		t.Errorf("rag.retrieve failed: %s", s.Status.Description)
	}
	noSecrets(t, st.spans)
}

func TestTracingOffWithoutEndpoint(t *testing.T) {
	tr, err := newTracing(context.Background(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.provider.(*sdktrace.TracerProvider); ok || tr.endpoint != "" {
		t.Fatalf("tracing on without an endpoint: %T %q", tr.provider, tr.endpoint)
	}
	_, span := tr.provider.Tracer("x").Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("no-op provider records spans")
	}
	off, err := newTracing(context.Background(), func(k string) string {
		return map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvSDKDisabled: "true"}[k]
	})
	if err != nil || off.endpoint != "" {
		t.Errorf("OTEL_SDK_DISABLED=true: endpoint %q, err %v", off.endpoint, err)
	}
}

func TestTracingConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // endpoint, or the error's text
		err  bool
	}{
		{map[string]string{EnvOTLPEndpoint: "http://collector:4318"}, "http://collector:4318/v1/traces", false},
		{map[string]string{EnvOTLPEndpoint: "http://collector:4318/"}, "http://collector:4318/v1/traces", false},
		{map[string]string{EnvOTLPEndpoint: "http://a:4318", EnvOTLPTracesEndpoint: "https://b/custom"}, "https://b/custom", false},
		{map[string]string{EnvOTLPEndpoint: "collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL", true},
		{map[string]string{EnvOTLPEndpoint: "http://c:4318", EnvTracesSampler: "sometimes"}, "OTEL_TRACES_SAMPLER must be one of", true},
		{map[string]string{EnvOTLPEndpoint: "http://c:4318", EnvTracesSampler: "traceidratio", EnvTracesSamplerArg: "2"}, "OTEL_TRACES_SAMPLER_ARG must be a number in [0, 1]", true},
		{map[string]string{EnvOTLPEndpoint: "http://c:4318", EnvTracesSampler: "parentbased_traceidratio", EnvTracesSamplerArg: "0.25"}, "http://c:4318/v1/traces", false},
	} {
		tr, err := newTracing(context.Background(), func(k string) string { return tc.env[k] })
		switch {
		case tc.err && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		case !tc.err && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case !tc.err && tr.endpoint != tc.want:
			t.Errorf("%v: endpoint %q, want %q", tc.env, tr.endpoint, tc.want)
		}
		if err == nil {
			_ = tr.shutdown(context.Background())
		}
	}
	for name, want := range map[string]string{
		"":                         "ParentBased{root:AlwaysOnSampler",
		"always_off":               "AlwaysOffSampler",
		"traceidratio":             "TraceIDRatioBased{1}",
		"parentbased_always_off":   "ParentBased{root:AlwaysOffSampler",
		"parentbased_always_on":    "ParentBased{root:AlwaysOnSampler",
		"always_on":                "AlwaysOnSampler",
		"parentbased_traceidratio": "ParentBased{root:TraceIDRatioBased{1}",
	} {
		s, err := tracesSampler(name, "")
		if err != nil || !strings.HasPrefix(s.Description(), want) {
			t.Errorf("sampler %q: %v %v, want %s", name, s, err, want)
		}
	}
}

// BenchmarkQueryTracing measures one POST /query through the real handler
// chain and real HTTP (fake model API, embedded store) with tracing off (the
// no-op provider of a server without an OTLP endpoint) and on (the SDK with
// a batching processor, as a real server has, in front of an in-memory
// exporter): the ratio is the cost of tracing.
func BenchmarkQueryTracing(b *testing.B) {
	for _, mode := range []string{"off", "batch"} {
		b.Run(mode, func(b *testing.B) {
			ts := newTracedServerTB(b, mode)
			if code := ts.post(b, "/documents", map[string]any{"documents": []map[string]any{{"source": "gw.md", "text": traceTestDocText}}}, nil); code != http.StatusOK {
				b.Fatalf("POST /documents: %d", code)
			}
			body := map[string]any{"question": traceTestQuestion, "top_k": 3}
			for b.Loop() {
				if code := ts.post(b, "/query", body, nil); code != http.StatusOK {
					b.Fatalf("POST /query: %d", code)
				}
			}
		})
	}
}
