package ragserver

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/rag"
)

// Config is the server configuration. Every field comes from an environment
// variable and a matching flag (the flag wins).
type Config struct {
	Port             int
	LLMModel         string
	EmbeddingModel   string
	APIKey           string
	APIKeyFile       string
	BaseURL          string
	EmbeddingBaseURL string
	ChromaURL        string
	ChromaCollection string
	DocsDir          string
	DataDir          string
	TopK             int
	ChunkSize        int
	ChunkOverlap     int
	APIToken         string
	APITokenFile     string
	MaxBodyBytes     int64
	RequestTimeout   time.Duration
	UpstreamTimeout  time.Duration
	MaxRetries       int
	EmbedBatchSize   int
	EmbedConcurrency int
	ShutdownTimeout  time.Duration
	DrainPeriod      time.Duration
	Owner            string
	LogLevel         string
	// RetrievalMode is the default retrieval mode (contract.RetrievalModes).
	RetrievalMode string
	// LexicalWeight is the weight of the lexical ranking in hybrid fusion,
	// from 0 to 1; the vector ranking weighs 1 minus it. Nil: the default
	// of the embedder (rag.LocalLexicalWeight, rag.DefaultLexicalWeight).
	LexicalWeight *float64
	// QueryIDF weighs the query's words by their inverse document
	// frequency when embedding it with the local embedder.
	QueryIDF bool
	// LexicalRefresh bounds the staleness of the in-memory lexical index
	// kept beside a Chroma store: commits of other replicas are seen within
	// it.
	LexicalRefresh time.Duration
	// The optional reranker (off when RerankBaseURL is empty).
	RerankBaseURL string
	RerankModel   string
	RerankTopN    int
}

// Defaults for the models when a model API is configured.
const (
	DefaultLLMModel       = "gpt-4o-mini"
	DefaultEmbeddingModel = "text-embedding-3-small"
	// LocalModel as EMBEDDING_MODEL selects the local embedder; as
	// LLM_MODEL ("extractive" works too) it selects extractive answers.
	LocalModel = "local"
)

// setting describes one configuration entry.
type setting struct {
	env, def, usage string
	secret          bool
}

var settings = []setting{
	{contract.EnvPort, strconv.Itoa(contract.DefaultPort), "HTTP port", false},
	{"LLM_MODEL", "", `chat model (default ` + DefaultLLMModel + ` when a model API is configured; "local" for extractive answers)`, false},
	{"EMBEDDING_MODEL", "", `embedding model (default ` + DefaultEmbeddingModel + ` when a model API is configured, else the local embedder; "local" forces it)`, false},
	{"OPENAI_API_KEY", "", "API key of the model API", true},
	{"OPENAI_API_KEY_FILE", "", "file holding the API key (a mounted secret); re-read when it changes", false},
	{"OPENAI_BASE_URL", "", "base URL of an OpenAI-compatible API, e.g. http://ollama:11434/v1 (default: OpenAI when a key is set)", false},
	{"EMBEDDING_BASE_URL", "", "base URL for embeddings (default OPENAI_BASE_URL)", false},
	{"CHROMA_URL", "", "Chroma server URL; empty uses the embedded store under DATA_DIR", false},
	{contract.EnvChromaCollection, "ragops", "collection name prefix; the embedding model is appended", false},
	{contract.EnvOwner, "", "identity stamped on the Chroma collection on creation; the server refuses a collection stamped with another owner", false},
	{"DOCS_DIR", "", "directory whose top-level .txt/.md files are ingested at start-up", false},
	{"DATA_DIR", "", "directory of the embedded store (default $TMPDIR/ragops)", false},
	{contract.EnvTopK, strconv.Itoa(contract.DefaultTopK), "passages per query by default", false},
	{contract.EnvChunkSize, strconv.Itoa(contract.DefaultChunkSize), "maximum chunk length in characters", false},
	{contract.EnvChunkOverlap, "", "characters of whole words repeated between chunks (default " + strconv.Itoa(contract.DefaultChunkOverlap) + ", at most a fifth of CHUNK_SIZE)", false},
	{"API_TOKEN", "", "bearer token required on the API (not on health and metrics)", true},
	{"API_TOKEN_FILE", "", "file holding the bearer token; re-read when it changes", false},
	{"MAX_BODY_BYTES", "4194304", "maximum request body size", false},
	{"REQUEST_TIMEOUT", "60s", "deadline of a request, upstream calls included", false},
	{"UPSTREAM_TIMEOUT", "30s", "timeout of each model call attempt", false},
	{"MAX_RETRIES", "3", "retries of a model call on 429/5xx/network errors", false},
	{"EMBED_BATCH_SIZE", "64", "chunks per embeddings request", false},
	{"EMBED_CONCURRENCY", "4", "embeddings requests in flight during ingestion", false},
	{contract.EnvDrainPeriod, contract.DefaultDrainPeriod.String(), "time the server keeps serving after SIGTERM while /readyz fails, so that endpoints stop routing to it (0s: none)", false},
	{contract.EnvShutdownTimeout, contract.DefaultShutdownTimeout.String(), "time given to in-flight requests once the drain period is over", false},
	{"LOG_LEVEL", "info", "debug, info, warn or error", false},
	{contract.EnvRetrievalMode, contract.DefaultRetrievalMode, "default retrieval mode: " + strings.Join(contract.RetrievalModes, ", ") + "; a request may override it", false},
	{"HYBRID_LEXICAL_WEIGHT", "", "weight of the lexical ranking in hybrid reciprocal rank fusion, 0 to 1, the vector ranking weighing 1 minus it (default " +
		strconv.FormatFloat(rag.LocalLexicalWeight, 'f', -1, 64) + " with the local embedder, measured; " + strconv.FormatFloat(rag.DefaultLexicalWeight, 'f', -1, 64) + " with a model's)", false},
	{"QUERY_IDF", "true", "with the local embedder: weigh each word of a query by its inverse document frequency in the lexical index (documents are not affected)", false},
	{"LEXICAL_REFRESH", "2s", "with Chroma: the longest a replica's lexical index lags behind commits made by other replicas", false},
	{contract.EnvRerankBaseURL, "", "base URL of an OpenAI-style rerank API (POST {base}/rerank); empty: no reranking", false},
	{contract.EnvRerankModel, "", "reranking model (required with RERANK_BASE_URL)", false},
	{contract.EnvRerankTopN, strconv.Itoa(contract.DefaultRerankTopN), "fused passages sent to the reranker per query", false},
}

func flagName(env string) string { return strings.ToLower(strings.ReplaceAll(env, "_", "-")) }

// LoadConfig reads the configuration from args (flags) and getenv. The error
// is one line naming the offending setting.
func LoadConfig(args []string, getenv func(string) string, usageOut io.Writer) (Config, error) {
	fs := flag.NewFlagSet("ragserver", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	vals := map[string]*string{}
	for _, s := range settings {
		vals[s.env] = fs.String(flagName(s.env), "", s.usage+" (env "+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintln(usageOut, "Usage: ragserver [flags]\n       ragserver ingest [flags]\n       ragserver migrate --from MODEL [--keep-previous] [flags]\n       ragserver healthcheck\n\nEvery flag can be set with the environment variable in parentheses.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	get := func(env string) string {
		if set[flagName(env)] {
			return *vals[env]
		}
		if v := getenv(env); v != "" {
			return v
		}
		for _, s := range settings {
			if s.env == env {
				return s.def
			}
		}
		return ""
	}

	var c Config
	var errs []error
	intVal := func(env string, lo, hi int) int {
		v := get(env)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s=%q must be an integer from %d to %d", env, v, lo, hi))
		}
		return n
	}
	durVal := func(env string) time.Duration {
		v := get(env)
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q must be a positive duration such as 30s", env, v))
		}
		return d
	}
	nonNegDurVal := func(env string) time.Duration {
		v := get(env)
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q must be a duration such as 5s (0s for none)", env, v))
		}
		return d
	}
	urlVal := func(env string) string {
		v := strings.TrimSpace(get(env))
		if v == "" {
			return ""
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q must be an http:// or https:// URL", env, v))
		}
		return strings.TrimRight(v, "/")
	}

	c.Port = intVal(contract.EnvPort, contract.MinPort, contract.MaxPort)
	c.LLMModel = strings.TrimSpace(get("LLM_MODEL"))
	c.EmbeddingModel = strings.TrimSpace(get("EMBEDDING_MODEL"))
	c.APIKey = strings.TrimSpace(get("OPENAI_API_KEY"))
	c.APIKeyFile = get("OPENAI_API_KEY_FILE")
	c.BaseURL = urlVal("OPENAI_BASE_URL")
	c.EmbeddingBaseURL = urlVal("EMBEDDING_BASE_URL")
	c.ChromaURL = urlVal("CHROMA_URL")
	c.ChromaCollection = get(contract.EnvChromaCollection)
	c.Owner = strings.TrimSpace(get(contract.EnvOwner))
	c.DocsDir = get("DOCS_DIR")
	c.DataDir = get("DATA_DIR")
	c.TopK = intVal(contract.EnvTopK, contract.MinTopK, contract.MaxTopK)
	c.ChunkSize = intVal(contract.EnvChunkSize, contract.MinChunkSize, contract.MaxChunkSize)
	if strings.TrimSpace(get(contract.EnvChunkOverlap)) == "" {
		c.ChunkOverlap = contract.ChunkOverlap(c.ChunkSize, nil)
	} else {
		c.ChunkOverlap = intVal(contract.EnvChunkOverlap, contract.MinChunkOverlap, contract.MaxChunkOverlap)
	}
	c.APIToken = strings.TrimSpace(get("API_TOKEN"))
	c.APITokenFile = get("API_TOKEN_FILE")
	c.MaxBodyBytes = int64(intVal("MAX_BODY_BYTES", 1024, 1<<30))
	c.RequestTimeout = durVal("REQUEST_TIMEOUT")
	c.UpstreamTimeout = durVal("UPSTREAM_TIMEOUT")
	c.MaxRetries = intVal("MAX_RETRIES", 0, 10)
	c.EmbedBatchSize = intVal("EMBED_BATCH_SIZE", 1, 2048)
	c.EmbedConcurrency = intVal("EMBED_CONCURRENCY", 1, 64)
	c.ShutdownTimeout = durVal(contract.EnvShutdownTimeout)
	c.DrainPeriod = nonNegDurVal(contract.EnvDrainPeriod)
	c.LogLevel = strings.ToLower(get("LOG_LEVEL"))
	c.RetrievalMode = strings.TrimSpace(get(contract.EnvRetrievalMode))
	if !contract.ValidRetrievalMode(c.RetrievalMode) {
		errs = append(errs, fmt.Errorf("%s=%q must be one of %s", contract.EnvRetrievalMode, c.RetrievalMode, strings.Join(contract.RetrievalModes, ", ")))
	}
	if lw := strings.TrimSpace(get("HYBRID_LEXICAL_WEIGHT")); lw != "" {
		if w, err := strconv.ParseFloat(lw, 64); err != nil || w < 0 || w > 1 {
			errs = append(errs, fmt.Errorf("HYBRID_LEXICAL_WEIGHT=%q must be a number from 0 to 1", lw))
		} else {
			c.LexicalWeight = &w
		}
	}
	c.LexicalRefresh = durVal("LEXICAL_REFRESH")
	switch v := strings.TrimSpace(get("QUERY_IDF")); v {
	case "true", "false":
		c.QueryIDF = v == "true"
	default:
		errs = append(errs, fmt.Errorf("QUERY_IDF=%q must be true or false", v))
	}
	c.RerankBaseURL = urlVal(contract.EnvRerankBaseURL)
	c.RerankModel = strings.TrimSpace(get(contract.EnvRerankModel))
	c.RerankTopN = intVal(contract.EnvRerankTopN, contract.MinRerankTopN, contract.MaxRerankTopN)
	if c.RerankBaseURL != "" && c.RerankModel == "" {
		errs = append(errs, fmt.Errorf("%s needs %s", contract.EnvRerankBaseURL, contract.EnvRerankModel))
	}

	if len(errs) == 0 && c.ChunkOverlap >= c.ChunkSize {
		errs = append(errs, fmt.Errorf("CHUNK_OVERLAP=%d must be smaller than CHUNK_SIZE=%d", c.ChunkOverlap, c.ChunkSize))
	}
	if c.APIKey != "" && c.APIKeyFile != "" {
		errs = append(errs, errors.New("set OPENAI_API_KEY or OPENAI_API_KEY_FILE, not both"))
	}
	if c.APIToken != "" && c.APITokenFile != "" {
		errs = append(errs, errors.New("set API_TOKEN or API_TOKEN_FILE, not both"))
	}
	for env, file := range map[string]string{"OPENAI_API_KEY_FILE": c.APIKeyFile, "API_TOKEN_FILE": c.APITokenFile} {
		if file == "" {
			continue
		}
		if b, err := os.ReadFile(file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		} else if strings.TrimSpace(string(b)) == "" {
			errs = append(errs, fmt.Errorf("%s=%s is empty", env, file))
		}
	}
	if c.DocsDir != "" {
		if fi, err := os.Stat(c.DocsDir); err != nil {
			errs = append(errs, fmt.Errorf("DOCS_DIR: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("DOCS_DIR=%s is not a directory", c.DocsDir))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q must be debug, info, warn or error", c.LogLevel))
	}
	if c.ChromaCollection == "" {
		errs = append(errs, errors.New("CHROMA_COLLECTION must not be empty"))
	}

	remote := c.APIKey != "" || c.APIKeyFile != "" || c.BaseURL != ""
	// A named model with nowhere to send it (no key, no base URL) would fail on every call.
	if !remote {
		if m := c.LLMModel; m != "" && m != LocalModel && m != "extractive" {
			errs = append(errs, fmt.Errorf("LLM_MODEL=%s needs OPENAI_API_KEY (or OPENAI_API_KEY_FILE) or OPENAI_BASE_URL; leave LLM_MODEL unset for the offline mode", m))
		}
		if m := c.EmbeddingModel; m != "" && m != LocalModel && c.EmbeddingBaseURL == "" {
			errs = append(errs, fmt.Errorf("EMBEDDING_MODEL=%s needs OPENAI_API_KEY (or OPENAI_API_KEY_FILE), OPENAI_BASE_URL or EMBEDDING_BASE_URL; leave EMBEDDING_MODEL unset for the offline mode", m))
		}
	}
	if c.EmbeddingModel == "" {
		c.EmbeddingModel = LocalModel
		if remote || c.EmbeddingBaseURL != "" {
			c.EmbeddingModel = DefaultEmbeddingModel
		}
	}
	if c.LLMModel == "extractive" {
		c.LLMModel = LocalModel
	}
	if c.LLMModel == "" {
		c.LLMModel = LocalModel
		if remote {
			c.LLMModel = DefaultLLMModel
		}
	}
	if c.DataDir == "" {
		c.DataDir = os.TempDir() + "/ragops"
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return c, errors.New("invalid configuration: " + strings.Join(msgs, "; "))
	}
	return c, nil
}

// Generative reports whether answers come from a chat model.
func (c Config) Generative() bool { return c.LLMModel != LocalModel }

// RemoteEmbeddings reports whether embeddings come from a model API.
func (c Config) RemoteEmbeddings() bool { return c.EmbeddingModel != LocalModel }

// embeddingURL is the base URL of the embeddings API.
func (c Config) embeddingURL() string {
	if c.EmbeddingBaseURL != "" {
		return c.EmbeddingBaseURL
	}
	return c.BaseURL
}
