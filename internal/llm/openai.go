package llm

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Retry bounds the attempts of one model call.
type Retry struct {
	// MaxAttempts is the number of tries, first one included (default 4).
	MaxAttempts int
	// BaseDelay is the first backoff (default 250ms); it doubles per retry
	// up to MaxDelay (default 5s), with jitter.
	BaseDelay, MaxDelay time.Duration
	// CallTimeout bounds each attempt (default 30s).
	CallTimeout time.Duration
	// MaxRetryAfter caps how long a Retry-After may make us wait (default 30s).
	MaxRetryAfter time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 4
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 250 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 5 * time.Second
	}
	if r.CallTimeout <= 0 {
		r.CallTimeout = 30 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 30 * time.Second
	}
	return r
}

// Config configures an OpenAI-compatible client.
type Config struct {
	// BaseURL of the API, e.g. "https://api.openai.com/v1" or
	// "http://ollama:11434/v1". Empty means OpenAI.
	BaseURL string
	// Key returns the API key for each request (so that a rotated key file
	// takes effect); nil or "" sends no Authorization header.
	Key func() string
	// Model is the chat or embedding model name.
	Model string
	// HTTPClient is used for requests (default: a client with pooled
	// connections and no overall timeout; attempts have CallTimeout).
	HTTPClient *http.Client
	Retry      Retry
	Observer   Observer
}

// OpenAI is an Embedder and a ChatModel over an OpenAI-compatible API.
type OpenAI struct {
	client *openai.Client
	model  string
	retry  Retry
	obs    Observer
	opts   ChatOptions // per-request options (see WithOptions)
}

// NewOpenAI returns a client for cfg.
func NewOpenAI(cfg Config) *OpenAI {
	hc := cfg.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		t.MaxConnsPerHost = 0
		hc = &http.Client{Transport: t}
	}
	oc := openai.DefaultConfig("")
	if cfg.BaseURL != "" {
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	oc.HTTPClient = &doer{hc: hc, key: cfg.Key}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	return &OpenAI{client: openai.NewClientWithConfig(oc), model: cfg.Model, retry: cfg.Retry.withDefaults(), obs: obs}
}

// Model implements Embedder and ChatModel.
func (o *OpenAI) Model() string { return o.model }

// Embed implements Embedder with one request for all texts.
func (o *OpenAI) Embed(ctx context.Context, texts []string) (_ [][]float32, _ Usage, err error) {
	var out [][]float32
	var usage Usage
	ctx, span := startSpan(ctx, "embeddings", o.model, len(texts))
	defer func() { endSpan(span, usage, err) }()
	err = o.do(ctx, "embeddings", func(ctx context.Context) error {
		resp, err := o.client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
			Input: texts,
			Model: openai.EmbeddingModel(o.model),
		})
		if err != nil {
			return err
		}
		if len(resp.Data) != len(texts) {
			return &openai.APIError{HTTPStatusCode: http.StatusBadGateway, Message: "embeddings: got " + strconv.Itoa(len(resp.Data)) + " vectors for " + strconv.Itoa(len(texts)) + " inputs"}
		}
		out = make([][]float32, len(texts))
		for i, d := range resp.Data {
			idx := d.Index
			if idx < 0 || idx >= len(texts) || out[idx] != nil {
				idx = i
			}
			out[idx] = d.Embedding
		}
		usage = Usage{PromptTokens: resp.Usage.PromptTokens, TotalTokens: resp.Usage.TotalTokens}
		return nil
	})
	return out, usage, err
}

func toOpenAI(msgs []Message) []openai.ChatCompletionMessage {
	out := make([]openai.ChatCompletionMessage, len(msgs))
	for i, m := range msgs {
		out[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
	}
	return out
}

// Complete implements ChatModel.
func (o *OpenAI) Complete(ctx context.Context, msgs []Message) (_ string, _ Usage, err error) {
	var text string
	var usage Usage
	ctx, span := startSpan(ctx, "chat", o.model, len(msgs), attribute.Bool(AttrStream, false))
	defer func() { endSpan(span, usage, err) }()
	err = o.do(ctx, "chat", func(ctx context.Context) error {
		resp, err := o.client.CreateChatCompletion(ctx, o.request(msgs, false))
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return &openai.APIError{HTTPStatusCode: http.StatusBadGateway, Message: "chat: no choices in response"}
		}
		text = resp.Choices[0].Message.Content
		o.finished(resp.Choices[0].FinishReason)
		usage = Usage{resp.Usage.PromptTokens, resp.Usage.CompletionTokens, resp.Usage.TotalTokens}
		return nil
	})
	return text, usage, err
}

// Stream implements ChatModel. Only opening the stream is retried: once a
// token has been passed on, an error ends the call.
func (o *OpenAI) Stream(ctx context.Context, msgs []Message, onToken func(string) error) (usage Usage, err error) {
	var stream *openai.ChatCompletionStream
	var cancel context.CancelFunc = func() {}
	ctx, span := startSpan(ctx, "chat", o.model, len(msgs), attribute.Bool(AttrStream, true))
	defer func() { endSpan(span, usage, err) }()
	err = o.do(ctx, "chat", func(attemptCtx context.Context) error {
		// The stream outlives this attempt function, so it runs under its
		// own timeout rather than attemptCtx.
		sctx, scancel := context.WithTimeout(ctx, o.retry.CallTimeout)
		ra := retryAfterFrom(attemptCtx)
		if ra != nil {
			sctx = context.WithValue(sctx, retryAfterKey{}, ra)
		}
		s, err := o.client.CreateChatCompletionStream(sctx, o.request(msgs, true))
		if err != nil {
			scancel()
			return err
		}
		stream, cancel = s, scancel
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	defer cancel()
	defer stream.Close()
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return usage, nil
		}
		if err != nil {
			return usage, o.classify("chat", 1, err, ctx)
		}
		if resp.Usage != nil {
			usage = Usage{resp.Usage.PromptTokens, resp.Usage.CompletionTokens, resp.Usage.TotalTokens}
		}
		for _, c := range resp.Choices {
			o.finished(c.FinishReason)
			if c.Delta.Content == "" {
				continue
			}
			if err := onToken(c.Delta.Content); err != nil {
				return usage, err
			}
		}
	}
}

// do runs call with retries. Each attempt gets its own timeout; 429, 5xx,
// network errors and attempt timeouts are retried with jittered exponential
// backoff, waiting at least what Retry-After asks for. It never waits past the
// caller's deadline.
func (o *OpenAI) do(ctx context.Context, op string, call func(context.Context) error) error {
	var lastErr error
	attempt := 1
	defer func() { trace.SpanFromContext(ctx).SetAttributes(attribute.Int(AttrAttempts, attempt)) }()
	for ; ; attempt++ {
		ra := &retryAfter{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, retryAfterKey{}, ra), o.retry.CallTimeout)
		start := time.Now()
		err := call(actx)
		cancel()
		status := statusOf(err)
		o.obs.Call(op, outcome(err, status, ctx), time.Since(start))
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil || attempt >= o.retry.MaxAttempts || !retryable(err, status) {
			return o.classify(op, attempt, lastErr, ctx)
		}
		delay := o.backoff(attempt)
		if ra.d > 0 {
			if ra.d > o.retry.MaxRetryAfter {
				return o.classify(op, attempt, lastErr, ctx)
			}
			delay = max(delay, ra.d)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			// Waiting would outlive the caller: fail now, honestly.
			return o.classify(op, attempt, lastErr, ctx)
		}
		o.obs.Retry(op)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return o.classify(op, attempt, lastErr, ctx)
		case <-t.C:
		}
	}
}

func (o *OpenAI) backoff(attempt int) time.Duration {
	d := o.retry.BaseDelay << (attempt - 1)
	if d > o.retry.MaxDelay || d <= 0 {
		d = o.retry.MaxDelay
	}
	// Jitter in [d/2, d).
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (o *OpenAI) classify(op string, attempts int, err error, ctx context.Context) error {
	e := &Error{Op: op, Attempts: attempts, Status: statusOf(err), Err: err}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind = KindCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTimeout
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			e.Kind = KindTimeout
		}
	}
	return e
}

func statusOf(err error) int {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatusCode
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return reqErr.HTTPStatusCode
	}
	return 0
}

func retryable(err error, status int) bool {
	switch {
	case status == http.StatusTooManyRequests, status >= 500:
		return true
	case status != 0:
		return false // other 4xx: our request or key is wrong; retrying won't help
	}
	return !errors.Is(err, context.Canceled)
}

func outcome(err error, status int, ctx context.Context) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled" // the caller went away: not a failure of the model
	case status != 0:
		return strconv.Itoa(status)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return "timeout"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// retryAfter carries a Retry-After value from the transport to do.
type retryAfter struct{ d time.Duration }

type retryAfterKey struct{}

func retryAfterFrom(ctx context.Context) *retryAfter {
	ra, _ := ctx.Value(retryAfterKey{}).(*retryAfter)
	return ra
}

// doer sets the Authorization header from the key source and records
// Retry-After, which go-openai does not expose.
type doer struct {
	hc  *http.Client
	key func() string
}

func (d *doer) Do(req *http.Request) (*http.Response, error) {
	req.Header.Del("Authorization")
	if d.key != nil {
		if k := d.key(); k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
	}
	injectTraceContext(req)
	resp, err := d.hc.Do(req)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) {
		if ra := retryAfterFrom(req.Context()); ra != nil {
			ra.d = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return resp, err
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
