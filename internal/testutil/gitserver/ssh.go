package gitserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves a Repo over SSH, as the common hosts do: a client
// authenticates with a public key, and its "exec git-upload-pack '<path>'"
// runs Debian's git-upload-pack on the repository. Only fetching is served.
type SSHServer struct {
	// URL is the clone URL, ssh://git@127.0.0.1:PORT/repo.git.
	URL string
	// HostKeys are the server's host keys: an ECDSA P-256 key and an
	// Ed25519 key, as the common hosts offer several.
	HostKeys []ssh.PublicKey
	// Addr is the server's host:port.
	Addr string

	uploads atomic.Int64
}

// SSHRepoPath is the path of the repository in SSHServer.URL.
const SSHRepoPath = "/repo.git"

// NewKey returns a new Ed25519 key as its OpenSSH private key file and its
// signer.
func NewKey(t testing.TB) ([]byte, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer
}

// KnownHosts returns known_hosts lines for the server's address: one per
// key given.
func (s *SSHServer) KnownHosts(keys ...ssh.PublicKey) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k) + "\n")
	}
	return b.String()
}

// Uploads is the number of git-upload-pack processes started. A start is
// counted before the process writes anything, so once a client call has
// returned every run it caused is counted (an exit is not: the server may
// still be reaping the process of a client that already hung up).
func (s *SSHServer) Uploads() int64 { return s.uploads.Load() }

// ServeSSH serves the repository on 127.0.0.1 to clients holding a key
// whose public half is authorized.
func (r *Repo) ServeSSH(t testing.TB, authorized ssh.PublicKey) *SSHServer {
	t.Helper()
	upload, err := exec.LookPath("git-upload-pack")
	if err != nil {
		t.Fatalf("git-upload-pack is needed to serve the repository over SSH (apt-get install git): %v", err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	s := &SSHServer{}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []any{ec, ed} {
		signer, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AddHostKey(signer)
		s.HostKeys = append(s.HostKeys, signer.PublicKey())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.URL = "ssh://git@" + s.Addr + SSHRepoPath
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveConn(c, cfg, upload, r.Dir)
			}()
		}
	}()
	return s
}

func (s *SSHServer) serveConn(c net.Conn, cfg *ssh.ServerConfig, upload, dir string) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return // a refused key or host key ends here
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, creqs, upload, dir)
	}
}

// serveSession runs the one command a session may exec:
// git-upload-pack '/repo.git'.
func (s *SSHServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, upload, dir string) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil) // env, pty-req, shell: refused
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		if payload.Command != "git-upload-pack '"+SSHRepoPath+"'" {
			_ = req.Reply(true, nil)
			fmt.Fprintf(ch.Stderr(), "fatal: only git-upload-pack '%s' is served, not %q\n", SSHRepoPath, payload.Command)
			exit(ch, 128)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command(upload, dir)
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		// A pipe rather than cmd.Stdin = ch: Wait would wait for the
		// client's EOF, which a client waiting for the exit status never
		// sends.
		stdin, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err == nil {
			s.uploads.Add(1)
			go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
			err = cmd.Wait()
		}
		status := 0
		if err != nil {
			status = 1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			}
			fmt.Fprintf(ch.Stderr(), "git-upload-pack: %v\n", err)
		}
		exit(ch, status)
		return
	}
}

func exit(ch ssh.Channel, status int) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(status))
	_, _ = ch.SendRequest("exit-status", false, b)
}
