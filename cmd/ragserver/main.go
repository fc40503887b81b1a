// Command ragserver is the RAG server: it ingests documents into a vector
// store (a Chroma server, or an embedded store by default) and answers
// questions about them over HTTP, with an OpenAI-compatible model or, with
// none configured, extractively. See docs/ragserver.md.
//
// "ragserver ingest" indexes the sources of RAGOPS_SOURCES once and exits:
// the indexing Job's command (see docs/ragserver.md, "Indexing sources").
//
// "ragserver healthcheck" probes a running server's /healthz and exits 0 or
// 1, for a Docker HEALTHCHECK in an image without curl.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ragops/ragops/internal/ragserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ragserver.Run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ragserver:", err)
		os.Exit(1)
	}
}
