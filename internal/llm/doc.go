// Package llm holds the two model interfaces of the RAG server, Embedder and
// ChatModel, and their implementations: an OpenAI-compatible client (OpenAI,
// Ollama, vLLM, KubeAI...) built on github.com/sashabaranov/go-openai with
// per-call timeouts and jittered retries on 429 and 5xx that honour
// Retry-After, and a local deterministic embedder for the offline default.
//
// Every call takes the caller's context; when it ends, the call ends.
package llm
