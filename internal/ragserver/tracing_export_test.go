package ragserver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// otlpReceiver is a minimal OTLP/HTTP traces receiver: it decodes each
// protobuf export request with the collector's own pdata packages.
type otlpReceiver struct {
	mu       sync.Mutex
	requests int
	spans    []receivedSpan
	bad      []string
}

type receivedSpan struct {
	service             string
	name                string
	traceID, id, parent string
	start, end          time.Time
	attrs               map[string]any
	status              ptrace.StatusCode
}

func (rc *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		rc.bad = append(rc.bad, fmt.Sprintf("%s %s %s %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		rc.bad = append(rc.bad, "decode: "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.requests++
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := range ss.Len() {
				s := ss.At(k)
				rc.spans = append(rc.spans, receivedSpan{
					service: svc.Str(), name: s.Name(), traceID: s.TraceID().String(), id: s.SpanID().String(),
					parent: s.ParentSpanID().String(), start: s.StartTimestamp().AsTime(), end: s.EndTimestamp().AsTime(),
					attrs: s.Attributes().AsRaw(), status: s.Status().Code(),
				})
			}
		}
	}
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (rc *otlpReceiver) received() ([]receivedSpan, int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedSpan(nil), rc.spans...), rc.requests, append([]string(nil), rc.bad...)
}

// tree prints the spans of one trace as an indented tree with durations.
func tree(spans []receivedSpan, traceID string) string {
	var b strings.Builder
	kids := map[string][]receivedSpan{}
	ids := map[string]bool{}
	for _, s := range spans {
		if s.traceID == traceID {
			ids[s.id] = true
		}
	}
	for _, s := range spans {
		if s.traceID != traceID {
			continue
		}
		p := s.parent
		if !ids[p] {
			p = "" // a root, or the child of a remote span
		}
		kids[p] = append(kids[p], s)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		k := kids[parent]
		sort.Slice(k, func(i, j int) bool { return k[i].start.Before(k[j].start) })
		for _, s := range k {
			keys := make([]string, 0, len(s.attrs))
			for key := range s.attrs {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			var attrs []string
			for _, key := range keys {
				attrs = append(attrs, fmt.Sprintf("%s=%v", key, s.attrs[key]))
			}
			fmt.Fprintf(&b, "%s%-*s %9.3fms  %s\n", strings.Repeat("  ", depth), 28-2*depth, s.name,
				float64(s.end.Sub(s.start).Microseconds())/1000, strings.Join(attrs, " "))
			walk(s.id, depth+1)
		}
	}
	walk("", 0)
	return b.String()
}

// TestTracingOTLPExport runs the real server (Run) with the standard OTLP
// variables pointing at a receiver this test starts, asks a question, stops
// the server (which flushes the batch) and checks what arrived.
func TestTracingOTLPExport(t *testing.T) {
	rc := &otlpReceiver{}
	collector := httptest.NewServer(rc)
	defer collector.Close()
	_, modelURL := fake(t)
	ts := start(t, map[string]string{
		"OPENAI_BASE_URL":             modelURL,
		"OPENAI_API_KEY":              "sk-otlp-export-test-key-0123456789",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_SERVICE_NAME":           "rag-trace-test",
		"LOG_LEVEL":                   "info",
	})
	ts.waitReady(t)
	if r := ts.post(t, "/documents", map[string]any{"documents": []map[string]any{
		{"source": "gw.md", "text": "The zephyr gateway opens ports 7000 and 7001 for the orbital relay."},
		{"source": "ops.md", "text": "Operators rotate the relay keys every ninety days."},
	}}); r.Status != http.StatusOK {
		t.Fatalf("POST /documents: %v", r)
	}
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	req := mustReq(t, http.MethodPost, ts.URL+"/query", strings.NewReader(`{"question":"Which ports does the zephyr gateway open?","top_k":2}`), "application/json")
	req.Header.Set("traceparent", "00-"+clientTrace+"-b7ad6b7169203331-01")
	if r := do(t, req); r.Status != http.StatusOK {
		t.Fatalf("POST /query: %v", r)
	}
	ts.stop(t) // flushes the spans still in the batch

	spans, requests, bad := rc.received()
	if len(bad) > 0 {
		t.Fatalf("receiver got bad requests: %v", bad)
	}
	if requests == 0 {
		t.Fatalf("no OTLP export request arrived; logs: %s", ts.logs)
	}
	byName := map[string][]receivedSpan{}
	for _, s := range spans {
		if s.service != "rag-trace-test" {
			t.Errorf("span %s: service.name %q", s.name, s.service)
		}
		byName[s.name] = append(byName[s.name], s)
	}
	for _, name := range []string{"POST /documents", "rag.ingest", "store.upsert", "store.commit", "POST /query",
		"rag.retrieve", "store.query", "llm.embeddings", "rag.generate", "llm.chat"} {
		if len(byName[name]) == 0 {
			t.Errorf("no span %q arrived; got %v", name, byName)
		}
	}
	if t.Failed() {
		return
	}
	q := byName["POST /query"][0]
	if q.traceID != clientTrace || q.parent != "b7ad6b7169203331" {
		t.Errorf("POST /query: trace %s parent %s, want the client's", q.traceID, q.parent)
	}
	parentOf := func(name string) string {
		for _, s := range byName[name] {
			if s.traceID == clientTrace {
				for _, p := range spans {
					if p.id == s.parent {
						return p.name
					}
				}
			}
		}
		return ""
	}
	for child, parent := range map[string]string{"rag.retrieve": "POST /query", "rag.generate": "POST /query",
		"store.query": "rag.retrieve", "llm.embeddings": "rag.retrieve", "llm.chat": "rag.generate"} {
		if got := parentOf(child); got != parent {
			t.Errorf("%s: parent %q, want %q", child, got, parent)
		}
	}
	if v := byName["rag.retrieve"][0].attrs["rag.hits"]; v != int64(1) && v != int64(2) {
		t.Errorf("rag.retrieve hits %v", v)
	}
	if !strings.Contains(ts.logs.String(), `"trace_id":"`+clientTrace+`"`) {
		t.Errorf("no log line with the query's trace_id")
	}
	t.Logf("trace of one query, as received over OTLP/HTTP (%d export requests, %d spans):\n%s", requests, len(spans), tree(spans, clientTrace))
}
