package ragserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ragops/ragops/internal/fakeopenai"
)

const netInterestQ = "What was the net interest margin in the fourth quarter?"

// oaiClient is go-openai pointed at the server, with its bearer token.
func oaiClient(ts *testServer, token string) *openai.Client {
	cfg := openai.DefaultConfig(token)
	cfg.BaseURL = ts.URL + "/v1"
	return openai.NewClientWithConfig(cfg)
}

// oaiPost posts a raw chat completion request with a bearer token.
func oaiPost(t *testing.T, ts *testServer, token string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	req := mustReq(t, "POST", ts.URL+"/v1/chat/completions", bytes.NewReader(b), "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func userMsg(text string) []openai.ChatCompletionMessage {
	return []openai.ChatCompletionMessage{{Role: "user", Content: text}}
}

// apiErr asserts that err is OpenAI's error shape as go-openai surfaces it.
func apiErr(t *testing.T, err error, status int, param, code string) openai.APIError {
	t.Helper()
	var e *openai.APIError
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want an *openai.APIError", err, err)
	}
	if e.HTTPStatusCode != status || e.Message == "" || e.Type == "" {
		t.Fatalf("status %d type %q message %q, want status %d", e.HTTPStatusCode, e.Type, e.Message, status)
	}
	if param != "" && (e.Param == nil || *e.Param != param) {
		t.Fatalf("param = %v, want %q (%s)", e.Param, param, e.Message)
	}
	if code != "" && e.Code != code {
		t.Fatalf("code = %v, want %q (%s)", e.Code, code, e.Message)
	}
	return *e
}

// sseData returns the data lines of an SSE body, [DONE] included.
func sseData(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// TestOpenAIChatOffline: with nothing configured, go-openai gets extractive,
// cited answers, streamed in chunks, with the passages in "sources", and
// OpenAI-shaped refusals for what the server cannot do.
func TestOpenAIChatOffline(t *testing.T) {
	ts := start(t, map[string]string{"DOCS_DIR": sampleDocs, "API_TOKEN": "s3cret"})
	ts.waitReady(t)
	ctx := context.Background()
	c := oaiClient(ts, "s3cret")

	models, err := c.ListModels(ctx)
	if err != nil || len(models.Models) != 1 || models.Models[0].ID != "extractive" || models.Models[0].Object != "model" {
		t.Fatalf("models %+v, err %v", models, err)
	}

	resp, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "extractive", Messages: userMsg(netInterestQ)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Object != "chat.completion" || resp.Model != "extractive" || !strings.HasPrefix(resp.ID, "chatcmpl-") || len(resp.Choices) != 1 {
		t.Fatalf("response %+v", resp)
	}
	answer := resp.Choices[0].Message.Content
	if !strings.Contains(answer, "3.18%") || !strings.Contains(answer, "[1]") || resp.Choices[0].FinishReason != "stop" ||
		resp.Choices[0].Message.Role != "assistant" {
		t.Fatalf("answer %q, finish %q", answer, resp.Choices[0].FinishReason)
	}

	// The raw response carries the passages behind the [n] markers.
	r := oaiPost(t, ts, "s3cret", map[string]any{"model": "extractive", "messages": userMsg(netInterestQ)})
	srcs := r.list("sources")
	if r.Status != 200 || len(srcs) != 4 {
		t.Fatalf("raw: %s", r)
	}
	first := srcs[0].(map[string]any)
	if first["index"] != 1.0 || first["source"] != "q4-earnings-call.md" || !strings.Contains(first["text"].(string), "3.18%") {
		t.Fatalf("first source %v", first)
	}
	if u := r.JSON["usage"].(map[string]any); u["total_tokens"] != 0.0 {
		t.Fatalf("offline usage %v, want zeros (no model spent tokens)", u)
	}

	// Streamed: the same answer in several chunks, then a usage chunk.
	stream, err := c.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{
		Model: "extractive", Messages: userMsg(netInterestQ), Stream: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	pieces, finish, usageChunks := 0, "", 0
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Object != "chat.completion.chunk" || chunk.Model != "extractive" {
			t.Fatalf("chunk %+v", chunk)
		}
		if chunk.Usage != nil {
			usageChunks++
			if len(chunk.Choices) != 0 {
				t.Fatalf("usage chunk with choices: %+v", chunk)
			}
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Content != "" {
				pieces++
				streamed.WriteString(ch.Delta.Content)
			}
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
	}
	stream.Close()
	if streamed.String() != answer || pieces < 5 || finish != "stop" || usageChunks != 1 {
		t.Fatalf("streamed %q in %d pieces, finish %q, %d usage chunks; want %q", streamed.String(), pieces, finish, usageChunks, answer)
	}

	// The raw stream: sources on the chunk with finish_reason, [DONE] last.
	b, _ := json.Marshal(map[string]any{"model": "extractive", "messages": userMsg(netInterestQ), "stream": true})
	req := mustReq(t, "POST", ts.URL+"/v1/chat/completions", bytes.NewReader(b), "application/json")
	req.Header.Set("Authorization", "Bearer s3cret")
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data := sseData(t, hr.Body)
	hr.Body.Close()
	if hr.Header.Get("Content-Type") != "text/event-stream" || len(data) < 3 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream %s: %q", hr.Header.Get("Content-Type"), data)
	}
	var final struct {
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Sources []struct {
			Index  int    `json:"index"`
			Source string `json:"source"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(data[len(data)-2]), &final); err != nil || len(final.Choices) != 1 ||
		final.Choices[0].FinishReason == nil || len(final.Sources) != 4 || final.Sources[0].Source != "q4-earnings-call.md" {
		t.Fatalf("final chunk %s (%v)", data[len(data)-2], err)
	}

	// Retrieval options in the extra field, validated like /query's.
	r = oaiPost(t, ts, "s3cret", map[string]any{
		"model": "extractive", "messages": userMsg("What are the main credit risks?"),
		"retrieval": map[string]any{"top_k": 2, "filter": map[string]any{"source": "risk-factors.md"}},
	})
	if srcs := r.list("sources"); r.Status != 200 || len(srcs) != 2 ||
		srcs[0].(map[string]any)["source"] != "risk-factors.md" || srcs[1].(map[string]any)["source"] != "risk-factors.md" {
		t.Fatalf("retrieval options: %s", r)
	}

	// Refusals, as go-openai raises them.
	refuse := func(name string, req openai.ChatCompletionRequest, status int, param, code string) {
		t.Run(name, func(t *testing.T) {
			if req.Model == "" {
				req.Model = "extractive"
			}
			if req.Messages == nil {
				req.Messages = userMsg(netInterestQ)
			}
			_, err := c.CreateChatCompletion(ctx, req)
			apiErr(t, err, status, param, code)
		})
	}
	refuse("n=2", openai.ChatCompletionRequest{N: 2}, 400, "n", "unsupported_parameter")
	refuse("tools", openai.ChatCompletionRequest{Tools: []openai.Tool{{Type: "function", Function: &openai.FunctionDefinition{Name: "f"}}}}, 400, "tools", "unsupported_parameter")
	refuse("image part", openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", MultiContent: []openai.ChatMessagePart{
		{Type: openai.ChatMessagePartTypeText, Text: "what is this?"},
		{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{URL: "data:image/png;base64,AAAA"}},
	}}}}, 400, "messages[0].content[1].type", "unsupported_content_type")
	refuse("json response format", openai.ChatCompletionRequest{ResponseFormat: &openai.ChatCompletionResponseFormat{Type: "json_object"}}, 400, "response_format", "unsupported_parameter")
	refuse("logprobs", openai.ChatCompletionRequest{LogProbs: true}, 400, "logprobs", "unsupported_parameter")
	refuse("max_completion_tokens without a model", openai.ChatCompletionRequest{MaxCompletionTokens: 5}, 400, "max_completion_tokens", "unsupported_parameter")
	refuse("unknown model", openai.ChatCompletionRequest{Model: "gpt-4o"}, 404, "model", "model_not_found")
	refuse("assistant last", openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}}, 400, "messages[1]", "")
	refuse("tool message", openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "tool", Content: "42", ToolCallID: "call_1"}, {Role: "user", Content: "hi"}}}, 400, "messages[0]", "unsupported_parameter")
	t.Run("bad token", func(t *testing.T) {
		_, err := oaiClient(ts, "wrong").CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "extractive", Messages: userMsg("hi")})
		apiErr(t, err, 401, "", "invalid_api_key")
		_, err = oaiClient(ts, "").ListModels(ctx)
		apiErr(t, err, 401, "", "invalid_api_key")
	})
	t.Run("raw refusals", func(t *testing.T) {
		for _, tc := range []struct {
			body        map[string]any
			param, want string
		}{
			{map[string]any{"model": "extractive", "messages": userMsg("hi"), "frobnicate": 1}, "frobnicate", "Unrecognized request argument supplied: frobnicate"},
			{map[string]any{"model": "extractive", "messages": userMsg("hi"), "retrieval": map[string]any{"top_k": 0}}, "retrieval.top_k", "top_k"},
			{map[string]any{"model": "extractive", "messages": userMsg("hi"), "retrieval": map[string]any{"filter": map[string]any{"a": []int{1}}}}, "retrieval.filter", "filter"},
			{map[string]any{"model": "extractive", "messages": userMsg("hi"), "temperature": 3}, "temperature", "temperature must be from 0 to 2"},
			{map[string]any{"model": "extractive", "messages": userMsg("  ")}, "messages[0].content", "must not be empty"},
			{map[string]any{"model": "extractive", "messages": userMsg("hi"), "web_search_options": map[string]any{}}, "web_search_options", "not supported"},
		} {
			r := oaiPost(t, ts, "s3cret", tc.body)
			e, _ := r.JSON["error"].(map[string]any)
			if r.Status != 400 || e == nil || e["type"] != "invalid_request_error" || e["param"] != tc.param || !strings.Contains(e["message"].(string), tc.want) {
				t.Errorf("%v: %s", tc.body, r)
			}
			if _, ok := e["code"]; !ok {
				t.Errorf("%v: error without a code field: %s", tc.body, r)
			}
		}
	})

	// The chat page needs no token; its files have their types and a CSP.
	for path, ct := range map[string]string{"/": "text/html; charset=utf-8", "/ui/app.js": "text/javascript; charset=utf-8", "/ui/style.css": "text/css; charset=utf-8"} {
		r := ts.get(t, path)
		if r.Status != 200 || r.Header.Get("Content-Type") != ct || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(r.Header.Get("Content-Security-Policy"), "connect-src 'self'") {
			t.Errorf("GET %s: %d %v", path, r.Status, r.Header)
		}
	}
	if r := ts.get(t, "/"); !strings.Contains(string(r.Body), `<script src="ui/app.js" defer></script>`) {
		t.Errorf("the page does not load its script by a relative URL: %s", r.Body)
	}
	if s := ts.status(t, "GET", "/ui/missing.js"); s != 404 {
		t.Errorf("GET /ui/missing.js = %d", s)
	}
}

// TestOpenAIChatGenerative: with a model API, the chat model writes the
// answer from the passages; the client's sampling settings reach it; a
// follow-up question is condensed before retrieval; usage adds up; an
// upstream failure is a 502 in OpenAI's shape.
func TestOpenAIChatGenerative(t *testing.T) {
	f, url := fake(t)
	ts := start(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test",
		"LLM_MODEL": "fake-chat-1", "EMBEDDING_MODEL": "fake-embed-1", "MAX_RETRIES": "0",
	})
	ts.waitReady(t)
	ctx := context.Background()
	c := oaiClient(ts, "")
	seed := 7

	resp, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model: "fake-chat-1", Messages: userMsg("What are the main credit risks?"),
		Temperature: 0.25, TopP: 0.5, Stop: []string{"zzz"}, User: "alice", Seed: &seed, PresencePenalty: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	answer := resp.Choices[0].Message.Content
	if resp.Model != "fake-chat-1" || !strings.Contains(answer, "Model fake-chat-1 read 4 passages: [1]") || !strings.Contains(answer, "risk-factors.md") {
		t.Fatalf("answer %q model %q", answer, resp.Model)
	}
	u := resp.Usage
	if u.PromptTokens == 0 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Fatalf("usage %+v", u)
	}
	p := f.Stats().LastChatParams
	if p["temperature"] != 0.25 || p["top_p"] != 0.5 || p["user"] != "alice" || p["seed"] != 7.0 || p["presence_penalty"] != 0.5 ||
		len(p["stop"].([]any)) != 1 || p["stop"].([]any)[0] != "zzz" {
		t.Fatalf("the chat model got %v", p)
	}

	// max_completion_tokens and max_tokens reach the model under their own
	// names; its finish reason comes back.
	resp, err = c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "fake-chat-1", Messages: userMsg("What are the main credit risks?"), MaxCompletionTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0]; got.FinishReason != "length" || got.Message.Content != "Model fake-chat-1 read" || f.Stats().LastChatParams["max_completion_tokens"] != 3.0 {
		t.Fatalf("max_completion_tokens 3: %q, finish %q, params %v", got.Message.Content, got.FinishReason, f.Stats().LastChatParams)
	}
	r := oaiPost(t, ts, "", map[string]any{"model": "fake-chat-1", "messages": userMsg("credit risks"), "max_tokens": 2})
	if ch := r.list("choices"); r.Status != 200 || len(ch) != 1 || ch[0].(map[string]any)["finish_reason"] != "length" || f.Stats().LastChatParams["max_tokens"] != 2.0 {
		t.Fatalf("max_tokens 2: %s, params %v", r, f.Stats().LastChatParams)
	}
	// temperature 0 is sent, not dropped.
	if r := oaiPost(t, ts, "", map[string]any{"model": "fake-chat-1", "messages": userMsg("credit risks"), "temperature": 0}); r.Status != 200 {
		t.Fatal(r)
	}
	if v, ok := f.Stats().LastChatParams["temperature"].(float64); !ok || v > 1e-6 {
		t.Fatalf("temperature 0 reached the model as %v", f.Stats().LastChatParams["temperature"])
	}

	// A follow-up is condensed by the model into a standalone question, on
	// which retrieval and the answer run.
	before := f.Stats().ChatRequests
	resp, err = c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "fake-chat-1", Messages: []openai.ChatCompletionMessage{
		{Role: "system", Content: "Answer in one sentence."},
		{Role: "user", Content: "What are the main credit risks?"},
		{Role: "assistant", Content: "Commercial real estate exposure [1]."},
		{Role: "user", Content: "And how large is that exposure?"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Stats().ChatRequests - before; n != 2 {
		t.Fatalf("%d chat calls, want 2 (condense, answer)", n)
	}
	if got := resp.Choices[0].Message.Content; !strings.Contains(got, "It answers: Model fake-chat-1 answers without context: And how large is that exposure?") {
		t.Fatalf("the answer did not run on the condensed question: %q", got)
	}
	if prompt := f.Stats().LastChatPrompt; !strings.Contains(prompt, "What are the main credit risks?") || !strings.Contains(prompt, "[1] source:") {
		t.Fatalf("the answer prompt lacks the history or the passages: %q", prompt)
	}

	// Streamed by the model, passed on chunk by chunk, usage last.
	stream, err := c.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{
		Model: "fake-chat-1", Messages: userMsg("What are the main credit risks?"), Stream: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	var usage *openai.Usage
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chunk.Choices {
			streamed.WriteString(ch.Delta.Content)
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
	}
	stream.Close()
	if !strings.HasPrefix(streamed.String(), "Model fake-chat-1 read 4 passages: [1]") || usage == nil || usage.CompletionTokens == 0 ||
		usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens || f.Stats().StreamRequests == 0 {
		t.Fatalf("streamed %q, usage %+v", streamed.String(), usage)
	}

	// The model fails: 502 in OpenAI's shape, streamed or not, no internals.
	f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 500, Times: -1})
	_, err = c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "fake-chat-1", Messages: userMsg("credit risks")})
	e := apiErr(t, err, 502, "", "upstream_error")
	if e.Type != "server_error" || strings.Contains(e.Message, "injected") {
		t.Fatalf("502 error %+v", e)
	}
	_, err = c.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{Model: "fake-chat-1", Messages: userMsg("credit risks"), Stream: true})
	apiErr(t, err, 502, "", "upstream_error")
}
