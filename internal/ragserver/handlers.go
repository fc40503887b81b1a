package ragserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/docformat"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/vectorstore"
)

// Request limits.
const (
	MaxTopK          = contract.MaxTopK
	MaxQuestionRunes = 4000
	MaxDocuments     = 1000
	MaxSourceRunes   = 256

	// Metadata is copied into every chunk of its document, so it is bounded
	// per document (and per query filter): number of keys, length of a key,
	// length of a value (numbers and booleans count as their text), and
	// keys and values together.
	MaxMetadataKeys       = 32
	MaxMetadataKeyRunes   = 64
	MaxMetadataValueBytes = 1024
	MaxMetadataBytes      = 4096
)

type queryRequest struct {
	Question string         `json:"question"`
	TopK     *int           `json:"top_k"`
	Filter   map[string]any `json:"filter"`
	Mode     string         `json:"mode"`
	Stream   bool           `json:"stream"`
}

type retrieveRequest struct {
	Question string         `json:"question"`
	TopK     *int           `json:"top_k"`
	Filter   map[string]any `json:"filter"`
	Mode     string         `json:"mode"`
}

// validQuery checks a question, top_k, filter and retrieval mode.
func validQuery(question string, topK *int, filter map[string]any, mode string) (rag.Query, *apiError) {
	q := rag.Query{Question: strings.TrimSpace(question), Mode: mode}
	if mode != "" && !contract.ValidRetrievalMode(mode) {
		return q, badRequest(`field "mode" must be one of %s (or absent: the server's default)`, strings.Join(contract.RetrievalModes, ", "))
	}
	if q.Question == "" {
		return q, badRequest(`field "question" is required and must not be empty`)
	}
	if n := utf8.RuneCountInString(q.Question); n > MaxQuestionRunes {
		return q, badRequest(`field "question" has %d characters, more than %d`, n, MaxQuestionRunes)
	}
	if topK != nil {
		if *topK < 1 || *topK > MaxTopK {
			return q, badRequest(`field "top_k" must be from 1 to %d`, MaxTopK)
		}
		q.TopK = *topK
	}
	f, err := scalarMap(`field "filter"`, filter, true)
	if err != nil {
		return q, err
	}
	q.Filter = f
	return q, nil
}

// scalarMap converts a JSON object of strings, numbers and booleans to
// strings (metadata is stored as strings), within the metadata limits. what
// names the object in messages, e.g. `field "filter"` or `metadata of
// document "a.md"`.
func scalarMap(what string, m map[string]any, isFilter bool) (map[string]string, *apiError) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > MaxMetadataKeys {
		return nil, badRequest("%s has %d keys, more than the limit of %d", what, len(m), MaxMetadataKeys)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same key is named every time
	out := make(map[string]string, len(m))
	total := 0
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			return nil, badRequest("%s has an empty key", what)
		}
		if n := utf8.RuneCountInString(k); n > MaxMetadataKeyRunes {
			return nil, badRequest("%s has a key of %d characters (%q), more than the limit of %d", what, n, abbrev(k), MaxMetadataKeyRunes)
		}
		// A filter may name the source; nothing may set a reserved key.
		if (vectorstore.Reserved(k) && (!isFilter || k != vectorstore.KeySource)) || (!isFilter && k == rag.KeyOrigin) {
			return nil, badRequest("%s may not use the reserved key %q", what, k)
		}
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		default:
			return nil, badRequest("%s: value of %q must be a string, number or boolean", what, k)
		}
		if len(v) > MaxMetadataValueBytes {
			return nil, badRequest("%s: value of %q is %d bytes, more than the limit of %d", what, k, len(v), MaxMetadataValueBytes)
		}
		total += len(k) + len(v)
		out[k] = v
	}
	if total > MaxMetadataBytes {
		return nil, badRequest("%s is %d bytes (keys and values), more than the limit of %d", what, total, MaxMetadataBytes)
	}
	return out, nil
}

// abbrev shortens a long user string for an error message.
func abbrev(s string) string {
	if utf8.RuneCountInString(s) <= 32 {
		return s
	}
	return string([]rune(s)[:32]) + "..."
}

func (s *server) handleQuery(w http.ResponseWriter, r *http.Request) {
	var req queryRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		writeError(w, e)
		return
	}
	q, e := validQuery(req.Question, req.TopK, req.Filter, req.Mode)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if !req.Stream {
		a, err := s.svc.Answer(ctx, q, nil)
		if err != nil {
			s.upstreamError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
		return
	}
	s.streamAnswer(ctx, w, r, q)
}

// streamAnswer answers with Server-Sent Events: "token" events with
// {"token": "..."}, then one "done" event with the whole answer and its
// sources, or an "error" event if the model fails mid-answer. Failures before
// the first token get a normal JSON error status.
func (s *server) streamAnswer(ctx context.Context, w http.ResponseWriter, r *http.Request, q rag.Query) {
	flusher, _ := w.(http.Flusher)
	started := false
	send := func(event string, v any) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	a, err := s.svc.Answer(ctx, q, func(tok string) error {
		return send("token", map[string]string{"token": tok})
	})
	if err != nil {
		if !started {
			s.upstreamError(w, r, err)
			return
		}
		e := s.classify(r, err)
		_ = send("error", errorBody{Error: e.Message, Status: e.Status})
		return
	}
	_ = send("done", a)
}

func (s *server) handleRetrieve(w http.ResponseWriter, r *http.Request) {
	var req retrieveRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		writeError(w, e)
		return
	}
	q, e := validQuery(req.Question, req.TopK, req.Filter, req.Mode)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	sources, usage, err := s.svc.Retrieve(ctx, q)
	if err != nil {
		s.upstreamError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": sources, "usage": usage})
}

type documentIn struct {
	Source   string         `json:"source"`
	Text     string         `json:"text"`
	Metadata map[string]any `json:"metadata"`
}

type documentsRequest struct {
	Documents []documentIn `json:"documents"`
}

func validSource(src string) *apiError {
	switch {
	case strings.TrimSpace(src) == "":
		return badRequest(`every document needs a non-empty "source"`)
	case utf8.RuneCountInString(src) > MaxSourceRunes:
		return badRequest("source %q is longer than %d characters", abbrev(src), MaxSourceRunes)
	case strings.ContainsAny(src, "/\\"):
		return badRequest("source %q must not contain a slash", src)
	case strings.IndexFunc(src, unicode.IsControl) >= 0:
		return badRequest("source must not contain control characters")
	}
	return nil
}

func (s *server) handlePostDocuments(w http.ResponseWriter, r *http.Request) {
	var (
		docs    []rag.Document
		skipped []skippedFile
		e       *apiError
	)
	// One deadline for the whole request: reading and extracting the
	// files (a PDF runs pdftotext) and ingesting them.
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	multipart := mt == "multipart/form-data"
	if multipart {
		docs, skipped, e = s.readMultipart(ctx, w, r)
	} else {
		docs, e = s.readJSONDocuments(w, r)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.Source] {
			writeError(w, badRequest("source %q appears more than once", d.Source))
			return
		}
		seen[d.Source] = true
	}
	res, err := s.svc.Ingest(ctx, docs)
	if err != nil {
		s.upstreamError(w, r, err)
		return
	}
	if !multipart {
		writeJSON(w, http.StatusOK, res)
		return
	}
	for _, sk := range skipped {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "Skipped an uploaded file", slog.String("file", sk.File), slog.String("reason", sk.Reason))
	}
	if skipped == nil {
		skipped = []skippedFile{}
	}
	writeJSON(w, http.StatusOK, uploadResult{IngestResult: res, Skipped: skipped})
}

func (s *server) readJSONDocuments(w http.ResponseWriter, r *http.Request) ([]rag.Document, *apiError) {
	var req documentsRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		return nil, e
	}
	if len(req.Documents) == 0 {
		return nil, badRequest(`field "documents" must hold at least one document`)
	}
	if len(req.Documents) > MaxDocuments {
		return nil, badRequest(`field "documents" holds more than %d documents`, MaxDocuments)
	}
	docs := make([]rag.Document, len(req.Documents))
	for i, d := range req.Documents {
		if e := validSource(d.Source); e != nil {
			return nil, e
		}
		if strings.TrimSpace(d.Text) == "" {
			return nil, badRequest("document %q has an empty \"text\"", d.Source)
		}
		md, e := scalarMap(fmt.Sprintf("metadata of document %q", d.Source), d.Metadata, false)
		if e != nil {
			return nil, e
		}
		docs[i] = rag.Document{Source: d.Source, Text: d.Text, Metadata: md}
	}
	return docs, nil
}

// skippedFile is a file, or a record of a JSON file, that an upload left
// out, with the reason.
type skippedFile struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// uploadResult answers a multipart upload: what was ingested, and what was
// skipped and why (always present, possibly empty).
type uploadResult struct {
	rag.IngestResult
	Skipped []skippedFile `json:"skipped"`
}

// readMultipart reads uploaded files in the formats of package docformat;
// each file's name is its source (a record of a JSON file is "name#id").
// A file that is unsupported or unreadable is skipped with the reason, and
// the others are ingested. The request as a whole is refused when its body
// is malformed or too large, a file name is not a valid source, it holds no
// file (400), or no file could be read (415).
func (s *server) readMultipart(ctx context.Context, w http.ResponseWriter, r *http.Request) ([]rag.Document, []skippedFile, *apiError) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, badRequest("malformed multipart body")
	}
	var (
		docs    []rag.Document
		skipped []skippedFile
		files   int
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, tooLarge(s.cfg.MaxBodyBytes)
			}
			return nil, nil, badRequest("malformed multipart body")
		}
		name := part.FileName()
		if name == "" {
			_ = part.Close()
			continue // a plain form field
		}
		files++
		name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
		if e := validSource(name); e != nil {
			return nil, nil, e
		}
		if files > MaxDocuments {
			return nil, nil, badRequest("more than %d files", MaxDocuments)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, tooLarge(s.cfg.MaxBodyBytes)
			}
			return nil, nil, badRequest("malformed multipart body")
		}
		recs, skips, err := docformat.ExtractAll(ctx, name, b)
		if ctx.Err() != nil {
			return nil, nil, &apiError{http.StatusGatewayTimeout, "reading the files did not complete in time"}
		}
		if err != nil {
			skipped = append(skipped, skippedFile{File: name, Reason: err.Error()})
			continue
		}
		for _, sk := range skips {
			skipped = append(skipped, skippedFile{File: sk.Where, Reason: sk.Reason})
		}
		for _, d := range rag.DocumentsFrom(recs) {
			if e := validSource(d.Source); e != nil {
				skipped = append(skipped, skippedFile{File: d.Source, Reason: e.Message})
				continue
			}
			docs = append(docs, d)
		}
		if len(docs) > MaxDocuments {
			return nil, nil, badRequest("the files hold more than %d documents", MaxDocuments)
		}
	}
	if files == 0 {
		return nil, nil, badRequest("the multipart body holds no file")
	}
	if len(docs) == 0 {
		reasons := make([]string, 0, min(len(skipped), 5))
		for _, sk := range skipped[:min(len(skipped), 5)] {
			reasons = append(reasons, sk.File+": "+sk.Reason)
		}
		if len(skipped) > 5 {
			reasons = append(reasons, fmt.Sprintf("and %d more", len(skipped)-5))
		}
		return nil, nil, &apiError{http.StatusUnsupportedMediaType, "no file could be read: " + strings.Join(reasons, "; ")}
	}
	return docs, skipped, nil
}

func (s *server) handleListDocuments(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	srcs, err := s.svc.Sources(ctx)
	if err != nil {
		s.upstreamError(w, r, err)
		return
	}
	if srcs == nil {
		srcs = []vectorstore.SourceInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": srcs, "embedding_model": s.svc.EmbeddingModel()})
}

func (s *server) handleDeleteDocument(w http.ResponseWriter, r *http.Request) {
	src := r.PathValue("source")
	if e := validSource(src); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	n, err := s.svc.DeleteSource(ctx, src)
	if err != nil {
		s.upstreamError(w, r, err)
		return
	}
	if n == 0 {
		writeError(w, &apiError{http.StatusNotFound, fmt.Sprintf("source %q is not indexed", src)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": src, "removed": n})
}

// statusClientClosed is nginx's status for a request whose client went away
// before the answer: it is not a failure of the server or of an upstream.
const statusClientClosed = 499

// classify turns a pipeline error into what the client may see.
func (s *server) classify(r *http.Request, err error) *apiError {
	var up *rag.UpstreamError
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; whatever failed after that failed because
		// of it. (A REQUEST_TIMEOUT is a deadline on a derived context, so
		// it does not end up here.)
		return &apiError{statusClientClosed, "client closed request"}
	case errors.Is(err, vectorstore.ErrInvalid):
		// The store refused our request as malformed: our bug (input that
		// the store cannot take is refused with a 400 before it gets there).
		return &apiError{http.StatusInternalServerError, "internal error"}
	case errors.As(err, &up) && up.Timeout:
		return &apiError{http.StatusGatewayTimeout, "the " + up.Service + " did not answer in time"}
	case errors.As(err, &up) && up.Service == "vector store":
		return &apiError{http.StatusServiceUnavailable, "the vector store is unavailable, try again later"}
	case errors.As(err, &up):
		return &apiError{http.StatusBadGateway, "the " + up.Service + " failed to answer"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusGatewayTimeout, "the request did not complete in time"}
	}
	return &apiError{http.StatusInternalServerError, "internal error"}
}

func (s *server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	e := s.classify(r, err)
	if e.Status == statusClientClosed {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "Request canceled by the client",
			slog.String("route", r.Pattern), slog.Int("status", e.Status), slog.String("error", err.Error()))
		// Nobody reads the answer; the status is set for the metrics and
		// the access log.
		w.WriteHeader(e.Status)
		return
	}
	level := slog.LevelWarn // an upstream failed
	if e.Status == http.StatusInternalServerError {
		level = slog.LevelError // we did something wrong
	}
	s.log.LogAttrs(r.Context(), level, "Request failed",
		slog.String("route", r.Pattern), slog.Int("status", e.Status), slog.String("error", err.Error()))
	writeError(w, e)
}
