package ragserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

// TestDrainOnShutdown: after SIGTERM (the context ends) /readyz fails at once
// while the API keeps answering for DRAIN_PERIOD, so that a rolling update
// loses no request routed before the endpoints caught up; then Run returns.
func TestDrainOnShutdown(t *testing.T) {
	const drain = 2 * time.Second
	ts := start(t, map[string]string{"DRAIN_PERIOD": drain.String()})
	ts.waitReady(t)
	if s := ts.status(t, "GET", "/documents"); s != 200 {
		t.Fatalf("GET /documents before shutdown: %d", s)
	}

	stopped := time.Now()
	ts.cancel()
	ts.cancel = nil // this test waits for Run itself
	waitFor(t, "/readyz to fail", 500*time.Millisecond, func() bool { return ts.status(t, "GET", "/readyz") == 503 })

	// Requests keep succeeding during the drain period.
	served := 0
	for time.Since(stopped) < drain-500*time.Millisecond {
		if s := ts.status(t, "GET", "/documents"); s != 200 {
			t.Fatalf("GET /documents %v after shutdown began: %d, want 200 during the drain period", time.Since(stopped), s)
		}
		if s := ts.status(t, "GET", "/readyz"); s != 503 {
			t.Fatalf("/readyz during the drain period: %d, want 503", s)
		}
		served++
	}
	if served == 0 {
		t.Fatal("no request was sent during the drain period")
	}

	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if took := time.Since(stopped); took < drain {
			t.Errorf("Run returned %v after the cancel, before the drain period %v", took, drain)
		}
	case <-time.After(drain + 10*time.Second):
		t.Fatal("Run did not return after the drain period")
	}
}

// TestForeignCollectionRefusedAtStart: a server whose collection is stamped
// with another owner (another RagService) refuses to start with one line.
func TestForeignCollectionRefusedAtStart(t *testing.T) {
	chroma := chromaserver.Shared(t)
	env := map[string]string{"CHROMA_URL": chroma.URL(), "CHROMA_COLLECTION": "tenants.docs", "RAGOPS_OWNER": "uid-a"}
	a := start(t, env)
	a.waitReady(t)
	a.stop(t)

	// The same owner again starts.
	start(t, env).stop(t)

	env["RAGOPS_OWNER"] = "uid-b"
	env["DATA_DIR"] = t.TempDir()
	env["PORT"] = itoa(freePort(t))
	// Bounded, so that a server that starts anyway does not hang the test.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := ragserver.Run(ctx, nil, func(k string) string { return env[k] }, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), `belongs to owner "uid-a", not "uid-b"`) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Run with another owner = %v, want a one-line refusal", err)
	}
}
