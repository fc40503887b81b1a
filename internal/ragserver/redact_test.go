package ragserver

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRedactHandler: secrets are replaced in the message, string, error,
// grouped and pre-bound attributes; secrets too short are left alone.
func TestRedactHandler(t *testing.T) {
	const secret = "sk-0123456789"
	sec := func() []string { return []string{secret} }
	var buf bytes.Buffer
	log := slog.New(newRedactHandler(slog.NewJSONHandler(&buf, nil), sec))
	log.With("bound", "x"+secret).WithGroup("g").Error("Failed with "+secret,
		"s", secret, "err", errors.New("upstream said "+secret),
		slog.Group("inner", "v", []string{secret}), "n", 42)
	out := buf.String()
	if strings.Contains(out, secret) || strings.Count(out, Redacted) != 5 {
		t.Fatalf("want 5 redactions and no secret, got %s", out)
	}
	if !strings.Contains(out, `"n":42`) {
		t.Fatalf("other attributes changed: %s", out)
	}

	buf.Reset()
	short := secrets{apiKey: &fileValue{static: "short"}}
	slog.New(newRedactHandler(slog.NewJSONHandler(&buf, nil), short.values)).Info("a short value")
	if !strings.Contains(buf.String(), "a short value") {
		t.Fatalf("a secret shorter than %d was redacted: %s", MinRedactedSecret, buf.String())
	}
}
