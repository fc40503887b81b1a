package ragserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/vectorstore"
)

// metrics holds the server's Prometheus collectors, on a registry of its own
// so that several servers can run in one process (tests).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.HistogramVec
	upstream  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	chunks    *prometheus.CounterVec
	rerankErr prometheus.Counter
	startupOK prometheus.Gauge
	inFlight  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ragserver_http_request_duration_seconds",
			Help:    "Latency of HTTP requests by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "code"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ragserver_upstream_request_duration_seconds",
			Help:    "Latency of calls to the model APIs and the vector store, by kind and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragserver_upstream_retries_total",
			Help: "Retries of model API calls by kind.",
		}, []string{"kind"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragserver_tokens_total",
			Help: "Tokens used, by kind (embedding, prompt, completion).",
		}, []string{"kind"}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragserver_chunks_indexed_total",
			Help: "Chunks added to or removed from the vector store.",
		}, []string{"op"}),
		rerankErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ragserver_rerank_failures_total",
			Help: "Queries whose reranking failed: their passages kept the fused order.",
		}),
		startupOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ragserver_startup_ingestion_done",
			Help: "1 once the start-up ingestion of DOCS_DIR has finished.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: contract.MetricRequestsInFlight,
			Help: "Requests being served, probes and scrapes excepted: the autoscaling signal of spec.autoscaling.targetRequestsInFlight.",
		}),
	}
	m.reg.MustRegister(m.requests, m.upstream, m.retries, m.tokens, m.chunks, m.rerankErr, m.startupOK, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Call and Retry implement llm.Observer. The outcome is an upstream HTTP
// status or a word; anything else is "other", so that a misbehaving upstream
// cannot add label values.
func (m *metrics) Call(op, outcome string, d time.Duration) {
	switch outcome {
	case "ok", "error", "timeout", "canceled":
	default:
		if n, err := strconv.Atoi(outcome); err != nil || n < 100 || n > 599 {
			outcome = "other"
		}
	}
	m.upstream.WithLabelValues(op, outcome).Observe(d.Seconds())
}
func (m *metrics) Retry(op string) { m.retries.WithLabelValues(op).Inc() }

// Tokens, Chunks and RerankFailed implement rag.Metrics.
func (m *metrics) Tokens(kind string, n int) {
	if n > 0 {
		m.tokens.WithLabelValues(kind).Add(float64(n))
	}
}
func (m *metrics) Chunks(added, removed int) {
	m.chunks.WithLabelValues("added").Add(float64(added))
	m.chunks.WithLabelValues("removed").Add(float64(removed))
}
func (m *metrics) RerankFailed() { m.rerankErr.Inc() }

// instrument records the latency of a route. Every label comes from a
// closed set, whatever the client sends: the route is a pattern of the route
// table or "unmatched", the method a standard one or "other".
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !isHousekeeping(r.URL.Path) {
			m.inFlight.Inc()
			defer m.inFlight.Dec()
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(sw.code())).Observe(time.Since(start).Seconds())
	})
}

// isHousekeeping reports whether a path is a probe or the metrics scrape,
// which do not count as load.
func isHousekeeping(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// methodLabel is the method as a metric label: the standard methods of RFC
// 9110 and PATCH, or "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// statusWriter remembers the status code; it passes Flush on for streaming.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// observedStore measures the calls to a vector store, and traces them as
// children of the span in their context (see storeSpan).
type observedStore struct {
	vectorstore.Store
	m      *metrics
	system string // "chroma" or "sqlite", for spans
}

// observe records a call and returns its outcome; a call whose caller went
// away is "canceled", not a failure of the store.
func (s observedStore) observe(ctx context.Context, op string, start time.Time, err error) string {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.Canceled):
		outcome = "canceled"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		outcome = "timeout"
	default:
		outcome = "error"
	}
	s.m.upstream.WithLabelValues("store_"+op, outcome).Observe(time.Since(start).Seconds())
	return outcome
}

func (s observedStore) Upsert(ctx context.Context, recs []vectorstore.Record) (err error) {
	ctx, span := s.storeSpan(ctx, "upsert", attribute.Int(AttrStoreRecords, len(recs)))
	defer func(start time.Time) { s.end(ctx, span, "upsert", start, err) }(time.Now())
	return s.Store.Upsert(ctx, recs)
}

func (s observedStore) Query(ctx context.Context, e []float32, k int, f map[string]string) (h []vectorstore.Hit, err error) {
	ctx, span := s.storeSpan(ctx, "query", attribute.Int(AttrStoreK, k))
	defer func(start time.Time) { s.end(ctx, span, "query", start, err, attribute.Int(AttrStoreHits, len(h))) }(time.Now())
	return s.Store.Query(ctx, e, k, f)
}

func (s observedStore) Scan(ctx context.Context, f map[string]string, emb bool, fn func([]vectorstore.Record) error) (err error) {
	ctx, span := s.storeSpan(ctx, "scan")
	defer func(start time.Time) { s.end(ctx, span, "scan", start, err) }(time.Now())
	return s.Store.Scan(ctx, f, emb, fn)
}

func (s observedStore) Commit(ctx context.Context, vs ...vectorstore.SourceVersion) (err error) {
	ctx, span := s.storeSpan(ctx, "commit", attribute.Int(AttrStoreRecords, len(vs)))
	defer func(start time.Time) { s.end(ctx, span, "commit", start, err) }(time.Now())
	return s.Store.Commit(ctx, vs...)
}

func (s observedStore) Versions(ctx context.Context, sources []string) (out map[string]vectorstore.SourceVersion, err error) {
	ctx, span := s.storeSpan(ctx, "versions", attribute.Int(AttrStoreRecords, len(sources)))
	defer func(start time.Time) { s.end(ctx, span, "versions", start, err) }(time.Now())
	return s.Store.Versions(ctx, sources)
}

func (s observedStore) ScanVersions(ctx context.Context, fn func([]vectorstore.SourceVersion) error) (err error) {
	ctx, span := s.storeSpan(ctx, "scan_versions")
	defer func(start time.Time) { s.end(ctx, span, "scan_versions", start, err) }(time.Now())
	return s.Store.ScanVersions(ctx, fn)
}

func (s observedStore) Uncommit(ctx context.Context, source string) (err error) {
	ctx, span := s.storeSpan(ctx, "uncommit")
	defer func(start time.Time) { s.end(ctx, span, "uncommit", start, err) }(time.Now())
	return s.Store.Uncommit(ctx, source)
}

func (s observedStore) Delete(ctx context.Context, ids []string) (err error) {
	ctx, span := s.storeSpan(ctx, "delete", attribute.Int(AttrStoreRecords, len(ids)))
	defer func(start time.Time) { s.end(ctx, span, "delete", start, err) }(time.Now())
	return s.Store.Delete(ctx, ids)
}

// LexicalQuery implements vectorstore.Lexical when the store does.
func (s observedStore) LexicalQuery(ctx context.Context, query string, k int, f map[string]string) (h []vectorstore.Hit, err error) {
	ctx, span := s.storeSpan(ctx, "lexical_query", attribute.Int(AttrStoreK, k))
	defer func(start time.Time) {
		s.end(ctx, span, "lexical_query", start, err, attribute.Int(AttrStoreHits, len(h)))
	}(time.Now())
	lex, ok := s.Store.(vectorstore.Lexical)
	if !ok {
		return nil, fmt.Errorf("%w: the store has no lexical index", vectorstore.ErrInvalid)
	}
	return lex.LexicalQuery(ctx, query, k, f)
}

// DocFreqs implements vectorstore.Lexical when the store does.
func (s observedStore) DocFreqs(ctx context.Context, terms []string) (f []int, n int, err error) {
	ctx, span := s.storeSpan(ctx, "doc_freqs", attribute.Int(AttrStoreRecords, len(terms)))
	defer func(start time.Time) { s.end(ctx, span, "doc_freqs", start, err) }(time.Now())
	lex, ok := s.Store.(vectorstore.Lexical)
	if !ok {
		return nil, 0, fmt.Errorf("%w: the store has no lexical index", vectorstore.ErrInvalid)
	}
	return lex.DocFreqs(ctx, terms)
}
