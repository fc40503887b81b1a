// Package s3server starts a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, built from Go modules by `make versitygw`)
// on its posix backend, in a temporary directory.
//
// The executable is found only through RAGOPS_VERSITYGW_BIN (the Makefile
// sets it). When it is unset or the server does not come up, tests fail:
// they never skip.
package s3server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBin names the variable holding the path of the versitygw executable.
const EnvBin = "RAGOPS_VERSITYGW_BIN"

// The root credentials of every test server.
const (
	AccessKey = "ragops-test-access"
	SecretKey = "ragops-test-secret-key"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is http://127.0.0.1:<port>.
	Endpoint string
	cmd      *exec.Cmd
	mu       sync.Mutex
	log      bytes.Buffer
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start starts a server whose buckets are the directories of a fresh
// temporary directory, and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		t.Fatalf("%s is not set: run the tests through make (make versitygw builds the S3 server into bin/)", EnvBin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v (make versitygw builds it)", EnvBin, bin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	root := t.TempDir()
	s.cmd = exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", "127.0.0.1:"+strconv.Itoa(port), "posix", root)
	s.cmd.Stdout = lockedWriter{&s.mu, &s.log}
	s.cmd.Stderr = lockedWriter{&s.mu, &s.log}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return s // any answer (403 without credentials) means it serves
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited at start-up:\n%s", s.Output())
		case <-ctx.Done():
			t.Fatalf("versitygw did not answer within 30s:\n%s", s.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Output is what the server printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.log.String())
}
