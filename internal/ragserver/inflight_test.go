package ragserver_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/fakeopenai"
)

// TestRequestsInFlightGauge: the autoscaling signal counts the queries being
// served, not probes or scrapes, and drops back to zero when they finish.
func TestRequestsInFlightGauge(t *testing.T) {
	f, url := fake(t)
	ts := start(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test",
		"LLM_MODEL": "fake-chat-1", "EMBEDDING_MODEL": "fake-embed-1",
	})
	ts.waitReady(t)
	gauge := func() string {
		for _, line := range strings.Split(string(ts.get(t, "/metrics").Body), "\n") {
			if v, ok := strings.CutPrefix(line, contract.MetricRequestsInFlight+" "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no %s", contract.MetricRequestsInFlight)
		return ""
	}
	if g := gauge(); g != "0" {
		t.Fatalf("idle server: %s = %s, want 0 (probes and scrapes do not count)", contract.MetricRequestsInFlight, g)
	}

	// Hold every chat call so that the queries stay in flight.
	f.SetLatency(fakeopenai.Chat, 3*time.Second)
	const n = 3
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i] = ts.post(t, "/query", map[string]any{"question": fmt.Sprintf("What are the main credit risks? (%d)", i)}).Status
		})
	}
	waitFor(t, "3 queries in flight", 2*time.Second, func() bool { return gauge() == fmt.Sprint(n) })
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("query %d: status %d", i, c)
		}
	}
	if g := gauge(); g != "0" {
		t.Fatalf("after the queries: %s = %s, want 0", contract.MetricRequestsInFlight, g)
	}
}
