package fakeopenai

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ragops/ragops/internal/llm/hashembed"
)

// Endpoint names a faultable endpoint.
type Endpoint string

// The endpoints that faults and latency can target. All targets both.
const (
	Embeddings Endpoint = "embeddings"
	Chat       Endpoint = "chat"
	Rerank     Endpoint = "rerank"
	All        Endpoint = ""
)

// Fault makes the next Times requests to an endpoint fail with Status.
type Fault struct {
	// Status is the HTTP status to answer with, e.g. 429 or 500.
	Status int `json:"status"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string `json:"retry_after,omitempty"`
	// Times is how many requests fail before the endpoint recovers; a
	// negative value fails forever.
	Times int `json:"times"`
}

// Stats counts the requests the server has seen.
type Stats struct {
	EmbeddingRequests int `json:"embedding_requests"`
	EmbeddedInputs    int `json:"embedded_inputs"`
	ChatRequests      int `json:"chat_requests"`
	StreamRequests    int `json:"stream_requests"`
	RerankRequests    int `json:"rerank_requests"`
	Unauthorized      int `json:"unauthorized"`
	Faulted           int `json:"faulted"`
	// LastChatModel and LastEmbeddingModel are the models of the latest calls.
	LastChatModel      string `json:"last_chat_model"`
	LastEmbeddingModel string `json:"last_embedding_model"`
	// LastChatParams holds the other fields of the latest chat request
	// (temperature, max_tokens, stop, user...), as sent.
	LastChatParams map[string]any `json:"last_chat_params,omitempty"`
	// LastChatPrompt is the user text of the latest chat request.
	LastChatPrompt string `json:"last_chat_prompt,omitempty"`
}

// Options configure a Server.
type Options struct {
	// Keys returns the accepted API keys; it is called on every request so
	// that a rotated key file takes effect. When nil or empty, any request is
	// accepted.
	Keys func() []string
	// Dim is the embedding dimension (default 256).
	Dim int
	// Latency is added to every model call.
	Latency time.Duration
	// Models lists the ids served by GET /v1/models.
	Models []string
	// EchoKey makes error answers (a refused key, an injected fault) quote
	// the API key the request carried, as some model APIs and proxies do:
	// tests use it to check that callers never log the key.
	EchoKey bool
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu      sync.Mutex
	stats   Stats
	faults  map[Endpoint]*Fault
	latency map[Endpoint]time.Duration
}

// New returns a fake server.
func New(opts Options) *Server {
	if opts.Dim <= 0 {
		opts.Dim = 256
	}
	if len(opts.Models) == 0 {
		opts.Models = []string{"fake-chat", "fake-embed"}
	}
	s := &Server{opts: opts, faults: map[Endpoint]*Fault{}, latency: map[Endpoint]time.Duration{All: opts.Latency}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /v1/embeddings", s.auth(s.embeddings))
	mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chat))
	mux.HandleFunc("GET /v1/models", s.auth(s.models))
	mux.HandleFunc("POST /v1/rerank", s.auth(s.rerank))
	mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Stats()) })
	mux.HandleFunc("POST /_fake/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, 200, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /_fake/fault", s.setFaultHTTP)
	mux.HandleFunc("POST /_fake/latency", s.setLatencyHTTP)
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// SetFault installs a fault on an endpoint (All for both), replacing any
// earlier one. A zero Fault clears it.
func (s *Server) SetFault(e Endpoint, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == All {
		s.faults[Embeddings], s.faults[Chat] = clone(f), clone(f)
		return
	}
	s.faults[e] = clone(f)
}

func clone(f Fault) *Fault {
	if f.Status == 0 || f.Times == 0 {
		return nil
	}
	return &f
}

// SetLatency sets the latency added to calls of an endpoint (All for both).
func (s *Server) SetLatency(e Endpoint, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == All {
		s.latency = map[Endpoint]time.Duration{All: d}
		return
	}
	s.latency[e] = d
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Reset clears counters, faults and latencies (back to Options.Latency).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
	s.faults = map[Endpoint]*Fault{}
	s.latency = map[Endpoint]time.Duration{All: s.opts.Latency}
}

// before applies latency and faults for an endpoint. It reports false when it
// has answered the request itself.
func (s *Server) before(w http.ResponseWriter, r *http.Request, e Endpoint) bool {
	s.mu.Lock()
	d, ok := s.latency[e]
	if !ok {
		d = s.latency[All]
	}
	var fault Fault
	if f := s.faults[e]; f != nil {
		fault = *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults[e] = nil
			}
		}
		s.stats.Faulted++
	}
	s.mu.Unlock()
	if d > 0 && !sleep(r.Context(), d) {
		return false
	}
	if fault.Status != 0 {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		writeError(w, fault.Status, fmt.Sprintf("injected fault: status %d", fault.Status)+s.echo(r), "server_error", "")
		return false
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// echo quotes the request's API key in an error message when EchoKey is set.
func (s *Server) echo(r *http.Request) string {
	if !s.opts.EchoKey {
		return ""
	}
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return fmt.Sprintf(" The request used the key %q.", key)
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Keys != nil {
			if keys := s.opts.Keys(); len(keys) > 0 {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				valid := false
				for _, k := range keys {
					if ok && k != "" && got == k {
						valid = true
					}
				}
				if !valid {
					s.mu.Lock()
					s.stats.Unauthorized++
					s.mu.Unlock()
					writeError(w, http.StatusUnauthorized, "Incorrect API key provided."+s.echo(r), "invalid_request_error", "invalid_api_key")
					return
				}
			}
		}
		next(w, r)
	}
}

type embeddingRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
	User           string          `json:"user"`
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "")
		return
	}
	var inputs []string
	var one string
	if err := json.Unmarshal(req.Input, &one); err == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil {
		writeError(w, http.StatusBadRequest, "input must be a string or an array of strings", "invalid_request_error", "")
		return
	}
	if req.Model == "" || len(inputs) == 0 {
		writeError(w, http.StatusBadRequest, "model and input are required", "invalid_request_error", "")
		return
	}
	if !s.before(w, r, Embeddings) {
		return
	}
	s.mu.Lock()
	s.stats.EmbeddingRequests++
	s.stats.EmbeddedInputs += len(inputs)
	s.stats.LastEmbeddingModel = req.Model
	s.mu.Unlock()
	dim := s.opts.Dim
	if req.Dimensions > 0 {
		dim = req.Dimensions
	}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, len(inputs))
	tokens := 0
	for i, in := range inputs {
		v := hashembed.Vector(in, dim, req.Model)
		tokens += len(strings.Fields(in))
		var emb any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = item{Object: "embedding", Index: i, Embedding: emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  req.Model,
		"usage":  map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// rerank answers an OpenAI-style rerank request ({model, query, documents,
// top_n} -> {results: [{index, relevance_score}]}, best first), scoring each
// document by the share of the query's distinct words it contains
// (hashembed.Tokens), ties by index: deterministic, and a real signal.
func (s *Server) rerank(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
		TopN      *int     `json:"top_n"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "")
		return
	}
	if req.Model == "" || req.Query == "" || len(req.Documents) == 0 {
		writeError(w, http.StatusBadRequest, "model, query and documents are required", "invalid_request_error", "")
		return
	}
	if !s.before(w, r, Rerank) {
		return
	}
	s.mu.Lock()
	s.stats.RerankRequests++
	s.mu.Unlock()
	words := map[string]bool{}
	for _, t := range hashembed.Tokens(req.Query) {
		words[t] = true
	}
	type result struct {
		Index          int     `json:"index"`
		RelevanceScore float64 `json:"relevance_score"`
	}
	results := make([]result, len(req.Documents))
	for i, d := range req.Documents {
		have := map[string]bool{}
		for _, t := range hashembed.Tokens(d) {
			if words[t] {
				have[t] = true
			}
		}
		score := 0.0
		if len(words) > 0 {
			score = float64(len(have)) / float64(len(words))
		}
		results[i] = result{Index: i, RelevanceScore: score}
	}
	sort.SliceStable(results, func(a, b int) bool { return results[a].RelevanceScore > results[b].RelevanceScore })
	if req.TopN != nil && *req.TopN >= 0 && *req.TopN < len(results) {
		results = results[:*req.TopN]
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": req.Model, "results": results})
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
}

// chatFields are the fields of a chat request that LastChatParams leaves out.
var chatFields = map[string]bool{"model": true, "messages": true, "stream": true, "stream_options": true}

var (
	sourceLine   = regexp.MustCompile(`(?m)^\[(\d+)\][^\n]*?source: ?([^\s,)]+)`)
	questionLine = regexp.MustCompile(`(?m)^Question: ?(.*)$`)
)

// Answer returns the fake's deterministic answer to a prompt: it names the
// model, the number of context passages and their sources, and the question.
func Answer(model, prompt string) string {
	var cites []string
	for _, m := range sourceLine.FindAllStringSubmatch(prompt, -1) {
		cites = append(cites, "["+m[1]+"] "+m[2])
	}
	question := strings.TrimSpace(prompt)
	if m := questionLine.FindAllStringSubmatch(prompt, -1); len(m) > 0 {
		question = strings.TrimSpace(m[len(m)-1][1])
	}
	if len(cites) == 0 {
		return fmt.Sprintf("Model %s answers without context: %s", model, question)
	}
	return fmt.Sprintf("Model %s read %d passages: %s. It answers: %s", model, len(cites), strings.Join(cites, ", "), question)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "")
		return
	}
	params := map[string]any{}
	_ = json.Unmarshal(body, &params)
	for k := range params {
		if chatFields[k] {
			delete(params, k)
		}
	}
	if req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "model and messages are required", "invalid_request_error", "")
		return
	}
	if !s.before(w, r, Chat) {
		return
	}
	var prompt strings.Builder
	promptTokens := 0
	for _, m := range req.Messages {
		var text string
		if err := json.Unmarshal(m.Content, &text); err != nil {
			text = string(m.Content)
		}
		promptTokens += len(strings.Fields(text))
		if m.Role == "user" {
			prompt.WriteString(text)
			prompt.WriteString("\n")
		}
	}
	s.mu.Lock()
	s.stats.ChatRequests++
	if req.Stream {
		s.stats.StreamRequests++
	}
	s.stats.LastChatModel = req.Model
	s.stats.LastChatParams = params
	s.stats.LastChatPrompt = prompt.String()
	s.mu.Unlock()

	// stop and max_tokens are honoured as a real model would: the answer
	// ends before the first stop sequence, or after max_tokens words
	// (finish_reason "length").
	answer := Answer(req.Model, prompt.String())
	var stops []string
	if err := json.Unmarshal(req.Stop, &stops); err != nil {
		var one string
		if json.Unmarshal(req.Stop, &one) == nil && one != "" {
			stops = []string{one}
		}
	}
	for _, stop := range stops {
		if i := strings.Index(answer, stop); stop != "" && i >= 0 {
			answer = answer[:i]
		}
	}
	finish := "stop"
	words := strings.Fields(answer)
	if limit := max(req.MaxTokens, req.MaxCompletionTokens); limit > 0 && len(words) > limit {
		words, finish = words[:limit], "length"
		answer = strings.Join(words, " ")
	}
	usage := map[string]int{"prompt_tokens": promptTokens, "completion_tokens": len(words), "total_tokens": promptTokens + len(words)}
	id := fmt.Sprintf("chatcmpl-fake-%d", time.Now().UnixNano())
	created := time.Now().Unix()
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []map[string]any{{
				"index":         0,
				"message":       map[string]string{"role": "assistant", "content": answer},
				"finish_reason": finish,
			}},
			"usage": usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	chunk := func(delta map[string]string, finish any) map[string]any {
		return map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish}},
		}
	}
	send(chunk(map[string]string{"role": "assistant", "content": ""}, nil))
	for i, word := range words {
		if i < len(words)-1 {
			word += " "
		}
		send(chunk(map[string]string{"content": word}, nil))
	}
	send(chunk(map[string]string{}, finish))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{}, "usage": usage,
		})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	data := make([]map[string]any, len(s.opts.Models))
	for i, m := range s.opts.Models {
		data[i] = map[string]any{"id": m, "object": "model", "created": 0, "owned_by": "fakeopenai"}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) setFaultHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint Endpoint `json:"endpoint"`
		Fault
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	s.SetFault(req.Endpoint, req.Fault)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) setLatencyHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint Endpoint `json:"endpoint"`
		Latency  string   `json:"latency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	d, err := time.ParseDuration(req.Latency)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	s.SetLatency(req.Endpoint, d)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": c,
	}})
}

// ParseKeys splits a comma or newline separated key list, dropping blanks.
func ParseKeys(s string) []string {
	var out []string
	for _, k := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// RetryAfterSeconds formats d as a Retry-After value in whole seconds.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}
