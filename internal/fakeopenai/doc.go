// Package fakeopenai is an in-process fake of an OpenAI-compatible model API,
// the only fake used by the ragserver tests. It speaks the real wire format
// (POST /v1/embeddings, POST /v1/chat/completions with and without "stream":
// true, GET /v1/models) and adds what tests need: deterministic embeddings
// (hashed bag of words, so retrieval is meaningful), chat answers that echo the
// model and the context passages they were given, call counters, an API key
// check and faults on demand (error statuses with Retry-After, N failures then
// success, injected latency).
//
// The same handler runs as a server in cmd/fakeopenai for end-to-end tests;
// there it can be steered over HTTP under /_fake/.
package fakeopenai
