package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ingestBatch is the number of documents per POST /documents (the server
// takes at most 1000).
const ingestBatch = 500

// buildServer compiles the ragserver binary into dir.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "ragserver")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ragops/ragops/cmd/ragserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ragserver: %w\n%s", err, out)
	}
	return bin, nil
}

// server is a running ragserver process.
type server struct {
	url    string
	cmd    *exec.Cmd
	exited chan error
	log    string

	stopped bool
	exitErr error
}

// startServer starts bin offline (no model API: the local embedder) with the
// extra environment env (DATA_DIR or CHROMA_URL) and waits for /readyz.
func startServer(bin, logPath string, env ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	// Nothing inherited that could turn on a model API.
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"PORT=" + strconv.Itoa(port), "LOG_LEVEL=warn", "REQUEST_TIMEOUT=10m", "DRAIN_PERIOD=0s",
	}, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan error, 1), log: logPath}
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("ragserver exited at start (%w); log:\n%s", err, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("ragserver not ready after 60s; log:\n%s", b)
		}
	}
}

// stop sends SIGTERM and returns how the server exited (SIGKILL after 30
// seconds). Stopping a stopped server returns the same.
func (s *server) stop() error {
	if s.stopped {
		return s.exitErr
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case s.exitErr = <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		s.exitErr = fmt.Errorf("no exit 30s after SIGTERM: killed (%w)", <-s.exited)
	}
	return s.exitErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var client = &http.Client{Timeout: 10 * time.Minute}

// post sends body as JSON and decodes a 200 answer into out.
func (s *server) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", path, err)
	}
	return nil
}

// ingest uploads docs through POST /documents in batches.
func (s *server) ingest(ctx context.Context, docs []Document) error {
	type docIn struct {
		Source string `json:"source"`
		Text   string `json:"text"`
	}
	for i := 0; i < len(docs); i += ingestBatch {
		batch := docs[i:min(i+ingestBatch, len(docs))]
		in := make([]docIn, len(batch))
		for j, d := range batch {
			in[j] = docIn(d)
		}
		var out struct {
			Documents int `json:"documents"`
		}
		if err := s.post(ctx, "/documents", map[string]any{"documents": in}, &out); err != nil {
			return err
		}
		if out.Documents != len(batch) {
			return fmt.Errorf("POST /documents: %d documents taken of %d", out.Documents, len(batch))
		}
	}
	return nil
}

// retrieve runs one query through POST /retrieve and returns the sources of
// the chunks, best first, and the request's latency. mode is sent only when
// it is not empty (the server's default mode).
func (s *server) retrieve(ctx context.Context, question, mode string) ([]string, time.Duration, error) {
	hits, took, err := s.retrieveHits(ctx, question, mode, K)
	srcs := make([]string, len(hits))
	for i, h := range hits {
		srcs[i] = h.Source
	}
	return srcs, took, err
}

// hit is one retrieved chunk.
type hit struct {
	ID     string `json:"id"`
	Source string `json:"source"`
}

// retrieveHits runs one query for the topK best chunks.
func (s *server) retrieveHits(ctx context.Context, question, mode string, topK int) ([]hit, time.Duration, error) {
	body := map[string]any{"question": question, "top_k": topK}
	if mode != "" {
		body["mode"] = mode
	}
	var out struct {
		Sources []hit `json:"sources"`
	}
	began := time.Now()
	err := s.post(ctx, "/retrieve", body, &out)
	took := time.Since(began)
	if err != nil {
		return nil, 0, err
	}
	return out.Sources, took, nil
}
