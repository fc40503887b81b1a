package ragserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/version"
)

// TracerName names the tracer of the server's spans.
const TracerName = "github.com/ragops/ragops/internal/ragserver"

// The standard OpenTelemetry variables the server reads itself. Tracing is
// on when one of the endpoints is set; the exporter reads the other OTLP
// variables (headers, timeout, compression, certificates) from the
// environment as the specification says.
const (
	EnvOTLPEndpoint       = contract.EnvOTLPEndpoint
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvServiceName        = contract.EnvOTelServiceName
	EnvTracesSampler      = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg   = "OTEL_TRACES_SAMPLER_ARG"
	EnvSDKDisabled        = "OTEL_SDK_DISABLED"
)

// DefaultServiceName is service.name when OTEL_SERVICE_NAME is not set.
const DefaultServiceName = "ragserver"

// tracing is the server's tracer provider and how to stop it.
type tracing struct {
	provider trace.TracerProvider
	// shutdown flushes the spans still queued and stops the exporter.
	shutdown func(context.Context) error
	endpoint string // "" when off
}

// newTracing returns an OTLP/HTTP exporting provider when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set
// (and OTEL_SDK_DISABLED is not "true"), a no-op provider otherwise. The
// exporter connects lazily: an unreachable collector never stops the server,
// it only loses spans.
func newTracing(ctx context.Context, getenv func(string) string) (*tracing, error) {
	off := &tracing{provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
	endpoint, err := TracesEndpoint(getenv)
	if err != nil || endpoint == "" || strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return off, err
	}
	sampler, err := tracesSampler(getenv(EnvTracesSampler), getenv(EnvTracesSamplerArg))
	if err != nil {
		return off, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return off, fmt.Errorf("%s: %w", EnvOTLPEndpoint, err)
	}
	name := strings.TrimSpace(getenv(EnvServiceName))
	if name == "" {
		name = DefaultServiceName
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name), semconv.ServiceVersion(version.Version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &tracing{provider: tp, shutdown: tp.Shutdown, endpoint: endpoint}, nil
}

// TracesEndpoint is the URL spans are posted to: the traces endpoint as
// given, or the base endpoint with /v1/traces appended (the specification's
// rule for OTLP/HTTP); "" when tracing is off.
func TracesEndpoint(getenv func(string) string) (string, error) {
	u, name := strings.TrimSpace(getenv(EnvOTLPTracesEndpoint)), EnvOTLPTracesEndpoint
	if u == "" {
		base := strings.TrimSpace(getenv(EnvOTLPEndpoint))
		if base == "" {
			return "", nil
		}
		u, name = strings.TrimRight(base, "/")+"/v1/traces", EnvOTLPEndpoint
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return "", fmt.Errorf("invalid configuration: %s must be an http:// or https:// URL (OTLP/HTTP), got %q", name, u)
	}
	return u, nil
}

// tracesSampler parses OTEL_TRACES_SAMPLER and its argument (the values of
// the specification; default parentbased_always_on).
func tracesSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if strings.TrimSpace(arg) == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("invalid configuration: %s must be a number in [0, 1], got %q", EnvTracesSamplerArg, arg)
		}
		return r, nil
	}
	switch strings.TrimSpace(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		r, err := ratio()
		return sdktrace.TraceIDRatioBased(r), err
	case "parentbased_traceidratio":
		r, err := ratio()
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	}
	return nil, fmt.Errorf("invalid configuration: %s must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, got %q", EnvTracesSampler, name)
}

// untraced are the routes of probes and scrapes: no span, no cost.
func untraced(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// traceRequests starts the span of each request, as a child of the W3C
// traceparent the client sent if any. Its name is the route ("POST /query");
// a 5xx answer marks it failed. Every log record written with the request's
// context carries its trace_id and span_id (see traceLogHandler).
func (s *server) traceRequests(next http.Handler) http.Handler {
	tracer := s.tracer.Tracer(TracerName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if untraced(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(methodLabel(r.Method)), semconv.URLPath(r.URL.Path)))
		defer span.End()
		r2 := r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r2)
		// The mux sets the route on the request it was given: pass it on
		// to the middleware outside this one (metrics).
		r.Pattern = r2.Pattern
		if !span.IsRecording() {
			return
		}
		code := sw.code()
		if r2.Pattern != "" {
			span.SetName(r2.Pattern)
			_, route, _ := strings.Cut(r2.Pattern, " ")
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
		if code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
	})
}

// traceLogHandler adds the trace_id and span_id of the span in a record's
// context, so that a log line leads to its trace.
type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}

// Span attributes of vector store calls.
const (
	AttrStoreOp      = "db.operation.name" // "query", "upsert", "commit", ...
	AttrStoreSystem  = "db.system.name"    // "chroma" or "sqlite"
	AttrStoreRecords = "ragstore.records"  // records written or deleted, versions committed
	AttrStoreK       = "ragstore.k"        // hits asked for
	AttrStoreHits    = "ragstore.hits"     // hits returned
)

// storeSpan starts the span of one vector store call, as a child of the span
// in ctx (a no-op without one).
func (s observedStore) storeSpan(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.String(AttrStoreOp, op), attribute.String(AttrStoreSystem, s.system))
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, "store."+op,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// end measures the call, records its error on the span (the kind only: a
// store's error text may quote the request) and ends it.
func (s observedStore) end(ctx context.Context, span trace.Span, op string, start time.Time, err error, attrs ...attribute.KeyValue) {
	outcome := s.observe(ctx, op, start, err)
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if err != nil {
			span.RecordError(errors.New("store " + op + ": " + outcome))
			span.SetStatus(codes.Error, "store "+op+": "+outcome)
		}
	}
	span.End()
}
