package ragserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Redacted replaces a secret in the logs.
const Redacted = "[REDACTED]"

// MinRedactedSecret is the length below which a secret is not redacted from
// logs: replacing a short value would mangle ordinary words, and a secret
// that short is guessable anyway.
const MinRedactedSecret = 8

// secrets are the values that must never reach the logs: the model API key
// and the API token. They are read through the same getters that the model
// client and the auth check use, so that a rotated file is redacted as soon
// as it is used.
type secrets struct {
	apiKey *fileValue // nil: none
	token  *fileValue // nil: no auth
}

func newSecrets(cfg Config) secrets {
	var sec secrets
	switch {
	case cfg.APIKeyFile != "":
		sec.apiKey = newFileValue(cfg.APIKeyFile)
	case cfg.APIKey != "":
		sec.apiKey = &fileValue{static: cfg.APIKey}
	}
	switch {
	case cfg.APITokenFile != "":
		sec.token = newFileValue(cfg.APITokenFile)
	case cfg.APIToken != "":
		sec.token = &fileValue{static: cfg.APIToken}
	}
	return sec
}

// values returns the current and the previous value of each secret (an
// in-flight request may still carry the value a rotation replaced), those
// long enough to redact.
func (s secrets) values() []string {
	var out []string
	for _, f := range []*fileValue{s.apiKey, s.token} {
		if f == nil {
			continue
		}
		cur, prev := f.getWithPrevious()
		for _, v := range []string{cur, prev} {
			if len(v) >= MinRedactedSecret {
				out = append(out, v)
			}
		}
	}
	return out
}

// redactHandler is a slog.Handler that replaces every occurrence of the
// secrets in the message and in the attributes (strings, errors and any
// other value, in groups too) with Redacted before passing a record on.
type redactHandler struct {
	next    slog.Handler
	secrets func() []string
}

func newRedactHandler(next slog.Handler, secrets func() []string) *redactHandler {
	return &redactHandler{next: next, secrets: secrets}
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	sec := h.secrets()
	if len(sec) == 0 {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, redact(r.Message, sec), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a, sec))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts the attributes with the secrets of the moment: a value
// bound to a logger must not hold a secret that rotates later.
func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	sec := h.secrets()
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a, sec)
	}
	return &redactHandler{next: h.next.WithAttrs(red), secrets: h.secrets}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name), secrets: h.secrets}
}

func redact(s string, sec []string) string {
	for _, v := range sec {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

func redactAttr(a slog.Attr, sec []string) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String(), sec))
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga, sec)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		// An error or any other value is logged as text if, printed, it
		// holds a secret.
		var s string
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprint(v.Any())
		}
		if r := redact(s, sec); r != s {
			return slog.String(a.Key, r)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
