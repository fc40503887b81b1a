package ragserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/docformat"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/vectorstore"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
	"github.com/ragops/ragops/internal/vectorstore/sqlitestore"
)

// Run runs the server until ctx ends, then shuts down gracefully. With
// args[0] == "healthcheck" it probes a running server's /healthz instead;
// with args[0] == "ingest" it indexes the declared sources once and exits
// (see runIngest); with args[0] == "migrate" it copies the documents of the
// API from a previous embedding model's collection (see runMigrate).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, getenv)
	}
	if len(args) > 0 && args[0] == contract.IndexerCommand {
		return runIngest(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == contract.MigrateCommand {
		return runMigrate(ctx, args[1:], getenv, stdout)
	}
	cfg, err := LoadConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	// The secrets never reach the logs, whatever an upstream's error says.
	sec := newSecrets(cfg)
	log := slog.New(traceLogHandler{newRedactHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}), sec.values)})

	tr, err := newTracing(ctx, getenv)
	if err != nil {
		return err
	}
	// Spans still queued are flushed when the server stops, after the last
	// request; a collector that does not answer in time loses them.
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.shutdown(fctx); err != nil {
			log.Warn("Flushing traces failed", "error", err.Error())
		}
	}()

	s, err := newServer(cfg, log, sec)
	if err != nil {
		return err
	}
	s.tracer = tr.provider
	defer s.svc.Store().Close()

	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Port, err)
	}
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.RequestTimeout,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("RAG server listening",
		"port", cfg.Port, "mode", s.svc.Mode(), "chat_model", s.svc.ChatModel(),
		"embedding_model", s.svc.EmbeddingModel(), "store", s.storeKind, "collection", s.collection,
		"docs_dir", cfg.DocsDir, "auth", s.token != nil, "tracing", tr.endpoint != "")
	if tr.endpoint != "" {
		log.Info("Exporting traces over OTLP/HTTP", "endpoint", tr.endpoint)
	}
	if _, err := docformat.PDFAvailable(); err != nil {
		log.Warn("PDF files will be skipped", "reason", err.Error())
	}
	for name, f := range map[string]*fileValue{"the API key": sec.apiKey, "the API token": sec.token} {
		if f != nil && f.get() != "" && len(f.get()) < MinRedactedSecret {
			log.Warn("Secret too short to be redacted from logs: use a longer one", "secret", name, "min_length", MinRedactedSecret)
		}
	}

	ingestCtx, stopIngest := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.startupIngest(ingestCtx) })

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopIngest()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	// Fail readiness at once and keep serving for the drain period, so that
	// the endpoints stop routing here before the listener closes; answers
	// close their connections so that clients reconnect elsewhere.
	s.shuttingDown.Store(true)
	srv.SetKeepAlivesEnabled(false)
	log.Info("Draining", "drain_period", cfg.DrainPeriod.String())
	select {
	case <-time.After(cfg.DrainPeriod):
	case err := <-errc:
		stopIngest()
		wg.Wait()
		return err
	}
	log.Info("Shutting down", "timeout", cfg.ShutdownTimeout.String())
	stopIngest()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("Stopped")
	return nil
}

func healthcheck(ctx context.Context, getenv func(string) string) error {
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", resp.StatusCode)
	}
	return nil
}

type server struct {
	cfg        Config
	log        *slog.Logger
	svc        *rag.Service
	metrics    *metrics
	tracer     trace.TracerProvider // no-op unless OTLP is configured
	token      *fileValue           // nil: no auth
	storeKind  string
	collection string

	ready        atomic.Bool // start-up ingestion done
	shuttingDown atomic.Bool
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// CollectionName is the collection of an embedding model: the prefix and a
// slug of the model, so that vectors of different models never mix.
func CollectionName(prefix, model string) string {
	slug := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(model), "-"), "-")
	name := strings.Trim(prefix, "-._") + "-" + slug
	if len(name) > 200 {
		name = name[:200]
	}
	return strings.TrimRight(name, "-._")
}

// newServer builds a server; sec holds the API key and token, read through
// getters shared with the log redaction (see newSecrets).
func newServer(cfg Config, log *slog.Logger, sec secrets) (*server, error) {
	s := &server{cfg: cfg, log: log, metrics: newMetrics(), tracer: noop.NewTracerProvider(), token: sec.token}

	var key func() string
	if sec.apiKey != nil {
		key = sec.apiKey.get
	}
	retry := llm.Retry{MaxAttempts: cfg.MaxRetries + 1, CallTimeout: cfg.UpstreamTimeout}
	var emb llm.Embedder = llm.Local{}
	if cfg.RemoteEmbeddings() {
		emb = llm.NewOpenAI(llm.Config{BaseURL: cfg.embeddingURL(), Key: key, Model: cfg.EmbeddingModel, Retry: retry, Observer: s.metrics})
	}
	var chat llm.ChatModel
	if cfg.Generative() {
		chat = llm.NewOpenAI(llm.Config{BaseURL: cfg.BaseURL, Key: key, Model: cfg.LLMModel, Retry: retry, Observer: s.metrics})
	}

	var reranker rag.Reranker
	if cfg.RerankBaseURL != "" {
		reranker = llm.NewReranker(llm.Config{BaseURL: cfg.RerankBaseURL, Key: key, Model: cfg.RerankModel,
			Retry: llm.Retry{MaxAttempts: 1, CallTimeout: cfg.UpstreamTimeout}, Observer: s.metrics})
	}

	s.collection = CollectionName(cfg.ChromaCollection, emb.Model())
	store, kind, err := openStore(cfg, s.collection)
	if err != nil {
		return nil, err
	}
	s.storeKind = kind
	system := map[string]string{"chroma": "chroma", "embedded": "sqlite"}[s.storeKind]
	s.svc = rag.New(observedStore{store, s.metrics, system}, emb, chat, rag.Options{
		ChunkSize: cfg.ChunkSize, ChunkOverlap: cfg.ChunkOverlap, TopK: cfg.TopK,
		EmbedBatch: cfg.EmbedBatchSize, EmbedConcurrency: cfg.EmbedConcurrency,
		Metrics: s.metrics,
		Mode:    cfg.RetrievalMode, LexicalWeight: cfg.LexicalWeight, QueryIDF: cfg.QueryIDF,
		Reranker: reranker, RerankTopN: cfg.RerankTopN, Logger: log,
	})
	return s, nil
}

// openStore opens the collection of the configured store: Chroma when
// CHROMA_URL is set, else the embedded store under DATA_DIR. kind is
// "chroma" or "embedded".
func openStore(cfg Config, collection string) (store vectorstore.Store, kind string, err error) {
	if cfg.ChromaURL != "" {
		cs, err := chromastore.New(chromastore.Options{URL: cfg.ChromaURL, Collection: collection, Timeout: cfg.UpstreamTimeout, Owner: cfg.Owner,
			LexicalRefresh: cfg.LexicalRefresh})
		if err != nil {
			return nil, "", fmt.Errorf("invalid configuration: %w", err)
		}
		// A collection of another owner is refused at start-up; an
		// unreachable Chroma is not fatal (the first use claims it).
		if err := cs.Claim(context.Background()); errors.Is(err, chromastore.ErrForeignCollection) {
			return nil, "", err
		}
		return cs, "chroma", nil
	}
	ss, err := sqlitestore.Open(cfg.DataDir, collection)
	if err != nil {
		return nil, "", fmt.Errorf("DATA_DIR: %w", err)
	}
	return ss, "embedded", nil
}

// routes is the one place where routes are declared.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /query", s.auth(s.handleQuery))
	mux.HandleFunc("POST /retrieve", s.auth(s.handleRetrieve))
	mux.HandleFunc("POST /documents", s.auth(s.handlePostDocuments))
	mux.HandleFunc("GET /documents", s.auth(s.handleListDocuments))
	mux.HandleFunc("DELETE /documents/{source}", s.auth(s.handleDeleteDocument))
	mux.HandleFunc("POST /v1/chat/completions", s.openAIAuth(s.handleChatCompletions))
	mux.HandleFunc("GET /v1/models", s.openAIAuth(s.handleListModels))
	mux.Handle("GET /{$}", chatPage) // static, no token (its API calls carry one)
	mux.Handle("GET /ui/", chatPage)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	unmatched := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// Let the mux decide between 404 and 405 (with Allow), in JSON.
			mux.ServeHTTP(&jsonErrorWriter{ResponseWriter: w, r: r}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return s.recoverer(s.metrics.instrument(s.traceRequests(s.accessLog(unmatched))))
}

// jsonErrorWriter turns the mux's plain-text 404 and 405 into JSON errors.
type jsonErrorWriter struct {
	http.ResponseWriter
	r     *http.Request
	wrote bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	msg := "no such route: " + w.r.Method + " " + w.r.URL.Path
	if code == http.StatusMethodNotAllowed {
		msg = "method " + w.r.Method + " is not allowed on " + w.r.URL.Path
	}
	w.Header().Del("X-Content-Type-Options")
	writeError(w.ResponseWriter, &apiError{code, msg})
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

func (s *server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	notReady := func(reason string) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
	}
	switch {
	case s.shuttingDown.Load():
		notReady("shutting down")
	case !s.ready.Load():
		notReady("start-up ingestion in progress")
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.svc.Store().Ping(ctx); err != nil {
			s.log.Warn("Vector store unreachable", "error", err.Error())
			notReady("vector store unreachable")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// startupIngest prepares the index (adopting the chunks of an older server
// version) and ingests DOCS_DIR, retrying with backoff until it succeeds,
// then marks the server ready and keeps the index tidy in the background.
func (s *server) startupIngest(ctx context.Context) {
	delay := 500 * time.Millisecond
	adopted := false
	for attempt := 1; ; attempt++ {
		err := s.startupStep(ctx, &adopted)
		if err == nil {
			s.ready.Store(true)
			s.metrics.startupOK.Set(1)
			break
		}
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if errors.Is(err, vectorstore.ErrInvalid) {
			level = slog.LevelError // the store refuses our requests: retrying will not fix it
		}
		s.log.Log(ctx, level, "Start-up ingestion failed, retrying", "attempt", attempt, "error", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
	s.maintainLoop(ctx)
}

func (s *server) startupStep(ctx context.Context, adopted *bool) (err error) {
	ctx, span := s.tracer.Tracer(TracerName).Start(ctx, "startup ingestion")
	defer func() {
		if err != nil {
			span.RecordError(errors.New("start-up ingestion failed"))
			span.SetStatus(codes.Error, "start-up ingestion failed")
		}
		span.End()
	}()
	if !*adopted {
		if err := s.adoptLegacy(ctx); err != nil {
			return err
		}
		*adopted = true
	}
	if s.cfg.DocsDir == "" {
		return nil
	}
	start := time.Now()
	docs, skipped, err := rag.LoadDir(s.cfg.DocsDir)
	if err != nil {
		return err
	}
	keep := make([]string, 0, len(skipped))
	for name, why := range skipped {
		s.log.Info("Skipping file in DOCS_DIR", "file", name, "reason", why)
		keep = append(keep, name)
	}
	if len(docs) == 0 && len(keep) == 0 {
		s.log.Warn("DOCS_DIR is empty: documents ingested from it earlier are removed from the index", "docs_dir", s.cfg.DocsDir)
	}
	// The index follows DOCS_DIR: sources ingested from it earlier whose file
	// is gone are deleted (a skipped file keeps its last version; documents
	// added through the API are never touched).
	res, err := s.svc.Sync(ctx, rag.OriginDocsDir, docs, keep)
	if err != nil {
		return err
	}
	if len(res.Pruned) > 0 {
		s.log.Info("Removed sources no longer in DOCS_DIR", "sources", res.Pruned, "chunks", res.PrunedChunks)
	}
	s.log.Info("Start-up ingestion done", "documents", res.Documents, "added", res.Added, "reused", res.Reused,
		"unchanged", res.Unchanged, "removed", res.Removed, "pruned_sources", len(res.Pruned),
		"duration", time.Since(start).String())
	return nil
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// adoptLegacy runs Maintain before the server is ready when the store holds
// chunks but no commit record: an index written by a server version before
// commit records, whose documents must stay visible. Otherwise it costs one
// small read of each kind.
func (s *server) adoptLegacy(ctx context.Context) error {
	store := s.svc.Store()
	versions, records := false, false
	err := store.ScanVersions(ctx, func([]vectorstore.SourceVersion) error { versions = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if versions {
		return nil
	}
	err = store.Scan(ctx, nil, false, func([]vectorstore.Record) error { records = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if !records {
		return nil
	}
	res, err := s.svc.Maintain(ctx, rag.DefaultGrace)
	if err != nil {
		return err
	}
	s.log.Info("Adopted the index of an older server version", "sources", res.Adopted, "chunks", res.Scanned)
	return nil
}

// MaintainInterval is how often the server pages through the index to
// collect the garbage of interrupted writes (see rag.Service.Maintain).
const MaintainInterval = time.Hour

// maintainLoop runs Maintain now and then every MaintainInterval until ctx
// ends. Several replicas may do so at once: it is idempotent.
func (s *server) maintainLoop(ctx context.Context) {
	for {
		start := time.Now()
		res, err := s.svc.Maintain(ctx, rag.DefaultGrace)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("Index maintenance failed", "error", err.Error())
		case res.Collected > 0 || res.Adopted > 0:
			s.log.Info("Index maintenance done", "scanned", res.Scanned, "collected", res.Collected,
				"adopted", res.Adopted, "duration", time.Since(start).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(MaintainInterval):
		}
	}
}

func (s *server) auth(next http.HandlerFunc) http.HandlerFunc {
	if s.token == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		want := s.token.get()
		got, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ragserver"`)
			writeError(w, &apiError{http.StatusUnauthorized, "missing or invalid bearer token"})
			return
		}
		next(w, r)
	}
}

// bearerToken returns the credentials of an Authorization header with the
// Bearer scheme. The scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				s.log.Error("Panic in handler", "route", r.Pattern, "panic", fmt.Sprint(v))
				writeError(w, &apiError{http.StatusInternalServerError, "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if r.Pattern == "GET /healthz" || r.Pattern == "GET /readyz" || r.Pattern == "GET /metrics" {
			return
		}
		level := slog.LevelInfo
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		s.log.LogAttrs(r.Context(), level, "Request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.code()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	})
}

// fileValue is a secret read from a file, re-read when the file changes (a
// rotated Kubernetes Secret), or a static value.
type fileValue struct {
	path   string
	static string

	mu      sync.Mutex
	checked time.Time
	mod     time.Time
	val     string
	prev    string // the value before the last change
}

func newFileValue(path string) *fileValue {
	f := &fileValue{path: path}
	f.get()
	return f
}

func (f *fileValue) get() string {
	if f.path == "" {
		return f.static
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < time.Second && f.val != "" {
		return f.val
	}
	f.checked = time.Now()
	fi, err := os.Stat(f.path)
	if err != nil || (fi.ModTime().Equal(f.mod) && f.val != "") {
		return f.val
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return f.val
	}
	if v := strings.TrimSpace(string(b)); v != f.val {
		f.prev, f.val = f.val, v
	}
	f.mod = fi.ModTime()
	return f.val
}

// getWithPrevious returns the value and the one it replaced, if any.
func (f *fileValue) getWithPrevious() (cur, prev string) {
	cur = f.get()
	if f.path == "" {
		return cur, ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return cur, f.prev
}
