package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName names the tracer of this package's spans.
const TracerName = "github.com/ragops/ragops/internal/llm"

// Span attributes of model calls (names after the OpenTelemetry GenAI
// conventions). Neither the API key nor any text goes on a span: only the
// model, counts and the outcome.
const (
	AttrOperation    = "gen_ai.operation.name"     // "embeddings" or "chat"
	AttrModel        = "gen_ai.request.model"      // the model asked for
	AttrInputs       = "llm.inputs"                // texts embedded, messages sent
	AttrStream       = "llm.stream"                // the answer is streamed
	AttrAttempts     = "llm.attempts"              // tries, the first included
	AttrInputTokens  = "gen_ai.usage.input_tokens" // as the model reports them
	AttrOutputTokens = "gen_ai.usage.output_tokens"
)

// startSpan starts the span of one model call as a child of the span in
// ctx. The tracer comes from that span, so without one (tracing off) the
// span is a no-op and costs nothing.
func startSpan(ctx context.Context, op, model string, inputs int, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName)
	attrs = append(attrs, attribute.String(AttrOperation, op), attribute.String(AttrModel, model), attribute.Int(AttrInputs, inputs))
	return tracer.Start(ctx, "llm."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records the usage and the error of a call and ends its span.
func endSpan(span trace.Span, u Usage, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int(AttrInputTokens, u.PromptTokens), attribute.Int(AttrOutputTokens, u.CompletionTokens))
		if err != nil {
			// Upstream error text may quote the request (or part of a
			// key): the span gets the classification only.
			msg := spanError(err)
			span.RecordError(errors.New(msg))
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
}

// injectTraceContext sets the W3C traceparent (and tracestate) of the span
// in the request's context on the request, so that a model server that
// traces joins the caller's trace.
func injectTraceContext(req *http.Request) {
	propagation.TraceContext{}.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
}

// spanError describes a failed call without its upstream text.
func spanError(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err.Error()
		}
		return "model call failed"
	}
	kind := map[ErrorKind]string{KindFailed: "failed", KindTimeout: "timed out", KindCanceled: "canceled"}[e.Kind]
	return fmt.Sprintf("%s %s after %d attempt(s), last status %d", e.Op, kind, e.Attempts, e.Status)
}
