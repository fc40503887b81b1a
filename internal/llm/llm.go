package llm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ragops/ragops/internal/llm/hashembed"
)

// Embedder turns texts into vectors.
type Embedder interface {
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, Usage, error)
	// Model names the embedding model; vectors of different models never mix.
	Model() string
}

// Message is one chat message.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// ChatModel answers a conversation.
type ChatModel interface {
	// Complete returns the whole answer.
	Complete(ctx context.Context, msgs []Message) (string, Usage, error)
	// Stream calls onToken for each piece of the answer as it arrives.
	Stream(ctx context.Context, msgs []Message, onToken func(string) error) (Usage, error)
	// Model names the chat model.
	Model() string
}

// Usage counts tokens spent by a call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{u.PromptTokens + o.PromptTokens, u.CompletionTokens + o.CompletionTokens, u.TotalTokens + o.TotalTokens}
}

// ErrorKind classifies a failed model call for the HTTP layer.
type ErrorKind int

const (
	// KindFailed: the upstream answered with an error, or could not be
	// reached, after the allowed retries (the server answers 502).
	KindFailed ErrorKind = iota
	// KindTimeout: the caller's deadline or the per-call timeout ran out
	// (the server answers 504).
	KindTimeout
	// KindCanceled: the caller went away.
	KindCanceled
)

// Error is returned by model calls. Its message is for logs, not for clients.
type Error struct {
	Kind     ErrorKind
	Op       string // "embeddings" or "chat"
	Status   int    // last HTTP status, 0 if none
	Attempts int
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d attempt(s), last status %d: %v", e.Op, e.Attempts, e.Status, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTimeout reports whether err is a model call that ran out of time.
func IsTimeout(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindTimeout
}

// Observer receives upstream call measurements (for metrics).
type Observer interface {
	// Call is called once per attempt with its outcome: "ok", "error",
	// "timeout" or an HTTP status code.
	Call(op, outcome string, d time.Duration)
	// Retry is called before each retry.
	Retry(op string)
}

type nopObserver struct{}

func (nopObserver) Call(string, string, time.Duration) {}
func (nopObserver) Retry(string)                       {}

// Local is the offline embedder: hashed word and bigram features, normalised.
type Local struct {
	Dim int
}

// Embed implements Embedder. It never fails.
func (l Local) Embed(ctx context.Context, texts []string) (_ [][]float32, _ Usage, err error) {
	_, span := startSpan(ctx, "embeddings", l.Model(), len(texts))
	defer func() { endSpan(span, Usage{}, err) }()
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, Usage{}, ctx.Err()
		}
		out[i] = hashembed.Vector(t, l.dim(), "local")
	}
	return out, Usage{}, nil
}

// QueryTerms returns the words of text as the local embedder sees them
// (hashembed.Tokens): lower-cased, stop words dropped, plural "s" stripped.
func (l Local) QueryTerms(text string) []string { return hashembed.Tokens(text) }

// EmbedQuery embeds a query with each word weighted by weights (a word
// absent from it weighs 1). Documents keep their unweighted vectors.
func (l Local) EmbedQuery(text string, weights map[string]float64) []float32 {
	return hashembed.WeightedVector(text, l.dim(), "local", func(w string) float64 {
		if x, ok := weights[w]; ok {
			return x
		}
		return 1
	})
}

// Model implements Embedder.
func (l Local) Model() string { return fmt.Sprintf("local-hash-%d", l.dim()) }

func (l Local) dim() int {
	if l.Dim <= 0 {
		return hashembed.DefaultDim
	}
	return l.Dim
}
