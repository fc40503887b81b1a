package ragserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chromaserver.StopShared()
	os.Exit(code)
}

const sampleDocs = "../../sample_docs"

// testServer is a ragserver run by Run on a free port.
type testServer struct {
	URL    string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server with env (PORT and DATA_DIR are filled in when
// absent) and waits until /healthz answers.
func start(t testing.TB, env map[string]string) *testServer {
	t.Helper()
	env = cloneEnv(env)
	if env["PORT"] == "" {
		env["PORT"] = strconv.Itoa(freePort(t))
	}
	if _, ok := env["DATA_DIR"]; !ok {
		env["DATA_DIR"] = t.TempDir()
	}
	if env["LOG_LEVEL"] == "" {
		env["LOG_LEVEL"] = "warn"
	}
	if _, ok := env["DRAIN_PERIOD"]; !ok {
		// Tests stop servers often; the drain has its own test.
		env["DRAIN_PERIOD"] = "0s"
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{URL: "http://127.0.0.1:" + env["PORT"], cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() { ts.done <- ragserver.Run(ctx, nil, func(k string) string { return env[k] }, ts.logs) }()
	t.Cleanup(func() { ts.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(ts.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return ts
			}
		}
		select {
		case err := <-ts.done:
			t.Fatalf("server exited at start: %v\nlogs: %s", err, ts.logs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer /healthz in time; logs: %s", ts.logs)
		}
	}
}

func cloneEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// stop shuts the server down and waits for Run to return.
func (ts *testServer) stop(t testing.TB) {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("server did not stop in time")
	}
}

// waitFor polls fn until it returns true or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func (ts *testServer) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ts.status(t, "GET", "/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for /readyz to answer 200; server log:\n%s", ts.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func (ts *testServer) status(t testing.TB, method, path string) int {
	resp, err := http.DefaultClient.Do(mustReq(t, method, ts.URL+path, nil, ""))
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func mustReq(t testing.TB, method, url string, body io.Reader, contentType string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

func (r response) str(key string) string { s, _ := r.JSON[key].(string); return s }

func (r response) list(key string) []any { l, _ := r.JSON[key].([]any); return l }

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	_ = json.Unmarshal(b, &r.JSON)
	return r
}

func (ts *testServer) post(t testing.TB, path string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	return do(t, mustReq(t, "POST", ts.URL+path, bytes.NewReader(b), "application/json"))
}

func (ts *testServer) get(t testing.TB, path string) response {
	t.Helper()
	return do(t, mustReq(t, "GET", ts.URL+path, nil, ""))
}

// fake starts the fake model API.
func fake(t testing.TB) (*fakeopenai.Server, string) {
	t.Helper()
	f := fakeopenai.New(fakeopenai.Options{})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/v1"
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Event string
	Data  map[string]any
}

func readSSE(t testing.TB, body io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				t.Fatalf("bad SSE data %q: %v", line, err)
			}
		case line == "":
			if cur.Event != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		}
	}
	return out
}
