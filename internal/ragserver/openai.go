package ragserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/webui"
)

// The OpenAI-compatible routes: POST /v1/chat/completions answers a
// conversation from retrieved passages, in OpenAI's request, response and
// streaming shapes, with the passages in the extra top-level field "sources";
// GET /v1/models names the model it answers as. Errors on these routes use
// OpenAI's shape. docs/ragserver.md lists every request field and how it is
// treated.

// chatPage serves the chat page of package webui at / and its files under /ui/.
var chatPage = webui.Handler()

// chatCompletionRequest holds every field of OpenAI's chat completion
// request that the server knows: those it honours or passes through, and
// those it refuses (decoded only to be refused with a 400 naming them). Any
// other field is refused as unrecognized, as OpenAI does.
type chatCompletionRequest struct {
	Model               string            `json:"model"`
	Messages            []chatMessage     `json:"messages"`
	Stream              bool              `json:"stream"`
	StreamOptions       *streamOptions    `json:"stream_options"`
	Temperature         *float32          `json:"temperature"`
	TopP                *float32          `json:"top_p"`
	PresencePenalty     *float32          `json:"presence_penalty"`
	FrequencyPenalty    *float32          `json:"frequency_penalty"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Stop                json.RawMessage   `json:"stop"`
	Seed                *int              `json:"seed"`
	LogitBias           map[string]int    `json:"logit_bias"`
	User                string            `json:"user"`
	SafetyIdentifier    string            `json:"safety_identifier"`
	ReasoningEffort     string            `json:"reasoning_effort"`
	Verbosity           string            `json:"verbosity"`
	ServiceTier         string            `json:"service_tier"`
	Store               *bool             `json:"store"`
	Metadata            map[string]string `json:"metadata"`
	N                   *int              `json:"n"`
	ResponseFormat      *responseFormat   `json:"response_format"`
	Logprobs            *bool             `json:"logprobs"`
	TopLogprobs         *int              `json:"top_logprobs"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	Modalities          []string          `json:"modalities"`
	Tools               json.RawMessage   `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	Functions           json.RawMessage   `json:"functions"`
	FunctionCall        json.RawMessage   `json:"function_call"`
	Audio               json.RawMessage   `json:"audio"`
	Prediction          json.RawMessage   `json:"prediction"`
	WebSearchOptions    json.RawMessage   `json:"web_search_options"`
	PromptCacheKey      json.RawMessage   `json:"prompt_cache_key"`
	PromptCacheRetain   json.RawMessage   `json:"prompt_cache_retention"`
	Retrieval           *retrievalOptions `json:"retrieval"`
}

type streamOptions struct {
	IncludeUsage       bool `json:"include_usage"`
	IncludeObfuscation bool `json:"include_obfuscation"`
}

type responseFormat struct {
	Type string `json:"type"`
}

// retrievalOptions is the extra request field "retrieval": the same top_k,
// filter and mode as POST /query.
type retrievalOptions struct {
	TopK   *int           `json:"top_k"`
	Filter map[string]any `json:"filter"`
	Mode   string         `json:"mode"`
}

type chatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         string          `json:"name"`
	Refusal      json.RawMessage `json:"refusal"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	ToolCallID   json.RawMessage `json:"tool_call_id"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// oaiError is an error in OpenAI's shape.
type oaiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func invalid(param, format string, args ...any) *oaiError {
	e := &oaiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

func (e *oaiError) withCode(code string) *oaiError {
	e.Code = &code
	return e
}

// toOAI converts an error of the rest of the API to OpenAI's shape.
func toOAI(e *apiError, param string) *oaiError {
	o := &oaiError{Status: e.Status, Message: e.Message, Type: "invalid_request_error"}
	if param != "" {
		o.Param = &param
	}
	code := map[int]string{
		http.StatusUnauthorized:          "invalid_api_key",
		http.StatusNotFound:              "not_found",
		http.StatusMethodNotAllowed:      "method_not_allowed",
		http.StatusRequestEntityTooLarge: "request_too_large",
		http.StatusUnsupportedMediaType:  "unsupported_media_type",
		http.StatusBadGateway:            "upstream_error",
		http.StatusServiceUnavailable:    "upstream_unavailable",
		http.StatusGatewayTimeout:        "upstream_timeout",
	}[e.Status]
	if code != "" {
		o.Code = &code
	}
	if e.Status >= 500 {
		o.Type = "server_error"
	}
	return o
}

func writeOAIError(w http.ResponseWriter, e *oaiError) {
	writeJSON(w, e.Status, map[string]*oaiError{"error": e})
}

// openAIAuth is s.auth with its refusals written in OpenAI's shape.
func (s *server) openAIAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rw := &refusalWriter{ResponseWriter: w}
		s.auth(func(_ http.ResponseWriter, r *http.Request) {
			rw.passed = true
			next(w, r)
		})(rw, r)
		rw.finish()
	}
}

// refusalWriter holds what s.auth writes when it refuses a request, to
// answer it again in OpenAI's shape.
type refusalWriter struct {
	http.ResponseWriter
	passed bool
	status int
	body   bytes.Buffer
}

func (w *refusalWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *refusalWriter) finish() {
	if w.passed || w.status == 0 {
		return
	}
	var body errorBody
	_ = json.Unmarshal(w.body.Bytes(), &body)
	if body.Error == "" {
		body.Error = http.StatusText(w.status)
	}
	writeOAIError(w.ResponseWriter, toOAI(&apiError{w.status, body.Error}, ""))
}

// modelCreated is the "created" time of the listed model: the server's start.
var modelCreated = time.Now().Unix()

func (s *server) handleListModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": s.svc.ChatModel(), "object": "model", "created": modelCreated, "owned_by": "ragops",
		}},
	})
}

// openAISource is a passage in the "sources" field: index is its number in
// the answer's [n] markers.
type openAISource struct {
	Index int `json:"index"`
	rag.Source
}

func openAISources(src []rag.Source) []openAISource {
	out := make([]openAISource, len(src))
	for i, s := range src {
		out[i] = openAISource{Index: i + 1, Source: s}
	}
	return out
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(a rag.ChatAnswer) *openAIUsage {
	return &openAIUsage{a.Usage.PromptTokens, a.Usage.CompletionTokens, a.Usage.PromptTokens + a.Usage.CompletionTokens}
}

func completionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "chatcmpl-" + hex.EncodeToString(b)
}

func (s *server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatCompletionRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		if field, ok := strings.CutPrefix(e.Message, "unknown field "); ok {
			field = strings.Trim(field, `"`)
			writeOAIError(w, invalid(field, "Unrecognized request argument supplied: %s", field).withCode("unknown_parameter"))
			return
		}
		writeOAIError(w, toOAI(e, ""))
		return
	}
	conv, e := s.validChat(&req)
	if e != nil {
		writeOAIError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	id, created, model := completionID(), time.Now().Unix(), s.svc.ChatModel()
	if !req.Stream {
		a, err := s.svc.Chat(ctx, conv, nil)
		if err != nil {
			s.openAIUpstreamError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": model,
			"choices": []map[string]any{{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": a.Answer.Answer, "refusal": nil},
				"logprobs":      nil,
				"finish_reason": a.FinishReason,
			}},
			"usage":   usageOf(a),
			"sources": openAISources(a.Sources),
		})
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	started := false
	send := func(v any) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []map[string]any{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if includeUsage {
			c["usage"] = nil
		}
		return c
	}
	a, err := s.svc.Chat(ctx, conv, func(tok string) error {
		if !started {
			if err := send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)); err != nil {
				return err
			}
		}
		return send(chunk(map[string]any{"content": tok}, nil))
	})
	if err != nil {
		if !started {
			s.openAIUpstreamError(w, r, err)
			return
		}
		// Mid-answer: OpenAI clients raise an error event as an API error.
		e := s.classify(r, err)
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "Request failed mid-stream",
			slog.String("route", r.Pattern), slog.Int("status", e.Status), slog.String("error", err.Error()))
		_ = send(map[string]*oaiError{"error": toOAI(e, "")})
		return
	}
	last := chunk(map[string]any{}, a.FinishReason)
	last["sources"] = openAISources(a.Sources)
	if send(last) != nil {
		return
	}
	if includeUsage {
		if send(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{}, "usage": usageOf(a),
		}) != nil {
			return
		}
	}
	if _, err := fmt.Fprint(w, "data: [DONE]\n\n"); err == nil {
		_ = http.NewResponseController(w).Flush()
	}
}

func (s *server) openAIUpstreamError(w http.ResponseWriter, r *http.Request, err error) {
	e := s.classify(r, err)
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "Request failed",
		slog.String("route", r.Pattern), slog.Int("status", e.Status), slog.String("error", err.Error()))
	if e.Status == 499 {
		return // nobody is listening
	}
	writeOAIError(w, toOAI(e, ""))
}

func set(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t != "" && t != "null"
}

// validChat checks a request and turns it into a conversation for rag.Chat.
func (s *server) validChat(req *chatCompletionRequest) (rag.Conversation, *oaiError) {
	var c rag.Conversation
	// Refused: what the server cannot honour.
	refused := []struct {
		param string
		isSet bool
		why   string
	}{
		{"tools", set(req.Tools) && string(req.Tools) != "[]", "tool calls are not supported: answers come from the indexed documents"},
		{"functions", set(req.Functions) && string(req.Functions) != "[]", "function calls are not supported: answers come from the indexed documents"},
		{"tool_choice", set(req.ToolChoice) && string(req.ToolChoice) != `"none"`, `tool calls are not supported; only "none" is accepted`},
		{"function_call", set(req.FunctionCall) && string(req.FunctionCall) != `"none"`, `function calls are not supported; only "none" is accepted`},
		{"n", req.N != nil && *req.N != 1, "only one choice per request is supported (n must be 1)"},
		{"response_format", req.ResponseFormat != nil && req.ResponseFormat.Type != "text", `only the "text" response format is supported`},
		{"logprobs", req.Logprobs != nil && *req.Logprobs, "log probabilities are not supported"},
		{"top_logprobs", req.TopLogprobs != nil && *req.TopLogprobs != 0, "log probabilities are not supported"},
		{"modalities", len(req.Modalities) > 1 || (len(req.Modalities) == 1 && req.Modalities[0] != "text"), `only the "text" modality is supported`},
		{"audio", set(req.Audio), "audio output is not supported"},
		{"prediction", set(req.Prediction), "predicted outputs are not supported"},
		{"web_search_options", set(req.WebSearchOptions), "web search is not supported: answers come from the indexed documents"},
		{"prompt_cache_key", set(req.PromptCacheKey), "prompt cache settings are not supported"},
		{"prompt_cache_retention", set(req.PromptCacheRetain), "prompt cache settings are not supported"},
	}
	for _, f := range refused {
		if f.isSet {
			return c, invalid(f.param, "Unsupported parameter '%s': %s.", f.param, f.why).withCode("unsupported_parameter")
		}
	}
	if req.Model == "" {
		return c, invalid("model", "you must provide a model parameter")
	}
	if req.Model != s.svc.ChatModel() {
		return c, &oaiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: ptr("model"), Code: ptr("model_not_found"),
			Message: fmt.Sprintf("The model `%s` does not exist: this server answers as `%s` (GET /v1/models).", req.Model, s.svc.ChatModel())}
	}
	if len(req.Messages) == 0 {
		return c, invalid("messages", "messages must hold at least one message")
	}
	for i, m := range req.Messages {
		param := fmt.Sprintf("messages[%d]", i)
		switch {
		case set(m.ToolCalls) && string(m.ToolCalls) != "[]", set(m.FunctionCall):
			return c, invalid(param, "tool and function calls are not supported").withCode("unsupported_parameter")
		case set(m.ToolCallID), set(m.Audio):
			return c, invalid(param, "tool results and audio are not supported").withCode("unsupported_parameter")
		}
		role := m.Role
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		case "tool", "function":
			return c, invalid(param+".role", "messages with role %q are not supported: there are no tools", m.Role).withCode("unsupported_parameter")
		default:
			return c, invalid(param+".role", "role must be one of system, developer, user, assistant, not %q", m.Role)
		}
		text, e := messageText(m.Content, param+".content")
		if e != nil {
			return c, e
		}
		c.Messages = append(c.Messages, llm.Message{Role: role, Content: text})
	}
	last := c.Messages[len(c.Messages)-1]
	lastParam := fmt.Sprintf("messages[%d]", len(c.Messages)-1)
	if last.Role != "user" {
		return c, invalid(lastParam, "the last message must come from the user: it is the question to answer")
	}
	question := strings.TrimSpace(last.Content)
	if question == "" {
		return c, invalid(lastParam+".content", "the last user message must not be empty")
	}
	if n := utf8.RuneCountInString(question); n > MaxQuestionRunes {
		return c, invalid(lastParam+".content", "the last user message has %d characters, more than %d", n, MaxQuestionRunes)
	}
	if req.Retrieval != nil {
		q, e := validQuery(question, req.Retrieval.TopK, req.Retrieval.Filter, req.Retrieval.Mode)
		if e != nil {
			param := "retrieval.filter"
			switch {
			case strings.Contains(e.Message, `"top_k"`):
				param = "retrieval.top_k"
			case strings.Contains(e.Message, `"mode"`):
				param = "retrieval.mode"
			}
			return c, toOAI(e, param)
		}
		c.TopK, c.Filter, c.Mode = q.TopK, q.Filter, q.Mode
	}
	o, e := chatOptions(req)
	if e != nil {
		return c, e
	}
	if s.svc.Mode() == rag.ModeExtractive {
		// No model to pass the options to: refuse what would change an
		// answer (limits, stop sequences); the rest does not apply to a quote.
		switch {
		case o.MaxTokens > 0:
			return c, invalid("max_tokens", "this server answers extractively (no chat model): max_tokens cannot be honoured").withCode("unsupported_parameter")
		case o.MaxCompletionTokens > 0:
			return c, invalid("max_completion_tokens", "this server answers extractively (no chat model): max_completion_tokens cannot be honoured").withCode("unsupported_parameter")
		case len(o.Stop) > 0:
			return c, invalid("stop", "this server answers extractively (no chat model): stop cannot be honoured").withCode("unsupported_parameter")
		}
	}
	c.Options = o
	return c, nil
}

func ptr(s string) *string { return &s }

// messageText returns the text of a message's content: a string, or an array
// of text parts (joined). Images, audio and files are refused.
func messageText(raw json.RawMessage, param string) (string, *oaiError) {
	if !set(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "content must be a string or an array of content parts")
	}
	texts := make([]string, 0, len(parts))
	for j, p := range parts {
		var part contentPart
		if err := json.Unmarshal(p, &part); err != nil || part.Type == "" {
			return "", invalid(fmt.Sprintf("%s[%d]", param, j), "each content part must be an object with a type")
		}
		if part.Type != "text" {
			return "", invalid(fmt.Sprintf("%s[%d].type", param, j), "content parts of type %q are not supported: only text", part.Type).withCode("unsupported_content_type")
		}
		texts = append(texts, part.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// chatOptions checks the settings passed through to the chat model.
func chatOptions(req *chatCompletionRequest) (llm.ChatOptions, *oaiError) {
	o := llm.ChatOptions{
		Temperature: req.Temperature, TopP: req.TopP,
		PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty,
		Seed: req.Seed, LogitBias: req.LogitBias, User: req.User, SafetyIdentifier: req.SafetyIdentifier,
		ReasoningEffort: req.ReasoningEffort, Verbosity: req.Verbosity, ServiceTier: req.ServiceTier,
		Metadata: req.Metadata,
	}
	inRange := func(param string, v *float32, lo, hi float32) *oaiError {
		if v != nil && (*v < lo || *v > hi) {
			return invalid(param, "%s must be from %g to %g", param, lo, hi)
		}
		return nil
	}
	for _, e := range []*oaiError{
		inRange("temperature", req.Temperature, 0, 2), inRange("top_p", req.TopP, 0, 1),
		inRange("presence_penalty", req.PresencePenalty, -2, 2), inRange("frequency_penalty", req.FrequencyPenalty, -2, 2),
	} {
		if e != nil {
			return o, e
		}
	}
	if req.MaxTokens != nil {
		if *req.MaxTokens < 1 {
			return o, invalid("max_tokens", "max_tokens must be at least 1")
		}
		o.MaxTokens = *req.MaxTokens
	}
	if req.MaxCompletionTokens != nil {
		if *req.MaxCompletionTokens < 1 {
			return o, invalid("max_completion_tokens", "max_completion_tokens must be at least 1")
		}
		o.MaxCompletionTokens = *req.MaxCompletionTokens
	}
	if req.Store != nil {
		o.Store = *req.Store
	}
	if set(req.Stop) {
		var one string
		if err := json.Unmarshal(req.Stop, &one); err == nil {
			o.Stop = []string{one}
		} else if err := json.Unmarshal(req.Stop, &o.Stop); err != nil {
			return o, invalid("stop", "stop must be a string or an array of strings")
		}
		if len(o.Stop) > 4 {
			return o, invalid("stop", "stop holds %d sequences, more than 4", len(o.Stop))
		}
	}
	return o, nil
}
