package llm

import (
	"errors"
	"math"

	openai "github.com/sashabaranov/go-openai"
)

// ChatOptions are per-request settings of a chat call, passed through to the
// model API as given. The zero value asks for the model's defaults.
type ChatOptions struct {
	Temperature, TopP                 *float32
	PresencePenalty, FrequencyPenalty *float32
	// MaxTokens and MaxCompletionTokens are sent under their own names
	// (some servers know only max_tokens, OpenAI's reasoning models only
	// max_completion_tokens).
	MaxTokens, MaxCompletionTokens int
	Stop                           []string
	Seed                           *int
	LogitBias                      map[string]int
	User, SafetyIdentifier         string
	ReasoningEffort, Verbosity     string
	ServiceTier                    string
	Store                          bool
	Metadata                       map[string]string
	// OnFinish, when set, receives the model's finish reason ("stop",
	// "length", "content_filter", ...) once the answer is complete.
	OnFinish func(reason string)
}

// Optioned is a ChatModel that can send per-request options.
type Optioned interface {
	ChatModel
	// WithOptions returns the model set to send opts on each call; the
	// receiver is unchanged.
	WithOptions(opts ChatOptions) ChatModel
}

// ErrNoOptions is returned by WithOptions for a model that takes none.
var ErrNoOptions = errors.New("the chat model takes no per-request options")

// WithOptions returns m set to send opts on each call.
func WithOptions(m ChatModel, opts ChatOptions) (ChatModel, error) {
	if o, ok := m.(Optioned); ok {
		return o.WithOptions(opts), nil
	}
	return nil, ErrNoOptions
}

// WithOptions implements Optioned: the copy shares the client and its
// connection pool.
func (o *OpenAI) WithOptions(opts ChatOptions) ChatModel {
	c := *o
	c.opts = opts
	return &c
}

// request builds a chat request with the options of o.
func (o *OpenAI) request(msgs []Message, stream bool) openai.ChatCompletionRequest {
	p := o.opts
	req := openai.ChatCompletionRequest{
		Model:     o.model,
		Messages:  toOpenAI(msgs),
		Stream:    stream,
		MaxTokens: p.MaxTokens, //nolint:staticcheck // deprecated by OpenAI, yet the one that vLLM, Ollama and older servers know

		MaxCompletionTokens: p.MaxCompletionTokens,
		Temperature:         nonZero(p.Temperature),
		TopP:                nonZero(p.TopP),
		PresencePenalty:     nonZero(p.PresencePenalty),
		FrequencyPenalty:    nonZero(p.FrequencyPenalty),
		Stop:                p.Stop,
		Seed:                p.Seed,
		LogitBias:           p.LogitBias,
		User:                p.User,
		SafetyIdentifier:    p.SafetyIdentifier,
		ReasoningEffort:     p.ReasoningEffort,
		Verbosity:           p.Verbosity,
		ServiceTier:         openai.ServiceTier(p.ServiceTier),
		Store:               p.Store,
		Metadata:            p.Metadata,
	}
	if stream {
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	return req
}

func (o *OpenAI) finished(reason openai.FinishReason) {
	if o.opts.OnFinish != nil && reason != "" {
		o.opts.OnFinish(string(reason))
	}
}

// nonZero returns *f, or for an explicit 0 the smallest float32 above it:
// go-openai omits a zero value, and the model would then use its default
// instead of the 0 the caller asked for.
func nonZero(f *float32) float32 {
	switch {
	case f == nil:
		return 0
	case *f == 0:
		return math.SmallestNonzeroFloat32
	}
	return *f
}
