package rag

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/vectorstore"
)

// Modes of answering.
const (
	ModeGenerative = "generative"
	ModeExtractive = "extractive"
)

// Options tune the pipeline. Zero values take the defaults.
type Options struct {
	ChunkSize    int // runes per chunk (default 800)
	ChunkOverlap int // runes repeated between chunks (default 100)
	TopK         int // default number of passages per query (default 4)
	// EmbedBatch is the number of chunks per embeddings request (default 64);
	// EmbedConcurrency bounds the requests in flight (default 4).
	EmbedBatch       int
	EmbedConcurrency int
	Metrics          Metrics
	// Mode is the default retrieval mode (default contract.DefaultRetrievalMode).
	Mode string
	// LexicalWeight is the weight of the lexical ranking in hybrid fusion
	// (0 to 1; default LocalLexicalWeight with the offline embedder,
	// llm.Local, else DefaultLexicalWeight).
	LexicalWeight *float64
	// QueryIDF weighs the words of a query by their inverse document
	// frequency in the lexical index, with an embedder that supports it
	// (QueryWeighter).
	QueryIDF bool
	// Logger receives the warnings of the pipeline (default slog.Default()).
	Logger *slog.Logger
	// Reranker, if set, orders the best RerankTopN passages again.
	Reranker   Reranker
	RerankTopN int
}

// Metrics receives pipeline counts.
type Metrics interface {
	Tokens(kind string, n int) // kind: "embedding", "prompt", "completion"
	Chunks(added, removed int)
	// RerankFailed counts a query whose reranking failed.
	RerankFailed()
}

type nopMetrics struct{}

func (nopMetrics) Tokens(string, int) {}
func (nopMetrics) Chunks(int, int)    {}
func (nopMetrics) RerankFailed()      {}

// Service runs the pipeline over one store, one embedder and an optional chat
// model (nil means extractive answers).
type Service struct {
	store vectorstore.Store
	emb   llm.Embedder
	chat  llm.ChatModel
	opts  Options
	// lexicalWeight is opts.LexicalWeight or its default.
	lexicalWeight float64

	locks stripes // one writer per source at a time, in this process
}

// New returns a Service.
func New(store vectorstore.Store, emb llm.Embedder, chat llm.ChatModel, opts Options) *Service {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 800
	}
	if opts.ChunkOverlap < 0 || opts.ChunkOverlap >= opts.ChunkSize {
		opts.ChunkOverlap = 0
	}
	if opts.TopK <= 0 {
		opts.TopK = 4
	}
	if opts.EmbedBatch <= 0 {
		opts.EmbedBatch = 64
	}
	if opts.EmbedConcurrency <= 0 {
		opts.EmbedConcurrency = 4
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Mode == "" {
		opts.Mode = contract.DefaultRetrievalMode
	}
	if opts.RerankTopN <= 0 {
		opts.RerankTopN = contract.DefaultRerankTopN
	}
	lw := DefaultLexicalWeight
	if _, ok := emb.(llm.Local); ok {
		lw = LocalLexicalWeight
	}
	if opts.LexicalWeight != nil {
		lw = *opts.LexicalWeight
	}
	return &Service{store: store, emb: emb, chat: chat, opts: opts, lexicalWeight: lw}
}

// Mode is ModeGenerative with a chat model, ModeExtractive without.
func (s *Service) Mode() string {
	if s.chat == nil {
		return ModeExtractive
	}
	return ModeGenerative
}

// ChatModel names the model that writes answers ("extractive" without one).
func (s *Service) ChatModel() string {
	if s.chat == nil {
		return ModeExtractive
	}
	return s.chat.Model()
}

// EmbeddingModel names the embedding model.
func (s *Service) EmbeddingModel() string { return s.emb.Model() }

// TopK is the default number of passages.
func (s *Service) TopK() int { return s.opts.TopK }

// Store returns the vector store.
func (s *Service) Store() vectorstore.Store { return s.store }

// UpstreamError is a failure of a service behind the pipeline. Its message is
// for logs only.
type UpstreamError struct {
	Service string // "vector store", "embedding model" or "chat model"
	Timeout bool
	Err     error
}

func (e *UpstreamError) Error() string { return e.Service + ": " + e.Err.Error() }
func (e *UpstreamError) Unwrap() error { return e.Err }

func storeErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return &UpstreamError{Service: "vector store", Timeout: errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded), Err: err}
}

func modelErr(ctx context.Context, service string, err error) error {
	if err == nil {
		return nil
	}
	return &UpstreamError{Service: service, Timeout: llm.IsTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded), Err: err}
}

// Query is a question to answer.
type Query struct {
	Question string
	TopK     int
	Filter   map[string]string
	// Mode is the retrieval mode (contract.RetrievalModes); empty: the
	// service's default.
	Mode string
}

// Source is a retrieved passage.
type Source struct {
	ID       string            `json:"id"`
	Source   string            `json:"source"`
	Chunk    int               `json:"chunk"`
	Text     string            `json:"text"`
	Score    float32           `json:"score"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Usage counts the tokens a query spent.
type Usage struct {
	EmbeddingTokens  int `json:"embedding_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Answer is the result of a query.
type Answer struct {
	Answer  string   `json:"answer"`
	Sources []Source `json:"sources"`
	Model   string   `json:"model"`
	Mode    string   `json:"mode"`
	Usage   Usage    `json:"usage"`
}

// NoContextAnswer is the answer when no passage matches.
const NoContextAnswer = "No indexed document matches the question."

// Answer retrieves passages and answers the question. With onToken non-nil
// the answer is passed on piece by piece as it is produced.
func (s *Service) Answer(ctx context.Context, q Query, onToken func(string) error) (Answer, error) {
	sources, usage, err := s.Retrieve(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Sources: sources, Model: s.ChatModel(), Mode: s.Mode(), Usage: usage}
	if len(sources) == 0 || s.chat == nil {
		if len(sources) == 0 {
			a.Answer = NoContextAnswer
		} else {
			a.Answer = Extract(q.Question, sources)
		}
		if onToken != nil {
			for _, w := range splitKeep(a.Answer) {
				if err := onToken(w); err != nil {
					return a, err
				}
			}
		}
		return a, nil
	}
	msgs := Prompt(q.Question, sources)
	var cu llm.Usage
	gctx, gspan := startSpan(ctx, "rag.generate", attribute.String(AttrModel, s.chat.Model()),
		attribute.Int(AttrPassages, len(sources)), attribute.Bool(AttrStream, onToken != nil))
	if onToken == nil {
		a.Answer, cu, err = s.chat.Complete(gctx, msgs)
	} else {
		var b strings.Builder
		cu, err = s.chat.Stream(gctx, msgs, func(tok string) error {
			b.WriteString(tok)
			return onToken(tok)
		})
		a.Answer = b.String()
	}
	endSpan(gspan, modelErr(ctx, "chat model", err))
	if err != nil {
		return a, modelErr(ctx, "chat model", err)
	}
	s.opts.Metrics.Tokens("prompt", cu.PromptTokens)
	s.opts.Metrics.Tokens("completion", cu.CompletionTokens)
	a.Usage.PromptTokens = cu.PromptTokens
	a.Usage.CompletionTokens = cu.CompletionTokens
	a.Usage.TotalTokens += cu.TotalTokens
	return a, nil
}

// splitKeep splits s into words, each keeping its trailing space.
func splitKeep(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
