// Package gitserver serves a Git repository that a test creates and changes,
// with Debian's git: commits are made by the git command line and served by
// "git http-backend" (smart HTTP) through net/http/cgi. A missing git fails
// the test: it never skips.
package gitserver

import (
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a non-bare repository served at URL.
type Repo struct {
	t   testing.TB
	git string
	Dir string
	// URL is the clone URL (smart HTTP).
	URL string
	// User and Password, when set before the first request, are required
	// as HTTP basic auth.
	User, Password string
}

// New creates an empty repository with a main branch and serves it on the
// loopback interface.
func New(t testing.TB) *Repo {
	t.Helper()
	return NewListening(t, "")
}

// NewListening is New served on addr (host:port, port 0 for any) instead of
// the loopback interface, for clients that are not processes of this host:
// the pods of a local cluster reach the host on their bridge's address.
func NewListening(t testing.TB, addr string) *Repo {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("the git command is needed to serve test repositories (apt-get install git): %v", err)
	}
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend is missing: %v", err)
	}
	root := t.TempDir()
	r := &Repo{t: t, git: git, Dir: filepath.Join(root, "repo")}
	r.Run("init", "-q", "-b", "main", r.Dir)
	// Let clients fetch any commit by SHA, as the common hosts do.
	r.Run("config", "uploadpack.allowAnySHA1InWant", "true")
	h := &cgi.Handler{
		Path: backend,
		Dir:  root,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.User != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.User || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("serve the repository on %s: %v", addr, err)
		}
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/repo/.git"
	return r
}

// Run runs git in the repository and returns its trimmed output.
func (r *Repo) Run(args ...string) string {
	r.t.Helper()
	if args[0] != "init" {
		args = append([]string{"-C", r.Dir}, args...)
	}
	cmd := exec.Command(r.git, args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files (path -> content; "" deletes the file).
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if content == "" {
			if err := os.Remove(full); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit writes files, commits everything and returns the commit SHA.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	r.Run("add", "-A")
	r.Run("commit", "-q", "--allow-empty", "-m", msg)
	return r.Run("rev-parse", "HEAD")
}
