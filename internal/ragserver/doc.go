// Package ragserver is the HTTP server of the RAG pipeline: configuration from
// environment variables and flags, the routes (/query, /retrieve, /documents,
// the OpenAI-compatible /v1/chat/completions and /v1/models, the chat page of
// package webui at /, /healthz, /readyz, /metrics), strict request decoding,
// bearer-token auth, Prometheus metrics, start-up ingestion of DOCS_DIR and
// graceful shutdown.
//
// cmd/ragserver only calls Run; tests call it too, on a free port.
package ragserver
