package rag

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName names the tracer of the pipeline's spans.
const TracerName = "github.com/ragops/ragops/internal/rag"

// Span attributes of the pipeline. Counts and settings only: no question,
// passage or document text goes on a span.
const (
	AttrTopK      = "rag.top_k"        // passages asked for
	AttrFilters   = "rag.filters"      // metadata filter keys
	AttrMode      = "rag.mode"         // vector, lexical or hybrid
	AttrHits      = "rag.hits"         // passages returned
	AttrModel     = "rag.model"        // chat model of a generation
	AttrPassages  = "rag.passages"     // passages in the prompt
	AttrStream    = "rag.stream"       // the answer is streamed
	AttrDocuments = "rag.documents"    // documents in an ingestion
	AttrOrigin    = "rag.origin"       // who owns them ("" for the API)
	AttrAdded     = "rag.chunks.added" // chunks written (reused included)
	AttrReused    = "rag.chunks.reused"
	AttrUnchanged = "rag.chunks.unchanged"
	AttrRemoved   = "rag.chunks.removed"
	AttrEmbedded  = "rag.chunks.embedded" // chunks sent to the embedding model
)

// startSpan starts a span as a child of the span in ctx, with that span's
// tracer: without a span in ctx (tracing off) it is a no-op.
func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan sets attrs, records err (an UpstreamError names the service; its
// upstream text stays out of the span) and ends the span.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if err != nil {
			msg := "failed"
			var ue *UpstreamError
			switch {
			case errors.As(err, &ue) && ue.Timeout:
				msg = ue.Service + " timed out"
			case errors.As(err, &ue):
				msg = ue.Service + " failed"
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
				msg = err.Error()
			}
			span.RecordError(errors.New(msg))
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
}
