// Package chromaserver starts a real Chroma server for tests.
//
// The chroma executable is found only through the RAGOPS_CHROMA_BIN
// environment variable (the Makefile sets it to the copy it installs under
// bin/). When it is unset or the server does not come up, tests fail: they
// never skip. Each server runs in its own process group, which is killed when
// the test (or, for Shared, the test binary through StopShared) ends.
package chromaserver

import (
	"bytes"
	"context"
	"errors"
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

// EnvBin names the variable holding the path of the chroma executable.
const EnvBin = "RAGOPS_CHROMA_BIN"

// StartTimeout bounds how long a server may take to answer its heartbeat.
var StartTimeout = 60 * time.Second

// Server is a running (or stopped) Chroma server.
type Server struct {
	bin, dir string
	port     int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}

	logMu sync.Mutex
	log   bytes.Buffer
}

// Start starts a Chroma server persisting into dir (a fresh temporary
// directory when dir is empty) and stops it when t ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New starts a Chroma server persisting into dir. The caller must Stop it.
func New(dir string) (*Server, error) {
	bin := os.Getenv(EnvBin)
	if bin == "" {
		return nil, fmt.Errorf("chromaserver: %s is not set: it must name the chroma executable (make test sets it to bin/chroma/node_modules/.bin/chroma; install with make chroma)", EnvBin)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("chromaserver: %s=%s: %w", EnvBin, bin, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, port: port}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	sharedDir  string
)

// Shared returns a server shared by all tests of the test binary, started on
// first use. Call StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "chroma-shared-")
		if sharedErr == nil {
			shared, sharedErr = New(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared server, if any, and removes its data.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
}

// URL is the server's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the directory the server persists into.
func (s *Server) Dir() string { return s.dir }

// Restart stops the server and starts it again on the same port and data
// directory.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("chromaserver: already running")
	}
	cmd := exec.Command(s.bin, "run", "--path", s.dir, "--host", "127.0.0.1", "--port", strconv.Itoa(s.port))
	cmd.Stdout = syncWriter{&s.logMu, &s.log}
	cmd.Stderr = cmd.Stdout
	// Own process group so that Stop reaches any children; killed if the
	// test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("chromaserver: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(StartTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.URL() + "/api/v2/heartbeat")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			s.Stop()
			return fmt.Errorf("chromaserver: chroma exited before answering its heartbeat: %s", s.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("chromaserver: no heartbeat on %s within %v; output: %s", s.URL(), StartTimeout, s.Output())
		}
	}
}

// Stop terminates the server (SIGTERM to its process group, SIGKILL after 10
// seconds) and waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Anything left in the group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Output returns what the server printed so far.
func (s *Server) Output() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

type syncWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Keep the last 64 KiB for diagnostics.
	if w.buf.Len() > 64<<10 {
		b := w.buf.Bytes()
		rest := append([]byte(nil), b[len(b)-32<<10:]...)
		w.buf.Reset()
		w.buf.Write(rest)
	}
	return w.buf.Write(p)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chromaserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitDown polls until the server no longer answers, or ctx ends.
func (s *Server) WaitDown(ctx context.Context) error {
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for {
		resp, err := client.Get(s.URL() + "/api/v2/heartbeat")
		if err != nil {
			return nil
		}
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pid is the process id of the running server, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
